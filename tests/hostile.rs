//! Hostile images, each a real bundle: `execguard check` (JSON and text) must finish in
//! bounded time and memory, exit 0 or 1, never print panic text, and escape every untrusted
//! byte; started through `execguard run` and through plain runc, the container must behave
//! exactly as under runc (exit status, stdout, runc's own stderr and log lines), and a
//! prediction must agree with the kernel: an error finding means runc fails, a clean `ok`
//! means it runs. Links that leave the root are proven never to open the host file they name:
//! the canary lives on a private tmpfs mounted `strictatime` and watched by fanotify, and its
//! content must never show in any output.

mod common;

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const RUNTIME_FLAG: &str = "--execguard-runtime=/usr/bin/runc";
/// Wall time one `execguard check` of a hostile bundle may take (a loaded 2-core CI machine,
/// debug build; a good bundle takes ~15 ms).
const CHECK_LIMIT: Duration = Duration::from_secs(5);
/// Max RSS one `execguard check` may reach (the debug build idles at ~9 MiB).
const CHECK_RSS_KIB: i64 = 16 * 1024;
/// Exit status of the tiny ELF ([`tiny_elf`]) when the kernel runs it.
const TINY_EXIT: i32 = 42;

// =============================================================================================
// Processes

/// What one process did, with its output as bytes and its peak memory.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    /// `ru_maxrss` from wait4 (KiB).
    rss_kib: i64,
    /// The container id, when the call ran one.
    id: String,
}

impl Run {
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs `cmd` (stdin /dev/null, stdout and stderr captured, in a process group of its own)
/// for at most `limit`, reaping it with wait4; on timeout `on_timeout` runs, the group is
/// killed and the test fails.
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_raw(mut cmd: Command, what: &str, limit: Duration, on_timeout: impl FnOnce()) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    let pipes = Pipes::take(&mut child);
    let mut timed_out = false;
    let mut on_timeout = Some(on_timeout);
    let (st, ru) = loop {
        let mut st: libc::c_int = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if timed_out { 0 } else { libc::WNOHANG };
        // SAFETY: waits for our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut st, flags, &mut ru) };
        if rc == pid {
            break (st, ru);
        }
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::Interrupted,
                "wait4 {what}: {e}"
            );
            continue;
        }
        if !timed_out && start.elapsed() > limit {
            timed_out = true;
            if let Some(f) = on_timeout.take() {
                f();
            }
            // SAFETY: signals our own, not yet reaped, child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            continue;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = start.elapsed();
    let code = if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        128 + libc::WTERMSIG(st)
    };
    let (stdout, stderr) = pipes.collect();
    let r = Run {
        code,
        stdout,
        stderr,
        elapsed,
        rss_kib: ru.ru_maxrss,
        id: String::new(),
    };
    assert!(
        !timed_out,
        "{what} did not finish within {limit:?}: {r:?}\nstderr: {}",
        r.err()
    );
    r
}

fn tmp(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("egt-hostile-{tag}-"))
        .tempdir()
        .expect("temp folder")
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

// =============================================================================================
// What every output must look like

/// Characters a terminal would act on or hide: control characters (C0, DEL, C1), the
/// invisible and bidi format characters execguard escapes, and U+FFFD, which only a lossy
/// conversion of a byte that should have become `\xHH` produces here.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F
            | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFD)
}

/// `bytes` is text a terminal can show as it is: valid UTF-8 and no unsafe character but LF.
fn assert_printable(bytes: &[u8], what: &str) {
    let text = std::str::from_utf8(bytes)
        .unwrap_or_else(|e| panic!("{what}: not valid UTF-8 ({e}): {bytes:?}"));
    if let Some(c) = text.chars().find(|&c| c != '\n' && is_unsafe_char(c)) {
        panic!("{what}: unescaped {c:?} in {text:?}");
    }
}

/// Every string in a JSON value (keys included) is free of unsafe characters.
fn assert_json_clean(v: &Value, what: &str) {
    match v {
        Value::String(t) => {
            if let Some(c) = t.chars().find(|&c| is_unsafe_char(c)) {
                panic!("{what}: unescaped {c:?} in JSON string {t:?}");
            }
        }
        Value::Array(a) => a.iter().for_each(|x| assert_json_clean(x, what)),
        Value::Object(o) => {
            for (k, x) in o {
                assert!(
                    !k.chars().any(is_unsafe_char),
                    "{what}: unescaped key {k:?}"
                );
                assert_json_clean(x, what);
            }
        }
        _ => {}
    }
}

fn assert_no_panic_text(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    for bad in [
        "panicked at",
        "stack backtrace",
        "RUST_BACKTRACE",
        "note: run with",
        "internal error (panic",
    ] {
        assert!(
            !text.contains(bad),
            "{what}: panic text {bad:?} in the output: {text:?}"
        );
    }
}

fn assert_absent(hay: &[u8], needles: &[&[u8]], what: &str) {
    for n in needles {
        assert!(
            !n.is_empty() && !hay.windows(n.len()).any(|w| w == *n),
            "{what}: the canary's content {:?} leaked into the output: {:?}",
            String::from_utf8_lossy(n),
            String::from_utf8_lossy(hay)
        );
    }
}

/// Every line execguard wrote to its stderr, as bytes (without the newline).
fn eg_lines(stderr: &[u8]) -> Vec<&[u8]> {
    stderr
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"execguard: "))
        .collect()
}

/// stderr without execguard's lines, byte for byte otherwise.
fn others_bytes(stderr: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in stderr.split_inclusive(|&b| b == b'\n') {
        if !l.starts_with(b"execguard: ") {
            out.extend_from_slice(l);
        }
    }
    out
}

/// execguard's block at the head of a `run`'s stderr (it writes before it execs the
/// runtime), and the rest: what the runtime wrote. A line starting `execguard: ` that the
/// runtime itself prints (a raw newline in args[0] echoed by runc) stays in the rest.
fn split_block(stderr: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut rest = stderr;
    let mut block = Vec::new();
    while rest.starts_with(b"execguard: ") {
        let end = rest.iter().position(|&b| b == b'\n');
        let (line, next) = match end {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        block.push(line);
        rest = next;
    }
    (block, rest)
}

/// runc's text has a timestamp and the container id: make two runs comparable.
fn norm_bytes(b: &[u8], id: &str) -> String {
    norm(&String::from_utf8_lossy(b), id)
}

// =============================================================================================
// execguard check

/// A hostile bundle checked both ways (`--format json` and text).
#[derive(Debug)]
struct Checked {
    json: Value,
    text: String,
    rss_kib: i64,
    elapsed: Duration,
}

impl Checked {
    fn findings(&self) -> &[Value] {
        self.json["findings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    fn has_error(&self) -> bool {
        self.findings().iter().any(|f| f["severity"] == "error")
    }
    fn lead(&self) -> &str {
        self.findings()
            .iter()
            .find(|f| f["severity"] == "error")
            .or_else(|| self.findings().first())
            .and_then(|f| f["code"].as_str())
            .unwrap_or("")
    }
    fn verdict(&self) -> &str {
        self.json["verdict"].as_str().unwrap_or("")
    }
    fn codes(&self) -> Vec<&str> {
        self.findings()
            .iter()
            .filter_map(|f| f["code"].as_str())
            .collect()
    }
}

/// The checks every `check` run must pass: exit 0 or 1, bounded, no panic text, no leak.
fn assert_check_run(r: &Run, what: &str, forbidden: &[&[u8]], rss_cap_kib: i64) {
    assert!(
        r.code == 0 || r.code == 1,
        "{what}: check exit {} (0 or 1 expected)\nstdout: {}\nstderr: {}",
        r.code,
        String::from_utf8_lossy(&r.stdout),
        r.err()
    );
    assert!(
        r.elapsed < CHECK_LIMIT,
        "{what}: check took {:?}",
        r.elapsed
    );
    assert!(
        r.rss_kib < rss_cap_kib,
        "{what}: check used {} KiB (cap {rss_cap_kib} KiB)",
        r.rss_kib
    );
    assert_no_panic_text(&r.stdout, what);
    assert_no_panic_text(&r.stderr, what);
    assert_printable(&r.stderr, &format!("{what}: check stderr"));
    assert_absent(&r.stdout, forbidden, what);
    assert_absent(&r.stderr, forbidden, what);
}

/// GNU time, the launcher that measures a child's peak memory from a small parent.
const GNU_TIME: &str = "/usr/bin/time";

/// Runs `cmd` under GNU time and returns the run with `rss_kib` set to the child's own peak.
/// wait4 on a child of this test binary would not do: a spawned child's `ru_maxrss` starts
/// at the RSS of the process it was forked from (the mm it leaves at exec is counted), which
/// is the whole test binary here.
fn run_measured(cmd: Command, what: &str, limit: Duration) -> Run {
    let f = tempfile::NamedTempFile::new().expect("rss file");
    let mut w = Command::new(GNU_TIME);
    w.args(["-f", "%M", "-o"])
        .arg(f.path())
        .arg(cmd.get_program());
    w.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    let mut r = run_raw(w, what, limit, || {});
    let text = fs::read_to_string(f.path()).unwrap_or_default();
    r.rss_kib = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: no RSS from GNU time: {text:?}"));
    r
}

/// `execguard check --bundle B --format json` alone (no text run).
fn check_json(b: &Bundle, what: &str, forbidden: &[&[u8]]) -> (Value, Run) {
    check_json_capped(b, what, forbidden, CHECK_RSS_KIB)
}

fn check_json_capped(b: &Bundle, what: &str, forbidden: &[&[u8]], cap: i64) -> (Value, Run) {
    b.save();
    let mut c = eg();
    c.arg("check")
        .arg("--bundle")
        .arg(b.path())
        .args(["--format", "json"]);
    let r = run_measured(c, &format!("{what}: check --format json"), CALL_TIMEOUT);
    assert_check_run(&r, what, forbidden, cap);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: check stdout is not one JSON object ({e}): {:?}",
            String::from_utf8_lossy(&r.stdout)
        )
    });
    assert_check_shape(&v, r.code, what);
    assert_json_clean(&v, &format!("{what}: check JSON"));
    (v, r)
}

/// `check` in JSON and in text, with every property of a hostile check asserted.
fn check(b: &Bundle, what: &str, forbidden: &[&[u8]]) -> Checked {
    check_capped(b, what, forbidden, CHECK_RSS_KIB)
}

/// [`check`] with another memory cap (KiB).
fn check_capped(b: &Bundle, what: &str, forbidden: &[&[u8]], cap: i64) -> Checked {
    let (json, j) = check_json_capped(b, what, forbidden, cap);
    let mut c = eg();
    c.arg("check").arg("--bundle").arg(b.path());
    let t = run_measured(c, &format!("{what}: check (text)"), CALL_TIMEOUT);
    assert_check_run(&t, what, forbidden, cap);
    assert_eq!(j.code, t.code, "{what}: text and JSON exit alike");
    assert_printable(&t.stdout, &format!("{what}: check text"));
    Checked {
        json,
        text: String::from_utf8_lossy(&t.stdout).into_owned(),
        rss_kib: j.rss_kib.max(t.rss_kib),
        elapsed: j.elapsed.max(t.elapsed),
    }
}

// =============================================================================================
// Started through execguard and through runc

/// One bundle run by plain runc and by execguard in front of runc, both with a runtime
/// `--log`, execguard also with its own JSON log (`include_ok`).
#[derive(Debug)]
struct Both {
    runc: Run,
    eg: Run,
    runc_log: Vec<u8>,
    eg_log: Vec<u8>,
    own_log: Vec<u8>,
    json_log: bool,
}

/// `PROGRAM [PRE...] --log L --log-format F run -b B ID`, the container deleted afterwards.
fn run_container(
    mut cmd: Command,
    pre: &[String],
    b: &Bundle,
    tag: &str,
    log: &Path,
    format: &str,
) -> Run {
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    cmd.args(pre)
        .arg("--log")
        .arg(log)
        .args(["--log-format", format, "run", "-b"])
        .arg(b.path())
        .arg(&id);
    let mut r = run_raw(cmd, &format!("run {id}"), CALL_TIMEOUT, || {
        force_delete(None, &id)
    });
    r.id = id;
    r
}

/// Runs `b` under runc and under execguard (warn mode, own log with `include_ok`).
fn run_both(b: &Bundle, tag: &str, json_log: bool) -> Both {
    b.save();
    let t = tmp("logs");
    let own = t.path().join("own.jsonl");
    let cfg = t.path().join("execguard.json");
    fs::write(
        &cfg,
        json!({"log": {"path": own, "include_ok": true}}).to_string(),
    )
    .expect("write execguard config");
    let format = if json_log { "json" } else { "text" };
    let (rl, el) = (t.path().join("runc.log"), t.path().join("eg.log"));
    let runc_r = run_container(runc(), &[], b, &format!("{tag}-ref"), &rl, format);
    let pre = [
        RUNTIME_FLAG.to_string(),
        format!("--execguard-config={}", cfg.display()),
    ];
    let eg_r = run_container(eg(), &pre, b, tag, &el, format);
    Both {
        runc: runc_r,
        eg: eg_r,
        runc_log: fs::read(&rl).unwrap_or_default(),
        eg_log: fs::read(&el).unwrap_or_default(),
        own_log: fs::read(&own).unwrap_or_default(),
        json_log,
    }
}

/// The runtime's own lines of a `--log` file, comparable between two runs.
fn runtime_lines(log: &[u8], json: bool, id: &str) -> Vec<String> {
    log.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            if json {
                let mut v: Value = serde_json::from_slice(l).ok()?;
                if v["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("execguard: "))
                {
                    return None;
                }
                v.as_object_mut()?.remove("time");
                Some(v.to_string().replace(id, "<id>"))
            } else {
                let t = String::from_utf8_lossy(l);
                (!t.contains("msg=\"execguard: ")).then(|| norm(&t, id))
            }
        })
        .collect()
}

/// The container ran exactly as under runc, and everything execguard wrote is escaped, free
/// of `forbidden` bytes, and one intact own-log line.
fn assert_like_runc(x: &Both, what: &str, forbidden: &[&[u8]]) {
    let (r, w) = (&x.runc, &x.eg);
    assert_eq!(
        w.code,
        r.code,
        "{what}: exit status must be runc's\nexecguard: {}\nrunc: {}",
        w.err(),
        r.err()
    );
    assert_eq!(
        w.stdout, r.stdout,
        "{what}: stdout must be runc's byte for byte"
    );
    let (block, rest) = split_block(&w.stderr);
    assert_eq!(
        norm_bytes(rest, &w.id),
        norm_bytes(&r.stderr, &r.id),
        "{what}: stderr after execguard's block must be runc's\nexecguard: {:?}\nrunc: {:?}",
        w.err(),
        r.err()
    );
    assert_no_panic_text(&w.stderr, what);
    for l in block {
        assert_printable(l, &format!("{what}: execguard's stderr line"));
        assert_absent(l, forbidden, what);
    }
    // The runtime log: runc's own lines unchanged, execguard's escaped.
    assert_eq!(
        runtime_lines(&x.eg_log, x.json_log, &w.id),
        runtime_lines(&x.runc_log, x.json_log, &r.id),
        "{what}: runc's own --log lines must be unchanged"
    );
    for l in x.eg_log.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if x.json_log {
            let v: Value = serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "{what}: --log line is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(l)
                )
            });
            if v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("execguard: "))
            {
                assert_json_clean(&v, &format!("{what}: execguard's --log line"));
                assert_absent(l, forbidden, what);
            }
        } else if String::from_utf8_lossy(l).contains("msg=\"execguard: ") {
            assert_printable(l, &format!("{what}: execguard's --log line"));
            assert_absent(l, forbidden, what);
        }
    }
    // execguard's own log: exactly one intact line for this diagnosis.
    let lines: Vec<&[u8]> = x
        .own_log
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: one own-log line per diagnosis: {:?}",
        String::from_utf8_lossy(&x.own_log)
    );
    let v: Value = serde_json::from_slice(lines[0]).unwrap_or_else(|e| {
        panic!(
            "{what}: own-log line is not JSON ({e}): {:?}",
            String::from_utf8_lossy(lines[0])
        )
    });
    assert_eq!(v["container_id"], w.id.as_str(), "{what}: {v}");
    assert_json_clean(&v, &format!("{what}: own log"));
    assert_absent(&x.own_log, forbidden, what);
}

/// What the check must say about a case.
#[derive(Clone, Copy, Debug)]
enum Lead {
    /// An error finding with this code leads.
    Error(&'static str),
    /// No finding at all: verdict ok.
    Ok,
    /// Only info findings: the program cannot be looked at (verdict unknown).
    Unknown,
    /// Some error finding, whichever code leads.
    AnyError,
    /// Whatever the kernel says, as long as the prediction agrees with it.
    Agree,
}

/// The prediction agrees with what runc did: an error finding means the start failed, a
/// clean ok means the program ran (`ok_code` is its exit status when it runs).
fn assert_agrees(c: &Checked, r: &Run, ok_code: i32, what: &str) {
    let ran = r.code == ok_code;
    if c.has_error() {
        assert!(
            !ran,
            "{what}: check predicts a failure ({}) but runc ran it: {}\n{}",
            c.lead(),
            r.err(),
            c.json
        );
    }
    if c.verdict() == "ok" {
        assert!(
            ran,
            "{what}: check says ok but runc exited {}: {}\n{}",
            r.code,
            r.err(),
            c.json
        );
    }
}

/// A case: the bundle checked, then started both ways, and the prediction proven.
fn prove(b: &Bundle, tag: &str, lead: Lead, ok_code: i32, forbidden: &[&[u8]]) -> (Checked, Both) {
    prove_capped(b, tag, lead, ok_code, forbidden, CHECK_RSS_KIB)
}

/// [`prove`] with another memory cap for the check (KiB).
fn prove_capped(
    b: &Bundle,
    tag: &str,
    lead: Lead,
    ok_code: i32,
    forbidden: &[&[u8]],
    cap: i64,
) -> (Checked, Both) {
    let c = check_capped(b, tag, forbidden, cap);
    match lead {
        Lead::Error(code) => assert_eq!(
            c.lead(),
            code,
            "{tag}: leading finding {code} expected: {}",
            c.json
        ),
        Lead::Ok => assert_eq!(c.verdict(), "ok", "{tag}: {}", c.json),
        Lead::Unknown => assert_eq!(c.verdict(), "unknown", "{tag}: {}", c.json),
        Lead::AnyError => assert!(
            c.has_error(),
            "{tag}: an error finding expected: {}",
            c.json
        ),
        Lead::Agree => {}
    }
    let x = run_both(b, tag, true);
    assert_like_runc(&x, tag, forbidden);
    assert_agrees(&c, &x.runc, ok_code, tag);
    eprintln!(
        "{tag}: check {} [{}] in {:?}, {} KiB; runc exit {}",
        c.verdict(),
        c.codes().join(","),
        c.elapsed,
        c.rss_kib,
        x.runc.code
    );
    // `run` is diagnosed from the bundle, as `check` is: the logged verdict is the check's.
    let logged: Value = x
        .own_log
        .split(|&b| b == b'\n')
        .find(|l| !l.is_empty())
        .and_then(|l| serde_json::from_slice(l).ok())
        .unwrap_or(Value::Null);
    assert_eq!(
        logged["verdict"], c.json["verdict"],
        "{tag}: execguard run and check disagree: {logged} vs {}",
        c.json
    );
    (c, x)
}

// =============================================================================================
// The canary: a host file no container path may reach

/// A file on a private tmpfs mounted `strictatime` (any read moves its atime) and watched
/// by fanotify for every open, read and exec on that file system.
struct Canary {
    dir: tempfile::TempDir,
    file: PathBuf,
    secret: Vec<u8>,
    fan: OwnedFd,
    atime: (i64, i64),
}

impl Canary {
    fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("egc-")
            .tempdir()
            .expect("canary mount point");
        let target = CString::new(dir.path().as_os_str().as_bytes()).expect("path");
        // SAFETY: valid NUL-terminated strings; the mount is ours and undone on drop.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_STRICTATIME | libc::MS_NOSUID | libc::MS_NODEV,
                c"size=64k,mode=0755".as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount tmpfs on {}: {}",
            dir.path().display(),
            std::io::Error::last_os_error()
        );
        let secret =
            format!("CANARY-SECRET-{}-{}", std::process::id(), unique_id("c")).into_bytes();
        let file = dir.path().join("c");
        let mut body = b"#!/bin/sh\necho ".to_vec();
        body.extend_from_slice(&secret);
        body.push(b'\n');
        fs::write(&file, &body).expect("write canary");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("chmod canary");
        // A fixed atime in the past: a read under strictatime moves it to now.
        let cpath = CString::new(file.as_os_str().as_bytes()).expect("path");
        let times = [
            libc::timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
        ];
        // SAFETY: valid path and a two-element timespec array.
        let rc = unsafe { libc::utimensat(libc::AT_FDCWD, cpath.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0, "utimensat: {}", std::io::Error::last_os_error());
        let fan = fan_watch(
            &target,
            libc::FAN_OPEN | libc::FAN_ACCESS | libc::FAN_OPEN_EXEC | libc::FAN_ONDIR,
        );
        let mut c = Canary {
            dir,
            file,
            secret,
            fan,
            atime: (0, 0),
        };
        c.atime = c.atime_now();
        assert_eq!(c.atime.0, 1_000_000_000, "the canary's atime was set");
        c
    }

    fn atime_now(&self) -> (i64, i64) {
        let p = CString::new(self.file.as_os_str().as_bytes()).expect("path");
        // SAFETY: a zeroed stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and out-pointer; stat reads no file data.
        let rc = unsafe { libc::stat(p.as_ptr(), &mut st) };
        assert_eq!(rc, 0, "stat canary: {}", std::io::Error::last_os_error());
        (st.st_atime, st.st_atime_nsec)
    }

    /// Host path of the canary file.
    fn path(&self) -> String {
        s(&self.file)
    }

    /// Host path of the folder it lies in (the tmpfs root).
    fn dir(&self) -> String {
        s(self.dir.path())
    }

    /// What must never show in any output.
    fn forbidden(&self) -> [&[u8]; 1] {
        [&self.secret]
    }

    /// The events fanotify saw since the last call, as text.
    fn events(&self) -> Vec<String> {
        fan_events(&self.fan)
            .into_iter()
            .map(|e| format!("mask {:#x} pid {} ({}) {}", e.mask, e.pid, e.comm, e.path))
            .collect()
    }

    /// Nothing opened, read or executed anything on the canary's file system, and its atime
    /// did not move.
    fn assert_untouched(&self, what: &str) {
        let ev = self.events();
        assert!(
            ev.is_empty(),
            "{what}: the host canary {} was opened: {ev:#?}",
            self.file.display()
        );
        assert_eq!(
            self.atime_now(),
            self.atime,
            "{what}: the host canary {} was read (atime moved)",
            self.file.display()
        );
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let p = CString::new(self.dir.path().as_os_str().as_bytes()).expect("path");
        // SAFETY: unmounts the tmpfs this guard mounted.
        unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A fanotify group watching every event of `mask` on the file system holding `target`.
fn fan_watch(target: &CString, mask: u64) -> OwnedFd {
    // SAFETY: plain syscall; the fd is owned right below.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_NOTIF | libc::FAN_NONBLOCK | libc::FAN_CLOEXEC,
            (libc::O_RDONLY | libc::O_LARGEFILE) as libc::c_uint,
        )
    };
    assert!(
        fd >= 0,
        "fanotify_init: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd was just returned by fanotify_init.
    let fan = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: valid fd and path.
    let rc = unsafe {
        libc::fanotify_mark(
            fan.as_raw_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            mask,
            libc::AT_FDCWD,
            target.as_ptr(),
        )
    };
    assert_eq!(rc, 0, "fanotify_mark: {}", std::io::Error::last_os_error());
    fan
}

/// One fanotify event.
#[derive(Debug)]
struct FanEvent {
    mask: u64,
    pid: i32,
    comm: String,
    path: String,
}

/// The events a fanotify group saw since the last call.
fn fan_events(fan: &OwnedFd) -> Vec<FanEvent> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        // SAFETY: reads into a buffer of the given length.
        let n = unsafe { libc::read(fan.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        let mut off = 0usize;
        let meta = std::mem::size_of::<libc::fanotify_event_metadata>();
        while off + meta <= n as usize {
            // SAFETY: the kernel wrote a whole event record at `off`.
            let ev: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
            let path = if ev.fd >= 0 {
                let p = fs::read_link(format!("/proc/self/fd/{}", ev.fd))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                // SAFETY: the event's fd is ours to close.
                unsafe { libc::close(ev.fd) };
                p
            } else {
                String::new()
            };
            let comm = fs::read_to_string(format!("/proc/{}/comm", ev.pid)).unwrap_or_default();
            out.push(FanEvent {
                mask: ev.mask,
                pid: ev.pid,
                comm: comm.trim().to_string(),
                path,
            });
            if ev.event_len == 0 {
                break;
            }
            off += ev.event_len as usize;
        }
    }
    out
}

/// A private tmpfs over a bundle's folder, unmounted on drop (before the bundle's own folder
/// goes): everything on it is the bundle's, so a fanotify mark on it sees only its files.
struct OwnFs(PathBuf);

impl OwnFs {
    fn over(dir: &Path) -> OwnFs {
        let target = CString::new(dir.as_os_str().as_bytes()).expect("path");
        // SAFETY: valid NUL-terminated strings; the mount is undone on drop.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=64m,mode=0755".as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        OwnFs(dir.to_path_buf())
    }
}

impl Drop for OwnFs {
    fn drop(&mut self) {
        let p = CString::new(self.0.as_os_str().as_bytes()).expect("path");
        // SAFETY: unmounts the tmpfs this guard mounted.
        unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Least privilege, watched by the kernel: across `check` of a bundle, a sweep of its whole
/// root (every program opened), and `create` with the live check, execguard's process never
/// opens a file of the rootfs or the bundle for writing, never modifies one and never executes
/// one (fanotify on a file system holding only the bundle). The instrument can fail: the reads
/// execguard makes are seen, and a write and an exec by anyone else are seen too.
#[test]
fn execguard_never_writes_or_executes_anything_of_the_bundle() {
    if !ready() {
        return;
    }
    let mut b = Bundle::empty();
    let own = OwnFs::over(b.path());
    fs::create_dir(b.rootfs()).expect("rootfs on the tmpfs");
    fs::set_permissions(b.rootfs(), fs::Permissions::from_mode(0o755)).expect("chmod rootfs");
    b.copy_in(HOST_BUSYBOX, "/bin/busybox", Some(0o755));
    b.symlink("/bin/sh", "busybox");
    b.mirror_host_path(Path::new("/bin/ls"));
    for lib in ldd_paths("/bin/ls") {
        b.mirror_host_path(&lib);
    }
    b.write("/app.sh", b"#!/bin/sh\nexec /bin/ls /\n", 0o755);
    b.args(&["/app.sh"]);
    b.save();
    let target = CString::new(b.path().as_os_str().as_bytes()).expect("path");
    let fan = fan_watch(
        &target,
        libc::FAN_OPEN
            | libc::FAN_ACCESS
            | libc::FAN_OPEN_EXEC
            | libc::FAN_MODIFY
            | libc::FAN_CLOSE_WRITE
            | libc::FAN_ONDIR,
    );
    let bad = libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE | libc::FAN_OPEN_EXEC;
    let watch = |mut c: Command, what: &str| -> (i32, Vec<FanEvent>) {
        for k in OWN_ENV {
            c.env_remove(k);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        let pid = child.id() as i32;
        let st = child.wait().expect("wait");
        assert!(st.code().is_some(), "{what}: {st:?}");
        (pid, fan_events(&fan))
    };
    let mut check = Command::new(execguard_bin());
    check.arg("check").arg("--bundle").arg(b.path());
    let mut sweep = Command::new(execguard_bin());
    sweep
        .arg("check")
        .arg("--rootfs")
        .arg(b.rootfs())
        .arg("--all");
    for (c, what) in [(check, "check --bundle"), (sweep, "check --rootfs --all")] {
        let (_, ev) = watch(c, what);
        let wrote: Vec<&FanEvent> = ev.iter().filter(|e| e.mask & bad != 0).collect();
        assert!(wrote.is_empty(), "{what} wrote or executed: {wrote:#?}");
        assert!(
            ev.iter()
                .any(|e| e.path.ends_with("/lib/x86_64-linux-gnu/libc.so.6")
                    || e.path.ends_with("/bin/busybox")),
            "{what}: the instrument must see execguard's reads: {ev:#?}"
        );
    }
    // create: the runtime is a child of its own; only execguard's pid is judged.
    let id = unique_id("noexec-w");
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut create = Command::new(execguard_bin());
    create
        .arg(RUNTIME_FLAG)
        .arg("create")
        .arg("-b")
        .arg(b.path())
        .arg(&id);
    let (pid, ev) = watch(create, "create");
    let own_bad: Vec<&FanEvent> = ev
        .iter()
        .filter(|e| e.pid == pid && e.mask & bad != 0)
        .collect();
    assert!(
        own_bad.is_empty(),
        "create: execguard wrote or executed: {own_bad:#?}"
    );
    assert!(
        ev.iter().any(|e| e.pid == pid),
        "create: the instrument must see execguard's own reads: {ev:#?}"
    );
    // The instrument sees what it must refuse: runc's start executes the program.
    let mut start = Command::new("/usr/bin/runc");
    start.args(["start", &id]);
    let (_, ev) = watch(start, "runc start");
    std::thread::sleep(Duration::from_millis(200));
    let mut ev: Vec<FanEvent> = ev;
    ev.extend(fan_events(&fan));
    assert!(
        ev.iter().any(|e| e.mask & libc::FAN_OPEN_EXEC != 0),
        "the instrument must see the container's exec: {ev:#?}"
    );
    fs::write(b.host("/written"), b"x").expect("write through the tmpfs");
    assert!(
        fan_events(&fan)
            .iter()
            .any(|e| e.mask & libc::FAN_CLOSE_WRITE != 0),
        "the instrument must see a write"
    );
    drop(_g);
    drop(own);
}

/// The instruments can fail: a read of the canary is seen (fanotify and atime), and the
/// output checkers refuse a raw escape, a lossy U+FFFD and the canary's content.
#[test]
fn the_canary_and_the_output_checkers_catch_what_they_guard_against() {
    if !ready() {
        return;
    }
    let canary = Canary::new();
    canary.assert_untouched("fresh canary");
    let _ = fs::read(&canary.file).expect("read canary");
    let ev = canary.events();
    assert!(!ev.is_empty(), "fanotify saw no open or read of the canary");
    assert_ne!(
        canary.atime_now(),
        canary.atime,
        "strictatime: a read moves the atime"
    );
    let caught = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    assert!(caught(&|| assert_printable(b"a\x1b[2Jb", "t")));
    assert!(caught(&|| assert_printable(b"a\x07", "t")));
    assert!(caught(&|| assert_printable(b"a\xffb", "t")));
    assert!(caught(&|| assert_printable("a\u{202E}b".as_bytes(), "t")));
    assert!(caught(&|| assert_json_clean(
        &json!({"m": "x\u{fffd}"}),
        "t"
    )));
    assert!(caught(&|| assert_json_clean(
        &json!(["\u{1b}]52;c;QQ==\u{7}"]),
        "t"
    )));
    assert!(caught(&|| assert_absent(b"..CANARY..", &[b"CANARY"], "t")));
    assert!(!caught(&|| assert_printable(
        "/app\\u{001B}[2J ü\n".as_bytes(),
        "t"
    )));
    let (block, rest) = split_block(b"execguard: a\nexecguard: b\nrunc: x\nexecguard: forged\n");
    assert_eq!(block, [&b"execguard: a"[..], b"execguard: b"]);
    assert_eq!(rest, b"runc: x\nexecguard: forged\n");
}

// =============================================================================================
// Building hostile files

fn put16(v: &mut [u8], at: usize, x: u16) {
    v[at..at + 2].copy_from_slice(&x.to_le_bytes());
}
fn put32(v: &mut [u8], at: usize, x: u32) {
    v[at..at + 4].copy_from_slice(&x.to_le_bytes());
}
fn put64(v: &mut [u8], at: usize, x: u64) {
    v[at..at + 8].copy_from_slice(&x.to_le_bytes());
}

/// ELF64 header offsets.
const E_ENTRY: usize = 24;
const E_PHOFF: usize = 32;
const E_SHOFF: usize = 40;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;
const E_SHENTSIZE: usize = 58;
const E_SHNUM: usize = 60;
const E_SHSTRNDX: usize = 62;
/// Program header 0 and 1 of [`tiny_elf`].
const PH0: usize = 64;
const PH1: usize = 64 + 56;
/// Program header field offsets.
const P_TYPE: usize = 0;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;
const P_ALIGN: usize = 48;
const BASE: u64 = 0x40_0000;

/// A static x86_64 ELF executable of ~200 bytes that exits with [`TINY_EXIT`]: one PT_LOAD
/// mapping the whole file, a second header that is PT_INTERP naming `interp` (when given) or
/// PT_NULL, then the code (`mov edi, 42; mov eax, 60; syscall`), then the interpreter path.
fn tiny_elf(interp: Option<&[u8]>) -> Vec<u8> {
    let code: [u8; 12] = [
        0xbf,
        TINY_EXIT as u8,
        0,
        0,
        0,
        0xb8,
        60,
        0,
        0,
        0,
        0x0f,
        0x05,
    ];
    let code_off = 64 + 2 * 56;
    let interp_off = code_off + code.len();
    let mut v = vec![0u8; interp_off];
    v[..16].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put16(&mut v, 16, 2); // ET_EXEC
    put16(&mut v, 18, 0x3e); // EM_X86_64
    put32(&mut v, 20, 1);
    put64(&mut v, E_ENTRY, BASE + code_off as u64);
    put64(&mut v, E_PHOFF, 64);
    put16(&mut v, 52, 64);
    put16(&mut v, E_PHENTSIZE, 56);
    put16(&mut v, E_PHNUM, 2);
    put16(&mut v, E_SHENTSIZE, 64);
    v[code_off..interp_off].copy_from_slice(&code);
    if let Some(i) = interp {
        v.extend_from_slice(i);
        v.push(0);
        put32(&mut v, PH1 + P_TYPE, 3); // PT_INTERP
        put32(&mut v, PH1 + 4, 4);
        put64(&mut v, PH1 + P_OFFSET, interp_off as u64);
        put64(&mut v, PH1 + P_VADDR, BASE + interp_off as u64);
        put64(&mut v, PH1 + P_FILESZ, i.len() as u64 + 1);
        put64(&mut v, PH1 + P_MEMSZ, i.len() as u64 + 1);
        put64(&mut v, PH1 + P_ALIGN, 1);
    }
    let len = v.len() as u64;
    put32(&mut v, PH0 + P_TYPE, 1); // PT_LOAD
    put32(&mut v, PH0 + 4, 5); // R+X
    put64(&mut v, PH0 + P_OFFSET, 0);
    put64(&mut v, PH0 + P_VADDR, BASE);
    put64(&mut v, PH0 + 24, BASE);
    put64(&mut v, PH0 + P_FILESZ, len);
    put64(&mut v, PH0 + P_MEMSZ, len);
    put64(&mut v, PH0 + P_ALIGN, 0x1000);
    v
}

/// A tiny ELF whose program header table holds `n` entries (the first PT_LOAD, the rest
/// PT_NULL) at offset 256, the code at 64.
fn elf_with_phdrs(n: usize) -> Vec<u8> {
    let mut v = tiny_elf(None);
    let code: Vec<u8> = v[176..188].to_vec();
    v.truncate(64);
    v.extend_from_slice(&code);
    v.resize(256, 0);
    v.resize(256 + n * 56, 0);
    let len = v.len() as u64;
    put64(&mut v, E_ENTRY, BASE + 64);
    put64(&mut v, E_PHOFF, 256);
    put16(&mut v, E_PHNUM, n as u16);
    let p = 256;
    put32(&mut v, p + P_TYPE, 1);
    put32(&mut v, p + 4, 5);
    put64(&mut v, p + P_VADDR, BASE);
    put64(&mut v, p + 24, BASE);
    put64(&mut v, p + P_FILESZ, len);
    put64(&mut v, p + P_MEMSZ, len);
    put64(&mut v, p + P_ALIGN, 0x1000);
    v
}

/// A bundle (busybox root) whose `/app` is `bytes`, run as `/app`.
fn app_bundle(bytes: &[u8]) -> Bundle {
    let mut b = Bundle::busybox();
    b.write("/app", bytes, 0o755);
    b.args(&["/app"]);
    b
}

/// Host path in the root for raw (possibly non-UTF-8) container path bytes.
fn raw_host(b: &Bundle, inner: &[u8]) -> PathBuf {
    let rel = inner.strip_prefix(b"/").unwrap_or(inner);
    assert!(
        !rel.split(|&c| c == b'/').any(|c| c == b".." || c == b"."),
        "raw bundle paths must be plain"
    );
    b.rootfs().join(OsStr::from_bytes(rel))
}

fn mknod(p: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c = CString::new(p.as_os_str().as_bytes()).expect("path");
    // SAFETY: valid path; creates a device node in a test's own root.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

// =============================================================================================
// 1. Links out of the root, and magic links

/// `n` `..` components: more than enough to climb from any bundle to the host's `/`.
fn ups(n: usize) -> String {
    "../".repeat(n)
}

/// Root, runc, busybox and GNU time (which measures a check's memory).
fn ready() -> bool {
    runtime_ready() && require(Path::new(GNU_TIME).exists(), "GNU time is not installed")
}

#[test]
fn links_out_of_the_root_never_open_the_host_canary() {
    if !ready() {
        return;
    }
    let canary = Canary::new();
    let forbidden = canary.forbidden();
    let (abs, dir) = (canary.path(), canary.dir());
    let dir_rel = dir.trim_start_matches('/');
    let abs_rel = abs.trim_start_matches('/');
    let mut cases: Vec<(&str, Bundle, Lead, i32)> = Vec::new();

    // An absolute link: restarts at the container root, where the path does not exist.
    let mut b = Bundle::busybox();
    b.symlink("/app", &abs);
    b.args(&["/app"]);
    cases.push(("abs-link", b, Lead::Error("not-found"), 0));

    // A relative link climbing far above the root.
    let mut b = Bundle::busybox();
    b.symlink("/app", &format!("{}{abs_rel}", ups(40)));
    b.args(&["/app"]);
    cases.push(("rel-link", b, Lead::Error("not-found"), 0));

    // A folder link out of the root, the canary named below it.
    let mut b = Bundle::busybox();
    b.symlink("/opt", &format!("{}{dir_rel}", ups(40)));
    b.args(&["/opt/c"]);
    cases.push(("dir-link", b, Lead::Error("not-found"), 0));

    // `..` in args[0] itself, no link at all.
    let mut b = Bundle::busybox();
    let dotdot = format!("/{}{abs_rel}", ups(40));
    b.args(&[&dotdot]);
    cases.push(("dotdot-arg", b, Lead::Error("not-found"), 0));

    // A bare name found through a PATH entry that is a link out of the root.
    let mut b = Bundle::busybox();
    b.symlink("/x", &format!("/{}{dir_rel}", ups(40)));
    b.env(&["PATH=/x:/bin"]);
    b.args(&["c"]);
    cases.push(("path-entry-link", b, Lead::Error("not-found"), 0));

    // A relative args[0] with a cwd, climbing.
    let mut b = Bundle::busybox();
    b.mkdir("/w", 0o755);
    b.cwd("/w");
    let rel = format!("{}{abs_rel}", ups(40));
    b.args(&[&rel]);
    cases.push(("cwd-relative", b, Lead::Error("not-found"), 0));

    // A shebang whose interpreter path climbs out.
    let b = app_bundle(format!("#!/{}{abs_rel}\n", ups(40)).as_bytes());
    cases.push((
        "shebang-out",
        b,
        Lead::Error("shebang-interpreter-missing"),
        0,
    ));

    // A PT_INTERP loader that is a link out of the root (absolute and relative).
    let b = app_bundle(&tiny_elf(Some(b"/lib/ld.so")));
    b.symlink("/lib/ld.so", &abs);
    cases.push((
        "loader-abs-link",
        b,
        Lead::Error("interpreter-missing"),
        TINY_EXIT,
    ));
    let b = app_bundle(&tiny_elf(Some(b"/lib/ld.so")));
    b.symlink("/lib/ld.so", &format!("{}{abs_rel}", ups(40)));
    cases.push((
        "loader-rel-link",
        b,
        Lead::Error("interpreter-missing"),
        TINY_EXIT,
    ));

    // The canary's folder exists inside the root too, holding `echo`: that one is used, and
    // it runs (busybox picks the applet from argv[0]'s base name).
    let mut b = Bundle::busybox();
    b.copy_in(HOST_BUSYBOX, &format!("{dir}/echo"), Some(0o755));
    b.symlink("/opt", &format!("{}{dir_rel}", ups(40)));
    b.args(&["/opt/echo", "in-root"]);
    cases.push(("same-path-in-root", b, Lead::Ok, 0));

    for (tag, b, lead, ok) in &cases {
        let (_c, x) = prove(b, tag, *lead, *ok, &forbidden);
        canary.assert_untouched(tag);
        if matches!(lead, Lead::Ok) {
            assert_eq!(x.runc.stdout, b"in-root\n", "{tag}: {:?}", x.runc);
        }
    }
}

#[test]
fn magic_links_through_proc_never_open_the_host_canary() {
    if !ready() {
        return;
    }
    let canary = Canary::new();
    let forbidden = canary.forbidden();
    let abs = canary.path();
    let mut cases: Vec<(&str, Bundle, Lead, i32)> = Vec::new();
    // /proc is a proc mount in the spec: nothing under it can be looked at beforehand.
    for (tag, target) in [
        ("proc-self-root", format!("/proc/self/root{abs}")),
        ("proc-1-root", format!("/proc/1/root{abs}")),
        (
            "proc-self-cwd",
            format!("/proc/self/cwd/{}{}", ups(40), abs.trim_start_matches('/')),
        ),
        ("proc-self-fd0", "/proc/self/fd/0".to_string()),
        ("proc-self-exe", "/proc/self/exe".to_string()),
    ] {
        let mut b = Bundle::busybox();
        b.symlink("/app", &target);
        b.args(&["/app"]);
        cases.push((tag, b, Lead::Unknown, 0));
    }
    // Through /proc/self/root into the container's own root: runs.
    let mut b = Bundle::busybox();
    b.args(&["/proc/self/root/bin/busybox", "echo", "via-proc"]);
    cases.push(("proc-self-root-own", b, Lead::Unknown, 0));
    // Without a /proc mount the image's own /proc folder is plain: its links stay in the root.
    let mut b = Bundle::busybox();
    b.config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .retain(|m| m["destination"] != "/proc");
    b.mkdir("/proc/self", 0o755);
    b.symlink("/proc/self/root", "/");
    let in_proc = format!("/proc/self/root{abs}");
    b.args(&[&in_proc]);
    cases.push(("image-proc-folder", b, Lead::Error("not-found"), 0));

    for (tag, b, lead, ok) in &cases {
        prove(b, tag, *lead, *ok, &forbidden);
        canary.assert_untouched(tag);
    }
}

/// `create -b B ID` through `cmd` (stdio in files), deleted afterwards: (exit, stderr).
fn create_only(mut cmd: Command, pre: &[String], b: &Bundle, tag: &str) -> (i32, Vec<u8>) {
    let t = tmp("create");
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let (out, err) = (t.path().join("out"), t.path().join("err"));
    cmd.args(pre).args(["create", "-b"]).arg(b.path()).arg(&id);
    let st = run_to_files(cmd, &out, &err, &format!("create {id}"));
    let text = fs::read(&err).unwrap_or_default();
    force_delete(None, &id);
    (st.code().unwrap_or(-1), norm_bytes(&text, &id).into_bytes())
}

/// The host's /proc bound into the container: `/hostproc/1/root` is the host's root. The
/// check stops at the magic link (unverifiable) and never opens the canary, neither from the
/// bundle nor from the live view of `execguard create`; `create` and `run` exit as with runc
/// (whose own lookup is refused the magic link: no CAP_SYS_PTRACE over the host's init).
#[test]
fn a_bound_host_proc_is_unverifiable_and_never_opens_the_canary() {
    if !ready() {
        return;
    }
    let canary = Canary::new();
    let forbidden = canary.forbidden();
    let mut b = Bundle::busybox();
    b.bind(Path::new("/proc"), "/hostproc", &[]);
    let target = format!("/hostproc/1/root{}", canary.path());
    b.symlink("/app", &target);
    b.args(&["/app"]);
    let c = check(&b, "hostproc", &forbidden);
    assert_eq!(c.verdict(), "unknown", "{}", c.json);
    canary.assert_untouched("hostproc check");

    // create: execguard runs runc as a child, then looks through /proc/<init>/root.
    let t = tmp("hostproc");
    let own = t.path().join("own.jsonl");
    let cfg = t.path().join("c.json");
    fs::write(
        &cfg,
        json!({"log": {"path": own, "include_ok": true}}).to_string(),
    )
    .expect("config");
    b.save();
    let (rc, rerr) = create_only(runc(), &[], &b, "hostproc-create-ref");
    canary.assert_untouched("hostproc runc create");
    let pre = [
        RUNTIME_FLAG.to_string(),
        format!("--execguard-config={}", cfg.display()),
    ];
    let (wc, werr) = create_only(eg(), &pre, &b, "hostproc-create");
    canary.assert_untouched("hostproc execguard create");
    assert_eq!(
        wc,
        rc,
        "create exits as with runc: {:?}",
        String::from_utf8_lossy(&werr)
    );
    assert_eq!(others_bytes(&werr), rerr, "runc's create stderr unchanged");
    for l in eg_lines(&werr) {
        assert_printable(l, "hostproc create line");
    }
    assert_absent(&werr, &forbidden, "hostproc create stderr");
    let logged = fs::read(&own).unwrap_or_default();
    assert_absent(&logged, &forbidden, "hostproc own log");
    let v: Value = serde_json::from_slice(logged.split(|&c| c == b'\n').next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("own log ({e}): {}", String::from_utf8_lossy(&logged)));
    assert_eq!(v["verdict"], "unknown", "{v}");
    assert_json_clean(&v, "hostproc own log");

    // run, both ways. Where the kernel refuses the magic link (no CAP_SYS_PTRACE over the
    // host's init) nothing opens the canary; where it allows it, only the container's own
    // exec does, through runc as well.
    let x = run_both(&b, "hostproc", true);
    assert_like_runc(&x, "hostproc", &forbidden);
    if x.runc.code != 0 && x.runc.err().contains("permission denied") {
        canary.assert_untouched("hostproc run");
    }
}

// =============================================================================================
// 2. Symlink loops and long chains

/// `/l0 -> l1 -> ... -> l{n-1} -> target`, absolute and relative alternating.
fn chain(b: &Bundle, n: usize, target: &str) {
    for i in 0..n {
        let next = if i + 1 == n {
            target.to_string()
        } else if i % 2 == 0 {
            format!("/l{}", i + 1)
        } else {
            format!("l{}", i + 1)
        };
        b.symlink(&format!("/l{i}"), &next);
    }
}

#[test]
fn symlink_loops_and_long_chains_stop_in_bounded_time() {
    if !ready() {
        return;
    }
    let mut cases: Vec<(String, Bundle, Lead)> = Vec::new();
    // Two links pointing at each other.
    let mut b = Bundle::busybox();
    b.symlink("/a", "/b");
    b.symlink("/b", "a");
    b.args(&["/a"]);
    cases.push(("pair-loop".into(), b, Lead::Error("symlink-loop")));
    // A folder link to its own folder, used 200 times in one path: each use is a link.
    let mut b = Bundle::busybox();
    b.symlink("/l", ".");
    let long = format!("{}/bin/busybox", "/l".repeat(200));
    b.args(&[&long, "true"]);
    cases.push(("dot-link-200".into(), b, Lead::Error("symlink-loop")));
    // 41 .. 1000 hops to a real program.
    for n in [41, 60, 1000] {
        let mut b = Bundle::busybox();
        chain(&b, n, "/bin/busybox");
        b.args(&["/l0", "true"]);
        cases.push((format!("chain-{n}"), b, Lead::Error("symlink-loop")));
    }
    // A cycle of 100 links.
    let mut b = Bundle::busybox();
    chain(&b, 100, "/l0");
    b.args(&["/l0"]);
    cases.push(("cycle-100".into(), b, Lead::Error("symlink-loop")));
    // A link whose target is 4095 bytes long (`/./././...`): ENAMETOOLONG or found, as the
    // kernel says.
    let mut b = Bundle::busybox();
    let pad = "/.".repeat((4095 - "/bin/busybox".len()) / 2);
    // busybox picks the applet from argv[0]'s base name: call the link `true`.
    b.symlink("/true", &format!("{pad}/bin/busybox"));
    b.args(&["/true"]);
    cases.push(("target-4095".into(), b, Lead::Agree));
    // A link to the root itself.
    let mut b = Bundle::busybox();
    b.symlink("/app", "/");
    b.args(&["/app"]);
    cases.push(("link-to-root".into(), b, Lead::Error("is-directory")));

    for (tag, b, lead) in &cases {
        let (c, _) = prove(b, tag, *lead, 0, &[]);
        assert!(c.elapsed < Duration::from_secs(2), "{tag}: {:?}", c.elapsed);
    }
}

// =============================================================================================
// 3. Special files as the program, its interpreter or its loader

#[test]
fn special_files_as_the_program_never_block_and_fail_as_with_runc() {
    if !ready() {
        return;
    }
    let mut cases: Vec<(&str, Bundle, Lead, i32)> = Vec::new();
    // A FIFO reached through a link; as the #! interpreter; as the ELF loader.
    let mut b = Bundle::busybox();
    mkfifo(&b.host("/fifo"), 0o755);
    b.symlink("/app", "fifo");
    b.args(&["/app"]);
    cases.push(("fifo-via-link", b, Lead::Error("not-regular"), 0));
    let b = app_bundle(b"#!/fifo\n");
    mkfifo(&b.host("/fifo"), 0o755);
    cases.push(("fifo-interpreter", b, Lead::AnyError, 0));
    let b = app_bundle(&tiny_elf(Some(b"/fifo")));
    mkfifo(&b.host("/fifo"), 0o755);
    cases.push(("fifo-loader", b, Lead::AnyError, TINY_EXIT));
    // A listening unix socket.
    let mut b = Bundle::busybox();
    let sock = std::os::unix::net::UnixListener::bind(b.host("/app")).expect("bind socket");
    b.args(&["/app"]);
    cases.push(("unix-socket", b, Lead::Error("not-regular"), 0));
    // Device nodes made inside the root: /dev/zero's and /dev/tty's numbers.
    let mut b = Bundle::busybox();
    mknod(&b.host("/app"), libc::S_IFCHR, 1, 5);
    b.args(&["/app"]);
    cases.push(("mknod-zero", b, Lead::Error("not-regular"), 0));
    let mut b = Bundle::busybox();
    mknod(&b.host("/app"), libc::S_IFCHR, 5, 0);
    b.args(&["/app"]);
    cases.push(("mknod-tty", b, Lead::Error("not-regular"), 0));
    // The host's /dev/zero bind-mounted over the program.
    let mut b = Bundle::busybox();
    b.write("/app", b"", 0o755);
    b.bind(Path::new("/dev/zero"), "/app", &[]);
    b.args(&["/app"]);
    cases.push(("bind-dev-zero", b, Lead::Error("not-regular"), 0));
    // The runtime's own /dev (a tmpfs in the spec): not visible beforehand.
    let mut b = Bundle::busybox();
    b.args(&["/dev/zero"]);
    cases.push(("spec-dev-zero", b, Lead::Unknown, 0));

    for (tag, b, lead, ok) in &cases {
        let (c, _) = prove(b, tag, *lead, *ok, &[]);
        assert!(c.elapsed < Duration::from_secs(3), "{tag}: {:?}", c.elapsed);
    }
    drop(sock);
}

// =============================================================================================
// 4. Size

#[test]
fn a_2_gib_sparse_file_is_read_in_bounded_time_and_memory() {
    if !ready() {
        return;
    }
    const SIZE: u64 = 2 << 30;
    // The static busybox padded with a 2 GiB hole: still a valid ELF, it runs.
    let mut b = Bundle::busybox();
    let p = b.copy_in(HOST_BUSYBOX, "/bin/big", Some(0o755));
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|f| f.set_len(SIZE))
        .expect("extend busybox");
    b.args(&["/bin/big", "echo", "sparse"]);
    // busybox picks the applet from argv[0]'s base name: `big` is none, so link a name.
    b.symlink("/bin/echo", "big");
    b.args(&["/bin/echo", "sparse"]);
    let (c, x) = prove(&b, "sparse-elf", Lead::Ok, 0, &[]);
    assert_eq!(x.runc.stdout, b"sparse\n");
    eprintln!("2 GiB sparse ELF: check {:?}, {} KiB", c.elapsed, c.rss_kib);
    // 2 GiB of zeros: unknown-format (ENOEXEC).
    let b = app_bundle(b"");
    fs::OpenOptions::new()
        .write(true)
        .open(b.host("/app"))
        .and_then(|f| f.set_len(SIZE))
        .expect("sparse file");
    let (c, _) = prove(&b, "sparse-zeros", Lead::Error("unknown-format"), 0, &[]);
    eprintln!("2 GiB of zeros: check {:?}, {} KiB", c.elapsed, c.rss_kib);
}

// =============================================================================================
// 5. A file replaced while it is checked

/// `/app` is swapped (link + rename, both atomic) between an ELF that runs and a script whose
/// interpreter is missing while checks run: every diagnosis is exactly one of the two
/// verdicts (never a mix of one file's header and the other's size or path), and every
/// `execguard run` exits as runc does for one of them.
#[test]
fn a_file_swapped_while_checks_run_gives_one_of_two_whole_verdicts() {
    if !ready() {
        return;
    }
    let b = app_bundle(&tiny_elf(None));
    b.write("/app.elf", &tiny_elf(None), 0o755);
    b.write("/app.sh", b"#!/bin/nosuch\n", 0o755);
    let swap = |from: &str| {
        let tmp = b.host("/app.tmp");
        let _ = fs::remove_file(&tmp);
        fs::hard_link(b.host(from), &tmp).expect("link");
        fs::rename(&tmp, b.host("/app")).expect("rename");
    };
    swap("/app.elf");
    let (elf, _) = check_json(&b, "swap-ref-elf", &[]);
    assert_eq!(elf["verdict"], "ok", "{elf}");
    let elf_run = run_both(&b, "swap-ref-elf", true);
    assert_eq!(elf_run.runc.code, TINY_EXIT);
    swap("/app.sh");
    let (sh, _) = check_json(&b, "swap-ref-sh", &[]);
    assert_eq!(sh["verdict"], "fail", "{sh}");
    let sh_run = run_both(&b, "swap-ref-sh", true);
    assert_ne!(sh_run.runc.code, TINY_EXIT);

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = {
        let stop = stop.clone();
        let (root, elf_p, sh_p) = (b.rootfs(), b.host("/app.elf"), b.host("/app.sh"));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let from = if n.is_multiple_of(2) { &elf_p } else { &sh_p };
                let tmp = root.join(format!("app.tmp{n}"));
                fs::hard_link(from, &tmp).expect("link");
                fs::rename(&tmp, root.join("app")).expect("rename");
                n += 1;
                // Hundreds of swaps per check, without taking a whole core from the suite.
                std::thread::sleep(Duration::from_micros(50));
            }
            n
        })
    };
    let start = Instant::now();
    let (mut seen_elf, mut seen_sh, mut checks) = (0, 0, 0);
    while checks < 150 && start.elapsed() < Duration::from_secs(4) {
        let (v, _) = check_json(&b, "swap", &[]);
        if v == elf {
            seen_elf += 1;
        } else if v == sh {
            seen_sh += 1;
        } else {
            stop.store(true, Ordering::Relaxed);
            panic!("a diagnosis that is neither file's:\n{v}\nELF: {elf}\nscript: {sh}");
        }
        checks += 1;
    }
    let codes = [elf_run.runc.code, sh_run.runc.code];
    for i in 0..10 {
        let x = run_both(&b, &format!("swap-run{i}"), true);
        assert!(
            codes.contains(&x.eg.code),
            "exit {}: {}",
            x.eg.code,
            x.eg.err()
        );
        assert_no_panic_text(&x.eg.stderr, "swap run");
        let block = split_block(&x.eg.stderr).0;
        let sh_block = split_block(&sh_run.eg.stderr).0;
        assert!(
            block.is_empty() || block == sh_block,
            "the block is one file's: {:?}",
            x.eg.err()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let n = swaps.join().expect("swapper");
    eprintln!("{checks} checks during {n} swaps: {seen_elf} ELF, {seen_sh} script");
    assert!(n > 100, "the file was swapped {n} times only");
}

// =============================================================================================
// 6. 4,096 folders deep

/// A tree `rootfs/d/d/.../d` 4,096 levels deep (deeper than PATH_MAX allows to name), built
/// and removed with *at() calls; removing never needs a path longer than two components.
struct DeepTree {
    root: PathBuf,
}

const DEPTH: usize = 4096;

impl DeepTree {
    /// Builds the tree under `root`, with a link every 1,024 levels (`a` at the top, `b`, `c`
    /// and `e` at levels 1,024, 2,048 and 3,072, each `d/d/...` 1,024 deep) and busybox at
    /// the bottom, so `/a/b/c/e/busybox` names it in 16 bytes.
    fn build(root: &Path) -> DeepTree {
        let bb = fs::read(HOST_BUSYBOX).expect("read busybox");
        let rel = vec!["d"; 1024].join("/");
        let c = |s: &str| CString::new(s).expect("name");
        let top = CString::new(root.as_os_str().as_bytes()).expect("path");
        // SAFETY: opening a folder we own.
        let mut fd = unsafe { libc::open(top.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC) };
        assert!(fd >= 0);
        let names = ["a", "b", "c", "e"];
        for level in 0..DEPTH {
            if level % 1024 == 0 {
                let name = c(names[level / 1024]);
                let target = c(&rel);
                // SAFETY: valid strings and our own folder fd.
                let rc = unsafe { libc::symlinkat(target.as_ptr(), fd, name.as_ptr()) };
                assert_eq!(rc, 0, "symlinkat: {}", std::io::Error::last_os_error());
            }
            let d = c("d");
            // SAFETY: as above.
            let rc = unsafe { libc::mkdirat(fd, d.as_ptr(), 0o755) };
            assert_eq!(
                rc,
                0,
                "mkdirat at level {level}: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: as above.
            let next = unsafe { libc::openat(fd, d.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC) };
            assert!(next >= 0, "openat: {}", std::io::Error::last_os_error());
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
            fd = next;
        }
        let name = c("busybox");
        // SAFETY: creating a file in our own folder.
        let f = unsafe {
            libc::openat(
                fd,
                name.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o755,
            )
        };
        assert!(f >= 0);
        // SAFETY: f is ours; File takes it over.
        let mut file = unsafe { fs::File::from_raw_fd(f) };
        file.write_all(&bb).expect("write busybox");
        drop(file);
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd) };
        DeepTree {
            root: root.to_path_buf(),
        }
    }
}

impl Drop for DeepTree {
    fn drop(&mut self) {
        // Pull `d/d` up to the top one level at a time, then drop the emptied `d`.
        let top = self.root.join("d");
        let up = self.root.join("d.up");
        while top.is_dir() {
            if let Ok(rd) = fs::read_dir(&top) {
                for e in rd.flatten() {
                    if e.file_name() != "d" {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
            let inner = top.join("d");
            if inner.is_dir() {
                if fs::rename(&inner, &up).is_err() {
                    break;
                }
                let _ = fs::remove_dir(&top);
                if fs::rename(&up, &top).is_err() {
                    break;
                }
            } else {
                let _ = fs::remove_dir(&top);
                break;
            }
        }
    }
}

#[test]
fn a_tree_4096_folders_deep_is_walked_and_runs_as_with_runc() {
    if !ready() {
        return;
    }
    let mut b = Bundle::busybox();
    let built = Instant::now();
    let _tree = DeepTree::build(&b.rootfs());
    eprintln!("4,096-deep tree built in {:?}", built.elapsed());
    // Four links of 1,024 levels each: the kernel walks it, and so must the check.
    b.args(&["/a/b/c/e/busybox", "echo", "deep"]);
    // Every folder on the way is recorded with its path: ~17 MiB of paths at this depth
    // (rootfs::resolve DIRS_BYTES_MAX bounds it at 32 MiB).
    const DEEP_RSS_KIB: i64 = 48 * 1024;
    let (c, x) = prove_capped(&b, "deep-links", Lead::Ok, 0, &[], DEEP_RSS_KIB);
    assert_eq!(x.runc.stdout, b"deep\n");
    eprintln!("deep via links: check {:?}, {} KiB", c.elapsed, c.rss_kib);
    // The same file named by its 8 KiB path: ENAMETOOLONG before any walk.
    let long = format!("{}/busybox", "/d".repeat(DEPTH));
    b.args(&[&long, "echo", "deep"]);
    let (c, _) = prove_capped(&b, "deep-name", Lead::Agree, 0, &[], DEEP_RSS_KIB);
    assert!(c.has_error(), "an 8 KiB path cannot be exec'd: {}", c.json);
    // A link at the top into the bottom half, followed by a path of 3,000 more levels.
    let mid = format!("/a{}/busybox", "/d".repeat(1500));
    b.args(&[&mid, "echo", "deep"]);
    let (c, _) = prove_capped(&b, "deep-mid", Lead::Agree, 0, &[], DEEP_RSS_KIB);
    eprintln!("deep-mid: check {:?}, {} KiB", c.elapsed, c.rss_kib);
}

// =============================================================================================
// 7. Names with terminal escapes and bytes that are not UTF-8

const ESCAPES: &str = "\u{1b}[2J\u{1b}]52;c;SGVsbG8=\u{7}";

#[test]
fn names_with_terminal_escapes_and_bad_utf8_are_escaped_in_every_output() {
    if !ready() {
        return;
    }
    let mut cases: Vec<(&str, Bundle, Lead, &str)> = Vec::new();
    // args[0] naming a file that exists, mode 0644.
    let mut b = Bundle::busybox();
    let name = format!("/app{ESCAPES}");
    b.write(&name, b"#!/bin/sh\n", 0o644);
    b.args(&[&name]);
    cases.push((
        "esc-not-executable",
        b,
        Lead::Error("not-executable"),
        "\\u{001B}[2J",
    ));
    // args[0] missing, with a newline that would forge a line of execguard's own.
    let mut b = Bundle::busybox();
    b.args(&["/nope\nexecguard: all good [ok]\u{7}"]);
    cases.push(("esc-newline", b, Lead::Error("not-found"), "\\n"));
    // A bare name with escapes, not on PATH.
    let mut b = Bundle::busybox();
    let bare = format!("app{ESCAPES}");
    b.args(&[&bare]);
    cases.push(("esc-bare-name", b, Lead::Error("not-found"), "\\u{0007}"));
    // A bidi override that would turn the name around on screen.
    let mut b = Bundle::busybox();
    b.args(&["/invoice\u{202E}fdp.exe"]);
    cases.push(("esc-bidi", b, Lead::Error("not-found"), "\\u{202E}"));
    // A link whose target is not UTF-8 and holds escapes.
    let mut b = Bundle::busybox();
    let target: &[u8] = b"/\xff\xfe\x1b[2J\x07gone";
    symlink(OsStr::from_bytes(target), b.host("/app")).expect("symlink");
    b.args(&["/app"]);
    cases.push(("esc-link-target", b, Lead::Error("not-found"), "\\xFF"));
    // A file name that is not UTF-8, reached through a link.
    let mut b = Bundle::busybox();
    let raw: &[u8] = b"/bin/\xc3\x28\x1b]52;c;QQ==\x07";
    fs::write(raw_host(&b, raw), b"\x00\x00\x00\x00").expect("write");
    fs::set_permissions(raw_host(&b, raw), fs::Permissions::from_mode(0o755)).expect("chmod");
    symlink(OsStr::from_bytes(raw), b.host("/app")).expect("symlink");
    b.args(&["/app"]);
    cases.push(("esc-bad-utf8-file", b, Lead::AnyError, "\\xC3"));
    // A shebang interpreter with escapes and bad UTF-8.
    let b = app_bundle(b"#!/bin/\x1b]52;c;QUFB\x07\xff\xfe -x\x1b[2J\n");
    cases.push((
        "esc-shebang",
        b,
        Lead::Error("shebang-interpreter-missing"),
        "\\xFF",
    ));
    // A PT_INTERP loader path with escapes and bad UTF-8.
    let b = app_bundle(&tiny_elf(Some(b"/l\x1b[2J\x07\xff\x9b")));
    cases.push(("esc-loader", b, Lead::Error("interpreter-missing"), "\\x9B"));
    // A nul byte inside args[0].
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox\u{0}\u{1b}[2J", "true"]);
    cases.push(("esc-nul", b, Lead::Error("nul-in-argument"), "\\u{0000}"));

    for (tag, b, lead, shown) in &cases {
        let ok = if tag.contains("loader") { TINY_EXIT } else { 0 };
        let (c, x) = prove(b, tag, *lead, ok, &[]);
        if !shown.is_empty() {
            let lead_msg = c
                .findings()
                .first()
                .map(|f| f.to_string())
                .unwrap_or_default();
            assert!(
                lead_msg.contains(&shown.replace('\\', "\\\\")),
                "{tag}: the leading finding shows the escape {shown}: {lead_msg}"
            );
            assert!(
                c.text.contains(shown),
                "{tag}: the text shows {shown}: {}",
                c.text
            );
            let block = String::from_utf8_lossy(&x.eg.stderr);
            assert!(
                block.contains(shown),
                "{tag}: the stderr block shows {shown}: {block}"
            );
        }
        // No forged line: exactly the block's own lines start with `execguard: `.
        let forged = split_block(&x.eg.stderr)
            .0
            .iter()
            .any(|l| l.starts_with(b"execguard: all good"));
        assert!(!forged, "{tag}: a forged execguard line: {:?}", x.eg.err());
        // The runtime log in runc's text format, too.
        let t = run_both(b, &format!("{tag}-text"), false);
        assert_like_runc(&t, &format!("{tag} (text log)"), &[]);
        let has_eg_line = String::from_utf8_lossy(&t.eg_log).contains("msg=\"execguard: ");
        assert!(
            has_eg_line || !c.has_error(),
            "{tag}: an error finding is in the --log file: {:?}",
            String::from_utf8_lossy(&t.eg_log)
        );
    }
}

// =============================================================================================
// 8. Shebang lines

/// `/s1` `#!/s2`, ..., `/s{n}` `#!/bin/sh` echoing `nested-ran`: `n` nested scripts, the last
/// two levels reached through a relative link.
fn nested(n: usize) -> Bundle {
    let mut b = Bundle::busybox();
    for i in 1..=n {
        let text = if i < n {
            format!("#!/s{}\n", i + 1)
        } else {
            "#!/bin/sh\necho nested-ran\n".to_string()
        };
        b.write(&format!("/real/s{i}"), text.as_bytes(), 0o755);
        b.symlink(&format!("/s{i}"), &format!("real/s{i}"));
    }
    b.args(&["/s1"]);
    b
}

#[test]
fn hostile_shebang_lines_are_bounded_and_predicted_as_the_kernel_decides() {
    if !ready() {
        return;
    }
    let mut cases: Vec<(&str, Bundle, Lead)> = Vec::new();
    // A 10 KiB interpreter path: cut by the kernel's 256-byte buffer (ENOEXEC).
    let mut long = b"#!/".to_vec();
    long.extend(std::iter::repeat_n(b'x', 10 << 10));
    long.push(b'\n');
    cases.push((
        "shebang-10k-path",
        app_bundle(&long),
        Lead::Error("shebang-too-long"),
    ));
    // /bin/sh and a 10 KiB argument of escapes: only the argument is cut, sh runs it.
    let mut arg = b"#!/bin/sh ".to_vec();
    for _ in 0..(10 << 10) / 5 {
        arg.extend_from_slice(b"\x1b[2J\x07");
    }
    arg.extend_from_slice(b"\necho ran\n");
    cases.push(("shebang-10k-arg", app_bundle(&arg), Lead::Agree));
    // NUL bytes: the kernel's line ends at the NUL; sh then reads the file (a comment line).
    cases.push((
        "shebang-nul-after",
        app_bundle(b"#!/bin/sh\0garbage\x1b[2J\necho ran\n"),
        Lead::Agree,
    ));
    cases.push((
        "shebang-nul-first",
        app_bundle(b"#!\0/bin/sh\necho ran\n"),
        Lead::Agree,
    ));
    cases.push((
        "shebang-nul-arg",
        app_bundle(b"#!/bin/sh -e\0\xff\necho ran\n"),
        Lead::Agree,
    ));
    // Five nested scripts run (fs/exec.c exec_binprm: depth > 5 is ELOOP; /bin/sh is the
    // sixth program); six do not.
    cases.push(("nested-5", nested(5), Lead::Ok));
    cases.push(("nested-6", nested(6), Lead::Error("too-many-interpreters")));

    for (tag, b, lead) in &cases {
        let (c, x) = prove(b, tag, *lead, 0, &[]);
        assert!(
            c.text.len() < 64 << 10,
            "{tag}: the report stays small: {} bytes",
            c.text.len()
        );
        if *tag == "nested-5" {
            assert_eq!(x.runc.stdout, b"nested-ran\n", "{:?}", x.runc.err());
        }
        if *tag == "nested-6" {
            assert!(
                x.runc.err().contains("too many levels of symbolic links"),
                "runc fails with ELOOP: {}",
                x.runc.err()
            );
        }
    }
}

// =============================================================================================
// 9. Crafted ELF headers

/// Tiny ELFs with one absurd field each, and what the kernel makes of them.
fn crafted_elves() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let base = tiny_elf(None);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut e = base.clone();
        f(&mut e);
        e
    };
    v.push(("base", base.clone()));
    v.push(("phnum-ffff", with(&|e| put16(e, E_PHNUM, 0xffff))));
    v.push(("phnum-0", with(&|e| put16(e, E_PHNUM, 0))));
    v.push(("phoff-huge", with(&|e| put64(e, E_PHOFF, u64::MAX - 0xff))));
    v.push(("phoff-past-eof", with(&|e| put64(e, E_PHOFF, 1 << 20))));
    v.push(("phentsize-1", with(&|e| put16(e, E_PHENTSIZE, 1))));
    v.push(("phentsize-ffff", with(&|e| put16(e, E_PHENTSIZE, 0xffff))));
    v.push((
        "filesz-huge",
        with(&|e| {
            put64(e, PH0 + P_FILESZ, 0x7fff_ffff_ffff);
            put64(e, PH0 + P_MEMSZ, 0x7fff_ffff_ffff);
        }),
    ));
    v.push(("memsz-below-filesz", with(&|e| put64(e, PH0 + P_MEMSZ, 1))));
    v.push((
        "offset-past-eof",
        with(&|e| put64(e, PH0 + P_OFFSET, 1 << 30)),
    ));
    v.push((
        "offset-huge",
        with(&|e| put64(e, PH0 + P_OFFSET, !0xfff_u64)),
    ));
    v.push((
        "vaddr-kernel",
        with(&|e| put64(e, PH0 + P_VADDR, 0xffff_8000_0000_0000)),
    ));
    v.push(("align-3", with(&|e| put64(e, PH0 + P_ALIGN, 3))));
    v.push((
        "sections-garbage",
        with(&|e| {
            put64(e, E_SHOFF, u64::MAX - 0xffff);
            put16(e, E_SHNUM, 0xffff);
            put16(e, E_SHSTRNDX, 0xfffe);
        }),
    ));
    v.push((
        "shentsize-garbage",
        with(&|e| {
            put64(e, E_SHOFF, 64);
            put16(e, E_SHENTSIZE, 1);
            put16(e, E_SHNUM, 1000);
        }),
    ));
    let interp = tiny_elf(Some(b"/lib/ld.so"));
    let with_i = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut e = interp.clone();
        f(&mut e);
        e
    };
    v.push((
        "interp-filesz-huge",
        with_i(&|e| put64(e, PH1 + P_FILESZ, 0xffff_ffff)),
    ));
    v.push(("interp-filesz-1", with_i(&|e| put64(e, PH1 + P_FILESZ, 1))));
    v.push((
        "interp-offset-huge",
        with_i(&|e| put64(e, PH1 + P_OFFSET, u64::MAX - 16)),
    ));
    v.push((
        "interp-no-nul",
        with_i(&|e| {
            let n = e.len();
            e[n - 1] = b'x';
        }),
    ));
    v.push(("phdrs-1000", elf_with_phdrs(1000)));
    v.push(("phdrs-1171", elf_with_phdrs(1171)));
    v
}

/// Every crafted header: check bounded (time, RSS under 16 MiB), no panic, exit 0/1; and the
/// container exits as under runc.
#[test]
fn crafted_elf_headers_are_bounded_and_run_as_with_runc() {
    if !ready() {
        return;
    }
    for (tag, bytes) in crafted_elves() {
        let b = app_bundle(&bytes);
        let c = check(&b, tag, &[]);
        assert!(c.rss_kib < 16 * 1024, "{tag}: {} KiB", c.rss_kib);
        assert!(c.elapsed < Duration::from_secs(2), "{tag}: {:?}", c.elapsed);
        let x = run_both(&b, tag, true);
        assert_like_runc(&x, tag, &[]);
        eprintln!(
            "{tag}: check {} ({}) in {:?}, {} KiB; runc exit {}",
            c.verdict(),
            c.codes().join(","),
            c.elapsed,
            c.rss_kib,
            x.runc.code
        );
    }
}

/// `runc run` of `b`, the container deleted afterwards.
fn runc_plain(b: &Bundle, tag: &str) -> Run {
    b.save();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut c = runc();
    c.args(["run", "-b"]).arg(b.path()).arg(&id);
    let mut r = run_raw(c, &format!("runc run {id}"), CALL_TIMEOUT, || {
        force_delete(None, &id)
    });
    r.id = id;
    r
}

/// The prediction for every crafted header agrees with the kernel.
#[test]

fn crafted_elf_headers_are_predicted_as_the_kernel_decides() {
    if !ready() {
        return;
    }
    let mut wrong = Vec::new();
    for (tag, bytes) in crafted_elves() {
        let b = app_bundle(&bytes);
        let (c, _) = check_json(&b, tag, &[]);
        let r = runc_plain(&b, tag);
        let has_error = c["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["severity"] == "error"));
        let ran = r.code == TINY_EXIT;
        if (has_error && ran) || (c["verdict"] == "ok" && !ran) {
            wrong.push(format!(
                "{tag}: check {} {} but runc exit {} ({})",
                c["verdict"],
                c["findings"],
                r.code,
                r.err().trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "predictions the kernel contradicts:\n{}",
        wrong.join("\n")
    );
}

// =============================================================================================
// 10. config.json: wrong types, unknown capability names, size

/// A busybox bundle running `/bin/busybox echo typed` with one part of config.json replaced.
fn typed(f: impl FnOnce(&mut Value)) -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "typed"]);
    f(&mut b.config);
    b
}

/// config.json documents with a wrong JSON type somewhere.
fn wrong_types() -> Vec<(&'static str, Bundle)> {
    vec![
        (
            "args-string",
            typed(|c| c["process"]["args"] = json!("/bin/busybox echo typed")),
        ),
        (
            "args-number-first",
            typed(|c| c["process"]["args"] = json!([1, "/bin/busybox", "echo"])),
        ),
        (
            "args-null-first",
            typed(|c| c["process"]["args"] = json!([null, "/bin/busybox", "echo"])),
        ),
        (
            "args-object",
            typed(|c| c["process"]["args"] = json!({"0": "/bin/busybox"})),
        ),
        (
            "env-object",
            typed(|c| c["process"]["env"] = json!({"PATH": "/bin"})),
        ),
        ("cwd-number", typed(|c| c["process"]["cwd"] = json!(7))),
        (
            "uid-string",
            typed(|c| c["process"]["user"]["uid"] = json!("1000")),
        ),
        (
            "uid-negative",
            typed(|c| c["process"]["user"]["uid"] = json!(-1)),
        ),
        (
            "uid-2-pow-40",
            typed(|c| c["process"]["user"]["uid"] = json!(1u64 << 40)),
        ),
        (
            "terminal-string",
            typed(|c| c["process"]["terminal"] = json!("no")),
        ),
        (
            "caps-string",
            typed(|c| c["process"]["capabilities"]["bounding"] = json!("CAP_KILL")),
        ),
        ("process-array", typed(|c| c["process"] = json!([]))),
        ("process-null", typed(|c| c["process"] = Value::Null)),
        ("root-string", typed(|c| c["root"] = json!("rootfs"))),
        (
            "mounts-object",
            typed(|c| c["mounts"] = json!({"destination": "/proc"})),
        ),
        (
            "mount-options-string",
            typed(|c| c["mounts"][0]["options"] = json!("ro")),
        ),
        (
            "annotations-array",
            typed(|c| c["annotations"] = json!(["io.execguard.mode"])),
        ),
        (
            "namespaces-string",
            typed(|c| c["linux"]["namespaces"] = json!("pid")),
        ),
        (
            "deep-nesting",
            typed(|c| {
                let mut v = json!(1);
                for _ in 0..200 {
                    v = json!([v]);
                }
                c["x-deep"] = v;
            }),
        ),
    ]
}

/// check exits 0, 1 or 2 (it cannot check) without panic text, JSON or nothing on stdout;
/// run through execguard exits as runc does, with runc's own stderr unchanged.
#[test]
fn wrong_types_in_config_json_never_crash_and_run_as_with_runc() {
    if !ready() {
        return;
    }
    for (tag, b) in wrong_types() {
        b.save();
        let mut c = eg();
        c.args(["check", "--bundle", &s(b.path()), "--format", "json"]);
        let r = run_raw(c, tag, CALL_TIMEOUT, || {});
        assert!(
            matches!(r.code, 0..=2),
            "{tag}: check exit {}: {}",
            r.code,
            r.err()
        );
        assert!(r.elapsed < CHECK_LIMIT, "{tag}: {:?}", r.elapsed);
        assert_no_panic_text(&r.stdout, tag);
        assert_no_panic_text(&r.stderr, tag);
        assert_printable(&r.stderr, tag);
        if r.code == 2 {
            assert!(r.stdout.is_empty(), "{tag}: exit 2 prints nothing: {r:?}");
        } else {
            let v: Value = serde_json::from_slice(&r.stdout)
                .unwrap_or_else(|e| panic!("{tag}: not JSON ({e}): {r:?}"));
            assert_check_shape(&v, r.code, tag);
        }
        let x = run_both(&b, tag, true);
        let (w, rr) = (&x.eg, &x.runc);
        assert_eq!(w.code, rr.code, "{tag}: {}\nrunc: {}", w.err(), rr.err());
        assert_eq!(w.stdout, rr.stdout, "{tag}");
        let (block, rest) = split_block(&w.stderr);
        assert_eq!(
            norm_bytes(rest, &w.id),
            norm_bytes(&rr.stderr, &rr.id),
            "{tag}: runc's stderr unchanged"
        );
        assert_no_panic_text(&w.stderr, tag);
        for l in block {
            assert_printable(l, tag);
        }
        eprintln!("{tag}: check exit {}, runc exit {}", r.code, rr.code);
    }
}

/// When runc cannot even load the document, check must not call the program fine (`ok`):
/// the process it looked at is not the one runc would start (or none will start).
#[test]

fn wrong_types_runc_refuses_are_never_verdict_ok() {
    if !ready() {
        return;
    }
    let mut wrong = Vec::new();
    for (tag, b) in wrong_types() {
        b.save();
        let mut c = eg();
        c.args(["check", "--bundle", &s(b.path()), "--format", "json"]);
        let r = run_raw(c, tag, CALL_TIMEOUT, || {});
        let verdict = serde_json::from_slice::<Value>(&r.stdout)
            .map(|v| v["verdict"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let o = runc_plain(&b, tag);
        if o.code != 0 && verdict == "ok" {
            wrong.push(format!("{tag}: check ok, runc: {}", o.err().trim()));
        }
    }
    assert!(
        wrong.is_empty(),
        "ok for specs runc refuses:\n{}",
        wrong.join("\n")
    );
}

/// A capability name runc does not know is not in the set: runc 1.1 matches `CAP_NET_ADMIN`
/// exactly (libcontainer/capabilities `capabilityMap`) and warns about the rest. A file with
/// `cap_net_admin+ep` then fails with EPERM, and the check must say so.
#[test]

fn capability_names_runc_does_not_know_leave_the_bounding_set_without_them() {
    if !ready() {
        return;
    }
    const NET_ADMIN: u64 = 1 << 12;
    let mut wrong = Vec::new();
    for name in [
        "cap_net_admin",
        "NET_ADMIN",
        "CAP_CAP_NET_ADMIN",
        "Cap_Net_Admin",
    ] {
        let mut b = Bundle::busybox();
        b.copy_in(HOST_BUSYBOX, "/bin/busybox2", Some(0o755));
        set_file_caps(&b.host("/bin/busybox2"), NET_ADMIN).expect("setxattr");
        b.capabilities(&["CAP_AUDIT_WRITE", "CAP_KILL", name]);
        b.args(&["/bin/busybox2", "echo", "caps"]);
        let c = check(&b, name, &[]);
        let x = run_both(&b, name, true);
        assert_like_runc(&x, name, &[]);
        assert_ne!(
            x.runc.code,
            0,
            "{name}: runc ignores the name: {}",
            x.runc.err()
        );
        if c.lead() != "file-caps-exceed-bounding" {
            wrong.push(format!(
                "{name}: check {} {:?}; runc: {}",
                c.verdict(),
                c.codes(),
                x.runc.err().trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "names runc ignores counted as NET_ADMIN:\n{}",
        wrong.join("\n")
    );
}

/// Capability names with terminal escapes, and 10,000 of them: bounded, escaped, as runc.
#[test]
fn hostile_capability_names_are_bounded_and_never_printed_raw() {
    if !ready() {
        return;
    }
    let esc = format!("CAP_{ESCAPES}\u{202E}");
    let mut b = Bundle::busybox();
    b.capabilities(&["CAP_KILL", &esc]);
    b.args(&["/bin/busybox", "echo", "caps"]);
    prove(&b, "caps-escapes", Lead::Ok, 0, &[]);

    // 10,000 names: the check alone (runc 1.1.5 itself stalls on its own warning line past
    // ~64 KiB: "unable to forward init logs: bufio.Scanner: token too long").
    let names = |n: usize| -> Vec<String> { (0..n).map(|i| format!("CAP_NOPE_{i}")).collect() };
    let many = names(10_000);
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let mut b = Bundle::busybox();
    b.capabilities(&refs);
    b.args(&["/bin/busybox", "echo", "caps"]);
    // ~150 KiB of names, read twice (typed, then leniently): allow for the JSON trees.
    let c = check_capped(&b, "caps-10000", &[], 32 * 1024);
    assert_eq!(c.verdict(), "ok", "{}", c.json);
    eprintln!(
        "10,000 unknown capabilities: check {:?}, {} KiB",
        c.elapsed, c.rss_kib
    );
    // 2,000 names, started both ways.
    let some = names(2_000);
    let refs: Vec<&str> = some.iter().map(String::as_str).collect();
    let mut b = Bundle::busybox();
    b.capabilities(&refs);
    b.args(&["/bin/busybox", "echo", "caps"]);
    prove(&b, "caps-2000", Lead::Ok, 0, &[]);
}

/// 50 MiB of config.json as `mounts` (tmpfs at /m/N): check finishes in bounded time.
#[test]

fn a_50_mib_config_json_of_mounts_is_checked_in_bounded_time() {
    if !ready() {
        return;
    }
    let mut b = Bundle::busybox();
    let mounts = b.config["mounts"].as_array_mut().expect("mounts");
    let mut size = 0usize;
    let mut i = 0;
    while size < 50 << 20 {
        let m = json!({"destination": format!("/m/{i}"), "type": "tmpfs", "source": "tmpfs"});
        size += m.to_string().len() + 1;
        mounts.push(m);
        i += 1;
    }
    // Written compact (the pretty form would pass the 64 MiB cap).
    let text = b.config.to_string();
    assert!(text.len() < 60 << 20, "{} bytes", text.len());
    fs::write(b.path().join("config.json"), text).expect("write config.json");
    let mut c = eg();
    c.args(["check", "--bundle", &s(b.path()), "--format", "json"]);
    let r = run_raw(c, "50 MiB of mounts", Duration::from_secs(20), || {});
    assert_eq!(r.code, 0, "{}", r.err());
    assert!(
        r.elapsed < Duration::from_secs(10),
        "{i} mounts: check took {:?}",
        r.elapsed
    );
}
