//! Template protection and the enrolment states.

pub mod states;
