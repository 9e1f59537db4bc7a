//! Hostile bodies against a running agent: images that inflate far beyond their size,
//! oversized metadata, gigabyte bodies. Each gets a clear answer, the agent's peak memory
//! stays where an ordinary enrolment puts it, and it keeps serving.

use std::io::Write;

use crate::common::server::{Response, Server, read_response};
use crate::common::{fixture, png};
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

/// The agent answered `r` with `status` (a JSON problem unless 200), still serves, and
/// its peak memory grew by less than [`MAX_GROWTH_KIB`] over `baseline`.
fn survived(agent: &Server, r: &Response, status: u16, baseline: u64, what: &str) {
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
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
    survived(&agent, &r, 422, baseline, "IDAT bomb");
    assert_eq!(r.json()["filters"]["faceMissing"], "TRIGGERED", "IDAT bomb");
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
        survived(&agent, &r, 200, baseline, what);
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
    survived(&agent, &r, 413, baseline, "1 GiB declared");
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
    survived(&agent, &r, 413, baseline, "1 GiB chunked");
}

/// Sends `bytes` one at a time, `gap` apart, until the agent answers or closes.
fn trickle(s: &mut std::net::TcpStream, bytes: &[u8], gap: std::time::Duration) {
    for b in bytes {
        s.set_nonblocking(true).unwrap();
        let answered =
            !matches!(s.peek(&mut [0]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        if answered || s.write_all(&[*b]).is_err() {
            return;
        }
        std::thread::sleep(gap);
    }
}

#[test]
fn trickled_heads_and_bodies_get_408_while_others_are_served() {
    let agent = Server::agent(&[("HEAD_TIMEOUT", "1"), ("BODY_TIMEOUT", "2")]);
    let gap = std::time::Duration::from_millis(100);
    let head = "POST /v1/offline-enrollment HTTP/1.1\r\nHost: t\r\nScenario: SELFIE\r\n\
                Content-Length: 100000\r\n\r\n";
    // Slow-loris clients: eight trickling their heads, eight their bodies.
    let loris: Vec<_> = (0..16)
        .map(|i| {
            let mut s = agent.connect();
            let head = head.to_string();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                if i % 2 == 0 {
                    trickle(&mut s, head.as_bytes(), gap);
                } else {
                    s.write_all(head.as_bytes()).unwrap();
                    trickle(&mut s, &[b'x'; 1000], gap);
                }
                (i % 2, started.elapsed(), read_response(&mut s))
            })
        })
        .collect();
    // Meanwhile, an ordinary client is served at once.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let enrolled = agent.enroll("SELFIE", &fixture("clean/obama.jpg"));
    assert_eq!(enrolled.status, 200);
    for l in loris {
        let (body, took, r) = l.join().unwrap();
        assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["detail"].as_str().unwrap().contains("in time"));
        // Cut off at its deadline: 1 s for a head, 2 s for a body.
        let limit = if body == 0 { 1.0 } else { 2.0 };
        let took = took.as_secs_f64();
        assert!(
            took > limit - 0.2 && took < limit + 3.0,
            "cut off after {took:.2} s"
        );
    }
}

#[test]
fn thousands_of_headers_or_an_endless_header_get_431() {
    let (agent, baseline) = warm_agent();
    let many: String = (0..5000).map(|i| format!("X-Header-{i}: v\r\n")).collect();
    let mut s = agent.connect();
    let _ = write!(s, "GET /health-check HTTP/1.1\r\nHost: t\r\n{many}\r\n");
    survived(
        &agent,
        &read_response(&mut s),
        431,
        baseline,
        "5000 headers",
    );
    // One header line that never ends: 431 once the head limit is reached.
    let mut s = agent.connect();
    let _ = write!(s, "GET /health-check HTTP/1.1\r\nX-Endless: ");
    let line = vec![b'a'; 1 << 20];
    let mut sent = 0;
    while sent < 1 << 30 && s.write_all(&line).is_ok() {
        sent += line.len();
    }
    assert!(sent < 1 << 30, "the agent read a gigabyte of header");
    survived(
        &agent,
        &read_response(&mut s),
        431,
        baseline,
        "endless header",
    );
}

#[test]
fn connections_beyond_the_cap_get_503_and_threads_stay_bounded() {
    let agent = Server::agent(&[("MAX_CONNECTIONS", "8"), ("HEAD_TIMEOUT", "30")]);
    assert_eq!(agent.request("GET", "/health-check", &[], b"").status, 200);
    let threads = agent.threads();
    // Eight idle connections take every place, once the health check's is free; 200 more
    // are turned away at once.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let idle: Vec<_> = (0..8).map(|_| agent.connect()).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut turned_away = 0;
    let mut others = Vec::new();
    for _ in 0..200 {
        let mut s = agent.connect();
        let r = read_response(&mut s);
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("Retry-After"), Some("1"));
        turned_away += 1;
        others.push(s);
    }
    assert_eq!(turned_away, 200);
    // One thread per open connection, and no more.
    let during = agent.threads();
    assert!(
        during <= threads + 8,
        "{threads} threads idle, {during} with 208 connections"
    );
    drop(idle);
    // Places free again as the idle clients leave.
    let mut served = false;
    for _ in 0..50 {
        if agent.request("GET", "/health-check", &[], b"").status == 200 {
            served = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(served, "the agent serves again once connections close");
    eprintln!("threads: {threads} idle, {during} with 8 connections open and 200 refused");
}
