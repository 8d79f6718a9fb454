//! execguard as a drop-in runc: every subcommand other than create/run reaches runc untouched
//! (stdout byte for byte), a good container's output and exit status are runc's, warn mode
//! prints its block and appends warning lines to runc's `--log`, enforce mode refuses before
//! runc runs and leaves an error line last in the log, and off mode is invisible.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const RUNTIME_FLAG: &str = "--execguard-runtime=/usr/bin/runc";

/// `execguard --execguard-runtime=/usr/bin/runc ARGS...`.
fn eg(args: &[&str]) -> Outcome {
    let mut v = vec![RUNTIME_FLAG];
    v.extend_from_slice(args);
    run_cmd(&execguard_bin(), &v)
}

/// `runc ARGS...`.
fn rc(args: &[&str]) -> Outcome {
    run_cmd(RUNC, args)
}

fn assert_same_stdout(args: &[&str]) {
    let real = rc(args);
    let wrapped = eg(args);
    assert_eq!(
        wrapped.stdout, real.stdout,
        "stdout of {args:?} must be runc's byte for byte"
    );
    assert_eq!(
        wrapped.code(),
        real.code(),
        "exit of {args:?}: {wrapped:?} vs {real:?}"
    );
    assert!(
        execguard_lines(&wrapped.stderr).is_empty(),
        "execguard must say nothing for {args:?}: {:?}",
        wrapped.stderr
    );
}

/// A private runc state root, so `list` sees only this test's containers.
struct PrivateRoot {
    dir: tempfile::TempDir,
    ids: Vec<String>,
}

impl PrivateRoot {
    fn new() -> PrivateRoot {
        PrivateRoot {
            dir: tempfile::Builder::new()
                .prefix("egt-root-")
                .tempdir()
                .expect("state root"),
            ids: Vec::new(),
        }
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    /// `runc --root R create -b B ID` with the container's stdio in files; returns the id.
    fn create_with_runc(&mut self, b: &Bundle, tag: &str) -> String {
        b.save();
        let id = unique_id(tag);
        self.ids.push(id.clone());
        let mut c = Command::new(RUNC);
        c.args(["--root", self.path(), "create", "-b"])
            .arg(b.path())
            .arg(&id);
        let st = run_to_files(
            c,
            &b.path().join("create.out"),
            &b.path().join("create.err"),
            "runc create",
        );
        assert!(
            st.success(),
            "runc create failed: {}",
            fs::read_to_string(b.path().join("create.err")).unwrap_or_default()
        );
        id
    }
}

impl Drop for PrivateRoot {
    fn drop(&mut self) {
        for id in &self.ids {
            force_delete(Some(self.dir.path()), id);
        }
    }
}

fn sleeping_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sleep", "30"]);
    b
}

/// A bundle with an error finding that only fails at exec time (create succeeds under runc):
/// a bash script on a busybox root.
fn bash_script_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    b.write("/bin/app", b"#!/bin/bash\necho hi\n", 0o755);
    b.args(&["/bin/app"]);
    b
}

const BASH_CODE: &str = "shebang-interpreter-missing";

fn parse_log(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l:?}\nfile:\n{text}"))
        })
        .collect()
}

fn is_execguard_line(v: &Value) -> bool {
    v["msg"]
        .as_str()
        .is_some_and(|m| m.starts_with("execguard: "))
}

fn assert_execguard_log_line(v: &Value, level: &str) {
    assert_eq!(v["level"], level, "level of {v}");
    assert!(
        is_execguard_line(v),
        "msg must start with `execguard: `: {v}"
    );
    assert!(
        v["time"].as_str().is_some_and(is_rfc3339),
        "time must be RFC 3339: {v}"
    );
}

// ---------------------------------------------------------------------------------------------
// pass-through

#[test]
fn version_passes_through_byte_for_byte() {
    if !runtime_ready() {
        return;
    }
    assert_same_stdout(&["--version"]);
}

#[test]
fn features_passes_through_byte_for_byte() {
    if !runtime_ready() {
        return;
    }
    assert_same_stdout(&["features"]);
}

#[test]
fn list_passes_through_byte_for_byte() {
    if !runtime_ready() {
        return;
    }
    let mut root = PrivateRoot::new();
    let b = sleeping_bundle();
    root.create_with_runc(&b, "list");
    let r = root.path().to_string();
    assert_same_stdout(&["--root", &r, "list"]);
    assert_same_stdout(&["--root", &r, "list", "--format", "json"]);
    assert_same_stdout(&["--root", &r, "list", "-q"]);
}

#[test]
fn state_passes_through_byte_for_byte() {
    if !runtime_ready() {
        return;
    }
    let mut root = PrivateRoot::new();
    let b = sleeping_bundle();
    let id = root.create_with_runc(&b, "state");
    let r = root.path().to_string();
    assert_same_stdout(&["--root", &r, "state", &id]);
    // A missing container fails the same way (stderr carries a timestamp; compare exit only).
    assert_same_stdout(&["--root", &r, "state", "egt-no-such-container"]);
}

#[test]
fn kill_and_delete_pass_through_to_runc() {
    if !runtime_ready() {
        return;
    }
    let mut root = PrivateRoot::new();
    let b = sleeping_bundle();
    let id = root.create_with_runc(&b, "delete");
    let r = root.path().to_string();
    let k = eg(&["--root", &r, "kill", &id, "KILL"]);
    assert_eq!(k.code(), 0, "kill through execguard: {k:?}");
    let d = eg(&["--root", &r, "delete", "-f", &id]);
    assert_eq!(d.code(), 0, "delete through execguard: {d:?}");
    assert_eq!(d.stdout, "", "runc delete prints nothing on stdout");
    assert!(execguard_lines(&d.stderr).is_empty(), "{d:?}");
    let s = rc(&["--root", &r, "state", &id]);
    assert_ne!(s.code(), 0, "the container must be gone: {s:?}");
}

// ---------------------------------------------------------------------------------------------
// run and create of good bundles

#[test]
fn a_good_bundle_keeps_its_output_and_exit_code_and_execguard_stays_silent() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/sh", "-c", "echo out; echo err >&2; exit 7"]);
    let real = runc_run(&b, "good");
    assert_eq!(real.code(), 7, "runc: {real:?}");
    assert_eq!(real.stdout, "out\n");
    let wrapped = execguard_run(&b, "good-w", &[]);
    assert_eq!(wrapped.code(), real.code(), "{wrapped:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert_eq!(
        wrapped.stderr, real.stderr,
        "stderr must be exactly the container's"
    );
}

#[test]
fn create_start_state_and_delete_work_end_to_end_through_execguard() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/sh", "-c", "echo started"]);
    b.save();
    let id = unique_id("e2e");
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let out = b.path().join("ctr.out");
    let err = b.path().join("ctr.err");
    let mut c = Command::new(execguard_bin());
    c.arg(RUNTIME_FLAG)
        .args(["create", "-b"])
        .arg(b.path())
        .arg(&id);
    let st = run_to_files(c, &out, &err, "execguard create");
    assert!(
        st.success(),
        "execguard create: {}",
        fs::read_to_string(&err).unwrap_or_default()
    );
    let state = eg(&["state", &id]);
    let v: Value = serde_json::from_str(&state.stdout).expect("state JSON");
    assert_eq!(v["status"], "created", "{v}");
    assert_eq!(v["id"], id.as_str());

    let start = eg(&["start", &id]);
    assert_eq!(start.code(), 0, "execguard start: {start:?}");
    let t0 = Instant::now();
    loop {
        let s = rc(&["state", &id]);
        let v: Value = serde_json::from_str(&s.stdout).unwrap_or(Value::Null);
        if v["status"] == "stopped" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "container never stopped: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fs::read_to_string(&out).expect("output"), "started\n");
    assert!(
        execguard_lines(&fs::read_to_string(&err).unwrap_or_default()).is_empty(),
        "a good create must add nothing to the container's stderr"
    );
    let d = eg(&["delete", &id]);
    assert_eq!(d.code(), 0, "execguard delete: {d:?}");
    assert_ne!(
        rc(&["state", &id]).code(),
        0,
        "deleted container still has state"
    );
}

// ---------------------------------------------------------------------------------------------
// modes and --log

/// A createRuntime hook that touches `marker`: it exists afterwards exactly when runc ran.
fn add_marker_hook(b: &mut Bundle, marker: &Path) {
    let m = marker.to_str().expect("utf-8 marker path").to_string();
    b.add_hook("createRuntime", HOST_BUSYBOX, &["busybox", "touch", &m]);
}

#[test]
fn enforce_mode_refuses_an_error_finding_and_leaves_no_container() {
    if !runtime_ready() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp");
    let cfg = mode_config(tmp.path(), "enforce");
    let cfg_flag = format!("--execguard-config={}", cfg.display());

    // Control: plain runc runs the hook (and then fails at exec).
    let mut b = bash_script_bundle();
    let control = tmp.path().join("control");
    add_marker_hook(&mut b, &control);
    let real = runc_run(&b, "enf-ctl");
    assert_ne!(real.code(), 0, "{real:?}");
    assert!(control.exists(), "the hook must run under plain runc");

    // execguard enforce, with runc's log flags.
    let marker = tmp.path().join("marker");
    add_marker_hook(&mut b, &marker);
    let log = tmp.path().join("log.json");
    let log_s = log.to_str().expect("utf-8").to_string();
    for verb in ["run", "create"] {
        let _ = fs::remove_file(&marker);
        let _ = fs::remove_file(&control);
        b.save();
        let id = unique_id(&format!("enf-{verb}"));
        let _g = ContainerGuard {
            root: None,
            id: id.clone(),
        };
        let mut c = Command::new(execguard_bin());
        c.arg(RUNTIME_FLAG)
            .arg(&cfg_flag)
            .args(["--log", &log_s, "--log-format", "json", verb, "-b"])
            .arg(b.path())
            .arg(&id);
        let st = run_to_files(
            c,
            &tmp.path().join("o"),
            &tmp.path().join("e"),
            "execguard enforce",
        );
        let stderr = fs::read_to_string(tmp.path().join("e")).unwrap_or_default();
        assert_eq!(st.code(), Some(1), "enforce {verb} must exit 1: {stderr:?}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(
            first.starts_with("execguard: ") && first.contains(&format!("[{BASH_CODE}]")),
            "enforce {verb} stderr must start with the block: {stderr:?}"
        );
        assert!(
            stderr.lines().all(|l| l.starts_with("execguard: ")),
            "nothing but execguard's block on stderr (runc never ran): {stderr:?}"
        );
        // A missing interpreter may be put there by a createRuntime hook, so for `create`
        // execguard lets create run, checks the live view, and deletes what create made when
        // the error stands (the state check below); `run` is refused before runc runs.
        if verb == "run" {
            assert!(
                !marker.exists() && !control.exists(),
                "runc's hook ran under enforce {verb}"
            );
        }
        let s = rc(&["state", &id]);
        assert_ne!(
            s.code(),
            0,
            "the container must not exist after enforce {verb}: {s:?}"
        );
        let lines = parse_log(&log);
        let last = lines
            .last()
            .unwrap_or_else(|| panic!("empty --log after enforce {verb}"));
        assert_execguard_log_line(last, "error");
        assert!(
            last["msg"].as_str().is_some_and(|m| m.contains(BASH_CODE)),
            "the error line must name the code: {last}"
        );
    }
}

#[test]
fn enforce_mode_lets_a_good_bundle_run_unchanged() {
    if !runtime_ready() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp");
    let cfg = mode_config(tmp.path(), "enforce");
    let cfg_flag = format!("--execguard-config={}", cfg.display());
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "fine"]);
    let real = runc_run(&b, "enf-good");
    let wrapped = execguard_run(&b, "enf-good-w", &[&cfg_flag]);
    assert_eq!(wrapped.code(), real.code(), "{wrapped:?}");
    assert_eq!(wrapped.stdout, "fine\n");
    assert_eq!(wrapped.stderr, real.stderr);
}

fn assert_warn_mode_appends(extra: &[&str], tag: &str) {
    let tmp = tempfile::tempdir().expect("temp");
    let log = tmp.path().join("log.json");
    let before =
        r#"{"level":"info","msg":"written before execguard","time":"2026-01-01T00:00:00Z"}"#;
    fs::write(&log, format!("{before}\n")).expect("seed log");
    let log_s = log.to_str().expect("utf-8").to_string();
    let b = bash_script_bundle();
    let real = runc_run(&b, &format!("{tag}-ctl"));
    let mut pre: Vec<&str> = extra.to_vec();
    pre.extend_from_slice(&["--log", &log_s, "--log-format", "json"]);
    let wrapped = execguard_run(&b, tag, &pre);
    assert_eq!(
        wrapped.code(),
        real.code(),
        "warn mode must exit like runc: {wrapped:?}"
    );
    let first = wrapped.stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("execguard: ") && first.contains(&format!("[{BASH_CODE}]")),
        "warn mode stderr must start with the block: {:?}",
        wrapped.stderr
    );
    assert!(
        wrapped.stderr.contains("no such file or directory"),
        "runc's own failure must follow: {:?}",
        wrapped.stderr
    );
    let text = fs::read_to_string(&log).expect("read log");
    assert!(
        text.starts_with(before),
        "the log must be appended to, not replaced:\n{text}"
    );
    let lines = parse_log(&log);
    let ours: Vec<&Value> = lines.iter().filter(|v| is_execguard_line(v)).collect();
    assert!(!ours.is_empty(), "no execguard line in --log:\n{text}");
    for v in &ours {
        assert_execguard_log_line(v, "warning");
    }
    assert!(
        ours.iter()
            .any(|v| v["msg"].as_str().is_some_and(|m| m.contains(BASH_CODE))),
        "a warning line must name the code:\n{text}"
    );
}

#[test]
fn warn_mode_by_default_prints_the_block_and_appends_warning_lines_to_the_log() {
    if !runtime_ready() {
        return;
    }
    assert_warn_mode_appends(&[], "warn-default");
}

#[test]
fn warn_mode_from_the_config_file_appends_warning_lines_to_the_log() {
    if !runtime_ready() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp");
    let cfg = mode_config(tmp.path(), "warn");
    let flag = format!("--execguard-config={}", cfg.display());
    assert_warn_mode_appends(&[&flag], "warn-config");
}

#[test]
fn off_mode_is_pure_pass_through_even_for_an_error_finding() {
    if !runtime_ready() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temp");
    let cfg = mode_config(tmp.path(), "off");
    let flag = format!("--execguard-config={}", cfg.display());
    let log: PathBuf = tmp.path().join("log.json");
    let log_s = log.to_str().expect("utf-8").to_string();
    let b = bash_script_bundle();
    let real = runc_run(&b, "off-ctl");
    let wrapped = execguard_run(&b, "off", &[&flag, "--log", &log_s, "--log-format", "json"]);
    assert_eq!(wrapped.code(), real.code(), "{wrapped:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert!(
        !wrapped.stderr.contains("execguard"),
        "off mode must print nothing of its own: {:?}",
        wrapped.stderr
    );
    assert!(
        !parse_log(&log).iter().any(is_execguard_line),
        "off mode must write nothing to --log"
    );
}
