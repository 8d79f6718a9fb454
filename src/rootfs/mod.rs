//! Container paths. [`resolve`] is the only door into them.

pub mod resolve;
