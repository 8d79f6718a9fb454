//! The `#!` parser (`inspect::script::parse`) on arbitrary file starts.
//!
//! Properties, from fs/binfmt_script.c `load_script` and fs/exec.c `prepare_binprm` as the
//! module documents them: no panic; only the first 256 bytes count; a short file reads as if
//! zero-filled to 256 bytes; "not a script" exactly when there is no `#!` at byte 0 (and the
//! sniffer agrees); the interpreter holds no NUL, newline, space or tab; the argument holds no
//! NUL or newline and does not start with a space or tab (it may end
//! with one: a NUL before the newline ends the C string after the trim); both fit the buffer.
#![no_main]

use execguard::inspect::script::{self, BINPRM_BUF_SIZE, Script};
use execguard::inspect::sniff::{self, Format};
use libfuzzer_sys::fuzz_target;

fn blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fuzz_target!(|buf: &[u8]| {
    let got = script::parse(buf);

    if let Some(head) = buf.get(..BINPRM_BUF_SIZE) {
        assert_eq!(
            script::parse(head),
            got,
            "bytes past 256 changed the result"
        );
    } else {
        let mut padded = buf.to_vec();
        padded.resize(BINPRM_BUF_SIZE, 0);
        assert_eq!(
            script::parse(&padded),
            got,
            "zero padding changed the result"
        );
    }

    let is_script = buf.starts_with(b"#!");
    assert_eq!(matches!(got, Script::NotScript), !is_script);
    if !buf.is_empty() {
        assert_eq!(
            sniff::sniff(buf, buf.len() as u64) == Format::Script,
            is_script
        );
    }

    match &got {
        Script::Script(s) => {
            assert!(
                !s.interpreter
                    .iter()
                    .any(|&c| c == 0 || c == b'\n' || blank(c)),
                "interpreter {:?}",
                s.interpreter
            );
            if let Some(arg) = &s.arg {
                assert!(!arg.iter().any(|&c| c == 0 || c == b'\n'), "arg {arg:?}");
                assert!(!arg.first().copied().is_some_and(blank), "arg {arg:?}");
            }
            let used = s.interpreter.len() + s.arg.as_ref().map_or(0, Vec::len);
            assert!(
                used < BINPRM_BUF_SIZE,
                "{used} bytes from a 256-byte buffer"
            );
        }
        Script::Invalid(e) => {
            let _ = e.to_string();
            assert_eq!(e.errno(), libc_enoexec());
        }
        Script::NotScript => {}
    }
});

/// ENOEXEC without a libc dependency in the fuzz crate.
fn libc_enoexec() -> i32 {
    8
}
