//! Finding the real runtime and handing over to it.
//!
//! Order (first match wins): `--execguard-runtime=PATH`, `EXECGUARD_RUNTIME`, the name execguard
//! was invoked by (`execguard-crun` means `crun`: containerd's `BinaryName` carries no arguments),
//! the config file's `runtime`, else `runc` then `crun` on PATH. A candidate that is execguard
//! itself (same device and inode as /proc/self/exe) is skipped. A loop through wrapper scripts
//! (dockerd writes one for `runtimeArgs`) is caught by [`MARKER`], which execguard sets in the
//! runtime's environment only; the container's environment comes from config.json.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// SIGPIPE's inherited disposition, saved while execguard ignores it (0: untouched).
static SAVED_SIGPIPE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Ignore SIGPIPE while execguard writes (a closed stderr or log pipe must not kill a
/// start); [`restore_sigpipe`] gives the runtime what execguard inherited.
pub fn ignore_sigpipe() {
    use std::sync::atomic::Ordering;
    // SAFETY: changing a signal disposition; the old one is kept for the runtime.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    if old != libc::SIG_ERR && SAVED_SIGPIPE.load(Ordering::Relaxed) == 0 {
        // Stored +1 so that SIG_DFL (0) can be told from "never saved".
        SAVED_SIGPIPE.store(old + 1, Ordering::Relaxed);
    }
}

/// Put back the SIGPIPE disposition execguard inherited, if it changed it (async-signal-safe:
/// also called between fork and exec).
pub fn restore_sigpipe() {
    let saved = SAVED_SIGPIPE.load(std::sync::atomic::Ordering::Relaxed);
    if saved != 0 {
        // SAFETY: restoring the inherited disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, saved - 1);
        }
    }
}

/// Environment variable set for the real runtime: how many execguard calls lead to it.
/// A runtime's hooks inherit the runtime's environment, so a hook that calls execguard sees
/// 1 (and execguard then only passes through: the outer call did the checks); a wrapper
/// script that leads back to execguard makes it grow, and [`MAX_NESTING`] stops the loop.
pub const MARKER: &str = "EXECGUARD_DELEGATED";

/// The nesting at which execguard calls it a loop.
pub const MAX_NESTING: u32 = 3;

/// How many execguard calls lead to this one (0 when called by an engine or a person).
pub fn nesting() -> u32 {
    std::env::var_os(MARKER)
        .map(|v| v.to_str().and_then(|s| s.parse().ok()).unwrap_or(1))
        .unwrap_or(0)
}

/// The marker value to hand to the runtime.
pub fn marker_value() -> String {
    nesting().saturating_add(1).to_string()
}

/// PATH used when the environment has none (the usual root PATH on Debian).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where a runtime choice came from (for `--execguard-version` and error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--execguard-runtime=`.
    Flag,
    /// `EXECGUARD_RUNTIME`.
    Env,
    /// The name execguard was invoked by.
    InvokedName,
    /// The config file.
    Config,
    /// The default search on PATH.
    DefaultSearch,
}

impl Source {
    /// Human words for the source.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "--execguard-runtime",
            Source::Env => "EXECGUARD_RUNTIME",
            Source::InvokedName => "the name execguard was invoked by",
            Source::Config => "the config file",
            Source::DefaultSearch => "runc, then crun, on PATH",
        }
    }
}

/// The runtime execguard will exec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// Path to exec (as found, not canonicalised: the runtime sees it as argv[0]).
    pub path: PathBuf,
    /// Where the choice came from.
    pub source: Source,
}

/// Why no runtime can be used.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// Nothing usable was found.
    #[error("no OCI runtime found: looked for {looked} ({origin_desc}); install runc or crun, or set --execguard-runtime=PATH, EXECGUARD_RUNTIME or \"runtime\" in the config", origin_desc = .origin.describe())]
    NotFound {
        /// What was looked for, and where.
        looked: String,
        /// Which setting named it.
        origin: Source,
    },
    /// execguard was started by the runtime it handed over to.
    #[error(
        "runtime loop: execguard was started again by the runtime it called ({MARKER}={0}); the configured runtime leads back to execguard"
    )]
    Loop(u32),
    /// execve itself failed.
    #[error("cannot exec runtime {path}: {errno}")]
    Exec {
        /// The runtime.
        path: PathBuf,
        /// The error.
        errno: nix::errno::Errno,
    },
}

/// The inputs of the runtime choice, gathered by the caller (no I/O here).
#[derive(Clone, Debug, Default)]
pub struct Choice<'a> {
    /// `--execguard-runtime=` value.
    pub flag: Option<&'a OsStr>,
    /// `EXECGUARD_RUNTIME`.
    pub env: Option<OsString>,
    /// argv[0] of execguard.
    pub argv0: Option<&'a OsStr>,
    /// The config's `runtime`.
    pub config: Option<&'a str>,
    /// PATH of the caller.
    pub path_var: Option<OsString>,
}

/// The explicit name in execguard's own invocation name (`execguard-crun` → `crun`).
pub fn name_from_argv0(argv0: &OsStr) -> Option<&OsStr> {
    let base = Path::new(argv0).file_name()?.as_bytes();
    let rest = base.strip_prefix(b"execguard-")?;
    (!rest.is_empty()).then(|| OsStr::from_bytes(rest))
}

/// The device and inode of the running executable.
pub(crate) fn self_identity() -> Option<(u64, u64)> {
    std::fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn usable(path: &Path, me: Option<(u64, u64)>) -> bool {
    match std::fs::metadata(path) {
        Ok(m) => m.is_file() && m.mode() & 0o111 != 0 && me != Some((m.dev(), m.ino())),
        Err(_) => false,
    }
}

/// Look a name up: a value with a `/` is a path; otherwise each PATH entry in turn.
fn find(name: &OsStr, path_var: &OsStr, me: Option<(u64, u64)>) -> Option<PathBuf> {
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return usable(&p, me).then_some(p);
    }
    std::env::split_paths(path_var)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| usable(p, me))
}

/// Choose the runtime.
///
/// # Errors
/// [`DelegateError::NotFound`] naming what was looked for and where.
pub fn choose(c: &Choice<'_>) -> Result<Runtime, DelegateError> {
    let me = self_identity();
    let path_var = c
        .path_var
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    let explicit: Option<(OsString, Source)> = if let Some(f) = c.flag {
        Some((f.to_os_string(), Source::Flag))
    } else if let Some(e) = c.env.clone().filter(|e| !e.is_empty()) {
        Some((e, Source::Env))
    } else if let Some(n) = c.argv0.and_then(name_from_argv0) {
        Some((n.to_os_string(), Source::InvokedName))
    } else {
        c.config.map(|s| (OsString::from(s), Source::Config))
    };
    if let Some((name, source)) = explicit {
        return match find(&name, &path_var, me) {
            Some(path) => Ok(Runtime { path, source }),
            None => Err(DelegateError::NotFound {
                looked: format!(
                    "{} (PATH={})",
                    crate::sanitize::escape_bytes(name.as_bytes()),
                    crate::sanitize::escape_bytes(path_var.as_bytes())
                ),
                origin: source,
            }),
        };
    }
    for name in ["runc", "crun"] {
        if let Some(path) = find(OsStr::new(name), &path_var, me) {
            return Ok(Runtime {
                path,
                source: Source::DefaultSearch,
            });
        }
    }
    Err(DelegateError::NotFound {
        looked: format!(
            "runc and crun in PATH={}",
            crate::sanitize::escape_bytes(path_var.as_bytes())
        ),
        origin: Source::DefaultSearch,
    })
}

/// What execve gets to start the runtime: its path, argv (argv[0] the path as found, then the
/// arguments byte for byte) and the inherited environment as it is, minus any [`MARKER`] entry,
/// plus a fresh [`MARKER`]. The environment is not copied: its entries are the process's own
/// `environ` strings (execguard never changes its environment).
pub(crate) struct ExecVectors {
    /// The runtime's path.
    pub prog: CString,
    /// Owns what `argv` points at.
    _args: Vec<CString>,
    /// Owns the marker entry `envp` ends with.
    _marker: CString,
    /// argv, NULL-terminated.
    pub argv: Vec<*const libc::c_char>,
    /// envp, NULL-terminated.
    pub envp: Vec<*const libc::c_char>,
}

unsafe extern "C" {
    /// The process environment (POSIX `environ`).
    static environ: *const *const libc::c_char;
}

impl ExecVectors {
    /// The vectors for `runtime` with `args`.
    ///
    /// # Errors
    /// EINVAL when the path or an argument holds a NUL byte.
    pub(crate) fn new(runtime: &Runtime, args: &[OsString]) -> Result<ExecVectors, DelegateError> {
        let einval = |_| DelegateError::Exec {
            path: runtime.path.clone(),
            errno: nix::errno::Errno::EINVAL,
        };
        let prog = CString::new(runtime.path.as_os_str().as_bytes()).map_err(einval)?;
        let mut owned = Vec::with_capacity(args.len());
        for a in args {
            // An argument cannot hold a NUL byte when it came from argv.
            owned.push(CString::new(a.as_bytes()).map_err(einval)?);
        }
        let mut argv = Vec::with_capacity(owned.len() + 2);
        argv.push(prog.as_ptr());
        argv.extend(owned.iter().map(|c| c.as_ptr()));
        argv.push(std::ptr::null());
        let marker = CString::new(format!("{MARKER}={}", marker_value())).map_err(einval)?;
        let prefix = MARKER.as_bytes();
        let mut envp = Vec::with_capacity(64);
        // SAFETY: `environ` is the NULL-terminated array of NUL-terminated strings the process
        // was started with; nothing in execguard changes the environment, so it stays valid.
        unsafe {
            let mut p = environ;
            while !p.is_null() && !(*p).is_null() {
                let entry = std::ffi::CStr::from_ptr(*p).to_bytes();
                let is_marker = entry.len() > prefix.len()
                    && entry.starts_with(prefix)
                    && entry[prefix.len()] == b'=';
                if !is_marker {
                    envp.push(*p);
                }
                p = p.add(1);
            }
        }
        envp.push(marker.as_ptr());
        envp.push(std::ptr::null());
        Ok(ExecVectors {
            prog,
            _args: owned,
            _marker: marker,
            argv,
            envp,
        })
    }
}

/// Replace this process with the runtime: argv[0] is the runtime's path as found, the other
/// arguments are forwarded byte for byte, the environment is inherited plus [`MARKER`], and
/// every inherited file descriptor stays open. Returns only on failure.
pub fn exec(runtime: &Runtime, args: &[OsString]) -> DelegateError {
    let v = match ExecVectors::new(runtime, args) {
        Ok(v) => v,
        Err(e) => return e,
    };
    // The runtime gets the SIGPIPE disposition execguard inherited.
    restore_sigpipe();
    // SAFETY: NULL-terminated arrays of NUL-terminated strings that `v` keeps alive.
    unsafe { libc::execve(v.prog.as_ptr(), v.argv.as_ptr(), v.envp.as_ptr()) };
    DelegateError::Exec {
        path: runtime.path.clone(),
        errno: nix::errno::Errno::last(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;
    use std::os::unix::fs::PermissionsExt;

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn exec_vectors_are_argv_and_the_inherited_environment_plus_one_marker() {
        let rt = Runtime {
            path: PathBuf::from("/usr/bin/runc"),
            source: Source::Flag,
        };
        let args = [OsString::from("state"), OsString::from("id \u{1b}x")];
        let v = ExecVectors::new(&rt, &args).unwrap();
        let text = |p: *const libc::c_char| {
            // SAFETY: the pointers of a live ExecVectors, NUL-terminated.
            unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes().to_vec()
        };
        assert_eq!(v.argv.last(), Some(&std::ptr::null()));
        let argv: Vec<Vec<u8>> = v.argv[..v.argv.len() - 1]
            .iter()
            .map(|p| text(*p))
            .collect();
        assert_eq!(argv, [&b"/usr/bin/runc"[..], b"state", b"id \x1bx"]);
        assert_eq!(v.envp.last(), Some(&std::ptr::null()));
        let envp: Vec<Vec<u8>> = v.envp[..v.envp.len() - 1]
            .iter()
            .map(|p| text(*p))
            .collect();
        let (marker, inherited) = envp.split_last().unwrap();
        assert_eq!(*marker, format!("{MARKER}={}", marker_value()).into_bytes());
        let want: Vec<Vec<u8>> = std::env::vars_os()
            .filter(|(k, _)| k != MARKER)
            .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat())
            .collect();
        assert_eq!(
            inherited,
            want.as_slice(),
            "the environment in its own order"
        );
        let nul = [OsString::from_vec(b"a\0b".to_vec())];
        assert!(
            ExecVectors::new(&rt, &nul).is_err(),
            "an argument with a NUL byte"
        );
    }

    #[test]
    fn invoked_name_selects_the_runtime() {
        assert_eq!(
            name_from_argv0(OsStr::new("/usr/local/bin/execguard-crun")),
            Some(OsStr::new("crun"))
        );
        assert_eq!(name_from_argv0(OsStr::new("execguard")), None);
        assert_eq!(name_from_argv0(OsStr::new("execguard-")), None);
        assert_eq!(name_from_argv0(OsStr::new("/x/runc")), None);
    }

    #[test]
    fn precedence_flag_env_name_config_search() {
        let d = tempfile::tempdir().unwrap();
        let a = exe(d.path(), "a");
        let b = exe(d.path(), "b");
        let crun = exe(d.path(), "crun");
        let cfg = exe(d.path(), "cfg");
        let runc = exe(d.path(), "runc");
        let path_var = Some(d.path().as_os_str().to_os_string());
        let base = Choice {
            flag: Some(a.as_os_str()),
            env: Some(b.clone().into_os_string()),
            argv0: Some(OsStr::new("/usr/bin/execguard-crun")),
            config: Some("cfg"),
            path_var: path_var.clone(),
        };
        assert_eq!(choose(&base).unwrap().path, a);
        let c = Choice {
            flag: None,
            ..base.clone()
        };
        assert_eq!(
            choose(&c).unwrap(),
            Runtime {
                path: b,
                source: Source::Env
            }
        );
        let c = Choice {
            flag: None,
            env: None,
            ..base.clone()
        };
        assert_eq!(choose(&c).unwrap().path, crun);
        let c = Choice {
            flag: None,
            env: None,
            argv0: None,
            ..base.clone()
        };
        assert_eq!(choose(&c).unwrap().path, cfg);
        let c = Choice {
            flag: None,
            env: None,
            argv0: None,
            config: None,
            path_var,
        };
        assert_eq!(
            choose(&c).unwrap(),
            Runtime {
                path: runc,
                source: Source::DefaultSearch
            }
        );
    }

    #[test]
    fn a_non_executable_or_missing_candidate_is_not_found_and_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("runc"), b"x").unwrap(); // no x bit
        let c = Choice {
            path_var: Some(d.path().as_os_str().to_os_string()),
            ..Choice::default()
        };
        let e = choose(&c).unwrap_err().to_string();
        assert!(e.contains("runc and crun"), "{e}");
        assert!(e.contains(&d.path().display().to_string()), "{e}");
        let c = Choice {
            flag: Some(OsStr::new("/nonexistent/rt")),
            ..Choice::default()
        };
        let e = choose(&c).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/rt") && e.contains("--execguard-runtime"),
            "{e}"
        );
    }

    #[test]
    fn execguard_itself_is_skipped() {
        // The test binary stands in for execguard: a PATH entry that is /proc/self/exe is skipped.
        let d = tempfile::tempdir().unwrap();
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        std::os::unix::fs::symlink(&me, d.path().join("runc")).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let real = exe(d2.path(), "runc");
        let path_var = std::env::join_paths([d.path(), d2.path()]).unwrap();
        let c = Choice {
            path_var: Some(path_var),
            ..Choice::default()
        };
        assert_eq!(choose(&c).unwrap().path, real);
    }
}
