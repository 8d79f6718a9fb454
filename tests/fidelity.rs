//! Fidelity against the real runc: whatever an engine hands to the runtime reaches it through
//! execguard exactly as when the engine calls runc itself. Proven side by side with runc
//! called directly, byte for byte where it applies: stdin (`update --resources -`), inherited
//! descriptors (`--preserve-fds`, `_OCI_SYNCPIPE`, `_OCI_STARTPIPE`, socket activation), the
//! environment (`NOTIFY_SOCKET`, `LISTEN_FDS`, `LISTEN_PID`, `GOMAXPROCS`, `TTRPC_ADDRESS`)
//! with `EXECGUARD_DELEGATED` the only addition, the console socket and what the container
//! writes through its pty, the exit status and stderr of a failed create, signals sent to
//! execguard while `create` runs the runtime as a child, and the container state after
//! `run -d`, `pause`, `resume`, `kill` and `delete`. `create` is the child path (execguard
//! spawns the runtime, checks what it made, exits with its status); every other subcommand is
//! an exec, and both are covered.

mod common;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const RUNTIME_FLAG: &str = "--execguard-runtime=/usr/bin/runc";
/// The loop marker execguard adds for the runtime, and nothing else.
const MARKER_ENV: &[u8] = b"EXECGUARD_DELEGATED=1";

// ---------------------------------------------------------------------------------------------
// Processes

fn code_of(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// What one process did, stdout as bytes.
#[derive(Debug)]
struct Io {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Io {
    fn code(&self) -> i32 {
        code_of(self.status)
    }
}

/// Runs `cmd` with `stdin` (bytes written from a thread, then closed; /dev/null when `None`),
/// stdout and stderr captured, for at most [`CALL_TIMEOUT`]; `on_timeout` runs before the kill.
fn run_io(mut cmd: Command, stdin: Option<Vec<u8>>, what: &str, on_timeout: impl FnOnce()) -> Io {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let Some(bytes) = stdin {
        let mut w = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
        });
    }
    let pipes = Pipes::take(&mut child);
    let status = wait_limited(&mut child, what, on_timeout);
    let (stdout, stderr) = pipes.collect();
    Io {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Waits for `child` at most [`CALL_TIMEOUT`]; on timeout `on_timeout` runs, the child is
/// killed and the test fails.
fn wait_limited(child: &mut Child, what: &str, on_timeout: impl FnOnce()) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if start.elapsed() > CALL_TIMEOUT {
            on_timeout();
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CALL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// execguard in front of the real runc with config `cfg` (a `--execguard-config=` flag).
fn eg_runc(cfg: &str) -> Command {
    let mut c = eg();
    c.arg(RUNTIME_FLAG).arg(cfg);
    c
}

/// The two ways every fidelity case is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Runc,
    Execguard,
}

impl Via {
    fn cmd(self, cfg: &str) -> Command {
        match self {
            Via::Runc => runc(),
            Via::Execguard => eg_runc(cfg),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files and text

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("egt-fidelity-")
        .tempdir()
        .expect("temp folder")
}

/// Writes an execguard config (warn mode unless `v` says otherwise) and returns the
/// `--execguard-config=` flag for it.
fn config_flag(dir: &Path, v: &Value) -> String {
    let p = dir.join("execguard.json");
    fs::write(&p, v.to_string()).expect("write execguard config");
    format!("--execguard-config={}", p.display())
}

/// Warn mode, execguard's own log inside `dir`.
fn warn_config(dir: &Path) -> String {
    config_flag(dir, &json!({"log": {"path": dir.join("own.jsonl")}}))
}

/// NUL-terminated records of a file.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == 0)
        .map(|r| r.strip_suffix(&[0]).unwrap_or(r).to_vec())
        .collect()
}

fn lossy(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Descriptors

/// A pipe, both ends close-on-exec: (read, write).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: a valid two-element array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 returned two fresh descriptors this function now owns.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A close-on-exec duplicate of `fd` numbered 100 or higher, so it can be moved to a low
/// number in the child without ever colliding with another source.
fn high_dup(fd: RawFd) -> OwnedFd {
    // SAFETY: fcntl on a descriptor the caller holds open.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) };
    assert!(
        n >= 100,
        "F_DUPFD_CLOEXEC: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor this function owns.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Descriptors the child gets at fixed numbers (open across exec), as an engine passes them.
struct Inherit {
    held: Vec<(OwnedFd, RawFd)>,
}

impl Inherit {
    fn new() -> Inherit {
        Inherit { held: Vec::new() }
    }

    /// The child gets `fd` (any descriptor this process holds) as `target`.
    fn add(&mut self, fd: RawFd, target: RawFd) -> &mut Self {
        assert!((3..100).contains(&target), "target {target}");
        self.held.push((high_dup(fd), target));
        self
    }

    /// Installs the descriptors in `cmd`'s child before exec.
    fn apply(&self, cmd: &mut Command) {
        let map: Vec<(RawFd, RawFd)> = self.held.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
        // SAFETY: only dup2, async-signal-safe, between fork and exec; sources are >= 100 and
        // targets below, so no dup2 overwrites a later source. dup2 clears close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                for (src, dst) in &map {
                    if libc::dup2(*src, *dst) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Containers

/// `runc state ID` as JSON (`None` when runc says it does not exist).
fn state(id: &str) -> Option<Value> {
    let mut c = runc();
    c.args(["state", id]);
    let s = run_io(c, None, "runc state", || {});
    if s.code() != 0 {
        return None;
    }
    serde_json::from_slice(&s.stdout).ok()
}

/// The `status` runc reports, "" when there is no such container.
fn status(id: &str) -> String {
    state(id)
        .and_then(|v| v["status"].as_str().map(String::from))
        .unwrap_or_default()
}

/// Waits until runc reports `want` for `id` (10 s at most).
fn wait_status(id: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        let s = status(id);
        if s == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{id} never became {want:?} (last {s:?})"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The container's init pid.
fn init_pid(id: &str) -> i32 {
    state(id)
        .and_then(|v| v["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or_else(|| panic!("no init pid for {id}"))
}

/// What a `create` (stdout and stderr sent to files, which the container keeps), the
/// following `runc start` and the container itself did.
#[derive(Debug)]
struct Created {
    create: i32,
    start: Option<Io>,
    /// The container's stdout bytes (create's stdout file).
    stdout: Vec<u8>,
    /// create's stderr file: create's own lines and the container's stderr.
    stderr: String,
}

/// Runs `cmd` (a complete `create` command line for `id`), then `runc start` and waits until
/// the container stopped. `stdin` is create's (and the container's) stdin, /dev/null if `None`.
fn create_start(mut cmd: Command, id: &str, stdin: Option<&Path>, what: &str) -> Created {
    let t = tmp();
    let out = t.path().join("out");
    let err = t.path().join("err");
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(fs::File::open(p).expect("open stdin file")),
        None => Stdio::null(),
    })
    .stdout(fs::File::create(&out).expect("create stdout file"))
    .stderr(fs::File::create(&err).expect("create stderr file"));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let code = code_of(wait_limited(&mut child, what, || force_delete(None, id)));
    drop(cmd);
    let mut start = None;
    if code == 0 {
        let mut c = runc();
        c.args(["start", id]);
        start = Some(run_io(c, None, "runc start", || {}));
        wait_status(id, "stopped");
    }
    Created {
        create: code,
        start,
        stdout: fs::read(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// `create EXTRA... -b B ID` through `via`, then start, with `fds` inherited.
fn create_case(
    via: Via,
    cfg: &str,
    b: &Bundle,
    extra: &[&str],
    fds: &Inherit,
    tag: &str,
) -> Created {
    b.save();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut c = via.cmd(cfg);
    c.arg("create").args(extra).arg("-b").arg(b.path()).arg(&id);
    fds.apply(&mut c);
    create_start(c, &id, None, &format!("{via:?} create {id}"))
}

/// `run -b B ID` (foreground) through `via`, with `fds` inherited.
fn run_case(via: Via, cfg: &str, b: &Bundle, extra: &[&str], fds: &Inherit, tag: &str) -> Io {
    b.save();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut c = via.cmd(cfg);
    c.arg("run").args(extra).arg("-b").arg(b.path()).arg(&id);
    fds.apply(&mut c);
    run_io(c, None, &format!("{via:?} run {id}"), || {
        force_delete(None, &id)
    })
}

/// The same start through execguard and through runc: create's exit status, start's, the
/// container's stdout bytes, and stderr without execguard's lines.
fn assert_same_created(w: &Created, r: &Created, what: &str) {
    assert_eq!(
        (w.create, w.start.as_ref().map(Io::code)),
        (r.create, r.start.as_ref().map(Io::code)),
        "{what}: create/start exit status must be runc's\nexecguard: {w:?}\nrunc: {r:?}"
    );
    assert_eq!(
        w.stdout, r.stdout,
        "{what}: the container's stdout must be the same bytes\nexecguard: {w:?}\nrunc: {r:?}"
    );
    assert_eq!(
        others(&w.stderr),
        r.stderr,
        "{what}: stderr (without execguard's lines) must be runc's\nexecguard: {w:?}\nrunc: {r:?}"
    );
}

fn assert_same_run(w: &Io, r: &Io, what: &str) {
    assert_eq!(
        (w.code(), &w.stdout),
        (r.code(), &r.stdout),
        "{what}: exit status and stdout must be runc's\nexecguard: {w:?}\nrunc: {r:?}"
    );
    assert_eq!(
        others(&w.stderr),
        r.stderr,
        "{what}: stderr (without execguard's lines) must be runc's\nexecguard: {w:?}\nrunc: {r:?}"
    );
}

/// A busybox bundle running `script` with `/bin/busybox sh -c` (every applet named through
/// `/bin/busybox`, so the container needs no applet links).
fn script_bundle(script: &str) -> Bundle {
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sh", "-c", script]);
    b
}

// ---------------------------------------------------------------------------------------------
// The stand-in runtime: records what it was given

const STANDIN_C: &str = r#"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
extern char **environ;
static char dir[4096];
static FILE *open_out(const char *name) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) exit(90);
    return f;
}
static void dump(const char *name, char **v) {
    FILE *f = open_out(name);
    for (; *v; v++) { fwrite(*v, 1, strlen(*v), f); fputc(0, f); }
    fclose(f);
}
int main(int argc, char **argv) {
    (void)argc;
    const char *out = getenv("STANDIN_OUT");
    if (!out) return 91;
    /* Open descriptors first, before this program opens any of its own. */
    static char fds[65536];
    size_t len = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 92;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
        char p[300], l[4096];
        snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(p, l, sizeof l - 1);
        if (n < 0) n = 0;
        l[n] = 0;
        if (len < sizeof fds) {
            int w = snprintf(fds + len, sizeof fds - len, "%s %s\n", e->d_name, l);
            if (w > 0) len += (size_t)w;
        }
    }
    closedir(d);
    snprintf(dir, sizeof dir, "%s/%d", out, (int)getpid());
    if (mkdir(dir, 0700)) return 93;
    FILE *f = open_out("fds");
    fputs(fds, f);
    fclose(f);
    dump("argv", argv);
    dump("env", environ);
    f = open_out("ids");
    fprintf(f, "%d %d\n", (int)getpid(), (int)getppid());
    fclose(f);
    f = open_out("stdin");
    static char buf[65536];
    size_t total = 0;
    ssize_t n;
    while (total < (64u << 20) && (n = read(0, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, (size_t)n, f);
        total += (size_t)n;
    }
    fclose(f);
    fclose(open_out("done"));
    const char *x = getenv("STANDIN_EXIT");
    return x ? atoi(x) : 0;
}
"#;

/// Compiles the stand-in runtime into `dir`.
fn build_standin(dir: &Path) -> Option<PathBuf> {
    compile_c(dir, "standin-rt", STANDIN_C)
}

/// One call of the stand-in, as it recorded it.
#[derive(Debug)]
struct Record {
    argv: Vec<Vec<u8>>,
    /// Sorted.
    env: Vec<Vec<u8>>,
    /// `(fd, readlink target)`, sorted by fd.
    fds: Vec<(i32, String)>,
    pid: i32,
    ppid: i32,
    stdin: Vec<u8>,
}

/// The calls recorded under `out` (one folder per stand-in pid), and empties `out`.
fn take_records(out: &Path) -> Vec<Record> {
    let mut v = Vec::new();
    for e in fs::read_dir(out).expect("read stand-in output").flatten() {
        let d = e.path();
        assert!(
            d.join("done").exists(),
            "stand-in record {} incomplete",
            d.display()
        );
        let mut env = records(&fs::read(d.join("env")).expect("env"));
        env.sort();
        let mut fds: Vec<(i32, String)> = fs::read_to_string(d.join("fds"))
            .expect("fds")
            .lines()
            .filter_map(|l| {
                let (n, t) = l.split_once(' ')?;
                Some((n.parse().ok()?, t.to_string()))
            })
            .collect();
        fds.sort();
        let ids = fs::read_to_string(d.join("ids")).expect("ids");
        let mut it = ids
            .split_whitespace()
            .map(|x| x.parse::<i32>().expect("pid"));
        let (pid, ppid) = (it.next().expect("pid"), it.next().expect("ppid"));
        v.push(Record {
            argv: records(&fs::read(d.join("argv")).expect("argv")),
            env,
            fds,
            pid,
            ppid,
            stdin: fs::read(d.join("stdin")).expect("stdin"),
        });
        fs::remove_dir_all(&d).expect("clear record");
    }
    v
}

/// Exactly one call recorded.
fn one_record(out: &Path, what: &str) -> Record {
    let mut v = take_records(out);
    assert_eq!(v.len(), 1, "{what}: the runtime must be called once: {v:?}");
    v.remove(0)
}

/// The kind of a readlink target of fd 0-2 (`pipe`, `/dev/null`, `socket`), whose identity
/// differs between two runs.
fn kind(target: &str) -> &str {
    target.split(':').next().unwrap_or(target)
}

/// What the runtime got through execguard is what it got directly, plus the marker only.
fn assert_same_handover(w: &Record, r: &Record, what: &str) {
    assert_eq!(lossy(&w.argv), lossy(&r.argv), "{what}: argv byte for byte");
    assert_eq!(w.argv, r.argv, "{what}: argv byte for byte");
    let mut want = r.env.clone();
    want.push(MARKER_ENV.to_vec());
    want.sort();
    assert_eq!(
        lossy(&w.env),
        lossy(&want),
        "{what}: the environment must be the caller's plus EXECGUARD_DELEGATED=1, nothing else"
    );
    assert_eq!(w.env, want, "{what}: environment byte for byte");
    let nums = |r: &Record| r.fds.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    assert_eq!(
        nums(w),
        nums(r),
        "{what}: the same descriptor numbers, none of execguard's\nexecguard: {:?}\nrunc: {:?}",
        w.fds,
        r.fds
    );
    for ((n, tw), (_, tr)) in w.fds.iter().zip(&r.fds) {
        if *n < 3 {
            assert_eq!(kind(tw), kind(tr), "{what}: fd {n} kind");
        } else {
            assert_eq!(tw, tr, "{what}: fd {n} must be the very same open file");
        }
    }
    assert_eq!(w.stdin, r.stdin, "{what}: stdin byte for byte");
}

// =============================================================================================
// 1. update --resources -: stdin

#[test]
fn update_resources_from_stdin_reach_the_runtime_byte_for_byte() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let Some(rt) = build_standin(t.path()) else {
        return;
    };
    let out = t.path().join("out");
    fs::create_dir(&out).expect("out");
    // JSON, then 300 KiB of spaces (more than a pipe holds) and bytes that are not UTF-8.
    let mut input = br#"{"pids":{"limit":77},"cpu":{"shares":512}}"#.to_vec();
    input.extend(std::iter::repeat_n(b' ', 300 * 1024));
    input.extend_from_slice(b"\n\xff\xfe\x00end\n");
    let args: &[&str] = &[
        "--root",
        "/run/egt-root",
        "--log",
        "/run/egt-log.json",
        "--log-format",
        "json",
        "update",
        "--resources",
        "-",
        "ctr-1",
    ];
    let mut direct = Command::new(&rt);
    direct
        .env_clear()
        .env("STANDIN_OUT", &out)
        .env("STANDIN_EXIT", "3")
        .args(args);
    let d = run_io(direct, Some(input.clone()), "stand-in update", || {});
    assert_eq!(d.code(), 3, "{d:?}");
    let r = one_record(&out, "direct");
    assert_eq!(r.stdin, input, "the stand-in records its stdin whole");
    let mut c = eg();
    c.env_clear()
        .env("STANDIN_OUT", &out)
        .env("STANDIN_EXIT", "3")
        .arg(format!("--execguard-runtime={}", rt.display()))
        .args(args);
    let w = run_io(c, Some(input.clone()), "execguard update", || {});
    assert_eq!(w.code(), 3, "the runtime's exit status: {w:?}");
    assert!(w.stdout.is_empty() && w.stderr.is_empty(), "{w:?}");
    let rec = one_record(&out, "execguard update");
    assert_eq!(
        rec.stdin.len(),
        input.len(),
        "update --resources -: every byte of stdin reaches the runtime"
    );
    assert_same_handover(&rec, &r, "update --resources -");
}

/// The cgroup file `name` of controller `ctl` for process `pid` (cgroup v1 or v2).
fn cgroup_file(pid: i32, ctl: &str, name: &str) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if ctls.split(',').any(|c| c == ctl) {
            for dir in [ctls, ctl] {
                let p = Path::new("/sys/fs/cgroup").join(dir).join(path).join(name);
                if p.exists() {
                    return Some(p);
                }
            }
        }
        if ctls.is_empty() {
            let p = Path::new("/sys/fs/cgroup").join(path).join(name);
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// pids limit and CPU weight of a container's cgroup, as the kernel reports them.
fn limits(id: &str) -> Option<(String, String)> {
    let pid = init_pid(id);
    let pids = cgroup_file(pid, "pids", "pids.max")?;
    let cpu =
        cgroup_file(pid, "cpu", "cpu.shares").or_else(|| cgroup_file(pid, "cpu", "cpu.weight"))?;
    let read = |p: &Path| fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
    Some((read(&pids)?, read(&cpu)?))
}

/// A detached container (created and started by runc itself) sleeping for a minute.
fn sleeper(b: &Bundle, tag: &str) -> ContainerGuard {
    b.save();
    let id = unique_id(tag);
    let g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let t = tmp();
    let mut c = runc();
    c.arg("create")
        .arg("-b")
        .arg(b.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(fs::File::create(t.path().join("o")).expect("o"))
        .stderr(fs::File::create(t.path().join("e")).expect("e"));
    let mut child = c.spawn().expect("spawn runc create");
    let st = wait_limited(&mut child, "runc create", || force_delete(None, &id));
    assert!(
        st.success(),
        "runc create: {}",
        fs::read_to_string(t.path().join("e")).unwrap_or_default()
    );
    let mut c = runc();
    c.args(["start", &id]);
    let s = run_io(c, None, "runc start", || {});
    assert_eq!(s.code(), 0, "{s:?}");
    wait_status(&id, "running");
    g
}

#[test]
fn update_resources_through_execguard_change_the_cgroup_as_runc_does() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sleep", "60"]);
    let a = sleeper(&b, "upd-runc");
    let e = sleeper(&b, "upd-eg");
    let Some(before) = limits(&a.id) else {
        require(
            false,
            "the container's pids/cpu cgroup files are not visible",
        );
        return;
    };
    assert_eq!(
        limits(&e.id).as_ref(),
        Some(&before),
        "fresh containers alike"
    );
    let steps: &[(&str, &[u8])] = &[
        (
            "--resources",
            br#"{"pids":{"limit":77},"cpu":{"shares":512}}"#,
        ),
        ("-r", br#"{"pids":{"limit":66},"cpu":{"shares":300}}"#),
    ];
    for (flag, json_in) in steps {
        let mut c = runc();
        c.args(["update", flag, "-", &a.id]);
        let r = run_io(c, Some(json_in.to_vec()), "runc update", || {});
        let mut c = eg_runc(&cfg);
        c.args(["update", flag, "-", &e.id]);
        let w = run_io(c, Some(json_in.to_vec()), "execguard update", || {});
        assert_eq!(r.code(), 0, "runc update {flag} -: {r:?}");
        assert_eq!(
            (w.code(), &w.stdout, &w.stderr),
            (r.code(), &r.stdout, &r.stderr),
            "update {flag} -: execguard must answer as runc"
        );
        let (ra, we) = (limits(&a.id), limits(&e.id));
        assert_ne!(
            ra.as_ref(),
            Some(&before),
            "runc update {flag} - changed nothing"
        );
        assert_eq!(
            we, ra,
            "update {flag} - through execguard must set the cgroup exactly as runc does"
        );
    }
    // Malformed resources on stdin: runc's own parse error, word for word.
    let bad: &[u8] = b"{\"pids\": {\"limit\": \"many\"}}";
    let mut c = runc();
    c.args(["update", "--resources", "-", &a.id]);
    let r = run_io(c, Some(bad.to_vec()), "runc update bad", || {});
    let mut c = eg_runc(&cfg);
    c.args(["update", "--resources", "-", &e.id]);
    let w = run_io(c, Some(bad.to_vec()), "execguard update bad", || {});
    assert_ne!(r.code(), 0, "runc refuses {bad:?}: {r:?}");
    assert_eq!(
        (w.code(), norm(&w.stderr, &e.id)),
        (r.code(), norm(&r.stderr, &a.id)),
        "update with malformed stdin: runc's own error through execguard"
    );
}

// =============================================================================================
// 2. --preserve-fds and stdin reach the container

const FD3_SCRIPT: &str = "/bin/busybox ls /proc/self/fd; /bin/busybox cat /proc/self/fd/3";

#[test]
fn create_preserve_fds_gives_the_container_fd_3_as_runc_does() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let file = t.path().join("fd3");
    fs::write(&file, b"fd three\n").expect("fd3 file");
    let f = fs::File::open(&file).expect("open fd3 file");
    let mut fds = Inherit::new();
    fds.add(f.as_raw_fd(), 3);
    let b = script_bundle(FD3_SCRIPT);
    let r = create_case(
        Via::Runc,
        &cfg,
        &b,
        &["--preserve-fds", "1"],
        &fds,
        "pfd-c-ref",
    );
    assert_eq!(r.create, 0, "{r:?}");
    assert!(
        r.stdout.ends_with(b"fd three\n"),
        "runc: the container reads fd 3: {r:?}"
    );
    let w = create_case(
        Via::Execguard,
        &cfg,
        &b,
        &["--preserve-fds", "1"],
        &fds,
        "pfd-c",
    );
    assert_same_created(&w, &r, "create --preserve-fds 1");
    assert!(
        execguard_lines(&w.stderr).is_empty(),
        "nothing to say for this bundle: {w:?}"
    );
    // Control: without --preserve-fds the container has no fd 3, either way.
    let r0 = create_case(Via::Runc, &cfg, &b, &[], &fds, "pfd-c0-ref");
    assert!(!r0.stdout.ends_with(b"fd three\n"), "{r0:?}");
    let w0 = create_case(Via::Execguard, &cfg, &b, &[], &fds, "pfd-c0");
    assert_same_created(&w0, &r0, "create without --preserve-fds");
}

#[test]
fn run_preserve_fds_gives_the_container_fd_3_as_runc_does() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let file = t.path().join("fd3");
    fs::write(&file, b"fd three\n").expect("fd3 file");
    let f = fs::File::open(&file).expect("open fd3 file");
    let mut fds = Inherit::new();
    fds.add(f.as_raw_fd(), 3);
    let b = script_bundle(FD3_SCRIPT);
    let r = run_case(
        Via::Runc,
        &cfg,
        &b,
        &["--preserve-fds", "1"],
        &fds,
        "pfd-r-ref",
    );
    assert_eq!(r.code(), 0, "{r:?}");
    assert!(r.stdout.ends_with(b"fd three\n"), "{r:?}");
    let w = run_case(
        Via::Execguard,
        &cfg,
        &b,
        &["--preserve-fds", "1"],
        &fds,
        "pfd-r",
    );
    assert_same_run(&w, &r, "run --preserve-fds 1");
    let r0 = run_case(Via::Runc, &cfg, &b, &[], &fds, "pfd-r0-ref");
    let w0 = run_case(Via::Execguard, &cfg, &b, &[], &fds, "pfd-r0");
    assert_ne!(r0.code(), 0, "without --preserve-fds cat fails: {r0:?}");
    assert_same_run(&w0, &r0, "run without --preserve-fds");
}

#[test]
fn create_stdin_is_the_containers_stdin_as_with_runc() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let input = t.path().join("stdin");
    let mut bytes = b"line one\n".to_vec();
    bytes.extend((0u8..=255).collect::<Vec<_>>());
    bytes.extend(std::iter::repeat_n(b'x', 200 * 1024));
    fs::write(&input, &bytes).expect("stdin file");
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "cat"]);
    b.save();
    let mut got = Vec::new();
    for via in [Via::Runc, Via::Execguard] {
        let id = unique_id("stdin");
        let _g = ContainerGuard {
            root: None,
            id: id.clone(),
        };
        let mut c = via.cmd(&cfg);
        c.arg("create").arg("-b").arg(b.path()).arg(&id);
        got.push(create_start(
            c,
            &id,
            Some(&input),
            &format!("{via:?} create"),
        ));
    }
    assert_eq!(
        got[0].stdout, bytes,
        "runc: the container cats its stdin: {:?}",
        got[0].create
    );
    assert_same_created(&got[1], &got[0], "create with stdin");
}

// =============================================================================================
// 3. Environment and inherited descriptors of an engine

/// The environment podman/conmon, containerd and systemd hand to a runtime.
fn engine_env(out: &Path, exit: &str) -> Vec<(OsString, OsString)> {
    let kv = |k: &str, v: &[u8]| (OsString::from(k), OsString::from_vec(v.to_vec()));
    vec![
        kv("PATH", b"/usr/sbin:/usr/bin:/sbin:/bin"),
        kv("STANDIN_OUT", out.as_os_str().as_bytes()),
        kv("STANDIN_EXIT", exit.as_bytes()),
        kv("_OCI_SYNCPIPE", b"4"),
        kv("_OCI_STARTPIPE", b"5"),
        kv("NOTIFY_SOCKET", b"/run/egt-notify/notify.sock"),
        kv("LISTEN_FDS", b"1"),
        kv("LISTEN_PID", b"4242"),
        kv("LISTEN_FDNAMES", b"egt"),
        kv("GOMAXPROCS", b"2"),
        kv("TTRPC_ADDRESS", b"/run/containerd/containerd.sock.ttrpc"),
        kv("LD_LIBRARY_PATH", b""),
        kv("ODD", b"a\xffb=c\n d"),
    ]
}

#[test]
fn the_runtime_gets_the_engines_environment_and_descriptors_on_create_and_on_exec_verbs() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let Some(rt) = build_standin(t.path()) else {
        return;
    };
    let out = t.path().join("out");
    fs::create_dir(&out).expect("out");
    let cfg = warn_config(t.path());
    // fd 3: the socket-activation listener, fd 4: _OCI_SYNCPIPE (write end), fd 5:
    // _OCI_STARTPIPE (read end), as conmon and systemd leave them.
    let listener = UnixListener::bind(t.path().join("activation.sock")).expect("bind");
    let (sync_r, sync_w) = pipe();
    let (start_r, start_w) = pipe();
    let mut fds = Inherit::new();
    fds.add(listener.as_raw_fd(), 3)
        .add(sync_w.as_raw_fd(), 4)
        .add(start_r.as_raw_fd(), 5);
    let b = Bundle::busybox();
    b.save();
    let bundle = b.path().to_str().expect("utf-8 bundle path").to_string();
    let pidfile = format!("{}/init.pid", t.path().display());
    let logfile = format!("{}/log.json", t.path().display());
    let cases: Vec<(&str, bool, Vec<String>)> = vec![
        (
            "create (podman shape)",
            true,
            vec![
                "create".into(),
                "--bundle".into(),
                bundle.clone(),
                "--pid-file".into(),
                pidfile.clone(),
                "ctr-p".into(),
            ],
        ),
        (
            "create (containerd shape)",
            true,
            vec![
                "--root".into(),
                "/run/containerd/runc/k8s.io".into(),
                "--log".into(),
                logfile.clone(),
                "--log-format".into(),
                "json".into(),
                "create".into(),
                "--bundle".into(),
                bundle.clone(),
                "--pid-file".into(),
                pidfile.clone(),
                "ctr-c".into(),
            ],
        ),
        ("start", false, vec!["start".into(), "ctr-p".into()]),
        (
            "state",
            false,
            vec![
                "--root".into(),
                "/run/containerd/runc/k8s.io".into(),
                "state".into(),
                "ctr-c".into(),
            ],
        ),
        (
            "kill",
            false,
            vec!["kill".into(), "ctr-p".into(), "15".into()],
        ),
    ];
    let stdin = b"engine stdin \xff\n".to_vec();
    for (what, child_path, args) in cases {
        let mut d = Command::new(&rt);
        d.env_clear().envs(engine_env(&out, "42")).args(&args);
        fds.apply(&mut d);
        let dr = run_io(d, Some(stdin.clone()), "stand-in", || {});
        assert_eq!(dr.code(), 42, "{what}: {dr:?}");
        let r = one_record(&out, what);
        let mut c = eg();
        c.env_clear()
            .envs(engine_env(&out, "42"))
            .arg(format!("--execguard-runtime={}", rt.display()))
            .arg(&cfg)
            .args(&args);
        fds.apply(&mut c);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn execguard");
        let eg_pid = child.id() as i32;
        {
            let mut i = child.stdin.take().expect("stdin");
            i.write_all(&stdin).expect("write stdin");
        }
        let mut so = Vec::new();
        let mut se = String::new();
        let (mut o, mut e) = (
            child.stdout.take().expect("o"),
            child.stderr.take().expect("e"),
        );
        let h = std::thread::spawn(move || {
            let _ = e.read_to_string(&mut se);
            se
        });
        let _ = o.read_to_end(&mut so);
        let code = code_of(wait_limited(&mut child, what, || {}));
        let se = h.join().expect("stderr reader");
        assert_eq!(
            code, 42,
            "{what}: execguard exits with the runtime's status: {se}"
        );
        assert!(so.is_empty(), "{what}: stdout: {so:?}");
        assert_eq!(se, "", "{what}: nothing to say for a good bundle");
        let w = one_record(&out, what);
        if child_path {
            assert_eq!(
                (w.ppid, w.pid == eg_pid),
                (eg_pid, false),
                "{what}: create runs the runtime as execguard's child"
            );
        } else {
            assert_eq!(w.pid, eg_pid, "{what}: execguard execs the runtime");
        }
        assert_eq!(
            w.argv.first(),
            Some(&rt.as_os_str().as_bytes().to_vec()),
            "{what}: argv[0]"
        );
        assert_same_handover(&w, &r, what);
        for (fd, want) in [(3, "socket:"), (4, "pipe:"), (5, "pipe:")] {
            assert!(
                w.fds
                    .iter()
                    .any(|(n, tgt)| *n == fd && tgt.starts_with(want)),
                "{what}: fd {fd} ({want}) is open in the runtime: {:?}",
                w.fds
            );
        }
    }
    drop((sync_r, start_w));
}

#[test]
fn the_container_environment_has_no_marker_and_is_runcs() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "env"]);
    b.env(&["PATH=/bin", "TERM=xterm", "FOO=bar baz"]);
    let none = Inherit::new();
    let r = run_case(Via::Runc, &cfg, &b, &[], &none, "env-r-ref");
    assert!(
        String::from_utf8_lossy(&r.stdout).contains("FOO=bar baz"),
        "{r:?}"
    );
    let w = run_case(Via::Execguard, &cfg, &b, &[], &none, "env-r");
    assert_same_run(&w, &r, "run: env");
    let r = create_case(Via::Runc, &cfg, &b, &[], &none, "env-c-ref");
    let w = create_case(Via::Execguard, &cfg, &b, &[], &none, "env-c");
    assert_same_created(&w, &r, "create: env");
    for out in [&w.stdout, &r.stdout] {
        assert!(
            !String::from_utf8_lossy(out).contains("EXECGUARD"),
            "the container's environment comes from config.json: {}",
            String::from_utf8_lossy(out)
        );
    }
}

#[test]
fn socket_activation_fds_reach_the_container_as_with_runc() {
    // runc passes LISTEN_FDS descriptors to the container only when LISTEN_PID is its own pid
    // (go-systemd activation.Files): the engine sets it to the pid it execs.
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let file = t.path().join("fd3");
    fs::write(&file, b"activated\n").expect("fd3 file");
    let b = script_bundle(
        "/bin/busybox env | /bin/busybox grep ^LISTEN_ | /bin/busybox sort; /bin/busybox cat /proc/self/fd/3",
    );
    b.save();
    let f = fs::File::open(&file).expect("open");
    for verb in ["run", "create"] {
        let mut got = Vec::new();
        for via in [Via::Runc, Via::Execguard] {
            let id = unique_id(&format!("listen-{verb}"));
            let _g = ContainerGuard {
                root: None,
                id: id.clone(),
            };
            // sh sets LISTEN_PID to its own pid, then becomes the runtime (or execguard).
            let mut prog: Vec<String> = vec![match via {
                Via::Runc => RUNC.to_string(),
                Via::Execguard => execguard_bin(),
            }];
            if via == Via::Execguard {
                prog.push(RUNTIME_FLAG.into());
                prog.push(cfg.clone());
            }
            let mut c = Command::new("/bin/sh");
            for k in OWN_ENV {
                c.env_remove(k);
            }
            c.arg("-c")
                .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"")
                .arg("sh")
                .args(&prog)
                .arg(verb)
                .arg("-b")
                .arg(b.path())
                .arg(&id);
            let mut fds = Inherit::new();
            fds.add(f.as_raw_fd(), 3);
            fds.apply(&mut c);
            let out = if verb == "run" {
                run_io(c, None, "run", || force_delete(None, &id)).stdout
            } else {
                let cr = create_start(c, &id, None, "create");
                assert_eq!(cr.create, 0, "{via:?} create: {cr:?}");
                cr.stdout
            };
            got.push(String::from_utf8_lossy(&out).into_owned());
        }
        assert_eq!(
            got[0], "LISTEN_FDS=1\nLISTEN_PID=1\nactivated\n",
            "runc {verb}: the container gets the activation fd"
        );
        assert_eq!(
            got[1], got[0],
            "{verb} through execguard: the socket-activation fd must reach the container as with runc"
        );
    }
}

// =============================================================================================
// 4. The console socket

/// Receives one descriptor sent with SCM_RIGHTS on `s`.
fn recv_fd(s: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8) + 1];
    // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: valid socket and message buffers.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the length.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err(std::io::Error::other("no control message from the runtime"));
    }
    // SAFETY: cmsg points into cbuf.
    let (level, ty) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    if level != libc::SOL_SOCKET || ty != libc::SCM_RIGHTS {
        return Err(std::io::Error::other(
            "the control message is not SCM_RIGHTS",
        ));
    }
    // SAFETY: an SCM_RIGHTS message carries at least one int.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int) };
    // SAFETY: a fresh descriptor received for this process.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Everything readable on the pty master until the container side hangs up (EIO), 20 s at most.
fn read_pty(master: &OwnedFd) -> Result<Vec<u8>, String> {
    let start = Instant::now();
    let mut got = Vec::new();
    loop {
        if start.elapsed() > CALL_TIMEOUT {
            return Err(format!(
                "the pty never hung up; read so far: {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        let mut p = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 100) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: valid fd and buffer.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            got.extend_from_slice(&buf[..n as usize]);
        } else if n == 0 {
            return Ok(got);
        } else {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EIO) => return Ok(got),
                Some(libc::EINTR) | Some(libc::EAGAIN) => {}
                _ => return Err(format!("read pty: {e}")),
            }
        }
    }
}

/// A console socket at `path` that accepts one connection, takes the pty master and reads
/// what the container writes until it exits.
fn console_receiver(path: &Path) -> mpsc::Receiver<Result<Vec<u8>, String>> {
    let l = UnixListener::bind(path).expect("bind console socket");
    l.set_nonblocking(true).expect("nonblocking listener");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = (|| {
            let start = Instant::now();
            let s = loop {
                match l.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if start.elapsed() > CALL_TIMEOUT {
                            return Err("nobody connected to the console socket".to_string());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(format!("accept: {e}")),
                }
            };
            s.set_nonblocking(false).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(CALL_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let master = recv_fd(&s).map_err(|e| format!("receive the pty master: {e}"))?;
            read_pty(&master)
        })();
        let _ = tx.send(r);
    });
    rx
}

/// What a terminal container did: create's status and stderr, and the pty bytes.
#[derive(Debug)]
struct TtyRun {
    create: i32,
    create_stderr: String,
    pty: Vec<u8>,
}

/// `create --console-socket S [--pid-file P] -b B ID` through `via`, `runc start`, and the
/// bytes the container wrote on its terminal.
fn tty_case(via: Via, cfg: &str, b: &Bundle, pid_file: bool, tag: &str) -> TtyRun {
    b.save();
    let t = tmp();
    let sock = t.path().join("console.sock");
    let rx = console_receiver(&sock);
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let err = t.path().join("err");
    let mut c = via.cmd(cfg);
    c.arg("create").arg("--console-socket").arg(&sock);
    if pid_file {
        c.arg("--pid-file").arg(t.path().join("init.pid"));
    }
    c.arg("-b")
        .arg(b.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).expect("stderr file"));
    let mut child = c.spawn().expect("spawn create");
    let create = code_of(wait_limited(&mut child, "create", || {
        force_delete(None, &id)
    }));
    let create_stderr = fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(
        create, 0,
        "{via:?} create with a console socket: {create_stderr}"
    );
    let mut s = runc();
    s.args(["start", &id]);
    let st = run_io(s, None, "runc start", || {});
    assert_eq!(st.code(), 0, "runc start: {st:?}");
    wait_status(&id, "stopped");
    let pty = rx
        .recv_timeout(CALL_TIMEOUT + Duration::from_secs(5))
        .expect("console receiver finished")
        .unwrap_or_else(|e| panic!("{via:?}: {e}"));
    TtyRun {
        create,
        create_stderr,
        pty,
    }
}

fn terminal(b: &mut Bundle) {
    b.config["process"]["terminal"] = json!(true);
}

#[test]
fn console_socket_gets_the_pty_and_the_container_writes_the_same_bytes() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "tty-ok"]);
    terminal(&mut b);
    for pid_file in [false, true] {
        let r = tty_case(Via::Runc, &cfg, &b, pid_file, "tty-ref");
        assert!(
            String::from_utf8_lossy(&r.pty).contains("tty-ok"),
            "runc: the container writes through its pty: {r:?}"
        );
        let w = tty_case(Via::Execguard, &cfg, &b, pid_file, "tty");
        assert_eq!(
            w.pty,
            r.pty,
            "pid file {pid_file}: the pty bytes through execguard must be runc's: {:?} vs {:?}",
            String::from_utf8_lossy(&w.pty),
            String::from_utf8_lossy(&r.pty)
        );
        assert_eq!(
            (w.create, w.create_stderr.as_str()),
            (r.create, r.create_stderr.as_str()),
            "create's own status and stderr"
        );
    }
}

/// Shared hold on the binfmt test lock: no test registers an aarch64 handler meanwhile.
fn binfmt_shared() -> fs::File {
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
    f
}

#[test]
fn console_socket_arm64_warn_block_arrives_through_the_pty_before_runcs_error() {
    if !runtime_ready() {
        return;
    }
    let Some(bb) = foreign_busybox("arm64") else {
        return;
    };
    let _lock = binfmt_shared();
    let t = tmp();
    let cfg = warn_config(t.path());
    let mut b = Bundle::empty();
    b.copy_in(bb, "/bin/busybox", Some(0o755));
    b.args(&["/bin/busybox", "echo", "hi"]);
    terminal(&mut b);
    let r = tty_case(Via::Runc, &cfg, &b, true, "tty-arm-ref");
    let rtext = String::from_utf8_lossy(&r.pty).into_owned();
    if !require(
        rtext.contains("exec format error"),
        &format!("an arm64 busybox does not fail with ENOEXEC under runc here: {rtext:?}"),
    ) {
        return;
    }
    for pid_file in [true, false] {
        let w = tty_case(Via::Execguard, &cfg, &b, pid_file, "tty-arm");
        let wtext = String::from_utf8_lossy(&w.pty).into_owned();
        let block = wtext.strip_suffix(rtext.as_str()).unwrap_or_else(|| {
            panic!(
                "pid file {pid_file}: the pty must end with runc's own bytes {rtext:?}, got {wtext:?}"
            )
        });
        assert!(
            block.contains("[arch-mismatch]"),
            "pid file {pid_file}: the arch-mismatch block comes through the pty first: {wtext:?}"
        );
        assert!(
            block
                .split_inclusive('\n')
                .all(|l| l.starts_with("execguard: ")),
            "pid file {pid_file}: only execguard lines before runc's error: {block:?}"
        );
        // The pty's own line discipline decides what a "\n" becomes (runc leaves ONLCR on:
        // its "...error\n" arrives as "...error\r\n"); execguard's lines must end the same.
        let eol = |l: &str| -> String {
            let body = l.trim_end_matches(['\r', '\n']);
            l[body.len()..].to_string()
        };
        let runc_eol = eol(&rtext);
        for l in block.split_inclusive('\n') {
            assert_eq!(
                eol(l),
                runc_eol,
                "pid file {pid_file}: an execguard line must end as runc's own line on the same terminal: {l:?} vs runc's {rtext:?}"
            );
        }
        assert_eq!(
            others(&w.create_stderr),
            r.create_stderr,
            "pid file {pid_file}: create's stderr (thrown away under a terminal) holds runc's alone"
        );
    }
}

// =============================================================================================
// 5. A failed create, and signals during create

#[test]
fn a_failed_create_exits_and_says_what_runc_says_then_execguard() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let mut no_root = Bundle::busybox();
    no_root.config["root"]["path"] = json!("missing-rootfs");
    let mut no_prog = Bundle::busybox();
    no_prog.args(&["/nope"]);
    for (what, b, block) in [
        ("missing rootfs", &no_root, None),
        ("missing program", &no_prog, Some("[not-found]")),
    ] {
        b.save();
        let mut got = Vec::new();
        for via in [Via::Runc, Via::Execguard] {
            let id = unique_id("fail");
            let _g = ContainerGuard {
                root: None,
                id: id.clone(),
            };
            let log = t.path().join(format!("{id}.log.json"));
            let mut c = via.cmd(&cfg);
            c.arg("--log")
                .arg(&log)
                .arg("--log-format")
                .arg("json")
                .arg("create")
                .arg("-b")
                .arg(b.path())
                .arg(&id);
            let cr = create_start(c, &id, None, what);
            let logtext = fs::read_to_string(&log).unwrap_or_default();
            got.push((cr, norm_json_log(&logtext, &id), id.clone()));
        }
        let (r, rlog, rid) = &got[0];
        let (w, wlog, wid) = &got[1];
        assert_ne!(r.create, 0, "{what}: runc create fails: {r:?}");
        assert_eq!(
            w.create, r.create,
            "{what}: execguard exits with runc's status: {w:?}"
        );
        assert!(
            r.stderr.contains("runc create failed: "),
            "{what}: runc also says it on stderr: {r:?}"
        );
        assert_eq!(
            norm(&others(&w.stderr), wid),
            norm(&r.stderr, rid),
            "{what}: runc's stderr unchanged"
        );
        let runc_lines: Vec<&Value> = wlog
            .iter()
            .filter(|v| !v["msg"].as_str().unwrap_or("").starts_with("execguard: "))
            .collect();
        assert_eq!(
            runc_lines,
            rlog.iter().collect::<Vec<_>>(),
            "{what}: runc's own log lines unchanged and first"
        );
        assert_eq!(
            wlog.get(..rlog.len()),
            Some(rlog.as_slice()),
            "{what}: execguard's log lines come after runc's"
        );
        match block {
            None => assert!(
                execguard_lines(&w.stderr).is_empty() && wlog.len() == rlog.len(),
                "{what}: nothing to add: {w:?} {wlog:?}"
            ),
            Some(code) => {
                let theirs = rlog
                    .iter()
                    .rev()
                    .find(|v| v["level"] == "error")
                    .and_then(|v| v["msg"].as_str())
                    .expect("runc's error line");
                assert!(
                    w.stderr.contains(code),
                    "{what}: execguard's block on stderr: {w:?}"
                );
                assert!(
                    norm(&w.stderr, wid).starts_with(&norm(&r.stderr, rid)),
                    "{what}: runc's own error first, execguard's block after it: {:?}",
                    w.stderr
                );
                let last = wlog.last().expect("log lines");
                let msg = last["msg"].as_str().unwrap_or("");
                assert!(
                    last["level"] == "error"
                        && msg.starts_with("execguard: ")
                        && msg.contains(code)
                        && msg.ends_with(&format!("; runc said: {theirs}")),
                    "{what}: the last error line is execguard's, carrying runc's: {last}"
                );
            }
        }
    }
}

/// runc's JSON log lines with the time and the container id made comparable.
fn norm_json_log(text: &str, id: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}"));
            v["time"] = json!("T");
            if let Some(m) = v["msg"].as_str() {
                v["msg"] = json!(m.replace(id, "<id>"));
            }
            v
        })
        .collect()
}

/// A shell stand-in runtime that records `pid ppid`, then waits, exiting 42/43/44/45 on
/// TERM/INT/HUP/USR1.
fn sleepy_standin(dir: &Path) -> PathBuf {
    let p = dir.join("sleepy-rt");
    fs::write(
        &p,
        "#!/bin/sh\n\
         trap 'exit 42' TERM\n\
         trap 'exit 43' INT\n\
         trap 'exit 44' HUP\n\
         trap 'exit 45' USR1\n\
         echo \"$$ $PPID\" > \"$STANDIN_OUT/ids.tmp\"\n\
         mv \"$STANDIN_OUT/ids.tmp\" \"$STANDIN_OUT/ids\"\n\
         while :; do sleep 0.05; done\n",
    )
    .expect("write sleepy stand-in");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .map(|(_, r)| r.trim_start())
        .unwrap_or("");
    !(state.starts_with('Z') || state.starts_with('X'))
}

/// Kills the stand-in if a failing test left it behind.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 && alive(self.0) {
            // SAFETY: plain kill of a process this test started.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// Starts `execguard create` of a good bundle with the sleepy stand-in as the runtime; waits
/// until the stand-in runs and returns execguard and the stand-in's pid.
fn create_with_sleepy(t: &Path, rt: &Path, b: &Bundle, tag: &str) -> (Child, i32) {
    let out = t.join(tag);
    fs::create_dir(&out).expect("out");
    let mut c = eg();
    c.env("STANDIN_OUT", &out)
        .arg(format!("--execguard-runtime={}", rt.display()))
        .arg(warn_config(t))
        .arg("create")
        .arg("-b")
        .arg(b.path())
        .arg(unique_id(tag))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn execguard");
    let t0 = Instant::now();
    let ids = loop {
        if let Ok(s) = fs::read_to_string(out.join("ids")) {
            break s;
        }
        if t0.elapsed() > CALL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tag}: the stand-in never started");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut it = ids
        .split_whitespace()
        .map(|x| x.parse::<i32>().expect("pid"));
    let (pid, ppid) = (it.next().expect("pid"), it.next().expect("ppid"));
    assert_eq!(
        ppid,
        child.id() as i32,
        "{tag}: create runs the runtime as execguard's child"
    );
    (child, pid)
}

#[test]
fn signals_sent_to_execguard_during_create_reach_the_runtime() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let rt = sleepy_standin(t.path());
    let b = Bundle::busybox();
    b.save();
    for (sig, name, want) in [
        (libc::SIGTERM, "term", 42),
        (libc::SIGINT, "int", 43),
        (libc::SIGHUP, "hup", 44),
        (libc::SIGUSR1, "usr1", 45),
    ] {
        let (mut child, pid) = create_with_sleepy(t.path(), &rt, &b, &format!("sig-{name}"));
        let _k = KillOnDrop(pid);
        // SAFETY: signal to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let st = wait_limited(&mut child, "execguard create", || {});
        assert_eq!(
            code_of(st),
            want,
            "SIG{} to execguard: forwarded, execguard exits with the runtime's status",
            name.to_uppercase()
        );
        assert!(!alive(pid), "the runtime is gone after execguard exits");
    }
}

#[test]
fn sigkill_of_execguard_during_create_kills_the_runtime() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let rt = sleepy_standin(t.path());
    let b = Bundle::busybox();
    b.save();
    let (mut child, pid) = create_with_sleepy(t.path(), &rt, &b, "sig-kill");
    let _k = KillOnDrop(pid);
    assert!(alive(pid), "the stand-in runs");
    child.kill().expect("SIGKILL execguard");
    let st = child.wait().expect("wait");
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
    let t0 = Instant::now();
    while alive(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the runtime (pid {pid}) outlived execguard's SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// =============================================================================================
// 6. run -d, pause, resume, kill, delete: the state runc leaves

/// `runc list --format json`: the status of `id`, "" when it is not listed.
fn listed(id: &str) -> String {
    // runc list stats every container folder it read: one another test deletes meanwhile
    // makes it fail with `stat /run/runc/<other>: no such file or directory`; ask again.
    let mut tries = 0;
    let l = loop {
        let mut c = runc();
        c.args(["list", "--format", "json"]);
        let l = run_io(c, None, "runc list", || {});
        tries += 1;
        if l.code() == 0 || tries >= 50 || !l.stderr.contains("no such file or directory") {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(l.code(), 0, "{l:?}");
    let v: Value = serde_json::from_slice(&l.stdout).unwrap_or(Value::Null);
    v.as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id))
        .and_then(|c| c["status"].as_str().map(String::from))
        .unwrap_or_default()
}

/// `runc state` without what differs between two containers (id, pid, creation time).
fn state_shape(id: &str) -> Value {
    let mut c = runc();
    c.args(["state", id]);
    let s = run_io(c, None, "runc state", || {});
    if s.code() != 0 {
        return json!({"error": norm(&s.stderr, id), "code": s.code()});
    }
    let mut v: Value = serde_json::from_slice(&s.stdout).expect("state JSON");
    for k in ["id", "pid", "created"] {
        v[k] = json!(k);
    }
    v
}

#[test]
fn run_detach_pause_resume_kill_delete_leave_the_state_runc_leaves() {
    if !runtime_ready() {
        return;
    }
    let t = tmp();
    let cfg = warn_config(t.path());
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sleep", "60"]);
    b.save();
    let ids = [unique_id("life-ref"), unique_id("life")];
    let _g: Vec<ContainerGuard> = ids
        .iter()
        .map(|id| ContainerGuard {
            root: None,
            id: id.clone(),
        })
        .collect();
    let vias = [Via::Runc, Via::Execguard];
    let steps: &[(&[&str], &str)] = &[
        (&["run", "-d", "-b", "BUNDLE"], "running"),
        (&["pause"], "paused"),
        (&["resume"], "running"),
        (&["kill"], "running"),
        (&["kill", "KILL"], "stopped"),
        (&["delete"], ""),
        (&["delete"], ""),
    ];
    for (args, want) in steps {
        let mut res = Vec::new();
        for (via, id) in vias.iter().zip(&ids) {
            let mut c = via.cmd(&cfg);
            let mut argv: Vec<OsString> = args
                .iter()
                .map(|a| {
                    if *a == "BUNDLE" {
                        b.path().as_os_str().to_owned()
                    } else {
                        OsString::from(a)
                    }
                })
                .collect();
            // `kill ID [SIGNAL]`: the id goes before the signal.
            if args.first() == Some(&"kill") {
                argv.insert(1, id.into());
            } else {
                argv.push(id.into());
            }
            c.args(&argv);
            // A detached container keeps create's stdio: files, not pipes.
            let out = t.path().join(format!("{id}.out"));
            let err = t.path().join(format!("{id}.err"));
            c.stdin(Stdio::null())
                .stdout(fs::File::create(&out).expect("out"))
                .stderr(fs::File::create(&err).expect("err"));
            let mut child = c.spawn().expect("spawn");
            let code = code_of(wait_limited(
                &mut child,
                &format!("{via:?} {args:?}"),
                || force_delete(None, id),
            ));
            // SIGTERM to a busybox sleep as pid 1 does nothing; SIGKILL ends it.
            if *want == "stopped" {
                wait_status(id, "stopped");
            }
            res.push((
                code,
                fs::read(&out).unwrap_or_default(),
                norm(&fs::read_to_string(&err).unwrap_or_default(), id),
                state_shape(id),
                listed(id),
            ));
        }
        assert_eq!(
            res[0].4, *want,
            "runc {args:?}: runc list status: {:?}",
            res[0]
        );
        assert_eq!(
            res[1], res[0],
            "{args:?} through execguard: exit status, stdout, stderr, runc state, runc list must be runc's"
        );
    }
}
