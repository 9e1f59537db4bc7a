//! The HTTP agent: a `tiny_http` server, a fixed pool of workers, routes on `embedded-svc`
//! traits. The server runs any [`Service`]; the agent's is [`App`].

pub mod admission;
pub mod api_key;
pub mod connection;
pub mod error;
pub mod exchange;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::enroll::Enroller;
use admission::Gate;
use connection::TinyConnection;
use embedded_svc::http::server::Connection;

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_pixels: u64,
}

/// Everything the routes share.
pub struct App {
    pub enroller: Arc<Enroller>,
    pub gate: Gate,
    pub limits: Limits,
    /// Where online enrolments are registered, if anywhere.
    pub backend: Option<crate::backend::client::Client>,
    /// Kiosk mode (`serve --kiosk`): the camera, its page and its enrolments.
    pub kiosk: Option<Arc<crate::kiosk::Kiosk>>,
    /// The key the enrolment endpoints require, if any.
    pub api_key: Option<api_key::ApiKey>,
}

/// The address a request came from, where the transport knows it.
pub trait Peer {
    fn peer(&self) -> Option<std::net::IpAddr>;
}

/// What a [`Server`] serves: one exchange at a time on a transport-free connection.
pub trait Service: Send + Sync + 'static {
    fn handle<C: Connection + Peer>(&self, conn: &mut C) -> Result<(), C::Error>;
}

impl Service for App {
    fn handle<C: Connection + Peer>(&self, conn: &mut C) -> Result<(), C::Error> {
        routes::handle(self, conn)
    }
}

/// A bound server; [`Server::run`] serves until the process ends.
pub struct Server<S: Service> {
    inner: Arc<tiny_http::Server>,
    app: Arc<S>,
    workers: usize,
}

impl<S: Service> Server<S> {
    /// Binds `addr` (port 0 picks a free port). `workers` threads handle requests.
    pub fn bind(
        addr: &str,
        app: S,
        workers: usize,
    ) -> Result<Server<S>, Box<dyn std::error::Error + Send + Sync>> {
        let inner = tiny_http::Server::http(addr)?;
        Ok(Server {
            inner: Arc::new(inner),
            app: Arc::new(app),
            workers: workers.max(1),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.server_addr().to_ip()
    }

    /// Serves requests on the worker pool; returns only if every worker stops.
    pub fn run(self) {
        let handles: Vec<_> = (0..self.workers)
            .map(|i| {
                let (server, app) = (Arc::clone(&self.inner), Arc::clone(&self.app));
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        while let Ok(request) = server.recv() {
                            let mut conn = TinyConnection::new(request);
                            if let Err(e) = app.handle(&mut conn) {
                                log::warn!("response not written: {e}");
                            }
                            if let Err(e) = conn.finish() {
                                log::debug!("client went away: {e}");
                            }
                        }
                    })
            })
            .filter_map(Result::ok)
            .collect();
        for h in handles {
            let _ = h.join();
        }
    }
}
