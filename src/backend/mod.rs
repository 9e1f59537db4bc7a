//! The reference backend: registers users from agents' signed server states, hands out
//! one-time challenges, binds devices that prove the biometric key, lists and deletes
//! them. Its server (`api`, `store`) is the `backend` feature; its client and messages,
//! which agents and devices use, are always built.

#[cfg(feature = "backend")]
pub mod api;
pub mod client;
pub mod messages;
#[cfg(feature = "backend")]
pub mod store;
