//! The diagnosis: one data model ([`finding`]) and its renderings ([`render`]).

pub mod finding;
pub mod render;

pub use finding::{ChainLink, Code, Diagnosis, Finding, Program, Severity, Verdict};
