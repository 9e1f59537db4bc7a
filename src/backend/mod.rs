//! The reference backend: registers users from agents' signed server states, hands out
//! one-time challenges, binds devices that prove the biometric key, lists and deletes
//! them.

pub mod api;
pub mod client;
pub mod messages;
pub mod store;
