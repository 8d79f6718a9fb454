//! The running container as the kernel sees it, for `exec`: the init's pid from the runtime's
//! state, and the process `runtime exec` is asked to start (from `--process FILE` or the
//! trailing arguments), with the identity, environment and capabilities it will have.
//!
//! The state file is read where its format is stable (runc: `<root>/<id>/state.json`,
//! `init_process_pid` checked against `init_process_start` so a reused pid is never inspected;
//! crun: `<root>/<id>/status`); otherwise `<runtime> state <id>` is asked.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::scan::Invocation;
use crate::delegate::{MARKER, Runtime};
use crate::spec::{IdMap, SpecView};

/// Largest state or process file read.
const MAX_STATE_BYTES: u64 = 16 << 20;

/// At most `cap` bytes of a regular file, opened without blocking (a FIFO or device in its
/// place is an error, never a hang). Shared by the state, process and engine-config readers.
pub(crate) fn read_bounded(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    // Sized from the inode (one read instead of doubling from 32 bytes), never past the cap.
    let mut buf = Vec::with_capacity(meta.len().min(cap).saturating_add(1) as usize);
    f.take(cap).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A container id that is safe to use as a path component.
fn safe_id(id: &OsStr) -> bool {
    let b = id.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

fn is_crun(rt: &Runtime) -> bool {
    rt.path
        .file_name()
        .is_some_and(|n| n.as_bytes().windows(4).any(|w| w == b"crun"))
}

/// A process's state letter (field 3 of /proc/<pid>/stat) and start time (field 22).
pub(crate) fn proc_stat(pid: i32) -> Option<(u8, u64)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let mut fields = rest.split(' ');
    let state = *fields.next()?.as_bytes().first()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// The start time of a process (field 22 of /proc/<pid>/stat), to detect pid reuse.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// The init pid of container `id`.
///
/// # Errors
/// The container's state cannot be found or read.
pub fn init_pid(rt: &Runtime, inv: &Invocation, id: &OsStr) -> Result<i32, String> {
    if !safe_id(id) {
        return Err("the container id is not a plain name".into());
    }
    let crun = is_crun(rt);
    let root = inv
        .root
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(if crun { "/run/crun" } else { "/run/runc" }));
    let file = if crun {
        root.join(id).join("status")
    } else {
        root.join(id).join("state.json")
    };
    if let Ok(bytes) = read_bounded(&file, MAX_STATE_BYTES)
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
    {
        let pid = v
            .get(if crun { "pid" } else { "init_process_pid" })
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0);
        if let Some(pid) = pid {
            // runc: init_process_start; crun: process-start-time (both /proc/<pid>/stat field 22).
            let expected = v
                .get(if crun {
                    "process-start-time"
                } else {
                    "init_process_start"
                })
                .and_then(Value::as_u64);
            if expected.is_none() || expected == start_time(pid) {
                return Ok(pid);
            }
            return Err(format!("the init process {pid} of the container is gone"));
        }
    }
    state_pid(rt, inv, id).map_err(|e| {
        format!(
            "no state for container {} in {} ({e})",
            crate::sanitize::escape_bytes(id.as_bytes()),
            crate::sanitize::escape_bytes(root.as_os_str().as_bytes())
        )
    })
}

/// Ask the runtime: `<runtime> [--root R] state <id>`.
fn state_pid(rt: &Runtime, inv: &Invocation, id: &OsStr) -> Result<i32, String> {
    let mut cmd = std::process::Command::new(&rt.path);
    if let Some(r) = &inv.root {
        cmd.arg("--root").arg(r);
    }
    let out = cmd
        .arg("state")
        .arg(id)
        .env(MARKER, crate::delegate::marker_value())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} state: {e}", rt.path.display()))?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{} state gave no JSON: {e}", rt.path.display()))?;
    v.get("pid")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| "the runtime's state names no running process".to_string())
}

fn parse_map(text: &str) -> Vec<IdMap> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some(IdMap {
                container: it.next()??,
                host: it.next()??,
                size: it.next()??,
            })
        })
        .collect()
}

/// The id mappings of a process's user namespace; empty for the initial one.
fn id_maps(pid: i32, which: &str) -> Vec<IdMap> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{which}")).unwrap_or_default();
    let maps = parse_map(&text);
    let identity =
        maps.len() == 1 && maps[0].container == 0 && maps[0].host == 0 && maps[0].size == u32::MAX;
    if identity { Vec::new() } else { maps }
}

/// Names of the capabilities in a hex mask from /proc/<pid>/status.
fn cap_names(hex: &str) -> Vec<String> {
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap_or(0);
    crate::check::filecaps::names_of(mask)
}

/// The process `exec` will start in container init `pid`.
///
/// # Errors
/// The `--process` file cannot be read or is not a JSON object.
pub fn exec_spec(inv: &Invocation, pid: i32) -> Result<SpecView, String> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut view = if let Some(p) = &inv.process_file {
        let bytes = read_bounded(p, MAX_STATE_BYTES)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        crate::spec::process_from_slice(&bytes)?
    } else {
        // `runc exec ID CMD...`: the container's own identity and environment.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let first = |s: String| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let environ =
            read_bounded(Path::new(&format!("/proc/{pid}/environ")), 1 << 20).unwrap_or_default();
        let eff = cap_names(&field("CapEff:"));
        let bnd = cap_names(&field("CapBnd:"));
        SpecView {
            has_process: true,
            args: inv
                .trailing
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            env: environ
                .split(|b| *b == 0)
                .filter(|e| !e.is_empty())
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect(),
            cwd: "/".into(),
            uid: first(field("Uid:")),
            gid: first(field("Gid:")),
            additional_gids: field("Groups:")
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect(),
            caps: Some(crate::spec::CapSets {
                effective: eff.clone(),
                bounding: bnd,
                inheritable: Vec::new(),
                permitted: eff,
                ambient: Vec::new(),
            }),
            ..SpecView::default()
        }
    };
    view.root = root;
    let uid_map = id_maps(pid, "uid_map");
    let gid_map = id_maps(pid, "gid_map");
    if inv.process_file.is_none() {
        // /proc shows the init's ids as the host sees them: back into the container's.
        view.uid = to_container(&uid_map, view.uid);
        view.gid = to_container(&gid_map, view.gid);
        for g in &mut view.additional_gids {
            *g = to_container(&gid_map, *g);
        }
        apply_exec_flags(&mut view, inv)?;
    }
    if !uid_map.is_empty() {
        view.user_namespace = true;
        view.uid_mappings = uid_map;
        view.gid_mappings = gid_map;
    }
    Ok(view)
}

/// A host id as the container sees it (unchanged without a user namespace, or unmapped).
fn to_container(maps: &[IdMap], host: u32) -> u32 {
    maps.iter()
        .find_map(|m| {
            let off = host.checked_sub(m.host)?;
            (off < m.size).then(|| m.container.saturating_add(off))
        })
        .unwrap_or(host)
}

/// What `runc exec` changes on the container's process without `--process` (runc exec.go
/// `getProcess`; crun exec.c the same flags): `--cwd`, `--env` appended, `--user UID[:GID]`,
/// `--additional-gids` appended.
fn apply_exec_flags(view: &mut SpecView, inv: &Invocation) -> Result<(), String> {
    if let Some(cwd) = &inv.exec_cwd
        && !cwd.is_empty()
    {
        view.cwd = cwd.to_string_lossy().into_owned();
    }
    view.env.extend(
        inv.exec_env
            .iter()
            .map(|e| e.to_string_lossy().into_owned()),
    );
    if let Some(user) = &inv.exec_user
        && !user.is_empty()
    {
        let text = user.to_string_lossy();
        let mut parts = text.split(':');
        let num = |s: Option<&str>| -> Result<Option<u32>, String> {
            s.map(|n| {
                n.parse::<u32>()
                    .map_err(|_| format!("exec --user {text}: not numeric"))
            })
            .transpose()
        };
        let uid = num(parts.next())?;
        let gid = num(parts.next())?;
        if parts.next().is_some() {
            return Err(format!("exec --user {text}: not UID[:GID]"));
        }
        if let Some(u) = uid {
            view.uid = u;
        }
        if let Some(g) = gid {
            view.gid = g;
        }
    }
    for g in &inv.exec_additional_gids {
        let n = g.to_string_lossy().parse::<u32>().map_err(|_| {
            format!(
                "exec --additional-gids {}: not numeric",
                g.to_string_lossy()
            )
        })?;
        view.additional_gids.push(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_go_back_into_the_container() {
        let m = parse_map("0 100000 65536\n");
        assert_eq!(to_container(&m, 100000), 0);
        assert_eq!(to_container(&m, 101000), 1000);
        assert_eq!(to_container(&m, 5), 5);
        assert_eq!(to_container(&[], 1000), 1000);
    }

    #[test]
    fn exec_flags_change_the_process_as_runc_does() {
        let args: Vec<std::ffi::OsString> =
            "exec -u 1000:1001 -e PATH=/opt/bin --cwd /w -g 7 c1 app"
                .split(' ')
                .map(Into::into)
                .collect();
        let inv = crate::cli::scan::scan(&args);
        let mut v = SpecView {
            env: vec!["PATH=/bin".into()],
            ..SpecView::default()
        };
        apply_exec_flags(&mut v, &inv).unwrap();
        assert_eq!((v.uid, v.gid), (1000, 1001));
        assert_eq!(v.env, ["PATH=/bin", "PATH=/opt/bin"]);
        assert_eq!(v.cwd, "/w");
        assert_eq!(v.additional_gids, [7]);
        let args: Vec<std::ffi::OsString> = ["exec", "-u", "bob", "c1", "app"]
            .iter()
            .map(Into::into)
            .collect();
        let inv = crate::cli::scan::scan(&args);
        assert!(apply_exec_flags(&mut v, &inv).is_err());
    }

    #[test]
    fn ids_that_are_not_plain_names_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(!safe_id(OsStr::new(bad)), "{bad}");
        }
        assert!(safe_id(OsStr::new("0123abc-x_y.z")));
    }

    #[test]
    fn id_maps_parse_and_identity_is_none() {
        let m = parse_map("         0     100000      65536\n");
        assert_eq!(
            m,
            [IdMap {
                container: 0,
                host: 100000,
                size: 65536
            }]
        );
        assert!(parse_map("garbage\n1 2\n").is_empty());
        assert!(id_maps(std::process::id() as i32, "uid_map").is_empty());
    }

    #[test]
    fn start_time_of_this_process_is_known() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert_eq!(start_time(-1), None);
    }

    #[test]
    fn cap_masks_name_capabilities() {
        assert_eq!(cap_names("0000000000001000"), ["CAP_NET_ADMIN"]);
        assert!(cap_names("zz").is_empty());
    }
}
