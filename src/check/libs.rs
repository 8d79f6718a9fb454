//! What fails right after exec, once the kernel has said yes: the dynamic loader's search for
//! the libraries the program needs, glibc's x86-64 ISA level check, and mapping the segments
//! with the host's page size.
//!
//! The library search follows the loader the program names in `PT_INTERP`:
//!
//! - glibc (elf/dl-load.c `_dl_map_object`): a name with a slash is opened as given (relative
//!   to the working directory, after `$ORIGIN`/`$LIB`/`$PLATFORM` expansion); otherwise
//!   `DT_RPATH` of the requesting object and of each object above it up to the program, unless
//!   the requesting object has `DT_RUNPATH`; then `LD_LIBRARY_PATH` (split at `:` and `;`);
//!   then the requesting object's `DT_RUNPATH`; then `/etc/ld.so.cache`; then the default
//!   directories. The last two are skipped for an object marked `DF_1_NODEFLIB`. A candidate
//!   of the other ELF class is skipped and remembered (`open_verify`: "wrong ELF class"), one
//!   of another machine is skipped silently, a file that is not ELF at all stops the load.
//! - musl (ldso/dynlink.c `load_library`): the C library's own names (`libc`, `libpthread`,
//!   `librt`, `libm`, `libdl`, `libutil`, `libxnet`) are the loader itself; a name with a slash
//!   is opened as given; otherwise `LD_LIBRARY_PATH` (split at `:` and newline), then the
//!   search path of the requesting object and of each object above it (`DT_RUNPATH`, else
//!   `DT_RPATH`, with `$ORIGIN` only: any other `$` drops it, `fixup_rpath`), then the lines of
//!   `<prefix>/etc/ld-musl-<arch>.path`, or `/lib:/usr/local/lib:/usr/lib` when that file does
//!   not exist. There is no cache.
//!
//! The walk is breadth first like the loaders' (the program's `DT_NEEDED` in order, then each
//! library's own), and bounded: at most [`MAX_LIBRARIES`] libraries opened, [`MAX_DEPTH`]
//! levels, [`MAX_PROBES`] candidate paths per diagnosis. Every container path goes through the
//! rooted resolver; every file read is a bounded positioned read.
//!
//! Every finding here is a warning: exec itself succeeds, so enforce mode never refuses on them.

use std::cell::OnceCell;
use std::fs::File;
use std::rc::Rc;

use super::{Checker, Exec, base_name, join, read_prefix};
use crate::diagnosis::{Code, Finding, Severity};
use crate::inspect::dynamic::{self, Dynamic};
use crate::inspect::elf::{self, Class, ElfInfo, Endian, ReadAt};
use crate::inspect::ldcache::{self, LdCache};
use crate::rootfs::resolve::{self, Resolution, Resolved};
use crate::sanitize::escape_bytes;

use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64,
};

/// Most libraries opened in one diagnosis.
pub const MAX_LIBRARIES: usize = 64;
/// How deep the walk goes below the program (its own `DT_NEEDED` are level 1).
pub const MAX_DEPTH: usize = 8;
/// Most candidate paths resolved in one diagnosis.
pub const MAX_PROBES: usize = 512;
/// Most `missing-library` findings in one diagnosis.
const MAX_MISSING: usize = 8;
/// Directories listed in a finding's evidence.
const MAX_SHOWN: usize = 32;
/// Bytes read from the start of a library (ELF header and program headers; more program
/// headers are fetched by one bounded read).
const LIB_HEADER: usize = 1024;
/// Largest `/etc/ld-musl-<arch>.path` read.
const MAX_MUSL_PATH_FILE: usize = 64 * 1024;

/// The program's ELF loader, found and usable.
#[derive(Debug)]
pub(super) struct Loader {
    /// `PT_INTERP` as the program names it.
    pub interp: Vec<u8>,
    /// Its `DT_SONAME`, when it has one.
    pub soname: Option<Vec<u8>>,
    /// Its headers.
    pub info: ElfInfo,
    /// Where it resolved.
    pub path: Vec<u8>,
}

/// Whose search rules apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Family {
    /// glibc's `ld-linux*.so`, `ld64.so.*`, `ld.so.1`.
    Glibc,
    /// musl's `ld-musl-<arch>.so.1`.
    Musl {
        /// `<arch>` of the loader's name (the `LDSO_ARCH` of `/etc/ld-musl-<arch>.path`).
        arch: Vec<u8>,
    },
}

/// The loader family of a `PT_INTERP` path, by its file name; `None` for a loader execguard
/// does not know the rules of.
pub(super) fn family(interp: &[u8]) -> Option<Family> {
    let b = base_name(interp);
    if let Some(rest) = b.strip_prefix(b"ld-musl-") {
        let arch = rest.strip_suffix(b".so.1").unwrap_or(rest);
        return Some(Family::Musl {
            arch: arch.to_vec(),
        });
    }
    if b.starts_with(b"ld-linux") || b.starts_with(b"ld64.so") || b == b"ld.so.1" {
        return Some(Family::Glibc);
    }
    None
}

/// musl's own names (`load_library`: "lib" then one of `c.`, `pthread.`, `rt.`, `m.`, `dl.`,
/// `util.`, `xnet.`): they resolve to the loader, which is the C library.
fn musl_reserved(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"lib") else {
        return false;
    };
    [
        &b"c."[..],
        b"pthread.",
        b"rt.",
        b"m.",
        b"dl.",
        b"util.",
        b"xnet.",
    ]
    .iter()
    .any(|r| rest.starts_with(r))
}

/// glibc's default directories for a program, as the common distributions build it: the
/// multiarch directories (Debian, Ubuntu), `lib64` (Fedora, openSUSE, Arch) and `lib`. A
/// union, so a library is called missing only when no layout would find it.
fn glibc_system_dirs(info: &ElfInfo) -> (Vec<&'static str>, &'static str) {
    let lib64 = info.class == Some(Class::Elf64);
    let little = info.endian == Some(Endian::Little);
    let (triplet, wide): (&'static str, bool) = match info.machine {
        EM_X86_64 if lib64 => ("x86_64-linux-gnu", true),
        EM_X86_64 => ("x86_64-linux-gnux32", false),
        EM_386 => ("i386-linux-gnu", false),
        EM_AARCH64 => ("aarch64-linux-gnu", true),
        EM_ARM if info.flags & 0x400 != 0 => ("arm-linux-gnueabihf", false),
        EM_ARM => ("arm-linux-gnueabi", false),
        EM_PPC64 if little => ("powerpc64le-linux-gnu", true),
        EM_PPC64 => ("powerpc64-linux-gnu", true),
        EM_S390 => ("s390x-linux-gnu", true),
        EM_RISCV => ("riscv64-linux-gnu", true),
        EM_LOONGARCH => ("loongarch64-linux-gnu", true),
        _ => ("", lib64),
    };
    let mut dirs: Vec<&'static str> = Vec::new();
    match triplet {
        "x86_64-linux-gnu" => dirs.extend(["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]),
        "x86_64-linux-gnux32" => dirs.extend([
            "/lib/x86_64-linux-gnux32",
            "/usr/lib/x86_64-linux-gnux32",
            "/libx32",
            "/usr/libx32",
        ]),
        "i386-linux-gnu" => dirs.extend(["/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu"]),
        "aarch64-linux-gnu" => {
            dirs.extend(["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"])
        }
        "arm-linux-gnueabihf" => {
            dirs.extend(["/lib/arm-linux-gnueabihf", "/usr/lib/arm-linux-gnueabihf"])
        }
        "arm-linux-gnueabi" => {
            dirs.extend(["/lib/arm-linux-gnueabi", "/usr/lib/arm-linux-gnueabi"])
        }
        "powerpc64le-linux-gnu" => dirs.extend([
            "/lib/powerpc64le-linux-gnu",
            "/usr/lib/powerpc64le-linux-gnu",
        ]),
        "powerpc64-linux-gnu" => {
            dirs.extend(["/lib/powerpc64-linux-gnu", "/usr/lib/powerpc64-linux-gnu"])
        }
        "s390x-linux-gnu" => dirs.extend(["/lib/s390x-linux-gnu", "/usr/lib/s390x-linux-gnu"]),
        "riscv64-linux-gnu" => dirs.extend([
            "/lib/riscv64-linux-gnu",
            "/usr/lib/riscv64-linux-gnu",
            "/lib64/lp64d",
            "/usr/lib64/lp64d",
        ]),
        "loongarch64-linux-gnu" => dirs.extend([
            "/lib/loongarch64-linux-gnu",
            "/usr/lib/loongarch64-linux-gnu",
        ]),
        _ => {}
    }
    if wide {
        dirs.extend(["/lib64", "/usr/lib64"]);
    }
    dirs.extend(["/lib", "/usr/lib"]);
    (dirs, triplet)
}

/// `AT_PLATFORM` as the kernel reports it for a program of this machine (`$PLATFORM`).
fn platform(info: &ElfInfo) -> &'static str {
    match info.machine {
        EM_X86_64 => "x86_64",
        EM_386 => "i686",
        EM_AARCH64 => "aarch64",
        EM_ARM => "v7l",
        EM_PPC64 => "power8",
        EM_S390 => "z13",
        _ => elf::machine_name(info.machine),
    }
}

/// glibc's `is_dst`: the length of `$NAME` or `${NAME}` at the start of `s` (after the `$`),
/// when it is `name` and not followed by an identifier character.
fn is_dst(s: &[u8], name: &[u8]) -> usize {
    let curly = s.first() == Some(&b'{');
    let body = if curly {
        s.get(1..).unwrap_or_default()
    } else {
        s
    };
    if !body.starts_with(name) {
        return 0;
    }
    let next = body.get(name.len()).copied().unwrap_or(0);
    if curly {
        if next != b'}' {
            return 0;
        }
        return name.len() + 2;
    }
    if next.is_ascii_alphanumeric() || next == b'_' {
        return 0;
    }
    name.len()
}

/// glibc's dynamic string tokens in one path element (elf/dl-load.c
/// `_dl_dst_substitute`): `$ORIGIN`, `$PLATFORM` and `$LIB`, braced or not; any other `$` is
/// kept as written. `$LIB` is a build choice (`lib`, `lib64`, or the multiarch directory), so
/// every choice is returned. An element with `$ORIGIN` and no known origin gives nothing.
fn glibc_expand(elem: &[u8], origin: Option<&[u8]>, plat: &str, libs: &[&str]) -> Vec<Vec<u8>> {
    let mut outs: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while let Some(&c) = elem.get(i) {
        if c == b'$' {
            let rest = elem.get(i + 1..).unwrap_or_default();
            let n = is_dst(rest, b"ORIGIN");
            if n > 0 {
                let Some(o) = origin else {
                    return Vec::new();
                };
                outs.iter_mut().for_each(|x| x.extend_from_slice(o));
                i += 1 + n;
                continue;
            }
            let n = is_dst(rest, b"PLATFORM");
            if n > 0 {
                outs.iter_mut()
                    .for_each(|x| x.extend_from_slice(plat.as_bytes()));
                i += 1 + n;
                continue;
            }
            let n = is_dst(rest, b"LIB");
            if n > 0 {
                outs = outs
                    .iter()
                    .flat_map(|x| {
                        libs.iter().map(move |l| {
                            let mut y = x.clone();
                            y.extend_from_slice(l.as_bytes());
                            y
                        })
                    })
                    .collect();
                i += 1 + n;
                continue;
            }
        }
        outs.iter_mut().for_each(|x| x.push(c));
        i += 1;
    }
    outs
}

/// musl's `fixup_rpath`: `$ORIGIN` and `${ORIGIN}` replaced by the origin; a path with any
/// other `$` is not used at all.
fn musl_expand(path: &[u8], origin: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while let Some(&c) = path.get(i) {
        if c == b'$' {
            let rest = path.get(i..).unwrap_or_default();
            if rest.starts_with(b"${ORIGIN}") {
                out.extend_from_slice(origin);
                i += 9;
                continue;
            }
            if rest.starts_with(b"$ORIGIN") {
                out.extend_from_slice(origin);
                i += 7;
                continue;
            }
            return None;
        }
        out.push(c);
        i += 1;
    }
    Some(out)
}

/// Largest ld.so.cache read into memory whole (Debian's full desktop cache is about 200 KiB);
/// a larger one is searched by positioned reads on the file, as the parser allows.
const MAX_CACHE_BYTES: u64 = 1 << 20;

/// ld.so.cache as the lookups read it: in memory when small (one read instead of a pread and
/// an fstat per probe, dozens per library), else the file itself.
fn cache_source(f: File) -> Option<Box<dyn ReadAt>> {
    use std::io::Read;
    let len = f.metadata().ok().filter(|m| m.is_file())?.len();
    if len > MAX_CACHE_BYTES {
        return Some(Box::new(f));
    }
    let mut out = Vec::with_capacity(usize::try_from(len).ok()?);
    f.take(MAX_CACHE_BYTES).read_to_end(&mut out).ok()?;
    Some(Box::new(out))
}

/// The directory part of a container path (`/usr/lib` of `/usr/lib/libz.so.1`), or `.`.
fn dir_of(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/".to_vec(),
        Some(i) => path.get(..i).unwrap_or_default().to_vec(),
        None => b".".to_vec(),
    }
}

/// One object of the walk: the program or a library it pulled in.
struct Obj {
    /// Its path as the loader names it (the program's resolved path, a library's candidate).
    path: Vec<u8>,
    /// `$ORIGIN`: its directory.
    origin: Vec<u8>,
    dynamic: Dynamic,
    /// The object whose `DT_NEEDED` brought it in.
    parent: Option<usize>,
    depth: usize,
}

/// A library file that the loader would take.
struct Lib {
    path: Vec<u8>,
    info: ElfInfo,
    header: Vec<u8>,
    file: File,
    /// Its dynamic section, once read (a remembered library is read once per sweep).
    dynamic: OnceCell<Option<Dynamic>>,
}

/// One candidate path.
enum Probe {
    Found(Rc<Lib>),
    Absent,
    /// An ELF file of the other class (glibc skips it and says so if nothing else is found).
    OtherClass(Vec<u8>, Option<Class>),
    /// It exists but the user may not read it or search a directory on the way.
    Denied(Vec<u8>),
    /// It exists but is not a loadable ELF file: the load stops there.
    Broken(Vec<u8>, &'static str),
    /// It lies where execguard cannot see (a mount), or the budget is spent.
    Unknown,
}

/// Key of a remembered probe: the same path under the same root, for the same user and the
/// same kind of program, probes the same.
#[derive(Hash, PartialEq, Eq)]
struct MemoKey {
    root: (u64, u64),
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    dac: (bool, bool),
    glibc: bool,
    class: Option<Class>,
    machine: u16,
    endian: Option<elf::Endian>,
    path: Vec<u8>,
}

/// A remembered probe (an unknown one is never remembered).
enum Memo {
    Found(Rc<Lib>),
    Absent,
    OtherClass(Vec<u8>, Option<Class>),
    Denied(Vec<u8>),
    Broken(Vec<u8>, &'static str),
}

impl Memo {
    fn of(p: &Probe) -> Option<Memo> {
        Some(match p {
            Probe::Found(l) => Memo::Found(Rc::clone(l)),
            Probe::Absent => Memo::Absent,
            Probe::OtherClass(p, c) => Memo::OtherClass(p.clone(), *c),
            Probe::Denied(p) => Memo::Denied(p.clone()),
            Probe::Broken(p, w) => Memo::Broken(p.clone(), w),
            Probe::Unknown => return None,
        })
    }

    fn probe(&self) -> Probe {
        match self {
            Memo::Found(l) => Probe::Found(Rc::clone(l)),
            Memo::Absent => Probe::Absent,
            Memo::OtherClass(p, c) => Probe::OtherClass(p.clone(), *c),
            Memo::Denied(p) => Probe::Denied(p.clone()),
            Memo::Broken(p, w) => Probe::Broken(p.clone(), w),
        }
    }
}

/// Most probes remembered per thread before the memo starts over.
const MEMO_MAX: usize = 8192;

/// Most remembered libraries (each holds an open descriptor) per thread.
const MEMO_MAX_FILES: usize = 256;

thread_local! {
    /// The probe memo of an image-wide sweep (`None`: off, as for every single check).
    static MEMO: std::cell::RefCell<Option<std::collections::HashMap<MemoKey, Memo>>> =
        const { std::cell::RefCell::new(None) };
    /// How many remembered probes hold a descriptor.
    static MEMO_FILES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The ld.so.cache of the sweep's root (by its dev and inode), once read.
    static LD_CACHE: std::cell::RefCell<Option<RootLdCache>> =
        const { std::cell::RefCell::new(None) };
}

/// ld.so.cache as read: where lookups read it from, and its parsed index.
type LdSource = (Box<dyn ReadAt>, LdCache);

/// A root's (dev, ino) and its ld.so.cache, if it has a readable one.
type RootLdCache = ((u64, u64), Option<Rc<LdSource>>);

/// A root's (dev, ino) and a container path.
type LoaderKey = ((u64, u64), Vec<u8>);

/// Most ELF loaders remembered per thread.
const LOADERS_MAX: usize = 64;

/// What a check saw of a program's ELF loader that it could open and read: only what the
/// file system decides (the user's permissions are judged again each time).
pub(super) struct LoaderSeen {
    /// Canonical container path it resolved to.
    pub path: Vec<u8>,
    /// `fstat` of it.
    pub stat: libc::stat,
    /// The directories searched on the way.
    pub dirs: Vec<resolve::DirStep>,
    /// Its headers and `DT_SONAME`; `None` when it is not an ELF file.
    pub elf: Option<(ElfInfo, Option<Vec<u8>>)>,
}

thread_local! {
    /// The loaders of a sweep's root, by the root's (dev, ino) and the container path asked.
    static LOADERS: std::cell::RefCell<std::collections::HashMap<LoaderKey, Rc<LoaderSeen>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The key of a loader in the sweep's memo: none when the memo is off or the root has mounts
/// (what lies under a mount is not the root's alone).
fn loader_key(root: &resolve::Root, path: &[u8]) -> Option<LoaderKey> {
    if !MEMO.with(|m| m.borrow().is_some()) || !root.mounts().is_empty() {
        return None;
    }
    let st = root.stat().ok()?;
    Some(((st.st_dev, st.st_ino), path.to_vec()))
}

/// The loader at `path` (absolute) as an earlier check of this sweep saw it.
pub(super) fn remembered_loader(root: &resolve::Root, path: &[u8]) -> Option<Rc<LoaderSeen>> {
    let key = loader_key(root, path)?;
    LOADERS.with(|l| l.borrow().get(&key).cloned())
}

/// Remember what a check saw of the loader at `path` (absolute), for the rest of the sweep
/// (`seen` is not called when the memo is off).
pub(super) fn remember_loader(
    root: &resolve::Root,
    path: &[u8],
    seen: impl FnOnce() -> LoaderSeen,
) {
    let Some(key) = loader_key(root, path) else {
        return;
    };
    LOADERS.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() < LOADERS_MAX {
            l.insert(key, Rc::new(seen()));
        }
    });
}

/// Run `f` with library probes, the root's ld.so.cache and its ELF loaders remembered on
/// this thread: a sweep checks hundreds of programs of one root that load the same loader and
/// libraries. What depends on the user (permissions) is judged again for each program. Off
/// again afterwards, with every remembered file closed.
pub fn with_probe_memo<T>(f: impl FnOnce() -> T) -> T {
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            MEMO.with(|m| *m.borrow_mut() = None);
            MEMO_FILES.with(|c| c.set(0));
            LD_CACHE.with(|c| *c.borrow_mut() = None);
            LOADERS.with(|l| l.borrow_mut().clear());
        }
    }
    MEMO.with(|m| *m.borrow_mut() = Some(std::collections::HashMap::new()));
    let _off = Off;
    f()
}

/// How one name's search ended.
enum Outcome {
    Found(Rc<Lib>),
    Missing(Box<Missing>),
    Unknown,
}

/// What a failed search saw.
#[derive(Default)]
struct Missing {
    /// Directories tried, raw (empty: the working directory).
    searched: Vec<Vec<u8>>,
    other_class: Option<(Vec<u8>, Option<Class>)>,
    denied: Option<Vec<u8>>,
    broken: Option<(Vec<u8>, &'static str)>,
    cache: Option<&'static str>,
}

/// One step of a search.
enum Step {
    Dir(Vec<u8>),
    /// Every `LD_LIBRARY_PATH` directory.
    Env,
    /// `/etc/ld.so.cache`.
    Cache,
    /// Every default directory.
    Sys,
}

/// The walk over the program's libraries (read-only on the checker; findings are returned).
struct Walk<'c, 'a> {
    c: &'c Checker<'a>,
    fam: Family,
    prog: &'c ElfInfo,
    prog_path: Vec<u8>,
    argv0: Vec<u8>,
    exec_path: Vec<u8>,
    native: bool,
    env_dirs: Vec<Vec<u8>>,
    ld_library_path: Option<String>,
    sys_dirs: Option<Vec<Vec<u8>>>,
    musl_path_file: Option<String>,
    triplet: &'static str,
    cache: Option<Option<Rc<LdSource>>>,
    /// The root's (dev, ino), once asked: part of the memo key.
    root_id: Option<Option<(u64, u64)>>,
    probes: usize,
    opened: usize,
    objs: Vec<Obj>,
    loaded: Vec<Vec<u8>>,
    libc_dir: Option<Vec<u8>>,
    findings: Vec<Finding>,
    missing: usize,
}

impl<'c, 'a> Walk<'c, 'a> {
    fn satisfied(&self, name: &[u8]) -> bool {
        if matches!(self.fam, Family::Musl { .. }) && musl_reserved(name) {
            return true;
        }
        self.loaded.iter().any(|l| l == name)
    }

    /// The objects from `i` up to the program.
    fn chain(&self, i: usize) -> Vec<usize> {
        let mut v = Vec::new();
        let mut cur = Some(i);
        while let Some(k) = cur {
            if v.len() > MAX_DEPTH + 1 {
                break;
            }
            v.push(k);
            cur = self.objs.get(k).and_then(|o| o.parent);
        }
        v
    }

    fn lib_dirs(&self) -> Vec<&'static str> {
        match self.triplet {
            "" => vec!["lib64", "lib"],
            "x86_64-linux-gnu" => vec!["lib/x86_64-linux-gnu", "x86_64-linux-gnu", "lib64", "lib"],
            "aarch64-linux-gnu" => {
                vec!["lib/aarch64-linux-gnu", "aarch64-linux-gnu", "lib64", "lib"]
            }
            _ => vec!["lib64", "lib"],
        }
    }

    /// A search path (`DT_RPATH`, `DT_RUNPATH`, `LD_LIBRARY_PATH`) as directories, expanded
    /// with `origin`.
    fn split(&self, path: &[u8], seps: &[u8], origin: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        match &self.fam {
            Family::Glibc => {
                let libs = self.lib_dirs();
                for elem in path.split(|b| seps.contains(b)) {
                    if elem.is_empty() {
                        // strsep's empty element: the working directory.
                        out.push(Vec::new());
                        continue;
                    }
                    for e in glibc_expand(elem, origin, platform(self.prog), &libs) {
                        if !e.is_empty() {
                            out.push(e);
                        }
                    }
                }
            }
            Family::Musl { .. } => {
                let expanded = match origin {
                    Some(o) => musl_expand(path, o),
                    None => Some(path.to_vec()),
                };
                if let Some(p) = expanded {
                    for elem in p.split(|b| seps.contains(b)) {
                        if !elem.is_empty() {
                            out.push(elem.to_vec());
                        }
                    }
                }
            }
        }
        out
    }

    /// musl's `sys_path`: the lines of `<prefix>/etc/ld-musl-<arch>.path`, or its default.
    fn musl_sys(&mut self, arch: &[u8], interp: &[u8]) -> Vec<Vec<u8>> {
        // The prefix is what lies before the loader's parent directory (`/usr/local/musl` of
        // `/usr/local/musl/lib/ld-musl-x86_64.so.1`, nothing for `/lib/...`): the
        // second-to-last slash, for an absolute loader name.
        let mut z = 0;
        let mut t = 0;
        for (i, b) in interp.iter().enumerate() {
            if *b == b'/' {
                z = t;
                t = i;
            }
        }
        let prefix: &[u8] = if interp.first() == Some(&b'/') {
            interp.get(..z).unwrap_or_default()
        } else {
            b""
        };
        let mut file = prefix.to_vec();
        file.extend_from_slice(b"/etc/ld-musl-");
        file.extend_from_slice(arch);
        file.extend_from_slice(b".path");
        self.musl_path_file = Some(escape_bytes(&file));
        let default = || -> Vec<Vec<u8>> {
            [&b"/lib"[..], b"/usr/local/lib", b"/usr/lib"]
                .iter()
                .map(|d| d.to_vec())
                .collect()
        };
        match self.c.root.resolve(&file, true) {
            Resolution::Found(r) => {
                let Ok(f) = resolve::open_for_read(&r) else {
                    // musl: any error but ENOENT leaves an empty system path.
                    return Vec::new();
                };
                let mut buf = vec![0u8; MAX_MUSL_PATH_FILE];
                let n = read_prefix(&f, &mut buf);
                buf.truncate(n);
                buf.split(|b| *b == b':' || *b == b'\n')
                    .filter(|e| !e.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect()
            }
            Resolution::NotFound { .. } => default(),
            _ => Vec::new(),
        }
    }

    /// `/etc/ld.so.cache`, read once per diagnosis (once per root in a sweep).
    fn cache(&mut self) -> Option<&LdSource> {
        if self.cache.is_none() {
            let root = if MEMO.with(|m| m.borrow().is_some()) {
                self.root_key()
            } else {
                None
            };
            let remembered = root.and_then(|root| {
                LD_CACHE.with(|c| {
                    c.borrow()
                        .as_ref()
                        .filter(|(r, _)| *r == root)
                        .map(|(_, v)| v.clone())
                })
            });
            let opened = match remembered {
                Some(v) => v,
                None => {
                    let v = match self.c.root.resolve(b"/etc/ld.so.cache", true) {
                        Resolution::Found(r) => resolve::open_for_read(&r)
                            .ok()
                            .and_then(cache_source)
                            .and_then(|src| LdCache::parse(src.as_ref()).map(|c| (src, c))),
                        _ => None,
                    }
                    .map(Rc::new);
                    if let Some(root) = root {
                        LD_CACHE.with(|c| *c.borrow_mut() = Some((root, v.clone())));
                    }
                    v
                }
            };
            self.cache = Some(opened);
        }
        self.cache.as_ref().and_then(Option::as_deref)
    }

    /// The root's (dev, ino), the memo's key for it.
    fn root_key(&mut self) -> Option<(u64, u64)> {
        *self
            .root_id
            .get_or_insert_with(|| self.c.root.stat().ok().map(|st| (st.st_dev, st.st_ino)))
    }

    /// Looks at one candidate path (through the sweep's memo when one is on).
    fn probe(&mut self, path: &[u8]) -> Probe {
        if self.probes >= MAX_PROBES {
            return Probe::Unknown;
        }
        self.probes += 1;
        if !MEMO.with(|m| m.borrow().is_some()) {
            return self.probe_fresh(path);
        }
        let Some(root) = self.root_key() else {
            return self.probe_fresh(path);
        };
        let u = &self.c.user;
        let key = MemoKey {
            root,
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
            dac: (u.dac_override, u.dac_read_search),
            glibc: self.fam == Family::Glibc,
            class: self.prog.class,
            machine: self.prog.machine,
            endian: self.prog.endian,
            path: path.to_vec(),
        };
        if let Some(hit) = MEMO.with(|m| {
            m.borrow()
                .as_ref()
                .and_then(|map| map.get(&key).map(Memo::probe))
        }) {
            return hit;
        }
        let fresh = self.probe_fresh(path);
        let holds_fd = matches!(fresh, Probe::Found(_));
        if holds_fd && MEMO_FILES.with(std::cell::Cell::get) >= MEMO_MAX_FILES {
            return fresh;
        }
        if let Some(memo) = Memo::of(&fresh) {
            MEMO.with(|m| {
                if let Some(map) = m.borrow_mut().as_mut() {
                    if map.len() >= MEMO_MAX {
                        map.clear();
                        MEMO_FILES.with(|c| c.set(0));
                    }
                    map.insert(key, memo);
                    if holds_fd {
                        MEMO_FILES.with(|c| c.set(c.get() + 1));
                    }
                }
            });
        }
        fresh
    }

    /// Looks at one candidate path in the container.
    fn probe_fresh(&mut self, path: &[u8]) -> Probe {
        let (abs, r) = self.c.resolve(path);
        let res: Resolved = match r {
            Resolution::Found(res) => res,
            Resolution::NotFound { .. }
            | Resolution::NotDirectory { .. }
            | Resolution::Loop { .. }
            | Resolution::NameTooLong => return Probe::Absent,
            Resolution::Unverifiable { .. } | Resolution::Error { .. } => return Probe::Unknown,
        };
        let mode = res.stat.st_mode;
        if mode & libc::S_IFMT != libc::S_IFREG {
            return Probe::Absent;
        }
        let user = &self.c.user;
        if res
            .dirs
            .iter()
            .any(|d| !user.may_search(d.mode, d.uid, d.gid))
            || !user.may_read(mode, res.stat.st_uid, res.stat.st_gid)
        {
            return Probe::Denied(abs);
        }
        let Ok(file) = resolve::open_for_read(&res) else {
            return Probe::Unknown;
        };
        let mut header = vec![0u8; LIB_HEADER];
        let n = read_prefix(&file, &mut header);
        header.truncate(n);
        let glibc = self.fam == Family::Glibc;
        let Some(info) = elf::parse(&header, &file) else {
            return if glibc {
                Probe::Broken(abs, "invalid ELF header")
            } else {
                Probe::Broken(abs, "Exec format error")
            };
        };
        if glibc {
            if info.class != self.prog.class {
                return Probe::OtherClass(abs, info.class);
            }
            // elf_machine_matches_host: a library of another machine is passed over.
            if info.machine != self.prog.machine || info.endian != self.prog.endian {
                return Probe::Absent;
            }
            // open_verify's words for a header it refuses; other defects load and fail later.
            match &info.defect {
                Some(elf::Defect::HeaderTruncated { .. }) => {
                    return Probe::Broken(abs, "file too short");
                }
                Some(elf::Defect::BadType(_)) => {
                    return Probe::Broken(abs, "only ET_DYN and ET_EXEC can be loaded");
                }
                Some(elf::Defect::BadPhdrs { reason }) if reason.starts_with("e_phentsize") => {
                    return Probe::Broken(abs, "ELF file's phentsize not the expected size");
                }
                _ => {}
            }
        }
        Probe::Found(Rc::new(Lib {
            path: abs,
            info,
            header,
            file,
            dynamic: OnceCell::new(),
        }))
    }

    /// Tries `dir/name`; a verdict ends the search.
    fn try_dir(&mut self, dir: &[u8], name: &[u8], m: &mut Missing) -> Option<Outcome> {
        let path = if dir.is_empty() {
            name.to_vec()
        } else {
            join(dir, name)
        };
        if m.searched.len() < MAX_SHOWN && !m.searched.iter().any(|d| d == dir) {
            m.searched.push(dir.to_vec());
        }
        self.judge(&path, m)
    }

    fn judge(&mut self, path: &[u8], m: &mut Missing) -> Option<Outcome> {
        match self.probe(path) {
            Probe::Found(lib) => Some(Outcome::Found(lib)),
            Probe::Absent => None,
            Probe::OtherClass(p, c) => {
                m.other_class.get_or_insert((p, c));
                None
            }
            Probe::Denied(p) => {
                m.denied.get_or_insert(p);
                None
            }
            Probe::Broken(p, why) => {
                m.broken = Some((p, why));
                Some(Outcome::Missing(Box::new(std::mem::take(m))))
            }
            Probe::Unknown => Some(Outcome::Unknown),
        }
    }

    /// The search for `name` on behalf of object `i`.
    fn search(&mut self, i: usize, name: &[u8], interp: &[u8]) -> Outcome {
        let mut m = Missing::default();
        let origin = self.objs.get(i).map(|o| o.origin.clone());
        if name.contains(&b'/') {
            let cands = match self.fam {
                Family::Glibc => glibc_expand(
                    name,
                    origin.as_deref(),
                    platform(self.prog),
                    &self.lib_dirs(),
                ),
                Family::Musl { .. } => vec![name.to_vec()],
            };
            for c in cands {
                if let Some(o) = self.judge(&c, &mut m) {
                    return o;
                }
            }
            m.searched.push(name.to_vec());
            return Outcome::Missing(Box::new(m));
        }
        let mut steps: Vec<Step> = Vec::new();
        let (runpath, nodeflib) = self
            .objs
            .get(i)
            .map(|o| (o.dynamic.runpath.clone(), o.dynamic.nodeflib()))
            .unwrap_or_default();
        match self.fam.clone() {
            Family::Glibc => {
                if runpath.is_none() {
                    for k in self.chain(i) {
                        let Some(o) = self.objs.get(k) else { continue };
                        if o.dynamic.runpath.is_some() {
                            continue;
                        }
                        if let Some(rp) = o.dynamic.rpath.clone() {
                            let origin = o.origin.clone();
                            steps.extend(
                                self.split(&rp, b":", Some(&origin))
                                    .into_iter()
                                    .map(Step::Dir),
                            );
                        }
                    }
                }
                steps.push(Step::Env);
                if let Some(rp) = runpath {
                    steps.extend(
                        self.split(&rp, b":", origin.as_deref())
                            .into_iter()
                            .map(Step::Dir),
                    );
                }
                if !nodeflib {
                    steps.push(Step::Cache);
                    steps.push(Step::Sys);
                }
            }
            Family::Musl { arch } => {
                steps.push(Step::Env);
                for k in self.chain(i) {
                    let Some(o) = self.objs.get(k) else { continue };
                    if let Some(rp) = o.dynamic.search_path().map(<[u8]>::to_vec) {
                        let origin = o.origin.clone();
                        steps.extend(
                            self.split(&rp, b":\n", Some(&origin))
                                .into_iter()
                                .map(Step::Dir),
                        );
                    }
                }
                if self.sys_dirs.is_none() {
                    self.sys_dirs = Some(self.musl_sys(&arch, interp));
                }
                steps.push(Step::Sys);
            }
        }
        let flags = ldcache::cache_flags(self.prog.class, self.prog.machine, self.prog.flags);
        for step in steps {
            match step {
                Step::Dir(d) => {
                    if let Some(o) = self.try_dir(&d, name, &mut m) {
                        return o;
                    }
                }
                Step::Env | Step::Sys => {
                    let env = matches!(step, Step::Env);
                    let dirs = if env {
                        std::mem::take(&mut self.env_dirs)
                    } else {
                        self.sys_dirs.take().unwrap_or_default()
                    };
                    let mut verdict = None;
                    for d in &dirs {
                        verdict = self.try_dir(d, name, &mut m);
                        if verdict.is_some() {
                            break;
                        }
                    }
                    if env {
                        self.env_dirs = dirs;
                    } else {
                        self.sys_dirs = Some(dirs);
                    }
                    if let Some(o) = verdict {
                        return o;
                    }
                }
                Step::Cache => {
                    let paths = match self.cache() {
                        Some((f, c)) => c.lookup(f.as_ref(), name, flags),
                        None => {
                            m.cache = Some("not in the image");
                            continue;
                        }
                    };
                    if m.searched.len() < MAX_SHOWN {
                        m.searched.push(b"/etc/ld.so.cache".to_vec());
                    }
                    if paths.is_empty() {
                        m.cache = Some("no entry");
                        continue;
                    }
                    m.cache = Some("its entry names a file that is not there");
                    for p in paths {
                        if let Some(o) = self.judge(&p, &mut m) {
                            return o;
                        }
                    }
                }
            }
        }
        Outcome::Missing(Box::new(m))
    }

    /// Where else a missing library might be (for the hint): the places people install to
    /// without telling the loader.
    fn elsewhere(&mut self, name: &[u8]) -> Option<Vec<u8>> {
        let prog_dir = dir_of(&self.prog_path);
        let mut places: Vec<Vec<u8>> = vec![
            b"/usr/local/lib".to_vec(),
            b"/usr/local/lib64".to_vec(),
            join(&prog_dir, b"lib"),
            join(&join(&prog_dir, b".."), b"lib"),
            prog_dir,
            b"/opt/lib".to_vec(),
        ];
        if !self.triplet.is_empty() {
            let mut t = b"/usr/local/lib/".to_vec();
            t.extend_from_slice(self.triplet.as_bytes());
            places.insert(1, t);
        }
        if matches!(self.fam, Family::Musl { .. }) {
            // musl's defaults, which its path file replaces.
            places.extend([b"/lib".to_vec(), b"/usr/lib".to_vec()]);
        }
        for dir in places {
            let p = join(&resolve::clean(&dir), name);
            if let Probe::Found(lib) = self.probe(&p) {
                return Some(lib.path.clone());
            }
        }
        None
    }

    fn loader_words(&self) -> String {
        match &self.fam {
            Family::Glibc => "glibc's loader".into(),
            Family::Musl { .. } => "musl's loader".into(),
        }
    }

    fn report_missing(&mut self, i: usize, name: &[u8], m: Missing) {
        if self.missing >= MAX_MISSING {
            return;
        }
        self.missing += 1;
        let prog = escape_bytes(&self.prog_path);
        let lib = escape_bytes(name);
        let needed_by = self.objs.get(i).map(|o| o.path.clone()).unwrap_or_default();
        let by = if i == 0 {
            String::new()
        } else {
            format!(" (needed by {})", escape_bytes(&needed_by))
        };
        let argv0 = escape_bytes(&self.argv0);
        let glibc = self.fam == Family::Glibc;
        let musl_by = if i == 0 {
            escape_bytes(&self.exec_path)
        } else {
            escape_bytes(&needed_by)
        };
        let elsewhere = if m.broken.is_none() && m.other_class.is_none() && m.denied.is_none() {
            self.elsewhere(name)
        } else {
            None
        };
        let libdir = self
            .libc_dir
            .clone()
            .or_else(|| self.sys_dirs.as_ref().and_then(|d| d.first().cloned()))
            .unwrap_or_else(|| b"/usr/lib".to_vec());
        let (message, hint, expected) = if let Some((path, why)) = &m.broken {
            let p = escape_bytes(path);
            (
                format!(
                    "{prog} needs the shared library {lib}{by}, and the first file the loader finds for it, {p}, is not a loadable ELF file ({why}), so the program stops right after exec (exit status 127)"
                ),
                format!(
                    "replace {p} with the real library (it is cut short, a text file or a broken copy): reinstall the package that provides {lib}, or COPY it again from the build stage"
                ),
                if glibc {
                    format!("{argv0}: error while loading shared libraries: {p}: {why}")
                } else {
                    format!("Error loading shared library {lib}: {why} (needed by {musl_by})")
                },
            )
        } else if let Some((path, class)) = &m.other_class {
            let p = escape_bytes(path);
            let (found, want) = match class {
                Some(Class::Elf32) => ("32", "64"),
                _ => ("64", "32"),
            };
            (
                format!(
                    "{prog} needs the shared library {lib}{by}; the loader finds only {p}, a {found}-bit library, and skips it, so the program stops right after exec (exit status 127)"
                ),
                format!(
                    "install the {want}-bit build of {lib} (the package for {}) in the image",
                    elf::arch_name(self.prog.class, self.prog.endian, self.prog.machine)
                ),
                format!(
                    "{argv0}: error while loading shared libraries: {lib}: wrong ELF class: ELFCLASS{found}"
                ),
            )
        } else if let Some(path) = &m.denied {
            let p = escape_bytes(path);
            (
                format!(
                    "{prog} needs the shared library {lib}{by}; {p} exists but user {}:{} may not read it, so the loader cannot open it and the program stops right after exec (exit status 127)",
                    self.c.user.uid, self.c.user.gid
                ),
                format!(
                    "make it readable for the user (chmod a+r {p}, and a+x on its directories), or run as its owner"
                ),
                if glibc {
                    format!(
                        "{argv0}: error while loading shared libraries: {lib}: cannot open shared object file: Permission denied"
                    )
                } else {
                    format!(
                        "Error loading shared library {lib}: Permission denied (needed by {musl_by})"
                    )
                },
            )
        } else {
            let hint = match (&elsewhere, &self.fam) {
                (Some(p), Family::Glibc) => {
                    let d = escape_bytes(&dir_of(p));
                    format!(
                        "{lib} is at {}, where the loader does not look: run ldconfig in the image after installing it (RUN ldconfig, with {d} listed in /etc/ld.so.conf.d/), or set ENV LD_LIBRARY_PATH={d}, or link with -Wl,-rpath,{d}",
                        escape_bytes(p)
                    )
                }
                (Some(p), Family::Musl { arch }) => {
                    let d = escape_bytes(&dir_of(p));
                    let file = self
                        .musl_path_file
                        .clone()
                        .unwrap_or_else(|| format!("/etc/ld-musl-{}.path", escape_bytes(arch)));
                    format!(
                        "{lib} is at {}, where the loader does not look: add {d} to {file}, or set ENV LD_LIBRARY_PATH={d}",
                        escape_bytes(p)
                    )
                }
                (None, _) => format!(
                    "install the package that provides {lib} in the image (apt-get install or apk add in the Dockerfile), or COPY {lib} from the build stage into {}/ (ldd on the build machine lists what {prog} needs), or link {prog} statically",
                    escape_bytes(&libdir)
                ),
            };
            (
                format!(
                    "{prog} needs the shared library {lib}{by}, which {} finds in none of its search paths in the container, so the program stops right after exec (exit status 127)",
                    self.loader_words()
                ),
                hint,
                if glibc {
                    format!(
                        "{argv0}: error while loading shared libraries: {lib}: cannot open shared object file: No such file or directory"
                    )
                } else {
                    format!(
                        "Error loading shared library {lib}: No such file or directory (needed by {musl_by})"
                    )
                },
            )
        };
        let mut f = Finding::new(Code::MissingLibrary, Severity::Warning, message, hint)
            .expect(expected)
            .at(&self.prog_path)
            .with_bytes("library", name)
            .with(
                "searched",
                m.searched
                    .iter()
                    .map(|d| {
                        if d.is_empty() {
                            "(working directory)".to_string()
                        } else {
                            escape_bytes(d)
                        }
                    })
                    .collect::<Vec<_>>(),
            );
        if i != 0 {
            f = f.with_bytes("needed_by", &needed_by);
        }
        f = f.with(
            "loader",
            match &self.fam {
                Family::Glibc => "glibc",
                Family::Musl { .. } => "musl",
            },
        );
        if let Some(c) = m.cache {
            f = f.with("ld_so_cache", c);
        }
        if let Some(p) = &self.musl_path_file {
            f = f.with("musl_path_file", p.clone());
        }
        if let Some(l) = &self.ld_library_path {
            f = f.with("ld_library_path", escape_bytes(l.as_bytes()));
        }
        if let Some(p) = elsewhere {
            f = f.with_bytes("found_elsewhere", &p);
        }
        self.findings.push(f);
    }

    /// Page size and ISA level of a library the loader maps (only where it runs natively).
    fn check_lib(&mut self, lib: &Lib) {
        if !self.native {
            return;
        }
        let glibc = self.fam == Family::Glibc;
        if let Some(m) = elf::page_misfit(&lib.info, self.c.host.page_size) {
            let f = page_size_finding(
                &lib.path,
                &format!("the library {}", escape_bytes(&lib.path)),
                &m,
                self.c.host.page_size,
                Mapper::Loader(glibc),
                &self.argv0,
            )
            .at(&self.prog_path)
            .with_bytes("library", &lib.path);
            self.findings.push(f);
        }
        if glibc
            && let Some(f) = isa_finding(&lib.info, &lib.header, &lib.file, self.c.host, &lib.path)
        {
            self.findings.push(
                f.at(&self.prog_path)
                    .with_bytes("library", &lib.path)
                    .expect(format!(
                        "{}: CPU ISA level is lower than required",
                        escape_bytes(&lib.path)
                    )),
            );
        }
    }

    fn run(&mut self, interp: &[u8]) {
        let mut i = 0;
        while i < self.objs.len() {
            let needed = self
                .objs
                .get(i)
                .map(|o| o.dynamic.needed.clone())
                .unwrap_or_default();
            let depth = self.objs.get(i).map_or(0, |o| o.depth);
            for name in needed {
                if self.satisfied(&name) {
                    continue;
                }
                if self.opened >= MAX_LIBRARIES || self.probes >= MAX_PROBES {
                    return;
                }
                match self.search(i, &name, interp) {
                    Outcome::Found(lib) => {
                        self.opened += 1;
                        self.loaded.push(name.clone());
                        if !self.loaded.contains(&lib.path) {
                            self.loaded.push(lib.path.clone());
                        }
                        if self.libc_dir.is_none() && base_name(&lib.path).starts_with(b"libc.") {
                            self.libc_dir = Some(dir_of(&lib.path));
                        }
                        self.check_lib(&lib);
                        let dynamic = lib
                            .dynamic
                            .get_or_init(|| dynamic::read(&lib.info, &lib.header, &lib.file))
                            .clone();
                        if let Some(d) = dynamic {
                            if let Some(s) = &d.soname
                                && !self.loaded.contains(s)
                            {
                                self.loaded.push(s.clone());
                            }
                            if depth < MAX_DEPTH {
                                self.objs.push(Obj {
                                    origin: dir_of(&lib.path),
                                    path: lib.path.clone(),
                                    dynamic: d,
                                    parent: Some(i),
                                    depth: depth + 1,
                                });
                            }
                        }
                    }
                    Outcome::Missing(m) => {
                        self.loaded.push(name.clone());
                        self.report_missing(i, &name, *m);
                    }
                    Outcome::Unknown => self.loaded.push(name.clone()),
                }
            }
            i += 1;
        }
    }
}

/// Who maps a file: the kernel (the program and its loader) or the loader (libraries).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mapper {
    Kernel,
    Loader(bool),
}

/// A `page-size` finding about `file` (called `what` in the message), without its path and
/// library, with the line the user will see when it is known exactly. `Mapper::Loader(true)`
/// is glibc's loader, `Loader(false)` musl's.
fn page_size_finding(
    file: &[u8],
    what: &str,
    misfit: &elf::PageMisfit,
    page: u64,
    mapper: Mapper,
    argv0: &[u8],
) -> Finding {
    let relink = format!(
        "relink {} with -Wl,-z,max-page-size=65536 (fits 4K, 16K and 64K kernels; Rust: -C link-arg=-Wl,-z,max-page-size=65536), or run it on a kernel with 4K pages",
        escape_bytes(file)
    );
    let sigsegv = "the process is killed by SIGSEGV (exit status 139)".to_string();
    match misfit {
        elf::PageMisfit::Offset(seg) => {
            let (outcome, expected) = match mapper {
                Mapper::Kernel => (
                    "the kernel cannot map it: the process is killed by SIGSEGV right after exec",
                    Some(sigsegv),
                ),
                Mapper::Loader(true) => (
                    "glibc's loader refuses to map it and the program stops right after exec (exit status 127)",
                    Some(format!(
                        "{}: error while loading shared libraries: {}: ELF load command address/offset not page-aligned",
                        escape_bytes(argv0),
                        escape_bytes(file)
                    )),
                ),
                Mapper::Loader(false) => (
                    "musl's loader maps the wrong file bytes there and the program crashes right after exec",
                    None,
                ),
            };
            Finding::new(
                Code::PageSize,
                Severity::Warning,
                format!(
                    "{what} has a loadable segment aligned to {} bytes whose file offset ({:#x}) and address ({:#x}) disagree modulo this host's {page}-byte pages, so {outcome}",
                    seg.align, seg.offset, seg.vaddr
                ),
                relink,
            )
            .expect(expected)
            .with("page_size", page)
            .with("p_align", seg.align)
            .with("p_offset", format!("{:#x}", seg.offset))
            .with("p_vaddr", format!("{:#x}", seg.vaddr))
        }
        elf::PageMisfit::SharedPage(a, b) => Finding::new(
            Code::PageSize,
            Severity::Warning,
            format!(
                "{what} has loadable segments aligned to {} bytes that share one of this host's {page}-byte pages (the segments at {:#x} and {:#x}), and the later one, mapped last, takes away a permission the earlier one needs there (its code or data becomes unusable), so the process is likely killed by SIGSEGV soon after exec",
                a.align.min(b.align),
                a.vaddr,
                b.vaddr
            ),
            relink,
        )
        .with("page_size", page)
        .with("p_align", a.align.min(b.align))
        .with("p_vaddr", format!("{:#x}", a.vaddr))
        .with("next_p_vaddr", format!("{:#x}", b.vaddr)),
    }
}

/// An `isa-level` finding when the object needs more than the host's CPU has (without path
/// and expected error); `None` when it fits or the CPU's level is unknown. The CPU is looked
/// at only for an object that needs more than x86-64-baseline.
fn isa_finding(
    info: &ElfInfo,
    header: &[u8],
    file: &File,
    host: &crate::host::Host,
    shown_path: &[u8],
) -> Option<Finding> {
    let bits = elf::x86_isa_needed(info, header, file)?;
    if bits & !elf::isa_bits_up_to(1) == 0 {
        return None;
    }
    let cpu = host.isa_level()?;
    if bits & !elf::isa_bits_up_to(cpu) == 0 {
        return None;
    }
    let need = elf::isa_level(bits);
    let need_name = elf::isa_level_name(need);
    let cpu_name = elf::isa_level_name(cpu);
    let shown = escape_bytes(shown_path);
    let rebuild = match cpu {
        0 | 1 => "-march=x86-64 (Go: GOAMD64=v1)".to_string(),
        n => format!(
            "-march=x86-64-v{n} or lower (Go: GOAMD64=v{n}; Rust: -C target-cpu=x86-64-v{n})"
        ),
    };
    Some(
        Finding::new(
            Code::IsaLevel,
            Severity::Warning,
            format!(
                "{shown} is marked as needing {need_name} (GNU property note), but this CPU only reaches {cpu_name}, so glibc's loader refuses it right after exec (exit status 127)"
            ),
            format!(
                "rebuild it with {rebuild}, pick the image variant built for {cpu_name}, or run it on a CPU with {need_name}"
            ),
        )
        .with("needed_isa_level", need_name)
        .with("cpu_isa_level", cpu_name)
        .with("isa_1_needed", format!("{bits:#x}")),
    )
}

impl Checker<'_> {
    /// What fails right after a successful exec of the ELF file `res` (its headers in `info`,
    /// its first bytes in `header`): segments the host's pages cannot map, glibc's ISA level
    /// check, and the libraries the loader must find. `loader` is the program's usable loader
    /// (`None` for a static program, or when the loader could not be looked at); `native`
    /// is false under emulation, where only the library search applies.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_exec(
        &mut self,
        x: Exec<'_>,
        res: &Resolved,
        info: &ElfInfo,
        header: &[u8],
        file: &File,
        loader: Option<&Loader>,
        native: bool,
    ) {
        let argv0 = x.argv0.to_vec();
        if native {
            // The kernel maps the program and its loader (fs/binfmt_elf.c elf_map).
            if let Some(m) = elf::page_misfit(info, self.host.page_size) {
                let f = page_size_finding(
                    &res.path,
                    &escape_bytes(&res.path),
                    &m,
                    self.host.page_size,
                    Mapper::Kernel,
                    &argv0,
                )
                .at(&res.path);
                self.add(f);
            }
            if let Some(ld) = loader
                && let Some(m) = elf::page_misfit(&ld.info, self.host.page_size)
            {
                let f = page_size_finding(
                    &ld.path,
                    &format!("the loader {}", escape_bytes(&ld.path)),
                    &m,
                    self.host.page_size,
                    Mapper::Kernel,
                    &argv0,
                )
                .at(&res.path)
                .with_bytes("loader", &ld.path);
                self.add(f);
            }
        }
        let Some(ld) = loader else {
            return;
        };
        let Some(fam) = family(&ld.interp) else {
            return;
        };
        // glibc checks the ISA level of the program and of every library it loads (sysdeps/x86
        // dl-prop.h dl_isa_level_check); static programs and musl do not.
        if native
            && fam == Family::Glibc
            && let Some(f) = isa_finding(info, header, file, self.host, &res.path)
        {
            self.add(f.at(&res.path).expect(format!(
                "{}: CPU ISA level is lower than required",
                escape_bytes(&argv0)
            )));
        }
        let Some(dynamic) = dynamic::read(info, header, file) else {
            return;
        };
        if dynamic.needed.is_empty() {
            return;
        }
        let budget_left = MAX_PROBES.saturating_sub(self.libs_probed);
        let opened_left = MAX_LIBRARIES.saturating_sub(self.libs_opened);
        if budget_left == 0 || opened_left == 0 {
            return;
        }
        let (sys, triplet) = glibc_system_dirs(info);
        let ld_library_path = self.spec.env_var("LD_LIBRARY_PATH").map(str::to_string);
        let mut w = Walk {
            c: self,
            fam: fam.clone(),
            prog: info,
            prog_path: res.path.clone(),
            argv0,
            exec_path: x.path.to_vec(),
            native,
            env_dirs: Vec::new(),
            ld_library_path: ld_library_path.clone(),
            sys_dirs: match fam {
                Family::Glibc => Some(sys.iter().map(|d| d.as_bytes().to_vec()).collect()),
                Family::Musl { .. } => None,
            },
            musl_path_file: None,
            triplet,
            cache: None,
            root_id: None,
            probes: MAX_PROBES - budget_left,
            opened: MAX_LIBRARIES - opened_left,
            objs: vec![Obj {
                origin: dir_of(&res.path),
                path: res.path.clone(),
                dynamic,
                parent: None,
                depth: 0,
            }],
            loaded: Vec::new(),
            libc_dir: None,
            findings: Vec::new(),
            missing: 0,
        };
        // The loader is loaded already, under its PT_INTERP path and its soname.
        w.loaded.push(ld.interp.clone());
        match &ld.soname {
            Some(s) => w.loaded.push(s.clone()),
            None => w.loaded.push(base_name(&ld.interp).to_vec()),
        }
        if let Some(llp) = &ld_library_path {
            let seps: &[u8] = if fam == Family::Glibc { b":;" } else { b":\n" };
            // glibc expands $ORIGIN in LD_LIBRARY_PATH with the program's directory.
            let origin = (fam == Family::Glibc).then(|| dir_of(&res.path));
            w.env_dirs = w.split(llp.as_bytes(), seps, origin.as_deref());
        }
        w.run(&ld.interp);
        let (probes, opened, findings) = (w.probes, w.opened, std::mem::take(&mut w.findings));
        self.libs_probed = probes;
        self.libs_opened = opened;
        for f in findings {
            self.add(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Diagnosis;
    use crate::host::Host;
    use crate::inspect::dynamic::build::Obj;
    use crate::inspect::ldcache::build::write_cache;
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::{Path, PathBuf};

    const LD: &str = "/lib64/ld-linux-x86-64.so.2";
    const MUSL: &str = "/lib/ld-musl-x86_64.so.1";
    const LIBDIR: &str = "/lib/x86_64-linux-gnu";

    /// A bundle folder with an empty rootfs.
    struct Tree {
        dir: tempfile::TempDir,
    }

    impl Tree {
        fn new() -> Tree {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            std::fs::create_dir(dir.path().join("rootfs")).unwrap_or_else(|e| panic!("{e}"));
            Tree { dir }
        }

        fn host(&self, inner: &str) -> PathBuf {
            self.dir
                .path()
                .join("rootfs")
                .join(inner.trim_start_matches('/'))
        }

        fn put(&self, inner: &str, bytes: &[u8], mode: u32) {
            let p = self.host(inner);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
            }
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
        }

        fn obj(&self, inner: &str, o: &Obj) {
            self.put(inner, &o.build(), 0o755);
        }

        fn link(&self, inner: &str, target: &str) {
            let p = self.host(inner);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
            }
            symlink(target, p).unwrap_or_else(|e| panic!("{e}"));
        }

        /// The glibc loader (with its soname) and libc.
        fn glibc(&self) {
            let mut ld = Obj::lib(&[]);
            ld.soname = Some(b"ld-linux-x86-64.so.2".to_vec());
            self.obj(LD, &ld);
            let mut c = Obj::lib(&["ld-linux-x86-64.so.2"]);
            c.soname = Some(b"libc.so.6".to_vec());
            self.obj(&format!("{LIBDIR}/libc.so.6"), &c);
        }

        fn musl(&self) {
            self.obj(MUSL, &Obj::lib(&[]));
            self.link("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1");
        }

        fn diagnose_with(&self, args: &[&str], env: &[&str], host: &Host) -> Diagnosis {
            let config = json!({
                "ociVersion": "1.0.2",
                "process": {"args": args, "env": env, "cwd": "/", "user": {"uid": 0, "gid": 0}},
                "root": {"path": "rootfs"},
            });
            let spec = crate::spec::from_slice(config.to_string().as_bytes(), self.dir.path())
                .unwrap_or_else(|e| panic!("spec: {e}"));
            crate::check::diagnose(&spec, host)
        }

        fn diagnose(&self, args: &[&str], env: &[&str]) -> Diagnosis {
            self.diagnose_with(args, env, &host())
        }
    }

    fn host() -> Host {
        Host::with_machine("x86_64", true, PathBuf::from("/nonexistent"))
    }

    fn codes(d: &Diagnosis) -> Vec<&'static str> {
        d.findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn missing(d: &Diagnosis) -> Vec<String> {
        d.findings
            .iter()
            .filter(|f| f.code == Code::MissingLibrary)
            .filter_map(|f| {
                f.evidence
                    .get("library")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect()
    }

    fn only(d: &Diagnosis, code: Code) -> &Finding {
        let v: Vec<&Finding> = d.findings.iter().filter(|f| f.code == code).collect();
        match v.as_slice() {
            [f] => f,
            _ => panic!("expected one {code:?}: {:#?}", d.findings),
        }
    }

    fn prog(needed: &[&str]) -> Obj {
        Obj::program(needed)
    }

    #[test]
    fn a_missing_direct_library_is_named_with_glibcs_words() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libfoo.so.1", "libc.so.6"]));
        let d = t.diagnose(&["/app", "x"], &[]);
        assert_eq!(codes(&d), ["missing-library"], "{:#?}", d.findings);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.expected_error.as_deref(),
            Some(
                "/app: error while loading shared libraries: libfoo.so.1: cannot open shared object file: No such file or directory"
            )
        );
        assert_eq!(f.path.as_deref(), Some("/app"));
        assert!(f.hint.contains("/lib/x86_64-linux-gnu/"), "{}", f.hint);
        let searched = f.evidence["searched"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(searched.first(), Some(&json!(LIBDIR)));
        assert_eq!(f.evidence["ld_so_cache"], "not in the image");
        // Present in a default directory: nothing to say.
        t.obj(&format!("{LIBDIR}/libfoo.so.1"), &Obj::lib(&["libc.so.6"]));
        let d = t.diagnose(&["/app", "x"], &[]);
        assert!(d.findings.is_empty(), "{:#?}", d.findings);
    }

    #[test]
    fn libraries_of_libraries_are_followed() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["liba.so.1", "libc.so.6"]));
        t.obj("/usr/lib/liba.so.1", &Obj::lib(&["libb.so.2", "libc.so.6"]));
        let d = t.diagnose(&["/app"], &[]);
        assert_eq!(missing(&d), ["libb.so.2"]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(f.evidence["needed_by"], "/usr/lib/liba.so.1");
        assert!(
            f.message.contains("needed by /usr/lib/liba.so.1"),
            "{}",
            f.message
        );
        t.obj("/usr/lib64/libb.so.2", &Obj::lib(&[]));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn the_loaders_own_name_is_already_loaded() {
        let t = Tree::new();
        t.glibc();
        // Real arm64 busybox names its loader in DT_NEEDED; it is matched by its soname even
        // when no search directory holds it.
        t.obj("/app", &prog(&["ld-linux-x86-64.so.2", "libc.so.6"]));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn runpath_origin_finds_a_bundled_library() {
        let t = Tree::new();
        t.glibc();
        let mut p = prog(&["libapp.so", "libc.so.6"]);
        p.runpath = Some(b"$ORIGIN/../lib".to_vec());
        t.obj("/opt/app/bin/app", &p);
        let d = t.diagnose(&["/opt/app/bin/app"], &[]);
        assert_eq!(missing(&d), ["libapp.so"]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(f.evidence["searched"][0], "/opt/app/bin/../lib");
        t.obj("/opt/app/lib/libapp.so", &Obj::lib(&[]));
        assert!(t.diagnose(&["/opt/app/bin/app"], &[]).findings.is_empty());
        // Through a symlinked program, $ORIGIN is the real file's directory.
        t.link("/usr/bin/app", "/opt/app/bin/app");
        assert!(t.diagnose(&["/usr/bin/app"], &[]).findings.is_empty());
    }

    #[test]
    fn rpath_is_inherited_and_runpath_is_not() {
        let t = Tree::new();
        t.glibc();
        t.obj("/usr/lib/liba.so.1", &Obj::lib(&["libz.so.1"]));
        t.obj("/opt/z/libz.so.1", &Obj::lib(&[]));
        // The program's DT_RPATH serves its libraries' dependencies too.
        let mut p = prog(&["liba.so.1"]);
        p.rpath = Some(b"/opt/z".to_vec());
        t.obj("/app", &p);
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
        // DT_RUNPATH serves only the program's own DT_NEEDED.
        let mut p = prog(&["liba.so.1"]);
        p.runpath = Some(b"/opt/z".to_vec());
        t.obj("/app", &p);
        assert_eq!(missing(&t.diagnose(&["/app"], &[])), ["libz.so.1"]);
        // With both, DT_RPATH is ignored.
        let mut p = prog(&["liba.so.1"]);
        p.runpath = Some(b"/nowhere".to_vec());
        p.rpath = Some(b"/opt/z".to_vec());
        t.obj("/app", &p);
        assert_eq!(missing(&t.diagnose(&["/app"], &[])), ["libz.so.1"]);
    }

    #[test]
    fn ld_library_path_from_the_process_environment() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libl.so"]));
        t.obj("/opt/l/libl.so", &Obj::lib(&[]));
        let d = t.diagnose(&["/app"], &[]);
        let f = only(&d, Code::MissingLibrary);
        // The hint finds it where the loader does not look.
        assert!(!f.hint.is_empty());
        assert!(
            t.diagnose(&["/app"], &["LD_LIBRARY_PATH=/x;/opt/l"])
                .findings
                .is_empty()
        );
        assert!(
            t.diagnose(&["/app"], &["LD_LIBRARY_PATH=/x:/opt/l"])
                .findings
                .is_empty()
        );
        // A relative entry counts from the working directory (cwd is /).
        assert!(
            t.diagnose(&["/app"], &["LD_LIBRARY_PATH=opt/l"])
                .findings
                .is_empty()
        );
        let d = t.diagnose(&["/app"], &["LD_LIBRARY_PATH=/x"]);
        assert_eq!(
            only(&d, Code::MissingLibrary).evidence["ld_library_path"],
            "/x"
        );
    }

    #[test]
    fn the_hint_names_a_library_installed_without_ldconfig() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libl.so.3"]));
        t.obj("/usr/local/lib/libl.so.3", &Obj::lib(&[]));
        let d = t.diagnose(&["/app"], &[]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(f.evidence["found_elsewhere"], "/usr/local/lib/libl.so.3");
        assert!(f.hint.contains("ldconfig"), "{}", f.hint);
        assert!(
            f.hint.contains("LD_LIBRARY_PATH=/usr/local/lib"),
            "{}",
            f.hint
        );
    }

    #[test]
    fn ld_so_cache_entries_are_used_and_stale_ones_fall_through() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libc1.so.1"]));
        t.obj("/opt/c/libc1.so.1", &Obj::lib(&[]));
        t.put(
            "/etc/ld.so.cache",
            &write_cache(&[("libc1.so.1", 0x0303, "/opt/c/libc1.so.1")], false),
            0o644,
        );
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
        // An entry for another architecture does not count.
        t.put(
            "/etc/ld.so.cache",
            &write_cache(&[("libc1.so.1", 0x0a03, "/opt/c/libc1.so.1")], false),
            0o644,
        );
        let d = t.diagnose(&["/app"], &[]);
        assert_eq!(
            only(&d, Code::MissingLibrary).evidence["ld_so_cache"],
            "no entry"
        );
        // A stale entry (the file is gone) falls through to the default directories.
        t.put(
            "/etc/ld.so.cache",
            &write_cache(&[("libc1.so.1", 0x0303, "/gone/libc1.so.1")], true),
            0o644,
        );
        let d = t.diagnose(&["/app"], &[]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(
            f.evidence["ld_so_cache"],
            "its entry names a file that is not there"
        );
        t.obj(&format!("{LIBDIR}/libc1.so.1"), &Obj::lib(&[]));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn a_cache_too_large_for_memory_is_searched_on_the_file() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libc1.so.1"]));
        t.obj("/opt/c/libc1.so.1", &Obj::lib(&[]));
        let mut cache = write_cache(&[("libc1.so.1", 0x0303, "/opt/c/libc1.so.1")], false);
        let small = cache.len();
        // Trailing bytes past the string table change nothing for the loader.
        cache.resize(usize::try_from(MAX_CACHE_BYTES).unwrap() + 4096, 0);
        t.put("/etc/ld.so.cache", &cache, 0o644);
        assert!(small < cache.len());
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
        t.put(
            "/etc/ld.so.cache",
            &{
                let mut c = write_cache(&[("libc1.so.1", 0x0a03, "/opt/c/libc1.so.1")], false);
                c.resize(usize::try_from(MAX_CACHE_BYTES).unwrap() + 4096, 0);
                c
            },
            0o644,
        );
        let d = t.diagnose(&["/app"], &[]);
        assert_eq!(
            only(&d, Code::MissingLibrary).evidence["ld_so_cache"],
            "no entry"
        );
    }

    #[test]
    fn nodeflib_skips_the_cache_and_default_directories() {
        let t = Tree::new();
        t.glibc();
        let mut p = prog(&["libd.so"]);
        p.flags_1 = 0x800;
        t.obj("/app", &p);
        t.obj("/usr/lib/libd.so", &Obj::lib(&[]));
        assert_eq!(missing(&t.diagnose(&["/app"], &[])), ["libd.so"]);
        assert!(
            t.diagnose(&["/app"], &["LD_LIBRARY_PATH=/usr/lib"])
                .findings
                .is_empty()
        );
    }

    #[test]
    fn a_library_of_the_other_class_is_skipped() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libw.so"]));
        let mut l32 = Obj::lib(&[]);
        l32.elf64 = false;
        l32.machine = goblin::elf::header::EM_386;
        t.obj(&format!("{LIBDIR}/libw.so"), &l32);
        let d = t.diagnose(&["/app"], &[]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(
            f.expected_error.as_deref(),
            Some(
                "/app: error while loading shared libraries: libw.so: wrong ELF class: ELFCLASS32"
            )
        );
        // ... and a good one later on the path is taken.
        t.obj("/usr/lib/libw.so", &Obj::lib(&[]));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
        // A library of another machine is passed over silently.
        let mut arm = Obj::lib(&[]);
        arm.machine = goblin::elf::header::EM_AARCH64;
        t.obj("/usr/lib/libw.so", &arm);
        t.obj("/lib/libw.so", &Obj::lib(&[]));
        let _ = std::fs::remove_file(t.host(&format!("{LIBDIR}/libw.so")));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn the_sweep_caches_change_no_diagnosis() {
        let t = Tree::new();
        t.glibc();
        t.put(
            "/etc/ld.so.cache",
            &write_cache(&[("libbar.so.1", 0x0303, "/opt/bar/libbar.so.1")], false),
            0o644,
        );
        t.obj("/opt/bar/libbar.so.1", &Obj::lib(&["libc.so.6"]));
        t.obj("/app", &prog(&["libc.so.6"]));
        t.obj("/app2", &prog(&["libfoo.so.1", "libc.so.6"]));
        t.obj("/app3", &prog(&["libbar.so.1"]));
        // One loader path, an x86-64 file: wrong for a 32-bit program, right for a 64-bit one
        // (which then needs its soname).
        let mut ld = Obj::lib(&[]);
        ld.soname = Some(b"ld-special.so.9".to_vec());
        t.obj("/lib/ld-linux-x.so.2", &ld);
        let mut p32 = prog(&["libc.so.6"]);
        p32.elf64 = false;
        p32.machine = goblin::elf::header::EM_386;
        p32.interp = Some(b"/lib/ld-linux-x.so.2".to_vec());
        t.obj("/bin32", &p32);
        let mut p64 = prog(&["ld-special.so.9", "libc.so.6"]);
        p64.interp = Some(b"/lib/ld-linux-x.so.2".to_vec());
        t.obj("/app64x", &p64);
        // A loader that is not ELF, one only root may run, one reached through links.
        t.put("/lib/ld-bad.so", b"not elf", 0o755);
        let mut bad = prog(&["libc.so.6"]);
        bad.interp = Some(b"/lib/ld-bad.so".to_vec());
        t.obj("/notelf", &bad);
        t.put("/lib/ld-root.so", &ld.build(), 0o700);
        let mut rooted = prog(&["libc.so.6"]);
        rooted.interp = Some(b"/lib/ld-root.so".to_vec());
        t.obj("/rooted", &rooted);
        t.link("/usr/lib/ld-via.so", "../../lib64/ld-linux-x86-64.so.2");
        t.link("/lib/via", "/usr/lib");
        let mut via = prog(&["libc.so.6"]);
        via.interp = Some(b"/lib/via/ld-via.so".to_vec());
        t.obj("/via", &via);
        let mut gone = prog(&["libc.so.6"]);
        gone.interp = Some(b"/lib/ld-gone.so".to_vec());
        t.obj("/gone", &gone);
        t.put("/script", b"#!/app\n", 0o755);
        let runs = [
            "/app", "/app2", "/app3", "/bin32", "/app64x", "/notelf", "/rooted", "/via", "/gone",
            "/script",
        ];
        let diagnose = |prog: &str, uid: u32| {
            let config = json!({
                "ociVersion": "1.0.2",
                "process": {"args": [prog], "cwd": "/", "user": {"uid": uid, "gid": uid}},
                "root": {"path": "rootfs"},
            });
            let spec = crate::spec::from_slice(config.to_string().as_bytes(), t.dir.path())
                .unwrap_or_else(|e| panic!("spec: {e}"));
            serde_json::to_string(&crate::check::diagnose(&spec, &host()))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let mut want = Vec::new();
        for uid in [0, 1000] {
            for p in runs {
                want.push(diagnose(p, uid));
            }
        }
        let all = want.join("\n");
        for code in [
            "missing-library",
            "interpreter-missing",
            "ELIBBAD",
            "EACCES",
        ] {
            assert!(all.contains(code), "{code} not covered: {all}");
        }
        crate::rootfs::resolve::with_dir_cache(|| {
            with_probe_memo(|| {
                for _ in 0..2 {
                    let mut got = Vec::new();
                    for uid in [0, 1000] {
                        for p in runs {
                            got.push(diagnose(p, uid));
                        }
                    }
                    assert_eq!(got, want);
                }
                // The user after the loader was remembered for another one.
                assert_eq!(diagnose("/rooted", 1000), want[runs.len() + 6]);
                assert_eq!(diagnose("/rooted", 0), want[6]);
            })
        });
    }

    #[test]
    fn a_file_that_is_not_elf_stops_the_load() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libt.so"]));
        t.put(
            &format!("{LIBDIR}/libt.so"),
            b"version https://git-lfs.github.com/spec/v1\n",
            0o644,
        );
        let d = t.diagnose(&["/app"], &[]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(
            f.expected_error.as_deref(),
            Some(
                "/app: error while loading shared libraries: /lib/x86_64-linux-gnu/libt.so: invalid ELF header"
            )
        );
        // Cut inside the ELF header.
        t.put(
            &format!("{LIBDIR}/libt.so"),
            &Obj::lib(&[]).build()[..40],
            0o644,
        );
        let d = t.diagnose(&["/app"], &[]);
        assert_eq!(
            only(&d, Code::MissingLibrary).expected_error.as_deref(),
            Some(
                "/app: error while loading shared libraries: /lib/x86_64-linux-gnu/libt.so: file too short"
            )
        );
        // A truncated body still loads (and fails later): not claimed here.
        t.put(
            &format!("{LIBDIR}/libt.so"),
            &Obj::lib(&[]).build()[..0x800],
            0o644,
        );
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn an_unreadable_library_is_denied_for_a_non_root_user() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libr.so"]));
        t.put(&format!("{LIBDIR}/libr.so"), &Obj::lib(&[]).build(), 0o600);
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/app"], "cwd": "/", "user": {"uid": 1000, "gid": 1000}},
            "root": {"path": "rootfs"},
        });
        let spec = crate::spec::from_slice(config.to_string().as_bytes(), t.dir.path())
            .unwrap_or_else(|e| panic!("{e}"));
        let d = crate::check::diagnose(&spec, &host());
        let f = only(&d, Code::MissingLibrary);
        assert!(f.message.contains("may not read"), "{}", f.message);
    }

    #[test]
    fn a_name_with_a_slash_is_opened_as_given() {
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["/opt/x/libs.so"]));
        assert_eq!(missing(&t.diagnose(&["/app"], &[])), ["/opt/x/libs.so"]);
        t.obj("/opt/x/libs.so", &Obj::lib(&[]));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn musl_searches_its_path_file_and_knows_its_own_names() {
        let t = Tree::new();
        t.musl();
        let mut p = prog(&["libc.musl-x86_64.so.1", "libz.so.1"]);
        p.interp = Some(MUSL.as_bytes().to_vec());
        t.obj("/app", &p);
        t.obj("/usr/lib/libz.so.1", &Obj::lib(&["libc.musl-x86_64.so.1"]));
        // No /etc/ld-musl-x86_64.path: /lib:/usr/local/lib:/usr/lib.
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
        // The path file replaces the default.
        t.put("/etc/ld-musl-x86_64.path", b"/opt/m\n/lib\n", 0o644);
        let d = t.diagnose(&["/app"], &[]);
        let f = only(&d, Code::MissingLibrary);
        assert_eq!(
            f.expected_error.as_deref(),
            Some(
                "Error loading shared library libz.so.1: No such file or directory (needed by /app)"
            )
        );
        assert_eq!(f.evidence["searched"], json!(["/opt/m", "/lib"]));
        assert_eq!(f.evidence["musl_path_file"], "/etc/ld-musl-x86_64.path");
        assert_eq!(f.evidence["loader"], "musl");
        assert!(f.hint.contains("/etc/ld-musl-x86_64.path"), "{}", f.hint);
        // LD_LIBRARY_PATH comes first; newline separates too.
        assert!(
            t.diagnose(&["/app"], &["LD_LIBRARY_PATH=/x\n/usr/lib"])
                .findings
                .is_empty()
        );
        // A glibc program's libc.so.6 is musl itself under musl.
        let mut p = prog(&["libc.so.6", "libpthread.so.0"]);
        p.interp = Some(MUSL.as_bytes().to_vec());
        t.obj("/app", &p);
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn musl_rpath_origin_and_inheritance() {
        let t = Tree::new();
        t.musl();
        // musl searches the runpath of every object above the one asking.
        let mut p = prog(&["liba.so"]);
        p.interp = Some(MUSL.as_bytes().to_vec());
        p.runpath = Some(b"$ORIGIN/lib".to_vec());
        t.obj("/srv/app", &p);
        t.obj("/srv/lib/liba.so", &Obj::lib(&["libb.so"]));
        t.obj("/srv/lib/libb.so", &Obj::lib(&[]));
        assert!(t.diagnose(&["/srv/app"], &[]).findings.is_empty());
        // Any other $ token drops the whole path.
        p.runpath = Some(b"$ORIGIN/lib:$LIB".to_vec());
        t.obj("/srv/app", &p);
        assert_eq!(missing(&t.diagnose(&["/srv/app"], &[])), ["liba.so"]);
    }

    #[test]
    fn isa_level_of_the_program_and_its_libraries() {
        let t = Tree::new();
        t.glibc();
        let mut p = prog(&["libc.so.6", "libv.so"]);
        p.isa_needed = Some(0b0101); // baseline + v3
        t.obj("/app", &p);
        let mut v = Obj::lib(&[]);
        v.isa_needed = Some(0b1001); // baseline + v4
        t.obj(&format!("{LIBDIR}/libv.so"), &v);
        let d = t.diagnose_with(&["/app"], &[], &host().with_isa_level(Some(2)));
        let fs: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|f| f.code == Code::IsaLevel)
            .collect();
        assert_eq!(fs.len(), 2, "{:#?}", d.findings);
        assert!(fs.iter().all(|f| f.severity == Severity::Warning));
        let expected: Vec<Option<&str>> = fs.iter().map(|f| f.expected_error.as_deref()).collect();
        assert!(
            expected.contains(&Some("/app: CPU ISA level is lower than required")),
            "{expected:?}"
        );
        assert!(expected.contains(&Some(
            "/lib/x86_64-linux-gnu/libv.so: CPU ISA level is lower than required"
        )));
        let d = t.diagnose_with(&["/app"], &[], &host().with_isa_level(Some(3)));
        assert_eq!(codes(&d), ["isa-level"]);
        assert_eq!(d.findings[0].evidence["needed_isa_level"], "x86-64-v4");
        assert_eq!(d.findings[0].evidence["cpu_isa_level"], "x86-64-v3");
        assert!(
            t.diagnose_with(&["/app"], &[], &host().with_isa_level(Some(4)))
                .findings
                .is_empty()
        );
        // Unknown CPU: not checked.
        assert!(t.diagnose_with(&["/app"], &[], &host()).findings.is_empty());
        // musl does not check, nor a static program.
        let t = Tree::new();
        t.musl();
        p.interp = Some(MUSL.as_bytes().to_vec());
        p.needed.clear();
        t.obj("/app", &p);
        assert!(
            t.diagnose_with(&["/app"], &[], &host().with_isa_level(Some(1)))
                .findings
                .is_empty()
        );
    }

    #[test]
    fn page_size_of_the_program_its_loader_and_its_libraries() {
        let t = Tree::new();
        t.glibc();
        let mut p = prog(&["libc.so.6", "libp.so"]);
        p.data_delta = 0x1000; // second segment 4K off its file offset
        t.obj("/app", &p);
        let mut l = Obj::lib(&[]);
        l.data_delta = 0x1000;
        t.obj(&format!("{LIBDIR}/libp.so"), &l);
        assert!(
            t.diagnose(&["/app"], &[]).findings.is_empty(),
            "4K pages fit"
        );
        let arm = |page| {
            Host::with_machine("x86_64", true, PathBuf::from("/nonexistent")).with_page_size(page)
        };
        let d = t.diagnose_with(&["/app"], &[], &arm(16384));
        let fs: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|f| f.code == Code::PageSize)
            .collect();
        assert_eq!(fs.len(), 2, "{:#?}", d.findings);
        let prog_f = fs
            .iter()
            .find(|f| !f.evidence.contains_key("library"))
            .unwrap_or_else(|| panic!());
        assert_eq!(
            prog_f.expected_error.as_deref(),
            Some("the process is killed by SIGSEGV (exit status 139)")
        );
        assert_eq!(prog_f.evidence["page_size"], 16384);
        let lib_f = fs
            .iter()
            .find(|f| f.evidence.contains_key("library"))
            .unwrap_or_else(|| panic!());
        assert_eq!(
            lib_f.expected_error.as_deref(),
            Some(
                "/app: error while loading shared libraries: /lib/x86_64-linux-gnu/libp.so: ELF load command address/offset not page-aligned"
            )
        );
        // 64K-aligned segments fit every page size.
        let mut p = prog(&["libc.so.6"]);
        p.align = 0x10000;
        t.obj("/app", &p);
        assert!(
            t.diagnose_with(&["/app"], &[], &arm(65536))
                .findings
                .is_empty()
        );
    }

    #[test]
    fn a_missing_loader_stays_the_story() {
        let t = Tree::new();
        t.obj("/app", &prog(&["libnothere.so"]));
        let d = t.diagnose(&["/app"], &[]);
        assert_eq!(codes(&d), ["interpreter-missing"]);
    }

    #[test]
    fn the_walk_is_bounded() {
        let t = Tree::new();
        t.glibc();
        let names: Vec<String> = (0..200).map(|i| format!("libm{i}.so")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        t.obj("/app", &prog(&refs));
        let d = t.diagnose(&["/app"], &[]);
        assert_eq!(missing(&d).len(), MAX_MISSING);
        // A chain of libraries each needing the next, deeper than the walk goes.
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libd0.so"]));
        for i in 0..20 {
            t.obj(
                &format!("/usr/lib/libd{i}.so"),
                &Obj::lib(&[&format!("libd{}.so", i + 1)]),
            );
        }
        let d = t.diagnose(&["/app"], &[]);
        assert!(
            d.findings.is_empty(),
            "the missing libd20.so lies below the depth bound: {:#?}",
            d.findings
        );
        // A loop of libraries ends.
        let t = Tree::new();
        t.glibc();
        t.obj("/app", &prog(&["libx.so"]));
        t.obj("/usr/lib/libx.so", &Obj::lib(&["liby.so"]));
        t.obj("/usr/lib/liby.so", &Obj::lib(&["libx.so"]));
        assert!(t.diagnose(&["/app"], &[]).findings.is_empty());
    }

    #[test]
    fn real_host_ls_with_its_libraries() {
        let Ok(paths) = std::process::Command::new("ldd").arg("/bin/ls").output() else {
            return;
        };
        let text = String::from_utf8_lossy(&paths.stdout).into_owned();
        let libs: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
            .collect();
        let t = Tree::new();
        let copy = |src: &str, inner: &str| {
            let p = t.host(inner);
            std::fs::create_dir_all(p.parent().unwrap_or(Path::new("/")))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::copy(src, &p).unwrap_or_else(|e| panic!("copy {src}: {e}"));
        };
        copy("/bin/ls", "/bin/ls");
        for l in &libs {
            copy(l, l);
        }
        assert!(t.diagnose(&["/bin/ls"], &[]).findings.is_empty());
        let selinux = libs.iter().find(|l| l.contains("libselinux"));
        if let Some(s) = selinux {
            let _ = std::fs::remove_file(t.host(s));
            let d = t.diagnose(&["/bin/ls"], &[]);
            assert_eq!(missing(&d), ["libselinux.so.1"]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn never_panics_on_arbitrary_libraries(
            flips in proptest::collection::vec((0usize..0x1100, any::<u8>()), 0..16),
            junk in proptest::collection::vec(any::<u8>(), 0..600),
            runpath in "[$A-Z{}/.:a-z]{0,24}",
        ) {
            let t = Tree::new();
            t.glibc();
            let mut p = prog(&["liba.so", "libj.so", "libc.so.6"]);
            p.runpath = Some(runpath.into_bytes());
            t.obj("/app", &p);
            let mut a = Obj::lib(&["libb.so"]).build();
            for (at, b) in flips {
                if let Some(x) = a.get_mut(at) {
                    *x = b;
                }
            }
            t.put("/usr/lib/liba.so", &a, 0o644);
            t.put("/usr/lib/libj.so", &junk, 0o644);
            t.put("/etc/ld.so.cache", &junk, 0o644);
            let d = t.diagnose_with(&["/app"], &["LD_LIBRARY_PATH=$ORIGIN:;"], &host().with_page_size(16384).with_isa_level(Some(1)));
            prop_assert!(d.findings.len() <= 2 * MAX_MISSING + 8);
        }
    }
}
