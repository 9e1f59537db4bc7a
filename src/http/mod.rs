//! The HTTP transport: a bounded [`front`], a `tiny_http` server behind it, a fixed pool
//! of workers, each exchange handed to a [`Service`] on an `embedded-svc` connection.

pub mod connection;
pub mod front;

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::service::Service;
use connection::TinyConnection;

/// A bound server: the [`front`] on a TCP port, `tiny_http` behind it on a Unix socket in
/// a private directory, and a fixed pool of workers; [`Server::run`] serves until stopped.
pub struct Server<S: Service> {
    front: front::Front,
    inner: Arc<tiny_http::Server>,
    service: Arc<S>,
    workers: usize,
    _socket_dir: SocketDir,
}

impl<S: Service> Server<S> {
    /// Binds `addr` (port 0 picks a free port). `workers` threads handle requests.
    pub fn bind(
        addr: &str,
        service: S,
        workers: usize,
        settings: front::FrontSettings,
    ) -> Result<Server<S>, Box<dyn std::error::Error + Send + Sync>> {
        let listener = std::net::TcpListener::bind(addr)?;
        let dir = SocketDir::new()?;
        let socket = dir.0.join("http.sock");
        let inner = tiny_http::Server::from_listener(UnixListener::bind(&socket)?, None)?;
        Ok(Server {
            front: front::Front::new(listener, socket, settings),
            inner: Arc::new(inner),
            service: Arc::new(service),
            workers: workers.max(1),
            _socket_dir: dir,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.front.local_addr().ok()
    }

    /// Serves requests until `stop` is set; then refuses new connections and returns once
    /// the requests in flight have been answered.
    pub fn run(self, stop: &AtomicBool) {
        for i in 0..self.workers {
            let (server, service) = (Arc::clone(&self.inner), Arc::clone(&self.service));
            let spawned = std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || {
                    while let Ok(request) = server.recv() {
                        let mut conn = TinyConnection::new(request);
                        if let Err(e) = service.handle(&mut conn) {
                            log::warn!("response not written: {e}");
                        }
                        if let Err(e) = conn.finish() {
                            log::debug!("client went away: {e}");
                        }
                    }
                });
            if let Err(e) = spawned {
                log::error!("worker thread: {e}");
            }
        }
        self.front.run(stop);
    }
}

/// A directory only this user can enter, for the socket between the front and
/// `tiny_http`; removed when the server ends.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new() -> std::io::Result<SocketDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "recognize-agent.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        // Left by an earlier process with this id that was killed.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(SocketDir(path))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Set by SIGTERM or SIGINT once [`stop_on_signals`] has run.
static STOP: AtomicBool = AtomicBool::new(false);

/// Makes SIGTERM and SIGINT set the flag returned, for [`Server::run`].
pub fn stop_on_signals() -> &'static AtomicBool {
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    &STOP
}
