//! Template protection and the enrolment states: the embedding rotated by a secret the
//! client state holds, sealed to the backend in the server state.

pub mod issue;
pub mod keys;
pub mod rotation;
pub mod seal;
pub mod states;
