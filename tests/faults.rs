//! Faults around a running agent: stopped by SIGTERM in the middle of an enrolment.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::fixture;
use common::server::{Server, read_response};

#[test]
fn sigterm_finishes_the_enrolment_in_flight_refuses_new_ones_and_exits_0() {
    let mut agent = Server::agent(&[]);
    let image = fixture("clean/obama.jpg");
    let (first, rest) = image.split_at(image.len() / 2);
    // An enrolment in flight: half its body sent.
    let mut s = agent.connect();
    write!(
        s,
        "POST /v1/offline-enrollment HTTP/1.1\r\nHost: t\r\nScenario: SELFIE\r\n\
         Content-Length: {}\r\n\r\n",
        image.len()
    )
    .unwrap();
    s.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(agent.terminate(Duration::ZERO), None);

    // New connections are refused once the agent has seen the signal.
    let until = Instant::now() + Duration::from_secs(3);
    let refused = loop {
        match TcpStream::connect(agent.addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break true,
            _ if Instant::now() > until => break false,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert!(refused, "the agent still accepts connections after SIGTERM");

    // The enrolment in flight completes.
    s.write_all(rest).unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["keylessId"].is_string());
    assert_eq!(agent.terminate(Duration::from_secs(10)), Some(0));
    assert!(agent.logs("stopped"));
}
