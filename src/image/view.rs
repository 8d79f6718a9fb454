//! A private rootfs-shaped view of an image, made from its layers without unpacking them, so
//! the normal checks (which work on a rootfs directory through the resolver) can run on it.
//!
//! This module owns the temporary directory and everything written into it:
//!
//! - pass 1 streams every layer once (gzip decompressed on the fly) and keeps only headers,
//!   merged by [`super::tree`];
//! - the skeleton then lays out every directory, symbolic link, FIFO and device node with its
//!   mode and owner, and every regular file as an empty sparse file of its real size: no data
//!   blocks, but `stat` says what the image says;
//! - [`View::fill`] writes into a placeholder the only bytes the checks read: the first 4096
//!   bytes, plus, for an ELF file, its program header table and `PT_INTERP` when they lie past
//!   them (found by running the same ELF parser on what was read so far). Data comes straight
//!   from the tarball with positioned reads for uncompressed layers, or by decompressing up to
//!   the file for gzip ones. Filling a file also fills what it names (its ELF loader, its `#!`
//!   interpreter) when the layer stream still allows it.
//!
//! Everything is created relative to a parent directory fd opened `O_NOFOLLOW|O_DIRECTORY`, with
//! names that [`super::tree::components`] already checked, so nothing is ever written outside
//! the directory whatever the image's links say; the links themselves are only ever followed by
//! the resolver, inside the root. Bounds: at most [`MAX_FILL_BYTES`] written, at most
//! [`MAX_LAYER_BYTES`] decompressed per layer.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmod, fchmodat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, fchown, ftruncate, mkdtemp, mkfifoat, symlinkat};

use super::ImageError;
use super::tar::{self, Reader, Slice, Source, Stream};
use super::tree::{NodeId, NodeKind, ROOT, Tree};
use crate::inspect::elf::{self, ReadAt};
use crate::inspect::script::{self, Script};
use crate::rootfs::resolve::{Resolution, Root};
use crate::sanitize::escape_bytes;

/// Bytes of every needed file written to its placeholder (what the checks read first).
pub const HEADER_BYTES: u64 = 4096;
/// Most bytes one layer may decompress to.
pub const MAX_LAYER_BYTES: u64 = 64 << 30;
/// Most file bytes written into one view.
pub const MAX_FILL_BYTES: u64 = 1 << 30;
/// Most passes over the layers for one fill.
const MAX_FILL_PASSES: usize = 8;
/// Largest single read the ELF parser asks for (its program header cap).
const MAX_RANGE: u64 = 65536;
/// Most layers an image may have.
pub const MAX_LAYERS: usize = 1024;

/// One layer blob inside the tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Its name in the tarball (`blobs/sha256/…` or `…/layer.tar`).
    pub name: String,
    /// Offset of its bytes in the tarball file.
    pub offset: u64,
    /// Its size in the tarball.
    pub size: u64,
}

#[derive(Debug, Clone)]
struct Layer {
    name: String,
    offset: u64,
    size: u64,
    gzip: bool,
}

/// Counts what a decompressor produces and fails past a limit (a layer that expands without
/// end, a decompression bomb).
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.limit {
            return Err(io::Error::other(format!(
                "it decompresses to more than {} bytes",
                self.limit
            )));
        }
        Ok(n)
    }
}

fn gunzip<'a>(
    file: &'a File,
    l: &Layer,
) -> Bounded<flate2::bufread::MultiGzDecoder<BufReader<Slice<'a>>>> {
    Bounded {
        inner: flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(
            128 << 10,
            Slice::new(file, l.offset, l.size),
        )),
        read: 0,
        limit: MAX_LAYER_BYTES,
    }
}

/// The compression of a blob, by its first bytes.
fn sniff_compression(file: &File, blob: &LayerBlob) -> Result<bool, String> {
    let mut magic = [0u8; 6];
    let n = FileExt::read_at(file, &mut magic, blob.offset).map_err(|e| e.to_string())?;
    let m = magic
        .get(..n.min(blob.size as usize).min(6))
        .unwrap_or_default();
    if m.starts_with(&[0x1f, 0x8b]) {
        Ok(true)
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(
            "it is zstd-compressed, which execguard does not read (use gzip or no compression)"
                .into(),
        )
    } else if m.starts_with(b"BZh") || m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err("it is bzip2- or xz-compressed, which execguard does not read".into())
    } else {
        Ok(false)
    }
}

/// A file's bytes as far as they were read, answering the ELF parser's reads and recording the
/// ones it could not answer.
struct Probe<'a> {
    got: &'a [(u64, Vec<u8>)],
    size: u64,
    misses: RefCell<Vec<(u64, u64)>>,
}

impl ReadAt for Probe<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(self.size - offset);
        for (start, data) in self.got {
            let end = start.saturating_add(data.len() as u64);
            if offset >= *start && offset.saturating_add(len) <= end {
                let from = usize::try_from(offset - start).unwrap_or(0);
                let n = usize::try_from(len).unwrap_or(0);
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(from..from + n)) {
                    dst.copy_from_slice(src);
                    return Ok(n);
                }
            }
        }
        self.misses.borrow_mut().push((offset, len.min(MAX_RANGE)));
        Ok(0)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// Reads of byte ranges of one file's data.
trait RangeRead {
    /// `len` bytes at `off` in the file's data; `None` when a forward-only source has already
    /// passed them.
    fn read_range(&mut self, off: u64, len: u64) -> io::Result<Option<Vec<u8>>>;
}

/// A file in an uncompressed layer: positioned reads in the tarball.
struct Plain<'a> {
    file: &'a File,
    base: u64,
}

impl RangeRead for Plain<'_> {
    fn read_range(&mut self, off: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.file
            .read_exact_at(&mut buf, self.base.saturating_add(off))?;
        Ok(Some(buf))
    }
}

/// A file in a gzip layer: forward reads in the decompressed stream.
struct Forward<'a> {
    z: &'a mut dyn Read,
    pos: &'a mut u64,
    base: u64,
}

impl RangeRead for Forward<'_> {
    fn read_range(&mut self, off: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
        let at = self.base.saturating_add(off);
        if at < *self.pos {
            return Ok(None);
        }
        let gap = at - *self.pos;
        if tar::skip_by_reading(self.z, gap)? < gap {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.z.read_exact(&mut buf)?;
        *self.pos = at.saturating_add(len);
        Ok(Some(buf))
    }
}

enum Capture {
    Done(Vec<(u64, Vec<u8>)>),
    /// A forward-only source had passed a needed range: these are all the ranges known so far.
    Behind(Vec<(u64, u64)>),
}

fn covered(got: &[(u64, Vec<u8>)], off: u64, len: u64) -> bool {
    got.iter()
        .any(|(s, d)| off >= *s && off.saturating_add(len) <= s.saturating_add(d.len() as u64))
}

/// Reads the ranges of a file the checks read: its first bytes, then what the ELF parser asks
/// for beyond them, until it asks for nothing new.
fn capture(r: &mut dyn RangeRead, size: u64, known: &[(u64, u64)]) -> io::Result<Capture> {
    let mut need: Vec<(u64, u64)> = vec![(0, size.min(HEADER_BYTES))];
    need.extend(known.iter().copied());
    // Overlapping ranges are read as one: a forward-only source cannot go back into a range
    // it has just passed.
    need = merge_ranges(need);
    let mut all = need.clone();
    let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
    for _ in 0..4 {
        need.sort_unstable();
        for (o, l) in need.drain(..) {
            let l = l.min(size.saturating_sub(o));
            if l == 0 || covered(&got, o, l) {
                continue;
            }
            match r.read_range(o, l)? {
                Some(b) => got.push((o, b)),
                None => return Ok(Capture::Behind(all)),
            }
        }
        let head = head_of(&got);
        if !head.starts_with(b"\x7fELF") {
            break;
        }
        let probe = Probe {
            got: &got,
            size,
            misses: RefCell::new(Vec::new()),
        };
        let _ = elf::parse(head, &probe);
        let misses = probe.misses.into_inner();
        if misses.is_empty() {
            break;
        }
        all.extend(misses.iter().copied());
        need = misses;
    }
    Ok(Capture::Done(got))
}

/// Sorted, disjoint ranges covering the same bytes (touching ranges joined).
fn merge_ranges(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (o, l) in v {
        let end = o.saturating_add(l);
        if let Some(last) = out.last_mut() {
            let last_end = last.0.saturating_add(last.1);
            if o <= last_end {
                last.1 = end.max(last_end) - last.0;
                continue;
            }
        }
        out.push((o, l));
    }
    out
}

fn head_of(got: &[(u64, Vec<u8>)]) -> &[u8] {
    got.iter()
        .find(|(o, _)| *o == 0)
        .map(|(_, b)| b.as_slice())
        .unwrap_or_default()
}

/// A temporary directory on a file system that allows exec (the checks would otherwise see
/// every file as lying on a noexec mount): `$TMPDIR`, then /var/tmp, then /tmp.
fn make_temp() -> io::Result<PathBuf> {
    let mut cands = vec![std::env::temp_dir()];
    for p in ["/var/tmp", "/tmp"] {
        if !cands.iter().any(|c| c == Path::new(p)) {
            cands.push(PathBuf::from(p));
        }
    }
    let mut last = None;
    for c in cands {
        match mkdtemp(&c.join("execguard-image-XXXXXX")) {
            Ok(p) => match nix::sys::statvfs::statvfs(&p) {
                Ok(st) if !st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC) => {
                    return Ok(p);
                }
                _ => {
                    let _ = std::fs::remove_dir(&p);
                }
            },
            Err(e) => last = Some(io::Error::from(e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::other("no temporary directory without noexec was found (set TMPDIR to one)")
    }))
}

/// The image laid out for the checks.
pub struct View {
    file: File,
    tmp: PathBuf,
    rootfs: PathBuf,
    root_fd: OwnedFd,
    root: Root,
    tree: Tree,
    layers: Vec<Layer>,
    filled: Vec<bool>,
    known: HashMap<NodeId, Vec<(u64, u64)>>,
    written: u64,
    as_root: bool,
    entries: usize,
    /// What could not be reproduced exactly.
    pub notes: Vec<String>,
}

impl Drop for View {
    fn drop(&mut self) {
        // remove_dir_all does not follow the symbolic links inside.
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

impl View {
    /// Reads the headers of every layer (pass 1) and lays out the skeleton.
    ///
    /// # Errors
    /// A layer that cannot be read or applied, or the temporary directory cannot be made.
    pub fn build(file: &File, blobs: &[LayerBlob]) -> Result<View, ImageError> {
        if blobs.len() > MAX_LAYERS {
            return Err(ImageError::Format(format!(
                "the image has {} layers, more than {MAX_LAYERS}",
                blobs.len()
            )));
        }
        let mut layers = Vec::with_capacity(blobs.len());
        for (i, b) in blobs.iter().enumerate() {
            let gzip = sniff_compression(file, b).map_err(|what| ImageError::Layer {
                index: i,
                blob: b.name.clone(),
                what,
            })?;
            layers.push(Layer {
                name: b.name.clone(),
                offset: b.offset,
                size: b.size,
                gzip,
            });
        }
        let mut tree = Tree::new();
        let mut entries = 0usize;
        for (i, l) in layers.iter().enumerate() {
            let lerr = |what: String| ImageError::Layer {
                index: i,
                blob: l.name.clone(),
                what,
            };
            let layer_no = u16::try_from(i).map_err(|_| lerr("too many layers".into()))?;
            let src: Box<dyn Source + '_> = if l.gzip {
                Box::new(Stream(gunzip(file, l)))
            } else {
                Box::new(Slice::new(file, l.offset, l.size))
            };
            let mut r = Reader::new(src);
            loop {
                match r.next_entry() {
                    Ok(Some(e)) => {
                        entries += 1;
                        tree.apply(layer_no, &e).map_err(|m| {
                            lerr(format!("entry \"{}\": {m}", escape_bytes(&e.path)))
                        })?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(lerr(e.to_string())),
                }
            }
        }
        let tmp = make_temp().map_err(|e| ImageError::Io {
            what: "cannot make a temporary directory".into(),
            source: e,
        })?;
        let io_err = |what: String| {
            move |e: nix::Error| ImageError::Io {
                what,
                source: io::Error::from(e),
            }
        };
        let rootfs = tmp.join("rootfs");
        let file = file.try_clone().map_err(|e| ImageError::Io {
            what: "cannot reopen the tarball".into(),
            source: e,
        })?;
        // From here on, Drop removes the directory whatever fails.
        let mut view = View {
            file,
            root_fd: open(
                &tmp,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("cannot open the temporary directory".into()))?,
            tmp,
            rootfs: rootfs.clone(),
            // Replaced below once the skeleton exists.
            root: Root::open(Path::new("/"), Vec::new()).map_err(|e| ImageError::Io {
                what: "cannot open /".into(),
                source: e,
            })?,
            filled: vec![false; tree.allocated()],
            tree,
            layers,
            known: HashMap::new(),
            written: 0,
            as_root: nix::unistd::geteuid().is_root(),
            entries,
            notes: Vec::new(),
        };
        mkdirat(&view.root_fd, "rootfs", Mode::from_bits_truncate(0o700))
            .map_err(io_err("cannot make the view's root".into()))?;
        let fd = openat(
            &view.root_fd,
            "rootfs",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("cannot open the view's root".into()))?;
        view.root_fd = fd;
        view.lay_out()?;
        view.root = Root::open(&rootfs, Vec::new()).map_err(|e| ImageError::Io {
            what: "cannot open the view's root".into(),
            source: e,
        })?;
        if !view.as_root {
            view.notes.push(
                "not run as root: owners and some directory modes of the image could not be reproduced, so permission checks for other users are approximate".into(),
            );
        }
        Ok(view)
    }

    /// Creates every node of the tree under the view's root, depth first.
    fn lay_out(&mut self) -> Result<(), ImageError> {
        struct Frame {
            id: NodeId,
            fd: OwnedFd,
            kids: Vec<NodeId>,
            next: usize,
        }
        let root_fd = self.root_fd.try_clone().map_err(|e| ImageError::Io {
            what: "cannot open the view's root".into(),
            source: e,
        })?;
        let mut stack = vec![Frame {
            id: ROOT,
            fd: root_fd,
            kids: self.tree.children(ROOT),
            next: 0,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(&child) = top.kids.get(top.next) else {
                let Some(done) = stack.pop() else { break };
                self.finish_dir(done.id, &done.fd)?;
                continue;
            };
            top.next += 1;
            let dir = top.fd.try_clone().map_err(|e| self.fail(child, e))?;
            if let Some(fd) = self.create(&dir, child)? {
                stack.push(Frame {
                    id: child,
                    fd,
                    kids: self.tree.children(child),
                    next: 0,
                });
            }
        }
        Ok(())
    }

    fn fail(&self, id: NodeId, e: impl Into<io::Error>) -> ImageError {
        ImageError::Io {
            what: format!(
                "cannot lay out {} in the view",
                escape_bytes(&self.tree.path_of(id))
            ),
            source: e.into(),
        }
    }

    fn finish_dir(&self, id: NodeId, fd: &OwnedFd) -> Result<(), ImageError> {
        let n = self.tree.node(id);
        let mut mode = n.mode;
        if self.as_root {
            if n.uid != 0 || n.gid != 0 {
                fchown(
                    fd.as_fd(),
                    Some(Uid::from_raw(n.uid)),
                    Some(Gid::from_raw(n.gid)),
                )
                .map_err(|e| self.fail(id, e))?;
            }
        } else {
            mode |= 0o700;
        }
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| self.fail(id, e))
    }

    /// Creates one node in `dir`; returns the fd of a new directory to descend into.
    fn create(&mut self, dir: &OwnedFd, id: NodeId) -> Result<Option<OwnedFd>, ImageError> {
        let n = self.tree.node(id).clone();
        let name = n.name.as_slice();
        let owner = |s: &View| -> (Option<Uid>, Option<Gid>) {
            if s.as_root && (n.uid != 0 || n.gid != 0) {
                (Some(Uid::from_raw(n.uid)), Some(Gid::from_raw(n.gid)))
            } else {
                (None, None)
            }
        };
        match &n.kind {
            NodeKind::Dir(_) => {
                mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| self.fail(id, e))?;
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| self.fail(id, e))?;
                Ok(Some(fd))
            }
            NodeKind::File { size, .. } => {
                let fd = openat(
                    dir,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.fail(id, e))?;
                if *size > 0 {
                    let len = i64::try_from(*size)
                        .map_err(|_| self.fail(id, io::Error::from(io::ErrorKind::FileTooLarge)))?;
                    ftruncate(&fd, len).map_err(|e| self.fail(id, e))?;
                }
                if let (Some(u), Some(g)) = owner(self) {
                    fchown(fd.as_fd(), Some(u), Some(g)).map_err(|e| self.fail(id, e))?;
                }
                let mode = if self.as_root { n.mode } else { n.mode | 0o200 };
                fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| self.fail(id, e))?;
                if *size == 0
                    && let Some(f) = self.filled.get_mut(id as usize)
                {
                    *f = true;
                }
                Ok(None)
            }
            NodeKind::Symlink(target) => {
                symlinkat(target.as_slice(), dir, name).map_err(|e| self.fail(id, e))?;
                Ok(None)
            }
            NodeKind::Fifo | NodeKind::Char | NodeKind::Block => {
                let perm = Mode::from_bits_truncate(n.mode & 0o777);
                let made = match n.kind {
                    // Device number 0: the node says what the image has without giving access
                    // to any device of this host.
                    NodeKind::Char => mknodat(dir, name, SFlag::S_IFCHR, perm, 0),
                    NodeKind::Block => mknodat(dir, name, SFlag::S_IFBLK, perm, 0),
                    _ => mkfifoat(dir, name, perm),
                };
                if made.is_err() {
                    // Without CAP_MKNOD a FIFO stands in: not a regular file either.
                    mkfifoat(dir, name, perm).map_err(|e| self.fail(id, e))?;
                    self.notes.push(format!(
                        "{} is a device in the image; a FIFO stands in for it",
                        escape_bytes(&self.tree.path_of(id))
                    ));
                }
                if let (Some(u), Some(g)) = owner(self) {
                    nix::unistd::fchownat(
                        dir,
                        name,
                        Some(u),
                        Some(g),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|e| self.fail(id, e))?;
                }
                fchmodat(
                    dir,
                    name,
                    Mode::from_bits_truncate(n.mode),
                    FchmodatFlags::NoFollowSymlink,
                )
                .or_else(|_| {
                    fchmodat(
                        dir,
                        name,
                        Mode::from_bits_truncate(n.mode),
                        FchmodatFlags::FollowSymlink,
                    )
                })
                .map_err(|e| self.fail(id, e))?;
                Ok(None)
            }
        }
    }

    /// The view's root directory on the host (give it to the checks as the rootfs).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The rooted handle on the view (the resolver).
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Entries read from all layers.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The node at a canonical container path (as the resolver returns it).
    pub fn node_at(&self, path: &[u8]) -> Option<NodeId> {
        self.tree.lookup(path)
    }

    /// The regular file a container path leads to, following links through the resolver.
    pub fn resolve_file(&self, path: &[u8]) -> Option<NodeId> {
        let abs = if path.starts_with(b"/") {
            path.to_vec()
        } else {
            let mut p = b"/".to_vec();
            p.extend_from_slice(path);
            p
        };
        match self.root.resolve(&abs, true) {
            Resolution::Found(r) if r.stat.st_mode & libc::S_IFMT == libc::S_IFREG => {
                self.tree.lookup(&r.path)
            }
            _ => None,
        }
    }

    /// Whether the checks can read this node as the image has it: not a regular file, empty,
    /// or filled.
    pub fn is_ready(&self, id: NodeId) -> bool {
        !matches!(self.tree.node(id).kind, NodeKind::File { .. })
            || self.filled.get(id as usize).copied().unwrap_or(false)
    }

    /// Every regular file with an execute bit, by container path.
    pub fn executables(&self) -> Vec<NodeId> {
        self.tree
            .walk()
            .into_iter()
            .filter(|id| {
                let n = self.tree.node(*id);
                matches!(n.kind, NodeKind::File { .. }) && n.mode & 0o111 != 0
            })
            .collect()
    }

    /// The container path of a node.
    pub fn path_of(&self, id: NodeId) -> Vec<u8> {
        self.tree.path_of(id)
    }

    /// Writes the bytes the checks read into the placeholders of `ids` (and of the loaders and
    /// interpreters they name). Returns how many files were filled.
    ///
    /// # Errors
    /// A layer cannot be read where the headers said the data is, or more than
    /// [`MAX_FILL_BYTES`] would be written.
    pub fn fill(&mut self, ids: &[NodeId]) -> Result<usize, ImageError> {
        let mut pending: BTreeSet<NodeId> = ids
            .iter()
            .copied()
            .filter(|id| !self.is_ready(*id))
            .collect();
        let mut filled = 0usize;
        let mut passes = 0usize;
        let file = self.file.try_clone().map_err(|e| ImageError::Io {
            what: "cannot reopen the tarball".into(),
            source: e,
        })?;
        while !pending.is_empty() && passes < MAX_FILL_PASSES {
            passes += 1;
            let mut by_layer: BTreeMap<u16, BTreeMap<u64, Vec<NodeId>>> = BTreeMap::new();
            for id in std::mem::take(&mut pending) {
                if let NodeKind::File { src, .. } = self.tree.node(id).kind {
                    by_layer
                        .entry(src.layer)
                        .or_default()
                        .entry(src.offset)
                        .or_default()
                        .push(id);
                }
            }
            for (layer_no, mut queue) in by_layer {
                let Some(l) = self.layers.get(usize::from(layer_no)).cloned() else {
                    continue;
                };
                let lerr = |what: String| ImageError::Layer {
                    index: usize::from(layer_no),
                    blob: l.name.clone(),
                    what,
                };
                let mut z: Option<Box<dyn Read + '_>> = if l.gzip {
                    Some(Box::new(gunzip(&file, &l)))
                } else {
                    None
                };
                let mut pos = 0u64;
                while let Some((off, group)) = queue.pop_first() {
                    let Some(&first) = group.first() else {
                        continue;
                    };
                    let size = match self.tree.node(first).kind {
                        NodeKind::File { size, .. } => size,
                        _ => 0,
                    };
                    let known = self.known.get(&first).cloned().unwrap_or_default();
                    let cap = match z.as_mut() {
                        Some(z) => {
                            let mut r = Forward {
                                z: z.as_mut(),
                                pos: &mut pos,
                                base: off,
                            };
                            capture(&mut r, size, &known)
                        }
                        None => {
                            let mut r = Plain {
                                file: &file,
                                base: l.offset.saturating_add(off),
                            };
                            capture(&mut r, size, &known)
                        }
                    }
                    .map_err(|e| {
                        lerr(format!(
                            "cannot read {} at byte {off}: {e}",
                            escape_bytes(&self.tree.path_of(first))
                        ))
                    })?;
                    match cap {
                        Capture::Behind(need) => {
                            for id in group {
                                self.known.insert(id, need.clone());
                                pending.insert(id);
                            }
                        }
                        Capture::Done(ranges) => {
                            for id in &group {
                                self.write_ranges(*id, &ranges)?;
                                filled += 1;
                            }
                            for next in self.predict(&ranges, size) {
                                if self.is_ready(next) {
                                    continue;
                                }
                                let NodeKind::File { src, .. } = self.tree.node(next).kind else {
                                    continue;
                                };
                                let same = src.layer == layer_no;
                                if same && (z.is_none() || src.offset >= pos) {
                                    let g = queue.entry(src.offset).or_default();
                                    if !g.contains(&next) {
                                        g.push(next);
                                    }
                                } else {
                                    pending.insert(next);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(filled)
    }

    /// What a filled file names that the checks read next: its ELF loader, its `#!`
    /// interpreter.
    fn predict(&self, ranges: &[(u64, Vec<u8>)], size: u64) -> Vec<NodeId> {
        let head = head_of(ranges);
        let mut names: Vec<Vec<u8>> = Vec::new();
        if head.starts_with(b"\x7fELF") {
            let probe = Probe {
                got: ranges,
                size,
                misses: RefCell::new(Vec::new()),
            };
            if let Some(i) = elf::parse(head, &probe).and_then(|i| i.interp) {
                names.push(i);
            }
        } else if let Script::Script(sb) = script::parse(head) {
            names.push(sb.interpreter);
        }
        names.iter().filter_map(|n| self.resolve_file(n)).collect()
    }

    fn write_ranges(&mut self, id: NodeId, ranges: &[(u64, Vec<u8>)]) -> Result<(), ImageError> {
        let bytes: u64 = ranges.iter().map(|(_, b)| b.len() as u64).sum();
        if self.written.saturating_add(bytes) > MAX_FILL_BYTES {
            return Err(ImageError::Format(format!(
                "the files to check need more than {MAX_FILL_BYTES} bytes of the image"
            )));
        }
        let path = self.tree.path_of(id);
        let comps: Vec<&[u8]> = path
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let Some((leaf, dirs)) = comps.split_last() else {
            return Ok(());
        };
        let mut cur: Option<OwnedFd> = None;
        for d in dirs {
            let at = cur
                .as_ref()
                .map(|f| f.as_fd())
                .unwrap_or(self.root_fd.as_fd());
            let next = openat(
                at,
                *d,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.fail(id, e))?;
            cur = Some(next);
        }
        let at = cur
            .as_ref()
            .map(|f| f.as_fd())
            .unwrap_or(self.root_fd.as_fd());
        let fd = openat(
            at,
            *leaf,
            OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.fail(id, e))?;
        let f = File::from(fd);
        for (off, b) in ranges {
            f.write_all_at(b, *off).map_err(|e| self.fail(id, e))?;
        }
        self.written = self.written.saturating_add(bytes);
        if let Some(x) = self.filled.get_mut(id as usize) {
            *x = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<u8>, Vec<(u64, u64)>);

    impl RangeRead for Mem {
        fn read_range(&mut self, off: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
            self.1.push((off, len));
            let s = off as usize;
            Ok(self.0.get(s..s + len as usize).map(<[u8]>::to_vec))
        }
    }

    /// A 64-bit little-endian ELF whose program headers and PT_INTERP lie far past 4 KiB.
    fn far_elf() -> Vec<u8> {
        let mut f = vec![0u8; 20000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&10000u64.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let ph = 10000;
        f[ph..ph + 4].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        f[ph + 8..ph + 16].copy_from_slice(&15000u64.to_le_bytes());
        let interp = b"/lib/ld-far.so\0";
        f[ph + 32..ph + 40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
        f[15000..15000 + interp.len()].copy_from_slice(interp);
        f
    }

    #[test]
    fn capture_reads_the_prefix_then_what_the_elf_parser_needs() {
        let f = far_elf();
        let mut m = Mem(f.clone(), Vec::new());
        let Capture::Done(got) = capture(&mut m, f.len() as u64, &[]).unwrap() else {
            panic!("behind");
        };
        assert_eq!(m.1[0], (0, 4096));
        assert!(m.1.contains(&(10000, 56)), "{:?}", m.1);
        assert!(m.1.contains(&(15000, 15)), "{:?}", m.1);
        // What was captured answers the engine's own parse exactly.
        let probe = Probe {
            got: &got,
            size: f.len() as u64,
            misses: RefCell::new(Vec::new()),
        };
        let info = elf::parse(&f[..4096], &probe).unwrap();
        assert_eq!(info.interp.as_deref(), Some(&b"/lib/ld-far.so"[..]));
        assert!(probe.misses.borrow().is_empty());
        // A script needs its first bytes only.
        let s = b"#!/bin/sh\necho hi\n".to_vec();
        let mut m = Mem(s.clone(), Vec::new());
        capture(&mut m, s.len() as u64, &[]).unwrap();
        assert_eq!(m.1, [(0, s.len() as u64)]);
    }

    #[test]
    fn ranges_merge_and_a_straddling_miss_is_read_on_the_next_pass() {
        assert_eq!(
            merge_ranges(vec![(4000, 200), (0, 4096), (9000, 10), (9010, 5)]),
            [(0, 4200), (9000, 15)]
        );
        // Program headers straddling byte 4096: a forward reader passes them once, then
        // reads them with the prefix.
        let mut f = far_elf();
        f[32..40].copy_from_slice(&4060u64.to_le_bytes());
        f.copy_within(10000..10056, 4060);
        let mut src: &[u8] = &f;
        let mut pos = 0u64;
        let mut r = Forward {
            z: &mut src,
            pos: &mut pos,
            base: 0,
        };
        let Capture::Behind(known) = capture(&mut r, f.len() as u64, &[]).unwrap() else {
            panic!("the straddling table is behind a forward reader");
        };
        let mut src: &[u8] = &f;
        let mut pos = 0u64;
        let mut r = Forward {
            z: &mut src,
            pos: &mut pos,
            base: 0,
        };
        let Capture::Done(got) = capture(&mut r, f.len() as u64, &known).unwrap() else {
            panic!("second pass");
        };
        let probe = Probe {
            got: &got,
            size: f.len() as u64,
            misses: RefCell::new(Vec::new()),
        };
        let info = elf::parse(&f[..4096], &probe).unwrap();
        assert_eq!(info.interp.as_deref(), Some(&b"/lib/ld-far.so"[..]));
    }

    proptest::proptest! {
        #[test]
        fn capture_of_arbitrary_elf_like_bytes_is_bounded(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6000),
            size_extra in 0u64..1_000_000,
        ) {
            let mut f = b"\x7fELF\x02\x01\x01".to_vec();
            f.extend_from_slice(&tail);
            let size = f.len() as u64 + size_extra;
            let mut m = Mem(f, Vec::new());
            let _ = capture(&mut m, size, &[]);
            proptest::prop_assert!(m.1.len() <= 16);
            proptest::prop_assert!(m.1.iter().all(|(_, l)| *l <= MAX_RANGE));
        }
    }

    #[test]
    fn a_layer_that_expands_past_its_bound_fails() {
        let data = vec![0u8; 10_000];
        let mut b = Bounded {
            inner: &data[..],
            read: 0,
            limit: 4096,
        };
        let mut sink = Vec::new();
        let e = b.read_to_end(&mut sink).unwrap_err();
        assert!(e.to_string().contains("more than 4096 bytes"), "{e}");
    }

    #[test]
    fn a_forward_source_that_passed_a_range_says_so() {
        let f = far_elf();
        let mut src: &[u8] = &f;
        let mut pos = 12000u64; // already past the program headers
        let mut skipped = vec![0u8; 12000];
        src.read_exact(&mut skipped).unwrap();
        let mut r = Forward {
            z: &mut src,
            pos: &mut pos,
            base: 0,
        };
        assert!(matches!(
            capture(&mut r, f.len() as u64, &[]),
            Ok(Capture::Behind(_))
        ));
    }
}
