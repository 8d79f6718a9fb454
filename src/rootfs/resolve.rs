//! Rooted resolution of container paths: the only door into a container's filesystem.
//!
//! This module owns every lookup of a path inside the rootfs. It walks a container path one
//! component at a time from the container root the way the kernel's path walk does after the
//! runtime has pivoted into the rootfs (fs/namei.c `link_path_walk`, `walk_component`,
//! `step_into`, `pick_link`, `follow_dotdot`):
//!
//! - each component is opened with `openat(O_PATH|O_NOFOLLOW|O_CLOEXEC)` relative to the
//!   directory before it, so no host path from the image is ever used and no host symlink is
//!   followed;
//! - symlinks are read with `readlinkat` on the `O_PATH` fd of the link itself; absolute targets
//!   restart at the container root and `..` never climbs above it;
//! - at most [`MAXSYMLINKS`] links are followed per resolution (`ELOOP` after);
//! - the spec's mounts are crossed as the kernel sees them once the runtime has mounted them:
//!   bind mounts continue in their host source, other file systems make what lies under them
//!   unverifiable;
//! - a symlink on procfs (reachable only through a bind of a host `/proc`) is a magic link whose
//!   target is not its text, so the walk stops there as unverifiable;
//! - nothing is ever opened for reading here except through [`open_for_read`], which refuses
//!   everything but a regular file and never blocks.
//!
//! A sweep resolves hundreds of paths of one root through the same few directories. Inside
//! [`with_dir_cache`], each thread remembers what the walk saw at a canonical container path of
//! a root without mounts, the way the kernel's dentry cache does (fs/dcache.c `d_lookup`): the
//! `O_PATH` fd and `fstat` of a directory, or the target of a symlink the walk followed. A
//! later walk through the same path takes the remembered step instead of `openat`, `fstat`,
//! `fstatfs` and `readlinkat`; everything else (link counting, `..`, the search-permission
//! record, the final component) is the same walk, so the outcome is the one the uncached walk
//! reaches. The cache is bounded ([`DIR_CACHE_FDS`], [`DIR_CACHE_ENTRIES`]) and its fds are
//! closed when the scope ends.
//!
//! Directories missing from the image on the way to a mount point are created by the runtime;
//! the walk treats them as empty directories holding only those mount points.
//!
//! Mount destinations are placed the way runc places them (`libcontainer/rootfs_linux.go`
//! resolves each destination inside the rootfs with securejoin before mounting): each one is
//! resolved in spec order inside the rootfs as it looks with the earlier mounts in place,
//! following the image's symlinks, with components that do not exist yet taken lexically (the
//! runtime creates them). A destination without symlinks is just its lexically cleaned form.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, fstat};
use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

/// Most symlinks one resolution follows before it fails with `ELOOP`
/// (include/linux/namei.h `MAXSYMLINKS`, checked in fs/namei.c `pick_link`).
pub const MAXSYMLINKS: u32 = 40;

/// Size of the kernel's path buffer, including its terminating NUL: an input path of this many
/// bytes or more fails with `ENAMETOOLONG` (fs/namei.c `getname_flags`).
pub const PATH_MAX: usize = 4096;

/// Longest single path component; longer names fail with `ENAMETOOLONG` in every file system's
/// lookup (e.g. fs/libfs.c `simple_lookup`, fs/ext4/namei.c `ext4_lookup`).
pub const NAME_MAX: usize = 255;

/// Most mounts placed by walking their destinations the way the runtime does; a spec with more
/// (engines write a few dozen; 50 MiB of config.json holds 700,000) has them placed lexically.
pub const MAX_PLACED_MOUNTS: usize = 1024;

/// Directory fds kept open near the top of the walk stack. Deeper entries drop their fd and are
/// reopened from their child with `..` (and checked by dev/ino) when the walk climbs back, so a
/// very deep walk never holds thousands of descriptors.
const FD_WINDOW: usize = 64;

/// Bound on the bytes of directory paths recorded in [`DirStep`]s. Only a walk pushed far below
/// `PATH_MAX` by chains of links reaches it; it then ends with [`Resolution::Error`].
const DIRS_BYTES_MAX: usize = 32 << 20;

/// Most directories (each holding an open `O_PATH` fd) one thread's directory cache keeps;
/// past it, new directories are walked as without the cache.
pub const DIR_CACHE_FDS: usize = 128;

/// Most entries (directories and symlinks) one thread's directory cache keeps.
pub const DIR_CACHE_ENTRIES: usize = 1024;

/// What a walk saw at one canonical container path.
#[derive(Clone)]
enum Dentry {
    /// A directory: its `O_PATH` fd (shared with the walks standing in it) and its `fstat`.
    Dir(Rc<OwnedFd>, FileStat),
    /// A symlink that is not on procfs: its target, as read.
    Link(Rc<[u8]>),
}

/// One thread's directory cache: the root it belongs to and what was seen under it.
#[derive(Default)]
struct DirCache {
    /// The rootfs last opened without mounts: its host path, fd and `fstat`.
    opened: Option<(PathBuf, Arc<OwnedFd>, FileStat)>,
    /// (dev, ino) of the root the entries are relative to.
    root: Option<(u64, u64)>,
    entries: HashMap<Vec<u8>, Dentry>,
    fds: usize,
}

thread_local! {
    /// The directory cache of a sweep (`None`: off, as for every single check).
    static DIR_CACHE: RefCell<Option<DirCache>> = const { RefCell::new(None) };
}

/// Run `f` with resolved directories remembered on this thread, for the roots opened without
/// mounts (a rootfs sweep): a later resolution through the same canonical directory or followed
/// symlink takes it from the cache. Every resolution ends as it would without the cache, as long
/// as the root does not change while `f` runs; one scope is meant for one root (a root of
/// another directory starts the cache over). Nested scopes share the outer one; the fds are
/// closed when the outermost scope ends.
pub fn with_dir_cache<T>(f: impl FnOnce() -> T) -> T {
    struct Off(bool);
    impl Drop for Off {
        fn drop(&mut self) {
            if self.0 {
                let _ = DIR_CACHE.try_with(|c| c.borrow_mut().take());
            }
        }
    }
    let outer = DIR_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            false
        } else {
            *c = Some(DirCache::default());
            true
        }
    });
    let _off = Off(outer);
    f()
}

/// Whether this thread's cache is on, made to belong to the root `id` (dropping what it held
/// for another root).
fn cache_admits(id: (u64, u64)) -> bool {
    DIR_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let Some(cache) = c.as_mut() else {
            return false;
        };
        if cache.root != Some(id) {
            *cache = DirCache {
                opened: cache.opened.take(),
                root: Some(id),
                ..DirCache::default()
            };
        }
        true
    })
}

/// (entries, fds) of this thread's directory cache, `None` when it is off.
#[cfg(test)]
fn dir_cache_stats() -> Option<(usize, usize)> {
    DIR_CACHE.with(|c| c.borrow().as_ref().map(|c| (c.entries.len(), c.fds)))
}

fn cache_get(path: &[u8]) -> Option<Dentry> {
    DIR_CACHE.with(|c| c.borrow().as_ref()?.entries.get(path).cloned())
}

/// Remembers `entry` at `path` unless the cache is full; false when it was not kept.
fn cache_put(path: &[u8], entry: Dentry) -> bool {
    DIR_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let Some(cache) = c.as_mut() else {
            return false;
        };
        let fd = matches!(entry, Dentry::Dir(..));
        if cache.entries.len() >= DIR_CACHE_ENTRIES
            || (fd && cache.fds >= DIR_CACHE_FDS)
            || cache.entries.contains_key(path)
        {
            return false;
        }
        cache.entries.insert(path.to_vec(), entry);
        if fd {
            cache.fds += 1;
        }
        true
    })
}

/// What the runtime mounts at a destination, as far as resolution is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount: the walk continues in this host path (absolute; relative spec sources must
    /// already be joined to the bundle by the caller).
    Bind {
        /// Host path of the bind source, opened following host symlinks.
        source: PathBuf,
    },
    /// Any other file system (tmpfs, proc, sysfs, devpts, mqueue, cgroup, overlay, unknown):
    /// its content cannot be seen before the container starts.
    Opaque {
        /// The spec's `type` (may be empty).
        fstype: String,
    },
}

/// One entry of the spec's `mounts`, reduced to what resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute container path the mount is placed at (cleaned and placed by [`Root::open`];
    /// a relative destination is taken from `/`).
    pub destination: Vec<u8>,
    /// Bind source or opaque file system.
    pub kind: MountKind,
    /// The spec's mount options, as written.
    pub options: Vec<String>,
    /// Position in the spec's `mounts` array; later mounts shadow earlier ones.
    pub index: usize,
}

impl Mount {
    /// Build a mount from the spec's fields: it is a bind mount when `fstype` is `bind` or the
    /// options hold `bind` or `rbind`. A bind mount without a source is kept as opaque, since
    /// nothing can be seen through it.
    pub fn from_spec(
        index: usize,
        destination: &[u8],
        fstype: Option<&str>,
        source: Option<&Path>,
        options: Vec<String>,
    ) -> Mount {
        let bind = fstype == Some("bind") || options.iter().any(|o| o == "bind" || o == "rbind");
        let kind = match (bind, source) {
            (true, Some(source)) => MountKind::Bind {
                source: source.to_path_buf(),
            },
            (true, None) => MountKind::Opaque {
                fstype: fstype.unwrap_or("bind").to_owned(),
            },
            (false, _) => MountKind::Opaque {
                fstype: fstype.unwrap_or_default().to_owned(),
            },
        };
        Mount {
            destination: destination.to_vec(),
            kind,
            options,
            index,
        }
    }

    /// Whether the mount is `noexec`: the last of `noexec`/`exec` in the options wins, as in
    /// runc's option parsing.
    #[must_use]
    pub fn noexec(&self) -> bool {
        let mut noexec = false;
        for option in &self.options {
            match option.as_str() {
                "noexec" => noexec = true,
                "exec" => noexec = false,
                _ => {}
            }
        }
        noexec
    }

    /// Whether the walk can continue through this mount (it is a bind mount).
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
    }
}

/// An opened container root plus the spec's mounts: the handle every container path goes
/// through.
#[derive(Debug)]
pub struct Root {
    /// Shared with this thread's directory cache when the root was opened inside its scope.
    fd: Arc<OwnedFd>,
    mounts: Vec<Mount>,
    /// Placed (canonical) destination of each mount, same order as `mounts`.
    points: Vec<Vec<u8>>,
    /// `fstat` of `fd`, taken by the first walk that needs it.
    stat: OnceLock<FileStat>,
}

/// A symlink followed during a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Container path of the link itself.
    pub at: Vec<u8>,
    /// The link's target, as stored.
    pub target: Vec<u8>,
}

/// One directory searched during a resolution (search permission is needed on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirStep {
    /// Container path of the directory.
    pub path: Vec<u8>,
    /// Its full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner uid as seen from the host.
    pub uid: u32,
    /// Owner gid as seen from the host.
    pub gid: u32,
    /// [`Mount::index`] of the mount the directory lies on (`None` = rootfs).
    pub mount: Option<usize>,
}

/// A path that resolved to an object.
#[derive(Debug)]
pub struct Resolved {
    /// Canonical container path of the final object.
    pub path: Vec<u8>,
    /// `O_PATH` fd of the final object (the link itself when the final link was not followed).
    pub fd: OwnedFd,
    /// `fstat` of `fd`.
    pub stat: libc::stat,
    /// Symlinks followed, in order.
    pub links: Vec<Link>,
    /// Every directory searched, in order, including those passed while resolving links.
    /// Directories inside an opaque mount are not listed (they cannot be seen).
    pub dirs: Vec<DirStep>,
    /// [`Mount::index`] of the mount the final object lies on (`None` = rootfs).
    pub mount: Option<usize>,
}

/// Outcome of [`Root::resolve`].
#[derive(Debug)]
pub enum Resolution {
    /// The path names an object.
    Found(Resolved),
    /// A component does not exist (`ENOENT`).
    NotFound {
        /// First missing container path (empty for an empty input path).
        at: Vec<u8>,
        /// Symlinks followed before it.
        links: Vec<Link>,
        /// Directories searched before it.
        dirs: Vec<DirStep>,
    },
    /// A non-directory was used as a directory (`ENOTDIR`).
    NotDirectory {
        /// Container path of the non-directory.
        at: Vec<u8>,
        /// Symlinks followed before it.
        links: Vec<Link>,
    },
    /// More than [`MAXSYMLINKS`] links (`ELOOP`).
    Loop {
        /// Container path of the link that was one too many.
        at: Vec<u8>,
        /// The links followed.
        links: Vec<Link>,
    },
    /// The input is `PATH_MAX` bytes or longer, or a component is longer than `NAME_MAX`
    /// (`ENAMETOOLONG`).
    NameTooLong,
    /// The path goes into a mount whose content cannot be seen before the container starts.
    /// Also returned for a directory that does not exist in the image but that the runtime
    /// creates as the way to a mount point (`mount` is then the mount below it): it exists in
    /// the container, but there is no fd for it.
    Unverifiable {
        /// First container path that could not be looked at.
        at: Vec<u8>,
        /// [`Mount::index`] of that mount.
        mount: usize,
        /// Symlinks followed before it.
        links: Vec<Link>,
    },
    /// The host refused a look-up (`EACCES`, a missing bind source, a nul byte in the input...).
    Error {
        /// Container path being looked up.
        at: Vec<u8>,
        /// What the host said.
        error: io::Error,
    },
}

impl Resolution {
    /// The errno the kernel's path walk would fail with, when the outcome is a definite
    /// failure (`ENOENT`, `ENOTDIR`, `ELOOP`, `ENAMETOOLONG`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Resolution::NotFound { .. } => Some(libc::ENOENT),
            Resolution::NotDirectory { .. } => Some(libc::ENOTDIR),
            Resolution::Loop { .. } => Some(libc::ELOOP),
            Resolution::NameTooLong => Some(libc::ENAMETOOLONG),
            _ => None,
        }
    }
}

impl Root {
    /// Open the rootfs directory (following host symlinks: the engine wrote this path) and
    /// place the spec's mounts. Mounts are kept sorted by [`Mount::index`].
    ///
    /// # Errors
    ///
    /// The rootfs cannot be opened as a directory.
    pub fn open(rootfs: &Path, mut mounts: Vec<Mount>) -> io::Result<Root> {
        if mounts.is_empty() {
            // A sweep opens the same rootfs for every program: inside the directory cache's
            // scope, the first open serves them all.
            let reopened = DIR_CACHE.with(|c| {
                let c = c.borrow();
                let (path, fd, stat) = c.as_ref()?.opened.as_ref()?;
                (path.as_path() == rootfs).then(|| (Arc::clone(fd), *stat))
            });
            if let Some((fd, stat)) = reopened {
                return Ok(Root {
                    fd,
                    mounts,
                    points: Vec::new(),
                    stat: OnceLock::from(stat),
                });
            }
        }
        let fd = open(
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            let e = io::Error::from(e);
            io::Error::new(
                e.kind(),
                format!("cannot open rootfs {}: {e}", rootfs.display()),
            )
        })?;
        let fd = Arc::new(fd);
        if mounts.is_empty()
            && DIR_CACHE.with(|c| c.borrow().is_some())
            && let Ok(stat) = fstat(&*fd)
        {
            DIR_CACHE.with(|c| {
                if let Some(cache) = c.borrow_mut().as_mut() {
                    cache.opened = Some((rootfs.to_path_buf(), Arc::clone(&fd), stat));
                }
            });
            return Ok(Root {
                fd,
                mounts,
                points: Vec::new(),
                stat: OnceLock::from(stat),
            });
        }
        mounts.sort_by_key(|m| m.index);
        let mut points: Vec<Vec<u8>> = Vec::with_capacity(mounts.len());
        let stat = OnceLock::new();
        if mounts.len() > MAX_PLACED_MOUNTS {
            // Placing a mount walks past every earlier one: beyond a spec any engine writes,
            // take destinations lexically (exact unless they run through the image's links).
            points.extend(mounts.iter().map(|m| clean(&m.destination)));
            return Ok(Root {
                fd,
                mounts,
                points,
                stat,
            });
        }
        for rank in 0..mounts.len() {
            let ctx = Ctx {
                root: fd.as_fd(),
                root_stat: &stat,
                mounts: &mounts,
                points: &points,
            };
            let point = place(ctx, rank);
            points.push(point);
        }
        Ok(Root {
            fd,
            mounts,
            points,
            stat,
        })
    }

    /// The spec's mounts, sorted by [`Mount::index`].
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The mount with this [`Mount::index`].
    pub fn mount(&self, index: usize) -> Option<&Mount> {
        self.mounts.iter().rev().find(|m| m.index == index)
    }

    /// The container path a mount is actually placed at: its destination cleaned, with the
    /// image's symlinks (and earlier mounts) followed the way the runtime follows them.
    pub fn mount_point(&self, index: usize) -> Option<&[u8]> {
        let rank = self.mounts.iter().rposition(|m| m.index == index)?;
        self.points.get(rank).map(Vec::as_slice)
    }

    /// `O_PATH` fd of the rootfs directory.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `fstat` of the rootfs directory, taken once per `Root` (by this or the first walk).
    ///
    /// # Errors
    ///
    /// The host's `fstat` failed.
    pub fn stat(&self) -> io::Result<FileStat> {
        if let Some(stat) = self.stat.get() {
            return Ok(*stat);
        }
        let stat = fstat(&self.fd)?;
        let _ = self.stat.set(stat);
        Ok(stat)
    }

    /// Resolve a container path (`/usr/bin/app`; a relative path is taken from `/`), following
    /// the final symlink only when `follow_final` is true. A trailing `/` makes the final
    /// component a directory that is always followed, as in the kernel.
    #[must_use]
    pub fn resolve(&self, path: &[u8], follow_final: bool) -> Resolution {
        if path.len() >= PATH_MAX {
            return Resolution::NameTooLong;
        }
        if path.contains(&0) {
            return Resolution::Error {
                at: path.to_vec(),
                error: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "container path {:?} contains a nul byte",
                        String::from_utf8_lossy(path)
                    ),
                ),
            };
        }
        if path.is_empty() {
            // fs/namei.c getname_flags: an empty name is ENOENT.
            return Resolution::NotFound {
                at: Vec::new(),
                links: Vec::new(),
                dirs: Vec::new(),
            };
        }
        let ctx = self.ctx();
        let mut walk = match Walk::new(ctx, true) {
            Ok(walk) => walk,
            Err(stop) => return stop.into_resolution(ctx, Vec::new(), Vec::new()),
        };
        // Only a root without mounts: every canonical path then names one object of the root.
        walk.cached = ctx.points.is_empty()
            && matches!(walk.root.node, Node::Root)
            && walk
                .root
                .stat
                .is_some_and(|s| cache_admits((s.st_dev, s.st_ino)));
        walk.push_components(path);
        let end = walk.run(follow_final);
        walk.finish(end)
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            root: self.fd.as_fd(),
            root_stat: &self.stat,
            mounts: &self.mounts,
            points: &self.points,
        }
    }
}

/// Open the resolved regular file for reading without blocking and without following links:
/// reopen the `O_PATH` fd through `/proc/self/fd/N` with
/// `O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC` and check it is still the same regular file
/// (dev and inode). Anything but a regular file is refused before anything is opened.
///
/// # Errors
///
/// The object is not a regular file, it changed since it was resolved, or the host refused
/// to open it.
pub fn open_for_read(r: &Resolved) -> io::Result<File> {
    let shown = || String::from_utf8_lossy(&r.path).into_owned();
    let now = fstat(&r.fd)?;
    if !is_type(now.st_mode, libc::S_IFREG) || !same_inode(&now, &r.stat) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("container path {:?} is not a regular file", shown()),
        ));
    }
    let proc_path = format!("/proc/self/fd/{}", r.fd.as_raw_fd());
    let fd = open(
        proc_path.as_str(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(
            e.kind(),
            format!("cannot open container path {:?}: {e}", shown()),
        )
    })?;
    let opened = fstat(&fd)?;
    if !is_type(opened.st_mode, libc::S_IFREG) || !same_inode(&opened, &r.stat) {
        return Err(io::Error::other(format!(
            "container path {:?} changed while it was opened",
            shown()
        )));
    }
    Ok(File::from(fd))
}

/// Lexically clean an absolute container path: collapse `//` and `.`, apply `..` (never above
/// `/`), drop a trailing `/`. A relative path is taken from `/`.
#[must_use]
pub fn clean(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len().saturating_add(1));
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            name => {
                out.push(b'/');
                out.extend_from_slice(name);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The kernel's own rooted resolution, for confirming this module in tests: `openat2` with
/// `RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS` and `O_PATH`, following the final symlink.
/// It knows nothing of the spec's mounts.
///
/// # Errors
///
/// Whatever `openat2` returns (`ENOENT`, `ENOTDIR`, `ELOOP`, `ENOSYS` on old kernels...).
pub fn resolve_openat2(rootfs_fd: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    openat2_in_root(rootfs_fd, path, OFlag::O_PATH | OFlag::O_CLOEXEC)
}

/// `openat2(RESOLVE_IN_ROOT)`, retried a few times on `EAGAIN`: the kernel returns it when a
/// rename or mount anywhere on the system raced with a `..` step (fs/namei.c `follow_dotdot`
/// with `LOOKUP_IS_SCOPED`).
fn openat2_in_root(rootfs_fd: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(rootfs_fd, path, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            other => return Ok(other?),
        }
    }
}

fn is_type(mode: u32, ty: u32) -> bool {
    mode & libc::S_IFMT == ty
}

fn same_inode(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// Split a path into its components, in walk order. A trailing `/` after a name adds a `.`,
/// which makes the name before it a directory that is followed (fs/namei.c `lookup_last`
/// sets `LOOKUP_FOLLOW | LOOKUP_DIRECTORY` for a trailing slash).
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if !out.is_empty() && path.last() == Some(&b'/') {
        out.push(b".".to_vec());
    }
    out
}

/// What a walk sees: the root fd, the mounts, and the placed destinations of the mounts that
/// apply (`points.len()` of them: placing mount `r` sees only the mounts before it).
#[derive(Clone, Copy)]
struct Ctx<'a> {
    root: BorrowedFd<'a>,
    /// `fstat` of `root`, once a walk took it.
    root_stat: &'a OnceLock<FileStat>,
    mounts: &'a [Mount],
    points: &'a [Vec<u8>],
}

impl Ctx<'_> {
    /// The mount placed exactly at `path` that is visible from a directory on mount `above`:
    /// only mounts made after `above` can sit on top of it; the latest one wins.
    fn mount_at(&self, path: &[u8], above: Option<usize>) -> Option<usize> {
        let start = above.map_or(0, |r| r.saturating_add(1));
        (start..self.points.len())
            .rev()
            .find(|&r| self.points.get(r).is_some_and(|p| p.as_slice() == path))
    }

    /// The first mount made after `above` that is placed strictly below `path`: the runtime
    /// creates the directories leading to a mount point when they are missing (inside an
    /// opaque mount too), so they can be walked.
    fn mount_below(&self, path: &[u8], above: Option<usize>) -> Option<usize> {
        let start = above.map_or(0, |r| r.saturating_add(1));
        (start..self.points.len()).find(|&r| {
            self.points.get(r).is_some_and(|p| {
                p.len() > path.len() && p.starts_with(path) && p.get(path.len()) == Some(&b'/')
            })
        })
    }

    fn index(&self, rank: usize) -> usize {
        self.mounts.get(rank).map_or(rank, |m| m.index)
    }
}

/// Place mount `rank`: resolve its destination the way the runtime does before mounting it
/// (inside the rootfs, following the image's links, with the earlier mounts in place; missing
/// components are created by the runtime, so they are taken lexically). If the runtime would
/// fail there, the lexically cleaned destination is kept.
fn place(ctx: Ctx<'_>, rank: usize) -> Vec<u8> {
    let Some(mount) = ctx.mounts.get(rank) else {
        return b"/".to_vec();
    };
    let dest = clean(&mount.destination);
    let Ok(mut walk) = Walk::new(ctx, false) else {
        return dest;
    };
    walk.push_components(&dest);
    match walk.run(true) {
        Ok(End::Top) => walk.display_path(),
        Ok(End::Object { path, .. }) => path,
        Err(Stop::NotFound(at) | Stop::Unverifiable(at, _)) => {
            let mut rest = at;
            for comp in walk.pending.iter().rev() {
                rest.push(b'/');
                rest.extend_from_slice(comp);
            }
            clean(&rest)
        }
        Err(_) => dest,
    }
}

enum Node {
    /// The container root itself (`Ctx::root`).
    Root,
    /// An open `O_PATH` directory fd.
    Open(OwnedFd),
    /// An `O_PATH` directory fd held by the directory cache.
    Shared(Rc<OwnedFd>),
    /// fd dropped to bound descriptor use; reopened with `..` from its child when needed.
    Closed,
    /// A directory inside an opaque mount (created there by the runtime): no fd, no stat.
    Virtual,
    /// A missing directory the runtime creates on the way to a mount point: empty but for the
    /// mount points below it; no fd, no stat.
    Created,
}

struct Entry {
    /// Length of `Walk::path` before this entry's `/name`.
    prefix: usize,
    node: Node,
    stat: Option<FileStat>,
    /// Rank of the mount the directory lies on (`None` = rootfs).
    rank: Option<usize>,
    /// The root of a mount (or the container root): its fd and its parent's fd are kept.
    mount_root: bool,
}

enum Stop {
    NotFound(Vec<u8>),
    NotDirectory(Vec<u8>),
    Loop(Vec<u8>),
    NameTooLong,
    Unverifiable(Vec<u8>, usize),
    Error(Vec<u8>, io::Error),
}

impl Stop {
    fn into_resolution(self, ctx: Ctx<'_>, links: Vec<Link>, dirs: Vec<DirStep>) -> Resolution {
        match self {
            Stop::NotFound(at) => Resolution::NotFound { at, links, dirs },
            Stop::NotDirectory(at) => Resolution::NotDirectory { at, links },
            Stop::Loop(at) => Resolution::Loop { at, links },
            Stop::NameTooLong => Resolution::NameTooLong,
            Stop::Unverifiable(at, rank) => Resolution::Unverifiable {
                at,
                mount: ctx.index(rank),
                links,
            },
            Stop::Error(at, error) => Resolution::Error { at, error },
        }
    }
}

enum End {
    /// The final object is the directory on top of the stack.
    Top,
    /// The final object is a non-directory (or an unfollowed link).
    Object {
        path: Vec<u8>,
        fd: OwnedFd,
        stat: FileStat,
        rank: Option<usize>,
    },
}

/// One resolution in progress: the stack of directories from the root down to the current
/// one (`..` pops it), the components still to walk (last to walk first), and the evidence.
struct Walk<'a> {
    ctx: Ctx<'a>,
    root: Entry,
    stack: Vec<Entry>,
    /// Container path of the top of the stack; empty for the root.
    path: Vec<u8>,
    pending: Vec<Vec<u8>>,
    links: Vec<Link>,
    dirs: Vec<DirStep>,
    dirs_bytes: usize,
    record: bool,
    followed: u32,
    /// Steps go through this thread's directory cache.
    cached: bool,
}

/// Where the target of a symlink comes from.
enum LinkText<'f> {
    /// Read it from the link's `O_PATH` fd.
    Fd(&'f OwnedFd),
    /// The directory cache had it.
    Known(Rc<[u8]>),
}

fn host_error(at: &[u8], e: Errno) -> Stop {
    Stop::Error(at.to_vec(), io::Error::from(e))
}

impl<'a> Walk<'a> {
    fn new(ctx: Ctx<'a>, record: bool) -> Result<Walk<'a>, Stop> {
        let root = match ctx.mount_at(b"/", None) {
            None => {
                let stat = match ctx.root_stat.get() {
                    Some(stat) => *stat,
                    None => {
                        let stat = fstat(ctx.root).map_err(|e| host_error(b"/", e))?;
                        let _ = ctx.root_stat.set(stat);
                        stat
                    }
                };
                Entry {
                    prefix: 0,
                    node: Node::Root,
                    stat: Some(stat),
                    rank: None,
                    mount_root: true,
                }
            }
            Some(rank) => match ctx.mounts.get(rank).map(|m| &m.kind) {
                Some(MountKind::Bind { source }) => {
                    let (fd, stat) =
                        open_source(source).map_err(|e| Stop::Error(b"/".to_vec(), e))?;
                    if !is_type(stat.st_mode, libc::S_IFDIR) {
                        return Err(host_error(b"/", Errno::ENOTDIR));
                    }
                    Entry {
                        prefix: 0,
                        node: Node::Open(fd),
                        stat: Some(stat),
                        rank: Some(rank),
                        mount_root: true,
                    }
                }
                _ => Entry {
                    prefix: 0,
                    node: Node::Virtual,
                    stat: None,
                    rank: Some(rank),
                    mount_root: true,
                },
            },
        };
        Ok(Walk {
            ctx,
            root,
            stack: Vec::new(),
            path: Vec::new(),
            pending: Vec::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            dirs_bytes: 0,
            record,
            followed: 0,
            cached: false,
        })
    }

    fn push_components(&mut self, path: &[u8]) {
        self.pending.extend(components(path).into_iter().rev());
    }

    fn top(&self) -> &Entry {
        self.stack.last().unwrap_or(&self.root)
    }

    fn display_path(&self) -> Vec<u8> {
        if self.path.is_empty() {
            b"/".to_vec()
        } else {
            self.path.clone()
        }
    }

    fn run(&mut self, follow_final: bool) -> Result<End, Stop> {
        while let Some(name) = self.pending.pop() {
            let last = self.pending.is_empty();
            // fs/namei.c link_path_walk: may_lookup() on the current directory before every
            // component, `.` and `..` included.
            self.record_dir()?;
            match name.as_slice() {
                b"." => {}
                b".." => self.dotdot()?,
                _ => {
                    if let Some(end) = self.step(&name, last, follow_final)? {
                        return Ok(end);
                    }
                }
            }
        }
        Ok(End::Top)
    }

    fn record_dir(&mut self) -> Result<(), Stop> {
        if !self.record {
            return Ok(());
        }
        let top = self.top();
        let (Some(stat), rank) = (top.stat, top.rank) else {
            return Ok(());
        };
        let path = self.display_path();
        self.dirs_bytes = self.dirs_bytes.saturating_add(path.len());
        if self.dirs_bytes > DIRS_BYTES_MAX {
            return Err(Stop::Error(
                path,
                io::Error::other("path resolution too deep to record"),
            ));
        }
        self.dirs.push(DirStep {
            path,
            mode: stat.st_mode,
            uid: stat.st_uid,
            gid: stat.st_gid,
            mount: rank.map(|r| self.ctx.index(r)),
        });
        Ok(())
    }

    /// fs/namei.c follow_dotdot: `..` at the root stays at the root; `..` at the root of a
    /// mount goes to the parent of its mount point, which is the entry below on the stack.
    fn dotdot(&mut self) -> Result<(), Stop> {
        let Some(child) = self.stack.pop() else {
            return Ok(());
        };
        self.path.truncate(child.prefix);
        let Some(parent) = self.stack.last_mut() else {
            return Ok(());
        };
        if !matches!(parent.node, Node::Closed) {
            return Ok(());
        }
        // The parent's fd was dropped. Its child is then an ordinary directory on the same
        // tree (mount roots keep their parent's fd), so the host's `..` of the child is the
        // parent; the dev/inode check makes sure of it.
        let shown = if self.path.is_empty() {
            b"/".to_vec()
        } else {
            self.path.clone()
        };
        let child_fd = match &child.node {
            Node::Open(fd) => fd.as_fd(),
            Node::Shared(fd) => fd.as_fd(),
            _ => {
                return Err(Stop::Error(
                    shown,
                    io::Error::other("directory fd missing during resolution"),
                ));
            }
        };
        let fd = openat(
            child_fd,
            "..",
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| host_error(&shown, e))?;
        let stat = fstat(&fd).map_err(|e| host_error(&shown, e))?;
        if !parent.stat.is_some_and(|s| same_inode(&s, &stat)) {
            return Err(Stop::Error(
                shown,
                io::Error::other("directory changed during resolution"),
            ));
        }
        parent.node = Node::Open(fd);
        Ok(())
    }

    fn push(&mut self, entry: Entry) {
        self.stack.push(entry);
        let n = self.stack.len();
        if n <= FD_WINDOW {
            return;
        }
        let idx = n - 1 - FD_WINDOW;
        // A directory keeps its fd when its child cannot give it back through `..`: a mount
        // root (its host `..` is outside the mount) or a directory without an fd.
        let child_keeps_parent = self
            .stack
            .get(idx + 1)
            .is_none_or(|e| e.mount_root || !matches!(e.node, Node::Open(_) | Node::Shared(_)));
        if child_keeps_parent {
            return;
        }
        if let Some(e) = self.stack.get_mut(idx)
            && !e.mount_root
            && matches!(e.node, Node::Open(_) | Node::Shared(_))
        {
            e.node = Node::Closed;
        }
    }

    fn push_synthetic(&mut self, prefix: usize, node: Node, rank: Option<usize>) {
        self.push(Entry {
            prefix,
            node,
            stat: None,
            rank,
            mount_root: false,
        });
    }

    /// Walk one ordinary name (fs/namei.c walk_component + step_into).
    fn step(&mut self, name: &[u8], last: bool, follow_final: bool) -> Result<Option<End>, Stop> {
        if name.len() > NAME_MAX {
            return Err(Stop::NameTooLong);
        }
        let prefix = self.path.len();
        self.path.push(b'/');
        self.path.extend_from_slice(name);
        let parent_rank = self.top().rank;

        if let Some(rank) = self.ctx.mount_at(&self.path, parent_rank) {
            return self.enter_mount(rank, prefix, last);
        }

        let dirfd = match &self.top().node {
            Node::Root => self.ctx.root,
            Node::Open(fd) => fd.as_fd(),
            Node::Shared(fd) => fd.as_fd(),
            Node::Virtual => {
                if self.ctx.mount_below(&self.path, parent_rank).is_some() {
                    self.push_synthetic(prefix, Node::Virtual, parent_rank);
                    return Ok(None);
                }
                let rank = parent_rank.unwrap_or_default();
                return Err(Stop::Unverifiable(self.path.clone(), rank));
            }
            Node::Created => {
                if self.ctx.mount_below(&self.path, parent_rank).is_some() {
                    self.push_synthetic(prefix, Node::Created, parent_rank);
                    return Ok(None);
                }
                return Err(Stop::NotFound(self.path.clone()));
            }
            Node::Closed => {
                return Err(Stop::Error(
                    self.path.clone(),
                    io::Error::other("directory fd missing during resolution"),
                ));
            }
        };
        // The cache answers only for what the walk goes on from (a directory, a followed link);
        // the final object is always opened here.
        match self.cached.then(|| cache_get(&self.path)).flatten() {
            Some(Dentry::Dir(fd, stat)) => {
                self.push(Entry {
                    prefix,
                    node: Node::Shared(fd),
                    stat: Some(stat),
                    rank: parent_rank,
                    mount_root: false,
                });
                return Ok(None);
            }
            Some(Dentry::Link(target)) if !last || follow_final => {
                self.follow(LinkText::Known(target), prefix, parent_rank)?;
                return Ok(None);
            }
            _ => {}
        }
        let fd = match openat(
            dirfd,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if self.ctx.mount_below(&self.path, parent_rank).is_some() => {
                self.push_synthetic(prefix, Node::Created, parent_rank);
                return Ok(None);
            }
            Err(Errno::ENOENT) => return Err(Stop::NotFound(self.path.clone())),
            Err(Errno::ENAMETOOLONG) => return Err(Stop::NameTooLong),
            Err(e) => return Err(host_error(&self.path, e)),
        };
        let stat = fstat(&fd).map_err(|e| host_error(&self.path, e))?;

        if is_type(stat.st_mode, libc::S_IFLNK) && (!last || follow_final) {
            self.follow(LinkText::Fd(&fd), prefix, parent_rank)?;
            return Ok(None);
        }
        if is_type(stat.st_mode, libc::S_IFDIR) {
            let node = if self.cached {
                let fd = Rc::new(fd);
                cache_put(&self.path, Dentry::Dir(Rc::clone(&fd), stat));
                Node::Shared(fd)
            } else {
                Node::Open(fd)
            };
            self.push(Entry {
                prefix,
                node,
                stat: Some(stat),
                rank: parent_rank,
                mount_root: false,
            });
            return Ok(None);
        }
        if !last {
            // fs/namei.c link_path_walk: a non-directory in the middle is ENOTDIR.
            return Err(Stop::NotDirectory(self.path.clone()));
        }
        let path = self.path.clone();
        self.path.truncate(prefix);
        Ok(Some(End::Object {
            path,
            fd,
            stat,
            rank: parent_rank,
        }))
    }

    /// Cross into mount `rank` placed at the path just walked.
    fn enter_mount(&mut self, rank: usize, prefix: usize, last: bool) -> Result<Option<End>, Stop> {
        let source = match self.ctx.mounts.get(rank).map(|m| &m.kind) {
            Some(MountKind::Bind { source }) => source,
            _ => {
                self.push(Entry {
                    prefix,
                    node: Node::Virtual,
                    stat: None,
                    rank: Some(rank),
                    mount_root: true,
                });
                return Ok(None);
            }
        };
        let (fd, stat) = open_source(source).map_err(|e| Stop::Error(self.path.clone(), e))?;
        if is_type(stat.st_mode, libc::S_IFDIR) {
            self.push(Entry {
                prefix,
                node: Node::Open(fd),
                stat: Some(stat),
                rank: Some(rank),
                mount_root: true,
            });
            return Ok(None);
        }
        if !last {
            return Err(Stop::NotDirectory(self.path.clone()));
        }
        let path = self.path.clone();
        self.path.truncate(prefix);
        Ok(Some(End::Object {
            path,
            fd,
            stat,
            rank: Some(rank),
        }))
    }

    /// Follow the symlink at the path just walked (fs/namei.c pick_link): count it, read it
    /// (or take its target from the directory cache), queue its components, and restart at the
    /// container root for an absolute target (`nd_jump_root`, which under the runtime's
    /// pivot_root is the container root).
    fn follow(
        &mut self,
        link: LinkText<'_>,
        prefix: usize,
        rank: Option<usize>,
    ) -> Result<(), Stop> {
        self.followed = self.followed.saturating_add(1);
        if self.followed > MAXSYMLINKS {
            return Err(Stop::Loop(self.path.clone()));
        }
        let target: Vec<u8> = match link {
            LinkText::Known(target) => target.to_vec(),
            LinkText::Fd(fd) => {
                // procfs links (/proc/<pid>/root, /proc/<pid>/fd/N, ...) are magic: the kernel
                // jumps to the object they stand for, not to their text, so their target
                // cannot be predicted. They are never cached.
                if fstatfs(fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC) {
                    return Err(match rank {
                        Some(rank) => Stop::Unverifiable(self.path.clone(), rank),
                        None => Stop::Error(
                            self.path.clone(),
                            io::Error::other("procfs link inside the rootfs"),
                        ),
                    });
                }
                let target = readlinkat(fd, "")
                    .map_err(|e| host_error(&self.path, e))?
                    .into_vec();
                if self.cached {
                    cache_put(&self.path, Dentry::Link(Rc::from(target.as_slice())));
                }
                target
            }
        };
        if target.len() >= PATH_MAX {
            return Err(Stop::NameTooLong);
        }
        if target.is_empty() || target.contains(&0) {
            return Err(Stop::NotFound(self.path.clone()));
        }
        let at = self.path.clone();
        self.path.truncate(prefix);
        self.push_components(&target);
        if target.first() == Some(&b'/') {
            self.stack.clear();
            self.path.clear();
        }
        self.links.push(Link { at, target });
        Ok(())
    }

    fn finish(mut self, end: Result<End, Stop>) -> Resolution {
        let ctx = self.ctx;
        match end {
            Ok(End::Object {
                path,
                fd,
                stat,
                rank,
            }) => Resolution::Found(Resolved {
                path,
                fd,
                stat,
                links: self.links,
                dirs: self.dirs,
                mount: rank.map(|r| ctx.index(r)),
            }),
            Ok(End::Top) => {
                let path = self.display_path();
                let top = self.stack.pop().unwrap_or(self.root);
                let fd = match top.node {
                    Node::Open(fd) => fd,
                    Node::Shared(fd) => match fd.try_clone() {
                        Ok(fd) => fd,
                        Err(error) => return Resolution::Error { at: path, error },
                    },
                    Node::Root => match ctx.root.try_clone_to_owned() {
                        Ok(fd) => fd,
                        Err(error) => return Resolution::Error { at: path, error },
                    },
                    Node::Virtual => {
                        return Resolution::Unverifiable {
                            at: path,
                            mount: ctx.index(top.rank.unwrap_or_default()),
                            links: self.links,
                        };
                    }
                    Node::Created => {
                        // An empty directory the runtime makes for the mount below it.
                        let below = ctx.mount_below(&path, top.rank).unwrap_or_default();
                        return Resolution::Unverifiable {
                            at: path,
                            mount: ctx.index(below),
                            links: self.links,
                        };
                    }
                    Node::Closed => {
                        return Resolution::Error {
                            at: path,
                            error: io::Error::other("directory fd missing during resolution"),
                        };
                    }
                };
                let Some(stat) = top.stat else {
                    return Resolution::Error {
                        at: path,
                        error: io::Error::other("directory stat missing during resolution"),
                    };
                };
                Resolution::Found(Resolved {
                    path,
                    fd,
                    stat,
                    links: self.links,
                    dirs: self.dirs,
                    mount: top.rank.map(|r| ctx.index(r)),
                })
            }
            Err(stop) => stop.into_resolution(ctx, self.links, self.dirs),
        }
    }
}

/// Open a bind source on the host. The engine wrote this path, so host symlinks are followed,
/// as mount(2) follows them.
fn open_source(source: &Path) -> io::Result<(OwnedFd, FileStat)> {
    if !source.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bind source {} is not absolute", source.display()),
        ));
    }
    let fd = open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(
            e.kind(),
            format!("cannot open bind source {}: {e}", source.display()),
        )
    })?;
    let stat = fstat(&fd)?;
    Ok((fd, stat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::fs;
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::sync::mpsc;
    use std::time::Duration;

    use nix::sys::stat::{SFlag, makedev, mkdirat, mknod};
    use nix::unistd::{mkfifo, symlinkat};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A temp dir holding `rootfs/` and, outside it, a canary file no resolution may reach.
    struct Tree {
        _tmp: tempfile::TempDir,
        base: PathBuf,
        root: PathBuf,
        canary: PathBuf,
    }

    impl Tree {
        fn new() -> Tree {
            let tmp = tempfile::tempdir().unwrap();
            let base = tmp.path().to_path_buf();
            let root = base.join("rootfs");
            fs::create_dir(&root).unwrap();
            let canary = base.join("canary");
            fs::write(&canary, "CANARY").unwrap();
            // Same names as inside the root, one level up: a `..` that escaped would find them.
            fs::create_dir_all(base.join("etc")).unwrap();
            fs::write(base.join("etc/hostname"), "HOST").unwrap();
            let t = Tree {
                _tmp: tmp,
                base,
                root,
                canary,
            };
            t.file("etc/hostname", "ROOTFS");
            t
        }
        fn host(&self, p: &str) -> PathBuf {
            self.base.join(p)
        }
        fn at(&self, p: &str) -> PathBuf {
            self.root.join(p)
        }
        fn dir(&self, p: &str) {
            fs::create_dir_all(self.at(p)).unwrap();
        }
        fn file(&self, p: &str, content: &str) {
            let path = self.at(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        fn link(&self, p: &str, target: &str) {
            let path = self.at(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(target, path).unwrap();
        }
        fn open(&self, mounts: Vec<Mount>) -> Root {
            Root::open(&self.root, mounts).unwrap()
        }
    }

    fn id_of(path: &Path) -> (u64, u64) {
        let m = fs::symlink_metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    fn id(r: &Resolved) -> (u64, u64) {
        (r.stat.st_dev, r.stat.st_ino)
    }

    fn found(r: Resolution) -> Resolved {
        match r {
            Resolution::Found(r) => r,
            other => panic!("expected Found, got {other:?}"),
        }
    }

    fn not_found_at(r: &Resolution) -> Vec<u8> {
        match r {
            Resolution::NotFound { at, .. } => at.clone(),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    fn bind(index: usize, dest: &str, source: &Path) -> Mount {
        Mount {
            destination: dest.as_bytes().to_vec(),
            kind: MountKind::Bind {
                source: source.to_path_buf(),
            },
            options: vec!["rbind".into()],
            index,
        }
    }

    fn opaque(index: usize, dest: &str, fstype: &str) -> Mount {
        Mount {
            destination: dest.as_bytes().to_vec(),
            kind: MountKind::Opaque {
                fstype: fstype.into(),
            },
            options: Vec::new(),
            index,
        }
    }

    /// The kernel's answer: dev/ino of what openat2(RESOLVE_IN_ROOT) reaches, or its errno.
    fn kernel(root: &Root, path: &[u8], follow: bool) -> Result<(u64, u64), i32> {
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if !follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        match openat2_in_root(root.fd(), path, flags) {
            Ok(fd) => {
                let st = fstat(&fd).unwrap();
                Ok((st.st_dev, st.st_ino))
            }
            Err(e) => Err(e.raw_os_error().unwrap()),
        }
    }

    fn ours(root: &Root, path: &[u8], follow: bool) -> Result<(u64, u64), i32> {
        match root.resolve(path, follow) {
            Resolution::Found(r) => Ok(id(&r)),
            other => Err(other
                .errno()
                .unwrap_or_else(|| panic!("no errno for {other:?}"))),
        }
    }

    #[test]
    fn clean_is_lexical() {
        assert_eq!(clean(b"//a/./b/../c/"), b"/a/c");
        assert_eq!(clean(b""), b"/");
        assert_eq!(clean(b"/"), b"/");
        assert_eq!(clean(b"../../x"), b"/x");
        assert_eq!(clean(b"a/b"), b"/a/b");
        assert_eq!(clean(b"/a/b/../../.."), b"/");
        assert_eq!(clean(b"/\xff/./\xfe//"), b"/\xff/\xfe");
        assert_eq!(clean(b"/..."), b"/...");
    }

    #[test]
    fn mount_options() {
        let mut m = Mount::from_spec(
            3,
            b"/x",
            Some("none"),
            Some(Path::new("/src")),
            vec!["rbind".into(), "noexec".into()],
        );
        assert!(m.is_bind());
        assert!(m.noexec());
        m.options.push("exec".into());
        assert!(!m.noexec());
        let t = Mount::from_spec(0, b"/tmp", Some("tmpfs"), Some(Path::new("tmpfs")), vec![]);
        assert_eq!(
            t.kind,
            MountKind::Opaque {
                fstype: "tmpfs".into()
            }
        );
        let b = Mount::from_spec(0, b"/d", Some("bind"), Some(Path::new("/h")), vec![]);
        assert!(b.is_bind());
        let nosrc = Mount::from_spec(0, b"/d", Some("bind"), None, vec![]);
        assert!(!nosrc.is_bind());
    }

    #[test]
    fn open_rejects_non_directories() {
        let t = Tree::new();
        let err = Root::open(&t.canary, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("canary"), "{err}");
        assert!(Root::open(&t.host("missing"), Vec::new()).is_err());
    }

    #[test]
    fn plain_lookup_records_dirs() {
        let t = Tree::new();
        t.file("a/b/f", "x");
        fs::set_permissions(t.at("a"), fs::Permissions::from_mode(0o711)).unwrap();
        let root = t.open(Vec::new());
        let r = found(root.resolve(b"/a/b/f", true));
        assert_eq!(r.path, b"/a/b/f");
        assert_eq!(id(&r), id_of(&t.at("a/b/f")));
        assert_eq!(r.mount, None);
        assert!(r.links.is_empty());
        let paths: Vec<&[u8]> = r.dirs.iter().map(|d| d.path.as_slice()).collect();
        assert_eq!(paths, [&b"/"[..], b"/a", b"/a/b"]);
        assert_eq!(r.dirs[1].mode & 0o7777, 0o711);
        assert_eq!(r.dirs[1].mode & libc::S_IFMT, libc::S_IFDIR);
        assert!(r.dirs.iter().all(|d| d.mount.is_none()));
        // The root itself, `.` and `//`.
        let r = found(root.resolve(b"//a/./b//", true));
        assert_eq!(r.path, b"/a/b");
        let r = found(root.resolve(b"/", true));
        assert_eq!(r.path, b"/");
        assert_eq!(id(&r), id_of(&t.root));
    }

    #[test]
    fn relative_input_is_taken_from_root() {
        let t = Tree::new();
        let root = t.open(Vec::new());
        let a = found(root.resolve(b"etc/hostname", true));
        let b = found(root.resolve(b"../../etc/hostname", true));
        assert_eq!(a.path, b"/etc/hostname");
        assert_eq!(b.path, b"/etc/hostname");
        assert_eq!(id(&a), id_of(&t.at("etc/hostname")));
        assert_eq!(id(&b), id(&a));
    }

    #[test]
    fn escaping_links_stay_inside() {
        let t = Tree::new();
        let canary = t.canary.to_str().unwrap().to_owned();
        t.link("up", "../../../../../canary");
        t.link("d/e/up", "../../../../../../canary");
        t.link("abs", "/../../canary");
        t.link("hostabs", &canary);
        t.link("etcup", "../../etc/hostname");
        let root = t.open(Vec::new());
        let canary_id = id_of(&t.canary);

        for p in [
            &b"/up"[..],
            b"/d/e/up",
            b"/abs",
            b"/../../canary",
            b"../canary",
        ] {
            let r = root.resolve(p, true);
            assert_eq!(
                not_found_at(&r),
                b"/canary",
                "{}",
                String::from_utf8_lossy(p)
            );
        }
        // The host path of the canary is looked up inside the root.
        let first = canary.split('/').find(|c| !c.is_empty()).unwrap();
        let r = root.resolve(b"/hostabs", true);
        assert_eq!(not_found_at(&r), format!("/{first}").as_bytes());
        // `..` above the root lands on the root's own /etc/hostname, not the host's.
        let r = found(root.resolve(b"/etcup", true));
        assert_eq!(r.path, b"/etc/hostname");
        assert_eq!(id(&r), id_of(&t.at("etc/hostname")));

        // With a decoy inside the root, every escape reaches the decoy, never the canary.
        t.file("canary", "DECOY");
        let decoy = id_of(&t.at("canary"));
        for p in [&b"/up"[..], b"/d/e/up", b"/abs"] {
            let r = found(root.resolve(p, true));
            assert_eq!(id(&r), decoy);
            assert_ne!(id(&r), canary_id);
            assert_eq!(r.path, b"/canary");
        }
    }

    #[test]
    fn link_chain_of_40_resolves_and_41_loops() {
        let t = Tree::new();
        t.file("target", "T");
        for i in 1..=40 {
            let next = if i == 40 {
                "target".to_owned()
            } else {
                format!("l{}", i + 1)
            };
            t.link(&format!("l{i}"), &next);
        }
        t.link("l0", "/l1");
        let root = t.open(Vec::new());
        let r = found(root.resolve(b"/l1", true));
        assert_eq!(r.links.len(), 40);
        assert_eq!(r.links[0].at, b"/l1");
        assert_eq!(r.links[0].target, b"l2");
        assert_eq!(r.path, b"/target");
        assert_eq!(Ok(id(&r)), kernel(&root, b"/l1", true));

        match root.resolve(b"/l0", true) {
            Resolution::Loop { at, links } => {
                assert_eq!(links.len(), 40);
                assert_eq!(at, b"/l40");
            }
            other => panic!("expected Loop, got {other:?}"),
        }
        assert_eq!(kernel(&root, b"/l0", true), Err(libc::ELOOP));
        // Not following the final link: the link itself.
        let r = found(root.resolve(b"/l0", false));
        assert_eq!(r.stat.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert!(r.links.is_empty());
    }

    #[test]
    fn self_loop() {
        let t = Tree::new();
        t.link("self", "self");
        t.link("d/self", "../d/self");
        let root = t.open(Vec::new());
        for p in [&b"/self"[..], b"/d/self", b"/d/self/x"] {
            assert!(matches!(root.resolve(p, true), Resolution::Loop { .. }));
            assert_eq!(kernel(&root, p, true), Err(libc::ELOOP));
        }
        assert!(matches!(
            root.resolve(b"/self/", false),
            Resolution::Loop { .. }
        ));
        let r = found(root.resolve(b"/self", false));
        assert_eq!(r.stat.st_mode & libc::S_IFMT, libc::S_IFLNK);
    }

    #[test]
    fn proc_self_root_link_stays_inside() {
        let t = Tree::new();
        t.link("pr", "/proc/self/root/etc/hostname");
        t.link("pr_rel", "../proc/self/root/../../canary");
        let root = t.open(Vec::new());
        assert_eq!(not_found_at(&root.resolve(b"/pr", true)), b"/proc");
        assert_eq!(not_found_at(&root.resolve(b"/pr_rel", true)), b"/proc");

        let root = t.open(vec![opaque(0, "/proc", "proc")]);
        match root.resolve(b"/pr", true) {
            Resolution::Unverifiable { at, mount, links } => {
                assert_eq!(at, b"/proc/self");
                assert_eq!(mount, 0);
                assert_eq!(links.len(), 1);
            }
            other => panic!("expected Unverifiable, got {other:?}"),
        }
    }

    #[test]
    fn host_proc_bind_is_not_followed() {
        // /proc/self/root inside a bind of the host's /proc points at the host root; the walk
        // must not take it as a path inside the container.
        let t = Tree::new();
        let root = t.open(vec![bind(0, "/hostproc", Path::new("/proc"))]);
        for p in [
            &b"/hostproc/self/root/etc/hostname"[..],
            b"/hostproc/1/root",
        ] {
            match root.resolve(p, true) {
                Resolution::Unverifiable { mount, .. } => assert_eq!(mount, 0),
                other => panic!("expected Unverifiable, got {other:?}"),
            }
        }
    }

    /// Run `f` on another thread and fail if it does not return within 10 seconds.
    fn within_timeout<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("operation blocked")
    }

    #[test]
    fn fifo_and_device_are_found_but_never_opened() {
        let t = Tree::new();
        t.dir("dev");
        mkfifo(&t.at("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        mknod(
            &t.at("dev/null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .unwrap();
        t.link("tofifo", "/fifo");
        t.file("reg", "hello");
        let rootfs = t.root.clone();
        let results = within_timeout(move || {
            let root = Root::open(&rootfs, Vec::new()).unwrap();
            let mut out = Vec::new();
            for p in [&b"/fifo"[..], b"/tofifo", b"/dev/null", b"/dev", b"/"] {
                let r = found(root.resolve(p, true));
                out.push((r.stat.st_mode & libc::S_IFMT, open_for_read(&r).is_err()));
            }
            let r = found(root.resolve(b"/tofifo", false));
            out.push((r.stat.st_mode & libc::S_IFMT, open_for_read(&r).is_err()));
            let r = found(root.resolve(b"/reg", true));
            let mut s = String::new();
            open_for_read(&r).unwrap().read_to_string(&mut s).unwrap();
            (out, s)
        });
        let (out, content) = results;
        assert_eq!(
            out,
            [
                (libc::S_IFIFO, true),
                (libc::S_IFIFO, true),
                (libc::S_IFCHR, true),
                (libc::S_IFDIR, true),
                (libc::S_IFDIR, true),
                (libc::S_IFLNK, true),
            ]
        );
        assert_eq!(content, "hello");
    }

    #[test]
    fn open_for_read_does_not_open_a_fifo_at_all() {
        // A writer blocks in open(2) until a reader opens the FIFO: if open_for_read opened
        // it, even non-blocking, the writer would be released.
        use std::os::unix::fs::OpenOptionsExt;
        let t = Tree::new();
        let fifo = t.at("fifo");
        mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        let (tx, rx) = mpsc::channel();
        let writer_path = fifo.clone();
        std::thread::spawn(move || {
            let opened = fs::OpenOptions::new().write(true).open(&writer_path);
            let _ = tx.send(opened.is_ok());
        });
        std::thread::sleep(Duration::from_millis(100));
        let root = t.open(Vec::new());
        let r = found(root.resolve(b"/fifo", true));
        assert!(open_for_read(&r).is_err());
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        let _reader = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    }

    #[test]
    fn directory_bind_mount() {
        let t = Tree::new();
        let src = t.host("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("f"), "SRC").unwrap();
        fs::write(src.join("sub/g"), "G").unwrap();
        fs::write(t.host("hostsibling"), "HOST").unwrap();
        symlink("/etc/hostname", src.join("abs")).unwrap();
        symlink("../../../../../../canary", src.join("up")).unwrap();
        symlink("../inroot", src.join("rel_out")).unwrap();
        t.file("mnt/inroot", "IN");
        let root = t.open(vec![bind(0, "//mnt/./data/", &src)]);
        assert_eq!(root.mount_point(0), Some(&b"/mnt/data"[..]));

        let r = found(root.resolve(b"/mnt/data/f", true));
        assert_eq!(id(&r), id_of(&src.join("f")));
        assert_eq!(r.mount, Some(0));
        assert_eq!(r.path, b"/mnt/data/f");

        let r = found(root.resolve(b"/mnt/data/sub/g", true));
        let dirs: Vec<(&[u8], Option<usize>)> = r
            .dirs
            .iter()
            .map(|d| (d.path.as_slice(), d.mount))
            .collect();
        assert_eq!(
            dirs,
            [
                (&b"/"[..], None),
                (b"/mnt", None),
                (b"/mnt/data", Some(0)),
                (b"/mnt/data/sub", Some(0)),
            ]
        );

        // The mount point itself is the source directory.
        let r = found(root.resolve(b"/mnt/data", true));
        assert_eq!(id(&r), id_of(&src));
        assert_eq!(r.mount, Some(0));

        // `..` out of the source is the container's /mnt, not the host's parent of src.
        let r = found(root.resolve(b"/mnt/data/../inroot", true));
        assert_eq!(id(&r), id_of(&t.at("mnt/inroot")));
        assert_eq!(r.mount, None);
        let r = root.resolve(b"/mnt/data/sub/../../hostsibling", true);
        assert_eq!(not_found_at(&r), b"/mnt/hostsibling");
        let r = found(root.resolve(b"/mnt/data/rel_out", true));
        assert_eq!(id(&r), id_of(&t.at("mnt/inroot")));

        // An absolute link inside the source resolves against the container root.
        let r = found(root.resolve(b"/mnt/data/abs", true));
        assert_eq!(r.path, b"/etc/hostname");
        assert_eq!(id(&r), id_of(&t.at("etc/hostname")));
        assert_ne!(id(&r), id_of(Path::new("/etc/hostname")));
        assert_eq!(r.mount, None);
        assert_eq!(
            not_found_at(&root.resolve(b"/mnt/data/up", true)),
            b"/canary"
        );
    }

    #[test]
    fn mount_point_missing_in_the_image_is_created() {
        let t = Tree::new();
        let src = t.host("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("f"), "SRC").unwrap();
        let root = t.open(vec![bind(7, "/new/place", &src)]);
        let r = found(root.resolve(b"/new/place/f", true));
        assert_eq!(id(&r), id_of(&src.join("f")));
        assert_eq!(r.mount, Some(7));
        assert_eq!(
            not_found_at(&root.resolve(b"/new/other", true)),
            b"/new/other"
        );
        assert!(matches!(
            root.resolve(b"/new", true),
            Resolution::Unverifiable { mount: 7, .. }
        ));
        let r = found(root.resolve(b"/new/../etc/hostname", true));
        assert_eq!(id(&r), id_of(&t.at("etc/hostname")));
    }

    #[test]
    fn file_bind_mount() {
        let t = Tree::new();
        t.file("etc/hosts", "IMAGE");
        let hosts = t.host("hosts");
        fs::write(&hosts, "ENGINE").unwrap();
        let root = t.open(vec![bind(0, "/etc/hosts", &hosts)]);
        for follow in [true, false] {
            let r = found(root.resolve(b"/etc/hosts", follow));
            assert_eq!(id(&r), id_of(&hosts));
            assert_eq!(r.mount, Some(0));
            let mut s = String::new();
            open_for_read(&r).unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s, "ENGINE");
        }
        match root.resolve(b"/etc/hosts/x", true) {
            Resolution::NotDirectory { at, .. } => assert_eq!(at, b"/etc/hosts"),
            other => panic!("expected NotDirectory, got {other:?}"),
        }
    }

    #[test]
    fn later_mounts_shadow_earlier_ones() {
        let t = Tree::new();
        let b = t.host("b");
        let c = t.host("c");
        let d = t.host("d");
        fs::create_dir_all(&b).unwrap();
        fs::create_dir_all(c.join("y")).unwrap();
        fs::create_dir_all(&d).unwrap();
        fs::write(b.join("f"), "B").unwrap();
        fs::write(c.join("y/f"), "C").unwrap();
        fs::write(d.join("f"), "D").unwrap();

        // B at /x/y, then C at /x: C hides B.
        let root = t.open(vec![bind(1, "/x", &c), bind(0, "/x/y", &b)]);
        assert_eq!(root.mounts()[0].index, 0);
        let r = found(root.resolve(b"/x/y/f", true));
        assert_eq!(id(&r), id_of(&c.join("y/f")));
        assert_eq!(r.mount, Some(1));

        // C at /x, then B at /x/y: B is on top.
        let root = t.open(vec![bind(0, "/x", &c), bind(1, "/x/y", &b)]);
        let r = found(root.resolve(b"/x/y/f", true));
        assert_eq!(id(&r), id_of(&b.join("f")));
        assert_eq!(r.mount, Some(1));
        let r = found(root.resolve(b"/x/y/../y/f", true));
        assert_eq!(id(&r), id_of(&b.join("f")));

        // Two mounts at the same place: the later wins.
        let root = t.open(vec![bind(0, "/x/y", &b), bind(1, "/x/y", &d)]);
        let r = found(root.resolve(b"/x/y/f", true));
        assert_eq!(id(&r), id_of(&d.join("f")));
        assert_eq!(r.mount, Some(1));
    }

    #[test]
    fn opaque_mounts_are_unverifiable() {
        let t = Tree::new();
        t.dir("tmp");
        t.link("tl", "/tmp/x");
        let secrets = t.host("secrets");
        fs::create_dir_all(&secrets).unwrap();
        fs::write(secrets.join("token"), "T").unwrap();

        let root = t.open(vec![opaque(0, "/tmp", "tmpfs")]);
        let cases: [(&[u8], &[u8]); 3] = [
            (b"/tmp", b"/tmp"),
            (b"/tmp/x/y", b"/tmp/x"),
            (b"/tmp/", b"/tmp"),
        ];
        for (p, want) in cases {
            match root.resolve(p, true) {
                Resolution::Unverifiable { at, mount, .. } => {
                    assert_eq!(at, want);
                    assert_eq!(mount, 0);
                }
                other => panic!("expected Unverifiable, got {other:?}"),
            }
        }
        match root.resolve(b"/tl", true) {
            Resolution::Unverifiable { at, links, .. } => {
                assert_eq!(at, b"/tmp/x");
                assert_eq!(links.len(), 1);
            }
            other => panic!("expected Unverifiable, got {other:?}"),
        }
        // `..` out of an opaque mount is still known.
        assert!(matches!(
            root.resolve(b"/tmp/../etc/hostname", true),
            Resolution::Found(_)
        ));

        // A bind mount on top of a tmpfs is visible; the rest of the tmpfs is not.
        let root = t.open(vec![
            opaque(0, "/run", "tmpfs"),
            bind(1, "/run/k8s/secrets", &secrets),
        ]);
        let r = found(root.resolve(b"/run/k8s/secrets/token", true));
        assert_eq!(id(&r), id_of(&secrets.join("token")));
        assert_eq!(r.mount, Some(1));
        for p in [&b"/run/other"[..], b"/run/k8s/secrets/../other"] {
            match root.resolve(p, true) {
                Resolution::Unverifiable { mount, .. } => assert_eq!(mount, 0),
                other => panic!("expected Unverifiable, got {other:?}"),
            }
        }

        // The same bind made before the tmpfs is hidden by it.
        let root = t.open(vec![
            bind(0, "/run/k8s/secrets", &secrets),
            opaque(1, "/run", "tmpfs"),
        ]);
        match root.resolve(b"/run/k8s/secrets/token", true) {
            Resolution::Unverifiable { at, mount, .. } => {
                assert_eq!(at, b"/run/k8s");
                assert_eq!(mount, 1);
            }
            other => panic!("expected Unverifiable, got {other:?}"),
        }
    }

    #[test]
    fn mount_destination_through_image_symlink() {
        // runc places a mount at /var/run/secrets where /var/run -> ../run at /run/secrets.
        let t = Tree::new();
        t.dir("run");
        t.link("var/run", "../run");
        let secrets = t.host("secrets");
        fs::create_dir_all(&secrets).unwrap();
        fs::write(secrets.join("token"), "T").unwrap();
        let root = t.open(vec![bind(0, "/var/run/secrets", &secrets)]);
        assert_eq!(root.mount_point(0), Some(&b"/run/secrets"[..]));
        let want = id_of(&secrets.join("token"));
        let a = found(root.resolve(b"/run/secrets/token", true));
        let b = found(root.resolve(b"/var/run/secrets/token", true));
        assert_eq!(id(&a), want);
        assert_eq!(id(&b), want);
        assert_eq!(b.path, b"/run/secrets/token");
        assert_eq!(b.links.len(), 1);
    }

    #[test]
    fn bind_mount_over_the_root() {
        let t = Tree::new();
        let alt = t.host("alt");
        fs::create_dir_all(alt.join("bin")).unwrap();
        fs::write(alt.join("bin/sh"), "SH").unwrap();
        symlink("/bin/sh", alt.join("bin/ash")).unwrap();
        let data = t.host("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("f"), "F").unwrap();
        let root = t.open(vec![bind(0, "/", &alt), bind(1, "/data", &data)]);
        let r = found(root.resolve(b"/bin/ash", true));
        assert_eq!(id(&r), id_of(&alt.join("bin/sh")));
        assert_eq!(r.mount, Some(0));
        let r = found(root.resolve(b"/data/../data/f", true));
        assert_eq!(id(&r), id_of(&data.join("f")));
        assert_eq!(not_found_at(&root.resolve(b"/etc/hostname", true)), b"/etc");
    }

    #[test]
    fn missing_bind_source_is_an_error_not_missing() {
        let t = Tree::new();
        let root = t.open(vec![bind(0, "/data", &t.host("nope"))]);
        match root.resolve(b"/data/x", true) {
            Resolution::Error { at, error } => {
                assert_eq!(at, b"/data");
                assert!(error.to_string().contains("nope"), "{error}");
            }
            other => panic!("expected Error, got {other:?}"),
        }
        let root = t.open(vec![bind(0, "/data", Path::new("relative/src"))]);
        assert!(matches!(
            root.resolve(b"/data", true),
            Resolution::Error { .. }
        ));
    }

    #[test]
    fn not_a_directory() {
        let t = Tree::new();
        t.link("lh", "/etc/hostname/");
        let root = t.open(Vec::new());
        for p in [
            &b"/etc/hostname/x"[..],
            b"/etc/hostname/",
            b"/etc/hostname/.",
            b"/etc/hostname/..",
            b"/lh",
        ] {
            match root.resolve(p, true) {
                Resolution::NotDirectory { at, .. } => assert_eq!(at, b"/etc/hostname"),
                other => panic!("expected NotDirectory, got {other:?}"),
            }
            assert_eq!(kernel(&root, p, true), Err(libc::ENOTDIR));
        }
    }

    #[test]
    fn non_utf8_names() {
        let t = Tree::new();
        let dir = t.root.join(OsStr::from_bytes(b"\xff\xfe"));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(OsStr::from_bytes(b"\x80")), "X").unwrap();
        symlink(
            OsStr::from_bytes(b"/\xff\xfe/\x80"),
            t.root.join(OsStr::from_bytes(b"\xc3\x28")),
        )
        .unwrap();
        let root = t.open(Vec::new());
        let r = found(root.resolve(b"/\xc3\x28", true));
        assert_eq!(r.path, b"/\xff\xfe/\x80");
        assert_eq!(r.links[0].target, b"/\xff\xfe/\x80");
        assert_eq!(id(&r), id_of(&dir.join(OsStr::from_bytes(b"\x80"))));
    }

    #[test]
    fn name_too_long() {
        let t = Tree::new();
        let root = t.open(Vec::new());
        let long = vec![b'a'; PATH_MAX];
        assert!(matches!(root.resolve(&long, true), Resolution::NameTooLong));
        assert_eq!(kernel(&root, &long, true), Err(libc::ENAMETOOLONG));
        let mut ok = b"/".repeat(PATH_MAX - 2);
        ok.push(b'x');
        assert_eq!(ok.len(), PATH_MAX - 1);
        assert_eq!(not_found_at(&root.resolve(&ok, true)), b"/x");

        let mut name = b"/".to_vec();
        name.extend(vec![b'n'; NAME_MAX + 1]);
        assert!(matches!(root.resolve(&name, true), Resolution::NameTooLong));
        assert_eq!(kernel(&root, &name, true), Err(libc::ENAMETOOLONG));
        name.pop();
        assert!(matches!(
            root.resolve(&name, true),
            Resolution::NotFound { .. }
        ));
    }

    #[test]
    fn empty_and_nul_inputs() {
        let t = Tree::new();
        let root = t.open(Vec::new());
        assert_eq!(not_found_at(&root.resolve(b"", true)), b"");
        assert!(matches!(
            root.resolve(b"/etc\0/hostname", true),
            Resolution::Error { .. }
        ));
    }

    #[test]
    fn deep_directory_chain_is_bounded() {
        // 4096 nested directories, reached through relative links (a path to the bottom is
        // far longer than PATH_MAX), then climbed back 1000 levels by one link.
        const DEPTH: usize = 4096;
        let t = Tree::new();
        let d_1024 = "d/".repeat(1024);
        let mut fd = open(&t.root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        for depth in 1..=DEPTH {
            mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).unwrap();
            fd = openat(&fd, "d", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
            if depth % 1024 == 0 && depth < DEPTH {
                let target = if depth == DEPTH - 1024 {
                    d_1024.clone()
                } else {
                    format!("{d_1024}n")
                };
                symlinkat(target.as_str(), &fd, "n").unwrap();
            }
            if depth == DEPTH - 1000 {
                let m = openat(
                    &fd,
                    "mark",
                    OFlag::O_CREAT | OFlag::O_WRONLY,
                    Mode::from_bits_truncate(0o644),
                )
                .unwrap();
                drop(m);
            }
            if depth == DEPTH {
                symlinkat(format!("{}mark", "../".repeat(1000)).as_str(), &fd, "up").unwrap();
            }
        }
        let root = t.open(Vec::new());
        let input = format!("/{d_1024}n/up");
        let bottom = format!("/{d_1024}n");
        let uncached = [
            summary(&root.resolve(input.as_bytes(), true)),
            summary(&root.resolve(bottom.as_bytes(), true)),
        ];
        let r = found(root.resolve(input.as_bytes(), true));
        assert_eq!(r.links.len(), 4);
        assert_eq!(r.path.len(), 2 * (DEPTH - 1000) + "/mark".len());
        assert!(r.path.ends_with(b"/d/mark"));
        assert_eq!(Ok(id(&r)), kernel(&root, input.as_bytes(), true));
        let r = found(root.resolve(bottom.as_bytes(), true));
        assert_eq!(r.path.len(), 2 * DEPTH);
        assert_eq!(Ok(id(&r)), kernel(&root, bottom.as_bytes(), true));
        // The directory cache keeps only its first directories; the rest of the walk drops
        // and reopens fds as without it, and ends in the same place.
        with_dir_cache(|| {
            for _ in 0..2 {
                let cached = [
                    summary(&root.resolve(input.as_bytes(), true)),
                    summary(&root.resolve(bottom.as_bytes(), true)),
                ];
                assert_eq!(cached, uncached);
            }
            let (entries, fds) = dir_cache_stats().unwrap();
            assert_eq!(fds, DIR_CACHE_FDS);
            assert!(entries <= DIR_CACHE_ENTRIES);
        });
        assert_eq!(dir_cache_stats(), None);
    }

    /// A tree of links of every kind, repeated in /, /a and /a/b, for comparing with the
    /// kernel.
    fn link_tree() -> Tree {
        let t = Tree::new();
        t.dir("a/b");
        for d in ["", "a/", "a/b/"] {
            t.file(&format!("{d}f"), "x");
            t.link(&format!("{d}la"), "/a");
            t.link(&format!("{d}lr"), "../f");
            t.link(&format!("{d}lu"), "../../../..");
            t.link(&format!("{d}ll"), "ll");
            t.link(&format!("{d}lf"), "f/");
            t.link(&format!("{d}ld"), ".");
            t.link(&format!("{d}lx"), "missing/x");
            t.link(&format!("{d}lc"), "lc2");
            t.link(&format!("{d}lc2"), "la/b");
            t.link(&format!("{d}lo"), "/../../..//a/../a/b/");
        }
        t
    }

    #[test]
    fn agrees_with_openat2_on_fixed_paths() {
        let t = link_tree();
        let root = t.open(Vec::new());
        let paths: &[&[u8]] = &[
            b"/",
            b"/a/b/f",
            b"/la/b/lr",
            b"/a/b/lu/a/f",
            b"/a/lc/lc/f",
            b"/lo/lo/f",
            b"/a/lf",
            b"/a/lf/",
            b"/a/lx",
            b"/ll",
            b"/la/",
            b"/a/b/ld/ld/../f",
            b"/missing/..",
            b"/f/..",
            b"lc",
            b"../../la/lu/la",
        ];
        for &p in paths {
            for follow in [true, false] {
                assert_eq!(
                    ours(&root, p, follow),
                    kernel(&root, p, follow),
                    "{} follow={follow}",
                    String::from_utf8_lossy(p)
                );
            }
        }
        let r = found(
            resolve_openat2(root.fd(), b"/la/b/lr")
                .map_or_else(|e| panic!("{e}"), |_| root.resolve(b"/la/b/lr", true)),
        );
        assert_eq!(r.path, b"/a/f");
    }

    fn token_path() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            "a", "b", "f", "la", "lr", "lu", "ll", "lf", "ld", "lx", "lc", "lo", "..", ".", "",
            "missing",
        ]);
        (
            any::<bool>(),
            prop::collection::vec(token, 0..10),
            any::<bool>(),
        )
            .prop_map(|(lead, toks, trail)| {
                let mut p = if lead { b"/".to_vec() } else { Vec::new() };
                p.extend_from_slice(toks.join("/").as_bytes());
                if trail {
                    p.push(b'/');
                }
                p
            })
    }

    #[test]
    fn agrees_with_openat2_on_random_paths() {
        let t = link_tree();
        let root = t.open(Vec::new());
        let mut runner = TestRunner::new(Config {
            cases: 1000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(token_path(), any::<bool>()), |(p, follow)| {
                prop_assert_eq!(
                    ours(&root, &p, follow),
                    kernel(&root, &p, follow),
                    "{}",
                    String::from_utf8_lossy(&p)
                );
                Ok(())
            })
            .unwrap();
    }

    /// Everything a resolution says, in comparable form (the fd by what it refers to).
    fn summary(r: &Resolution) -> String {
        match r {
            Resolution::Found(f) => {
                let st = fstat(&f.fd).unwrap();
                assert_eq!((st.st_dev, st.st_ino), id(f));
                format!(
                    "found {:?} ino={:?} mode={:o} links={:?} dirs={:?} mount={:?}",
                    String::from_utf8_lossy(&f.path),
                    id(f),
                    f.stat.st_mode,
                    f.links,
                    f.dirs,
                    f.mount
                )
            }
            Resolution::Error { at, error } => format!(
                "error {:?} {:?} {:?}",
                String::from_utf8_lossy(at),
                error.kind(),
                error.raw_os_error()
            ),
            other => format!("{other:?}"),
        }
    }

    /// The link tree plus directories reached through links and a root-level escape.
    fn cache_tree() -> Tree {
        let t = link_tree();
        t.dir("usr/lib/x");
        t.file("usr/lib/x/libc.so.6", "libc");
        t.link("usr/lib/x/libc.so", "libc.so.6");
        t.link("lib", "usr/lib");
        t.link("lib64", "/usr/lib/../lib/");
        t.link("usr/lib/x/up", "../../../../../etc");
        t.link("usr/lib/abs", "/etc/hostname");
        t.link("usr/lib/x/host", "/../../../../../canary");
        t.link("loop1", "loop2");
        t.link("loop2", "loop1");
        fs::create_dir(t.at("locked")).unwrap();
        fs::write(t.at("locked/f"), "x").unwrap();
        fs::set_permissions(t.at("locked"), fs::Permissions::from_mode(0o700)).unwrap();
        t
    }

    fn cache_paths() -> Vec<Vec<u8>> {
        let fixed: &[&[u8]] = &[
            b"/lib/x/libc.so",
            b"/lib64/x/libc.so.6",
            b"/lib/x/up/hostname",
            b"/lib/x/up/../../../etc/hostname",
            b"/lib/abs",
            b"/lib/x/host",
            b"/usr/lib/x/../../lib/x/libc.so.6",
            b"/lib/x/",
            b"/lib",
            b"/lib/",
            b"/lib/x/missing",
            b"/lib/x/libc.so.6/x",
            b"/loop1",
            b"/locked/f",
            b"/la/b/lr",
            b"/a/b/lu/a/f",
            b"/lo/lo/f",
            b"/a/lf/",
            b"../../la/lu/la",
            b"/",
        ];
        let mut paths: Vec<Vec<u8>> = fixed.iter().map(|p| p.to_vec()).collect();
        let mut runner = TestRunner::deterministic();
        let strategy = token_path();
        for _ in 0..400 {
            paths.push(proptest::strategy::ValueTree::current(
                &strategy.new_tree(&mut runner).unwrap(),
            ));
        }
        paths
    }

    #[test]
    fn the_dir_cache_resolves_as_the_uncached_walk() {
        let t = cache_tree();
        let root = t.open(Vec::new());
        let paths = cache_paths();
        let mut expected = Vec::new();
        for p in &paths {
            for follow in [true, false] {
                expected.push(summary(&root.resolve(p, follow)));
            }
        }
        assert!(
            expected
                .iter()
                .any(|e| e.contains("ROOTFS") || e.contains("hostname"))
        );
        // Cold, then warm, then in another order in a fresh scope.
        with_dir_cache(|| {
            for _ in 0..2 {
                let mut got = Vec::new();
                for p in &paths {
                    for follow in [true, false] {
                        got.push(summary(&root.resolve(p, follow)));
                    }
                }
                assert_eq!(got, expected);
            }
            let (entries, fds) = dir_cache_stats().unwrap();
            assert!(fds >= 3 && entries > fds, "{entries} entries, {fds} fds");
        });
        with_dir_cache(|| {
            for (i, p) in paths.iter().enumerate().rev() {
                for (k, follow) in [true, false].into_iter().enumerate() {
                    assert_eq!(
                        summary(&root.resolve(p, follow)),
                        expected[2 * i + k],
                        "{}",
                        String::from_utf8_lossy(p)
                    );
                }
            }
        });
        // And with the kernel's own rooted walk, warm.
        with_dir_cache(|| {
            for p in &paths {
                let _ = root.resolve(p, true);
            }
            for p in &paths {
                for follow in [true, false] {
                    assert_eq!(ours(&root, p, follow), kernel(&root, p, follow));
                }
            }
        });
        assert_eq!(dir_cache_stats(), None);
    }

    #[test]
    fn the_dir_cache_never_leaves_the_root() {
        let t = cache_tree();
        let root = t.open(Vec::new());
        with_dir_cache(|| {
            for _ in 0..2 {
                let r = found(root.resolve(b"/lib/x/up/hostname", true));
                assert_eq!(r.path, b"/etc/hostname");
                let mut s = String::new();
                open_for_read(&r).unwrap().read_to_string(&mut s).unwrap();
                assert_eq!(s, "ROOTFS");
                // The host's canary beside the rootfs is never reached.
                assert_eq!(
                    not_found_at(&root.resolve(b"/lib/x/host", true)),
                    b"/canary"
                );
                // The last component stays unfollowed where it was not followed.
                let r = found(root.resolve(b"/lib/x/libc.so", false));
                assert_eq!(r.stat.st_mode & libc::S_IFMT, libc::S_IFLNK);
                assert_eq!(r.path, b"/usr/lib/x/libc.so");
                let r = found(root.resolve(b"/lib", false));
                assert_eq!(r.stat.st_mode & libc::S_IFMT, libc::S_IFLNK);
            }
        });
    }

    #[test]
    fn the_dir_cache_is_per_root_and_off_with_mounts() {
        let a = cache_tree();
        let b = Tree::new();
        b.dir("usr/lib/y");
        b.link("lib", "usr/lib/y");
        let ra = a.open(Vec::new());
        let rb = b.open(Vec::new());
        let want_b = summary(&rb.resolve(b"/lib/x/libc.so.6", true));
        let want_b_hostname = summary(&rb.resolve(b"/lib/../../etc/hostname", true));
        with_dir_cache(|| {
            assert!(matches!(
                ra.resolve(b"/lib/x/libc.so.6", true),
                Resolution::Found(_)
            ));
            // Another root: what the cache held for the first one is not used.
            assert_eq!(summary(&rb.resolve(b"/lib/x/libc.so.6", true)), want_b);
            assert_eq!(
                summary(&rb.resolve(b"/lib/../../etc/hostname", true)),
                want_b_hostname
            );
            // A root with mounts walks without the cache.
            let src = a.host("src");
            fs::create_dir_all(src.join("x")).unwrap();
            let rm = a.open(vec![bind(0, "/usr/lib", &src)]);
            let before = dir_cache_stats().unwrap();
            let r = found(rm.resolve(b"/lib/x", true));
            assert_eq!(id(&r), id_of(&src.join("x")));
            assert_eq!(r.mount, Some(0));
            assert_eq!(dir_cache_stats().unwrap(), before);
        });
    }

    #[test]
    fn a_root_reopened_in_the_dir_cache_scope_is_shared() {
        let t = cache_tree();
        let other = Tree::new();
        let outside = (t.open(Vec::new()), t.open(Vec::new()));
        assert_ne!(outside.0.fd().as_raw_fd(), outside.1.fd().as_raw_fd());
        with_dir_cache(|| {
            let a = t.open(Vec::new());
            let b = t.open(Vec::new());
            assert_eq!(a.fd().as_raw_fd(), b.fd().as_raw_fd());
            assert_eq!(a.stat().unwrap().st_ino, id_of(&t.root).1);
            let c = other.open(Vec::new());
            assert_ne!(c.fd().as_raw_fd(), a.fd().as_raw_fd());
            assert_eq!(c.stat().unwrap().st_ino, id_of(&other.root).1);
            drop((a, b));
            let d = t.open(Vec::new());
            assert_eq!(
                found(d.resolve(b"/lib/x/libc.so.6", true)).path,
                b"/usr/lib/x/libc.so.6"
            );
        });
    }

    #[test]
    fn never_panics_on_arbitrary_paths() {
        let t = link_tree();
        let src = t.host("src");
        fs::create_dir_all(src.join("a")).unwrap();
        symlink("/a/../../la", src.join("a/l")).unwrap();
        fs::write(t.host("file"), "F").unwrap();
        mkfifo(&t.at("a/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let root = t.open(vec![
            bind(0, "/a/b", &src),
            opaque(1, "/a/b/a/tmp", "tmpfs"),
            bind(2, "/a/b/a/tmp/deep/file", &t.host("file")),
            opaque(3, "/proc", "proc"),
            bind(4, "/f", &t.host("file")),
            bind(5, "/lu/x", &t.host("missing")),
        ]);
        let bytes = prop::collection::vec(
            prop::sample::select(vec![b'/', b'.', b'a', b'b', b'l', b'u', b'\0', 0xff]),
            0..80,
        );
        let any_bytes = prop::collection::vec(any::<u8>(), 0..300);
        let strategy = prop_oneof![token_path(), bytes, any_bytes];
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(strategy, any::<bool>()), |(p, follow)| {
                if let Resolution::Found(r) = root.resolve(&p, follow) {
                    prop_assert!(r.path.first() == Some(&b'/'));
                    prop_assert_eq!(clean(&r.path), r.path.clone());
                    let _ = open_for_read(&r);
                }
                Ok(())
            })
            .unwrap();
    }
}
