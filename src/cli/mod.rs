//! The command line: the tolerant runc/crun scanner ([`scan`], [`flags`]) used in wrapper mode,
//! and execguard's own subcommands ([`own`]).

pub mod flags;
pub mod own;
pub mod scan;
