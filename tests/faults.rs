//! Fail-open proven against the real runtime: whatever goes wrong inside execguard itself (a
//! panic in the checks, a deadline, a broken config file, an unwritable diagnosis log, an
//! invisible binfmt_misc, a config.json runc refuses, a runtime that cannot be found or leads
//! back to execguard) becomes one `execguard: ` line and a pass-through, and the container then
//! starts exactly as with the bare runtime: same exit status, same stdout bytes, runc's own
//! stderr unchanged. Also proven: the per-container modes (annotation, CRI sandbox, silence),
//! the hand-over (argv[0], arguments byte for byte, environment plus the marker, inherited file
//! descriptors and no others), and that execguard never writes to stdout in wrapper mode.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const RUNTIME_FLAG: &str = "--execguard-runtime=/usr/bin/runc";
/// execguard's own log when the config gives none (the defaults).
const DEFAULT_OWN_LOG: &str = "/var/log/execguard/diagnoses.jsonl";
/// What a container whose program runs prints, and how it exits.
const GOOD_SCRIPT: &str = "echo out; echo err >&2; exit 7";

// ---------------------------------------------------------------------------------------------
// Processes, with stdout kept as bytes

/// What one process did, stdout byte for byte.
#[derive(Debug)]
struct Raw {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
    /// The container id, when the call ran a container.
    id: String,
}

impl Raw {
    fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `cmd` (stdin /dev/null, stdout and stderr captured) for at most `limit`; on timeout
/// `on_timeout` runs, the child is killed and the test fails.
fn run_raw(mut cmd: Command, what: &str, limit: Duration, on_timeout: impl FnOnce()) -> Raw {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pipes = Pipes::take(&mut child);
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            timed_out = true;
            on_timeout();
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    let (stdout, stderr) = pipes.collect();
    let r = Raw {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
        id: String::new(),
    };
    assert!(!timed_out, "{what} did not finish within {limit:?}: {r:?}");
    r
}

/// `cmd PRE... run -b BUNDLE ID` with a fresh id, the container deleted afterwards.
fn run_in<S: AsRef<OsStr>>(mut cmd: Command, pre: &[S], b: &Bundle, tag: &str) -> Raw {
    b.save();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    cmd.args(pre).arg("run").arg("-b").arg(b.path()).arg(&id);
    let mut r = run_raw(cmd, &format!("run {id}"), CALL_TIMEOUT, || {
        force_delete(None, &id)
    });
    r.id = id;
    r
}

/// `runc run` of the bundle: the reference every pass-through is compared with.
fn runc_ref(b: &Bundle, tag: &str) -> Raw {
    run_in(runc(), &[] as &[&str], b, tag)
}

/// `execguard --execguard-runtime=/usr/bin/runc PRE... run -b BUNDLE ID` with extra env.
fn eg_run(pre: &[&str], env: &[(&str, &str)], b: &Bundle, tag: &str) -> Raw {
    let mut c = eg();
    c.arg(RUNTIME_FLAG);
    for (k, v) in env {
        c.env(k, v);
    }
    run_in(c, pre, b, tag)
}

/// Plain execguard call with arbitrary arguments (no container).
fn eg_call<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Raw {
    let mut c = eg();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    run_raw(c, "execguard", CALL_TIMEOUT, || {})
}

// ---------------------------------------------------------------------------------------------
// Comparing with runc

/// The container ran exactly as with runc: exit status, stdout bytes, runc's stderr.
fn assert_as_runc(w: &Raw, r: &Raw, what: &str) {
    assert_eq!(
        w.code(),
        r.code(),
        "{what}: exit status must be runc's\nexecguard: {w:?}\nrunc: {r:?}"
    );
    assert_eq!(
        w.stdout, r.stdout,
        "{what}: stdout must be runc's byte for byte\nexecguard: {w:?}\nrunc: {r:?}"
    );
    assert_eq!(
        norm(&others(&w.stderr), &w.id),
        norm(&r.stderr, &r.id),
        "{what}: stderr without execguard's lines must be runc's\nexecguard: {w:?}\nrunc: {r:?}"
    );
}

/// Asserts execguard wrote exactly one line of its own and returns it (without the newline).
fn one_line<'a>(w: &'a Raw, what: &str) -> &'a str {
    let lines = execguard_lines(&w.stderr);
    assert_eq!(
        lines.len(),
        1,
        "{what}: exactly one execguard line expected on stderr: {:?}",
        w.stderr
    );
    lines[0]
}

/// No Rust panic text or backtrace on stderr.
fn assert_no_panic_text(stderr: &str, what: &str) {
    for bad in [
        "panicked at",
        "stack backtrace",
        "RUST_BACKTRACE",
        "note: run with",
        "src/",
        ".rs:",
    ] {
        assert!(
            !stderr.contains(bad),
            "{what}: Rust panic text {bad:?} leaked to stderr: {stderr:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Files

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("egt-faults-")
        .tempdir()
        .expect("temp folder")
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

/// Writes an execguard config file and returns the `--execguard-config=` flag for it.
fn config_flag(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    fs::write(&p, v.to_string()).expect("write execguard config");
    format!("--execguard-config={}", p.display())
}

/// Every line of a JSON-lines file, parsed (a line that is not JSON fails the test).
fn json_lines(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("line of {} is not JSON ({e}): {l:?}", path.display()))
        })
        .collect()
}

/// The lines execguard put into a runc `--log` JSON file.
fn execguard_log_lines(path: &Path) -> Vec<Value> {
    json_lines(path)
        .into_iter()
        .filter(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("execguard: "))
        })
        .collect()
}

fn assert_log_line(v: &Value, level: &str, what: &str) {
    assert_eq!(v["level"], level, "{what}: level of {v}");
    assert!(
        v["time"].as_str().is_some_and(is_rfc3339),
        "{what}: time must be RFC 3339: {v}"
    );
}

/// A createRuntime hook that touches `marker`: the marker exists exactly when runc ran.
fn add_marker_hook(b: &mut Bundle, marker: &Path) {
    b.add_hook(
        "createRuntime",
        HOST_BUSYBOX,
        &["busybox", "touch", &s(marker)],
    );
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// The host busybox printing to stdout and stderr and exiting 7.
fn good_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["/bin/sh", "-c", GOOD_SCRIPT]);
    b
}

/// A bundle with a warning finding whose program still runs and prints `hello`: a `#!` line
/// longer than the kernel's buffer where only the argument is cut (the cut part is spaces).
fn warning_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    let mut script = b"#!/bin/sh -e".to_vec();
    script.extend(std::iter::repeat_n(b' ', 300));
    script.extend_from_slice(b"y\necho hello\n");
    b.write("/app", &script, 0o755);
    b.args(&["/app"]);
    b
}

/// Shared hold on the binfmt test lock: tests that change binfmt_misc (exclusive holders)
/// cannot run while an arm64 case here relies on there being no handler.
struct BinfmtShared {
    _f: fs::File,
}

fn binfmt_shared() -> BinfmtShared {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_CLOEXEC)
        .open(BINFMT_LOCK)
        .expect("open binfmt test lock");
    loop {
        // SAFETY: flock on an fd this function owns.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH) };
        if rc == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "flock: {e}");
    }
    BinfmtShared { _f: f }
}

/// An arm64 static busybox (`echo hi`): an `arch-mismatch` error on this host. Holds the
/// binfmt lock shared; `runc` is its reference run, which must fail with ENOEXEC.
struct Arm64 {
    _lock: BinfmtShared,
    b: Bundle,
    runc: Raw,
}

fn arm64_case(tag: &str) -> Option<Arm64> {
    if !runtime_ready() {
        return None;
    }
    let bb = foreign_busybox("arm64")?;
    let lock = binfmt_shared();
    let mut b = Bundle::empty();
    b.copy_in(bb, "/bin/busybox", Some(0o755));
    b.args(&["/bin/busybox", "echo", "hi"]);
    let r = runc_ref(&b, &format!("{tag}-ref"));
    if !require(
        r.code() != 0 && r.stderr.contains("exec format error"),
        &format!(
            "an arm64 busybox does not fail with ENOEXEC under runc here (a binfmt_misc handler?): {r:?}"
        ),
    ) {
        return None;
    }
    Some(Arm64 {
        _lock: lock,
        b,
        runc: r,
    })
}

/// `[arch-mismatch]` block printed, runc's own ENOEXEC line after it.
fn assert_arch_block(w: &Raw, what: &str) {
    let first = w.stderr.lines().next().unwrap_or("");
    assert!(
        execguard_lines(&w.stderr)
            .iter()
            .any(|l| l.contains("[arch-mismatch]")),
        "{what}: the arch-mismatch block must be printed: {:?} (first line {first:?})",
        w.stderr
    );
    assert!(
        w.stderr.contains("exec /bin/busybox: exec format error"),
        "{what}: runc's own failure must be there: {:?}",
        w.stderr
    );
}

// =============================================================================================
// 1. A panic in the checks

#[test]
fn a_panic_in_the_checks_is_one_line_and_the_container_runs_as_with_runc() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"log": {"path": t.path().join("own.jsonl")}}),
    );
    let b = good_bundle();
    let r = runc_ref(&b, "panic-ref");
    assert_eq!(r.code(), 7, "{r:?}");
    assert_eq!(r.stdout, b"out\n");

    let log = t.path().join("log.json");
    let log_s = s(&log);
    let w = eg_run(
        &[&cfg, "--log", &log_s, "--log-format", "json"],
        &[("EXECGUARD_FAULT", "panic"), ("RUST_BACKTRACE", "full")],
        &b,
        "panic",
    );
    assert_as_runc(&w, &r, "panic");
    let line = one_line(&w, "panic");
    assert!(
        line.contains("checks skipped") && line.contains("panic"),
        "the line must say the checks were skipped and why: {line:?}"
    );
    assert_no_panic_text(&w.stderr, "panic");

    let ours = execguard_log_lines(&log);
    assert_eq!(ours.len(), 1, "one warning line in --log: {ours:?}");
    assert_log_line(&ours[0], "warning", "panic --log");
    assert_eq!(
        ours[0]["msg"].as_str(),
        Some(line),
        "the --log line must say what stderr said"
    );

    // runc's text log format: still exactly one line.
    let text_log = t.path().join("log.txt");
    let w = eg_run(
        &[&cfg, "--log", &s(&text_log)],
        &[("EXECGUARD_FAULT", "panic")],
        &b,
        "panic-text",
    );
    assert_as_runc(&w, &r, "panic, text --log");
    let text = fs::read_to_string(&text_log).expect("text --log written");
    assert_eq!(
        text.lines().count(),
        1,
        "one line in the text --log: {text:?}"
    );
    assert!(
        text.starts_with("time=\"")
            && text.contains(" level=warning ")
            && text.contains("msg=\"execguard: checks skipped"),
        "runc's text format: {text:?}"
    );
}

#[test]
fn a_panic_in_enforce_mode_still_passes_through_an_error_bundle() {
    let Some(a) = arm64_case("panic-enf") else {
        return;
    };
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"mode": "enforce", "log": {"path": t.path().join("own.jsonl")}}),
    );
    let marker = t.path().join("ran");
    let mut b = a.b;
    add_marker_hook(&mut b, &marker);
    let w = eg_run(&[&cfg], &[("EXECGUARD_FAULT", "panic")], &b, "panic-enf");
    assert_as_runc(&w, &a.runc, "panic in enforce mode");
    assert!(marker.exists(), "runc must have run (fail open)");
    let line = one_line(&w, "panic in enforce mode");
    assert!(line.contains("checks skipped"), "{line:?}");
    assert_no_panic_text(&w.stderr, "panic in enforce mode");
}

// =============================================================================================
// 2. The deadline

#[test]
fn checks_past_the_deadline_are_skipped_and_the_container_runs_as_with_runc() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"check_timeout_ms": 100, "log": {"path": t.path().join("own.jsonl")}}),
    );
    let b = good_bundle();
    let r = runc_ref(&b, "deadline-ref");
    let log = t.path().join("log.json");
    let w = eg_run(
        &[&cfg, "--log", &s(&log), "--log-format", "json"],
        &[("EXECGUARD_FAULT", "sleep:3000")],
        &b,
        "deadline",
    );
    assert_as_runc(&w, &r, "deadline");
    assert!(
        w.elapsed < Duration::from_millis(2500),
        "the run must not wait for the stalled checks: {:?}",
        w.elapsed
    );
    let line = one_line(&w, "deadline");
    assert!(
        line.contains("checks skipped") && line.contains("longer than 100 ms"),
        "{line:?}"
    );
    let ours = execguard_log_lines(&log);
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_log_line(&ours[0], "warning", "deadline --log");
    assert_eq!(ours[0]["msg"].as_str(), Some(line));

    // Checks that finish inside the deadline are not skipped: silence for a good bundle.
    let cfg = config_flag(
        t.path(),
        "c2.json",
        &json!({"check_timeout_ms": 5000, "log": {"path": t.path().join("own.jsonl")}}),
    );
    let w = eg_run(
        &[&cfg],
        &[("EXECGUARD_FAULT", "sleep:50")],
        &b,
        "deadline-in",
    );
    assert_as_runc(&w, &r, "checks inside the deadline");
    assert!(
        execguard_lines(&w.stderr).is_empty(),
        "nothing to say about a good bundle checked in time: {:?}",
        w.stderr
    );
}

// =============================================================================================
// 3. A broken config file

/// Runs the arm64 error bundle with a config that cannot be used, by flag and by
/// `EXECGUARD_CONFIG`: execguard says so naming `names`, writes a warning into `--log`, falls
/// back to the defaults in warn mode (the block is printed) and never refuses.
fn assert_broken_config(tag: &str, content: Option<&str>, names: &[&str]) {
    let Some(a) = arm64_case(tag) else {
        return;
    };
    let t = tmp();
    let path = t.path().join("cfg-under-test");
    match content {
        Some(c) => fs::write(&path, c).expect("write config"),
        None => fs::create_dir(&path).expect("config folder"),
    }
    let path_s = s(&path);
    for by_env in [false, true] {
        let what = format!(
            "{tag} ({})",
            if by_env { "EXECGUARD_CONFIG" } else { "flag" }
        );
        let log = t.path().join(format!("log-{by_env}.json"));
        let log_s = s(&log);
        let flag = format!("--execguard-config={path_s}");
        let mut pre: Vec<&str> = Vec::new();
        let mut env: Vec<(&str, &str)> = Vec::new();
        if by_env {
            env.push(("EXECGUARD_CONFIG", &path_s));
        } else {
            pre.push(&flag);
        }
        pre.extend_from_slice(&["--log", &log_s, "--log-format", "json"]);
        let w = eg_run(&pre, &env, &a.b, tag);
        assert_as_runc(&w, &a.runc, &what);
        let lines = execguard_lines(&w.stderr);
        let first = lines.first().copied().unwrap_or("");
        assert!(
            first.contains(&path_s) && first.contains("defaults") && first.contains("warn mode"),
            "{what}: the first line must name the config and say defaults in warn mode: {:?}",
            w.stderr
        );
        // Neither the config's own path nor the fixed words after the cause ("... in warn
        // mode") count as naming a key.
        let cause = |m: &str| {
            m.split("; running with the defaults")
                .next()
                .unwrap_or("")
                .replace(&path_s, "<config>")
        };
        for n in names {
            assert!(
                cause(first).contains(n),
                "{what}: the config line must name {n:?} in its cause: {first:?}"
            );
        }
        assert_arch_block(&w, &what);
        let ours = execguard_log_lines(&log);
        assert!(
            ours.iter().all(|v| v["level"] == "warning"),
            "{what}: warn mode writes only warnings to --log: {ours:?}"
        );
        let cfg_line = ours
            .iter()
            .find(|v| v["msg"].as_str().is_some_and(|m| m.contains(&path_s)))
            .unwrap_or_else(|| panic!("{what}: no --log warning about the config: {ours:?}"));
        assert_log_line(cfg_line, "warning", &what);
        for n in names {
            assert!(
                cfg_line["msg"]
                    .as_str()
                    .is_some_and(|m| cause(m).contains(n)),
                "{what}: the --log line must name {n:?}: {cfg_line}"
            );
        }
        // The defaults include execguard's own log: the config error is recorded there too.
        let own = Path::new(DEFAULT_OWN_LOG);
        let rotated = PathBuf::from(format!("{DEFAULT_OWN_LOG}.1"));
        let recorded = [own, rotated.as_path()].iter().any(|p| {
            fs::read_to_string(p).unwrap_or_default().lines().any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| v["container_id"] == w.id.as_str())
                    && l.contains(&path_s)
            })
        });
        assert!(
            recorded,
            "{what}: no config error line for {} in {DEFAULT_OWN_LOG}",
            w.id
        );
    }
}

#[test]
fn malformed_json_config_falls_back_to_warn_defaults() {
    assert_broken_config("cfg-malformed", Some("{\"log\": {\"path\": "), &[]);
}

#[test]
fn malformed_json_config_asking_for_enforce_is_not_enforced() {
    assert_broken_config("cfg-malformed-enf", Some("{\"mode\": \"enforce\", "), &[]);
}

#[test]
fn unknown_key_in_the_config_is_named_and_falls_back_to_warn_defaults() {
    assert_broken_config("cfg-unknown-key", Some(r#"{"mdoe": "warn"}"#), &["mdoe"]);
}

#[test]
fn unknown_key_next_to_enforce_is_not_enforced() {
    assert_broken_config(
        "cfg-unknown-key-enf",
        Some(r#"{"mode": "enforce", "mdoe": "enforce"}"#),
        &["mdoe"],
    );
}

#[test]
fn bad_mode_value_is_named_and_falls_back_to_warn_defaults() {
    assert_broken_config(
        "cfg-bad-mode",
        Some(r#"{"mode": "loud"}"#),
        &["loud", "mode"],
    );
}

#[test]
fn bad_value_next_to_enforce_is_named_and_not_enforced() {
    assert_broken_config(
        "cfg-bad-value-enf",
        Some(r#"{"mode": "enforce", "check_timeout_ms": "soon"}"#),
        &["soon", "check_timeout_ms"],
    );
}

#[test]
fn unknown_silence_code_next_to_enforce_is_named_and_not_enforced() {
    assert_broken_config(
        "cfg-bad-silence-enf",
        Some(r#"{"mode": "enforce", "silence": ["arch-mismatch", "no-such-code"]}"#),
        &["no-such-code"],
    );
}

#[test]
fn config_path_that_is_a_folder_falls_back_to_warn_defaults() {
    assert_broken_config("cfg-folder", None, &[]);
}

#[test]
fn config_path_that_is_a_fifo_never_blocks_the_start() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let fifo = t.path().join("cfg.fifo");
    mkfifo(&fifo, 0o644);
    let flag = format!("--execguard-config={}", fifo.display());
    let b = good_bundle();
    let r = runc_ref(&b, "cfg-fifo-ref");
    // Nobody ever writes the FIFO: opening it for reading blocks until a writer comes.
    let id = unique_id("cfg-fifo");
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut c = eg();
    c.arg(RUNTIME_FLAG)
        .arg(&flag)
        .arg("run")
        .arg("-b")
        .arg(b.path())
        .arg(&id);
    let mut w = run_raw(
        c,
        "execguard run, FIFO config",
        Duration::from_secs(5),
        || force_delete(None, &id),
    );
    w.id = id.clone();
    assert_as_runc(&w, &r, "FIFO config");
    let line = one_line(&w, "FIFO config");
    assert!(line.contains(&s(&fifo)), "{line:?}");
    // A pass-through subcommand reads the config only for "runtime": it must not hang either.
    let mut c = eg();
    c.arg(&flag).args(["state", "egt-no-such-container"]);
    let w = run_raw(
        c,
        "execguard state, FIFO config",
        Duration::from_secs(5),
        || {},
    );
    let mut c = runc();
    c.args(["state", "egt-no-such-container"]);
    let r = run_raw(c, "runc state", CALL_TIMEOUT, || {});
    assert_eq!(w.code(), r.code(), "{w:?}");
}

// =============================================================================================
// 4. execguard's own JSON log

#[test]
fn own_log_gets_one_complete_line_per_diagnosis() {
    let Some(a) = arm64_case("own-log") else {
        return;
    };
    let t = tmp();
    let own = t.path().join("d.jsonl");
    let warn = config_flag(t.path(), "w.json", &json!({"log": {"path": own}}));
    let w = eg_run(&[&warn], &[], &a.b, "own-log");
    assert_as_runc(&w, &a.runc, "own log, warn");
    let lines = json_lines(&own);
    assert_eq!(lines.len(), 1, "exactly one line: {lines:?}");
    let v = &lines[0];
    assert_eq!(v["schema_version"], 1, "{v}");
    assert_eq!(v["verdict"], "fail", "{v}");
    assert_eq!(v["findings"][0]["code"], "arch-mismatch", "{v}");
    assert!(v["time"].as_str().is_some_and(is_rfc3339), "{v}");
    assert_eq!(v["container_id"], w.id.as_str(), "{v}");
    assert_eq!(v["bundle"], s(a.b.path()).as_str(), "{v}");
    assert_eq!(v["mode"], "warn", "{v}");
    assert_eq!(v["action"], "started", "{v}");
    assert!(v["program"]["chain"].is_array(), "{v}");

    let enforce = config_flag(
        t.path(),
        "e.json",
        &json!({"mode": "enforce", "log": {"path": own}}),
    );
    let w = eg_run(&[&enforce], &[], &a.b, "own-log-enf");
    assert_eq!(w.code(), 1, "{w:?}");
    let lines = json_lines(&own);
    assert_eq!(lines.len(), 2, "one more line: {lines:?}");
    assert_eq!(lines[1]["mode"], "enforce", "{}", lines[1]);
    assert_eq!(lines[1]["action"], "refused", "{}", lines[1]);
    assert_eq!(lines[1]["container_id"], w.id.as_str());

    // A good bundle adds nothing, unless include_ok.
    let mut ok = Bundle::busybox();
    ok.args(&["/bin/busybox", "true"]);
    let _ = eg_run(&[&warn], &[], &ok, "own-log-ok");
    assert_eq!(json_lines(&own).len(), 2, "an ok diagnosis is not logged");
    let inc = config_flag(
        t.path(),
        "i.json",
        &json!({"log": {"path": own, "include_ok": true}}),
    );
    let w = eg_run(&[&inc], &[], &ok, "own-log-inc");
    assert_eq!(w.code(), 0, "{w:?}");
    let lines = json_lines(&own);
    assert_eq!(lines.len(), 3, "include_ok logs the ok one: {lines:?}");
    assert_eq!(lines[2]["verdict"], "ok", "{}", lines[2]);
    assert_eq!(lines[2]["action"], "started", "{}", lines[2]);
}

#[test]
fn an_unwritable_own_log_is_one_line_and_the_container_runs_as_with_runc() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let file = t.path().join("file");
    fs::write(&file, b"a file, not a folder\n").expect("write file");
    // A read-only file system and a full one (a tmpfs filled to its last block).
    let ro = t.path().join("ro");
    let full = t.path().join("full");
    fs::create_dir_all(&ro).expect("mkdir ro");
    fs::create_dir_all(&full).expect("mkdir full");
    let _ro = Mounted::tmpfs(&ro, "ro,size=64k");
    let _full = Mounted::tmpfs(&full, "size=16k");
    let mut filler = fs::File::create(full.join("filler")).expect("filler");
    while filler.write_all(&[0u8; 4096]).is_ok() {}
    drop(filler);
    assert!(
        fs::write(full.join("probe"), b"x").is_err()
            || fs::metadata(full.join("probe"))
                .map(|m| m.len())
                .unwrap_or(0)
                == 0,
        "the tmpfs must be full"
    );
    let b = warning_bundle();
    let r = runc_ref(&b, "own-log-ro-ref");
    assert_eq!(r.code(), 0, "{r:?}");
    assert_eq!(r.stdout, b"hello\n");
    for (i, target) in [
        file.join("d.jsonl"),
        PathBuf::from("/proc/version/x"),
        ro.join("d.jsonl"),
        full.join("d.jsonl"),
    ]
    .iter()
    .enumerate()
    {
        let what = format!("own log at {}", target.display());
        let cfg = config_flag(
            t.path(),
            &format!("c{i}.json"),
            &json!({"log": {"path": target}}),
        );
        let log = t.path().join(format!("log{i}.json"));
        let w = eg_run(
            &[&cfg, "--log", &s(&log), "--log-format", "json"],
            &[],
            &b,
            "own-log-ro",
        );
        assert_as_runc(&w, &r, &what);
        let said: Vec<&str> = execguard_lines(&w.stderr)
            .into_iter()
            .filter(|l| l.contains(&s(target)))
            .collect();
        assert_eq!(
            said.len(),
            1,
            "{what}: one line must say the log could not be written: {:?}",
            w.stderr
        );
        assert!(
            said[0].contains("cannot write") || said[0].contains("could not"),
            "{what}: {:?}",
            said[0]
        );
        assert!(
            execguard_lines(&w.stderr)
                .iter()
                .any(|l| l.contains("[shebang-too-long]")),
            "{what}: the diagnosis itself is still printed: {:?}",
            w.stderr
        );
        assert!(
            execguard_log_lines(&log)
                .iter()
                .any(|v| v["msg"].as_str().is_some_and(|m| m.contains(&s(target)))),
            "{what}: --log must carry the warning too"
        );
    }
    assert_eq!(
        fs::read(&file).expect("read file"),
        b"a file, not a folder\n",
        "the file in the way must be untouched"
    );
}

/// A tmpfs mounted for one test, lazily unmounted when dropped.
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(at: &Path, opts: &str) -> Mounted {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(st.success(), "mount tmpfs -o {opts} at {}", at.display());
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn own_log_rotates_to_dot_1_at_max_bytes() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let own = t.path().join("d.jsonl");
    let old = t.path().join("d.jsonl.1");
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"log": {"path": own, "max_bytes": 1}}),
    );
    let b = warning_bundle();
    let mut ids = Vec::new();
    for n in 0..3 {
        let w = eg_run(&[&cfg], &[], &b, "rotate");
        assert_eq!(w.code(), 0, "{w:?}");
        ids.push(w.id.clone());
        let cur = json_lines(&own);
        assert_eq!(
            cur.len(),
            1,
            "run {n}: the current log holds the newest line"
        );
        assert_eq!(cur[0]["container_id"], w.id.as_str());
        if n == 0 {
            assert!(!old.exists(), "no rotation on the first line");
        } else {
            let prev = json_lines(&old);
            assert_eq!(prev.len(), 1, "run {n}: {prev:?}");
            assert_eq!(
                prev[0]["container_id"],
                ids[n - 1].as_str(),
                "run {n}: <path>.1 holds the previous line (an older one is replaced)"
            );
        }
    }
    assert!(
        !t.path().join("d.jsonl.2").exists(),
        "one rotated file only"
    );
}

// =============================================================================================
// 5. binfmt_misc not visible

#[test]
fn binfmt_misc_not_visible_makes_arch_mismatch_a_warning_and_run_passes_through() {
    let Some(a) = arm64_case("no-binfmt") else {
        return;
    };
    let t = tmp();
    let empty = t.path().join("binfmt");
    fs::create_dir(&empty).expect("empty binfmt root");
    let check_findings = |v: &Value, what: &str| {
        assert_eq!(v["verdict"], "warn", "{what}: {v}");
        let f = v["findings"].as_array().cloned().unwrap_or_default();
        let am = f
            .iter()
            .find(|x| x["code"] == "arch-mismatch")
            .unwrap_or_else(|| panic!("{what}: no arch-mismatch: {v}"));
        assert_eq!(am["severity"], "warning", "{what}: {am}");
        let un = f
            .iter()
            .find(|x| x["code"] == "unverifiable")
            .unwrap_or_else(|| panic!("{what}: no unverifiable: {v}"));
        assert_eq!(un["severity"], "info", "{what}: {un}");
        assert!(
            un["message"]
                .as_str()
                .is_some_and(|m| m.contains("unknown")),
            "{what}: unknown, not missing: {un}"
        );
        assert!(
            !f.iter().any(|x| x["severity"] == "error"),
            "{what}: no error: {v}"
        );
    };
    for (what, args) in [
        (
            "config binfmt_misc_root",
            vec![
                config_flag(
                    t.path(),
                    "c.json",
                    &json!({"binfmt_misc_root": empty, "log": {"path": null}}),
                ),
                "check".into(),
            ],
        ),
        (
            "--binfmt-root",
            vec![
                config_flag(t.path(), "n.json", &json!({"log": {"path": null}})),
                "check".into(),
                "--binfmt-root".into(),
                s(&empty),
            ],
        ),
    ] {
        let mut args = args;
        args.extend([
            "--bundle".into(),
            s(a.b.path()),
            "--format".into(),
            "json".into(),
        ]);
        let c = eg_call(&args, &[]);
        assert_eq!(c.code(), 0, "{what}: a warning is exit 0: {c:?}");
        let v: Value = serde_json::from_slice(&c.stdout)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {c:?}"));
        check_findings(&v, what);
    }
    for mode in ["warn", "enforce"] {
        let cfg = config_flag(
            t.path(),
            &format!("r-{mode}.json"),
            &json!({"mode": mode, "binfmt_misc_root": empty, "log": {"path": null}}),
        );
        let w = eg_run(&[&cfg], &[], &a.b, &format!("no-binfmt-{mode}"));
        assert_as_runc(&w, &a.runc, &format!("binfmt unknown, {mode}"));
        assert_arch_block(&w, &format!("binfmt unknown, {mode}"));
    }
}

// =============================================================================================
// 6. Spec problems

/// A bundle whose config.json is `content` (None: no config.json): execguard run is runc run
/// plus exactly one line of execguard's naming config.json.
fn assert_bad_spec_is_runc(tag: &str, content: Option<&[u8]>) {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let b = Bundle::busybox();
    let write = || {
        let p = b.path().join("config.json");
        match content {
            Some(c) => fs::write(&p, c).expect("write config.json"),
            None => {
                let _ = fs::remove_file(&p);
            }
        }
    };
    // The run helpers save the config first: run by hand.
    let run = |cmd: Command, pre: &[&str], what: &str| {
        write();
        let id = unique_id(tag);
        let _g = ContainerGuard {
            root: None,
            id: id.clone(),
        };
        let mut cmd = cmd;
        cmd.args(pre).arg("run").arg("-b").arg(b.path()).arg(&id);
        let mut r = run_raw(cmd, what, CALL_TIMEOUT, || force_delete(None, &id));
        r.id = id;
        r
    };
    let r = run(runc(), &[], "runc run");
    assert_ne!(r.code(), 0, "runc refuses it: {r:?}");
    assert!(r.stderr.contains("runc run failed"), "{r:?}");
    let w = run(eg(), &[RUNTIME_FLAG, &cfg], "execguard run");
    assert_as_runc(&w, &r, tag);
    let line = one_line(&w, tag);
    assert!(line.contains("config.json"), "{tag}: {line:?}");
    // check cannot check: exit 2, nothing on stdout.
    let c = eg_call(&["check", "--bundle", &s(b.path())], &[]);
    assert_eq!(c.code(), 2, "{tag}: check must exit 2: {c:?}");
    assert!(c.stdout.is_empty(), "{tag}: {c:?}");
}

#[test]
fn a_bundle_without_config_json_fails_as_runc_fails() {
    assert_bad_spec_is_runc("spec-none", None);
}

#[test]
fn a_config_json_that_is_an_array_fails_as_runc_fails() {
    assert_bad_spec_is_runc("spec-array", Some(b"[]"));
}

#[test]
fn a_config_json_of_garbage_fails_as_runc_fails() {
    assert_bad_spec_is_runc("spec-garbage", Some(b"\x00\xffnot json at all {"));
}

#[test]
fn an_unknown_capability_is_read_leniently_and_still_diagnosed() {
    let Some(a) = arm64_case("cap-nope") else {
        return;
    };
    let mut b = a.b;
    b.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .expect("bounding")
        .push(json!("CAP_NOPE"));
    b.save();
    // The typed loader refuses the document ...
    let text = fs::read(b.path().join("config.json")).expect("read spec");
    assert!(
        serde_json::from_slice::<oci_spec::runtime::Spec>(&text).is_err(),
        "oci-spec must refuse CAP_NOPE for this test to mean anything"
    );
    // ... runc warns and carries on to the exec, which fails ...
    let r = runc_ref(&b, "cap-nope-ref");
    assert!(
        r.stderr.contains("CAP_NOPE") && r.stderr.contains("exec format error"),
        "runc ignores the unknown capability and fails at exec: {r:?}"
    );
    // ... and execguard still finds arch-mismatch.
    let c = execguard_check(&b);
    assert_eq!(c.leading()["code"], "arch-mismatch", "{}", c.json);
    let t = tmp();
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let w = eg_run(&[&cfg], &[], &b, "cap-nope");
    assert_as_runc(&w, &r, "CAP_NOPE");
    assert_arch_block(&w, "CAP_NOPE");

    // A good bundle with CAP_NOPE runs as with runc, and execguard says nothing.
    let mut g = good_bundle();
    g.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .expect("bounding")
        .push(json!("CAP_NOPE"));
    let r = runc_ref(&g, "cap-nope-good-ref");
    assert_eq!(r.code(), 7, "{r:?}");
    let w = eg_run(&[&cfg], &[], &g, "cap-nope-good");
    assert_as_runc(&w, &r, "CAP_NOPE, good bundle");
    assert!(execguard_lines(&w.stderr).is_empty(), "{:?}", w.stderr);
}

#[test]
fn a_spec_without_process_is_verdict_unknown_and_runs_as_runc() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.config
        .as_object_mut()
        .expect("config object")
        .remove("process");
    b.save();
    let c = eg_call(
        &["check", "--bundle", &s(b.path()), "--format", "json"],
        &[],
    );
    assert_eq!(c.code(), 0, "no error finding: exit 0: {c:?}");
    let v: Value = serde_json::from_slice(&c.stdout).expect("check JSON");
    assert_eq!(v["verdict"], "unknown", "{v}");
    assert!(
        v["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty() && f.iter().all(|x| x["code"] == "unverifiable")),
        "{v}"
    );
    let r = runc_ref(&b, "no-process-ref");
    assert_ne!(r.code(), 0, "{r:?}");
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"mode": "enforce", "log": {"path": null}}),
    );
    let w = eg_run(&[&cfg], &[], &b, "no-process");
    assert_as_runc(&w, &r, "no process");
}

/// Runs `cmd` with stdio discarded and returns (exit code, max RSS in KiB, time).
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_rusage(mut cmd: Command, what: &str) -> (i32, i64, Duration) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    loop {
        let mut st: libc::c_int = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut st, libc::WNOHANG, &mut ru) };
        if rc == pid {
            let code = if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                128 + libc::WTERMSIG(st)
            };
            return (code, ru.ru_maxrss as i64, start.elapsed());
        }
        assert!(rc >= 0, "wait4 {what}: {}", std::io::Error::last_os_error());
        if start.elapsed() > CALL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CALL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_50_mib_config_json_is_handled_within_bounds() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "hi"]);
    b.config["annotations"] = json!({"pad": "x".repeat(50 << 20)});
    b.save();
    let size = fs::metadata(b.path().join("config.json"))
        .expect("stat spec")
        .len() as i64;
    let mut c = eg();
    c.args(["check", "--bundle", &s(b.path()), "--format", "json"]);
    let (code, rss_kib, took) = run_rusage(c, "execguard check, 50 MiB spec");
    assert_eq!(code, 0, "a good bundle checks ok however large its spec");
    assert!(
        rss_kib * 1024 < 10 * size,
        "memory must stay bounded: {rss_kib} KiB for a {size}-byte spec"
    );
    assert!(took < Duration::from_secs(10), "check took {took:?}");

    let r = runc_ref(&b, "big-ref");
    assert_eq!(r.stdout, b"hi\n", "{r:?}");
    let t = tmp();
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let w = eg_run(&[&cfg], &[], &b, "big");
    assert_as_runc(&w, &r, "50 MiB spec");
    let lines = execguard_lines(&w.stderr);
    assert!(
        lines.is_empty() || (lines.len() == 1 && lines[0].contains("checks skipped")),
        "nothing, or the deadline's one line: {lines:?}"
    );
}

#[test]
fn a_config_json_past_the_size_cap_is_refused_by_check_without_reading_it_all() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.config["annotations"] = json!({"pad": "x".repeat(65 << 20)});
    b.save();
    let mut c = eg();
    c.args(["check", "--bundle", &s(b.path())]);
    let (code, rss_kib, _) = run_rusage(c, "execguard check, 65 MiB spec");
    assert_eq!(code, 2, "execguard could not check");
    assert!(
        rss_kib < 256 * 1024,
        "the read must stop at the cap: {rss_kib} KiB"
    );
    let c = eg_call(&["check", "--bundle", &s(b.path())], &[]);
    assert!(c.stdout.is_empty(), "{c:?}");
    let line = execguard_lines(&c.stderr).join("\n");
    assert!(
        line.contains("config.json") && line.contains("larger than"),
        "{:?}",
        c.stderr
    );
}

// =============================================================================================
// 7. Runtime choice faults

/// exit 1, nothing on stdout, exactly one `execguard: ` line (all of stderr) naming `named`.
fn assert_no_runtime(w: &Raw, named: &str, what: &str) {
    assert_eq!(w.code(), 1, "{what}: {w:?}");
    assert!(w.stdout.is_empty(), "{what}: nothing on stdout: {w:?}");
    let lines: Vec<&str> = w.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line: {:?}", w.stderr);
    assert!(
        lines[0].starts_with("execguard: ") && lines[0].contains(named),
        "{what}: the line must name {named:?}: {:?}",
        lines[0]
    );
    assert!(
        w.elapsed < Duration::from_secs(2),
        "{what}: fast: {:?}",
        w.elapsed
    );
}

#[test]
fn a_runtime_that_does_not_exist_or_cannot_run_is_one_line_and_exit_1() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let plain = t.path().join("not-executable");
    fs::write(&plain, b"#!/bin/sh\nexit 0\n").expect("write");
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).expect("chmod");
    let folder = t.path().join("folder");
    fs::create_dir(&folder).expect("folder");
    let b = good_bundle();
    for target in ["/nonexistent".to_string(), s(&plain), s(&folder)] {
        for form in ["eq", "space"] {
            let flags: Vec<String> = if form == "eq" {
                vec![format!("--execguard-runtime={target}")]
            } else {
                vec!["--execguard-runtime".into(), target.clone()]
            };
            let what = format!("runtime {target} ({form})");
            let mut args: Vec<String> = flags.clone();
            args.extend(["state".into(), "x".into()]);
            let w = eg_call(&args, &[]);
            assert_no_runtime(&w, &target, &format!("{what}, state"));
            let mut c = eg();
            c.args(&flags).arg(&cfg);
            let w = run_in(c, &[] as &[&str], &b, "no-runtime");
            assert_no_runtime(&w, &target, &format!("{what}, run"));
        }
        let w = eg_call(&["state", "x"], &[("EXECGUARD_RUNTIME", &target)]);
        assert_no_runtime(&w, &target, &format!("EXECGUARD_RUNTIME={target}"));
        assert!(w.stderr.contains("EXECGUARD_RUNTIME"), "{w:?}");
        let bad_cfg = config_flag(
            t.path(),
            "rt.json",
            &json!({"runtime": target, "log": {"path": null}}),
        );
        let mut c = eg();
        c.arg(&bad_cfg);
        let w = run_in(c, &[] as &[&str], &b, "no-runtime-cfg");
        assert_no_runtime(&w, &target, &format!("config runtime {target}, run"));
    }
    assert_eq!(
        fs::read(&plain).expect("read"),
        b"#!/bin/sh\nexit 0\n",
        "untouched"
    );
}

#[test]
fn execguard_itself_as_the_runtime_is_skipped_and_never_loops() {
    if !runtime_ready() {
        return;
    }
    let me = execguard_bin();
    // Named explicitly: nothing else to try, an error.
    let w = eg_call(
        &[
            format!("--execguard-runtime={me}"),
            "state".into(),
            "x".into(),
        ],
        &[],
    );
    assert_no_runtime(&w, &me, "--execguard-runtime=<execguard>");
    // Found as `runc` on PATH: skipped; with nothing after it, an error naming the search.
    let t = tmp();
    let dir = t.path().join("bin");
    fs::create_dir(&dir).expect("bin");
    symlink(&me, dir.join("runc")).expect("runc -> execguard");
    symlink(&me, dir.join("crun")).expect("crun -> execguard");
    let w = eg_call(&["state", "x"], &[("PATH", &s(&dir))]);
    assert_no_runtime(&w, &s(&dir), "runc and crun on PATH are execguard");
    // With the real runc later on PATH: that one is taken.
    let path = format!("{}:/usr/bin", dir.display());
    let v = eg_call(&["--execguard-version"], &[("PATH", &path)]);
    assert_eq!(v.code(), 0, "{v:?}");
    assert!(
        v.stdout_str().contains("runtime: /usr/bin/runc"),
        "the self link is skipped for the real runc: {v:?}"
    );
    let w = eg_call(&["--version"], &[("PATH", &path)]);
    let r = run_raw(
        {
            let mut c = runc();
            c.arg("--version");
            c
        },
        "runc --version",
        CALL_TIMEOUT,
        || {},
    );
    assert_eq!(w.stdout, r.stdout, "{w:?}");
    assert_eq!(w.code(), 0);
}

#[test]
fn a_wrapper_script_loop_is_stopped_by_the_marker() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let script = t.path().join("loop.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\nexec {} \"$@\"\n", execguard_bin()),
    )
    .expect("write loop script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let b = good_bundle();

    // A script that leads back to execguard, which then calls runc: no loop, it just runs.
    let once = run_in(
        {
            let mut c = eg();
            c.arg(format!("--execguard-runtime={}", script.display()))
                .arg(&cfg);
            c
        },
        &[] as &[&str],
        &b,
        "loop-once",
    );
    assert_eq!(once.code(), 7, "script -> execguard -> runc runs: {once:?}");
    assert_eq!(once.stdout, b"out\n", "{once:?}");

    // The same script as the runtime of every execguard call (EXECGUARD_RUNTIME is inherited):
    // a real loop, stopped by the marker's count.
    let log = t.path().join("log.json");
    let mut c = eg();
    c.arg(&cfg).env("EXECGUARD_RUNTIME", &script);
    let w = run_in(c, &["--log", &s(&log), "--log-format", "json"], &b, "loop");
    assert_eq!(w.code(), 1, "{w:?}");
    assert!(w.stdout.is_empty(), "{w:?}");
    assert!(w.elapsed < Duration::from_secs(2), "fast: {:?}", w.elapsed);
    let lines = execguard_lines(&w.stderr);
    assert_eq!(
        lines.len(),
        1,
        "one line, the loop (a good bundle has nothing else to say): {:?}",
        w.stderr
    );
    assert!(
        lines[0].contains("loop") && lines[0].contains("EXECGUARD_DELEGATED"),
        "{:?}",
        lines[0]
    );
    assert_eq!(others(&w.stderr), "", "runc never ran: {:?}", w.stderr);
    let all = json_lines(&log);
    let last = all.last().unwrap_or_else(|| panic!("empty --log"));
    assert_log_line(last, "error", "loop --log");
    assert!(
        last["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("execguard: ") && m.contains("loop")),
        "{last}"
    );
    let st = run_raw(
        {
            let mut c = runc();
            c.args(["state", &w.id]);
            c
        },
        "runc state",
        CALL_TIMEOUT,
        || {},
    );
    assert_ne!(st.code(), 0, "no container: {st:?}");

    // A pass-through subcommand stops the same way.
    let script_s = s(&script);
    let w = eg_call(&["state", "x"], &[("EXECGUARD_RUNTIME", script_s.as_str())]);
    assert_eq!(w.code(), 1, "{w:?}");
    assert!(w.stdout.is_empty(), "{w:?}");
    let lines: Vec<&str> = w.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", w.stderr);
    assert!(lines[0].starts_with("execguard: ") && lines[0].contains("loop"));
}

#[test]
fn execguard_runtime_env_and_the_execguard_runc_name_call_runc() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let b = good_bundle();
    let r = runc_ref(&b, "rt-env-ref");
    let rv = run_raw(
        {
            let mut c = runc();
            c.arg("--version");
            c
        },
        "runc --version",
        CALL_TIMEOUT,
        || {},
    );
    // EXECGUARD_RUNTIME
    let v = eg_call(&["--version"], &[("EXECGUARD_RUNTIME", RUNC)]);
    assert_eq!((v.code(), &v.stdout), (0, &rv.stdout), "{v:?}");
    let mut c = eg();
    c.env("EXECGUARD_RUNTIME", RUNC).arg(&cfg);
    let w = run_in(c, &[] as &[&str], &b, "rt-env");
    assert_as_runc(&w, &r, "EXECGUARD_RUNTIME=/usr/bin/runc");
    assert!(execguard_lines(&w.stderr).is_empty(), "{:?}", w.stderr);

    // execguard-runc -> execguard
    let link = t.path().join("execguard-runc");
    symlink(execguard_bin(), &link).expect("link");
    let mut c = Command::new(&link);
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c.arg("--version");
    let v = run_raw(c, "execguard-runc --version", CALL_TIMEOUT, || {});
    assert_eq!((v.code(), &v.stdout), (0, &rv.stdout), "{v:?}");
    let mut c = Command::new(&link);
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c.arg("--execguard-version");
    let v = run_raw(c, "execguard-runc --execguard-version", CALL_TIMEOUT, || {});
    assert!(
        v.stdout_str().contains("invoked by") && v.stdout_str().contains("runc"),
        "{v:?}"
    );
    let mut c = Command::new(&link);
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c.arg(&cfg);
    let w = run_in(c, &[] as &[&str], &b, "rt-link");
    assert_as_runc(&w, &r, "execguard-runc");
    assert!(execguard_lines(&w.stderr).is_empty(), "{:?}", w.stderr);
}

#[test]
fn the_invoked_name_picks_the_runtime_from_path_and_hands_over_the_path_as_dollar_0() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let bin = t.path().join("bin");
    fs::create_dir(&bin).expect("bin");
    let out = t.path().join("argv");
    // A script cannot see its own argv[0] (the kernel puts the interpreter there) but "$0" is
    // the path execguard exec'd.
    let standin = bin.join("egstandin");
    fs::write(
        &standin,
        "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > \"$STANDIN_OUT\"\nexit 42\n",
    )
    .expect("write stand-in");
    fs::set_permissions(&standin, fs::Permissions::from_mode(0o755)).expect("chmod");
    let link = t.path().join("execguard-egstandin");
    symlink(execguard_bin(), &link).expect("link");
    let mut c = Command::new(&link);
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("STANDIN_OUT", &out)
        .arg("state")
        .arg(OsStr::from_bytes(b"id-\xff\xfe"))
        .arg("")
        .arg("two words");
    let w = run_raw(c, "execguard-egstandin state", CALL_TIMEOUT, || {});
    assert_eq!(w.code(), 42, "the stand-in's exit status: {w:?}");
    let mut want = standin.as_os_str().as_bytes().to_vec();
    want.push(0);
    want.extend_from_slice(b"state\0id-\xff\xfe\0\0two words\0");
    assert_eq!(
        fs::read(&out).expect("stand-in ran"),
        want,
        "\"$0\" and \"$@\" byte for byte"
    );
}

const STANDIN_C: &str = r#"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
extern char **environ;
static FILE *open_out(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) exit(90);
    return f;
}
static void dump(const char *dir, const char *name, char **v) {
    FILE *f = open_out(dir, name);
    for (; *v; v++) { fwrite(*v, 1, strlen(*v), f); fputc(0, f); }
    fclose(f);
}
int main(int argc, char **argv) {
    (void)argc;
    const char *out = getenv("STANDIN_OUT");
    if (!out) return 91;
    /* Open descriptors first, before this program opens any of its own. */
    char fds[4096] = "";
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 92;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
        strncat(fds, e->d_name, sizeof fds - strlen(fds) - 2);
        strcat(fds, "\n");
    }
    closedir(d);
    FILE *f = open_out(out, "fds");
    fputs(fds, f);
    fclose(f);
    dump(out, "argv", argv);
    dump(out, "env", environ);
    char l[4096];
    ssize_t n = readlink("/proc/self/fd/5", l, sizeof l);
    f = open_out(out, "fd5");
    if (n > 0) fwrite(l, 1, (size_t)n, f);
    fclose(f);
    fputs("stand-in stdout\n", stdout);
    return 42;
}
"#;

/// Compiles the stand-in runtime into `dir`.
fn build_standin(dir: &Path) -> Option<PathBuf> {
    compile_c(dir, "standin-rt", STANDIN_C)
}

/// Makes `raw` the child's fd 5, open across exec.
fn inherit_as_fd5(c: &mut Command, raw: std::os::fd::RawFd) {
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if raw == 5 {
                if libc::fcntl(5, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// NUL-terminated records of a file.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == 0)
        .map(|r| r.strip_suffix(&[0]).unwrap_or(r).to_vec())
        .collect()
}

#[test]
fn the_runtime_gets_its_path_as_argv0_the_arguments_the_environment_and_fds_untouched() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let Some(rt) = build_standin(t.path()) else {
        return;
    };
    let out = t.path().join("out");
    fs::create_dir(&out).expect("out");
    let fd_file = t.path().join("fd5-target");
    fs::write(&fd_file, b"inherited\n").expect("write fd file");
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let b = warning_bundle();
    b.save();
    let bundle = b.path().as_os_str().as_bytes().to_vec();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "state",
            vec![
                b"--root".to_vec(),
                b"/run/r\xff".to_vec(),
                b"state".to_vec(),
                b"id-\xfe\x80".to_vec(),
                Vec::new(),
                b"a b\tc".to_vec(),
            ],
        ),
        (
            "run",
            vec![
                b"--debug".to_vec(),
                b"--log-format=text".to_vec(),
                b"run".to_vec(),
                b"-b".to_vec(),
                bundle,
                b"--no-pivot".to_vec(),
                b"ctr-\xff".to_vec(),
            ],
        ),
    ];
    // The test process may itself have inherited descriptors: the runtime must see exactly
    // what it sees when started directly, with fd 5 added the same way.
    let direct_fds = {
        let mut c = Command::new(&rt);
        c.env_clear().env("STANDIN_OUT", &out);
        let held = fs::File::open(&fd_file).expect("open fd file");
        inherit_as_fd5(&mut c, held.as_raw_fd());
        let w = run_raw(c, "stand-in directly", CALL_TIMEOUT, || {});
        assert_eq!(w.code(), 42, "{w:?}");
        let fds = fs::read_to_string(out.join("fds")).expect("fds recorded");
        let mut fds: Vec<String> = fds.lines().map(String::from).collect();
        fds.sort();
        assert!(fds.iter().any(|f| f == "5"), "{fds:?}");
        fds
    };
    for (what, args) in cases {
        let held = fs::File::open(&fd_file).expect("open fd file");
        let raw = held.as_raw_fd();
        let mut c = Command::new(execguard_bin());
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("STANDIN_OUT", &out)
            .env("FOO", "bar baz")
            .env("EMPTY", "")
            .env(OsStr::new("WEIRD"), OsStr::from_bytes(b"\xff\xfe="))
            .arg(format!("--execguard-runtime={}", rt.display()))
            .arg(&cfg)
            .args(args.iter().map(|a| OsStr::from_bytes(a)));
        inherit_as_fd5(&mut c, raw);
        let w = run_raw(
            c,
            &format!("execguard {what} -> stand-in"),
            CALL_TIMEOUT,
            || {},
        );
        drop(held);
        assert_eq!(w.code(), 42, "{what}: the runtime's exit status: {w:?}");
        assert_eq!(
            w.stdout, b"stand-in stdout\n",
            "{what}: stdout is the runtime's alone"
        );
        let argv = records(&fs::read(out.join("argv")).expect("argv recorded"));
        let mut want = vec![rt.as_os_str().as_bytes().to_vec()];
        want.extend(args.iter().cloned());
        assert_eq!(
            argv, want,
            "{what}: argv[0] is the runtime's path, the rest byte for byte"
        );
        let mut env = records(&fs::read(out.join("env")).expect("env recorded"));
        env.sort();
        let mut want_env: Vec<Vec<u8>> = vec![
            b"PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_vec(),
            [b"STANDIN_OUT=".as_slice(), out.as_os_str().as_bytes()].concat(),
            b"FOO=bar baz".to_vec(),
            b"EMPTY=".to_vec(),
            b"WEIRD=\xff\xfe=".to_vec(),
            b"EXECGUARD_DELEGATED=1".to_vec(),
        ];
        want_env.sort();
        assert_eq!(
            env.iter()
                .map(|e| OsString::from_vec(e.clone()))
                .collect::<Vec<_>>(),
            want_env
                .iter()
                .map(|e| OsString::from_vec(e.clone()))
                .collect::<Vec<_>>(),
            "{what}: the environment plus EXECGUARD_DELEGATED=1, nothing else"
        );
        assert_eq!(
            fs::read(out.join("fd5")).expect("fd5 recorded"),
            fd_file.as_os_str().as_bytes(),
            "{what}: the inherited fd 5 reaches the runtime"
        );
        let fds = fs::read_to_string(out.join("fds")).expect("fds recorded");
        let mut fds: Vec<String> = fds.lines().map(String::from).collect();
        fds.sort();
        assert_eq!(
            fds, direct_fds,
            "{what}: the inherited descriptors (as started directly) and none of execguard's"
        );
    }
}

// =============================================================================================
// 8. Modes per container

#[test]
fn the_enforce_annotation_refuses_an_error_bundle_under_a_warn_config() {
    let Some(a) = arm64_case("ann-enf") else {
        return;
    };
    let t = tmp();
    let own = t.path().join("own.jsonl");
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": own}}));
    let mut b = a.b;
    b.config["annotations"] = json!({"io.execguard.mode": "enforce"});
    // Control: runc runs the hook.
    let control = t.path().join("control");
    add_marker_hook(&mut b, &control);
    let r = runc_ref(&b, "ann-enf-ctl");
    assert!(control.exists(), "the hook runs under plain runc: {r:?}");
    fs::remove_file(&control).expect("reset control");
    let log = t.path().join("log.json");
    let w = eg_run(
        &[&cfg, "--log", &s(&log), "--log-format", "json"],
        &[],
        &b,
        "ann-enf",
    );
    assert_eq!(w.code(), 1, "refused: {w:?}");
    assert!(w.stdout.is_empty(), "{w:?}");
    assert!(!control.exists(), "runc never ran");
    assert_eq!(
        others(&w.stderr),
        "",
        "only execguard speaks: {:?}",
        w.stderr
    );
    assert!(w.stderr.contains("[arch-mismatch]"), "{:?}", w.stderr);
    let st = run_raw(
        {
            let mut c = runc();
            c.args(["state", &w.id]);
            c
        },
        "runc state",
        CALL_TIMEOUT,
        || {},
    );
    assert_ne!(st.code(), 0, "no container: {st:?}");
    let all = json_lines(&log);
    let last = all.last().unwrap_or_else(|| panic!("empty --log"));
    assert_log_line(last, "error", "enforce annotation");
    assert!(
        last["msg"]
            .as_str()
            .is_some_and(|m| m.contains("arch-mismatch")),
        "{last}"
    );
    let own = json_lines(&own);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["mode"], "enforce");
    assert_eq!(own[0]["action"], "refused");
}

#[test]
fn the_off_annotation_silences_execguard_under_an_enforce_config() {
    let Some(a) = arm64_case("ann-off") else {
        return;
    };
    let t = tmp();
    let own = t.path().join("own.jsonl");
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"mode": "enforce", "log": {"path": own}}),
    );
    let mut b = a.b;
    b.config["annotations"] = json!({"io.execguard.mode": "off"});
    let marker = t.path().join("ran");
    add_marker_hook(&mut b, &marker);
    let r = runc_ref(&b, "ann-off-ref");
    fs::remove_file(&marker).expect("reset marker");
    let log = t.path().join("log.json");
    let w = eg_run(
        &[&cfg, "--log", &s(&log), "--log-format", "json"],
        &[],
        &b,
        "ann-off",
    );
    assert_as_runc(&w, &r, "off annotation");
    assert!(marker.exists(), "runc ran");
    assert!(
        !w.stderr.contains("execguard"),
        "no execguard output: {:?}",
        w.stderr
    );
    assert!(execguard_log_lines(&log).is_empty(), "nothing in --log");
    assert!(json_lines(&own).is_empty(), "nothing in the own log");
    // Control: without the annotation the same config refuses the same bundle.
    b.config
        .as_object_mut()
        .expect("config object")
        .remove("annotations");
    fs::remove_file(&marker).expect("reset marker");
    let w = eg_run(&[&cfg], &[], &b, "ann-off-ctl");
    assert_eq!(w.code(), 1, "enforce config alone refuses: {w:?}");
    assert!(!marker.exists(), "refused before runc");
}

#[test]
fn the_cri_sandbox_is_never_enforced() {
    let Some(a) = arm64_case("sandbox") else {
        return;
    };
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"mode": "enforce", "log": {"path": t.path().join("own.jsonl")}}),
    );
    for ann in [
        json!({"io.kubernetes.cri.container-type": "sandbox"}),
        json!({"io.kubernetes.cri.container-type": "sandbox", "io.execguard.mode": "enforce"}),
    ] {
        let mut b = Bundle::empty();
        b.config = a.b.config.clone();
        b.copy_in(a.b.host("/bin/busybox"), "/bin/busybox", Some(0o755));
        b.config["annotations"] = ann.clone();
        let marker = t.path().join("ran");
        let _ = fs::remove_file(&marker);
        add_marker_hook(&mut b, &marker);
        let log = t.path().join("log.json");
        let _ = fs::remove_file(&log);
        let w = eg_run(
            &[&cfg, "--log", &s(&log), "--log-format", "json"],
            &[],
            &b,
            "sandbox",
        );
        assert_as_runc(&w, &a.runc, &format!("sandbox {ann}"));
        assert!(marker.exists(), "runc ran for {ann}");
        assert_arch_block(&w, &format!("sandbox {ann}"));
        assert!(
            execguard_log_lines(&log)
                .iter()
                .all(|v| v["level"] == "warning"),
            "warn, not enforce: no execguard error line in --log for {ann}"
        );
    }
}

#[test]
fn a_silenced_code_is_neither_printed_nor_enforced() {
    let Some(a) = arm64_case("silence") else {
        return;
    };
    let t = tmp();
    let own = t.path().join("own.jsonl");
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"mode": "enforce", "silence": ["arch-mismatch"], "log": {"path": own}}),
    );
    let mut b = a.b;
    let marker = t.path().join("ran");
    add_marker_hook(&mut b, &marker);
    let r = runc_ref(&b, "silence-ref");
    fs::remove_file(&marker).expect("reset marker");
    let log = t.path().join("log.json");
    let w = eg_run(
        &[&cfg, "--log", &s(&log), "--log-format", "json"],
        &[],
        &b,
        "silence",
    );
    assert_as_runc(&w, &r, "silenced");
    assert!(marker.exists(), "not refused");
    assert!(
        execguard_lines(&w.stderr).is_empty() && !w.stderr.contains("arch-mismatch"),
        "nothing printed for a silenced code: {:?}",
        w.stderr
    );
    assert!(
        !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("arch-mismatch"),
        "nothing in --log"
    );
    // Control: the same enforce config without `silence` refuses and prints the code.
    let loud = config_flag(
        t.path(),
        "loud.json",
        &json!({"mode": "enforce", "log": {"path": own}}),
    );
    fs::remove_file(&marker).expect("reset marker");
    let w = eg_run(&[&loud], &[], &b, "silence-ctl");
    assert_eq!(w.code(), 1, "refused without silence: {w:?}");
    assert!(!marker.exists(), "refused before runc");
    assert!(w.stderr.contains("[arch-mismatch]"), "{:?}", w.stderr);
}

#[test]
fn a_bad_mode_annotation_is_named_and_ignored() {
    let Some(a) = arm64_case("ann-bad") else {
        return;
    };
    let t = tmp();
    let cfg = config_flag(t.path(), "c.json", &json!({"log": {"path": null}}));
    let mut b = a.b;
    b.config["annotations"] = json!({"io.execguard.mode": "loud"});
    let w = eg_run(&[&cfg], &[], &b, "ann-bad");
    assert_as_runc(&w, &a.runc, "bad annotation");
    assert!(
        execguard_lines(&w.stderr)
            .iter()
            .any(|l| l.contains("io.execguard.mode") && l.contains("loud")),
        "{:?}",
        w.stderr
    );
    assert_arch_block(&w, "bad annotation");
}

// =============================================================================================
// 9. Never stdout

/// What `create`, `runc start` and the container did.
#[derive(Debug, PartialEq, Eq)]
struct Created {
    /// Exit status of create.
    create: i32,
    /// Exit status of `runc start`, when create succeeded.
    start: Option<i32>,
    /// The container's stdout bytes (create's stdout file).
    stdout: Vec<u8>,
    /// create's stderr file (the container's stderr too).
    stderr: String,
}

/// `cmd PRE... create -b B ID`, then `runc start`, until stopped.
fn create_and_start(mut cmd: Command, pre: &[&str], b: &Bundle, tag: &str) -> Created {
    b.save();
    let t = tmp();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    cmd.args(pre).arg("create").arg("-b").arg(b.path()).arg(&id);
    let out = t.path().join("out");
    let err = t.path().join("err");
    let st = run_to_files(cmd, &out, &err, "create");
    let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
    let mut start = None;
    if code == 0 {
        let mut c = runc();
        c.args(["start", &id]);
        start = Some(run_raw(c, "runc start", CALL_TIMEOUT, || {}).code());
        let t0 = Instant::now();
        loop {
            let mut c = runc();
            c.args(["state", &id]);
            let s = run_raw(c, "runc state", CALL_TIMEOUT, || {});
            let v: Value = serde_json::from_slice(&s.stdout).unwrap_or(Value::Null);
            if v["status"] == "stopped" {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "never stopped: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Created {
        create: code,
        start,
        stdout: fs::read(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
}

#[test]
fn create_and_run_with_findings_write_nothing_to_stdout_but_the_containers() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"log": {"path": t.path().join("own.jsonl")}}),
    );
    let b = warning_bundle();
    // run
    let r = runc_ref(&b, "stdout-ref");
    assert_eq!(r.stdout, b"hello\n", "{r:?}");
    let w = eg_run(&[&cfg], &[], &b, "stdout");
    assert_as_runc(&w, &r, "run with a warning");
    assert!(
        w.stderr.contains("[shebang-too-long]"),
        "the block goes to stderr: {:?}",
        w.stderr
    );
    // create + start
    let r = create_and_start(runc(), &[], &b, "stdout-c-ref");
    assert_eq!(
        (r.create, r.stdout.as_slice()),
        (0, b"hello\n".as_slice()),
        "{r:?}"
    );
    let mut c = eg();
    c.arg(RUNTIME_FLAG);
    let w = create_and_start(c, &[&cfg], &b, "stdout-c");
    assert_eq!((w.create, w.start), (r.create, r.start), "{w:?}");
    assert_eq!(
        w.stdout, r.stdout,
        "create: stdout must be the container's alone"
    );
    assert!(w.stderr.contains("[shebang-too-long]"), "{w:?}");
    assert_eq!(
        others(&w.stderr),
        r.stderr,
        "create: runc's stderr unchanged"
    );
}

#[test]
fn an_error_bundle_in_warn_and_enforce_writes_nothing_to_stdout() {
    let Some(a) = arm64_case("stdout-err") else {
        return;
    };
    let t = tmp();
    let warn = config_flag(
        t.path(),
        "w.json",
        &json!({"log": {"path": t.path().join("own.jsonl")}}),
    );
    let enforce = config_flag(
        t.path(),
        "e.json",
        &json!({"mode": "enforce", "log": {"path": t.path().join("own.jsonl")}}),
    );
    let w = eg_run(&[&warn], &[], &a.b, "stdout-err-w");
    assert_as_runc(&w, &a.runc, "warn, error bundle");
    assert_arch_block(&w, "warn, error bundle");
    let w = eg_run(&[&enforce], &[], &a.b, "stdout-err-e");
    assert_eq!(w.code(), 1, "{w:?}");
    assert!(w.stdout.is_empty(), "enforce: nothing on stdout: {w:?}");
    let r = create_and_start(runc(), &[], &a.b, "stdout-err-c-ref");
    let mut c = eg();
    c.arg(RUNTIME_FLAG);
    let w = create_and_start(c, &[&warn], &a.b, "stdout-err-c");
    assert_eq!((w.create, w.start), (r.create, r.start), "{w:?}");
    assert_eq!(
        w.stdout, r.stdout,
        "create of an error bundle: stdout is runc's"
    );
    assert!(w.stderr.contains("[arch-mismatch]"), "{w:?}");
    assert_eq!(
        others(&w.stderr),
        r.stderr,
        "create: runc's stderr unchanged"
    );
}

// ---------------------------------------------------------------------------------------------
// Killed mid-create (containerd kills the runtime on a timeout)

/// Processes whose command line holds every one of `words`.
fn processes_with(words: &[&str]) -> Vec<i32> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if words.iter().all(|w| text.contains(w)) && pid != std::process::id() as i32 {
            found.push(pid);
        }
    }
    found
}

/// What a create killed while its createRuntime hook runs leaves: (a `create` process for the
/// id still alive, the state folder present, `delete --force` exit code, state folder present
/// after it).
fn kill_mid_create(wrapped: bool, tag: &str) -> (bool, bool, i32, bool) {
    let root = tmp();
    let id = unique_id(tag);
    // A sleep only this case runs: its length is the marker.
    let marker = format!(
        "{}.{}",
        30,
        std::process::id() % 1000 + u32::from(wrapped) * 1000
    );
    let mut b = good_bundle();
    b.add_hook("createRuntime", "/bin/sleep", &["sleep", &marker]);
    b.save();
    let mut c = if wrapped {
        let mut c = eg();
        c.arg(format!("--execguard-runtime={RUNC}"));
        c
    } else {
        runc()
    };
    c.arg("--root")
        .arg(root.path())
        .args(["create", "-b"])
        .arg(b.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn create");
    let start = Instant::now();
    while processes_with(&["sleep", &marker]).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the createRuntime hook never ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    // PR_SET_PDEATHSIG takes effect at once; give the kernel a moment to finish the kill.
    let mut create_alive = true;
    for _ in 0..200 {
        create_alive = !processes_with(&["create", &id]).is_empty();
        if !create_alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let state = root.path().join(&id).exists();
    let mut d = runc();
    d.arg("--root")
        .arg(root.path())
        .args(["delete", "--force", &id]);
    let del = run_raw(d, "runc delete --force", Duration::from_secs(20), || {});
    let after = root.path().join(&id).exists();
    for pid in processes_with(&["sleep", &marker]) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    (create_alive, state, del.status.code().unwrap_or(-1), after)
}

#[test]
fn killing_execguard_mid_create_leaves_what_killing_runc_leaves() {
    if !runtime_ready() {
        return;
    }
    let bare = kill_mid_create(false, "kill-bare");
    let wrapped = kill_mid_create(true, "kill-eg");
    eprintln!("killed mid-create: runc alone {bare:?}, through execguard {wrapped:?}");
    assert!(!bare.0, "runc killed: no create left running");
    assert!(
        !wrapped.0,
        "execguard killed: its runtime child dies with it (PR_SET_PDEATHSIG), no create left running"
    );
    assert_eq!(
        wrapped, bare,
        "(create alive, state left, delete --force status, state after delete): through execguard vs runc alone"
    );
    assert!(!wrapped.3, "delete --force cleans what is left");
}

// ---------------------------------------------------------------------------------------------
// A rootfs on a file system that stalls (a FUSE mount whose daemon never answers)

/// A FUSE mount that nobody serves: every lookup below it waits until the connection is
/// aborted, which dropping this does (closing /dev/fuse aborts it), then it is unmounted.
struct StalledFuse {
    at: PathBuf,
    dev: Option<fs::File>,
}

impl StalledFuse {
    fn mount(at: &Path) -> Option<StalledFuse> {
        use std::os::fd::AsRawFd;
        let dev = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .ok()?;
        let opts = format!("fd={},rootmode=40000,user_id=0,group_id=0", dev.as_raw_fd());
        let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
        let (src, target, fstype, data) = (
            c("execguard-stall"),
            c(&at.to_string_lossy()),
            c("fuse"),
            c(&opts),
        );
        // SAFETY: valid NUL-terminated strings for the duration of the call.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        (r == 0).then(|| StalledFuse {
            at: at.to_path_buf(),
            dev: Some(dev),
        })
    }

    /// Abort the connection: what is waiting fails with ENOTCONN.
    fn abort(&mut self) {
        self.dev.take();
    }
}

impl Drop for StalledFuse {
    fn drop(&mut self) {
        self.abort();
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Starts `cmd` on a bundle whose program lies on a stalled FUSE mount, waits until it is
/// stuck, checks what it has become, aborts the mount and returns the outcome.
fn run_on_stalled(mut cmd: Command, b: &Bundle, what: &str) -> Option<(Raw, PathBuf)> {
    let at = b.host("/stall");
    fs::create_dir_all(&at).expect("mkdir stall");
    let mut fuse = StalledFuse::mount(&at)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    std::thread::sleep(Duration::from_millis(1500));
    // Whatever the process is by now (execguard exec's the runtime in place: same pid).
    let exe = fs::read_link(format!("/proc/{}/exe", child.id())).unwrap_or_default();
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "{what}: the stalled lookup must still be waiting"
    );
    fuse.abort();
    let out = loop {
        if child.try_wait().expect("wait").is_some() {
            break child.wait_with_output().expect("output");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: still running after the mount was aborted"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(fuse);
    Some((
        Raw {
            status: out.status,
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
            id: String::new(),
        },
        exe,
    ))
}

#[test]
fn a_rootfs_on_a_stalled_mount_hits_the_deadline_and_hands_over_to_the_runtime() {
    if !runtime_ready()
        || !require(
            Path::new("/dev/fuse").exists(),
            "no /dev/fuse for a stalled FUSE mount",
        )
    {
        return;
    }
    let t = tmp();
    let cfg = config_flag(
        t.path(),
        "c.json",
        &json!({"check_timeout_ms": 300, "log": {"path": t.path().join("own.jsonl")}}),
    );
    let mut b = Bundle::busybox();
    b.args(&["/stall/app"]);
    b.save();
    let ref_id = unique_id("stall-ref");
    let eg_id = unique_id("stall-eg");
    let _g1 = ContainerGuard {
        root: None,
        id: ref_id.clone(),
    };
    let _g2 = ContainerGuard {
        root: None,
        id: eg_id.clone(),
    };
    let mut c = runc();
    c.args(["run", "-b"]).arg(b.path()).arg(&ref_id);
    let Some((r, _)) = run_on_stalled(c, &b, "runc alone") else {
        require(false, "cannot mount a FUSE file system here");
        return;
    };
    let mut c = eg();
    c.arg(format!("--execguard-runtime={RUNC}"))
        .arg(&cfg)
        .args(["run", "-b"])
        .arg(b.path())
        .arg(&eg_id);
    let (w, exe) = run_on_stalled(c, &b, "execguard").expect("mounted once already");
    assert_eq!(
        exe,
        fs::canonicalize(RUNC).expect("runc path"),
        "after the deadline execguard must have exec'd the runtime (it stalls in runc now, as runc alone does)"
    );
    assert_ne!(r.code(), 0, "runc fails once the mount is aborted: {r:?}");
    eprintln!(
        "stalled mount: runc alone {} {:?}; through execguard {} {:?}",
        r.code(),
        r.stderr,
        w.code(),
        w.stderr
    );
    let line = one_line(&w, "stalled mount");
    assert!(
        line.contains("checks skipped") && line.contains("longer than 300 ms"),
        "{line:?}"
    );
    assert_eq!(w.code(), r.code(), "exit as runc alone: {w:?} vs {r:?}");
    assert_eq!(
        norm(&others(&w.stderr), &eg_id),
        norm(&r.stderr, &ref_id),
        "runc's own words unchanged"
    );
}

// ---------------------------------------------------------------------------------------------
// /proc/<pid>/root refused

/// `cmd` with CAP_SYS_PTRACE dropped from its bounding set before exec, so neither it nor the
/// runtime it starts has it: a hardened node. The kernel then refuses /proc/<pid>/root of a
/// container in its own user namespace (fs/proc/base.c, proc_fd_access_allowed, and
/// kernel/ptrace.c, __ptrace_may_access: other uid, no CAP_SYS_PTRACE), while runc still creates
/// and starts it.
fn without_ptrace(mut cmd: Command) -> Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // include/uapi/linux/capability.h: CAP_SYS_PTRACE is 19.
            const CAP_SYS_PTRACE: libc::c_ulong = 19;
            if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// `bundle` in its own user namespace (root inside is host uid 100000), with the mount points
/// runc cannot make in a root it does not own, readable by the mapped root.
fn in_user_namespace(b: &mut Bundle) {
    for d in ["/proc", "/dev", "/sys"] {
        b.mkdir(d, 0o755);
    }
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");
    let map = json!([{"containerID": 0, "hostID": 100_000, "size": 65_536}]);
    let linux = &mut b.config["linux"];
    linux["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "user"}));
    linux["uidMappings"] = map.clone();
    linux["gidMappings"] = map;
}

/// User namespaces can be made (a missing one is a failure under CI).
fn user_namespaces() -> bool {
    require(
        fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|s| s.trim() != "0"),
        "user namespaces are disabled (/proc/sys/user/max_user_namespaces)",
    )
}

/// The one line for a refused live view: it names what was skipped, why, and what was used.
fn assert_live_skipped(line: &str, what: &str) {
    assert!(
        line.contains("live checks skipped, using the bundle's view")
            && line.contains("/root")
            && line.contains("Permission denied"),
        "{what}: the line must say the live view was refused and the bundle's used: {line:?}"
    );
}

#[test]
fn a_refused_proc_root_is_one_line_and_the_container_runs_as_with_runc() {
    if !runtime_ready() || !user_namespaces() {
        return;
    }
    let mut b = good_bundle();
    in_user_namespace(&mut b);
    let r = create_and_start(without_ptrace(runc()), &[], &b, "noptrace-ref");
    assert_eq!(
        (r.create, r.start, r.stdout.as_slice()),
        (0, Some(0), b"out\n".as_slice()),
        "runc alone must create and run the container without CAP_SYS_PTRACE: {r:?}"
    );
    let mut c = without_ptrace(eg());
    c.arg(RUNTIME_FLAG);
    let w = create_and_start(c, &[], &b, "noptrace");
    assert_eq!(
        (w.create, w.start, w.stdout.as_slice()),
        (r.create, r.start, r.stdout.as_slice()),
        "the container must run as with runc: {w:?}"
    );
    let lines = execguard_lines(&w.stderr);
    assert_eq!(lines.len(), 1, "one execguard line: {:?}", w.stderr);
    assert_live_skipped(lines[0], "good bundle");
    assert_eq!(
        others(&w.stderr),
        r.stderr,
        "the container's own stderr must be untouched"
    );
}

#[test]
fn a_refused_proc_root_falls_back_to_the_bundle_view_and_enforce_does_not_undo_the_create() {
    if !runtime_ready() || !user_namespaces() {
        return;
    }
    let t = tmp();
    // The bundle's view predicts the failure: the script's interpreter is not in the image.
    let mut b = Bundle::busybox();
    b.write("/app", b"#!/opt/missing/sh\necho hi\n", 0o755);
    b.args(&["/app"]);
    in_user_namespace(&mut b);
    let r = create_and_start(without_ptrace(runc()), &[], &b, "noptrace-miss-ref");
    assert_eq!(r.create, 0, "runc creates it: {r:?}");
    assert!(
        r.stderr.contains("no such file or directory"),
        "the start fails on the missing interpreter: {r:?}"
    );
    for mode in ["warn", "enforce"] {
        let mut c = without_ptrace(eg());
        c.arg(RUNTIME_FLAG).arg(format!(
            "--execguard-config={}",
            mode_config(t.path(), mode).display()
        ));
        let w = create_and_start(c, &[], &b, "noptrace-miss");
        // Without the live view, a missing file is no reason to undo what runc made.
        assert_eq!(
            (w.create, w.start, w.stdout.as_slice()),
            (r.create, r.start, r.stdout.as_slice()),
            "{mode}: create and start must be runc's: {w:?}"
        );
        let lines = execguard_lines(&w.stderr);
        assert!(
            lines
                .first()
                .is_some_and(|l| l.contains("live checks skipped")),
            "{mode}: the skip is said first: {:?}",
            w.stderr
        );
        assert_live_skipped(lines[0], mode);
        assert!(
            w.stderr.contains("[shebang-interpreter-missing]"),
            "{mode}: the bundle's view must explain the start that will fail: {:?}",
            w.stderr
        );
    }
}
