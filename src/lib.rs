//! recognize-agent: enrol a person from a face image into privacy-preserving
//! account-recovery states, on the PingOne Recognize Agent contract.
//!
//! Data flows one way: request ([`http`], [`agent`]) → image ([`vision::decode`]) → faces
//! ([`vision::detect`]) → filters ([`vision::filters`]) → template ([`vision::embed`])
//! → states ([`protect::states`]).

pub mod agent;
pub mod backend;
pub mod capture;
pub mod clock;
pub mod config;
pub mod contract;
pub mod enroll;
pub mod frames;
pub mod http;
pub mod kiosk;
pub mod protect;
pub mod recovery;
pub mod service;
pub mod vision;
