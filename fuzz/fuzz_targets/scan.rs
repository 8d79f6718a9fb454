//! The argv scanner (`cli::scan`): `strip_own_flags` then `scan`, as `main_entry` runs them.
//!
//! Input: the arguments (without argv[0]) separated by NUL bytes, as in /proc/PID/cmdline.
//!
//! Properties: no panic; `strip_own_flags` removes a leading run of execguard's own flags
//! (and the values of their two-token spellings) and nothing else, so what is left is the rest
//! of argv unchanged, and stripping again removes nothing; the indices `scan` reports point at
//! the tokens it reports; the container id comes after the subcommand; for `exec` and `ps`
//! everything after the id is kept verbatim.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use execguard::cli::scan::{self, OwnFlags};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let orig: Vec<OsString> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == 0)
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect()
    };

    let mut args = orig.clone();
    let own = scan::strip_own_flags(&mut args);
    let n = orig.len() - args.len();
    assert_eq!(args[..], orig[n..], "strip_own_flags changed what it kept");

    // Every dropped token is execguard's: a flag, or the value of a two-token flag.
    let mut i = 0;
    let mut version = false;
    while i < n {
        let b = orig[i].as_bytes();
        if b == b"--execguard-version" {
            version = true;
            i += 1;
        } else if b.starts_with(b"--execguard-runtime=") || b.starts_with(b"--execguard-config=") {
            i += 1;
        } else if b == b"--execguard-runtime" || b == b"--execguard-config" {
            i += 2;
        } else {
            panic!(
                "dropped {:?}, which is not execguard's (argv {orig:?})",
                orig[i]
            );
        }
    }
    // A two-token flag at the very end has no value: it may step one past.
    assert!(
        i == n || (i == n + 1 && n == orig.len()),
        "dropped a value alone: {orig:?}"
    );
    assert_eq!(own.version, version);

    let mut again = args.clone();
    assert_eq!(scan::strip_own_flags(&mut again), OwnFlags::default());
    assert_eq!(again, args, "a second strip removed {args:?}");

    let inv = scan::scan(&args);
    match (inv.subcommand_index, &inv.subcommand) {
        (Some(i), Some(s)) => assert_eq!(args.get(i), Some(s)),
        (None, None) => {}
        other => panic!("subcommand and its index disagree: {other:?}"),
    }
    match (inv.container_id_index, &inv.container_id) {
        (Some(i), Some(id)) => {
            assert_eq!(args.get(i), Some(id));
            assert!(
                inv.subcommand_index.is_some_and(|s| s < i),
                "id before the subcommand"
            );
            assert!(inv.trailing.len() < args.len() - i + 1);
            if inv.subcommand_is("exec") || inv.subcommand_is("ps") {
                assert_eq!(
                    inv.trailing[..],
                    args[i + 1..],
                    "exec/ps trailing not verbatim"
                );
            }
        }
        (None, None) => assert!(inv.trailing.is_empty()),
        other => panic!("container id and its index disagree: {other:?}"),
    }
    let _ = inv.subcommand_is("create");
});
