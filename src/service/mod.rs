//! What the agent and the backend have in common as HTTP services, without a transport:
//! one exchange on an `embedded-svc` connection, its routing and logging, the JSON
//! answers and errors, body limits and the API key. [`crate::http`] carries them.

pub mod api_key;
pub mod error;
pub mod exchange;
pub mod reply;

use embedded_svc::http::server::Connection;

/// The address a request came from, where the transport knows it.
pub trait Peer {
    fn peer(&self) -> Option<std::net::IpAddr>;
}

/// A service: answers one exchange at a time on a transport-free connection.
pub trait Service: Send + Sync + 'static {
    fn handle<C: Connection + Peer>(&self, conn: &mut C) -> Result<(), C::Error>;
}
