//! The reference backend: registers users from agents' signed and sealed server states,
//! hands out one-time challenges, matches a new device's protected template against the
//! user's and binds it, lists and deletes devices and users. Its server (`api`, `store`) is the `backend` feature; its client and messages,
//! which agents and devices use, are always built.

#[cfg(feature = "backend")]
pub mod api;
pub mod client;
pub mod matching;
pub mod messages;
#[cfg(feature = "backend")]
pub mod store;
