//! Overload on loopback: four times `MAX_CONCURRENCY` clients enrolling without pause. Only
//! 200, 422 and 429 come back, no 5xx, no refused connection; threads stay bounded and
//! memory does not grow. `scripts/overload` runs the long version (60 s, then 10 000
//! requests) and prints the figures docs/security.md gives.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::fixture;
use crate::common::server::Server;

const MAX_CONCURRENCY: usize = 2;
const CLIENTS: usize = 4 * MAX_CONCURRENCY;
/// Room for every client and the connection each may still be closing.
const MAX_CONNECTIONS: usize = 2 * CLIENTS;

/// What a load run saw.
#[derive(Default)]
struct Seen {
    statuses: BTreeMap<u16, usize>,
    /// Milliseconds of each admitted request (200 or 422).
    admitted_ms: Vec<f64>,
    failures: Vec<String>,
    max_threads: u64,
}

/// One raw request: an enrolment of `body`, closing the connection after.
fn request(body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST /v1/offline-enrollment HTTP/1.1\r\nHost: load\r\nScenario: SELFIE\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// One exchange: the status, or what went wrong.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(raw).map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    std::str::from_utf8(&answer[..answer.len().min(12)])
        .ok()
        .and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .ok_or_else(|| format!("no status in {} bytes", answer.len()))
}

/// `CLIENTS` clients send `requests` round-robin, each as soon as its last was answered,
/// for `duration` and until `count` requests have been answered.
fn load(agent: &Server, requests: &[Vec<u8>], duration: Duration, count: usize) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (seen, sent, done) = (Arc::clone(&seen), Arc::clone(&sent), Arc::clone(&done));
            let (addr, requests) = (agent.addr, requests.to_vec());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= count && started.elapsed() >= duration {
                        break;
                    }
                    let t = Instant::now();
                    let result = exchange(addr, &requests[n % requests.len()]);
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    let mut seen = seen.lock().unwrap();
                    match result {
                        Ok(status) => {
                            *seen.statuses.entry(status).or_default() += 1;
                            if status == 200 || status == 422 {
                                seen.admitted_ms.push(ms);
                            }
                        }
                        Err(e) => seen.failures.push(e),
                    }
                }
            })
        })
        .collect();
    let mut max_threads = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        max_threads = max_threads.max(agent.threads());
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > duration + Duration::from_secs(900) {
            done.store(true, Ordering::Relaxed);
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    let mut seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    seen.max_threads = max_threads;
    seen
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs the load and checks what must hold; returns the figures.
fn overload(duration: Duration, count: usize) -> String {
    let agent = Server::agent(&[
        ("MAX_CONCURRENCY", &MAX_CONCURRENCY.to_string()),
        ("MAX_CONNECTIONS", &MAX_CONNECTIONS.to_string()),
        ("RUST_LOG", "warn,recognize_agent::http::front=debug"),
    ]);
    // An enrolment and a refusal (a face covered by a mask), alternately.
    let requests = [
        request(&fixture("clean/obama.jpg")),
        request(&fixture("occluded/obama_mask_blue.jpg")),
    ];
    // Warm, under the same load: every model has run, and the threads and the allocator
    // hold what this load needs.
    let warm = load(&agent, &requests, Duration::from_secs(5), 0);
    assert!(warm.failures.is_empty(), "{:?}", warm.failures);
    let (threads, rss_before) = (agent.threads(), agent.proc_status("VmRSS"));

    let started = Instant::now();
    let mut seen = load(&agent, &requests, duration, count);
    let took = started.elapsed().as_secs_f64();
    let rss_after = agent.proc_status("VmRSS");

    assert!(
        seen.failures.is_empty(),
        "{:?}",
        &seen.failures[..seen.failures.len().min(5)]
    );
    let unexpected: Vec<_> = seen
        .statuses
        .keys()
        .filter(|s| ![200, 422, 429].contains(*s))
        .collect();
    assert!(
        unexpected.is_empty(),
        "statuses {:?}; the agent logged:\n{}",
        seen.statuses,
        agent.log.lock().unwrap()
    );
    for status in [200, 422, 429] {
        assert!(
            seen.statuses.contains_key(&status),
            "no {status}: {:?}",
            seen.statuses
        );
    }
    // At most one thread per open connection in the front, and one in tiny_http's pool.
    assert!(
        seen.max_threads <= threads + 2 * MAX_CONNECTIONS as u64,
        "{threads} threads idle, {} under load",
        seen.max_threads
    );
    // Memory does not grow with the requests served (allocator noise aside).
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    let total: usize = seen.statuses.values().sum();
    seen.admitted_ms.sort_by(f64::total_cmp);
    let ms = &seen.admitted_ms;
    format!(
        "{CLIENTS} clients, MAX_CONCURRENCY {MAX_CONCURRENCY}, {took:.0} s: {total} requests, \
         statuses {:?}\nadmitted (200/422): p50 {:.1} ms, p99 {:.1} ms\n\
         RSS before {:.1} MiB, after {:.1} MiB; threads idle {threads}, at most {}",
        seen.statuses,
        percentile(ms, 0.5),
        percentile(ms, 0.99),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        seen.max_threads
    )
}

#[test]
fn overload_gets_only_answers_of_the_contract_and_bounded_resources() {
    eprintln!("{}", overload(Duration::from_secs(10), 0));
}

/// The long run: `scripts/overload`.
#[test]
#[ignore]
fn overload_for_a_minute_then_ten_thousand_requests() {
    println!("{}", overload(Duration::from_secs(60), 10_000));
}
