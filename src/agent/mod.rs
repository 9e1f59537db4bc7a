//! The agent as a service: its routes (the contract's endpoints, the kiosk's under
//! `/kiosk`), the admission gate behind `429`, online registration with the backend.

pub mod admission;
pub mod routes;

use std::sync::Arc;

use embedded_svc::http::server::Connection;

use crate::backend::client::Client;
use crate::enroll::Enroller;
use crate::kiosk::Kiosk;
use crate::service::api_key::ApiKey;
use crate::service::{Peer, Service};
use admission::Gate;

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_pixels: u64,
}

/// The agent: everything its routes share.
pub struct Agent {
    pub enroller: Arc<Enroller>,
    pub gate: Gate,
    pub limits: Limits,
    /// Where online enrolments are registered, if anywhere.
    pub backend: Option<Client>,
    /// Kiosk mode (`serve --kiosk`): the camera, its page and its enrolments.
    pub kiosk: Option<Arc<Kiosk>>,
    /// The key the enrolment endpoints require, if any.
    pub api_key: Option<ApiKey>,
}

impl Service for Agent {
    fn handle<C: Connection + Peer>(&self, conn: &mut C) -> Result<(), C::Error> {
        routes::handle(self, conn)
    }
}
