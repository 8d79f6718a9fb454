//! execguard's own configuration loader (`config::Config::from_slice`, what `Config::load`
//! runs on the bytes of the file).
//!
//! Properties: no panic; an accepted configuration is valid (timeout at least 1 ms, no empty
//! runtime, every silenced code known); a refusal names the file.
#![no_main]

use std::path::Path;

use execguard::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/etc/execguard/config.json");
    match Config::from_slice(data, path) {
        Ok(cfg) => {
            assert!(cfg.check_timeout_ms >= 1);
            assert_ne!(cfg.runtime.as_deref(), Some(""));
            assert_eq!(cfg.silenced().len(), cfg.silence.len(), "unknown code kept");
            let _ = cfg.mode.as_str();
        }
        Err(e) => {
            assert!(matches!(e, ConfigError::Invalid { .. }), "{e:?}");
            assert!(
                e.to_string().contains("/etc/execguard/config.json"),
                "message does not name the file: {e}"
            );
        }
    }
});
