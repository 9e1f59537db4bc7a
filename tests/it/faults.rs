//! Faults around a running agent: stopped by SIGTERM in the middle of an enrolment; short
//! of file descriptors.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::common::fixture;
use crate::common::server::{Server, read_response};

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

#[test]
fn with_few_file_descriptors_the_agent_takes_only_the_connections_it_can_serve() {
    // At most 80 open files: room for 5 connections beside what the agent keeps.
    let mut cmd = Server::command("serve", "127.0.0.1", &[], &[("HEAD_TIMEOUT", "30")]);
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 80,
                rlim_max: 80,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let agent = Server::start(cmd);
    assert!(agent.logs("MAX_CONNECTIONS lowered from 64 to 5"));
    // Idle connections take the five places; the others are turned away, and the agent
    // never runs out of descriptors.
    let idle: Vec<_> = (0..60).map(|_| agent.connect()).collect();
    assert_eq!(agent.request("GET", "/health-check", &[], b"").status, 503);
    drop(idle);
    let until = Instant::now() + Duration::from_secs(10);
    let served = loop {
        let r = agent.request("GET", "/health-check", &[], b"");
        if r.status == 200 || Instant::now() > until {
            break r.status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(served, 200, "the agent no longer serves");
    let r = agent.enroll("SELFIE", &fixture("clean/obama.jpg"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(!agent.log.lock().unwrap().contains("Too many open files"));
}
