//! Template protection and the enrolment states.

pub mod bch;
pub mod keys;
pub mod sketch;
pub mod states;
pub mod template;
