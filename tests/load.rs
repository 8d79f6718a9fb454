//! Load: 100 containers created and started in parallel (a pool of 20 workers) through
//! `execguard create` + `execguard start`, with runc and with crun behind it, a mix of good and
//! arm64 bundles (with no aarch64 binfmt_misc handler, so the arm64 ones fail at exec), each
//! set compared container by container with the same set through the bare runtime: the same
//! exit codes, output and runtime errors (no failure the bare runtime does not also have);
//! the same descriptors in every created container's init (nothing leaked from execguard);
//! exactly one intact line per diagnosis in execguard's own JSON log; and execguard's peak
//! memory per call small and flat. Every container is deleted, also when the test fails.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// The real crun.
const CRUN: &str = "/usr/bin/crun";
/// util-linux unshare, for the crun create cgroup workaround (as in tests/exec.rs).
const UNSHARE: &str = "/usr/bin/unshare";
/// Containers per set.
const N: usize = 100;
/// Workers creating and starting them.
const POOL: usize = 20;
/// Every fourth container is the arm64 busybox.
const ARM_EVERY: usize = 4;
/// execguard's peak RSS per call on an optimised build, which starts up in under
/// [`OPTIMISED_IDLE_KIB`]; a debug build (more, and unoptimised, code pages) is held to its
/// own start-up footprint plus [`RSS_GROWTH_KIB`] instead.
const RSS_CAP_KIB: u64 = 8 * 1024;
/// Start-up footprint (`--execguard-version`) under which a binary counts as optimised.
const OPTIMISED_IDLE_KIB: u64 = 4 * 1024;
/// How much more than its own start-up footprint one call may use (the debug build touches
/// far more code pages than the optimised one on the check path).
const RSS_GROWTH_KIB: u64 = 6 * 1024;
/// How far apart the lightest and the heaviest of the 100 calls may be.
const RSS_SPREAD_KIB: u64 = 2 * 1024;

// =============================================================================================
// Runtimes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rt {
    Runc,
    Crun,
}

impl Rt {
    fn path(self) -> &'static str {
        match self {
            Rt::Runc => RUNC,
            Rt::Crun => CRUN,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Rt::Runc => "runc",
            Rt::Crun => "crun",
        }
    }
}

/// `program [pre...]`, crun's create behind the cgroup2 workaround.
fn command(rt: Rt, through_execguard: Option<&Path>, create: bool) -> Command {
    let program: Vec<String> = match through_execguard {
        Some(cfg) => vec![
            execguard_bin(),
            format!("--execguard-runtime={}", rt.path()),
            format!("--execguard-config={}", cfg.display()),
        ],
        None => vec![rt.path().to_string()],
    };
    let mut c = if rt == Rt::Crun && create {
        let mut c = Command::new(UNSHARE);
        c.args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
            "sh",
        ]);
        c.args(&program);
        c
    } else {
        let mut c = Command::new(&program[0]);
        c.args(&program[1..]);
        c
    };
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c
}

/// Deletes a container with its runtime when dropped, also when the test panics.
struct Delete {
    rt: Rt,
    id: String,
}

impl Drop for Delete {
    fn drop(&mut self) {
        let _ = Command::new(self.rt.path())
            .args(["delete", "-f", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `cmd` (stdin /dev/null, stdout and stderr to files) with the suite's time limit and
/// returns its exit code and pid.
fn run_files(mut cmd: Command, out: &Path, err: &Path, what: &str) -> (i32, u32) {
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(out).expect("stdout file"))
        .stderr(fs::File::create(err).expect("stderr file"));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pid = child.id();
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return (s.code().unwrap_or(-1), pid);
        }
        if start.elapsed() > CALL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CALL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// =============================================================================================
// Peak memory of execguard itself: taskstats exit records

/// Listens to the kernel's per-task exit statistics (genetlink TASKSTATS, every CPU) and keeps
/// each exited pid's command name and `hiwater_rss` — the peak RSS of that process's own
/// memory, which wait4's `ru_maxrss` cannot give here: it also counts the reaped children
/// (the runtime execguard runs on `create`) and the test binary the child was forked from.
struct ExitStats {
    seen: Arc<Mutex<HashMap<u32, (String, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn nl_attr(t: u16, data: &[u8]) -> Vec<u8> {
    let len = 4 + data.len();
    let mut v = Vec::with_capacity(len + 3);
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&t.to_ne_bytes());
    v.extend_from_slice(data);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn nl_msg(family: u16, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&(len as u32).to_ne_bytes());
    v.extend_from_slice(&family.to_ne_bytes());
    v.extend_from_slice(&1u16.to_ne_bytes()); // NLM_F_REQUEST
    v.extend_from_slice(&1u32.to_ne_bytes()); // seq
    v.extend_from_slice(&0u32.to_ne_bytes()); // pid
    v.extend_from_slice(&[cmd, 1, 0, 0]); // genlmsghdr
    v.extend_from_slice(attrs);
    v
}

/// The attributes `(type, payload)` of one attribute area.
fn nl_attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let t = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((t, &b[4..len]));
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or_default();
    }
    out
}

/// The netlink messages of one datagram: `(type, payload after the genetlink header)`.
fn nl_messages(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 20 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let t = u16::from_ne_bytes([b[4], b[5]]);
        if len < 20 || len > b.len() {
            break;
        }
        out.push((t, &b[20..len]));
        let next = (len + 3) & !3;
        b = b.get(next..).unwrap_or_default();
    }
    out
}

impl ExitStats {
    /// Registers for exit records on every online CPU, or `None` when the kernel has no
    /// taskstats (the caller `require`s it).
    fn start() -> Option<ExitStats> {
        // SAFETY: plain socket(2); the fd is owned right below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just returned by socket(2).
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let size: libc::c_int = 32 << 20;
        // SAFETY: valid option value of the given size; a big buffer so a burst of exits of
        // the whole machine is not dropped.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let send = |m: &[u8]| {
            // SAFETY: sends a buffer of the given length on our socket (to the kernel).
            unsafe { libc::send(sock.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) }
        };
        let mut buf = vec![0u8; 1 << 20];
        let recv = |buf: &mut [u8]| -> usize {
            // SAFETY: receives into a buffer of the given length.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            usize::try_from(n).unwrap_or(0)
        };
        // CTRL_CMD_GETFAMILY (3) on GENL_ID_CTRL (0x10), CTRL_ATTR_FAMILY_NAME (2).
        if send(&nl_msg(0x10, 3, &nl_attr(2, b"TASKSTATS\0"))) < 0 {
            return None;
        }
        let n = recv(&mut buf);
        let family = nl_messages(&buf[..n])
            .into_iter()
            .filter(|(t, _)| *t == 0x10)
            .flat_map(|(_, p)| nl_attrs(p))
            .find(|(t, _)| *t == 1) // CTRL_ATTR_FAMILY_ID
            .and_then(|(_, v)| v.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]])))?;
        let cpus = fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
        let mut mask = cpus.trim().as_bytes().to_vec();
        mask.push(0);
        // TASKSTATS_CMD_GET (1), TASKSTATS_CMD_ATTR_REGISTER_CPUMASK (3).
        if send(&nl_msg(family, 1, &nl_attr(3, &mask))) < 0 {
            return None;
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: valid option value of the given size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: receives into a buffer of the given length.
                    let n = unsafe {
                        libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    let Ok(n) = usize::try_from(n) else {
                        continue;
                    };
                    for (t, payload) in nl_messages(&buf[..n]) {
                        if t != family {
                            continue;
                        }
                        // TASKSTATS_TYPE_AGGR_PID (4): TASKSTATS_TYPE_PID (1), _STATS (3).
                        for (at, nested) in nl_attrs(payload) {
                            if at != 4 {
                                continue;
                            }
                            let mut pid = None;
                            let mut rec = None;
                            for (it, v) in nl_attrs(nested) {
                                if it == 1 && v.len() >= 4 {
                                    pid = Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]]));
                                }
                                // struct taskstats: ac_comm at 80 (32 bytes), hiwater_rss
                                // (KiB) at 200 (include/uapi/linux/taskstats.h).
                                if it == 3 && v.len() >= 208 {
                                    let comm = String::from_utf8_lossy(&v[80..112])
                                        .trim_end_matches('\0')
                                        .to_string();
                                    let mut hw = [0u8; 8];
                                    hw.copy_from_slice(&v[200..208]);
                                    rec = Some((comm, u64::from_ne_bytes(hw)));
                                }
                            }
                            if let (Some(p), Some(r)) = (pid, rec)
                                && let Ok(mut m) = seen.lock()
                            {
                                m.insert(p, r);
                            }
                        }
                    }
                }
            })
        };
        Some(ExitStats {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// The exit record of `pid` (waits up to 2 s for it to arrive).
    fn get(&self, pid: u32) -> Option<(String, u64)> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.seen.lock().ok().and_then(|m| m.get(&pid).cloned()) {
                return Some(r);
            }
            if start.elapsed() > Duration::from_secs(2) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ExitStats {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// =============================================================================================
// One set of 100 containers

/// The bundles every set runs: a good busybox one (`sh -c 'echo good-I; ls /proc/self/fd'`:
/// any descriptor leaked into the container shows in its output) or the arm64 busybox.
struct Bundles {
    list: Vec<Bundle>,
    _src: tempfile::TempDir,
}

fn is_arm(i: usize) -> bool {
    i % ARM_EVERY == ARM_EVERY - 1
}

impl Bundles {
    fn new(arm: &Path) -> Bundles {
        // One copy of each binary, hard-linked into every root (same file system as /tmp).
        let src = tempfile::Builder::new()
            .prefix("egt-load-src-")
            .tempdir()
            .expect("source folder");
        let (x86, a64) = (src.path().join("busybox"), src.path().join("busybox-arm64"));
        fs::copy(HOST_BUSYBOX, &x86).expect("copy busybox");
        fs::copy(arm, &a64).expect("copy arm64 busybox");
        let list = (0..N)
            .map(|i| {
                let mut b = Bundle::empty();
                fs::create_dir_all(b.host("/bin")).expect("bin");
                let from = if is_arm(i) { &a64 } else { &x86 };
                if fs::hard_link(from, b.host("/bin/busybox")).is_err() {
                    fs::copy(from, b.host("/bin/busybox")).expect("copy busybox in");
                }
                b.symlink("/bin/sh", "busybox");
                let script = format!("echo good-{i}; ls /proc/self/fd");
                b.args(&["/bin/busybox", "sh", "-c", &script]);
                b.save();
                b
            })
            .collect();
        Bundles { list, _src: src }
    }
}

/// What one container did.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Did {
    create: i32,
    start: i32,
    stdout: String,
    /// The container's stderr without execguard's lines, the id replaced.
    stderr: String,
    /// execguard's lines on the container's stderr.
    eg_lines: Vec<String>,
    /// `/proc/<init>/fd` of the created container: fd number -> target (normalised).
    fds: BTreeMap<String, String>,
}

/// One set's results and what it cost.
struct Set {
    outcomes: Vec<Did>,
    ids: Vec<String>,
    create_pids: Vec<u32>,
    took: Duration,
    own_log: Vec<u8>,
}

/// Normalises a descriptor's target: pipe and socket inode numbers, the container id and the
/// set's folder (the container's stdout and stderr files live there).
fn norm_fd(target: &str, id: &str, dir: &Path, i: usize) -> String {
    let t = target
        .replace(id, "<id>")
        .replace(&format!("{}/{i}.", dir.display()), "<dir>/<i>.");
    for kind in ["pipe:[", "socket:["] {
        if t.starts_with(kind) {
            return kind.trim_end_matches('[').to_string();
        }
    }
    t
}

/// `/proc/<pid>/fd` as fd number -> normalised target.
fn fd_list(pid: i32, norm: &dyn Fn(&str) -> String) -> BTreeMap<String, String> {
    let mut fds = BTreeMap::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            let target = fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            fds.insert(e.file_name().to_string_lossy().into_owned(), norm(&target));
        }
    }
    fds
}

/// The descriptors of a created init once they stop changing: crun's init still holds its
/// end of the sync socket for a moment after `crun create` returns (with or without
/// execguard), so one read would race with it.
fn settled_fds(pid: i32, norm: impl Fn(&str) -> String) -> BTreeMap<String, String> {
    let start = Instant::now();
    let mut prev = fd_list(pid, &norm);
    let mut same = 0;
    while same < 4 && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(25));
        let cur = fd_list(pid, &norm);
        if cur == prev {
            same += 1;
        } else {
            same = 0;
            prev = cur;
        }
    }
    prev
}

/// Waits until the container's init is gone or a zombie.
fn wait_stopped(pid: i32, what: &str) {
    let start = Instant::now();
    loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("");
        if stat.is_empty() || state == "Z" || state == "X" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: pid {pid} still running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Creates, starts and awaits every bundle through `rt` (directly, or through execguard with
/// config `cfg`), 20 at a time, each container deleted afterwards.
fn run_set(rt: Rt, cfg: Option<&Path>, bundles: &Bundles, tag: &str) -> Set {
    let dir = tempfile::Builder::new()
        .prefix(&format!("egt-load-{tag}-"))
        .tempdir()
        .expect("set folder");
    let ids: Vec<String> = (0..N)
        .map(|i| unique_id(&format!("load-{tag}-{i}")))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(Did, u32)>>> = Mutex::new(vec![None; N]);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..POOL {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= N {
                        break;
                    }
                    let (id, b) = (&ids[i], &bundles.list[i]);
                    let _del = Delete { rt, id: id.clone() };
                    let (out, err, pidf) = (
                        dir.path().join(format!("{i}.out")),
                        dir.path().join(format!("{i}.err")),
                        dir.path().join(format!("{i}.pid")),
                    );
                    let mut c = command(rt, cfg, true);
                    c.arg("create")
                        .arg("--pid-file")
                        .arg(&pidf)
                        .arg("-b")
                        .arg(b.path())
                        .arg(id);
                    let (create, create_pid) = run_files(c, &out, &err, &format!("create {id}"));
                    let mut fds = BTreeMap::new();
                    let mut start_code = -1;
                    if create == 0 {
                        let pid: i32 = fs::read_to_string(&pidf)
                            .ok()
                            .and_then(|p| p.trim().parse().ok())
                            .unwrap_or_else(|| panic!("{id}: no pid file"));
                        fds = settled_fds(pid, |t| norm_fd(t, id, dir.path(), i));
                        let mut c = command(rt, cfg, false);
                        c.args(["start", id]);
                        let (o2, e2) = (
                            dir.path().join(format!("{i}.start.out")),
                            dir.path().join(format!("{i}.start.err")),
                        );
                        start_code = run_files(c, &o2, &e2, &format!("start {id}")).0;
                        let start_err = fs::read_to_string(&e2).unwrap_or_default();
                        assert!(
                            start_err.is_empty(),
                            "{id}: start wrote to stderr: {start_err}"
                        );
                        wait_stopped(pid, id);
                    }
                    let stderr = fs::read_to_string(&err).unwrap_or_default();
                    let outcome = Did {
                        create,
                        start: start_code,
                        stdout: fs::read_to_string(&out).unwrap_or_default(),
                        stderr: norm(&others(&stderr), id),
                        eg_lines: execguard_lines(&stderr)
                            .iter()
                            .map(|l| l.to_string())
                            .collect(),
                        fds,
                    };
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some((outcome, create_pid));
                    }
                }
            });
        }
    });
    let took = start.elapsed();
    let (outcomes, create_pids) = results
        .into_inner()
        .expect("results")
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|| panic!("{tag}: container {i} has no result")))
        .unzip();
    let own_log = cfg
        .map(|c| {
            let v: Value =
                serde_json::from_str(&fs::read_to_string(c).expect("config")).expect("config JSON");
            fs::read(v["log"]["path"].as_str().expect("log path")).unwrap_or_default()
        })
        .unwrap_or_default();
    Set {
        outcomes,
        ids,
        create_pids,
        took,
        own_log,
    }
}

/// execguard's config for one set: warn mode, its own log with every diagnosis.
fn own_config(dir: &Path, tag: &str) -> PathBuf {
    let cfg = dir.join(format!("{tag}.json"));
    let log = dir.join(format!("{tag}.jsonl"));
    fs::write(
        &cfg,
        json!({"log": {"path": log, "include_ok": true}}).to_string(),
    )
    .expect("write config");
    cfg
}

/// The whole comparison for one runtime.
fn load(rt: Rt) {
    let Some(arm) = foreign_busybox("arm64") else {
        return;
    };
    let Some(guard) = binfmt_guard() else {
        return;
    };
    if !guard.require_no_handler_for(&arm) {
        return;
    }
    let Some(stats) = ExitStats::start() else {
        require(false, "taskstats (genetlink TASKSTATS) is not available");
        return;
    };
    let t0 = Instant::now();
    let bundles = Bundles::new(&arm);
    let built = t0.elapsed();
    let cfgdir = tempfile::Builder::new()
        .prefix("egt-load-cfg-")
        .tempdir()
        .expect("config folder");
    let cfg = own_config(cfgdir.path(), rt.name());

    let bare = run_set(rt, None, &bundles, &format!("{}-bare", rt.name()));
    let wrapped = run_set(rt, Some(&cfg), &bundles, &format!("{}-eg", rt.name()));
    let left = listed(rt);
    let ours: Vec<&String> = bare
        .ids
        .iter()
        .chain(&wrapped.ids)
        .filter(|i| left.contains(*i))
        .collect();
    assert!(ours.is_empty(), "containers left behind: {ours:?}");

    // 1. No failure the bare runtime does not also have: container by container, the same.
    for i in 0..N {
        let (b, w) = (&bare.outcomes[i], &wrapped.outcomes[i]);
        let what = format!(
            "{} container {i} ({})",
            rt.name(),
            if is_arm(i) { "arm64" } else { "good" }
        );
        assert!(b.eg_lines.is_empty(), "{what}: {b:?}");
        assert_eq!(
            (w.create, w.start, &w.stdout, &w.stderr, &w.fds),
            (b.create, b.start, &b.stdout, &b.stderr, &b.fds),
            "{what}: through execguard it must do what the bare runtime does"
        );
        if is_arm(i) {
            assert!(
                w.eg_lines
                    .first()
                    .is_some_and(|l| l.contains("[arch-mismatch]")),
                "{what}: the arm64 container is explained: {w:?}"
            );
            assert!(w.stdout.is_empty(), "{what}: {w:?}");
        } else {
            assert!(
                w.eg_lines.is_empty(),
                "{what}: a good container gets no block: {w:?}"
            );
            assert!(
                w.stdout.starts_with(&format!("good-{i}\n")),
                "{what}: {w:?}"
            );
        }
        assert_eq!(b.create, 0, "{what}: {b:?}");
        assert_eq!(b.start, 0, "{what}: {b:?}");
    }
    // The descriptors a created init holds, and those the container's process sees.
    let fd_sets: BTreeSet<_> = wrapped.outcomes.iter().map(|o| &o.fds).collect();
    let good_fds: BTreeSet<_> = wrapped
        .outcomes
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_arm(*i))
        .map(|(_, o)| o.stdout.lines().skip(1).collect::<Vec<_>>())
        .collect();

    // 2. execguard's own log: one intact JSON line per diagnosis, none torn or interleaved.
    let text = String::from_utf8(wrapped.own_log.clone()).expect("own log is UTF-8");
    assert!(text.ends_with('\n'), "the own log ends with a whole line");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), N, "one line per diagnosis:\n{text}");
    let mut logged = BTreeSet::new();
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("torn own-log line ({e}): {l:?}"));
        let id = v["container_id"]
            .as_str()
            .expect("container_id")
            .to_string();
        let i = wrapped
            .ids
            .iter()
            .position(|x| *x == id)
            .unwrap_or_else(|| panic!("a line for an unknown container: {l}"));
        let want = if is_arm(i) { "fail" } else { "ok" };
        assert_eq!(v["verdict"], want, "{l}");
        assert_eq!(v["action"], "started", "{l}");
        assert!(logged.insert(id), "two lines for one container: {l}");
    }

    // 3. Memory: execguard's own peak per create, from the kernel's exit records.
    let mut rss = Vec::new();
    for (i, pid) in wrapped.create_pids.iter().enumerate() {
        let (comm, kib) = stats
            .get(*pid)
            .unwrap_or_else(|| panic!("no exit record for create {i} (pid {pid})"));
        assert_eq!(comm, "execguard", "create {i} (pid {pid}) exited as {comm}");
        rss.push(kib);
    }
    // The same binary's start-up footprint, measured the same way.
    let mut v = command(rt, Some(&cfg), false);
    v.arg("--execguard-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = v.spawn().expect("execguard --execguard-version");
    let vpid = child.id();
    let _ = child.wait();
    let (_, idle) = stats.get(vpid).expect("exit record of --execguard-version");
    let cap = if idle <= OPTIMISED_IDLE_KIB {
        RSS_CAP_KIB
    } else {
        idle + RSS_GROWTH_KIB
    };
    let (lo, hi) = (
        rss.iter().copied().min().unwrap_or(0),
        rss.iter().copied().max().unwrap_or(0),
    );
    eprintln!(
        "{}: bundles built in {built:?}; {N} bare in {:?}, {N} through execguard in {:?}; \
         execguard create RSS {lo}..{hi} KiB (idle {idle} KiB, cap {cap} KiB); \
         {} fd layouts, {} in-container fd lists",
        rt.name(),
        bare.took,
        wrapped.took,
        fd_sets.len(),
        good_fds.len()
    );
    assert!(
        hi <= cap,
        "execguard create peaked at {hi} KiB (cap {cap} KiB): {rss:?}"
    );
    assert!(
        hi - lo <= RSS_SPREAD_KIB,
        "memory is not flat over {N} calls: {lo}..{hi} KiB"
    );
    assert_eq!(
        good_fds.len(),
        1,
        "every good container sees the same fds: {good_fds:?}"
    );
    drop(guard);
}

/// Ids of `rt`'s containers still listed.
fn listed(rt: Rt) -> BTreeSet<String> {
    let out = Command::new(rt.path())
        .args(["list", "-q"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn a_hundred_parallel_runc_containers_through_execguard_do_what_bare_runc_does() {
    if !runtime_ready() {
        return;
    }
    load(Rt::Runc);
}

#[test]
fn a_hundred_parallel_crun_containers_through_execguard_do_what_bare_crun_does() {
    if !runtime_ready()
        || !require(
            Path::new(CRUN).exists(),
            "crun is not installed at /usr/bin/crun",
        )
        || !require(Path::new(UNSHARE).exists(), "unshare is not installed")
    {
        return;
    }
    load(Rt::Crun);
}
