//! The integration tests, one binary: each module covers one face of the agent, from the
//! library's public API to the real binary over HTTP. `common` holds their fixtures and
//! the running-server helper.

mod common;

mod board;
mod capture;
mod cli;
mod decode;
mod faults;
mod filters;
mod http;
mod kiosk;
mod kiosk_browser;
mod layers;
mod limits;
mod liveness;
mod models;
mod openapi;
mod overload;
mod protect;
mod recovery;
mod routes;
mod tls;
