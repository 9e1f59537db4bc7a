//! Starts the real `recognize-agent serve` (or `backend`) on an ephemeral port and talks
//! raw HTTP/1.1 to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// Servers not yet dropped. A shared server lives in a static, which Rust never drops, so
/// an exit handler kills what is left when the test process ends.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_running() {
    if let Ok(pids) = RUNNING.lock() {
        for pid in pids.iter() {
            // SAFETY: plain signal to a child process of ours.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// A server process of ours.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    /// Everything the server logged so far.
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the agent with extra environment variables.
    pub fn agent(env: &[(&str, &str)]) -> Server {
        Server::spawn("serve", env)
    }

    /// Starts `recognize-agent <command>` (a server) on a free loopback port.
    pub fn spawn(command: &str, env: &[(&str, &str)]) -> Server {
        Server::spawn_with(command, "127.0.0.1", &[], env)
    }

    /// Starts `recognize-agent <command> ARGS` on a free port of `host`.
    pub fn spawn_with(command: &str, host: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start(Server::command(command, host, args, env))
    }

    /// The command [`Server::spawn_with`] runs, for a test to adjust.
    pub fn command(command: &str, host: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recognize-agent"));
        cmd.args([command, "--host", host, "--port", "0"])
            .args(args)
            .env_remove("AUTH_SERVER_URL")
            .env_remove("AUTH_SERVER_API_KEY")
            .env("IDENTITY_KEY_FILE", super::identity_key())
            .env("SEALING_KEY_FILE", super::sealing_key_file())
            .env_remove("BACKEND_SEALING_KEY")
            .env(
                "RUST_LOG",
                "debug,tract_core=warn,tract_linalg=warn,tract_hir=warn,tract_onnx=warn",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts `cmd`, a server, and waits until it listens.
    pub fn start(mut cmd: Command) -> Server {
        static REAPER: Once = Once::new();
        // SAFETY: registers a handler that only signals processes.
        REAPER.call_once(|| unsafe {
            libc::atexit(kill_running);
        });
        let mut child = cmd.spawn().expect("start the server");
        RUNNING.lock().unwrap().push(child.id());
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("server output");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected: {line:?}"))
            .parse()
            .unwrap();
        // Bound to every interface: talk to it on loopback.
        let addr = match addr.ip().is_unspecified() {
            true => SocketAddr::from(([127, 0, 0, 1], addr.port())),
            false => addr,
        };
        Server { addr, child, log }
    }

    /// Whether the server logs `needle` within 10 s.
    pub fn logs(&self, needle: &str) -> bool {
        for _ in 0..200 {
            if self.log.lock().unwrap().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends one request (adding Host, Content-Length and Connection: close) and reads the response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.request_via(self.addr, method, path, headers, body)
    }

    /// [`Server::request`] through another of the server's addresses.
    pub fn request_via(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut s = connect(addr);
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer (and close) before the whole body is sent.
        let _ = s.write_all(body);
        read_response(&mut s)
    }

    /// A number from the server's `/proc/PID/status` (`VmHWM`, `VmRSS` in KiB; `Threads`).
    pub fn proc_status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// The server's peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status("VmHWM")
    }

    /// The server's thread count.
    pub fn threads(&self) -> u64 {
        self.proc_status("Threads")
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain signal to our child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    /// Sends SIGTERM and waits up to `patience` for the exit code (`None`: still running).
    pub fn terminate(&mut self, patience: Duration) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let until = std::time::Instant::now() + patience;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// Posts an image to an enrolment endpoint.
    pub fn post(&self, path: &str, scenario: &str, body: &[u8]) -> Response {
        self.request("POST", path, &[("Scenario", scenario)], body)
    }

    pub fn enroll(&self, scenario: &str, body: &[u8]) -> Response {
        self.post("/v1/offline-enrollment", scenario, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped as in service, so that it cleans up after itself; killed if it lingers.
        if self.terminate(Duration::from_secs(3)).is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Ok(mut pids) = RUNNING.lock() {
            pids.retain(|pid| *pid != self.child.id());
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A connection to `addr` that gives up reading after a minute.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads a whole response from a `Connection: close` exchange.
pub fn read_response(s: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
