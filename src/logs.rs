//! Where a diagnosis is written besides stderr: the runtime's own `--log` file, in the
//! runtime's line format, and execguard's JSON-lines log.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cli::scan::{Invocation, LogTarget};
use crate::config::LogConfig;
use crate::diagnosis::render;

/// The runtime's `--log` destination, when it is a file execguard can append to.
#[derive(Clone, Debug)]
pub struct RuntimeLog {
    path: PathBuf,
    json: bool,
}

impl RuntimeLog {
    /// From the scanned command line: `--log FILE` (crun's `file:FILE` too) and `--log-format`.
    /// journald and syslog targets are left to the runtime.
    pub fn from_invocation(inv: &Invocation) -> Option<RuntimeLog> {
        match &inv.log {
            Some(LogTarget::File(p)) => Some(RuntimeLog {
                path: p.clone(),
                json: inv
                    .log_format
                    .as_deref()
                    .is_some_and(|f| f.eq_ignore_ascii_case("json")),
            }),
            _ => None,
        }
    }

    /// The `msg` of the last `error` line the runtime wrote (what containerd would show),
    /// from the last 64 KiB of the file.
    pub fn last_error(&self) -> Option<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.path)
            .ok()?;
        if !f.metadata().ok()?.is_file() {
            return None;
        }
        let len = f.metadata().ok()?.len();
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut tail = Vec::new();
        f.take(64 * 1024).read_to_end(&mut tail).ok()?;
        let text = String::from_utf8_lossy(&tail);
        text.lines().rev().find_map(|line| {
            if self.json {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                (v.get("level")?.as_str()? == "error")
                    .then(|| v.get("msg")?.as_str().map(str::to_string))?
            } else {
                let at = line.find("level=error msg=")?;
                let rest = &line[at + "level=error msg=".len()..];
                // Only the quoted value: --debug adds func=/file= fields after it.
                serde_json::Deserializer::from_str(rest)
                    .into_iter::<String>()
                    .next()?
                    .ok()
            }
        })
    }

    /// Append one line at `level` (`warning` or `error`). Opened as runc opens it (append,
    /// create, 0644); failures are ignored: the log is advice, never a reason to fail.
    pub fn write(&self, level: &str, msg: &str) {
        let now = SystemTime::now();
        let line = if self.json {
            render::runtime_json_line(level, msg, now)
        } else {
            render::runtime_text_line(level, msg, now)
        };
        // O_NONBLOCK: a FIFO without a reader fails at once instead of stalling the start.
        if let Ok(mut f) = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.path)
            && f.metadata().is_ok_and(|m| m.is_file())
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Append one JSON object as one line with a single O_APPEND write, rotating the file to
/// `<path>.1` first when the line would take it past the size cap. Errors are returned for the caller to
/// mention; they never stop a container.
///
/// # Errors
/// The directory cannot be created or the file cannot be opened or written.
pub fn append_json_line(cfg: &LogConfig, value: &serde_json::Value) -> std::io::Result<()> {
    let Some(path) = &cfg.path else {
        return Ok(());
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = value.to_string();
    line.push('\n');
    let open = |p: &Path| {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)
    };
    let mut f = open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let size = f.metadata()?.size();
    if cfg.max_bytes > 0 && size > 0 && size + line.len() as u64 > cfg.max_bytes {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        std::fs::rename(path, &old)?;
        f = open(path)?;
    }
    // One write call: O_APPEND makes concurrent writers' lines land whole.
    let n = f.write(line.as_bytes())?;
    if n != line.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            "short write to the diagnosis log",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_log_appends_json_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.json");
        std::fs::write(&p, "{\"level\":\"error\",\"msg\":\"runc said\"}\n").unwrap();
        let l = RuntimeLog {
            path: p.clone(),
            json: true,
        };
        l.write("warning", "execguard: x");
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("runc said"));
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["level"], "warning");
    }

    #[test]
    fn the_runtimes_last_error_line_is_found() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.json");
        std::fs::write(
            &p,
            "{\"level\":\"error\",\"msg\":\"first\"}\n{\"level\":\"error\",\"msg\":\"runc create failed: x\"}\n{\"level\":\"warning\",\"msg\":\"w\"}\n",
        )
        .unwrap();
        let l = RuntimeLog {
            path: p.clone(),
            json: true,
        };
        assert_eq!(l.last_error().as_deref(), Some("runc create failed: x"));
        let t = d.path().join("log.txt");
        std::fs::write(
            &t,
            "time=\"x\" level=error msg=\"exec: \\\"app\\\": not found\"\n",
        )
        .unwrap();
        let l = RuntimeLog {
            path: t,
            json: false,
        };
        assert_eq!(l.last_error().as_deref(), Some("exec: \"app\": not found"));
    }

    #[test]
    fn json_log_rotates_at_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            path: Some(d.path().join("sub/diag.jsonl")),
            max_bytes: 100,
            include_ok: false,
        };
        let v = serde_json::json!({"pad": "x".repeat(80)});
        append_json_line(&cfg, &v).unwrap();
        append_json_line(&cfg, &v).unwrap();
        let cur = std::fs::read_to_string(d.path().join("sub/diag.jsonl")).unwrap();
        let old = std::fs::read_to_string(d.path().join("sub/diag.jsonl.1")).unwrap();
        assert_eq!(cur.lines().count(), 1);
        assert_eq!(old.lines().count(), 1);
    }

    #[test]
    fn json_log_off_writes_nothing() {
        let cfg = LogConfig {
            path: None,
            max_bytes: 1,
            include_ok: false,
        };
        append_json_line(&cfg, &serde_json::json!({})).unwrap();
    }
}
