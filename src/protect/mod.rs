//! Template protection and the enrolment states.

pub mod bch;
pub mod states;
