//! `execguard exec` proven against the real runtimes on running containers: a container is
//! started detached (`runc run -d`, or `crun run -d` with the cgroup workaround), then the same
//! `exec` is given to the runtime directly and through execguard. A failing exec must be
//! explained first (the `execguard: ` block) with the runtime's own failure after it and its
//! exit status unchanged; a good exec must be byte-identical; the live view through
//! `/proc/<pid>/root` must see what only the running container has; enforce mode must refuse
//! without ever calling the runtime; the pid lookup must honour `--root` and never use an id
//! that is not a plain name as a path, nor a state file whose init start time does not match.
//!
//! Every container is force-deleted when its guard drops, also when a test fails. Every test that
//! execs an arm64 binary holds the binfmt guard and requires that no enabled handler takes it.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// The real crun.
const CRUN: &str = "/usr/bin/crun";
/// util-linux unshare, for the crun create/run cgroup workaround.
const UNSHARE: &str = "/usr/bin/unshare";
/// How long the container's init sleeps: longer than any test needs.
const SLEEP_SECS: &str = "60";

// ---------------------------------------------------------------------------------------------
// Running containers

/// A running container; `<runtime> [--root R] delete -f ID` when dropped.
struct Running {
    runtime: &'static str,
    id: String,
    root: Option<PathBuf>,
    /// The init's host pid.
    pid: i32,
    bundle: Bundle,
    /// A temporary `--root` folder, when the test asked for one.
    _root_dir: Option<tempfile::TempDir>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut c = Command::new(self.runtime);
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        let _ = c
            .args(["delete", "-f", &self.id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Running {
    fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `/proc/<init>/root`: the container's root as the kernel sees it.
    fn live_root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }
}

/// Removes a folder when dropped (fake state folders next to real ones: never `runtime delete`
/// them, their cgroup paths are the real container's).
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The busybox root plus the arm64 busybox at `/bin/arm`, the init sleeping.
fn arm_bundle(arm: &Path) -> Bundle {
    let mut b = Bundle::busybox();
    b.copy_in(arm, "/bin/arm", Some(0o755));
    b.args(&["/bin/busybox", "sleep", SLEEP_SECS]);
    b
}

/// Everything the arm64 tests need: the runtime prerequisites, the fixture and the binfmt guard
/// with no enabled handler taking aarch64.
fn arm_ready() -> Option<(BinfmtGuard, PathBuf)> {
    if !runtime_ready() {
        return None;
    }
    let arm = foreign_busybox("arm64")?;
    let guard = binfmt_guard()?;
    if !guard.require_no_handler_for(&arm) {
        return None;
    }
    Some((guard, arm))
}

/// `[--root R] state ID` of `runtime`: the init pid of a running container.
fn state_pid(runtime: &str, root: Option<&Path>, id: &str) -> i32 {
    let mut c = Command::new(runtime);
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    c.args(["state", id]);
    let out = run_limited(c, &format!("{runtime} state {id}"), || {});
    assert_eq!(out.code(), 0, "{runtime} state {id}: {out:?}");
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{runtime} state {id} is not JSON ({e}): {out:?}"));
    assert_eq!(v["status"], "running", "{runtime} state {id}: {v}");
    v["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no pid in {runtime} state {id}: {v}"))
}

/// Starts `b` detached under `runtime` (crun through the cgroup workaround), stdin from
/// /dev/null and the container's output in files of the bundle folder.
fn start(runtime: &'static str, b: Bundle, tag: &str, custom_root: bool) -> Running {
    b.save();
    let root_dir = custom_root.then(|| {
        tempfile::Builder::new()
            .prefix("egt-root-")
            .tempdir()
            .expect("create runtime root")
    });
    let mut r = Running {
        runtime,
        id: unique_id(tag),
        root: root_dir.as_ref().map(|d| d.path().to_path_buf()),
        pid: 0,
        bundle: b,
        _root_dir: root_dir,
    };
    let mut c = if runtime == CRUN {
        let mut c = Command::new(UNSHARE);
        c.args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
            "sh",
            CRUN,
        ]);
        c
    } else {
        Command::new(runtime)
    };
    if let Some(root) = &r.root {
        c.arg("--root").arg(root);
    }
    c.args(["run", "-d", "-b"]).arg(r.bundle.path()).arg(&r.id);
    let out = r.bundle.path().join("run.out");
    let err = r.bundle.path().join("run.err");
    let st = run_to_files(c, &out, &err, &format!("{runtime} run -d {}", r.id));
    assert!(
        st.success(),
        "{runtime} run -d {} failed ({st}): {}",
        r.id,
        fs::read_to_string(&err).unwrap_or_default()
    );
    r.pid = state_pid(runtime, r.root(), &r.id);
    r
}

/// Waits up to 10 s until `path` exists with `len` bytes.
fn wait_for_file(path: &Path, len: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if fs::metadata(path).is_ok_and(|m| m.len() == len) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} did not appear with {len} bytes", path.display());
}

// ---------------------------------------------------------------------------------------------
// execguard and the runtime, side by side

/// execguard's config (`mode`) and its own diagnosis log, in a temporary folder.
struct Eg {
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl Eg {
    fn new(mode: &str) -> Eg {
        let dir = tempfile::Builder::new()
            .prefix("egt-exec-")
            .tempdir()
            .expect("create execguard folder");
        let log = dir.path().join("diagnoses.jsonl");
        let config = dir.path().join("config.json");
        let text = json!({"mode": mode, "log": {"path": log, "include_ok": true}});
        fs::write(&config, text.to_string()).expect("write execguard config");
        Eg { dir, config, log }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The JSON objects of execguard's own log, in order.
    fn entries(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("own log line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The last entry of execguard's own log.
    fn last(&self) -> Value {
        self.entries()
            .pop()
            .unwrap_or_else(|| panic!("execguard wrote nothing to {}", self.log.display()))
    }
}

/// `runtime [--root R] exec ARGS...`.
fn direct(runtime: &str, root: Option<&Path>, exec_args: &[&str]) -> Outcome {
    let mut c = Command::new(runtime);
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    c.arg("exec").args(exec_args);
    run_limited(c, &format!("{runtime} exec {exec_args:?}"), || {})
}

/// `execguard --execguard-runtime=RT --execguard-config=CFG [--root R] GLOBAL... exec ARGS...`.
fn guarded(
    eg: &Eg,
    runtime: &str,
    root: Option<&Path>,
    global: &[&str],
    exec_args: &[&str],
) -> Outcome {
    let mut c = Command::new(execguard_bin());
    c.arg(format!("--execguard-runtime={runtime}"))
        .arg(format!("--execguard-config={}", eg.config.display()));
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    c.args(global).arg("exec").args(exec_args);
    run_limited(c, &format!("execguard exec {exec_args:?}"), || {})
}

/// runc's stderr with logrus' `time="..."` blanked, so two runs can be compared line by line.
fn untimed(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(
            |l| match l.strip_prefix("time=\"").and_then(|r| r.split_once('"')) {
                Some((_, rest)) => format!("time=\"\"{rest}"),
                None => l.to_string(),
            },
        )
        .collect()
}

/// The wrapped exec printed the `[code]` block first, then exactly what the runtime printed when
/// called directly, and exited like it.
fn assert_block_then_runtime(what: &str, wrapped: &Outcome, real: &Outcome, code: &str) {
    assert!(
        !real.stderr.contains("execguard"),
        "the direct call must not involve execguard ({what}): {real:?}"
    );
    assert_eq!(
        wrapped.code(),
        real.code(),
        "exit status through execguard must equal the runtime's for {what}\nwrapped: {wrapped:?}\ndirect: {real:?}"
    );
    assert_eq!(wrapped.stdout, real.stdout, "stdout for {what}");
    let lines = wrapped.stderr_lines();
    let tagged = format!("[{code}]");
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("execguard: ") && l.contains(&tagged)),
        "first stderr line for {what} must be `execguard: ... {tagged}`: {:?}",
        wrapped.stderr
    );
    let block = lines
        .iter()
        .take_while(|l| l.starts_with("execguard: "))
        .count();
    let after = untimed(&lines[block..].join("\n"));
    assert!(
        after.iter().all(|l| !l.contains("execguard: ")),
        "execguard's block must be contiguous and first for {what}: {:?}",
        wrapped.stderr
    );
    assert_eq!(
        after,
        untimed(&real.stderr),
        "after the block, stderr must be exactly the runtime's own for {what}\nwrapped: {:?}\ndirect: {:?}",
        wrapped.stderr,
        real.stderr
    );
}

/// The leading finding of the last diagnosis execguard logged: `code`, for `id`, started.
fn logged_lead(eg: &Eg, id: &str, code: &str) -> Value {
    let entry = eg.last();
    assert_eq!(entry["container_id"], id, "container_id in {entry}");
    assert_eq!(entry["action"], "started", "action in {entry}");
    let lead = entry["findings"][0].clone();
    assert_eq!(lead["code"], code, "leading finding in {entry}");
    assert_eq!(lead["severity"], "error", "leading severity in {entry}");
    lead
}

/// The finding's `expected_error` ("the line the user would otherwise see") is what the runtime
/// really printed.
fn assert_prediction_printed(lead: &Value, real: &Outcome) {
    let expected = lead["expected_error"]
        .as_str()
        .unwrap_or_else(|| panic!("no expected_error in {lead}"));
    assert!(
        unescape_runc(&real.stderr).contains(expected),
        "expected_error {expected:?} is not what the runtime printed: {:?}",
        real.stderr
    );
}

/// Writes a runtime-spec process JSON (Docker's `--process` file) and returns its path.
fn process_file(eg: &Eg, name: &str, args: &[&str], uid: u32, gid: u32) -> PathBuf {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let p = json!({
        "terminal": false,
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=egtest"],
        "cwd": "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": true,
    });
    let path = eg.path(name);
    fs::write(&path, p.to_string()).expect("write process file");
    path
}

/// A stand-in runtime that appends its arguments to `record`, then becomes `real`.
fn recorder(eg: &Eg, name: &str, real: &str, record: &Path) -> PathBuf {
    let script = eg.path(name);
    let text = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec {real} \"$@\"\n",
        record.display()
    );
    fs::write(&script, text).expect("write recorder");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod recorder");
    script
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------------------------
// 1-2: the arm64 binary in the image

#[test]
fn exec_of_an_arm64_binary_is_explained_before_runcs_exec_format_error() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let r = start(RUNC, arm_bundle(&arm), "arm", false);
    let eg = Eg::new("warn");
    let args = [r.id.as_str(), "/bin/arm", "echo", "hi"];
    let real = direct(RUNC, None, &args);
    assert_ne!(real.code(), 0, "runc exec of /bin/arm must fail: {real:?}");
    assert!(
        real.stderr.contains("exec format error"),
        "runc's own text: {real:?}"
    );
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_block_then_runtime("exec /bin/arm", &wrapped, &real, "arch-mismatch");
    let lead = logged_lead(&eg, &r.id, "arch-mismatch");
    assert_eq!(lead["errno"], "ENOEXEC", "{lead}");
    assert_eq!(lead["path"], "/bin/arm", "{lead}");
    assert_prediction_printed(&lead, &real);
}

#[test]
fn docker_shaped_exec_with_a_process_file_is_explained_the_same_way() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let r = start(RUNC, arm_bundle(&arm), "arm-docker", false);
    let eg = Eg::new("warn");
    let proc_json = process_file(&eg, "process.json", &["/bin/arm", "echo", "hi"], 0, 0);
    let (pid_real, pid_wrapped) = (eg.path("real.pid"), eg.path("wrapped.pid"));
    let shape = |pid_file: &Path| {
        vec![
            "--process".to_string(),
            s(&proc_json).to_string(),
            "--detach".to_string(),
            "--pid-file".to_string(),
            s(pid_file).to_string(),
            r.id.clone(),
        ]
    };
    let real_args = shape(&pid_real);
    let real_args: Vec<&str> = real_args.iter().map(String::as_str).collect();
    let real = direct(RUNC, None, &real_args);
    assert!(
        real.stderr.contains("exec /bin/arm: exec format error"),
        "runc's own text with --detach: {real:?}"
    );
    let wrapped_args = shape(&pid_wrapped);
    let wrapped_args: Vec<&str> = wrapped_args.iter().map(String::as_str).collect();
    let wrapped = guarded(&eg, RUNC, None, &[], &wrapped_args);
    assert_block_then_runtime("exec --process --detach", &wrapped, &real, "arch-mismatch");
    assert_eq!(
        pid_real.exists(),
        pid_wrapped.exists(),
        "the pid file must be written through execguard exactly when runc writes it"
    );
    let lead = logged_lead(&eg, &r.id, "arch-mismatch");
    assert_prediction_printed(&lead, &real);
}

// ---------------------------------------------------------------------------------------------
// 3: a good exec

#[test]
fn a_good_exec_is_byte_identical_to_runc_exec() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sleep", SLEEP_SECS]);
    let r = start(RUNC, b, "good", false);
    let eg = Eg::new("warn");
    let id = r.id.as_str();
    let cases: [&[&str]; 4] = [
        &[id, "/bin/busybox", "echo", "good"],
        // The environment the container sees: nothing of execguard's may leak into it.
        &[id, "/bin/busybox", "env"],
        &[id, "/bin/sh", "-c", "echo out; echo err >&2; exit 7"],
        &[id, "busybox", "echo", "found through PATH"],
    ];
    for args in cases {
        let before = eg.entries().len();
        let real = direct(RUNC, None, args);
        let wrapped = guarded(&eg, RUNC, None, &[], args);
        assert_eq!(wrapped.stdout, real.stdout, "stdout of {args:?}");
        assert_eq!(wrapped.stderr, real.stderr, "stderr of {args:?}");
        assert_eq!(wrapped.code(), real.code(), "exit of {args:?}");
        assert!(!wrapped.stderr.contains("execguard"), "{wrapped:?}");
        // It did check (include_ok logs the ok diagnosis) rather than skip.
        let entries = eg.entries();
        assert_eq!(entries.len(), before + 1, "one diagnosis for {args:?}");
        let last = &entries[before];
        assert_eq!(last["verdict"], "ok", "verdict for {args:?}: {last}");
        assert_eq!(last["action"], "started", "{last}");
    }
    let real = direct(RUNC, None, &[id, "/bin/busybox", "echo", "good"]);
    assert_eq!(real.stdout, "good\n");

    // Docker's shape.
    let proc_json = process_file(&eg, "good.json", &["/bin/busybox", "echo", "good"], 0, 0);
    let (pid_real, pid_wrapped) = (eg.path("real.pid"), eg.path("wrapped.pid"));
    let real = direct(
        RUNC,
        None,
        &[
            "--process",
            s(&proc_json),
            "--detach",
            "--pid-file",
            s(&pid_real),
            id,
        ],
    );
    let wrapped = guarded(
        &eg,
        RUNC,
        None,
        &[],
        &[
            "--process",
            s(&proc_json),
            "--detach",
            "--pid-file",
            s(&pid_wrapped),
            id,
        ],
    );
    assert_eq!(real.code(), 0, "{real:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert_eq!(wrapped.stderr, real.stderr);
    assert_eq!(wrapped.code(), real.code());
    assert!(pid_real.exists() && pid_wrapped.exists(), "both pid files");
    assert_eq!(eg.last()["verdict"], "ok", "{}", eg.last());
}

// ---------------------------------------------------------------------------------------------
// 4: the live view

#[test]
fn a_binary_copied_into_a_tmpfs_at_run_time_is_seen_through_the_live_view() {
    let Some((guard, arm)) = arm_ready() else {
        return;
    };
    let mut b = Bundle::busybox();
    b.applets(&["cp", "sleep"]);
    b.copy_in(&arm, "/bin/arm", Some(0o755));
    b.mkdir("/scratch", 0o755);
    b.add_mount(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "mode=755", "size=16m"],
    }));
    b.args(&[
        "/bin/sh",
        "-c",
        &format!("cp /bin/arm /scratch/a && sleep {SLEEP_SECS}"),
    ]);
    let mut r = start(RUNC, b, "tmpfs", false);
    let len = fs::metadata(&arm).expect("fixture").len();
    let live = r.live_root().join("scratch/a");
    wait_for_file(&live, len);
    assert!(
        !r.bundle.host("/scratch/a").exists(),
        "the copy must exist only in the container's tmpfs"
    );
    if !guard.require_no_handler_for(&live) {
        return;
    }

    let eg = Eg::new("warn");
    let args = [r.id.as_str(), "/scratch/a"];
    let real = direct(RUNC, None, &args);
    assert!(real.stderr.contains("exec format error"), "{real:?}");
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_block_then_runtime("exec /scratch/a", &wrapped, &real, "arch-mismatch");
    let lead = logged_lead(&eg, &r.id, "arch-mismatch");
    assert_prediction_printed(&lead, &real);

    // The static view of the same spec cannot see into the tmpfs.
    r.bundle.args(&["/scratch/a"]);
    let check = execguard_check(&r.bundle);
    assert!(
        check.find("arch-mismatch").is_none() && check.find("unverifiable").is_some(),
        "the static view must call /scratch/a unverifiable: {}",
        check.json
    );
}

#[test]
fn a_program_from_a_bind_mount_is_checked() {
    let Some((guard, arm)) = arm_ready() else {
        return;
    };
    let host = tempfile::tempdir().expect("host folder");
    let tool = host.path().join("armtool");
    fs::copy(&arm, &tool).expect("copy fixture");
    if !guard.require_no_handler_for(&tool) {
        return;
    }
    let mut b = arm_bundle(&arm);
    b.mkdir("/opt/tools", 0o755);
    b.bind(host.path(), "/opt/tools", &[]);
    let r = start(RUNC, b, "bind", false);
    let eg = Eg::new("warn");
    let args = [r.id.as_str(), "/opt/tools/armtool", "echo", "hi"];
    let real = direct(RUNC, None, &args);
    assert!(real.stderr.contains("exec format error"), "{real:?}");
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_block_then_runtime("exec /opt/tools/armtool", &wrapped, &real, "arch-mismatch");
    let lead = logged_lead(&eg, &r.id, "arch-mismatch");
    assert_eq!(lead["path"], "/opt/tools/armtool", "{lead}");
    assert_prediction_printed(&lead, &real);
}

#[test]
fn a_missing_program_is_not_found_with_runcs_own_lookpath_text() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sleep", SLEEP_SECS]);
    let r = start(RUNC, b, "missing", false);
    let eg = Eg::new("warn");
    for prog in ["/no/such/program", "no-such-program"] {
        let args = [r.id.as_str(), prog];
        let real = direct(RUNC, None, &args);
        assert_ne!(real.code(), 0, "{real:?}");
        assert!(
            real.stderr
                .contains("exec failed: unable to start container process"),
            "runc's create-time LookPath error for {prog}: {real:?}"
        );
        let wrapped = guarded(&eg, RUNC, None, &[], &args);
        assert_block_then_runtime(prog, &wrapped, &real, "not-found");
        let lead = logged_lead(&eg, &r.id, "not-found");
        assert_eq!(lead["errno"], "ENOENT", "{lead}");
        assert_prediction_printed(&lead, &real);
    }
}

// ---------------------------------------------------------------------------------------------
// 5: enforce mode

#[test]
fn enforce_mode_refuses_the_exec_and_runc_never_runs() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let r = start(RUNC, arm_bundle(&arm), "enforce", false);
    let eg = Eg::new("enforce");
    let record = eg.path("runtime-calls");
    let rec = recorder(&eg, "runc-recorder", RUNC, &record);
    let rlog = eg.path("runtime-log.json");
    let global = ["--log", s(&rlog), "--log-format", "json"];

    let refused = guarded(
        &eg,
        s(&rec),
        None,
        &global,
        &[&r.id, "/bin/arm", "echo", "hi"],
    );
    assert_eq!(refused.code(), 1, "refused exec exits 1: {refused:?}");
    assert_eq!(refused.stdout, "", "nothing on stdout");
    let lines = refused.stderr_lines();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("execguard: ") && l.contains("[arch-mismatch]")),
        "the block on stderr: {refused:?}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("execguard: ")),
        "only execguard speaks when it refuses: {refused:?}"
    );
    assert!(
        !record.exists(),
        "the runtime must never run on a refused exec: {:?}",
        fs::read_to_string(&record)
    );
    let log_text = fs::read_to_string(&rlog).expect("the --log file is written");
    let log: Vec<Value> = log_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("--log line ({e}): {l}")))
        .collect();
    let last = log.last().expect("a --log line");
    assert_eq!(last["level"], "error", "the last --log line: {log_text}");
    let msg = last["msg"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("execguard: ") && msg.contains("[arch-mismatch]"),
        "error message: {msg}"
    );
    for l in &log {
        assert!(
            l["time"].as_str().is_some_and(is_rfc3339),
            "RFC 3339 time in {l}"
        );
        assert!(
            matches!(l["level"].as_str(), Some("warning" | "error")),
            "{l}"
        );
    }
    let own = eg.last();
    assert_eq!(own["action"], "refused", "{own}");
    assert_eq!(own["mode"], "enforce", "{own}");

    // Docker's shape is refused the same way: no runtime call, so no pid file.
    let proc_json = process_file(&eg, "process.json", &["/bin/arm", "echo", "hi"], 0, 0);
    let pid_file = eg.path("exec.pid");
    let refused = guarded(
        &eg,
        s(&rec),
        None,
        &global,
        &[
            "--process",
            s(&proc_json),
            "--detach",
            "--pid-file",
            s(&pid_file),
            &r.id,
        ],
    );
    assert_eq!(refused.code(), 1, "{refused:?}");
    assert!(!pid_file.exists(), "no pid file: the runtime never ran");
    assert!(!record.exists(), "the runtime never ran");

    // The control: a good exec in enforce mode goes through the recorder, once, and reads the
    // state file rather than asking the runtime.
    let ok = guarded(
        &eg,
        s(&rec),
        None,
        &[],
        &[&r.id, "/bin/busybox", "echo", "good"],
    );
    assert_eq!(ok.code(), 0, "{ok:?}");
    assert_eq!(ok.stdout, "good\n");
    assert_eq!(ok.stderr, "");
    let calls = fs::read_to_string(&record).expect("the recorder ran");
    assert_eq!(
        calls,
        format!("exec {} /bin/busybox echo good\n", r.id),
        "exactly one runtime call, the exec itself"
    );
}

// ---------------------------------------------------------------------------------------------
// 6: a user that may not execute

/// A running container with `/bin/secret` (busybox, 0700 root:root) and a process file running
/// it as 1000:1000; the direct and the wrapped outcome.
fn secret_exec(tag: &str) -> Option<(Running, Eg, Outcome, Outcome)> {
    if !runtime_ready() {
        return None;
    }
    let mut b = Bundle::busybox();
    b.copy_in(HOST_BUSYBOX, "/bin/secret", Some(0o700));
    b.args(&["/bin/busybox", "sleep", SLEEP_SECS]);
    let r = start(RUNC, b, tag, false);
    let eg = Eg::new("warn");
    let proc_json = process_file(&eg, "user.json", &["/bin/secret", "echo", "hi"], 1000, 1000);
    let args = ["--process", s(&proc_json), r.id.as_str()];
    let real = direct(RUNC, None, &args);
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    Some((r, eg, real, wrapped))
}

#[test]
fn a_user_that_may_not_execute_is_permission_denied_user() {
    let Some((r, eg, real, wrapped)) = secret_exec("user") else {
        return;
    };
    assert_ne!(real.code(), 0, "{real:?}");
    assert!(
        real.stderr.contains("permission denied"),
        "runc exec as 1000 must fail with permission denied: {real:?}"
    );
    assert_block_then_runtime(
        "exec /bin/secret as 1000",
        &wrapped,
        &real,
        "permission-denied-user",
    );
    let lead = logged_lead(&eg, &r.id, "permission-denied-user");
    assert_eq!(lead["errno"], "EACCES", "{lead}");
    assert_eq!(lead["evidence"]["uid"], 1000, "{lead}");
}

/// runc 1.1.5's exec path (`setns_init_linux.go`) checks with `eaccess` after LookPath and
/// prints `eaccess <path>: permission denied`, not the `exec <path>: ...` of `runc run`.
#[test]
fn the_permission_denied_prediction_is_what_runc_exec_prints() {
    let Some((r, eg, real, _)) = secret_exec("user-text") else {
        return;
    };
    let lead = logged_lead(&eg, &r.id, "permission-denied-user");
    assert_prediction_printed(&lead, &real);
}

/// `runc exec --user`, `--env` and `--cwd` without `--process` change the process runc starts:
/// the check must look at that process, not at the container's init.
#[test]
fn exec_user_env_and_cwd_flags_are_the_process_that_is_checked() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.copy_in(HOST_BUSYBOX, "/bin/true", Some(0o700));
    b.copy_in(HOST_BUSYBOX, "/opt/tools/uname", Some(0o755));
    b.copy_in(HOST_BUSYBOX, "/work/rel/echo", Some(0o755));
    b.args(&["/bin/busybox", "sleep", SLEEP_SECS]);
    let r = start(RUNC, b, "flags", false);
    let eg = Eg::new("warn");

    // As root the 0700 file runs; with --user 1000:1000 runc's eaccess refuses it.
    let real = direct(RUNC, None, &[r.id.as_str(), "/bin/true"]);
    assert_eq!(real.code(), 0, "{real:?}");
    let args = ["--user", "1000:1000", r.id.as_str(), "/bin/true"];
    let real = direct(RUNC, None, &args);
    assert!(real.stderr.contains("permission denied"), "{real:?}");
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_block_then_runtime(
        "exec --user 1000:1000",
        &wrapped,
        &real,
        "permission-denied-user",
    );
    let lead = logged_lead(&eg, &r.id, "permission-denied-user");
    assert_eq!(lead["evidence"]["uid"], 1000, "{lead}");
    assert_prediction_printed(&lead, &real);

    // --env PATH=... (appended, so it wins) finds a program only that PATH has.
    let args = ["--env", "PATH=/opt/tools", r.id.as_str(), "uname"];
    let real = direct(RUNC, None, &args);
    assert_eq!(real.code(), 0, "runc finds it through --env PATH: {real:?}");
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_eq!(wrapped.code(), 0, "{wrapped:?}");
    assert!(
        execguard_lines(&wrapped.stderr).is_empty(),
        "no finding: {wrapped:?}"
    );
    // Without it, the container's PATH has no such program.
    let args = [r.id.as_str(), "uname"];
    let real = direct(RUNC, None, &args);
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_block_then_runtime("exec uname", &wrapped, &real, "not-found");

    // --cwd: a relative path with a slash is found from the process's working directory.
    let args = ["--cwd", "/work", r.id.as_str(), "rel/echo", "hi"];
    let real = direct(RUNC, None, &args);
    assert_eq!(
        real.code(),
        0,
        "runc runs rel/echo from --cwd /work: {real:?}"
    );
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_eq!(wrapped.code(), 0, "{wrapped:?}");
    assert!(
        execguard_lines(&wrapped.stderr).is_empty(),
        "no finding: {wrapped:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7: the pid lookup

#[test]
fn a_custom_root_is_used_to_find_the_container() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let r = start(RUNC, arm_bundle(&arm), "root", true);
    let eg = Eg::new("warn");
    let args = [r.id.as_str(), "/bin/arm", "echo", "hi"];
    let real = direct(RUNC, r.root(), &args);
    let wrapped = guarded(&eg, RUNC, r.root(), &[], &args);
    assert_block_then_runtime("exec with --root", &wrapped, &real, "arch-mismatch");
    logged_lead(&eg, &r.id, "arch-mismatch");

    // Without --root the default root has no such container: skipped, and runc says so.
    let real = direct(RUNC, None, &args);
    let wrapped = guarded(&eg, RUNC, None, &[], &args);
    assert_skipped_then_runtime("exec without --root", &wrapped, &real);
}

/// Exactly one execguard line, saying the checks were skipped, then the runtime's own output
/// unchanged and its exit status.
fn assert_skipped_then_runtime(what: &str, wrapped: &Outcome, real: &Outcome) {
    let ours = execguard_lines(&wrapped.stderr);
    assert_eq!(ours.len(), 1, "one execguard line for {what}: {wrapped:?}");
    assert!(
        ours[0].contains("checks skipped") && wrapped.stderr_lines().first() == Some(&ours[0]),
        "the line first says the checks were skipped for {what}: {wrapped:?}"
    );
    assert!(!wrapped.stderr.contains("[arch-mismatch]"), "{wrapped:?}");
    assert_eq!(
        wrapped.code(),
        real.code(),
        "exit for {what}: {wrapped:?} vs {real:?}"
    );
    assert_eq!(wrapped.stdout, real.stdout, "stdout for {what}");
    assert_eq!(
        untimed(&wrapped.stderr_lines()[1..].join("\n")),
        untimed(&real.stderr),
        "the runtime's own stderr for {what}"
    );
}

#[test]
fn an_unknown_container_id_skips_the_checks_in_one_line_and_passes_through() {
    if !runtime_ready() {
        return;
    }
    let eg = Eg::new("enforce");
    let id = unique_id("never-created");
    for args in [
        vec![id.as_str(), "/bin/busybox", "true"],
        vec!["--detach", id.as_str(), "/bin/busybox", "true"],
    ] {
        let real = direct(RUNC, None, &args);
        assert_ne!(real.code(), 0, "{real:?}");
        assert!(real.stderr.contains("container does not exist"), "{real:?}");
        let wrapped = guarded(&eg, RUNC, None, &[], &args);
        assert_skipped_then_runtime("an unknown id", &wrapped, &real);
    }
    let own = eg.last();
    assert!(own["skipped"].is_string(), "the skip is logged: {own}");
}

#[test]
fn ids_with_slash_or_dotdot_are_never_used_as_paths() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let r = start(RUNC, arm_bundle(&arm), "traps", true);
    let root = r.root().expect("custom root").to_path_buf();
    let state_dir = root.join(&r.id);
    assert!(state_dir.join("state.json").is_file(), "runc's state file");
    // Each (root, id) pair names the real state file if the id is joined as a path.
    let sub = root.join("sub");
    fs::create_dir(&sub).expect("mkdir sub");
    let inner = state_dir.join("sub");
    fs::create_dir(&inner).expect("mkdir inside the state folder");
    let _cleanup = (RemoveDir(sub.clone()), RemoveDir(inner.clone()));
    let dot = format!("./{}", r.id);
    let slash = format!("{}/", r.id);
    let up = format!("../{}", r.id);
    let cases: [(&Path, &str); 4] = [(&root, &dot), (&root, &slash), (&sub, &up), (&inner, "..")];
    let eg = Eg::new("enforce");
    for (root, id) in cases {
        let args = [id, "/bin/arm", "echo", "hi"];
        let real = direct(RUNC, Some(root), &args);
        assert_ne!(real.code(), 0, "runc refuses {id:?}: {real:?}");
        let wrapped = guarded(&eg, RUNC, Some(root), &[], &args);
        assert_skipped_then_runtime(&format!("id {id:?}"), &wrapped, &real);
    }
}

#[test]
fn a_state_file_whose_init_start_time_does_not_match_is_not_inspected() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let r = start(RUNC, arm_bundle(&arm), "reused", true);
    let root = r.root().expect("custom root").to_path_buf();
    let mut state: Value = serde_json::from_str(
        &fs::read_to_string(root.join(&r.id).join("state.json")).expect("read state.json"),
    )
    .expect("state.json is JSON");
    assert_eq!(state["init_process_pid"], r.pid, "{state}");
    let start_time = state["init_process_start"]
        .as_u64()
        .expect("init_process_start");
    let ghost = unique_id("ghost");
    state["id"] = json!(ghost);
    state["init_process_start"] = json!(start_time + 1);
    let ghost_dir = root.join(&ghost);
    fs::create_dir(&ghost_dir).expect("mkdir ghost");
    let _cleanup = RemoveDir(ghost_dir.clone());
    fs::write(ghost_dir.join("state.json"), state.to_string()).expect("write ghost state");

    let eg = Eg::new("enforce");
    let args = [ghost.as_str(), "/bin/arm", "echo", "hi"];
    let real = direct(RUNC, Some(&root), &args);
    assert!(
        real.stderr.contains("cannot exec in a stopped container"),
        "runc sees the pid was reused: {real:?}"
    );
    let wrapped = guarded(&eg, RUNC, Some(&root), &[], &args);
    assert_skipped_then_runtime("a reused init pid", &wrapped, &real);
}

// ---------------------------------------------------------------------------------------------
// 8: crun

fn crun_ready() -> bool {
    require(
        Path::new(CRUN).exists(),
        "crun is not installed at /usr/bin/crun",
    ) && require(Path::new(UNSHARE).exists(), "unshare is not installed")
}

/// A crun container with the arm64 binary; the direct and the wrapped `exec ID /bin/arm`.
fn crun_arm_exec(
    tag: &str,
    custom_root: bool,
) -> Option<(BinfmtGuard, Running, Eg, Outcome, Outcome)> {
    let (guard, arm) = arm_ready()?;
    if !crun_ready() {
        return None;
    }
    let r = start(CRUN, arm_bundle(&arm), tag, custom_root);
    let eg = Eg::new("warn");
    let args = [r.id.as_str(), "/bin/arm", "echo", "hi"];
    let real = direct(CRUN, r.root(), &args);
    let wrapped = guarded(&eg, CRUN, r.root(), &[], &args);
    Some((guard, r, eg, real, wrapped))
}

#[test]
fn crun_exec_of_an_arm64_binary_is_explained_before_cruns_error() {
    let Some((_guard, r, eg, real, wrapped)) = crun_arm_exec("crun", false) else {
        return;
    };
    assert_ne!(real.code(), 0, "{real:?}");
    assert!(
        real.stderr.to_lowercase().contains("exec format error"),
        "crun's own text: {real:?}"
    );
    assert_block_then_runtime("crun exec /bin/arm", &wrapped, &real, "arch-mismatch");
    let lead = logged_lead(&eg, &r.id, "arch-mismatch");
    assert_eq!(lead["errno"], "ENOEXEC", "{lead}");
}

#[test]
fn crun_with_a_custom_root_is_found() {
    let Some((_guard, r, eg, real, wrapped)) = crun_arm_exec("crun-root", true) else {
        return;
    };
    assert_block_then_runtime(
        "crun --root exec /bin/arm",
        &wrapped,
        &real,
        "arch-mismatch",
    );
    logged_lead(&eg, &r.id, "arch-mismatch");
}

/// crun prints `exec: Exec format error` (strerror, no path), not runc's wording.
#[test]
fn the_crun_prediction_is_what_crun_exec_prints() {
    let Some((_guard, r, eg, real, _)) = crun_arm_exec("crun-text", false) else {
        return;
    };
    let lead = logged_lead(&eg, &r.id, "arch-mismatch");
    assert_prediction_printed(&lead, &real);
}

/// crun's status file carries `process-start-time` (field 22 of /proc/<pid>/stat); crun itself
/// calls a container whose init start time differs "not running".
#[test]
fn a_crun_status_whose_start_time_does_not_match_is_not_inspected() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    if !crun_ready() {
        return;
    }
    let r = start(CRUN, arm_bundle(&arm), "crun-reused", true);
    let root = r.root().expect("custom root").to_path_buf();
    let real_dir = root.join(&r.id);
    let mut status: Value = serde_json::from_str(
        &fs::read_to_string(real_dir.join("status")).expect("read crun status"),
    )
    .expect("crun status is JSON");
    assert_eq!(status["pid"], r.pid, "{status}");
    let start_time = status["process-start-time"]
        .as_u64()
        .expect("process-start-time");
    status["process-start-time"] = json!(start_time + 1);
    let ghost = unique_id("crun-ghost");
    let ghost_dir = root.join(&ghost);
    fs::create_dir(&ghost_dir).expect("mkdir ghost");
    let _cleanup = RemoveDir(ghost_dir.clone());
    fs::write(ghost_dir.join("status"), status.to_string()).expect("write ghost status");
    fs::copy(real_dir.join("config.json"), ghost_dir.join("config.json")).expect("copy config");

    let eg = Eg::new("enforce");
    let args = [ghost.as_str(), "/bin/arm", "echo", "hi"];
    let real = direct(CRUN, Some(&root), &args);
    assert!(
        real.stderr.contains("is not running"),
        "crun sees the pid was reused: {real:?}"
    );
    let wrapped = guarded(&eg, CRUN, Some(&root), &[], &args);
    assert_skipped_then_runtime("a reused crun init pid", &wrapped, &real);
}

// ---------------------------------------------------------------------------------------------
// exec --tty: the caller's console socket

/// A caller's console socket, as containerd's shim or conmon listens on one: the terminal's
/// master that arrives is read until the process's side is closed.
struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    thread: std::thread::JoinHandle<Result<Handoff, String>>,
}

/// What a console socket received: the payload sent with the master, and what the terminal
/// showed.
type Handoff = (Vec<u8>, Vec<u8>);

fn console_socket() -> ConsoleSocket {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let dir = tempfile::Builder::new()
        .prefix("egt-console-")
        .tempdir()
        .expect("console folder");
    let path = dir.path().join("pty.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind console socket");
    let thread = std::thread::spawn(move || {
        let deadline = Instant::now() + CALL_TIMEOUT;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err("nobody connected to the console socket".into());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .map_err(|e| e.to_string())?;
        let mut master = None;
        for c in msg.cmsgs().map_err(|e| e.to_string())? {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: received descriptors belong to this thread alone.
                master = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
            }
        }
        let n = msg.bytes;
        let payload = buf[..n].to_vec();
        let master = master.ok_or("no terminal in the message")?;
        let mut f = fs::File::from(master);
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            use std::io::Read;
            match f.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                // EIO: every slave side is closed, the process is gone.
                Err(_) => break,
            }
            if Instant::now() > deadline {
                return Err("the terminal stayed open".into());
            }
        }
        Ok((payload, out))
    });
    ConsoleSocket {
        _dir: dir,
        path,
        thread,
    }
}

impl ConsoleSocket {
    /// (payload, what the terminal showed), CR LF as LF.
    fn take(self) -> (String, String) {
        let (payload, out) = self
            .thread
            .join()
            .expect("console thread")
            .unwrap_or_else(|e| panic!("console socket: {e}"));
        (
            String::from_utf8_lossy(&payload).into_owned(),
            String::from_utf8_lossy(&out).replace("\r\n", "\n"),
        )
    }
}

/// crun's `<RFC 3339 time>: ` prefix (after its colour escape) blanked.
fn untimed_crun(line: &str) -> String {
    let body = line.trim_start_matches("\u{1b}[1;31m");
    match body.split_once("Z: ") {
        Some((t, rest)) if is_rfc3339(&format!("{t}Z")) => format!("<time>: {rest}"),
        _ => line.to_string(),
    }
}

#[test]
fn exec_with_a_terminal_shows_the_diagnosis_on_the_terminal_the_caller_gets() {
    let Some((_guard, arm)) = arm_ready() else {
        return;
    };
    let mut runtimes = vec![RUNC];
    if Path::new(CRUN).exists() || in_ci() {
        runtimes.push(CRUN);
    }
    for rt in runtimes {
        let r = start(rt, arm_bundle(&arm), "tty", false);
        let eg = Eg::new("warn");
        for (cmd, bad) in [
            (&["/bin/arm", "echo", "hi"][..], true),
            (&["/bin/busybox", "echo", "good"][..], false),
        ] {
            let run = |wrapped: bool| {
                let sock = console_socket();
                let path = sock.path.to_string_lossy().into_owned();
                let mut args = vec![
                    "--tty",
                    "--detach",
                    "--console-socket",
                    path.as_str(),
                    r.id.as_str(),
                ];
                args.extend_from_slice(cmd);
                let out = if wrapped {
                    guarded(&eg, rt, None, &[], &args)
                } else {
                    direct(rt, None, &args)
                };
                let (payload, shown) = sock.take();
                (out, payload, shown)
            };
            let (real, real_payload, real_shown) = run(false);
            let (wrapped, payload, shown) = run(true);
            let what = format!("{rt} exec -t {cmd:?}");
            assert_eq!(
                wrapped.code(),
                real.code(),
                "{what}: {wrapped:?} vs {real:?}"
            );
            assert_eq!(wrapped.stdout, real.stdout, "{what}: stdout");
            assert!(
                payload.starts_with("/dev/pts/") || payload == real_payload,
                "{what}: the caller gets the runtime's payload: {payload:?} vs {real_payload:?}"
            );
            if bad {
                assert!(
                    real_shown.to_lowercase().contains("exec format error"),
                    "{what}: the runtime's failure is on the terminal: {real_shown:?} {real:?}"
                );
                let first = shown.lines().next().unwrap_or_default();
                assert!(
                    first.starts_with("execguard: /bin/arm is built for aarch64")
                        && first.ends_with("[arch-mismatch]"),
                    "{what}: the terminal must lead with the diagnosis: {shown:?}"
                );
                let rest: Vec<String> = shown
                    .lines()
                    .filter(|l| !l.starts_with("execguard: "))
                    .map(untimed_crun)
                    .collect();
                let theirs: Vec<String> = real_shown.lines().map(untimed_crun).collect();
                assert_eq!(
                    rest, theirs,
                    "{what}: after the block, the terminal shows what the runtime's did"
                );
            } else {
                assert_eq!(
                    shown, real_shown,
                    "{what}: a good exec's terminal is unchanged"
                );
                assert_eq!(shown, "good\n", "{what}");
            }
        }
    }
}
