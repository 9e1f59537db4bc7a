//! The front every connection meets first. `tiny_http` reads heads without bound, has no
//! read timeout and starts a thread per connection, so it only ever sees requests this
//! front has read whole, over a private Unix socket. The front:
//! - holds at most `max_connections` connections (`503` beyond);
//! - reads each request under deadlines (`408`), a bounded head (`431`) and body (`413`),
//!   and a memory budget shared by all bodies in flight (`503`);
//! - terminates TLS when configured;
//! - answers one request per connection, then closes;
//! - on SIGTERM, stops accepting and lets the requests in flight finish.

pub mod request;
mod timed;
#[cfg(feature = "tls")]
pub mod tls;

use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::service::error::{self, ApiError};
use request::{Failure, PEER_HEADER};
use timed::Timed;

/// How much the front lets a client take.
#[derive(Clone, Debug)]
pub struct FrontSettings {
    pub max_connections: usize,
    pub max_body_bytes: usize,
    /// Time from accepting a connection (TLS handshake included) to the end of its head.
    pub head_timeout: Duration,
    /// Time from the end of the head to the end of the body.
    pub body_timeout: Duration,
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl FrontSettings {
    fn serves_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

/// Largest bodies all connections may hold together while receiving them.
const BODIES_IN_FLIGHT: usize = 4;

/// Time allowed for the server behind to answer, and for the client to take the answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Front {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    settings: FrontSettings,
    /// The Unix socket `tiny_http` listens on.
    upstream: PathBuf,
    /// The whole `503` answer to a connection beyond the cap, made once.
    busy: Vec<u8>,
    open: AtomicUsize,
    budget: Mutex<usize>,
}

/// A client connection: plain, or TLS over it.
trait Stream: Read + Write + Send {
    fn set_deadline(&mut self, deadline: Instant);
    /// Ends the exchange cleanly (TLS: `close_notify`); see [`Timed::finish`].
    fn close(&mut self, request_read: bool);
}

impl Stream for Timed {
    fn set_deadline(&mut self, deadline: Instant) {
        Timed::set_deadline(self, deadline);
    }
    fn close(&mut self, request_read: bool) {
        self.finish(request_read);
    }
}

impl Front {
    /// A front on `listener` for the server listening on the Unix socket `upstream`.
    pub fn new(listener: TcpListener, upstream: PathBuf, mut settings: FrontSettings) -> Front {
        let fits = connections_within_file_limit();
        if settings.max_connections > fits {
            log::warn!(
                "MAX_CONNECTIONS lowered from {} to {fits}: the open-file limit allows no more",
                settings.max_connections
            );
            settings.max_connections = fits;
        }
        let budget = Mutex::new(BODIES_IN_FLIGHT * settings.max_body_bytes);
        Front {
            listener,
            shared: Arc::new(Shared {
                settings,
                upstream,
                busy: answer(
                    &ApiError::new(503, "too many connections").with_header("Retry-After", "1"),
                ),
                open: AtomicUsize::new(0),
                budget,
            }),
        }
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `stop` is set, then waits for those open to finish.
    pub fn run(self, stop: &AtomicBool) {
        if let Err(e) = self.listener.set_nonblocking(true) {
            log::error!("listener: {e}");
            return;
        }
        while !stop.load(Ordering::Relaxed) {
            if !readable(&self.listener, Duration::from_millis(200)) {
                continue;
            }
            match self.listener.accept() {
                Ok((tcp, _)) => self.admit(tcp),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    // Out of file descriptors, say: keep accepting once some are free.
                    log::warn!("accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        drop(self.listener);
        let s = &self.shared.settings;
        let grace = Instant::now() + s.head_timeout + s.body_timeout + ANSWER_TIMEOUT;
        while self.shared.open.load(Ordering::SeqCst) > 0 && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn admit(&self, tcp: TcpStream) {
        let shared = &self.shared;
        if shared.open.fetch_add(1, Ordering::SeqCst) >= shared.settings.max_connections {
            shared.open.fetch_sub(1, Ordering::SeqCst);
            log::debug!(
                "all {} connections taken: one turned away",
                shared.settings.max_connections
            );
            // A TLS answer needs a handshake; closing is the cheap refusal there.
            if !shared.settings.serves_tls() {
                turn_away(tcp, &shared.busy);
            }
            return;
        }
        let slot = Slot(Arc::clone(shared));
        let spawned = std::thread::Builder::new()
            .name("front".into())
            .stack_size(256 * 1024)
            .spawn(move || serve(tcp, &slot.0));
        if let Err(e) = spawned {
            log::warn!("no thread for a connection: {e}");
        }
    }
}

/// Descriptors a connection takes: the client's socket and both ends of the Unix socket.
const FILES_PER_CONNECTION: libc::rlim_t = 3;
/// Descriptors kept for everything else: listeners, standard streams, the database, calls
/// to the backend, the camera.
const FILES_KEPT: libc::rlim_t = 64;

/// How many connections the open-file limit leaves room for, after raising its soft
/// value to the hard one. `tiny_http` stops for good on a failed `accept`, so the front
/// must never take the descriptor its next connection needs.
fn connections_within_file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return usize::MAX;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                ..limit
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let room = limit.rlim_cur.saturating_sub(FILES_KEPT) / FILES_PER_CONNECTION;
    usize::try_from(room).unwrap_or(usize::MAX).max(1)
}

/// One open connection; dropping it frees its place.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits up to `timeout` for a connection to accept.
fn readable(listener: &TcpListener, timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, timeout.as_millis() as libc::c_int) > 0 }
}

/// Answers `busy` without waiting on the client, when every place is taken.
fn turn_away(mut tcp: TcpStream, busy: &[u8]) {
    if tcp.set_nonblocking(true).is_ok() {
        // Take what the request sent already, so that closing does not reset the answer.
        let _ = tcp.read(&mut [0; 16 * 1024]);
        let _ = tcp.write_all(busy);
        let _ = tcp.shutdown(std::net::Shutdown::Write);
    }
}

/// Serves one connection: one request read whole, passed on, its answer sent back.
fn serve(tcp: TcpStream, shared: &Shared) {
    let s = &shared.settings;
    let peer = tcp.peer_addr().ok().map(|a| a.ip());
    let timed = Timed::new(tcp, Instant::now() + s.head_timeout);
    let mut client: Box<dyn Stream> = match open(timed, s) {
        Some(c) => c,
        None => return,
    };
    let received = receive(client.as_mut(), shared);
    // Only a client refused before its request was read whole may still be sending.
    let request_read = received.is_ok();
    let answer = match received {
        Ok((head, body, reservation)) => {
            pass_on(&shared.upstream, &head, (body, reservation), peer)
        }
        Err(Failure::Refused(e)) => answer(&e),
        Err(Failure::TimedOut) => answer(&ApiError::new(
            408,
            format!(
                "the request did not arrive in time (head {} s, body {} s)",
                s.head_timeout.as_secs_f32(),
                s.body_timeout.as_secs_f32()
            ),
        )),
        Err(Failure::Gone) => return,
    };
    client.set_deadline(Instant::now() + SEND_TIMEOUT);
    if client
        .write_all(&answer)
        .and_then(|_| client.flush())
        .is_ok()
    {
        client.close(request_read);
    }
}

/// The client's stream: TLS (after its handshake) when configured, else plain.
fn open(timed: Timed, settings: &FrontSettings) -> Option<Box<dyn Stream>> {
    #[cfg(feature = "tls")]
    if let Some(config) = &settings.tls {
        return tls::accept(timed, Arc::clone(config));
    }
    let _ = settings;
    Some(Box::new(timed))
}

/// Reads one request: its head as passed on, and its body with the memory it holds.
fn receive<'a>(
    client: &mut dyn Stream,
    shared: &'a Shared,
) -> Result<(Vec<u8>, Vec<u8>, Reservation<'a>), Failure> {
    let s = &shared.settings;
    let head = request::read_head(client)?;
    // Refused before the client is told to go on.
    head.framing.length_within(s.max_body_bytes)?;
    client.set_deadline(Instant::now() + s.body_timeout);
    if head.expect_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut reservation = Reservation { shared, bytes: 0 };
    let mut input = BufReader::new(head.rest.as_slice().chain(client));
    let body = request::read_body(&mut input, head.framing, s.max_body_bytes, &mut |n| {
        reservation.grow(n)
    })?;
    Ok((head.forward, body, reservation))
}

/// Bytes of the shared body budget a request holds, given back when dropped.
struct Reservation<'a> {
    shared: &'a Shared,
    bytes: usize,
}

impl Reservation<'_> {
    fn grow(&mut self, n: usize) -> bool {
        let mut left = self
            .shared
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *left < n {
            return false;
        }
        *left -= n;
        self.bytes += n;
        true
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        *self
            .shared
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += self.bytes;
    }
}

/// Passes a request on to the server behind and returns its answer.
fn pass_on(
    upstream: &Path,
    head: &[u8],
    (body, reservation): (Vec<u8>, Reservation<'_>),
    peer: Option<IpAddr>,
) -> Vec<u8> {
    let unavailable = |e: io::Error| {
        log::error!("the server behind the front: {e}");
        answer(&ApiError::new(503, "the server could not take the request"))
    };
    let mut conn = match UnixStream::connect(upstream) {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let _ = conn.set_read_timeout(Some(ANSWER_TIMEOUT));
    let mut framing = format!("Content-Length: {}\r\nConnection: close\r\n", body.len());
    if let Some(ip) = peer {
        framing += &format!("{PEER_HEADER}: {ip}\r\n");
    }
    framing += "\r\n";
    // The server may answer without reading the body (a 401, say): its answer counts.
    let _ = [head, framing.as_bytes(), &body]
        .iter()
        .try_for_each(|part| conn.write_all(part));
    drop((body, reservation));
    let mut answer = Vec::new();
    match conn.read_to_end(&mut answer) {
        Ok(_) if !answer.is_empty() => closing(answer),
        Ok(_) => unavailable(io::Error::other("closed without an answer")),
        Err(e) => unavailable(e),
    }
}

/// `answer` saying that the connection closes after it (`tiny_http` leaves out the
/// `Connection` header), so that clients do not keep it for another request.
fn closing(mut answer: Vec<u8>) -> Vec<u8> {
    if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
        answer.splice(end + 2..end + 2, b"Connection: close\r\n".iter().copied());
    }
    answer
}

/// A complete HTTP response for an error, as the routes would answer it.
fn answer(e: &ApiError) -> Vec<u8> {
    let (headers, body) = e.answer();
    let mut out = format!("HTTP/1.1 {} {}\r\n", e.status, error::title(e.status));
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [out.as_bytes(), &body].concat()
}
