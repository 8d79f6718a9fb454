//! execguard's own configuration file (JSON).
//!
//! Where it comes from, first match wins: `--execguard-config=PATH`, `EXECGUARD_CONFIG`, else
//! `/etc/execguard/config.json`. An absent file means the defaults. Every key is optional; an
//! unknown key or a bad value is an error that names it, and the caller then runs with the
//! defaults in warn mode and says so. `config.example.json` at the top of the repository shows
//! every key with its default; a test keeps the two in step.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diagnosis::Code;

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/execguard/config.json";

/// The largest configuration file read (bytes).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// What execguard does with a diagnosis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Pure pass-through: no checks at all.
    Off,
    /// Check, explain, and always start the container.
    #[default]
    Warn,
    /// Check, explain, and refuse to start when an error is found.
    Enforce,
}

impl Mode {
    /// Parse an annotation value (`off`, `warn`, `enforce`).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(Mode::Off),
            "warn" => Some(Mode::Warn),
            "enforce" => Some(Mode::Enforce),
            _ => None,
        }
    }

    /// The word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Warn => "warn",
            Mode::Enforce => "enforce",
        }
    }
}

/// execguard's JSON-lines diagnosis log.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// File to append one JSON object per diagnosis to; `null` turns the log off.
    pub path: Option<PathBuf>,
    /// When the file reaches this size it is renamed to `<path>.1` (replacing an older one).
    pub max_bytes: u64,
    /// Also log diagnoses whose verdict is `ok`.
    pub include_ok: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            path: Some(PathBuf::from("/var/log/execguard/diagnoses.jsonl")),
            max_bytes: 10 * 1024 * 1024,
            include_ok: false,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The real runtime: a path, or a name looked up on PATH. `null`: `runc`, then `crun`.
    pub runtime: Option<String>,
    /// off, warn or enforce.
    pub mode: Mode,
    /// The longest the checks may take before execguard gives up and passes through.
    pub check_timeout_ms: u64,
    /// The diagnosis log.
    pub log: LogConfig,
    /// Finding codes never reported (and never enforced).
    pub silence: Vec<String>,
    /// Root of binfmt_misc on this host.
    pub binfmt_misc_root: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            runtime: None,
            mode: Mode::Warn,
            check_timeout_ms: 1000,
            log: LogConfig::default(),
            silence: Vec::new(),
            binfmt_misc_root: PathBuf::from("/proc/sys/fs/binfmt_misc"),
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than any sane configuration.
    #[error("config {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The JSON is malformed, has an unknown key or a bad value.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// serde's message, which names the key.
        message: String,
    },
}

impl Config {
    /// The silenced codes, parsed (validated by [`Config::load`]).
    pub fn silenced(&self) -> Vec<Code> {
        self.silence.iter().filter_map(|s| Code::parse(s)).collect()
    }

    /// Parse and validate configuration text.
    ///
    /// # Errors
    /// Malformed JSON, an unknown key, a bad value, or an unknown code in `silence`.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let serde_json::Value::Object(map) = doc else {
            return Err(invalid("the top level is not a JSON object".into()));
        };
        // Key by key, so a bad value is reported with the key that holds it.
        let mut cfg = Config::default();
        fn field<T: serde::de::DeserializeOwned>(
            key: &str,
            v: &serde_json::Value,
        ) -> Result<T, String> {
            serde_json::from_value(v.clone()).map_err(|e| format!("{key}: {e}"))
        }
        for (k, v) in &map {
            match k.as_str() {
                "runtime" => cfg.runtime = field(k, v).map_err(invalid)?,
                "mode" => cfg.mode = field(k, v).map_err(invalid)?,
                "check_timeout_ms" => cfg.check_timeout_ms = field(k, v).map_err(invalid)?,
                "silence" => cfg.silence = field(k, v).map_err(invalid)?,
                "binfmt_misc_root" => cfg.binfmt_misc_root = field(k, v).map_err(invalid)?,
                "log" => {
                    let serde_json::Value::Object(log) = v else {
                        return Err(invalid("log: expected an object".into()));
                    };
                    for (lk, lv) in log {
                        let key = format!("log.{lk}");
                        match lk.as_str() {
                            "path" => cfg.log.path = field(&key, lv).map_err(invalid)?,
                            "max_bytes" => cfg.log.max_bytes = field(&key, lv).map_err(invalid)?,
                            "include_ok" => {
                                cfg.log.include_ok = field(&key, lv).map_err(invalid)?
                            }
                            _ => return Err(invalid(format!("unknown key `{key}`"))),
                        }
                    }
                }
                _ => return Err(invalid(format!("unknown key `{k}`"))),
            }
        }
        if let Some(bad) = cfg.silence.iter().find(|s| Code::parse(s).is_none()) {
            return Err(invalid(format!("silence: unknown finding code `{bad}`")));
        }
        if cfg.check_timeout_ms == 0 {
            return Err(invalid("check_timeout_ms: must be at least 1".into()));
        }
        if cfg.runtime.as_deref() == Some("") {
            return Err(invalid("runtime: must not be empty".into()));
        }
        Ok(cfg)
    }

    /// Load the configuration from `path`; an absent file gives the defaults.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // Non-blocking and regular files only: a FIFO or device here must never stall a start.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let meta = file.metadata().map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Config::from_slice(&bytes, path)
    }
}

/// Which configuration file to read: the flag, then `EXECGUARD_CONFIG`, then the default.
pub fn config_path(flag: Option<&OsString>, env: Option<OsString>) -> PathBuf {
    flag.cloned()
        .or(env.filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::from_slice(s.as_bytes(), Path::new("/t/config.json"))
    }

    #[test]
    fn empty_object_is_the_defaults() {
        assert_eq!(parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn example_file_holds_every_key_with_its_default() {
        let text = include_str!("../config.example.json");
        assert_eq!(parse(text).unwrap(), Config::default());
        // Every top-level and log key appears in the example.
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for k in [
            "runtime",
            "mode",
            "check_timeout_ms",
            "log",
            "silence",
            "binfmt_misc_root",
        ] {
            assert!(v.get(k).is_some(), "config.example.json lacks {k}");
        }
        for k in ["path", "max_bytes", "include_ok"] {
            assert!(
                v["log"].get(k).is_some(),
                "config.example.json lacks log.{k}"
            );
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(r#"{"mdoe":"warn"}"#).unwrap_err().to_string();
        assert!(e.contains("mdoe"), "{e}");
        let e = parse(r#"{"log":{"size":1}}"#).unwrap_err().to_string();
        assert!(e.contains("size"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse(r#"{"mode":"loud"}"#).unwrap_err().to_string();
        assert!(e.contains("loud") && e.contains("mode:"), "{e}");
        let e = parse(r#"{"check_timeout_ms":"soon"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("check_timeout_ms:"), "{e}");
        let e = parse(r#"{"log":{"max_bytes":-1}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.max_bytes:"), "{e}");
        let e = parse(r#"{"silence":["arch-mismatch","nope"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        assert!(parse(r#"{"check_timeout_ms":0}"#).is_err());
        assert!(parse(r#"{"check_timeout_ms":"1"}"#).is_err());
        assert!(parse("[").is_err());
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            r#"{"mode":"enforce","runtime":"crun","silence":["emulated"],"log":{"path":null}}"#,
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.runtime.as_deref(), Some("crun"));
        assert_eq!(c.silenced(), vec![Code::Emulated]);
        assert_eq!(c.log.path, None);
    }

    #[test]
    fn absent_file_is_defaults_and_unreadable_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&d.path().join("none.json")).unwrap(),
            Config::default()
        );
        // A directory cannot be read as a file.
        assert!(Config::load(d.path()).is_err());
        // A FIFO is refused at once, never waited on.
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(Config::load(&fifo).is_err());
    }

    #[test]
    fn path_precedence() {
        let flag = OsString::from("/a");
        assert_eq!(
            config_path(Some(&flag), Some("/b".into())),
            PathBuf::from("/a")
        );
        assert_eq!(config_path(None, Some("/b".into())), PathBuf::from("/b"));
        assert_eq!(config_path(None, None), PathBuf::from(DEFAULT_PATH));
    }
}
