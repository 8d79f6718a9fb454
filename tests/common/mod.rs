//! Shared harness for the integration tests that prove execguard's findings against the real
//! runtime: OCI bundles built in temporary folders, the real `runc` run with a timeout and
//! always deleted afterwards, execguard's `check` and wrapper modes with their JSON parsed, a
//! `require` that skips on a laptop and fails in CI, and a guard that serialises and restores
//! every change to the kernel-global binfmt_misc state.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The real runtime every test compares against.
pub const RUNC: &str = "/usr/bin/runc";
/// Static x86_64 busybox on the host.
pub const HOST_BUSYBOX: &str = "/bin/busybox";
/// Default folder of the foreign busybox fixtures (`<arch>/bin/busybox`).
pub const DEFAULT_FIXTURES: &str = "/var/cache/execguard-fixtures";
/// Static qemu user emulator for aarch64 on the host.
pub const QEMU_AARCH64: &str = "/usr/bin/qemu-aarch64-static";
/// Time limit for one runtime or execguard call; a hang is a failure, never a stuck suite.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// execguard's environment knobs; the commands of [`eg`] and [`runc`] start without them.
pub const OWN_ENV: &[&str] = &[
    "EXECGUARD_RUNTIME",
    "EXECGUARD_CONFIG",
    "EXECGUARD_DELEGATED",
    "EXECGUARD_FAULT",
    "EXECGUARD_DEBUG",
];

/// execguard, with none of its environment knobs inherited.
pub fn eg() -> Command {
    let mut c = Command::new(execguard_bin());
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c
}

/// The real runc, with the same environment as [`eg`].
pub fn runc() -> Command {
    let mut c = Command::new(RUNC);
    for k in OWN_ENV {
        c.env_remove(k);
    }
    c
}

/// Path of the execguard binary under test: the crate's own build, or the binary named by
/// `EXECGUARD_TEST_BIN` (to run the suite against an installed or release build).
pub fn execguard_bin() -> String {
    std::env::var("EXECGUARD_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_execguard").to_string())
}

/// True when the suite runs in CI (`CI=true`): there a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Returns `cond`. When it is false: in CI the test panics with `reason`; elsewhere a visible
/// `SKIP: <test>: <reason>` goes straight to the terminal (not to the captured output) and the
/// caller returns early.
pub fn require(cond: bool, reason: &str) -> bool {
    if cond {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if in_ci() {
        panic!("CI=true and a prerequisite is missing for {test}: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "SKIP: {test}: {reason}");
    false
}

/// Root, a runc at [`RUNC`] and the host busybox: what every runtime test needs.
pub fn runtime_ready() -> bool {
    require(
        nix::unistd::geteuid().is_root(),
        "tests need root to run runc",
    ) && require(
        Path::new(RUNC).exists(),
        "runc is not installed at /usr/bin/runc",
    ) && require(
        Path::new(HOST_BUSYBOX).exists(),
        "static busybox is not installed at /bin/busybox",
    )
}

/// Folder of the foreign fixtures (`EXECGUARD_FIXTURES` overrides the default).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("EXECGUARD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FIXTURES))
}

/// The foreign busybox for a Debian architecture name (arm64, armhf, ppc64el, s390x), or a skip.
pub fn foreign_busybox(arch: &str) -> Option<PathBuf> {
    let p = fixtures_dir().join(arch).join("bin/busybox");
    if require(p.is_file(), &format!("fixture {} is missing", p.display())) {
        Some(p)
    } else {
        None
    }
}

/// A container id no other test (thread or process) uses: `egt-<tag>-<pid>-<n>`.
pub fn unique_id(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!("egt-{tag}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Bundles

/// An OCI bundle in a temporary folder: `rootfs/` plus a `config.json` built in code from the
/// same content `runc spec` writes, with `terminal` off. Call the mutators, then any run helper
/// (they save the config first).
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config.json content; mutate freely before running.
    pub config: Value,
}

impl Bundle {
    /// An empty root file system (mode 0755) and a default config running `/bin/busybox true`.
    pub fn empty() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("egt-bundle-")
            .tempdir()
            .expect("create bundle folder");
        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).expect("create rootfs");
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755)).expect("chmod rootfs");
        let b = Bundle {
            dir,
            config: default_config(),
        };
        b.save();
        b
    }

    /// A root file system with the host's static busybox at `/bin/busybox` and `/bin/sh` linked
    /// to it.
    pub fn busybox() -> Bundle {
        let b = Bundle::empty();
        b.copy_in(HOST_BUSYBOX, "/bin/busybox", Some(0o755));
        b.symlink("/bin/sh", "busybox");
        b
    }

    /// The bundle folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root file system folder on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Host path of `inner` (a path as the container sees it). Refuses `..` so a test can never
    /// write outside the root by mistake.
    pub fn host(&self, inner: &str) -> PathBuf {
        let rel = Path::new(inner.trim_start_matches('/'));
        assert!(
            rel.components().all(|c| matches!(c, Component::Normal(_))),
            "bundle paths must be plain: {inner}"
        );
        self.rootfs().join(rel)
    }

    /// Creates the parent folders of `inner` (mode 0755).
    fn parents(&self, inner: &str) {
        if let Some(parent) = self.host(inner).parent() {
            fs::create_dir_all(parent).expect("create parent folders");
        }
    }

    /// Creates folder `inner` (and parents) and sets its mode.
    pub fn mkdir(&self, inner: &str, mode: u32) -> PathBuf {
        let p = self.host(inner);
        fs::create_dir_all(&p).expect("create folder");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod folder");
        p
    }

    /// Writes `bytes` to `inner` with `mode`.
    pub fn write(&self, inner: &str, bytes: &[u8], mode: u32) -> PathBuf {
        self.parents(inner);
        let p = self.host(inner);
        let _ = fs::remove_file(&p);
        fs::write(&p, bytes).expect("write file");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod file");
        p
    }

    /// Copies a host file (following links) to `inner`; `mode` overrides the copied mode.
    pub fn copy_in(&self, host_src: impl AsRef<Path>, inner: &str, mode: Option<u32>) -> PathBuf {
        self.parents(inner);
        let p = self.host(inner);
        let _ = fs::remove_file(&p);
        fs::copy(host_src.as_ref(), &p)
            .unwrap_or_else(|e| panic!("copy {} in: {e}", host_src.as_ref().display()));
        if let Some(m) = mode {
            fs::set_permissions(&p, fs::Permissions::from_mode(m)).expect("chmod copy");
        }
        p
    }

    /// Creates symlink `inner` with the literal `target`.
    pub fn symlink(&self, inner: &str, target: &str) -> PathBuf {
        self.parents(inner);
        let p = self.host(inner);
        let _ = fs::remove_file(&p);
        symlink(target, &p).expect("create symlink");
        p
    }

    /// `/bin/<name>` → `busybox` for each applet name.
    pub fn applets(&self, names: &[&str]) {
        for n in names {
            self.symlink(&format!("/bin/{n}"), "busybox");
        }
    }

    /// Copies the host file at absolute `host_abs` to the same path in the root, recreating
    /// every symlink met on the way (with its literal target) so the root has the host's link
    /// layout (merged /usr, absolute loader links). Writes only below canonical, link-free
    /// folders of the root, so a link made in the root is never followed on the host.
    pub fn mirror_host_path(&self, host_abs: &Path) {
        self.mirror_inner(host_abs, 0);
    }

    fn mirror_inner(&self, host_abs: &Path, depth: u32) {
        assert!(
            depth < 16,
            "too many links mirroring {}",
            host_abs.display()
        );
        let mut cur = PathBuf::from("/");
        let comps: Vec<_> = host_abs.components().collect();
        for (i, comp) in comps.iter().enumerate() {
            let Component::Normal(name) = comp else {
                continue;
            };
            let next = cur.join(name);
            let inner_host = self
                .rootfs()
                .join(next.strip_prefix("/").expect("absolute"));
            let meta = fs::symlink_metadata(&next)
                .unwrap_or_else(|e| panic!("stat {}: {e}", next.display()));
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&next).expect("readlink");
                if fs::symlink_metadata(&inner_host).is_err() {
                    symlink(&target, &inner_host).expect("mirror symlink");
                }
                let canon = fs::canonicalize(&next).expect("canonicalize");
                self.mirror_inner(&canon, depth + 1);
                cur = canon;
            } else if meta.is_dir() {
                if fs::symlink_metadata(&inner_host).is_err() {
                    fs::create_dir(&inner_host).expect("mirror folder");
                    fs::set_permissions(&inner_host, fs::Permissions::from_mode(0o755))
                        .expect("chmod mirrored folder");
                }
                cur = next;
            } else {
                assert_eq!(i + 1, comps.len(), "{} is not a folder", next.display());
                if fs::symlink_metadata(&inner_host).is_err() {
                    fs::copy(&next, &inner_host).expect("mirror file");
                }
                cur = next;
            }
        }
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Sets `process.env`.
    pub fn env(&mut self, env: &[&str]) -> &mut Self {
        self.config["process"]["env"] = json!(env);
        self
    }

    /// Sets `process.cwd`.
    pub fn cwd(&mut self, cwd: &str) -> &mut Self {
        self.config["process"]["cwd"] = json!(cwd);
        self
    }

    /// Sets `process.user`.
    pub fn user(&mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> &mut Self {
        let mut u = json!({"uid": uid, "gid": gid});
        if !additional_gids.is_empty() {
            u["additionalGids"] = json!(additional_gids);
        }
        self.config["process"]["user"] = u;
        self
    }

    /// Sets all five capability sets to `caps` (names like `CAP_KILL`).
    pub fn capabilities(&mut self, caps: &[&str]) -> &mut Self {
        let set = json!(caps);
        self.config["process"]["capabilities"] = json!({
            "bounding": set, "effective": set, "permitted": set, "inheritable": set, "ambient": set,
        });
        self
    }

    /// Appends a mount to the spec.
    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .push(mount);
        self
    }

    /// Read-only bind mount of host folder `src` at `dest`, with extra options.
    pub fn bind(&mut self, src: &Path, dest: &str, extra: &[&str]) -> &mut Self {
        let mut opts = vec!["rbind", "ro"];
        opts.extend_from_slice(extra);
        self.add_mount(json!({
            "destination": dest, "type": "bind", "source": src, "options": opts,
        }))
    }

    /// Appends an OCI hook (`prestart`, `createRuntime`, ...) run on the host by the runtime.
    pub fn add_hook(&mut self, stage: &str, path: &str, args: &[&str]) -> &mut Self {
        let hooks = self.config.as_object_mut().expect("config object");
        let hooks = hooks.entry("hooks").or_insert_with(|| json!({}));
        let list = hooks
            .as_object_mut()
            .expect("hooks object")
            .entry(stage)
            .or_insert_with(|| json!([]));
        list.as_array_mut()
            .expect("hook list")
            .push(json!({"path": path, "args": args}));
        self
    }

    /// `process.args` as strings.
    pub fn args_vec(&self) -> Vec<String> {
        self.config["process"]["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes config.json.
    pub fn save(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialise config");
        fs::write(self.dir.path().join("config.json"), text).expect("write config.json");
    }
}

/// The configuration `runc spec` writes (runc 1.1.5), with `terminal` false and a writable
/// root, running `/bin/busybox true`.
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/busybox", "true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "egtest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            ],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}

/// Writes a `security.capability` xattr (revision 2, effective bit set) granting `permitted`
/// (a capability bit mask) to `file`, exactly what `setcap cap_x+ep` writes.
pub fn set_file_caps(file: &Path, permitted: u64) -> std::io::Result<()> {
    const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&(VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE).to_le_bytes());
    v.extend_from_slice(&(permitted as u32).to_le_bytes()); // data[0].permitted
    v.extend_from_slice(&0u32.to_le_bytes()); // data[0].inheritable
    v.extend_from_slice(&((permitted >> 32) as u32).to_le_bytes()); // data[1].permitted
    v.extend_from_slice(&0u32.to_le_bytes()); // data[1].inheritable
    let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).expect("path");
    let name = c"security.capability";
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Creates a FIFO at `p` with `mode`.
pub fn mkfifo(p: &Path, mode: u32) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod fifo");
}

/// Paths (loader included) that `ldd` lists for a host binary.
pub fn ldd_paths(bin: &str) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    assert!(out.status.success(), "ldd {bin} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path
            && p.starts_with('/')
        {
            v.push(PathBuf::from(p));
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Processes

/// What one process did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Outcome {
    /// Exit code, or 128+signal for a signal death.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// Runs `cmd` (stdin from /dev/null, stdout/stderr captured) with a time limit. On timeout
/// `on_timeout` runs first (to kill containers the child started), then the child is killed and
/// the test fails.
pub fn run_limited(mut cmd: Command, what: &str, on_timeout: impl FnOnce()) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let pipes = Pipes::take(&mut child);
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > CALL_TIMEOUT {
            timed_out = true;
            on_timeout();
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (stdout, stderr) = pipes.collect();
    let o = Outcome {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !timed_out,
        "{what} did not finish within {CALL_TIMEOUT:?}: {o:?}"
    );
    o
}

/// A child's stdout and stderr read on two threads, so that neither pipe can fill and stall
/// it; [`Pipes::collect`] after the child has ended.
pub struct Pipes(mpsc::Receiver<(u8, Vec<u8>)>);

impl Pipes {
    /// Takes the child's piped stdout and stderr.
    pub fn take(child: &mut std::process::Child) -> Pipes {
        let (tx, rx) = mpsc::channel::<(u8, Vec<u8>)>();
        let streams: [(u8, Option<Box<dyn Read + Send>>); 2] = [
            (
                1,
                child
                    .stdout
                    .take()
                    .map(|o| Box::new(o) as Box<dyn Read + Send>),
            ),
            (
                2,
                child
                    .stderr
                    .take()
                    .map(|e| Box::new(e) as Box<dyn Read + Send>),
            ),
        ];
        for (tag, stream) in streams {
            let mut stream = stream.expect("stdout and stderr must be piped");
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = stream.read_to_end(&mut v);
                let _ = tx.send((tag, v));
            });
        }
        Pipes(rx)
    }

    /// (stdout, stderr); each waited for at most 5 s (a grandchild may hold a pipe open).
    pub fn collect(self) -> (Vec<u8>, Vec<u8>) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            match self.0.recv_timeout(Duration::from_secs(5)) {
                Ok((1, v)) => stdout = v,
                Ok((_, v)) => stderr = v,
                Err(_) => break,
            }
        }
        (stdout, stderr)
    }
}

/// Runs `cmd` with stdout and stderr sent to files (for `create`, whose stdio becomes the
/// container's and stays open after the runtime exits), with the same time limit.
pub fn run_to_files(mut cmd: Command, out: &Path, err: &Path, what: &str) -> ExitStatus {
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(out).expect("create stdout file"))
        .stderr(fs::File::create(err).expect("create stderr file"));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if start.elapsed() > CALL_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CALL_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Forces a container away (`runc [--root R] delete -f ID`), ignoring "does not exist".
pub fn force_delete(root: Option<&Path>, id: &str) {
    let mut c = Command::new(RUNC);
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    let _ = c
        .args(["delete", "-f", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Deletes its container when dropped, also when the test panics.
pub struct ContainerGuard {
    /// runc `--root`, if not the default.
    pub root: Option<PathBuf>,
    /// Container id.
    pub id: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        force_delete(self.root.as_deref(), &self.id);
    }
}

/// `runc run -b BUNDLE ID` on the real runtime, deleted afterwards.
pub fn runc_run(b: &Bundle, tag: &str) -> Outcome {
    b.save();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut c = Command::new(RUNC);
    c.arg("run").arg("-b").arg(b.path()).arg(&id);
    run_limited(c, &format!("runc run {id}"), || force_delete(None, &id))
}

/// `execguard --execguard-runtime=/usr/bin/runc [pre...] run -b BUNDLE ID`, deleted afterwards.
/// `pre` holds execguard and runc global flags.
pub fn execguard_run(b: &Bundle, tag: &str, pre: &[&str]) -> Outcome {
    b.save();
    let id = unique_id(tag);
    let _g = ContainerGuard {
        root: None,
        id: id.clone(),
    };
    let mut c = Command::new(execguard_bin());
    c.arg(format!("--execguard-runtime={RUNC}"))
        .args(pre)
        .arg("run")
        .arg("-b")
        .arg(b.path())
        .arg(&id);
    run_limited(c, &format!("execguard run {id}"), || {
        force_delete(None, &id)
    })
}

/// Runs the host runtime or execguard with arbitrary arguments (no container cleanup).
pub fn run_cmd(program: &str, args: &[&str]) -> Outcome {
    let mut c = Command::new(program);
    c.args(args);
    run_limited(c, &format!("{program} {args:?}"), || {})
}

// ---------------------------------------------------------------------------------------------
// execguard check

/// A parsed `execguard check --format json`.
#[derive(Debug)]
pub struct Check {
    /// The process.
    pub out: Outcome,
    /// The JSON document (Null when the exit status is 2).
    pub json: Value,
}

impl Check {
    /// The findings array.
    pub fn findings(&self) -> &[Value] {
        self.json["findings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The leading finding.
    pub fn leading(&self) -> &Value {
        self.findings()
            .first()
            .unwrap_or_else(|| panic!("no findings: {}", self.json))
    }

    /// Codes in order.
    pub fn codes(&self) -> Vec<&str> {
        self.findings()
            .iter()
            .filter_map(|f| f["code"].as_str())
            .collect()
    }

    /// The first finding with `code`.
    pub fn find(&self, code: &str) -> Option<&Value> {
        self.findings().iter().find(|f| f["code"] == code)
    }

    /// True when some finding has severity `error`.
    pub fn has_error(&self) -> bool {
        self.findings().iter().any(|f| f["severity"] == "error")
    }

    /// True when some finding has severity `warning`.
    pub fn has_warning(&self) -> bool {
        self.findings().iter().any(|f| f["severity"] == "warning")
    }
}

/// `execguard check --bundle DIR --format json`, with the contract's shape checked: one JSON
/// object, `schema_version` 1, a verdict matching the findings, every finding complete, and an
/// exit status of 1 exactly when a finding is an error.
pub fn execguard_check(b: &Bundle) -> Check {
    execguard_check_with(b, &[])
}

/// [`execguard_check`] with `extra` arguments after `--format json` (the hidden host flags,
/// `--user`, ...), under the same contract checks.
pub fn execguard_check_with(b: &Bundle, extra: &[&str]) -> Check {
    b.save();
    let mut c = Command::new(execguard_bin());
    c.arg("check")
        .arg("--bundle")
        .arg(b.path())
        .args(["--format", "json"])
        .args(extra);
    let out = run_limited(c, "execguard check", || {});
    let code = out.code();
    assert!(
        code == 0 || code == 1,
        "execguard check exit {code} (expected 0 or 1)\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let json: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "execguard check stdout is not one JSON object ({e}):\n{}\nstderr: {}",
            out.stdout, out.stderr
        )
    });
    assert_check_shape(&json, code, "execguard check");
    Check { out, json }
}

/// The JSON contract of `check --format json`: schema 1, program path and chain, every finding
/// complete, a verdict matching the findings, and exit status 1 exactly when a finding is an
/// error (`what` names the case in failures).
pub fn assert_check_shape(json: &Value, code: i32, what: &str) {
    assert_eq!(
        json["schema_version"], 1,
        "{what}: schema_version in {json}"
    );
    // program.path is null when args[0] resolves to nothing.
    assert!(
        (json["program"]["path"].is_string() || json["program"]["path"].is_null())
            && json["program"]["chain"].is_array(),
        "{what}: program.path / program.chain missing in {json}"
    );
    let findings = json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: findings is not an array in {json}"));
    for f in findings {
        assert!(f["code"].is_string(), "{what}: finding without code: {f}");
        assert!(
            matches!(f["severity"].as_str(), Some("error" | "warning" | "info")),
            "{what}: bad severity: {f}"
        );
        assert!(
            f["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: finding without message: {f}"
        );
        for key in ["hint", "errno", "expected_error", "path"] {
            assert!(
                f.get(key).is_some_and(|v| v.is_string() || v.is_null()),
                "{what}: finding field {key} must be a string or null: {f}"
            );
        }
        assert!(
            f.get("evidence")
                .is_some_and(|v| v.is_object() || v.is_null()),
            "{what}: finding field evidence must be an object or null: {f}"
        );
    }
    let has_error = findings.iter().any(|f| f["severity"] == "error");
    let has_warning = findings.iter().any(|f| f["severity"] == "warning");
    let verdict = json["verdict"].as_str().unwrap_or("<missing>");
    let want = if has_error {
        "fail"
    } else if has_warning {
        "warn"
    } else {
        "ok"
    };
    // "unknown" is allowed only when nothing is an error.
    assert!(
        verdict == want || (verdict == "unknown" && !has_error),
        "{what}: verdict {verdict} does not match the findings (expected {want}) in {json}"
    );
    assert_eq!(
        code,
        if has_error { 1 } else { 0 },
        "{what}: exit status must be 1 exactly when a finding is an error: {json}"
    );
}

/// runc's stderr with logrus' `\"` escapes undone, for comparing with execguard's predictions.
pub fn unescape_runc(stderr: &str) -> String {
    stderr.replace("\\\"", "\"")
}

/// Lines of `stderr` that execguard wrote.
pub fn execguard_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("execguard: "))
        .collect()
}

/// True for an RFC 3339 date-time (`2026-01-01T00:00:00Z`, optional fraction, `Z` or `±hh:mm`).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3)
                && b.get(i + 3) == Some(&b':')
                && digits(i + 4..i + 6)
                && i + 6 == b.len()
        }
        _ => false,
    }
}

/// Writes an execguard config file `{"mode": MODE}` into `dir` and returns its path.
pub fn mode_config(dir: &Path, mode: &str) -> PathBuf {
    let p = dir.join(format!("execguard-{mode}.json"));
    fs::write(&p, json!({"mode": mode}).to_string()).expect("write execguard config");
    p
}

// ---------------------------------------------------------------------------------------------
// binfmt_misc

/// binfmt_misc mount point.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// Lock every binfmt-changing test holds (threads and processes alike).
pub const BINFMT_LOCK: &str = "/run/execguard-binfmt-test.lock";
/// Global status a run changed, kept until restored (survives a killed run).
pub const BINFMT_STATUS_NOTE: &str = "/run/execguard-binfmt-test.status";
/// Prefix of every handler the tests register.
pub const HANDLER_PREFIX: &str = "execguard-test-";

/// qemu-user-static's aarch64 magic (binfmt-support `/usr/share/binfmts/qemu-aarch64`).
pub const AARCH64_MAGIC: &str =
    r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
/// qemu-user-static's aarch64 mask.
pub const AARCH64_MASK: &str =
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";

/// Exclusive ownership of the binfmt_misc state for one test: holds [`BINFMT_LOCK`], removed
/// stale `execguard-test-*` handlers at start, and on drop removes exactly the handlers it
/// registered and puts the global status back if it changed it.
pub struct BinfmtGuard {
    _lock: fs::File,
    registered: Vec<String>,
    original_status: String,
    status_changed: bool,
}

/// Takes the binfmt guard, or skips (fails in CI) when binfmt_misc is not usable.
pub fn binfmt_guard() -> Option<BinfmtGuard> {
    let reg = Path::new(BINFMT_DIR).join("register");
    if !require(
        reg.exists(),
        "binfmt_misc is not mounted at /proc/sys/fs/binfmt_misc",
    ) {
        return None;
    }
    Some(BinfmtGuard::acquire())
}

fn write_proc(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    // binfmt_misc needs the whole record in one write(2).
    let n = f.write(text.as_bytes())?;
    if n == text.len() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "short write to {}",
            path.display()
        )))
    }
}

impl BinfmtGuard {
    fn acquire() -> BinfmtGuard {
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_CLOEXEC)
            .open(BINFMT_LOCK)
            .expect("open binfmt test lock");
        loop {
            // SAFETY: flock on an fd this function owns.
            let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "flock: {e}");
        }
        // A killed earlier run may have left the global status changed or handlers behind.
        if let Ok(note) = fs::read_to_string(BINFMT_STATUS_NOTE) {
            let v = if note.trim() == "enabled" { "1" } else { "0" };
            write_proc(&Path::new(BINFMT_DIR).join("status"), v).expect("restore binfmt status");
            let _ = fs::remove_file(BINFMT_STATUS_NOTE);
        }
        for name in Self::entries() {
            if name.starts_with(HANDLER_PREFIX) {
                write_proc(&Path::new(BINFMT_DIR).join(&name), "-1")
                    .unwrap_or_else(|e| panic!("remove stale handler {name}: {e}"));
            }
        }
        let original_status = Self::global_status();
        BinfmtGuard {
            _lock: lock,
            registered: Vec::new(),
            original_status,
            status_changed: false,
        }
    }

    /// Names of all registered handlers.
    pub fn entries() -> Vec<String> {
        let mut v = Vec::new();
        if let Ok(rd) = fs::read_dir(BINFMT_DIR) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n != "register" && n != "status" {
                    v.push(n);
                }
            }
        }
        v.sort();
        v
    }

    /// `enabled` or `disabled`.
    pub fn global_status() -> String {
        fs::read_to_string(Path::new(BINFMT_DIR).join("status"))
            .expect("read binfmt_misc status")
            .trim()
            .to_string()
    }

    /// Registers `execguard-test-<tag>` (magic type, offset 0) and returns its name.
    pub fn register(
        &mut self,
        tag: &str,
        magic: &str,
        mask: &str,
        interpreter: &str,
        flags: &str,
    ) -> String {
        let name = format!("{HANDLER_PREFIX}{tag}");
        let rec = format!(":{name}:M:0:{magic}:{mask}:{interpreter}:{flags}");
        write_proc(&Path::new(BINFMT_DIR).join("register"), &rec)
            .unwrap_or_else(|e| panic!("register {rec}: {e}"));
        self.registered.push(name.clone());
        name
    }

    /// Registers `execguard-test-aarch64` with qemu's magic and mask.
    pub fn register_aarch64(&mut self, interpreter: &str, flags: &str) -> String {
        self.register("aarch64", AARCH64_MAGIC, AARCH64_MASK, interpreter, flags)
    }

    /// Disables one handler this guard registered.
    pub fn disable(&self, name: &str) {
        assert!(
            self.registered.iter().any(|n| n == name),
            "{name} is not ours"
        );
        write_proc(&Path::new(BINFMT_DIR).join(name), "0").expect("disable handler");
    }

    /// Turns binfmt_misc on or off globally (restored on drop and by the next run if killed).
    pub fn set_global(&mut self, enabled: bool) {
        if !self.status_changed {
            fs::write(BINFMT_STATUS_NOTE, &self.original_status).expect("write status note");
            self.status_changed = true;
        }
        write_proc(
            &Path::new(BINFMT_DIR).join("status"),
            if enabled { "1" } else { "0" },
        )
        .expect("set binfmt status");
    }

    /// Enabled handlers (any name) that would claim `file`, as the kernel's binfmt_misc
    /// `check_file` matches: magic under mask at offset, or the file name's extension.
    pub fn enabled_handlers_matching(&self, file: &Path) -> Vec<String> {
        if Self::global_status() != "enabled" {
            return Vec::new();
        }
        let mut head = Vec::new();
        if let Ok(f) = fs::File::open(file) {
            let _ = f.take(256).read_to_end(&mut head);
        }
        let fname = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut hits = Vec::new();
        for name in Self::entries() {
            let Ok(text) = fs::read_to_string(Path::new(BINFMT_DIR).join(&name)) else {
                continue;
            };
            if text.lines().next() != Some("enabled") {
                continue;
            }
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            if let Some(ext) = field("extension ") {
                let ext = ext.trim_start_matches('.');
                if fname
                    .as_deref()
                    .is_some_and(|n| n.ends_with(&format!(".{ext}")))
                {
                    hits.push(name);
                }
                continue;
            }
            let offset: usize = field("offset ").and_then(|o| o.parse().ok()).unwrap_or(0);
            let magic = field("magic ").map(|m| hex(&m)).unwrap_or_default();
            let mask = field("mask ").map(|m| hex(&m));
            let matches = !magic.is_empty()
                && magic.iter().enumerate().all(|(i, m)| {
                    let k = mask
                        .as_ref()
                        .and_then(|k| k.get(i).copied())
                        .unwrap_or(0xff);
                    head.get(offset + i).is_some_and(|b| (b ^ m) & k == 0)
                });
            if matches {
                hits.push(name);
            }
        }
        hits
    }

    /// `require`s that no enabled handler other than this guard's own would claim `file`.
    pub fn require_only_ours_for(&self, file: &Path) -> bool {
        let hits: Vec<String> = self
            .enabled_handlers_matching(file)
            .into_iter()
            .filter(|h| !self.registered.contains(h))
            .collect();
        require(
            hits.is_empty(),
            &format!(
                "binfmt_misc handlers {hits:?} (not this suite's) also claim {}",
                file.display()
            ),
        )
    }

    /// `require`s that no enabled handler would claim `file`.
    pub fn require_no_handler_for(&self, file: &Path) -> bool {
        let hits = self.enabled_handlers_matching(file);
        require(
            hits.is_empty(),
            &format!(
                "binfmt_misc handlers {hits:?} (not this suite's) would run {}",
                file.display()
            ),
        )
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| {
            s.get(2 * i..2 * i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

impl Drop for BinfmtGuard {
    fn drop(&mut self) {
        for name in &self.registered {
            let _ = write_proc(&Path::new(BINFMT_DIR).join(name), "-1");
        }
        if self.status_changed {
            let v = if self.original_status == "enabled" {
                "1"
            } else {
                "0"
            };
            let _ = write_proc(&Path::new(BINFMT_DIR).join("status"), v);
            let _ = fs::remove_file(BINFMT_STATUS_NOTE);
        }
    }
}

/// stderr without execguard's own lines, byte for byte otherwise.
pub fn others(stderr: &str) -> String {
    stderr
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("execguard: "))
        .collect()
}

/// runc's log lines carry a timestamp and the container id: make two runs comparable.
pub fn norm(s: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("time=\"") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        match rest.find('"') {
            Some(j) => {
                out.push('T');
                rest = &rest[j..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    if id.is_empty() {
        out
    } else {
        out.replace(id, "<id>")
    }
}

/// Compiles a small C program into `dir/name` with `cc` (skips, or fails in CI, without one).
pub fn compile_c(dir: &Path, name: &str, source: &str) -> Option<PathBuf> {
    let src = dir.join(format!("{name}.c"));
    fs::write(&src, source).expect("write C source");
    let exe = dir.join(name);
    let ok = Command::new("cc")
        .arg("-O0")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(ok, "cannot compile a C stand-in with cc").then_some(exe)
}
