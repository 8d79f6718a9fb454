//! `execguard check --rootfs DIR [--all | PATH…]`: the checks of one process, run over many
//! programs of one root file system, each as if it were `process.args[0]` of a container on it.
//!
//! This module owns what makes a sweep more than a loop over `check`:
//!
//! - the walk of the tree for `--all`: every regular file with an execute bit, found with
//!   `getdents64` on directories opened `O_RDONLY|O_DIRECTORY|O_NOFOLLOW` relative to their
//!   parent's fd (never a host path joined from image names), so a symbolic link is never
//!   followed and nothing outside the root is reached; other file systems mounted inside are
//!   not entered (like `find -xdev`); at most [`MAX_DEPTH`] levels, [`MAX_ENTRIES`] names and
//!   [`MAX_FILES`] programs; only `fstatat(AT_SYMLINK_NOFOLLOW)` touches a file, so a FIFO or
//!   device is never opened;
//! - the synthetic process each program is checked as: a default `PATH`, root (or `--user`,
//!   resolved in the root's own /etc/passwd and /etc/group through the resolver, as the engines
//!   resolve `USER`), no capability set and no mounts;
//! - the platform label check (`platform-label-mismatch`): every ELF the kernel would load on
//!   the way to the process, compared with the label an image carries (or `--platform`);
//! - the report: one per root or image, a summary per code, and the exit status.
//!
//! What is per root is done once: the host facts ([`Host`]: binfmt_misc is read before the
//! worker threads take their copies) and the rooted handle for the label and user look-ups.
//! The checks of one root share, per worker thread, what does not change from program to
//! program (`with_sweep_caches`): the opened root and the directories and symlinks resolved
//! in it (`rootfs::resolve::with_dir_cache`), the library probes, ld.so.cache and each ELF
//! loader (`check::libs::with_probe_memo`). Measured on a Debian minbase, that takes a sweep
//! from about 105 to about 20 syscalls per program (the walk of the tree aside), with byte-identical reports. The walk and
//! the checks each run on one thread per CPU (at most [`MAX_WORKERS`]); the order of the output
//! does not depend on them.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{Mode, fstat, fstatat};
use serde::Serialize;

use crate::check;
use crate::diagnosis::{Code, Diagnosis, Finding, Program, Severity, Verdict};
use crate::host::Host;
use crate::inspect::elf::{self, Class, ElfInfo, Endian};
use crate::rootfs::resolve::{self, Resolution, Root};
use crate::sanitize::{escape_bytes, escape_str};
use crate::spec::SpecView;

/// The `PATH` the engines give a process whose image sets none (moby's `DefaultPathEnv`,
/// containerd's default spec).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Deepest directory the walk enters.
pub const MAX_DEPTH: usize = 128;
/// Most directory entries the walk reads before it stops (the sweep is then incomplete).
pub const MAX_ENTRIES: u64 = 4_000_000;
/// Most programs one sweep checks.
pub const MAX_FILES: usize = 500_000;
/// Largest /etc/passwd or /etc/group read for `--user`.
pub const MAX_ACCOUNTS_BYTES: u64 = 1 << 20;

/// An image platform (`os/architecture[/variant]`), with the architecture in the OCI (Go)
/// spelling: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`...
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`.
    pub architecture: String,
    /// `v7`, `v8`, or none.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform, with common aliases of the architecture normalised (`x86_64` → `amd64`,
    /// `aarch64` → `arm64`, `armhf` → `arm/v7`, `i686` → `386`).
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        let arch = arch.to_ascii_lowercase();
        let (architecture, implied) = match arch.as_str() {
            "x86_64" | "x86-64" | "x64" => ("amd64".to_string(), None),
            "aarch64" => ("arm64".to_string(), None),
            "armhf" | "armv7l" | "armv7" => ("arm".to_string(), Some("v7")),
            "armel" | "armv6l" => ("arm".to_string(), Some("v6")),
            "i386" | "i486" | "i586" | "i686" | "x86" => ("386".to_string(), None),
            _ => (arch, None),
        };
        Platform {
            os: os.to_ascii_lowercase(),
            architecture,
            variant: variant
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase)
                .or(implied.map(str::to_string)),
        }
    }

    /// Parses `os/arch[/variant]` or a bare `arch` (os `linux`).
    ///
    /// # Errors
    /// An empty part, or more than three parts.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("platform \"{}\" is not os/arch[/variant]", escape_str(s));
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [arch] => Ok(Platform::new("linux", arch, None)),
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, v] => Ok(Platform::new(os, arch, Some(v))),
            _ => Err(bad()),
        }
    }

    /// Whether an image labelled `label` is one this selector asks for: same os and
    /// architecture, and the same variant when both give one.
    pub fn matches(&self, label: &Platform) -> bool {
        self.os == label.os
            && self.architecture == label.architecture
            && match (&self.variant, &label.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The OCI architecture of an ELF file, when there is one for its class, byte order and
/// machine.
pub fn elf_architecture(info: &ElfInfo) -> Option<&'static str> {
    use crate::host::em;
    let (c, e) = (info.class?, info.endian?);
    Some(match (info.machine, c, e) {
        (em::X86_64, Class::Elf64, Endian::Little) => "amd64",
        (em::I386, Class::Elf32, Endian::Little) => "386",
        (em::AARCH64, Class::Elf64, Endian::Little) => "arm64",
        (em::ARM, Class::Elf32, Endian::Little) => "arm",
        (em::PPC64, Class::Elf64, Endian::Little) => "ppc64le",
        (em::PPC64, Class::Elf64, Endian::Big) => "ppc64",
        (em::S390, Class::Elf64, Endian::Big) => "s390x",
        (em::RISCV, Class::Elf64, Endian::Little) => "riscv64",
        (em::LOONGARCH, Class::Elf64, Endian::Little) => "loong64",
        (8, Class::Elf64, Endian::Little) => "mips64le",
        (8, Class::Elf64, Endian::Big) => "mips64",
        (8, Class::Elf32, Endian::Little) => "mipsle",
        (8, Class::Elf32, Endian::Big) => "mips",
        _ => return None,
    })
}

/// Who the platform label comes from, for the words of the finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// The image config's `architecture`/`os`/`variant`.
    Image,
    /// `--platform` given to a rootfs sweep.
    Flag,
}

/// The identity the process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Identity {
    /// Sets the spec's `process.user`.
    pub fn apply(&self, spec: &mut SpecView) {
        spec.uid = self.uid;
        spec.gid = self.gid;
        spec.additional_gids = self.groups.clone();
    }
}

/// Reads a small file of the root through the resolver.
fn read_small(root: &Root, path: &[u8], limit: u64) -> Option<Vec<u8>> {
    let Resolution::Found(r) = root.resolve(path, true) else {
        return None;
    };
    let f = resolve::open_for_read(&r).ok()?;
    let mut buf = vec![0u8; usize::try_from(limit).unwrap_or(0)];
    let mut got = 0usize;
    while got < buf.len() {
        match f.read_at(buf.get_mut(got..).unwrap_or_default(), got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    buf.truncate(got);
    Some(buf)
}

/// `name:x:uid:gid…` or `name:x:gid:members` lines.
fn account_lines(text: &[u8]) -> Vec<Vec<&[u8]>> {
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| l.split(|b| *b == b':').collect())
        .collect()
}

fn num(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Resolves a user the way the engines resolve `USER` / `--user` (moby/sys/user
/// `GetExecUser`): empty is root; a name must be in the root's /etc/passwd; a number is used
/// as is, with its passwd entry's group if it has one; `:group` is a name in /etc/group or a
/// number; without a group, the groups listing the user as a member are added.
///
/// # Errors
/// A name (user or group) that the root's files do not have, in the engines' words.
pub fn resolve_user(root: &Root, user: &str, limit: u64) -> Result<Identity, String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_small(root, b"/etc/passwd", limit).unwrap_or_default();
    let group = read_small(root, b"/etc/group", limit).unwrap_or_default();
    let pw = account_lines(&passwd);
    let gr = account_lines(&group);
    let by_uid = |uid: u32| {
        pw.iter()
            .find(|l| l.get(2).and_then(|x| num(x)) == Some(uid))
    };
    let (uid, mut gid, name): (u32, u32, Option<&[u8]>) = if u.is_empty() {
        let e = by_uid(0);
        (
            0,
            e.and_then(|l| l.get(3)).and_then(|x| num(x)).unwrap_or(0),
            e.and_then(|l| l.first().copied()),
        )
    } else if let Some(n) = num(u.as_bytes()) {
        let e = by_uid(n);
        (
            n,
            e.and_then(|l| l.get(3)).and_then(|x| num(x)).unwrap_or(0),
            e.and_then(|l| l.first().copied()),
        )
    } else {
        let e = pw
            .iter()
            .find(|l| l.first().copied() == Some(u.as_bytes()))
            .ok_or_else(|| {
                format!(
                    "unable to find user {}: no matching entries in passwd file",
                    escape_str(u)
                )
            })?;
        let uid = e.get(2).and_then(|x| num(x)).ok_or_else(|| {
            format!(
                "the passwd entry of user {} has no numeric uid",
                escape_str(u)
            )
        })?;
        (
            uid,
            e.get(3).and_then(|x| num(x)).unwrap_or(0),
            e.first().copied(),
        )
    };
    let mut groups = Vec::new();
    match g {
        Some(g) if !g.is_empty() => {
            gid = match num(g.as_bytes()) {
                Some(n) => n,
                None => gr
                    .iter()
                    .find(|l| l.first().copied() == Some(g.as_bytes()))
                    .and_then(|l| l.get(2))
                    .and_then(|x| num(x))
                    .ok_or_else(|| {
                        format!(
                            "unable to find group {}: no matching entries in group file",
                            escape_str(g)
                        )
                    })?,
            };
        }
        _ => {
            if let Some(name) = name {
                for l in &gr {
                    let member = l
                        .get(3)
                        .is_some_and(|m| m.split(|b| *b == b',').any(|x| x == name));
                    if let Some(n) = l.get(2).and_then(|x| num(x))
                        && member
                        && n != gid
                        && !groups.contains(&n)
                    {
                        groups.push(n);
                    }
                }
            }
        }
    }
    Ok(Identity { uid, gid, groups })
}

/// A directory the walk did not enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its container path.
    pub path: Vec<u8>,
    /// Why.
    pub reason: String,
}

/// What the walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    /// Container paths of the regular files with an execute bit, sorted.
    pub files: Vec<Vec<u8>>,
    /// Directories not entered.
    pub skipped: Vec<Skipped>,
    /// Directory entries read.
    pub entries: u64,
    /// Why the walk stopped early, if it did.
    pub cut_short: Option<String>,
}

/// The directories waiting for a walker thread, and the counts all threads share.
struct Queue {
    state: Mutex<QueueState>,
    cv: Condvar,
    /// Directories in `state.dirs`, readable without the lock.
    queued: AtomicUsize,
    entries: AtomicU64,
    files: AtomicUsize,
    cut_short: Mutex<Option<String>>,
    stop: AtomicBool,
    dev: u64,
    /// Below this many queued directories a walker hands a subdirectory to the others instead
    /// of descending into it itself: enough to keep every thread busy, few enough open fds.
    share_below: usize,
}

struct QueueState {
    dirs: Vec<(OwnedFd, Vec<u8>, usize)>,
    busy: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queue {
    fn stop_with(&self, why: String) {
        self.stop.store(true, Ordering::Relaxed);
        lock(&self.cut_short).get_or_insert(why);
    }
}

struct Walker<'q> {
    q: &'q Queue,
    files: Vec<Vec<u8>>,
    skipped: Vec<Skipped>,
    buf: Vec<u8>,
}

/// `getdents64` on a directory fd.
fn getdents(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which is ours for the
    // call; `fd` stays open for it.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            fd.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl Walker<'_> {
    fn skip(&mut self, path: &[u8], reason: String) {
        self.skipped.push(Skipped {
            path: path.to_vec(),
            reason,
        });
    }

    /// Takes directories from the queue until every thread is idle and the queue is empty.
    fn work(&mut self) {
        loop {
            let job = {
                let mut st = lock(&self.q.state);
                loop {
                    if self.q.stop.load(Ordering::Relaxed) {
                        break None;
                    }
                    if let Some(j) = st.dirs.pop() {
                        self.q.queued.fetch_sub(1, Ordering::Relaxed);
                        st.busy += 1;
                        break Some(j);
                    }
                    if st.busy == 0 {
                        break None;
                    }
                    st = self.q.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some((fd, mut path, depth)) = job else {
                self.q.cv.notify_all();
                return;
            };
            self.visit(fd.as_fd(), &mut path, depth);
            drop(fd);
            let mut st = lock(&self.q.state);
            st.busy -= 1;
            if st.busy == 0 && st.dirs.is_empty() {
                self.q.cv.notify_all();
            }
        }
    }

    /// The names and `d_type`s of a directory (without `.` and `..`), within the entry bound.
    fn names(&mut self, dir: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, u8)>> {
        let mut out = Vec::new();
        loop {
            let n = getdents(dir, &mut self.buf)?;
            if n == 0 {
                return Ok(out);
            }
            let data = self.buf.get(..n).unwrap_or_default();
            let mut off = 0usize;
            // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            while let Some(rec) = data.get(off..off + 19) {
                let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
                if reclen < 19 {
                    return Ok(out);
                }
                let dtype = rec[18];
                let raw = data.get(off + 19..off + reclen).unwrap_or_default();
                let name = raw.get(..raw.iter().position(|b| *b == 0).unwrap_or(raw.len()));
                off += reclen;
                let Some(name) = name else { continue };
                if name == b"." || name == b".." || name.is_empty() {
                    continue;
                }
                if self.q.entries.fetch_add(1, Ordering::Relaxed) >= MAX_ENTRIES {
                    self.q.stop_with(format!(
                        "the walk stopped after {MAX_ENTRIES} directory entries"
                    ));
                    return Ok(out);
                }
                out.push((name.to_vec(), dtype));
            }
        }
    }

    fn visit(&mut self, dir: BorrowedFd<'_>, path: &mut Vec<u8>, depth: usize) {
        let names = match self.names(dir) {
            Ok(n) => n,
            Err(e) => {
                let p = if path.is_empty() {
                    b"/".to_vec()
                } else {
                    path.clone()
                };
                self.skip(&p, format!("it cannot be read: {e}"));
                return;
            }
        };
        for (name, dtype) in names {
            if self.q.stop.load(Ordering::Relaxed) {
                return;
            }
            let len = path.len();
            path.push(b'/');
            path.extend_from_slice(&name);
            let dtype = if dtype == libc::DT_UNKNOWN {
                match fstatat(dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => match st.st_mode & libc::S_IFMT {
                        libc::S_IFDIR => libc::DT_DIR,
                        libc::S_IFREG => libc::DT_REG,
                        _ => libc::DT_UNKNOWN,
                    },
                    Err(_) => libc::DT_UNKNOWN,
                }
            } else {
                dtype
            };
            if path.len() >= resolve::PATH_MAX {
                self.skip(path, "its path is longer than PATH_MAX".into());
            } else if dtype == libc::DT_DIR {
                self.enter(dir, &name, path, depth + 1);
            } else if dtype == libc::DT_REG
                && let Ok(st) = fstatat(dir, name.as_slice(), AtFlags::AT_SYMLINK_NOFOLLOW)
                && st.st_mode & libc::S_IFMT == libc::S_IFREG
                && st.st_mode & 0o111 != 0
            {
                self.files.push(path.clone());
                if self.q.files.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_FILES {
                    self.q
                        .stop_with(format!("the walk stopped after {MAX_FILES} programs"));
                }
            }
            path.truncate(len);
        }
    }

    fn enter(&mut self, dir: BorrowedFd<'_>, name: &[u8], path: &mut Vec<u8>, depth: usize) {
        if depth > MAX_DEPTH {
            self.skip(
                path,
                format!("it is nested deeper than {MAX_DEPTH} directories"),
            );
            return;
        }
        let fd = match openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                self.skip(path, format!("it cannot be opened: {e}"));
                return;
            }
        };
        match fstat(&fd) {
            Ok(st) if st.st_dev == self.q.dev => {}
            Ok(_) => {
                self.skip(path, "another file system is mounted there".into());
                return;
            }
            Err(e) => {
                self.skip(path, format!("it cannot be read: {e}"));
                return;
            }
        }
        if self.q.queued.load(Ordering::Relaxed) < self.q.share_below {
            let mut st = lock(&self.q.state);
            st.dirs.push((fd, path.clone(), depth));
            self.q.queued.fetch_add(1, Ordering::Relaxed);
            drop(st);
            self.q.cv.notify_one();
            return;
        }
        self.visit(fd.as_fd(), path, depth);
    }
}

/// Every regular file with an execute bit under `rootfs` (the rootfs directory itself is
/// opened following host links: the caller named it), on up to [`MAX_WORKERS`] threads.
///
/// # Errors
/// The rootfs cannot be opened as a directory.
pub fn walk(rootfs: &Path) -> io::Result<Walked> {
    let root = open(
        rootfs,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&root)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    let q = Queue {
        state: Mutex::new(QueueState {
            dirs: vec![(root, Vec::new(), 0)],
            busy: 0,
        }),
        cv: Condvar::new(),
        queued: AtomicUsize::new(1),
        entries: AtomicU64::new(0),
        files: AtomicUsize::new(0),
        cut_short: Mutex::new(None),
        stop: AtomicBool::new(false),
        dev: st.st_dev,
        share_below: 2 * workers,
    };
    let walker = |q| Walker {
        q,
        files: Vec::new(),
        skipped: Vec::new(),
        buf: vec![0u8; 32 << 10],
    };
    let mut parts: Vec<(Vec<Vec<u8>>, Vec<Skipped>)> = Vec::new();
    if workers == 1 {
        let mut w = walker(&q);
        w.work();
        parts.push((w.files, w.skipped));
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let q = &q;
                    s.spawn(move || {
                        let mut w = walker(q);
                        w.work();
                        (w.files, w.skipped)
                    })
                })
                .collect();
            for h in handles {
                match h.join() {
                    Ok(p) => parts.push(p),
                    Err(_) => q.stop_with("a walker thread failed".into()),
                }
            }
        });
    }
    let mut out = Walked {
        entries: q.entries.load(Ordering::Relaxed),
        cut_short: lock(&q.cut_short).take(),
        ..Walked::default()
    };
    for (f, sk) in parts {
        out.files.extend(f);
        out.skipped.extend(sk);
    }
    out.files.sort_unstable();
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Where the runtime looks for `args[0]`: the name itself when it has a slash (from `cwd`
/// when relative), otherwise each `PATH` entry of the spec's environment.
pub fn candidates(a0: &str, spec: &SpecView) -> Vec<String> {
    let abs = |p: String| {
        if p.starts_with('/') {
            p
        } else {
            format!("{}/{p}", spec.cwd.trim_end_matches('/'))
        }
    };
    if a0.contains('/') {
        return vec![abs(a0.to_string())];
    }
    spec.env_path()
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| abs(format!("{}/{a0}", d.trim_end_matches('/'))))
        .collect()
}

/// The programs a diagnosis reached that the kernel loads (resolved container paths): the
/// process, then every link of its chain.
pub fn chain_paths(d: &Diagnosis) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let raw = |s: &str| (!s.contains('\\')).then(|| s.as_bytes().to_vec());
    if let Some(p) = d.program.path.as_deref().and_then(raw) {
        out.push(p);
    }
    for l in d.program.chain.iter().filter(|l| l.role != "process") {
        if let Some(p) = raw(&l.path)
            && !out.contains(&p)
        {
            out.push(p);
        }
    }
    out
}

/// `platform-label-mismatch` findings: each ELF on the way to the process (the process, its
/// `#!` interpreter, env target, ELF loader, wrapped programs; not a binfmt_misc emulator, which
/// is meant to be foreign) whose architecture is not the label's.
pub fn label_findings(
    root: &Root,
    d: &Diagnosis,
    label: &Platform,
    source: LabelSource,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let emulators: Vec<&str> = d
        .program
        .chain
        .iter()
        .filter(|l| l.role == "binfmt-interpreter")
        .map(|l| l.path.as_str())
        .collect();
    for path in chain_paths(d) {
        if emulators.iter().any(|e| e.as_bytes() == path.as_slice()) {
            continue;
        }
        let Resolution::Found(r) = root.resolve(&path, true) else {
            continue;
        };
        let Ok(f) = resolve::open_for_read(&r) else {
            continue;
        };
        let mut head = vec![0u8; 4096];
        let mut got = 0usize;
        while got < head.len() {
            match f.read_at(head.get_mut(got..).unwrap_or_default(), got as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        head.truncate(got);
        let Some(info) = elf::parse(&head, &f) else {
            continue;
        };
        let Some(arch) = elf_architecture(&info) else {
            continue;
        };
        if arch == label.architecture {
            continue;
        }
        let compat = matches!(
            (label.architecture.as_str(), arch),
            ("amd64", "386") | ("arm64", "arm")
        );
        let shown = escape_bytes(&path);
        let desc = elf::describe(&info);
        let role = d
            .program
            .chain
            .iter()
            .find(|l| l.path.as_bytes() == path.as_slice())
            .map(|l| l.role)
            .unwrap_or("process");
        let whose = match source {
            LabelSource::Image => format!("the image is labelled {label}"),
            LabelSource::Flag => format!("--platform says {label}"),
        };
        let consequence = if compat {
            format!(
                "it runs on {} only where the kernel allows 32-bit {arch} programs",
                label.architecture
            )
        } else {
            format!(
                "on a {label} machine it fails with exec format error (or runs under emulation)"
            )
        };
        let f = Finding::new(
            Code::PlatformLabelMismatch,
            if compat {
                Severity::Warning
            } else {
                Severity::Error
            },
            format!("{shown} is built for {arch} ({desc}), but {whose}: {consequence}"),
            format!(
                "build the program for the label's platform: with `docker buildx build --platform {}`, compile it inside the build for $TARGETPLATFORM (or cross-compile from $BUILDPLATFORM with GOARCH=$TARGETARCH) instead of copying a binary built elsewhere; or fix the label",
                label
            ),
        )
        .at(&path)
        .with("label", label.to_string())
        .with("file_arch", arch)
        .with("elf", desc)
        .with("role", role);
        out.push(f);
    }
    out
}

/// Checks one process (`args`, with `base`'s environment, directory and user), adds the label
/// findings, and applies the silenced codes.
pub fn check_one(
    base: &SpecView,
    args: &[String],
    host: &Host,
    label: Option<&Platform>,
    source: LabelSource,
    root: &Root,
    silenced: &[Code],
) -> Diagnosis {
    let mut spec = base.clone();
    spec.args = args.to_vec();
    let d = check::diagnose(&spec, host);
    let mut d = match label {
        Some(l) => {
            let extra = label_findings(root, &d, l, source);
            if extra.is_empty() {
                d
            } else {
                let mut f = d.findings;
                f.extend(extra);
                Diagnosis::new(d.program, f)
            }
        }
        None => d,
    };
    d.silence(silenced);
    d
}

/// Most threads one sweep runs checks on.
pub const MAX_WORKERS: usize = 8;
/// Programs per worker below which another thread does not pay for itself.
const PER_WORKER: usize = 64;

/// Run `f` with the caches of a sweep on this thread: the programs of one root walk the same
/// directories and load the same loader and libraries, so each is resolved and probed once.
fn with_sweep_caches<T>(f: impl FnOnce() -> T) -> T {
    resolve::with_dir_cache(|| crate::check::libs::with_probe_memo(f))
}

/// [`check_one`] for many processes, on up to [`MAX_WORKERS`] threads (one per CPU), in order.
/// A check that panics becomes an `unverifiable` finding for its program instead of ending
/// the sweep.
pub fn check_many(
    base: &SpecView,
    runs: &[Vec<String>],
    host: &Host,
    label: Option<&Platform>,
    source: LabelSource,
    root: &Root,
    silenced: &[Code],
) -> Vec<Diagnosis> {
    let failed = |args: &Vec<String>| {
        let a0 = args.first().map(String::as_bytes).unwrap_or_default();
        not_checked(a0, "execguard failed while checking it (an internal error)")
    };
    let guarded = |args: &Vec<String>, host: &Host| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_one(base, args, host, label, source, root, silenced)
        }))
        .unwrap_or_else(|_| failed(args))
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cpus.min(MAX_WORKERS).min(runs.len() / PER_WORKER).max(1);
    if workers == 1 {
        return with_sweep_caches(|| runs.iter().map(|a| guarded(a, host)).collect());
    }
    // Read binfmt_misc once, before each thread gets its own copy of the host facts.
    let _ = host.binfmt();
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Diagnosis>> = Vec::with_capacity(runs.len());
    out.resize_with(runs.len(), || None);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let h = host.clone();
                let (next, guarded) = (&next, &guarded);
                s.spawn(move || {
                    with_sweep_caches(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(a) = runs.get(i) else { break };
                            mine.push((i, guarded(a, &h)));
                        }
                        mine
                    })
                })
            })
            .collect();
        for h in handles {
            if let Ok(mine) = h.join() {
                for (i, d) in mine {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(d);
                    }
                }
            }
        }
    });
    out.into_iter()
        .zip(runs)
        .map(|(d, a)| d.unwrap_or_else(|| failed(a)))
        .collect()
}

/// What a sweep is asked to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// The image's own process (entrypoint and cmd); for an image only.
    Process,
    /// Every regular file with an execute bit.
    All,
    /// These `args[0]` values.
    Paths(Vec<String>),
}

/// Options shared by the rootfs and image sweeps.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--user`.
    pub user: Option<String>,
    /// `--env KEY=VALUE`, after the defaults (the last definition wins).
    pub env: Vec<String>,
    /// `--platform`: the label every ELF must match (rootfs), or the images to check (image).
    pub platform: Option<Platform>,
    /// Codes the configuration silences.
    pub silenced: Vec<Code>,
}

/// What was swept.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Target {
    /// A root file system directory.
    Rootfs {
        /// The directory as given (escaped).
        path: String,
    },
    /// One image of an image tarball.
    Image(Box<ImageTarget>),
}

/// The image a report is about (every string escaped).
#[derive(Debug, Clone, Serialize)]
pub struct ImageTarget {
    /// The tarball.
    pub file: String,
    /// Repo tag or reference name.
    pub name: Option<String>,
    /// The platform label (`linux/amd64`).
    pub platform: Option<String>,
    /// The config blob.
    pub config: String,
    /// `config.Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// The environment the checks used (the config's, a default PATH, `--env`).
    pub env: Vec<String>,
    /// The user the checks ran as (`--user`, or `config.User`).
    pub user: String,
    /// `config.WorkingDir`.
    pub working_dir: String,
    /// Number of layers.
    pub layers: usize,
    /// Entries read from the layers.
    pub entries: usize,
}

/// Counts of one code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    /// Error findings.
    pub error: usize,
    /// Warning findings.
    pub warning: usize,
    /// Info findings.
    pub info: usize,
}

/// The findings of a sweep, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Programs with at least one error.
    pub files_with_errors: usize,
    /// Programs with a warning and no error.
    pub files_with_warnings: usize,
    /// Error findings.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
    /// Info findings.
    pub infos: usize,
    /// Per code, in code order.
    pub codes: BTreeMap<&'static str, CodeCount>,
}

impl Summary {
    fn add(&mut self, d: &Diagnosis) {
        match d.verdict {
            Verdict::Fail => self.files_with_errors += 1,
            Verdict::Warn => self.files_with_warnings += 1,
            _ => {}
        }
        for f in &d.findings {
            let c = self.codes.entry(f.code.as_str()).or_default();
            match f.severity {
                Severity::Error => {
                    self.errors += 1;
                    c.error += 1;
                }
                Severity::Warning => {
                    self.warnings += 1;
                    c.warning += 1;
                }
                Severity::Info => {
                    self.infos += 1;
                    c.info += 1;
                }
            }
        }
    }
}

/// The result of sweeping one root or one image.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was swept.
    pub target: Target,
    /// `fail` with an error, `warn` with a warning, `unknown` when cut short, else `ok`.
    pub verdict: Verdict,
    /// Programs checked.
    pub checked: usize,
    /// False when a limit stopped the sweep before the end.
    pub complete: bool,
    /// What could not be done exactly.
    pub notes: Vec<String>,
    /// The findings counted.
    pub summary: Summary,
    /// The diagnoses: all of them for an image's process or explicit paths; those with a
    /// finding for `--all`.
    pub diagnoses: Vec<Diagnosis>,
    /// Text output shows each diagnosis in full (not one line per problem).
    #[serde(skip)]
    pub detailed: bool,
}

impl Report {
    /// A report of `diagnoses` (one per program checked).
    pub fn new(
        target: Target,
        diagnoses: Vec<Diagnosis>,
        detailed: bool,
        notes: Vec<String>,
    ) -> Report {
        let mut r = Report {
            target,
            verdict: Verdict::Ok,
            checked: diagnoses.len(),
            complete: true,
            notes,
            summary: Summary::default(),
            diagnoses: Vec::new(),
            detailed,
        };
        for d in diagnoses {
            r.push(d, false);
        }
        r.verdict = r.compute_verdict();
        r
    }

    /// Counts a diagnosis and keeps it when the report shows every program (`detailed`), when
    /// it has a finding, or when `keep` says so.
    fn push(&mut self, d: Diagnosis, keep: bool) {
        self.summary.add(&d);
        if keep || self.detailed || !d.findings.is_empty() {
            self.diagnoses.push(d);
        }
    }

    fn compute_verdict(&self) -> Verdict {
        if self.summary.errors > 0 {
            Verdict::Fail
        } else if self.summary.warnings > 0 {
            Verdict::Warn
        } else if !self.complete {
            Verdict::Unknown
        } else {
            Verdict::Ok
        }
    }

    /// Adds what the walk could not do: a directory not entered is an `unverifiable` info
    /// finding of its own; a walk cut short makes the report incomplete.
    pub fn add_walk(&mut self, w: Walked) {
        for s in w.skipped {
            let f = Finding::new(
                Code::Unverifiable,
                Severity::Info,
                format!(
                    "directory {} was not swept: {}",
                    escape_bytes(&s.path),
                    s.reason
                ),
                String::new(),
            )
            .at(&s.path);
            let d = Diagnosis::new(
                Program {
                    args0: None,
                    path: Some(escape_bytes(&s.path)),
                    chain: Vec::new(),
                },
                vec![f],
            );
            self.push(d, true);
        }
        if let Some(why) = w.cut_short {
            self.complete = false;
            self.notes.push(format!("incomplete: {why}"));
        }
        self.verdict = self.compute_verdict();
    }
}

/// The exit status of a sweep: 2 when a report is incomplete, 1 when a finding is an error,
/// 0 otherwise (2 for a sweep that cannot run at all is the caller's).
pub fn exit_code(reports: &[Report]) -> i32 {
    if reports.iter().any(|r| !r.complete) {
        2
    } else if reports.iter().any(|r| r.summary.errors > 0) {
        1
    } else {
        0
    }
}

/// A diagnosis for a program the sweep does not check, saying why.
pub fn not_checked(path: &[u8], why: &str) -> Diagnosis {
    let f = Finding::new(
        Code::Unverifiable,
        Severity::Info,
        format!("{} was not checked: {why}", escape_bytes(path)),
        String::new(),
    )
    .at(path);
    Diagnosis::new(
        Program {
            args0: Some(escape_bytes(path)),
            path: None,
            chain: Vec::new(),
        },
        vec![f],
    )
}

/// Sweeps a root file system directory.
///
/// # Errors
/// The directory cannot be opened, `--user` names an account it does not have, or no target
/// was given.
pub fn rootfs(
    dir: &Path,
    targets: &Targets,
    opts: &Options,
    host: &Host,
) -> Result<Report, String> {
    let shown = escape_bytes(dir.as_os_str().as_encoded_bytes());
    let meta =
        std::fs::metadata(dir).map_err(|e| format!("cannot open the rootfs {shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("the rootfs {shown} is not a directory"));
    }
    let root = Root::open(dir, Vec::new()).map_err(|e| e.to_string())?;
    let id = resolve_user(
        &root,
        opts.user.as_deref().unwrap_or(""),
        MAX_ACCOUNTS_BYTES,
    )
    .map_err(|e| format!("--user: {e} in {shown}"))?;
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    env.extend(opts.env.iter().cloned());
    let mut base = SpecView::for_process(dir.to_path_buf(), Vec::new(), env);
    id.apply(&mut base);
    let label = opts.platform.as_ref();
    let many = |runs: &[Vec<String>]| {
        check_many(
            &base,
            runs,
            host,
            label,
            LabelSource::Flag,
            &root,
            &opts.silenced,
        )
    };
    let target = Target::Rootfs {
        path: shown.clone(),
    };
    match targets {
        Targets::All => {
            let mut w = walk(dir).map_err(|e| format!("cannot walk the rootfs {shown}: {e}"))?;
            let mut runs = Vec::new();
            let mut odd = Vec::new();
            for p in std::mem::take(&mut w.files) {
                match String::from_utf8(p) {
                    Ok(s) => runs.push(vec![s]),
                    Err(e) => odd.push(not_checked(
                        e.as_bytes(),
                        "its name is not valid UTF-8, which process.args cannot hold",
                    )),
                }
            }
            let mut all = many(&runs);
            all.extend(odd);
            let mut r = Report::new(target, all, false, Vec::new());
            r.add_walk(w);
            Ok(r)
        }
        Targets::Paths(p) => {
            let runs: Vec<Vec<String>> = p.iter().map(|x| vec![x.clone()]).collect();
            Ok(Report::new(target, many(&runs), true, Vec::new()))
        }
        Targets::Process => Err("give --all or the PATHs to check in the rootfs".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn host() -> Host {
        Host::with_machine("x86_64", true, "/nonexistent".into())
    }

    fn write(root: &Path, p: &str, bytes: &[u8], mode: u32) {
        let f = root.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, bytes).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_walk_finds_executables_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "evil", b"#!/bin/sh\n", 0o755);
        let r = t.path();
        write(r, "bin/a", b"#!/bin/sh\n", 0o755);
        write(r, "bin/data", b"x", 0o644);
        write(r, "usr/lib/x/y/z", b"", 0o700);
        symlink(outside.path(), r.join("escape")).unwrap();
        symlink("/bin", r.join("sbin")).unwrap();
        let fifo =
            std::ffi::CString::new(r.join("bin/fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o755) }, 0);
        let w = walk(r).unwrap();
        assert_eq!(w.files, [b"/bin/a".to_vec(), b"/usr/lib/x/y/z".to_vec()]);
        assert!(w.skipped.is_empty() && w.cut_short.is_none());
    }

    #[test]
    fn platforms_parse_and_normalise() {
        let p = Platform::parse("linux/x86_64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(
            Platform::parse("armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8")
                .unwrap()
                .variant
                .as_deref(),
            Some("v8")
        );
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert!(
            Platform::parse("linux/arm64")
                .unwrap()
                .matches(&Platform::parse("linux/arm64/v8").unwrap())
        );
        assert!(
            !Platform::parse("linux/arm/v6")
                .unwrap()
                .matches(&Platform::parse("linux/arm/v7").unwrap())
        );
    }

    #[test]
    fn users_resolve_like_the_engines() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            0o644,
        );
        write(
            t.path(),
            "etc/group",
            b"root:x:0:\napp:x:1001:\nstaff:x:50:app,bob\n",
            0o644,
        );
        let root = Root::open(t.path(), Vec::new()).unwrap();
        let r = |u: &str| resolve_user(&root, u, 1 << 20);
        assert_eq!(
            r("").unwrap(),
            Identity {
                uid: 0,
                gid: 0,
                groups: vec![]
            }
        );
        assert_eq!(
            r("app").unwrap(),
            Identity {
                uid: 1000,
                gid: 1001,
                groups: vec![50]
            }
        );
        assert_eq!(
            r("app:staff").unwrap(),
            Identity {
                uid: 1000,
                gid: 50,
                groups: vec![]
            }
        );
        assert_eq!(
            r("1000:7").unwrap(),
            Identity {
                uid: 1000,
                gid: 7,
                groups: vec![]
            }
        );
        assert_eq!(
            r("4242").unwrap(),
            Identity {
                uid: 4242,
                gid: 0,
                groups: vec![]
            }
        );
        assert!(
            r("nobody")
                .unwrap_err()
                .contains("unable to find user nobody")
        );
        assert!(
            r("app:nogroup")
                .unwrap_err()
                .contains("unable to find group nogroup")
        );
    }

    #[test]
    fn a_sweep_reports_each_problem_and_counts_codes() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(r, "bin/crlf", b"#!/bin/sh\r\necho hi\r\n", 0o755);
        write(r, "bin/noshebang", b"echo hi\n", 0o755);
        write(r, "bin/data", b"x", 0o644);
        let opts = Options::default();
        let rep = rootfs(r, &Targets::All, &opts, &host()).unwrap();
        assert_eq!(rep.checked, 2);
        assert_eq!(rep.verdict, Verdict::Fail);
        assert_eq!(
            rep.summary.codes.get("shebang-crlf").map(|c| c.error),
            Some(1)
        );
        assert_eq!(
            rep.summary.codes.get("no-shebang").map(|c| c.error),
            Some(1)
        );
        assert_eq!(exit_code(&[rep]), 1);
        let rep = rootfs(r, &Targets::Paths(vec!["/bin/data".into()]), &opts, &host()).unwrap();
        assert_eq!(rep.diagnoses[0].findings[0].code, Code::NotExecutable);
        assert!(rootfs(&r.join("bin/data"), &Targets::All, &opts, &host()).is_err());
        assert!(rootfs(r, &Targets::Process, &opts, &host()).is_err());
    }

    #[test]
    fn the_label_check_compares_every_elf_on_the_way() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[6] = 1;
        elf[16] = 2;
        elf[18..20].copy_from_slice(&183u16.to_le_bytes());
        write(r, "app", &elf, 0o755);
        let opts = Options {
            platform: Some(Platform::parse("linux/amd64").unwrap()),
            ..Options::default()
        };
        let rep = rootfs(r, &Targets::All, &opts, &host()).unwrap();
        let d = &rep.diagnoses[0];
        let f = d
            .findings
            .iter()
            .find(|f| f.code == Code::PlatformLabelMismatch)
            .unwrap_or_else(|| panic!("{:?}", d.findings));
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.evidence["file_arch"], "arm64");
        assert_eq!(f.evidence["label"], "linux/amd64");
        let opts = Options {
            platform: Some(Platform::parse("linux/arm64").unwrap()),
            ..Options::default()
        };
        let rep = rootfs(r, &Targets::All, &opts, &host()).unwrap();
        assert!(!rep.summary.codes.contains_key("platform-label-mismatch"));
    }

    #[test]
    fn candidates_follow_path_and_cwd() {
        let mut s = SpecView::for_process("/r".into(), Vec::new(), vec!["PATH=/a:/b/".into()]);
        s.cwd = "/w".into();
        assert_eq!(candidates("x", &s), ["/a/x", "/b/x"]);
        assert_eq!(candidates("./x", &s), ["/w/./x"]);
        assert_eq!(candidates("/y", &s), ["/y"]);
    }
}
