//! `execguard check --container ID [--root DIR]`: explain a container that already failed (or
//! still runs) under the plain runtime, from the runtime's own state, so a user who met the
//! bare `exec format error` can ask why without reconfiguring anything.
//!
//! The state is read where runc and crun keep it (`<root>/<id>/state.json`: the bundle in the
//! `bundle=` label of `config.labels`, `init_process_pid` and `init_process_start`;
//! `<root>/<id>/status` of crun: `bundle`, `pid`, `process-start-time`), under the given root or
//! each root the engines use. An id prefix that names one container is enough (what `docker ps`
//! shows). A container whose init still lives is checked through `/proc/<pid>/root` (its mounts
//! in place); otherwise the bundle's config.json against its rootfs, as create would see it.
//!
//! Docker and the CRI delete the runtime's state of a container whose start failed; for those
//! the message says so and names the way that works (`--runtime execguard`, `check --bundle`).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnosis::Diagnosis;
use crate::host::Host;

/// Roots tried in order when none is given: runc's and crun's defaults, Docker's, containerd's
/// namespaces (`/run/containerd/runc/<ns>`).
pub const KNOWN_ROOTS: &[&str] = &[
    "/run/runc",
    "/run/crun",
    "/run/docker/runtime-runc/moby",
    "/run/containerd/runc/k8s.io",
    "/run/containerd/runc/default",
    "/run/containerd/runc/moby",
];

/// Largest state file read.
const MAX_STATE: u64 = 4 << 20;

/// Most entries looked at in one root when matching an id prefix.
const MAX_ENTRIES: usize = 100_000;

/// A container found in a runtime's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its full id.
    pub id: String,
    /// The root folder it was found in.
    pub root: PathBuf,
    /// `runc` or `crun`: whose state format it is.
    pub runtime: &'static str,
    /// Its bundle.
    pub bundle: PathBuf,
    /// The init's pid, when that process still lives (start time checked).
    pub live_pid: Option<i32>,
}

impl Found {
    /// One line for people: what was found and which view is checked.
    pub fn describe(&self) -> String {
        let view = match self.live_pid {
            Some(p) => format!("running (init pid {p}): checking the live view"),
            None => "not running: checking its bundle as create sees it".into(),
        };
        format!(
            "container {} ({} state in {}, bundle {}): {view}",
            self.id,
            self.runtime,
            crate::sanitize::escape_bytes(self.root.as_os_str().as_bytes()),
            crate::sanitize::escape_bytes(self.bundle.as_os_str().as_bytes()),
        )
    }
}

/// Find container `id` (or the one container whose id starts with it) under `root`, or under
/// each of [`KNOWN_ROOTS`].
///
/// # Errors
/// No such container, an ambiguous prefix, or a state that names no bundle.
pub fn find(id: &str, root: Option<&Path>) -> Result<Found, String> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(format!(
            "container id {}: not a plain name",
            crate::sanitize::escape_bytes(id.as_bytes())
        ));
    }
    let roots: Vec<PathBuf> = match root {
        Some(r) => vec![r.to_path_buf()],
        None => KNOWN_ROOTS.iter().map(PathBuf::from).collect(),
    };
    let mut matches: Vec<(PathBuf, String)> = Vec::new();
    for r in &roots {
        if r.join(id).is_dir() {
            matches.push((r.clone(), id.to_string()));
            continue;
        }
        let Ok(dir) = std::fs::read_dir(r) else {
            continue;
        };
        for e in dir.take(MAX_ENTRIES).flatten() {
            let name = e.file_name();
            if name.as_bytes().starts_with(id.as_bytes()) && e.file_type().is_ok_and(|t| t.is_dir())
            {
                matches.push((r.clone(), name.to_string_lossy().into_owned()));
            }
        }
    }
    match matches.len() {
        0 => Err(format!(
            "no container {id} in {} (Docker and the CRI delete a container's runtime state once its start has failed: \
             run it again with --runtime execguard, or check its bundle with `execguard check --bundle DIR`)",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        1 => {
            let (r, full) = matches.swap_remove(0);
            read_state(&r, &full)
        }
        n => Err(format!(
            "{n} containers match {id}: {}",
            matches
                .iter()
                .take(5)
                .map(|(r, i)| format!("{}/{i}", r.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The state of `<root>/<id>`, in runc's or crun's format.
fn read_state(root: &Path, id: &str) -> Result<Found, String> {
    let dir = root.join(id);
    for (file, runtime) in [("state.json", "runc"), ("status", "crun")] {
        let path = dir.join(file);
        let Ok(bytes) = crate::live::read_bounded(&path, MAX_STATE) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not JSON ({e})", path.display()))?;
        let (bundle, pid, start) = if runtime == "runc" {
            let bundle = v
                .pointer("/config/labels")
                .and_then(Value::as_array)
                .and_then(|labels| {
                    labels
                        .iter()
                        .filter_map(Value::as_str)
                        .find_map(|l| l.strip_prefix("bundle="))
                })
                .map(PathBuf::from);
            (
                bundle,
                v.get("init_process_pid").and_then(Value::as_i64),
                v.get("init_process_start").and_then(Value::as_u64),
            )
        } else {
            (
                v.get("bundle").and_then(Value::as_str).map(PathBuf::from),
                v.get("pid").and_then(Value::as_i64),
                v.get("process-start-time").and_then(Value::as_u64),
            )
        };
        let bundle = bundle.ok_or_else(|| format!("{}: names no bundle", path.display()))?;
        let live_pid = pid
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0)
            // A zombie keeps its /proc entry but not its root.
            .filter(|p| {
                crate::live::proc_stat(*p).is_some_and(|(state, t)| {
                    Some(t) == start && !matches!(state, b'Z' | b'X' | b'x')
                })
            });
        return Ok(Found {
            id: id.to_string(),
            root: root.to_path_buf(),
            runtime,
            bundle,
            live_pid,
        });
    }
    Err(format!(
        "{}: no state.json (runc) or status (crun)",
        dir.display()
    ))
}

/// Diagnose what was found: the live view while the init lives, the bundle's otherwise.
///
/// # Errors
/// The bundle's config.json cannot be read, or its rootfs cannot be opened.
pub fn diagnose(found: &Found, host: &Host) -> Result<Diagnosis, String> {
    let spec = crate::spec::load(&found.bundle).map_err(|e| e.to_string())?;
    let flavor = if found.runtime == "crun" {
        crate::check::Flavor::Crun
    } else {
        crate::check::Flavor::Runc
    };
    match found.live_pid {
        Some(pid) => {
            let root = PathBuf::from(format!("/proc/{pid}/root"));
            let ctx = crate::check::Context {
                flavor,
                exec: false,
            };
            Ok(crate::check::diagnose_live(&spec, host, &root, ctx))
        }
        None => crate::check::diagnose_bundle(&spec, host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dir: &Path, id: &str, file: &str, body: &str) {
        std::fs::create_dir_all(dir.join(id)).unwrap();
        std::fs::write(dir.join(id).join(file), body).unwrap();
    }

    #[test]
    fn runc_and_crun_states_name_the_bundle() {
        let d = tempfile::tempdir().unwrap();
        state(
            d.path(),
            "abc123",
            "state.json",
            r#"{"init_process_pid": 999999999, "init_process_start": 5, "config": {"labels": ["x=y", "bundle=/b/one"]}}"#,
        );
        state(
            d.path(),
            "def456",
            "status",
            r#"{"pid": 0, "bundle": "/b/two", "rootfs": "/b/two/rootfs"}"#,
        );
        let f = find("abc", Some(d.path())).unwrap();
        assert_eq!(f.id, "abc123");
        assert_eq!(f.runtime, "runc");
        assert_eq!(f.bundle, Path::new("/b/one"));
        assert_eq!(
            f.live_pid, None,
            "a pid whose start time does not match is gone"
        );
        let f = find("def456", Some(d.path())).unwrap();
        assert_eq!(
            (f.runtime, f.bundle.as_path()),
            ("crun", Path::new("/b/two"))
        );
    }

    #[test]
    fn unknown_ambiguous_and_hostile_ids_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        state(d.path(), "aa1", "status", r#"{"bundle": "/x"}"#);
        state(d.path(), "aa2", "status", r#"{"bundle": "/y"}"#);
        state(d.path(), "bad", "state.json", "not json");
        state(d.path(), "nob", "state.json", r#"{"config": {}}"#);
        assert!(
            find("zz", Some(d.path()))
                .unwrap_err()
                .contains("no container zz")
        );
        assert!(
            find("aa", Some(d.path()))
                .unwrap_err()
                .contains("2 containers match")
        );
        assert!(
            find("bad", Some(d.path()))
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            find("nob", Some(d.path()))
                .unwrap_err()
                .contains("names no bundle")
        );
        for id in ["", ".", "..", "../aa1", "a/b"] {
            assert!(
                find(id, Some(d.path()))
                    .unwrap_err()
                    .contains("not a plain name"),
                "{id}"
            );
        }
    }

    #[test]
    fn a_live_init_is_recognised_by_its_start_time() {
        let d = tempfile::tempdir().unwrap();
        let me = std::process::id() as i32;
        let start = crate::live::start_time(me).unwrap();
        state(
            d.path(),
            "me",
            "state.json",
            &format!(
                r#"{{"init_process_pid": {me}, "init_process_start": {start}, "config": {{"labels": ["bundle=/b"]}}}}"#
            ),
        );
        assert_eq!(find("me", Some(d.path())).unwrap().live_pid, Some(me));
    }
}
