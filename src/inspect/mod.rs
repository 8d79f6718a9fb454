//! Bounded classifiers of an untrusted file's bytes: ELF ([`elf`]), `#!` scripts ([`script`])
//! and everything else ([`sniff`]).

pub mod elf;
pub mod script;
pub mod sniff;
