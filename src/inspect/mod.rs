//! Bounded classifiers of an untrusted file's bytes: ELF ([`elf`]), its dynamic section
//! ([`dynamic`]), `#!` scripts ([`script`]), glibc's library cache ([`ldcache`]) and everything
//! else ([`sniff`]).

pub mod dynamic;
pub mod elf;
pub mod ldcache;
pub mod script;
pub mod sniff;
