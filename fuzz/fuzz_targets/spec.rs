//! The OCI spec readers (`spec::from_slice` for config.json, `spec::process_from_slice` for
//! `exec --process`), on arbitrary bytes.
//!
//! Byte 0 picks the reader (even: config.json, odd: process file). Properties: no panic;
//! relative paths are anchored to the bundle (the root of an accepted spec is absolute); a
//! process file always yields a process.
#![no_main]

use std::path::Path;

use execguard::spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, json)) = data.split_first() else {
        return;
    };
    if sel % 2 == 0 {
        if let Ok(view) = spec::from_slice(json, Path::new("/run/bundle")) {
            assert!(view.root.is_absolute(), "root {:?}", view.root);
            let _ = view.env_path();
            let _ = view.env_var("HOME");
            for m in &view.mounts {
                let _ = m.is_bind();
            }
        }
    } else if let Ok(view) = spec::process_from_slice(json) {
        assert!(view.has_process, "a process file without a process");
        let _ = view.env_path();
    }
});
