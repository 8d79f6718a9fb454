//! Kernel-exact parsing of a `#!` line.
//!
//! This module owns one question: given the first bytes of a file, what interpreter path and
//! optional argument would the kernel's script loader extract, or why would it refuse. It mirrors
//! `load_script` in fs/binfmt_script.c (the parser rewritten for Linux 5.1) byte for byte:
//!
//! - only `BINPRM_BUF_SIZE` (256) bytes are looked at; past the end of a shorter file the kernel's
//!   buffer holds zeros (fs/exec.c `prepare_binprm` zero-fills it), and so does this parser;
//! - the line ends at the first `'\n'` found by `strnchr`, which also stops at a NUL;
//! - without a newline, the interpreter must be followed by a space, tab or NUL inside the buffer,
//!   otherwise the path could be cut and the kernel refuses (ENOEXEC);
//! - trailing spaces and tabs are trimmed; `'\r'` is *not* whitespace to the kernel, so a CRLF
//!   line keeps its CR inside the interpreter or the argument;
//! - everything after the first space/tab run is one single argument.
//!
//! Following the interpreter (which may itself be a script) is the caller's job.

/// Size of the kernel's `bprm->buf` (include/uapi/linux/binfmts.h `BINPRM_BUF_SIZE`).
pub const BINPRM_BUF_SIZE: usize = 256;

/// A `#!` line as the kernel splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    /// Interpreter path, exactly the bytes the kernel passes to `open_exec`. May be empty (a file
    /// that is only `"#!"` with no newline): the kernel then fails with ENOENT.
    pub interpreter: Vec<u8>,
    /// The single optional argument (everything after the first run of spaces/tabs, trailing
    /// blanks trimmed). May be empty: `"#!/bin/sh \0"` passes an empty argument.
    pub arg: Option<Vec<u8>>,
    /// No `'\n'` (and no NUL) within the 256-byte buffer: the argument may have been cut.
    pub line_truncated: bool,
    /// The line ended in `"\r\n"` (trailing blanks between the CR and the newline aside) and the
    /// CR is the last byte of the interpreter or of the argument.
    pub crlf: bool,
}

/// Why the kernel's script loader refuses a file that starts with `"#!"` (both are ENOEXEC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShebangError {
    /// `"#!"` followed only by spaces/tabs before the newline (or in the whole buffer).
    NoInterpreter,
    /// No newline in the buffer and no space, tab or NUL after the interpreter path: the path
    /// may be cut, so the kernel refuses to use it.
    InterpreterTruncated,
}

impl ShebangError {
    /// The errno `execve` returns for this error.
    pub fn errno(&self) -> i32 {
        libc::ENOEXEC
    }
}

impl std::fmt::Display for ShebangError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShebangError::NoInterpreter => f.write_str("the #! line names no interpreter"),
            ShebangError::InterpreterTruncated => write!(
                f,
                "the #! line has no end within the first {BINPRM_BUF_SIZE} bytes and the interpreter path may be cut"
            ),
        }
    }
}

/// What the script loader makes of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// No `"#!"` at byte 0: not a script to the kernel.
    NotScript,
    /// Starts with `"#!"` but the kernel refuses the line.
    Invalid(ShebangError),
    /// A line the kernel accepts.
    Script(Shebang),
}

fn spacetab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// fs/binfmt_script.c `next_non_spacetab`: first index in `first..=last` that is not a space/tab.
fn next_non_spacetab(buf: &[u8; BINPRM_BUF_SIZE], first: usize, last: usize) -> Option<usize> {
    (first..=last).find(|&i| buf.get(i).is_some_and(|&c| !spacetab(c)))
}

/// fs/binfmt_script.c `next_terminator`: first index in `first..=last` that is a space, tab or NUL.
fn next_terminator(buf: &[u8; BINPRM_BUF_SIZE], first: usize, last: usize) -> Option<usize> {
    (first..=last).find(|&i| buf.get(i).is_some_and(|&c| spacetab(c) || c == 0))
}

/// The C string starting at `start`, ending at `end` (exclusive) or at the first NUL before it.
fn c_string(buf: &[u8; BINPRM_BUF_SIZE], start: usize, end: usize) -> Vec<u8> {
    let bytes = buf.get(start..end).unwrap_or_default();
    let len = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    bytes.get(..len).unwrap_or_default().to_vec()
}

/// Parses the `#!` line like fs/binfmt_script.c `load_script`.
///
/// `buf` is the first bytes of the file; only the first 256 are looked at. Pass the whole file
/// when it is shorter than that, since the end of the file decides how a line without newline
/// is read.
pub fn parse(buf: &[u8]) -> Script {
    // fs/exec.c: bprm->buf is zero-filled, then up to BINPRM_BUF_SIZE bytes are read into it.
    let mut kbuf = [0u8; BINPRM_BUF_SIZE];
    let n = buf.len().min(BINPRM_BUF_SIZE);
    if let (Some(dst), Some(src)) = (kbuf.get_mut(..n), buf.get(..n)) {
        dst.copy_from_slice(src);
    }

    if kbuf[0] != b'#' || kbuf[1] != b'!' {
        return Script::NotScript;
    }

    let buf_end = BINPRM_BUF_SIZE - 1;
    // strnchr(bprm->buf, sizeof(bprm->buf), '\n'), which gives up at the first NUL.
    let newline = kbuf
        .iter()
        .take_while(|&&c| c != 0)
        .position(|&c| c == b'\n');
    let line_truncated = newline.is_none() && !kbuf.contains(&0);

    let mut i_end = match newline {
        Some(nl) => nl,
        None => {
            let Some(first) = next_non_spacetab(&kbuf, 2, buf_end) else {
                // "Entire buf is spaces/tabs".
                return Script::Invalid(ShebangError::NoInterpreter);
            };
            if next_terminator(&kbuf, first, buf_end).is_none() {
                return Script::Invalid(ShebangError::InterpreterTruncated);
            }
            buf_end
        }
    };

    // Trim any trailing spaces/tabs from i_end. buf[0] is '#', so this stops at index 1 at the
    // latest.
    while i_end > 0 && kbuf.get(i_end - 1).copied().is_some_and(spacetab) {
        i_end -= 1;
    }

    // Skip over leading spaces/tabs; "No interpreter name found".
    let i_name = match next_non_spacetab(&kbuf, 2, i_end) {
        Some(i) if i != i_end => i,
        _ => return Script::Invalid(ShebangError::NoInterpreter),
    };

    // Is there an optional argument?
    let i_sep = next_terminator(&kbuf, i_name, i_end);
    let i_arg = match i_sep {
        Some(sep) if kbuf.get(sep).is_some_and(|&c| c != 0) => next_non_spacetab(&kbuf, sep, i_end),
        _ => None,
    };

    // The kernel writes NUL at i_end, and at i_sep when there is an argument; the strings are
    // then read as C strings.
    let (interpreter, arg, last_end) = match (i_arg, i_sep) {
        (Some(arg_start), Some(sep)) => {
            let arg = c_string(&kbuf, arg_start, i_end);
            let end = arg_start + arg.len();
            (c_string(&kbuf, i_name, sep), Some(arg), end)
        }
        _ => {
            let interp = c_string(&kbuf, i_name, i_end);
            let end = i_name + interp.len();
            (interp, None, end)
        }
    };

    // The CR of a CRLF line survives when it is the last byte kept before the newline.
    let crlf =
        newline.is_some() && last_end == i_end && i_end > 0 && kbuf.get(i_end - 1) == Some(&b'\r');

    Script::Script(Shebang {
        interpreter,
        arg,
        line_truncated,
        crlf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(buf: &[u8]) -> Shebang {
        match parse(buf) {
            Script::Script(s) => s,
            other => panic!("expected a script for {buf:?}, got {other:?}"),
        }
    }

    #[test]
    fn plain_interpreter() {
        let s = ok(b"#!/bin/sh\necho hi\n");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg, None);
        assert!(!s.line_truncated);
        assert!(!s.crlf);
    }

    #[test]
    fn env_with_two_words_is_one_argument() {
        let s = ok(b"#!/usr/bin/env python3 -u\nprint(1)\n");
        assert_eq!(s.interpreter, b"/usr/bin/env");
        assert_eq!(s.arg.as_deref(), Some(&b"python3 -u"[..]));
    }

    #[test]
    fn leading_and_trailing_blanks_and_tabs() {
        let s = ok(b"#! \t/bin/bash\t -e \t \nx\n");
        assert_eq!(s.interpreter, b"/bin/bash");
        assert_eq!(s.arg.as_deref(), Some(&b"-e"[..]));
        let s = ok(b"#!/bin/sh\t\t\n");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg, None);
        let s = ok(b"#!/bin/sh\t-x\n");
        assert_eq!(s.arg.as_deref(), Some(&b"-x"[..]));
    }

    #[test]
    fn crlf_without_argument_keeps_cr_in_interpreter() {
        let s = ok(b"#!/bin/sh\r\necho\r\n");
        assert_eq!(s.interpreter, b"/bin/sh\r");
        assert_eq!(s.arg, None);
        assert!(s.crlf);
    }

    #[test]
    fn crlf_with_argument_keeps_cr_in_argument() {
        let s = ok(b"#!/bin/bash -e\r\n");
        assert_eq!(s.interpreter, b"/bin/bash");
        assert_eq!(s.arg.as_deref(), Some(&b"-e\r"[..]));
        assert!(s.crlf);
        // A space before the CR: the CR alone becomes the argument.
        let s = ok(b"#!/bin/sh \r\n");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg.as_deref(), Some(&b"\r"[..]));
        assert!(s.crlf);
        // Blanks between CR and newline are trimmed, the CR stays.
        let s = ok(b"#!/bin/sh\r \n");
        assert_eq!(s.interpreter, b"/bin/sh\r");
        assert!(s.crlf);
    }

    #[test]
    fn cr_cut_off_by_nul_is_not_crlf() {
        let s = ok(b"#!/bin/sh\0\r\n");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert!(!s.crlf);
        // strnchr stopped at the NUL, so to the kernel there is no newline at all.
        assert!(!s.line_truncated);
    }

    #[test]
    fn nul_inside_line_ends_interpreter() {
        let s = ok(b"#!/bin/sh\0 -x\n");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg, None);
        // NUL inside the argument cuts it.
        let s = ok(b"#!/bin/sh -x\0-y\n");
        assert_eq!(s.arg.as_deref(), Some(&b"-x"[..]));
        // A NUL right after the separator yields an empty argument.
        let s = ok(b"#!/bin/sh \0-y\n");
        assert_eq!(s.arg.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn no_newline_short_file() {
        // The file ends: the zero padding terminates the path.
        let s = ok(b"#!/bin/sh");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg, None);
        assert!(!s.line_truncated);
        // Trailing blank without newline: the kernel trims only at the buffer's end, so the
        // argument is the empty string in the padding.
        let s = ok(b"#!/bin/sh ");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn bang_alone_and_blanks_only() {
        // "#!" then end of file: the interpreter is the empty string (open_exec fails: ENOENT).
        let s = ok(b"#!");
        assert_eq!(s.interpreter, b"");
        assert_eq!(s.arg, None);
        let s = ok(b"#!   ");
        assert_eq!(s.interpreter, b"");
        // With a newline the kernel finds no name: ENOEXEC.
        assert_eq!(parse(b"#!\n"), Script::Invalid(ShebangError::NoInterpreter));
        assert_eq!(
            parse(b"#!   \n"),
            Script::Invalid(ShebangError::NoInterpreter)
        );
        assert_eq!(
            parse(b"#!\t \t\nfoo"),
            Script::Invalid(ShebangError::NoInterpreter)
        );
        // The whole buffer is blanks: ENOEXEC.
        let mut v = b"#!".to_vec();
        v.resize(300, b' ');
        assert_eq!(parse(&v), Script::Invalid(ShebangError::NoInterpreter));
        assert_eq!(ShebangError::NoInterpreter.errno(), libc::ENOEXEC);
    }

    #[test]
    fn long_line_cut_argument() {
        // 300-byte line: interpreter fits, argument is cut at byte 255 (the kernel writes NUL at
        // buf_end, so the 256th byte is lost too).
        let mut v = b"#!/usr/bin/perl -w".to_vec();
        while v.len() < 300 {
            v.push(b'x');
        }
        v.push(b'\n');
        let s = ok(&v);
        assert_eq!(s.interpreter, b"/usr/bin/perl");
        assert!(s.line_truncated);
        let arg = s.arg.unwrap_or_default();
        assert_eq!(arg.len(), 255 - 16);
        assert!(arg.starts_with(b"-wxxx"));
    }

    #[test]
    fn long_interpreter_path_is_refused() {
        let mut v = b"#!/".to_vec();
        v.resize(300, b'a');
        v.push(b'\n');
        assert_eq!(
            parse(&v),
            Script::Invalid(ShebangError::InterpreterTruncated)
        );
        // Blanks before the path do not help.
        let mut v = b"#!   /".to_vec();
        v.resize(256, b'a');
        assert_eq!(
            parse(&v),
            Script::Invalid(ShebangError::InterpreterTruncated)
        );
        // A space at the very last byte is enough for the kernel.
        let mut v = b"#!/".to_vec();
        v.resize(255, b'a');
        v.push(b' ');
        let s = ok(&v);
        assert_eq!(s.interpreter.len(), 253);
        assert_eq!(s.arg, None);
        assert!(s.line_truncated);
    }

    #[test]
    fn newline_at_byte_255_and_256() {
        // Newline is the last byte of the buffer: the line is complete.
        let mut v = b"#!/bin/sh -".to_vec();
        v.resize(255, b'e');
        v.push(b'\n');
        let s = ok(&v);
        assert!(!s.line_truncated);
        assert_eq!(s.arg.unwrap_or_default().len(), 255 - 10);
        // Newline just outside the buffer is not seen.
        let mut v = b"#!/bin/sh -".to_vec();
        v.resize(256, b'e');
        v.push(b'\n');
        let s = ok(&v);
        assert!(s.line_truncated);
        assert_eq!(s.arg.unwrap_or_default().len(), 255 - 10);
    }

    #[test]
    fn not_scripts() {
        assert_eq!(parse(b""), Script::NotScript);
        assert_eq!(parse(b"#"), Script::NotScript);
        assert_eq!(parse(b"!#/bin/sh\n"), Script::NotScript);
        assert_eq!(parse(b"\n#!/bin/sh\n"), Script::NotScript);
        assert_eq!(parse(b"\xef\xbb\xbf#!/bin/sh\n"), Script::NotScript);
        assert_eq!(parse(b"# !/bin/sh\n"), Script::NotScript);
    }

    #[test]
    fn only_first_line_counts() {
        let s = ok(b"#!/bin/sh\n#!/bin/bash -x\n");
        assert_eq!(s.interpreter, b"/bin/sh");
        assert_eq!(s.arg, None);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn shebang_results_are_sane(tail in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'\t'), Just(b'\n'), Just(b'\r'), Just(0u8), Just(b'a'), Just(b'/')],
            0..300,
        )) {
            let mut v = b"#!".to_vec();
            v.extend_from_slice(&tail);
            if let Script::Script(s) = parse(&v) {
                // The kernel's strings never contain NUL, newline, and the interpreter no blank.
                prop_assert!(!s.interpreter.iter().any(|&c| c == 0 || c == b'\n' || spacetab(c)));
                if let Some(arg) = &s.arg {
                    prop_assert!(!arg.iter().any(|&c| c == 0 || c == b'\n'));
                    prop_assert!(!arg.first().copied().is_some_and(spacetab));
                }
                prop_assert!(s.interpreter.len() + s.arg.as_ref().map_or(0, Vec::len) < BINPRM_BUF_SIZE);
            }
        }
    }
}
