//! Hostile bodies against a running agent: images that inflate far beyond their size,
//! oversized metadata, gigabyte bodies. Each gets a clear answer, the agent's peak memory
//! stays where an ordinary enrolment puts it, and it keeps serving.

mod common;

use std::io::Write;

use common::server::{Response, Server, read_response};
use common::{fixture, png};
use flate2::Compression;
use flate2::write::ZlibEncoder;

const GIB: usize = 1 << 30;

/// `len` zero bytes, zlib-compressed at the best ratio (about 1000:1), streamed.
fn zeros_deflated(len: usize) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..len / block.len() {
        z.write_all(&block).unwrap();
    }
    z.finish().unwrap()
}

/// A real photo as PNG image data: its pixels, filtered rows, deflated.
fn photo_idat() -> (u32, u32, Vec<u8>) {
    let rgb = image::load_from_memory(&fixture("clean/obama.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = rgb.dimensions();
    let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
    for row in rgb.rows() {
        z.write_all(&[0]).unwrap(); // filter: none
        for p in row {
            z.write_all(&p.0).unwrap();
        }
    }
    (w, h, z.finish().unwrap())
}

/// An agent that has enrolled once (so its memory holds what enrolments need), and its
/// peak memory then.
fn warm_agent() -> (Server, u64) {
    let agent = Server::agent(&[]);
    assert_eq!(
        agent.enroll("SELFIE", &fixture("clean/obama.jpg")).status,
        200
    );
    let peak = agent.peak_rss_kib();
    (agent, peak)
}

/// Peak memory a hostile request may add: a few times the largest body the agent
/// accepts (20 MiB), whatever the body claims to hold.
const MAX_GROWTH_KIB: u64 = 4 * 20 * 1024;

/// The agent answered `r` with one of `statuses` and a JSON problem, still serves, and
/// its peak memory grew by less than [`MAX_GROWTH_KIB`] over `baseline`.
fn survived(agent: &Server, r: &Response, statuses: &[u16], baseline: u64, what: &str) {
    assert!(
        statuses.contains(&r.status),
        "{what}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    if r.status != 200 {
        assert!(r.json()["detail"].is_string(), "{what}: a JSON problem");
    }
    let grown = agent.peak_rss_kib().saturating_sub(baseline);
    eprintln!(
        "{what}: {}, peak memory {:.1} MiB, grown by {grown} KiB",
        r.status,
        baseline as f64 / 1024.0
    );
    assert!(
        grown < MAX_GROWTH_KIB,
        "{what}: peak memory grew by {grown} KiB"
    );
    let health = agent.request("GET", "/health-check", &[], b"");
    assert_eq!(health.status, 200, "{what}: still serving");
}

#[test]
fn image_data_that_inflates_to_a_gigabyte_is_read_no_further_than_the_image() {
    let (agent, baseline) = warm_agent();
    // A 640×480 image whose compressed data would inflate to 1 GiB: the decoder stops
    // where the image ends.
    let bomb = png(640, 480, &[(b"IDAT", &zeros_deflated(GIB))]);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let r = agent.enroll("SELFIE", &bomb);
    // All black: decodes, and no face is found.
    survived(&agent, &r, &[400, 422], baseline, "IDAT bomb");
}

#[test]
fn metadata_that_inflates_to_a_gigabyte_or_is_huge_is_not_kept() {
    let (agent, baseline) = warm_agent();
    let (w, h, idat) = photo_idat();
    // Compressed text that would inflate to 1 GiB, then 15 MB of plain text, before the
    // image: the photo still enrols.
    let ztxt = [b"Comment\0\0".as_slice(), &zeros_deflated(GIB)].concat();
    let text = [b"Comment\0".as_slice(), &vec![b'a'; 15 << 20]].concat();
    for (what, chunk) in [
        ("zTXt bomb", (b"zTXt", ztxt)),
        ("15 MB tEXt", (b"tEXt", text)),
    ] {
        let body = png(w, h, &[(chunk.0, &chunk.1), (b"IDAT", &idat)]);
        let r = agent.enroll("SELFIE", &body);
        survived(&agent, &r, &[200], baseline, what);
    }
}

#[test]
fn a_gigabyte_body_is_refused_with_or_without_its_length() {
    let (agent, baseline) = warm_agent();
    // Declared: refused from the header, before any byte of it is read.
    let mut s = agent.connect();
    write!(
        s,
        "POST /v1/offline-enrollment HTTP/1.1\r\nHost: t\r\nScenario: SELFIE\r\n\
         Content-Length: {GIB}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut s);
    survived(&agent, &r, &[413], baseline, "1 GiB declared");
    // Chunked: refused once MAX_BODY_BYTES have come; the rest is never read.
    let mut s = agent.connect();
    write!(
        s,
        "POST /v1/offline-enrollment HTTP/1.1\r\nHost: t\r\nScenario: SELFIE\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < GIB {
        let wrote = write!(s, "{:x}\r\n", chunk.len())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"));
        if wrote.is_err() {
            break; // the agent answered and closed
        }
        sent += chunk.len();
    }
    assert!(sent < GIB, "the agent read the whole gigabyte");
    eprintln!(
        "1 GiB chunked: the agent stopped reading after {} MiB",
        sent >> 20
    );
    let r = read_response(&mut s);
    survived(&agent, &r, &[413], baseline, "1 GiB chunked");
}
