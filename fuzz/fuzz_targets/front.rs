//! The request front on raw bytes from a client: the head (request line, headers,
//! framing) then the body, at most a small limit, chunked or not. Whatever the bytes, a
//! request re-framed for the server behind, or a clear 4xx/5xx; never a crash, never a
//! body over the limit or more memory than the budget granted.
#![no_main]

use std::io::{BufReader, Read};

use libfuzzer_sys::fuzz_target;
use recognize_agent::http::front::request::{Failure, read_body, read_head};

/// Body limit of the run: small, so that the fuzzer reaches it.
const MAX_BODY: usize = 4096;

/// Statuses the front may answer with.
const STATUSES: [u16; 8] = [400, 408, 413, 417, 431, 501, 503, 505];

fuzz_target!(|data: &[u8]| {
    // The first byte picks how the client's bytes arrive: at most this many per read.
    let Some((&step, raw)) = data.split_first() else {
        return;
    };
    let mut input = Trickle {
        raw,
        step: usize::from(step).max(1),
    };
    let head = match read_head(&mut input) {
        Ok(head) => head,
        Err(failure) => return refused(failure),
    };
    assert!(head.forward.ends_with(b"\r\n"));
    let forwarded = String::from_utf8_lossy(&head.forward).to_ascii_lowercase();
    for framing in ["\r\ncontent-length:", "\r\ntransfer-encoding:", "\r\nx-peer-address:"] {
        assert!(!forwarded.contains(framing), "{framing} passed on");
    }
    // The budget refuses beyond twice the limit in all, as the shared one would.
    let mut granted = 0;
    let mut reserve = |n: usize| {
        granted += n;
        granted <= 2 * MAX_BODY
    };
    let rest = head.rest.as_slice().chain(input);
    match read_body(&mut BufReader::new(rest), head.framing, MAX_BODY, &mut reserve) {
        Ok(body) => assert!(body.len() <= MAX_BODY && body.len() <= granted),
        Err(failure) => refused(failure),
    }
});

fn refused(failure: Failure) {
    if let Failure::Refused(e) = failure {
        assert!(STATUSES.contains(&e.status), "status {}", e.status);
        let (_, body) = e.answer();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["statusCode"], e.status);
    }
}

/// The client's bytes, `step` at a time.
struct Trickle<'a> {
    raw: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.raw.len());
        buf[..n].copy_from_slice(&self.raw[..n]);
        self.raw = &self.raw[n..];
        Ok(n)
    }
}
