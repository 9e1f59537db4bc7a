//! One request read whole under limits: a head of at most [`MAX_HEAD_BYTES`] bytes and
//! [`MAX_HEADERS`] headers, then a body framed by `Content-Length` or chunked, at most the
//! body limit. What passes is re-framed for the server behind: a plain `Content-Length`.

use std::io::{self, BufRead, Read};

use crate::service::error::ApiError;

/// The largest request line plus headers accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most headers accepted.
pub const MAX_HEADERS: usize = 64;
/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 1024;

/// The header the front sets to the client's address; a client's own copy is dropped.
pub const PEER_HEADER: &str = "X-Peer-Address";

/// Headers about this connection or the body's framing, which the front handles itself.
const NOT_PASSED_ON: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "expect",
    "te",
    "upgrade",
    PEER_HEADER,
];

/// Why no request came through.
#[derive(Debug)]
pub enum Failure {
    /// Answer this, then close.
    Refused(ApiError),
    /// The deadline passed first: `408`.
    TimedOut,
    /// The client closed or the connection broke: nobody to answer.
    Gone,
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Refused(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        match e.kind() {
            io::ErrorKind::TimedOut => Failure::TimedOut,
            _ => Failure::Gone,
        }
    }
}

/// How the body is framed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

impl Framing {
    /// The declared length, if any, refused (`413`) above `max` bytes.
    pub fn length_within(self, max: usize) -> Result<Option<usize>, ApiError> {
        match self {
            Framing::Length(n) => usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .map(Some)
                .ok_or_else(|| too_large(max)),
            Framing::Chunked => Ok(None),
        }
    }
}

/// A parsed head.
#[derive(Debug)]
pub struct Head {
    /// The request line and the headers passed on, each ending in CRLF.
    pub forward: Vec<u8>,
    pub framing: Framing,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// Bytes read past the head: the start of the body.
    pub rest: Vec<u8>,
}

/// Reads the head: up to the blank line that ends it.
pub fn read_head(input: &mut (impl Read + ?Sized)) -> Result<Head, Failure> {
    // Fixed-size: a head never costs more than this, whatever the client sends. Zeroed
    // once; the first `filled` bytes are the client's.
    let mut buf: heapless::Vec<u8, MAX_HEAD_BYTES> = heapless::Vec::new();
    let _ = buf.resize_default(MAX_HEAD_BYTES);
    let mut filled = 0;
    loop {
        if filled == MAX_HEAD_BYTES {
            return Err(ApiError::new(
                431,
                format!("the request line and headers exceed {MAX_HEAD_BYTES} bytes"),
            )
            .into());
        }
        let n = match input.read(&mut buf[filled..]) {
            Ok(0) => return Err(Failure::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e.into()),
        };
        // Parse only once the blank line has arrived, so a trickled head costs one parse.
        let tail = &buf[filled.saturating_sub(3)..filled + n];
        filled += n;
        if tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n") {
            return parse(&buf[..filled]);
        }
    }
}

fn parse(buf: &[u8]) -> Result<Head, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(ApiError::bad_request("the request head is malformed").into());
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                431,
                format!("a request may carry at most {MAX_HEADERS} headers"),
            )
            .into());
        }
        Err(e) => {
            return Err(
                ApiError::bad_request(format!("the request head is malformed: {e}")).into(),
            );
        }
    };
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Err(ApiError::bad_request("the request line is malformed").into());
    };
    let mut forward = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    let mut lengths = Vec::new();
    let mut codings = Vec::new();
    let mut expect_continue = false;
    for h in request.headers.iter() {
        let Some(value) = std::str::from_utf8(h.value)
            .ok()
            .filter(|v| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
        else {
            return Err(ApiError::bad_request(format!(
                "the value of header {} is not printable ASCII",
                h.name
            ))
            .into());
        };
        let value = value.trim();
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => lengths.push(value),
            "transfer-encoding" => codings.push(value),
            "expect" if value.eq_ignore_ascii_case("100-continue") => expect_continue = true,
            "expect" => {
                return Err(ApiError::new(417, format!("Expect: {value} is not supported")).into());
            }
            _ => {}
        }
        if !NOT_PASSED_ON.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            forward.extend_from_slice(h.name.as_bytes());
            forward.extend_from_slice(b": ");
            forward.extend_from_slice(value.as_bytes());
            forward.extend_from_slice(b"\r\n");
        }
    }
    Ok(Head {
        forward,
        framing: framing(&lengths, &codings)?,
        expect_continue,
        rest: buf[len..].to_vec(),
    })
}

/// The body's framing, refusing the ambiguous kinds request smuggling relies on.
fn framing(lengths: &[&str], codings: &[&str]) -> Result<Framing, ApiError> {
    match (lengths, codings) {
        ([], []) => Ok(Framing::Length(0)),
        ([], [coding]) if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        ([], codings) => Err(ApiError::new(
            501,
            format!("Transfer-Encoding: {} is not supported", codings.join(", ")),
        )),
        ([first, others @ ..], []) => {
            let n = first
                .parse::<u64>()
                .ok()
                .filter(|_| first.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| ApiError::bad_request("Content-Length is not a number"))?;
            if others.iter().any(|o| o != first) {
                return Err(ApiError::bad_request("conflicting Content-Length headers"));
            }
            Ok(Framing::Length(n))
        }
        _ => Err(ApiError::bad_request(
            "a request may not carry both Content-Length and Transfer-Encoding",
        )),
    }
}

/// The `413` for a body above `max` bytes.
fn too_large(max: usize) -> ApiError {
    ApiError::too_large(format!("the body is larger than the {max}-byte limit"))
}

/// Reads the body framed by `framing`, at most `max` bytes. `reserve(n)` is asked before
/// `n` more bytes are held and may refuse (memory shared by all connections is spent).
pub fn read_body(
    input: &mut impl BufRead,
    framing: Framing,
    max: usize,
    reserve: &mut impl FnMut(usize) -> bool,
) -> Result<Vec<u8>, Failure> {
    let busy =
        || ApiError::new(503, "too many request bodies in flight").with_header("Retry-After", "1");
    match framing.length_within(max)? {
        Some(n) => {
            if !reserve(n) {
                return Err(busy().into());
            }
            let mut body = vec![0; n];
            input.read_exact(&mut body)?;
            Ok(body)
        }
        None => {
            let mut body = Vec::new();
            loop {
                let line = read_line(input)?;
                let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(digits)
                    .ok()
                    .map(str::trim)
                    .filter(|d| !d.is_empty() && d.len() <= 16)
                    .and_then(|d| usize::from_str_radix(d, 16).ok())
                    .ok_or_else(|| ApiError::bad_request("a chunk size is malformed"))?;
                if size == 0 {
                    // Trailers, dropped: up to the blank line.
                    for _ in 0..MAX_HEADERS {
                        if read_line(input)?.is_empty() {
                            return Ok(body);
                        }
                    }
                    return Err(ApiError::new(431, "too many trailer fields").into());
                }
                if size > max - body.len() {
                    return Err(too_large(max).into());
                }
                if !reserve(size) {
                    return Err(busy().into());
                }
                let start = body.len();
                body.resize(start + size, 0);
                input.read_exact(&mut body[start..])?;
                if !read_line(input)?.is_empty() {
                    return Err(ApiError::bad_request("a chunk is longer than its size").into());
                }
            }
        }
    }
}

/// One line, without its line ending.
fn read_line(input: &mut impl BufRead) -> Result<Vec<u8>, Failure> {
    let mut line = Vec::new();
    input
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(match line.len() > MAX_LINE {
            true => ApiError::bad_request("a chunk line is too long").into(),
            false => Failure::Gone,
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Head, Failure> {
        read_head(&mut raw.as_bytes())
    }

    fn status(r: Result<Head, Failure>) -> u16 {
        match r {
            Err(Failure::Refused(e)) => e.status,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn body(raw: &str, framing: Framing, max: usize) -> Result<Vec<u8>, Failure> {
        read_body(&mut raw.as_bytes(), framing, max, &mut |_| true)
    }

    #[test]
    fn a_head_is_re_framed_for_the_server_behind() {
        let h = head(
            "POST /v1/offline-enrollment HTTP/1.1\r\nHost: a\r\nScenario: SELFIE\r\n\
             Content-Length: 4\r\nConnection: keep-alive\r\nX-Peer-Address: 10.0.0.1\r\n\r\nbody",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(h.forward).unwrap(),
            "POST /v1/offline-enrollment HTTP/1.1\r\nHost: a\r\nScenario: SELFIE\r\n"
        );
        assert_eq!(h.framing, Framing::Length(4));
        assert_eq!(h.rest, b"body");
        assert!(!h.expect_continue);
    }

    #[test]
    fn bad_heads_are_refused_with_their_status() {
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert_eq!(status(head(&format!("GET / HTTP/1.1\r\n{many}\r\n"))), 431);
        let long = "a".repeat(MAX_HEAD_BYTES);
        assert_eq!(
            status(head(&format!("GET / HTTP/1.1\r\nX: {long}\r\n\r\n"))),
            431
        );
        assert_eq!(status(head("GET / HTTP/1.1\r\nBad Name: v\r\n\r\n")), 400);
        assert_eq!(status(head("GET / HTTP/1.1\r\nX: caf\u{e9}\r\n\r\n")), 400);
        assert_eq!(status(head("GET / HTTP/1.1\r\nExpect: later\r\n\r\n")), 417);
        let smuggle = "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(head(smuggle)), 400);
        let twice = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(status(head(twice)), 400);
        assert_eq!(
            status(head("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n")),
            400
        );
        let gzip = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(status(head(gzip)), 501);
        assert!(matches!(
            head("GET / HTTP/1.1\r\nHost: a\r\n"),
            Err(Failure::Gone)
        ));
    }

    #[test]
    fn bodies_are_read_in_either_framing_up_to_the_limit() {
        assert_eq!(body("abcd", Framing::Length(4), 4).unwrap(), b"abcd");
        let chunked = "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n";
        assert_eq!(body(chunked, Framing::Chunked, 5).unwrap(), b"abcde");
        let too_large =
            |r: Result<Vec<u8>, Failure>| matches!(r, Err(Failure::Refused(e)) if e.status == 413);
        assert!(too_large(body(chunked, Framing::Chunked, 4)));
        assert!(too_large(body("", Framing::Length(5), 4)));
        assert!(matches!(
            body("ab", Framing::Length(4), 4),
            Err(Failure::Gone)
        ));
        let bad =
            |r: Result<Vec<u8>, Failure>| matches!(r, Err(Failure::Refused(e)) if e.status == 400);
        assert!(bad(body("zz\r\nab\r\n", Framing::Chunked, 9)));
        assert!(bad(body("1\r\nab\r\n0\r\n\r\n", Framing::Chunked, 9)));
        assert!(bad(body(
            &format!("{}\r\n", "1".repeat(2000)),
            Framing::Chunked,
            9
        )));
        let refused = read_body(&mut &b"abcd"[..], Framing::Length(4), 4, &mut |_| false);
        assert!(matches!(refused, Err(Failure::Refused(e)) if e.status == 503));
    }
}
