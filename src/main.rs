//! The execguard binary: everything lives in the library.
//!
//! `no_main`: every runtime call pays execguard's start-up, and std's `main` shim costs work
//! execguard does not need before it execs the runtime (the main thread's stack-guard set-up
//! reads /proc/self/maps; SIGPIPE is set to ignored and would then have to be put back). The
//! library ignores SIGPIPE itself on the paths that write, and gives the runtime the
//! disposition execguard inherited.
#![no_main]

use std::io::Write;

/// The C entry point; argv and the environment are read through std as usual.
#[unsafe(no_mangle)]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    let code = execguard::main_entry();
    let _ = std::io::stdout().flush();
    code
}
