//! The checks: find the program the kernel will really exec for `process.args[0]` and walk the
//! steps of execve in the kernel's order, stopping where the kernel would stop.
//!
//! Order (fs/exec.c `do_execveat_common` → `bprm_execve` → `exec_binprm`): the path walk and
//! permissions (`do_open_execat`: regular file, MAY_EXEC, noexec mount), then the binary
//! handlers in list order: binfmt_misc first (`insert_binfmt` puts it at the head), then
//! `#!` scripts (fs/binfmt_script.c) and ELF (fs/binfmt_elf.c). Each interpreter found on the
//! way is checked the same way, up to the kernel's nesting limit.
//!
//! The program chain goes on past what the kernel execs when a known wrapper execs the next
//! program itself: init wrappers (`docker-init`/tini, dumb-init, catatonit) and `sh -c "cmd"`.
//!
//! Once an ELF file would exec, [`libs`] names what fails right after: missing libraries,
//! the CPU's ISA level, the host's page size. A shell-form command in an image without a
//! shell gets the exec form as its fix (`no-shell`).

pub mod filecaps;
pub mod libs;
pub mod perm;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::diagnosis::{ChainLink, Code, Diagnosis, Finding, Program, Severity};
use crate::host::{Host, binfmt};
use crate::inspect::elf::{self, Defect, ElfInfo};
use crate::inspect::script::{self, Script, ShebangError};
use crate::inspect::sniff::{self, Format};
use crate::rootfs::resolve::{self, Mount, MountKind, Resolution, Resolved, Root};
use crate::sanitize::escape_bytes;
use crate::spec::SpecView;
use perm::User;

/// BINPRM_BUF_SIZE: the bytes binfmt_misc and binfmt_script look at.
const BINPRM_BUF_SIZE: usize = 256;
/// The prefix read from every file.
const HEADER_BYTES: usize = 4096;
/// exec_binprm: `if (depth > 5) return -ELOOP`: the file plus five interpreters.
const MAX_INTERP_DEPTH: usize = 5;
/// How many programs a chain of wrappers may hold before execguard stops following it.
const MAX_CHAIN: usize = 8;
/// How many files one diagnosis may check in all (interpreters, env targets, wrappers).
const MAX_STEPS: usize = 32;

/// Annotations that make crun or youki run something other than an ELF.
const HANDLER_ANNOTATIONS: &[&str] = &["run.oci.handler", "module.wasm.image/variant"];

/// Which runtime will exec the process: their words for the same failure differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// runc (and runtimes that print as it does).
    #[default]
    Runc,
    /// crun.
    Crun,
    /// crun invoked as krun: the workload runs in a microVM, not by exec on this kernel.
    Krun,
}

impl Flavor {
    /// The flavor of a runtime binary, by its file name.
    pub fn of(path: &Path) -> Flavor {
        let name = path.file_name().map(OsStr::as_bytes).unwrap_or_default();
        if name == b"krun" {
            Flavor::Krun
        } else if name.windows(4).any(|w| w == b"crun") {
            Flavor::Crun
        } else {
            Flavor::Runc
        }
    }
}

/// How the process will be started: by which runtime, and by `create`/`run` or by `exec`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The runtime.
    pub flavor: Flavor,
    /// `exec` into a running container rather than the container's own process.
    pub exec: bool,
}

/// Who performs an execve in the chain, which decides the words the user will see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// The runtime's init (`exec /app: exec format error`).
    Runtime(Context),
    /// A program calling execvp (tini, dumb-init, a shell, env): execvp retries an ENOEXEC
    /// file as a shell script.
    Execvp(&'static str),
}

/// One execve being followed: the path string passed to it and who calls it.
#[derive(Clone, Copy)]
struct Exec<'p> {
    path: &'p [u8],
    caller: Caller,
    /// Set for the process itself: runc's LookPath (`exec.LookPath` in its init) sees some
    /// failures before exec and reports them at create in its own words.
    lookpath: Option<&'p [u8]>,
    /// For an execvp caller: the container has /bin/sh, so execvp runs an ENOEXEC file with it.
    sh: bool,
    /// The name binfmt_misc's extension entries match (`bprm->interp`): the path given to
    /// execve, then each interpreter's path as named (`bprm_change_interp`).
    name: &'p [u8],
    /// `argv[0]` of the new program, which glibc's loader names in its errors: the command's
    /// first word as written, or an interpreter's path as named (binfmt_script and binfmt_misc
    /// put it in `argv[0]`).
    argv0: &'p [u8],
}

/// What LookPath reports when it rejects the program before exec.
#[derive(Clone, Copy)]
enum LookPathFailure {
    /// Not a regular file with an x bit: Go's findExecutable says EPERM-ish "permission denied".
    NotExecutable,
    /// stat failed on the way (a directory without search permission).
    Stat,
}

/// The line the user sees: runc's LookPath message for the process itself, else the exec line.
fn lookpath_line(x: Exec<'_>, what: LookPathFailure, errno: &str) -> Option<String> {
    let Some(name) = x.lookpath else {
        return exec_line(x, errno);
    };
    if matches!(
        x.caller,
        Caller::Runtime(Context {
            flavor: Flavor::Crun,
            ..
        })
    ) {
        // crun words these differently ("the path `X` exists but it is not executable").
        return None;
    }
    let n = escape_bytes(name);
    if !name.contains(&b'/') {
        return Some(format!("exec: \"{n}\": executable file not found in $PATH"));
    }
    Some(match what {
        LookPathFailure::NotExecutable => format!("exec: \"{n}\": permission denied"),
        LookPathFailure::Stat => format!("exec: \"{n}\": stat {n}: {}", strerror_go(errno)),
    })
}

fn strerror_go(errno: &str) -> &'static str {
    match errno {
        "ENOEXEC" => "exec format error",
        "ENOENT" => "no such file or directory",
        "EACCES" => "permission denied",
        "EPERM" => "operation not permitted",
        "EIO" => "input/output error",
        "ELIBBAD" => "accessing a corrupted shared library",
        "ELOOP" => "too many levels of symbolic links",
        "ENOTDIR" => "not a directory",
        "ENAMETOOLONG" => "file name too long",
        _ => "error",
    }
}

fn strerror_c(errno: &str) -> &'static str {
    match errno {
        "ENOEXEC" => "Exec format error",
        "ENOENT" => "No such file or directory",
        "EACCES" => "Permission denied",
        "EPERM" => "Operation not permitted",
        "EIO" => "Input/output error",
        "ELIBBAD" => "Accessing a corrupted shared library",
        "ELOOP" => "Too many levels of symbolic links",
        "ENOTDIR" => "Not a directory",
        "ENAMETOOLONG" => "File name too long",
        _ => "Error",
    }
}

/// The runtime's own words for a failed exec of the process (`top`: the process itself, not
/// an interpreter reached from it).
fn runtime_line(ctx: Context, p: &str, errno: &str, top: bool) -> Option<String> {
    Some(match (ctx.flavor, ctx.exec) {
        // runc exec checks eaccess(2) after LookPath (libcontainer/setns_init_linux.go).
        (Flavor::Runc, true) if top && errno == "EACCES" => {
            format!("eaccess {p}: permission denied")
        }
        (Flavor::Runc, _) => format!("exec {p}: {}", strerror_go(errno)),
        // crun: libcrun/container.c, after the exec FIFO.
        (Flavor::Crun | Flavor::Krun, false) if errno == "ENOENT" => format!(
            "exec container process (missing dynamic library?) `{p}`: No such file or directory"
        ),
        (Flavor::Crun | Flavor::Krun, false) => {
            format!("exec container process `{p}`: {}", strerror_c(errno))
        }
        (Flavor::Crun | Flavor::Krun, true) => format!("exec: {}", strerror_c(errno)),
    })
}

/// glibc's execvp (tini, dumb-init, shells, env) runs a file that gets ENOEXEC with /bin/sh
/// (posix/execvpe.c `maybe_script_execute`): text then runs as a shell script, so an ENOEXEC
/// that would stop the runtime only degrades it there.
fn shell_retries(x: Exec<'_>) -> bool {
    matches!(x.caller, Caller::Execvp(_)) && x.sh
}

/// Error, or a warning where execvp's /bin/sh fallback runs the file anyway.
fn enoexec_severity(x: Exec<'_>) -> Severity {
    if shell_retries(x) {
        Severity::Warning
    } else {
        Severity::Error
    }
}

/// The line the user sees when this execve fails with `errno`, where it is known exactly.
///
/// glibc's execvp (tini, dumb-init, shells, env) retries a file that gets ENOEXEC as a shell
/// script (posix/execvpe.c `maybe_script_execute`): with /bin/sh in the container the shell
/// then reports a syntax error of its own; without it, the caller sees ENOENT.
fn exec_line(x: Exec<'_>, errno: &str) -> Option<String> {
    let p = escape_bytes(x.path);
    let (errno, who) = match x.caller {
        Caller::Runtime(ctx) => return runtime_line(ctx, &p, errno, x.lookpath.is_some()),
        Caller::Execvp(_) if errno == "ENOEXEC" && x.sh => return None,
        Caller::Execvp(who) if errno == "ENOEXEC" => ("ENOENT", who),
        Caller::Execvp(who) => (errno, who),
    };
    match who {
        // tini: `[FATAL tini (N)] exec %s failed: %s`.
        "tini" => Some(format!("exec {p} failed: {}", strerror_c(errno))),
        // dumb-init: `[dumb-init] %s: %s`.
        "dumb-init" => Some(format!("[dumb-init] {p}: {}", strerror_c(errno))),
        _ => None,
    }
}

/// The fix for a script with Windows line endings: convert it, and keep git from converting
/// it back.
fn crlf_hint(shown: &str) -> String {
    format!(
        "convert it to LF: sed -i 's/\\r$//' {shown} (or dos2unix); keep it LF in git: git config core.autocrlf input, and a .gitattributes line `*.sh text eol=lf`"
    )
}

fn base_name(p: &[u8]) -> &[u8] {
    p.rsplit(|b| *b == b'/').next().unwrap_or(p)
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The checks' working state for one diagnosis.
struct Checker<'a> {
    /// Files checked so far: a hard bound on the work, whatever the image's links and scripts.
    steps: usize,
    ctx: Context,
    spec: &'a SpecView,
    host: &'a Host,
    root: Root,
    user: User,
    findings: Vec<Finding>,
    chain: Vec<ChainLink>,
    /// Candidate library paths resolved so far (bounded by [`libs::MAX_PROBES`]).
    libs_probed: usize,
    /// Libraries opened so far (bounded by [`libs::MAX_LIBRARIES`]).
    libs_opened: usize,
}

/// How the check of a program's ELF loader ended.
enum LoaderCheck {
    /// The exec fails there (a finding was added).
    Stop,
    /// Not verifiable, but nothing says it fails.
    Unseen,
    /// Found and usable.
    Usable(Box<libs::Loader>),
}

/// Diagnose the process of a spec (the static view: rootfs plus the spec's mounts).
pub fn diagnose(spec: &SpecView, host: &Host) -> Diagnosis {
    diagnose_in(spec, host, None, Context::default())
}

/// [`diagnose`] with the words of a given runtime.
pub fn diagnose_for(spec: &SpecView, host: &Host, ctx: Context) -> Diagnosis {
    diagnose_in(spec, host, None, ctx)
}

/// Diagnose a process against a live container root (`/proc/<pid>/root` of a created or
/// running container): its mounts are already in place, so the spec's are not applied, and
/// noexec comes from each file's own mount.
pub fn diagnose_live(spec: &SpecView, host: &Host, root: &Path, ctx: Context) -> Diagnosis {
    diagnose_in(spec, host, Some(root), ctx)
}

/// The container's own process (not an exec) against the live root in `spec.root`, on this
/// host, in `flavor`'s words: what `create` and the OCI hook check.
///
/// # Errors
/// The live root cannot be opened: without CAP_SYS_PTRACE the kernel refuses /proc/<pid>/root
/// of a container in its own user namespace (fs/proc/base.c, proc_fd_access_allowed). The
/// caller then says so and falls back to the bundle's view rather than check nothing.
pub fn diagnose_created(
    spec: &SpecView,
    binfmt_root: std::path::PathBuf,
    flavor: Flavor,
) -> Result<Diagnosis, String> {
    let host = Host::detect(binfmt_root);
    let ctx = Context {
        flavor,
        exec: false,
    };
    try_diagnose(spec, &host, Some(&spec.root), ctx).map_err(|(_, e)| e)
}

fn diagnose_in(spec: &SpecView, host: &Host, live_root: Option<&Path>, ctx: Context) -> Diagnosis {
    try_diagnose(spec, host, live_root, ctx).unwrap_or_else(|(program, e)| {
        let f = Finding::new(
            Code::Unverifiable,
            Severity::Info,
            e,
            "check root.path in config.json".into(),
        );
        Diagnosis::new(program, vec![f])
    })
}

/// The diagnosis, or why the root could not be opened (with the program as far as known).
fn try_diagnose(
    spec: &SpecView,
    host: &Host,
    live_root: Option<&Path>,
    ctx: Context,
) -> Result<Diagnosis, (Program, String)> {
    let mut program = Program::default();
    if let Some(reason) = &spec.lenient_reason {
        tracing::debug!(%reason, "spec read leniently");
    }
    if let Some(a0) = spec.args.first() {
        program.args0 = Some(escape_bytes(a0.as_bytes()));
    }
    if ctx.flavor == Flavor::Krun {
        let f = Finding::new(
            Code::RuntimeHandler,
            Severity::Info,
            "the container is run by krun in a microVM, not by exec on this kernel: not checked"
                .into(),
            String::new(),
        );
        return Ok(Diagnosis::new(program, vec![f]));
    }
    for key in HANDLER_ANNOTATIONS {
        if let Some(v) = spec.annotations.get(*key) {
            let f = Finding::new(
                Code::RuntimeHandler,
                Severity::Info,
                format!(
                    "the container is run by a runtime handler ({key}={}), not by exec of an ELF: not checked",
                    escape_bytes(v.as_bytes())
                ),
                String::new(),
            )
            .with("annotation", *key);
            return Ok(Diagnosis::new(program, vec![f]));
        }
    }
    if !spec.has_process || spec.args.is_empty() {
        let f = Finding::new(
            Code::Unverifiable,
            Severity::Info,
            "the spec has no process.args: nothing to check".into(),
            "give the container a command (process.args)".into(),
        );
        return Ok(Diagnosis::new(program, vec![f]));
    }
    program.args0 = Some(escape_bytes(spec.args[0].as_bytes()));
    let opened = match live_root {
        Some(r) => Root::open(r, Vec::new()),
        None => Root::open(&spec.root, spec_mounts(spec)),
    };
    let root = match opened {
        Ok(r) => r,
        Err(e) => {
            let why = format!(
                "cannot open the rootfs {}: {e}",
                escape_bytes(spec.root.as_os_str().as_bytes())
            );
            return Err((program, why));
        }
    };
    let mut c = Checker {
        steps: 0,
        ctx,
        spec,
        host,
        root,
        user: User::from_spec(spec),
        findings: Vec::new(),
        chain: Vec::new(),
        libs_probed: 0,
        libs_opened: 0,
    };
    c.process(&mut program);
    program.chain = std::mem::take(&mut c.chain);
    Ok(Diagnosis::new(program, c.findings))
}

/// Diagnose, or say why the bundle cannot be checked at all (its rootfs cannot be opened).
///
/// # Errors
/// The rootfs is missing or not a directory.
pub fn diagnose_bundle(spec: &SpecView, host: &Host) -> Result<Diagnosis, String> {
    if let Err(e) = std::fs::metadata(&spec.root).and_then(|m| {
        if m.is_dir() {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
        }
    }) {
        return Err(format!(
            "cannot open the rootfs {}: {e}",
            escape_bytes(spec.root.as_os_str().as_bytes())
        ));
    }
    Ok(diagnose(spec, host))
}

/// The first `process.env` entry runc refuses, as a finding. runc's init validates the whole
/// environment before it looks up or starts anything (libcontainer/init_linux.go,
/// populateProcessEnvironment): an entry without `=`, with an empty name, or with a NUL byte
/// fails the start. crun takes them all (it cuts at the NUL).
fn bad_environment(env: &[String]) -> Option<Finding> {
    // What is wrong, and runc's words when execguard can repeat its line exactly: runc quotes
    // the entry with Go's %q, which execguard's escaping matches only for plain text.
    let (entry, why, said) = env.iter().find_map(|e| {
        Some(if e.contains('\0') {
            let in_name = e
                .split_once('=')
                .is_some_and(|(name, _)| name.contains('\0'));
            let part = if in_name { "name" } else { "value" };
            (e, format!("holds a NUL byte in its {part}"), None)
        } else if !e.contains('=') {
            (e, "has no '='".into(), Some("invalid environment variable"))
        } else if e.starts_with('=') {
            (
                e,
                "has an empty name".into(),
                Some("environment variable name can't be empty"),
            )
        } else {
            return None;
        })
    })?;
    let shown = escape_bytes(entry.as_bytes());
    let plain = entry
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    let expected = said.filter(|_| plain).map(|said| {
        format!(
            "unable to start container process: error during container init: {said}: \"{entry}\""
        )
    });
    let f = Finding::new(
        Code::BadEnvironment,
        Severity::Error,
        format!("process.env entry {shown} {why}: runc refuses the environment before it starts anything"),
        "write every entry as NAME=VALUE with a non-empty NAME and no NUL byte (ENV in the Dockerfile, env in the pod spec, -e on the command line)".into(),
    )
    .expect(expected)
    .with("entry", shown);
    Some(f)
}

/// The spec's mounts in the resolver's terms.
fn spec_mounts(spec: &SpecView) -> Vec<Mount> {
    spec.mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| m.destination.starts_with('/'))
        .map(|(index, m)| Mount {
            destination: resolve::clean(m.destination.as_bytes()),
            kind: if m.is_bind() {
                MountKind::Bind {
                    source: m.source.clone().into(),
                }
            } else {
                MountKind::Opaque {
                    fstype: if m.fstype.is_empty() {
                        "none".into()
                    } else {
                        m.fstype.clone()
                    },
                }
            },
            options: m.options.clone(),
            index,
        })
        .collect()
}

/// How a lookup ended when it did not find an executable file.
enum Lookup {
    Found(Vec<u8>, Box<Resolved>),
    Failed,
}

impl Checker<'_> {
    fn add(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// Whether /bin/sh resolves in the container (execvp's ENOEXEC fallback needs it).
    fn has_sh(&self) -> bool {
        matches!(self.root.resolve(b"/bin/sh", true), Resolution::Found(_))
    }

    fn link(&mut self, path: &[u8], role: &'static str) {
        self.chain.push(ChainLink {
            path: escape_bytes(path),
            role,
        });
    }

    fn process(&mut self, program: &mut Program) {
        let mut args: Vec<Vec<u8>> = self
            .spec
            .args
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        if self.ctx.flavor != Flavor::Crun
            && let Some(f) = bad_environment(&self.spec.env)
        {
            self.add(f);
            return;
        }
        let nul = args.iter().position(|a| a.contains(&0));
        if let Some(i) = nul
            && self.ctx.flavor == Flavor::Crun
        {
            // crun reads config.json into C strings (yajl, then strdup): every argument ends
            // at its first NUL, and what is left is what it starts.
            let shown = escape_bytes(&args[i]);
            for a in &mut args {
                if let Some(end) = a.iter().position(|b| *b == 0) {
                    a.truncate(end);
                }
            }
            let f = Finding::new(
                Code::NulInArgument,
                Severity::Warning,
                format!(
                    "process.args[{i}] {shown} holds a NUL byte: crun cuts it there and passes {}",
                    escape_bytes(&args[i])
                ),
                "remove the NUL byte (\\u0000) from the argument in the image's or the pod's command"
                    .into(),
            )
            .with("index", i);
            self.add(f);
        } else if let Some(0) = nul
            && args[0].contains(&b'/')
        {
            // runc's LookPath stats the name; Go refuses a path with a NUL (EINVAL). A bare
            // name is searched in PATH, where every candidate fails: not found (below).
            let shown = escape_bytes(&args[0]);
            let f = Finding::new(
                Code::NulInArgument,
                Severity::Error,
                format!("process.args[0] {shown} holds a NUL byte: no path can, so the runtime cannot find the program"),
                "remove the NUL byte (\\u0000) from the image's or the pod's command".into(),
            )
            .errno("EINVAL")
            // runc's line holds the name twice, quoted by Go and raw, each escaped differently
            // by its log: not something to reproduce byte for byte.
            .expect(None)
            .at(&args[0])
            .with("index", 0);
            self.add(f);
            return;
        }
        let before = self.findings.len();
        let Lookup::Found(path, res) = self.lookup_runtime(&args[0]) else {
            self.no_shell(&args, before);
            return;
        };
        if let Some(i) = nul
            && self.ctx.flavor != Flavor::Crun
        {
            // Go builds execve's argv as C strings and refuses one with a NUL before the
            // syscall: the kernel never sees the file (syscall.BytePtrSliceFromString).
            let f = Finding::new(
                Code::NulInArgument,
                Severity::Error,
                format!(
                    "process.args[{i}] {} holds a NUL byte: the runtime cannot pass it to execve",
                    escape_bytes(&args[i])
                ),
                "remove the NUL byte (\\u0000) from the argument in the image's or the pod's command"
                    .into(),
            )
            .errno("EINVAL")
            .expect(format!("exec {}: invalid argument", escape_bytes(&path)))
            .at(&path)
            .with("index", i);
            self.add(f);
            return;
        }
        program.path = Some(escape_bytes(&res.path));
        self.link(&path, "process");
        let x = Exec {
            path: &path,
            caller: Caller::Runtime(self.ctx),
            lookpath: Some(&args[0]),
            sh: false,
            name: &path,
            argv0: &args[0],
        };
        if !self.check_file(x, &res, 0) {
            return;
        }
        self.follow_wrappers(&res.path, &args, 0);
    }

    /// Resolve a container path the way execve does (links followed), from `cwd` when relative.
    fn resolve(&self, path: &[u8]) -> (Vec<u8>, Resolution) {
        let abs = if path.starts_with(b"/") {
            path.to_vec()
        } else {
            join(self.spec.cwd.as_bytes(), path)
        };
        let r = self.root.resolve(&abs, true);
        (abs, r)
    }

    /// `exec.LookPath` as runc's init calls it before exec (a missing program is a create-time
    /// error): a name with a slash is used as given; otherwise each PATH entry of process.env
    /// in turn, and no PATH means no lookup at all.
    fn lookup_runtime(&mut self, name: &[u8]) -> Lookup {
        let shown = escape_bytes(name);
        if name.contains(&b'/') {
            let (abs, r) = self.resolve(name);
            return match r {
                Resolution::Found(res) => Lookup::Found(name.to_vec(), Box::new(res)),
                other => {
                    let line = format!(
                        "exec: \"{shown}\": stat {shown}: {}",
                        strerror_go(resolution_errno(&other))
                    );
                    self.report_unresolved(&abs, other, "process.args[0]", Some(line));
                    Lookup::Failed
                }
            };
        }
        let Some(path_var) = self.spec.env_path().map(str::to_string) else {
            let f = Finding::new(
                Code::NotFound,
                Severity::Error,
                format!("{shown} has no slash and process.env sets no PATH, so the runtime cannot look it up"),
                "use an absolute path in the command, or add PATH to the environment (ENV PATH=... in the image)".to_string(),
            )
            .errno("ENOENT")
            .expect(format!("unable to start container process: exec: \"{shown}\": executable file not found in $PATH"))
            .at(name)
            .with("path_variable", serde_json::Value::Null);
            self.add(f);
            return Lookup::Failed;
        };
        self.lookup_in_path(name, &path_var, None)
    }

    /// A PATH search for `name`; `caller` is None for the runtime's LookPath.
    fn lookup_in_path(
        &mut self,
        name: &[u8],
        path_var: &str,
        caller: Option<&'static str>,
    ) -> Lookup {
        let shown = escape_bytes(name);
        let mut tried: Vec<serde_json::Value> = Vec::new();
        let mut not_exec: Option<(Vec<u8>, Box<Resolved>)> = None;
        let mut unverifiable: Option<Vec<u8>> = None;
        // Go's filepath.SplitList("") is empty: `PATH=` searches nothing.
        let entries: Vec<&str> = if path_var.is_empty() {
            Vec::new()
        } else {
            path_var.split(':').collect()
        };
        let mut denied: Option<Vec<u8>> = None;
        for dir in entries {
            let dir = if dir.is_empty() { "." } else { dir };
            let cand = join(dir.as_bytes(), name);
            tried.push(escape_bytes(&cand).into());
            let (_, r) = self.resolve(&cand);
            match r {
                Resolution::Found(res) => {
                    // The lookup runs as the container's user: a directory it may not search
                    // makes stat fail, and the search goes on.
                    if res
                        .dirs
                        .iter()
                        .any(|d| !self.user.may_search(d.mode, d.uid, d.gid))
                    {
                        denied.get_or_insert(cand);
                        continue;
                    }
                    let is_file = res.stat.st_mode & libc::S_IFMT == libc::S_IFREG;
                    if is_file && res.stat.st_mode & 0o111 != 0 {
                        if caller.is_none() && !dir.starts_with('/') {
                            // Go >= 1.19: exec.ErrDot for a program found through a relative
                            // PATH entry; runc refuses it.
                            let f = Finding::new(
                                Code::NotFound,
                                Severity::Error,
                                format!(
                                    "{shown} is found only through the relative PATH entry \"{}\", which the runtime refuses",
                                    escape_bytes(dir.as_bytes())
                                ),
                                "use absolute directories in PATH, or the program's absolute path".into(),
                            )
                            .errno("ENOENT")
                            .expect(format!("exec: \"{shown}\": cannot run executable found relative to current directory"))
                            .at(&cand)
                            .with("path_variable", escape_bytes(path_var.as_bytes()));
                            self.add(f);
                            return Lookup::Failed;
                        }
                        return Lookup::Found(cand, Box::new(res));
                    }
                    if is_file && not_exec.is_none() {
                        not_exec = Some((cand, Box::new(res)));
                    }
                }
                Resolution::Unverifiable { .. } => {
                    unverifiable.get_or_insert(cand);
                }
                _ => {}
            }
        }
        if let Some(cand) = denied.filter(|_| not_exec.is_none() && unverifiable.is_none()) {
            let f = Finding::new(
                Code::PermissionDeniedUser,
                Severity::Error,
                format!(
                    "{shown} exists at {} but user {}:{} may not search a directory on the way, so the lookup fails",
                    escape_bytes(&cand),
                    self.user.uid,
                    self.user.gid
                ),
                format!(
                    "give the directories search permission (`chmod o+x` on each, or COPY --chown={}:{} in the image), or run as their owner (docker run --user, runAsUser in Kubernetes)",
                    self.user.uid, self.user.gid
                ),
            )
            .errno("EACCES")
            .expect(match caller {
                None => format!("exec: \"{shown}\": executable file not found in $PATH"),
                Some(_) => String::new(),
            })
            .at(&cand)
            .with("searched", tried);
            let f = if caller.is_some() {
                Finding {
                    expected_error: None,
                    ..f
                }
            } else {
                f
            };
            self.add(f);
            return Lookup::Failed;
        }
        let expected = match caller {
            None => format!(
                "unable to start container process: exec: \"{shown}\": executable file not found in $PATH"
            ),
            Some(who) => format!("{who}: {shown}: not found"),
        };
        if let Some(cand) = unverifiable {
            let f = Finding::new(
                Code::Unverifiable,
                Severity::Info,
                format!(
                    "{shown} may be provided by a mount execguard cannot see ({})",
                    escape_bytes(&cand)
                ),
                String::new(),
            )
            .at(&cand)
            .with("searched", tried);
            self.add(f);
            return Lookup::Failed;
        }
        if let Some((cand, res)) = not_exec {
            let f = Finding::new(
                Code::NotExecutable,
                Severity::Error,
                format!(
                    "{} is found on PATH but has no execute bit (mode {:04o}), so the lookup of {shown} fails",
                    escape_bytes(&cand),
                    res.stat.st_mode & 0o7777
                ),
                format!("make it executable in the image: RUN chmod +x {}", escape_bytes(&cand)),
            )
            .errno("EACCES")
            .expect(expected)
            .at(&cand)
            .with("searched", tried);
            self.add(f);
            return Lookup::Failed;
        }
        let f = Finding::new(
            Code::NotFound,
            Severity::Error,
            format!(
                "{shown} is in no PATH entry of the container ({})",
                escape_bytes(path_var.as_bytes())
            ),
            format!("install {shown} in the image, fix PATH, or use the program's absolute path"),
        )
        .errno("ENOENT")
        .expect(expected)
        .at(name)
        .with("path_variable", escape_bytes(path_var.as_bytes()))
        .with("searched", tried);
        self.add(f);
        Lookup::Failed
    }

    /// A resolution that did not find the file, as a finding.
    fn report_unresolved(
        &mut self,
        path: &[u8],
        r: Resolution,
        what: &str,
        expected: Option<String>,
    ) {
        let shown = escape_bytes(path);
        let errno = resolution_errno(&r);
        let f = match r {
            Resolution::Found(_) => return,
            Resolution::NotFound { at, links, .. } => {
                let mut f = Finding::new(
                    Code::NotFound,
                    Severity::Error,
                    if at == path {
                        format!("{what} {shown} does not exist in the container")
                    } else {
                        format!("{what} {shown} does not exist in the container ({} is missing)", escape_bytes(&at))
                    },
                    format!("check the image contents and the command; {} is not in the rootfs or any mount", escape_bytes(&at)),
                )
                .with_bytes("missing", &at);
                if !links.is_empty() {
                    f = f.with("links", links_json(&links));
                }
                f
            }
            Resolution::NotDirectory { at, .. } => Finding::new(
                Code::NotFound,
                Severity::Error,
                format!(
                    "{what} {shown} cannot be reached: {} is not a directory",
                    escape_bytes(&at)
                ),
                "fix the path".into(),
            )
            .with_bytes("not_a_directory", &at),
            Resolution::Loop { at, links } => Finding::new(
                Code::SymlinkLoop,
                Severity::Error,
                format!(
                    "{what} {shown} goes through more than 40 symbolic links (a loop at {})",
                    escape_bytes(&at)
                ),
                "fix the symbolic links in the image".into(),
            )
            .with("links", links_json(&links)),
            Resolution::NameTooLong => Finding::new(
                Code::NotFound,
                Severity::Error,
                format!("{what} {shown} is longer than the kernel accepts (PATH_MAX or NAME_MAX)"),
                "shorten the path".into(),
            ),
            Resolution::Unverifiable { at, mount, .. } => {
                let m = self
                    .root
                    .mounts()
                    .get(mount)
                    .map(mount_desc)
                    .unwrap_or_default();
                let f = Finding::new(
                    Code::Unverifiable,
                    Severity::Info,
                    format!("{what} {shown} lies under a mount execguard cannot see ({m}): unknown, not missing"),
                    String::new(),
                )
                .at(path)
                .with_bytes("mount_point", &at);
                self.add(f);
                return;
            }
            Resolution::Error { at, error } => {
                let f = Finding::new(
                    Code::Unverifiable,
                    Severity::Info,
                    format!(
                        "cannot inspect {what} {shown}: {} at {}",
                        error,
                        escape_bytes(&at)
                    ),
                    String::new(),
                )
                .at(path);
                self.add(f);
                return;
            }
        };
        let mut f = f.errno(errno).at(path);
        if let Some(e) = expected {
            f = f.expect(e);
        }
        self.add(f);
    }

    /// Check one file that an execve reaches. Returns false when the exec fails there (a
    /// finding was added) or cannot be followed further.
    fn check_file(&mut self, x: Exec<'_>, res: &Resolved, depth: usize) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            let f = Finding::new(
                Code::Unverifiable,
                Severity::Info,
                format!(
                    "stopped following the chain of programs at {} after {MAX_STEPS} files",
                    escape_bytes(&res.path)
                ),
                String::new(),
            )
            .at(&res.path);
            self.add(f);
            return false;
        }
        let p = &res.path;
        let shown = escape_bytes(p);
        let mode = res.stat.st_mode;
        let fmt = mode & libc::S_IFMT;
        // LookPath only looks at the process itself, not at interpreters reached from it.
        // LookPath (and runc exec's eaccess) only look at the process itself, not at the
        // interpreters reached from it.
        let x = if depth == 0 {
            x
        } else {
            Exec {
                lookpath: None,
                ..x
            }
        };
        let xl = x;
        // Search permission on every directory walked (fs/namei.c may_lookup).
        if let Some(d) = res
            .dirs
            .iter()
            .find(|d| !self.user.may_search(d.mode, d.uid, d.gid))
        {
            let f = Finding::new(
                Code::PermissionDeniedUser,
                Severity::Error,
                format!(
                    "user {}:{} may not search directory {} (mode {:04o}, owner {}:{}) on the way to {shown}",
                    self.user.uid, self.user.gid, escape_bytes(&d.path), d.mode & 0o7777, d.uid, d.gid
                ),
                format!("give the directory search permission for the user (chmod o+x {}) or run as its owner", escape_bytes(&d.path)),
            )
            .errno("EACCES")
            .expect(lookpath_line(xl, LookPathFailure::Stat, "EACCES"))
            .at(p)
            .with_bytes("directory", &d.path)
            .with("uid", self.user.uid)
            .with("gid", self.user.gid);
            self.add(f);
            return false;
        }
        if fmt == libc::S_IFDIR {
            let f = Finding::new(
                Code::IsDirectory,
                Severity::Error,
                format!("{shown} is a directory, not a program"),
                "point the command at the program inside it".into(),
            )
            .errno("EACCES")
            .expect(lookpath_line(xl, LookPathFailure::NotExecutable, "EACCES"))
            .at(p);
            self.add(f);
            return false;
        }
        if fmt != libc::S_IFREG {
            let kind = match fmt {
                libc::S_IFIFO => "a FIFO",
                libc::S_IFSOCK => "a socket",
                libc::S_IFCHR => "a character device",
                libc::S_IFBLK => "a block device",
                _ => "not a regular file",
            };
            let f = Finding::new(
                Code::NotRegular,
                Severity::Error,
                format!("{shown} is {kind}, which the kernel does not exec"),
                "point the command at a regular file".into(),
            )
            .errno("EACCES")
            .expect(if mode & 0o111 == 0 {
                lookpath_line(xl, LookPathFailure::NotExecutable, "EACCES")
            } else {
                exec_line(x, "EACCES")
            })
            .at(p)
            .with("file_type", kind);
            self.add(f);
            return false;
        }
        let (fuid, fgid) = (res.stat.st_uid, res.stat.st_gid);
        // runc's LookPath rejects a file without any x bit at create, before exec.
        // runc's LookPath rejects a file without any x bit at create, before exec; for
        // everything else may_open (fs/namei.c) checks noexec before the permission bits.
        let no_x_bit = mode & 0o111 == 0;
        if no_x_bit && x.lookpath.is_some() {
            self.not_executable(xl, p, mode);
            return false;
        }
        // may_open (fs/namei.c) checks noexec before the permission bits.
        if let Some(why) = self.noexec(res) {
            let f = Finding::new(
                Code::NoexecMount,
                Severity::Error,
                format!("{shown} lies on a mount marked noexec ({why})"),
                "drop noexec from the mount options, or run the program from another mount".into(),
            )
            .errno("EACCES")
            .expect(exec_line(x, "EACCES"))
            .at(p)
            .with("mount", why);
            self.add(f);
            return false;
        }
        if no_x_bit {
            self.not_executable(xl, p, mode);
            return false;
        }
        if !self.user.may_exec(mode, fuid, fgid) {
            let f = Finding::new(
                Code::PermissionDeniedUser,
                Severity::Error,
                format!(
                    "user {}:{} may not execute {shown} (mode {:04o}, owner {fuid}:{fgid})",
                    self.user.uid,
                    self.user.gid,
                    mode & 0o7777
                ),
                "give the user execute permission (chmod a+x), change the owner, or run the container as the owner".into(),
            )
            .errno("EACCES")
            .expect(exec_line(x, "EACCES"))
            .at(p)
            .with("mode", format!("{:04o}", mode & 0o7777))
            .with("owner", format!("{fuid}:{fgid}"))
            .with("uid", self.user.uid)
            .with("gid", self.user.gid)
            .with("cap_dac_override", self.user.dac_override);
            self.add(f);
            return false;
        }
        let file = match resolve::open_for_read(res) {
            Ok(f) => f,
            Err(e) => {
                let f = Finding::new(
                    Code::Unverifiable,
                    Severity::Info,
                    format!("cannot read {shown}: {e}"),
                    String::new(),
                )
                .at(p);
                self.add(f);
                return true;
            }
        };
        let mut header = vec![0u8; HEADER_BYTES];
        let n = read_prefix(&file, &mut header);
        header.truncate(n);
        let size = u64::try_from(res.stat.st_size).unwrap_or(0);
        // binfmt_misc comes first for every file (fs/binfmt_misc.c check_file).
        let mut buf = [0u8; BINPRM_BUF_SIZE];
        let k = header.len().min(BINPRM_BUF_SIZE);
        buf[..k].copy_from_slice(&header[..k]);
        if let Some(entry) = binfmt::select(self.host.binfmt(), &buf, x.name) {
            let entry = entry.clone();
            return self.check_binfmt(x, res, &header, &file, &entry, depth);
        }
        if size == 0 || header.is_empty() {
            let f = Finding::new(
                Code::EmptyFile,
                enoexec_severity(x),
                format!("{shown} is empty (0 bytes)"),
                "the file was not copied or was truncated: rebuild the image and check the COPY/ADD source".into(),
            )
            .errno("ENOEXEC")
            .expect(exec_line(x, "ENOEXEC"))
            .at(p);
            self.add(f);
            return false;
        }
        if header.starts_with(b"#!") {
            return self.check_script(x, res, &header, depth);
        }
        if header.starts_with(b"\x7fELF") {
            return self.check_elf(x, res, &header, &file, depth);
        }
        self.check_other(x, res, &header, size)
    }

    fn not_executable(&mut self, x: Exec<'_>, p: &[u8], mode: u32) {
        let shown = escape_bytes(p);
        let f = Finding::new(
            Code::NotExecutable,
            Severity::Error,
            format!(
                "{shown} has no execute bit for anyone (mode {:04o})",
                mode & 0o7777
            ),
            format!("make it executable in the image: RUN chmod +x {shown} (or COPY --chmod=755)"),
        )
        .errno("EACCES")
        .expect(lookpath_line(x, LookPathFailure::NotExecutable, "EACCES"))
        .at(p)
        .with("mode", format!("{:04o}", mode & 0o7777));
        self.add(f);
    }

    /// Why the file's mount forbids exec, if it does.
    fn noexec(&self, res: &Resolved) -> Option<String> {
        if let Some(i) = res.mount {
            let m = self.root.mount(i)?;
            if m.noexec() {
                return Some(format!("spec mount {}", mount_desc(m)));
            }
            // runc remounts a bind only when the spec gives it flags beyond bind and
            // propagation; otherwise the bind keeps the source mount's flags (clone_mnt).
            if !bind_is_remounted(m) {
                return host_noexec(res).then(|| {
                    format!("spec mount {} from a noexec host filesystem", mount_desc(m))
                });
            }
            return None;
        }
        // The rootfs (or, in the live view, any file): the file's own mount decides; runc
        // bind-mounts the rootfs and the bind keeps the host mount's noexec.
        host_noexec(res).then(|| "the filesystem holding it is mounted noexec".to_string())
    }

    fn check_binfmt(
        &mut self,
        x: Exec<'_>,
        res: &Resolved,
        header: &[u8],
        file: &std::fs::File,
        entry: &binfmt::Entry,
        depth: usize,
    ) -> bool {
        let shown = escape_bytes(&res.path);
        let interp = entry.interpreter.as_bytes().to_vec();
        let arch = binfmt::emulated_arch(entry);
        let what = elf::parse(header, file)
            .map(|i| elf::describe(&i))
            .unwrap_or_else(|| "this file".to_string());
        if !entry.flags.fix_binary {
            // Without F the kernel opens the interpreter by path at exec time, inside the
            // container's mount namespace (load_misc_binary → open_exec).
            let (_, r) = self.resolve(&interp);
            let ires = match r {
                Resolution::Found(ir) => ir,
                Resolution::Unverifiable { .. } => {
                    let f = Finding::new(
                        Code::Unverifiable,
                        Severity::Info,
                        format!(
                            "binfmt_misc handler {} takes {shown} and its interpreter {} lies under a mount execguard cannot see",
                            entry.name,
                            escape_bytes(&interp)
                        ),
                        String::new(),
                    )
                    .at(&res.path);
                    self.add(f);
                    return true;
                }
                _ => {
                    let f = Finding::new(
                        Code::BinfmtInterpreterUnreachable,
                        Severity::Error,
                        format!(
                            "{shown} ({what}) is taken by binfmt_misc handler {}, registered without the F flag, and its interpreter {} does not exist inside the container",
                            entry.name,
                            escape_bytes(&interp)
                        ),
                        format!(
                            "re-register the handler with the F flag so the kernel keeps the interpreter open for every container (e.g. `docker run --privileged --rm tonistiigi/binfmt --install {}`, or update-binfmts with fix_binary yes), or copy {} into the image",
                            arch.unwrap_or("all"),
                            escape_bytes(&interp)
                        ),
                    )
                    .errno("ENOENT")
                    .expect(exec_line(x, "ENOENT"))
                    .at(&res.path)
                    .with("handler", entry.name.clone())
                    .with_bytes("interpreter", &interp)
                    .with("flags", binfmt::describe_flags(&entry.flags));
                    self.add(f);
                    return false;
                }
            };
            if depth + 1 > MAX_INTERP_DEPTH {
                self.too_deep(x, &res.path);
                return false;
            }
            self.link(&ires.path, "binfmt-interpreter");
            let xi = Exec {
                name: &interp,
                argv0: &interp,
                ..x
            };
            if !self.check_file(xi, &ires, depth + 1) {
                return false;
            }
        }
        let mut f = Finding::new(
            Code::Emulated,
            Severity::Info,
            format!(
                "{shown} ({what}) will run under emulation by binfmt_misc handler {} ({})",
                entry.name,
                escape_bytes(&interp)
            ),
            String::new(),
        )
        .at(&res.path)
        .with("handler", entry.name.clone())
        .with_bytes("interpreter", &interp)
        .with("flags", binfmt::describe_flags(&entry.flags));
        if let Some(a) = arch {
            f = f.with("emulated_arch", a);
        }
        self.add(f);
        // The emulator loads the program's own ELF loader from the container's root.
        if let Some(info) = elf::parse(header, file)
            && let Some(ld) = &info.interp
        {
            let (_, r) = self.resolve(ld);
            if let Resolution::Found(lres) = &r {
                // The emulated loader then searches the container for the libraries. Without
                // P the emulator gives the program its path as argv[0].
                if let Some(loader) = emulated_loader(ld, lres) {
                    let argv0 = if entry.flags.preserve_argv0 {
                        x.argv0
                    } else {
                        x.path
                    };
                    let xe = Exec { argv0, ..x };
                    self.after_exec(xe, res, &info, header, file, Some(&loader), false);
                }
                return true;
            }
            if !matches!(r, Resolution::Found(_) | Resolution::Unverifiable { .. }) {
                let f = Finding::new(
                    Code::InterpreterMissing,
                    Severity::Error,
                    format!(
                        "{shown} runs under emulation ({}), but its ELF loader {} does not exist in the container, so the emulator fails right after exec",
                        entry.name,
                        escape_bytes(ld)
                    ),
                    format!(
                        "use an image built for {} with its libraries, or a statically linked build",
                        elf::arch_name(info.class, info.endian, info.machine)
                    ),
                )
                .expect(format!(
                    "{}: Could not open '{}': No such file or directory",
                    escape_bytes(base_name(&interp)),
                    escape_bytes(ld)
                ))
                .at(&res.path)
                .with_bytes("elf_interpreter", ld);
                self.add(f);
                return false;
            }
        }
        true
    }

    /// A shell-form command (`sh -c "..."`) whose shell the lookup did not find, in an image
    /// with no shell at all (distroless, scratch): the missing-file finding (added since
    /// `before`) stays the cause and gets the exec form as its hint, and a `no-shell` warning
    /// says why.
    fn no_shell(&mut self, args: &[Vec<u8>], before: usize) {
        let Some(a0) = args.first() else {
            return;
        };
        if !matches!(
            base_name(a0),
            b"sh" | b"bash" | b"dash" | b"ash" | b"zsh" | b"ksh" | b"mksh"
        ) {
            return;
        }
        let Some(script) = shell_command_string(args).cloned() else {
            return;
        };
        let Some(idx) = (before..self.findings.len()).find(|&i| {
            self.findings
                .get(i)
                .is_some_and(|f| f.code == Code::NotFound)
        }) else {
            return;
        };
        const SHELLS: &[&str] = &[
            "/bin/sh",
            "/usr/bin/sh",
            "/bin/bash",
            "/usr/bin/bash",
            "/bin/ash",
            "/bin/dash",
            "/bin/busybox",
            "/usr/bin/busybox",
        ];
        let any = SHELLS.iter().any(|p| {
            matches!(
                self.root.resolve(p.as_bytes(), true),
                Resolution::Found(_) | Resolution::Unverifiable { .. }
            )
        });
        if any {
            return;
        }
        let shown = escape_bytes(a0);
        let form = exec_form(&script);
        let hint = match &form {
            Some((first, json)) => format!(
                "write the command in exec form, which runs {} without a shell: ENTRYPOINT {json} (or CMD {json}) in the Dockerfile, or that list as the command in Kubernetes or compose",
                escape_bytes(first.as_bytes())
            ),
            None => "write the command in exec form, a JSON array such as ENTRYPOINT [\"/app\", \"--flag\"], which needs no shell; this command uses shell syntax (variables, quotes, pipes, &&), so move that logic into the program, or build FROM an image that has a shell (distroless :debug tags have busybox)".to_string(),
        };
        let expected = self
            .findings
            .get(idx)
            .and_then(|f| f.expected_error.clone());
        if let Some(f) = self.findings.get_mut(idx) {
            f.hint = hint.clone();
        }
        let mut f = Finding::new(
            Code::NoShell,
            Severity::Warning,
            format!(
                "the command is in shell form ({shown} -c \"{}\"), but the image has no shell at all (a distroless or scratch image)",
                escape_bytes(&script)
            ),
            hint,
        )
        .expect(expected)
        .at(a0)
        .with_bytes("shell", a0)
        .with_bytes("command", &script)
        .with("shells_looked_for", SHELLS.to_vec());
        if let Some((_, json)) = form {
            f = f.with("exec_form", json);
        }
        self.add(f);
    }

    fn too_deep(&mut self, x: Exec<'_>, path: &[u8]) {
        let f = Finding::new(
            Code::TooManyInterpreters,
            Severity::Error,
            format!("{} needs more nested interpreters than the kernel follows (at most {MAX_INTERP_DEPTH})", escape_bytes(path)),
            "point the #! line at the real interpreter".into(),
        )
        .errno("ELOOP")
        .expect(exec_line(x, "ELOOP"))
        .at(path);
        self.add(f);
    }

    fn check_script(&mut self, x: Exec<'_>, res: &Resolved, header: &[u8], depth: usize) -> bool {
        let shown = escape_bytes(&res.path);
        let first_line: Vec<u8> = header
            .iter()
            .take(BINPRM_BUF_SIZE)
            .take_while(|b| **b != b'\n')
            .copied()
            .collect();
        let sb = match script::parse(header) {
            Script::NotScript => return true,
            Script::Invalid(ShebangError::NoInterpreter) => {
                let f = Finding::new(
                    Code::NoShebang,
                    enoexec_severity(x),
                    format!("{shown} starts with #! but names no interpreter"),
                    "write the interpreter's absolute path after #! (e.g. #!/bin/sh)".into(),
                )
                .errno("ENOEXEC")
                .expect(exec_line(x, "ENOEXEC"))
                .at(&res.path)
                .with_bytes("first_line", &first_line);
                self.add(f);
                return false;
            }
            Script::Invalid(ShebangError::InterpreterTruncated) => {
                let f = Finding::new(
                    Code::ShebangTooLong,
                    enoexec_severity(x),
                    format!(
                        "the #! line of {shown} is longer than the kernel's {BINPRM_BUF_SIZE}-byte buffer and the interpreter path is cut"
                    ),
                    "shorten the interpreter path (use #!/usr/bin/env NAME or a symbolic link)".into(),
                )
                .errno("ENOEXEC")
                .expect(exec_line(x, "ENOEXEC"))
                .at(&res.path);
                self.add(f);
                return false;
            }
            Script::Script(sb) => sb,
        };
        let interp = sb.interpreter.clone();
        if interp.is_empty() {
            // "#!" then blanks up to the end of the file: open_exec("") fails with ENOENT.
            let f = Finding::new(
                Code::ShebangInterpreterMissing,
                Severity::Error,
                format!("{shown} starts with #! but names no interpreter"),
                "write the interpreter's absolute path after #! (e.g. #!/bin/sh)".into(),
            )
            .errno("ENOENT")
            .expect(exec_line(x, "ENOENT"))
            .at(&res.path);
            self.add(f);
            return false;
        }
        if sb.crlf && interp.ends_with(b"\r") {
            let (_, r) = self.resolve(&interp);
            if !matches!(r, Resolution::Found(_)) {
                let f = Finding::new(
                    Code::ShebangCrlf,
                    Severity::Error,
                    format!(
                        "{shown} has Windows line endings: the kernel looks for the interpreter \"{}\" with a carriage return, which does not exist",
                        escape_bytes(&interp)
                    ),
                    crlf_hint(&shown),
                )
                .errno("ENOENT")
                .expect(exec_line(x, "ENOENT"))
                .at(&res.path)
                .with_bytes("first_line", &first_line);
                self.add(f);
                return false;
            }
        }
        if sb.crlf && sb.arg.as_ref().is_some_and(|a| a.ends_with(b"\r")) {
            let arg = sb.arg.clone().unwrap_or_default();
            // A shell given `-e\r` refuses the option and runs nothing (busybox: "illegal
            // option -", dash: "Illegal option -", bash: "invalid option").
            let shell_option = arg.starts_with(b"-")
                && matches!(
                    base_name(&interp),
                    b"sh" | b"bash" | b"dash" | b"ash" | b"zsh" | b"ksh" | b"mksh"
                );
            let f = Finding::new(
                Code::ShebangCrlf,
                if shell_option { Severity::Error } else { Severity::Warning },
                if shell_option {
                    format!(
                        "{shown} has Windows line endings: its shell gets the option \"{}\" with a carriage return, refuses it and runs nothing",
                        escape_bytes(&arg)
                    )
                } else {
                    format!(
                        "{shown} has Windows line endings: its interpreter gets the argument \"{}\" with a carriage return",
                        escape_bytes(&arg)
                    )
                },
                crlf_hint(&shown),
            )
            .at(&res.path)
            .with_bytes("first_line", &first_line);
            let stop = shell_option;
            self.add(f);
            if stop {
                return false;
            }
        }
        if sb.line_truncated {
            let f = Finding::new(
                Code::ShebangTooLong,
                Severity::Warning,
                format!("the #! line of {shown} is longer than the kernel's {BINPRM_BUF_SIZE}-byte buffer: its argument is cut"),
                "shorten the #! line".into(),
            )
            .at(&res.path);
            self.add(f);
        }
        let (_, r) = self.resolve(&interp);
        let ires = match r {
            Resolution::Found(ir) => ir,
            other => {
                let ishown = escape_bytes(&interp);
                if let Resolution::Unverifiable { .. } = other {
                    self.report_unresolved(&interp, other, "the #! interpreter", None);
                    return true;
                }
                let f = Finding::new(
                    Code::ShebangInterpreterMissing,
                    Severity::Error,
                    format!("{shown} asks for the interpreter {ishown} (#! line), which does not exist in the container"),
                    format!("install {ishown} in the image or change the #! line to an interpreter the image has (e.g. #!/bin/sh)"),
                )
                .errno("ENOENT")
                .expect(exec_line(x, "ENOENT"))
                .at(&res.path)
                .with_bytes("interpreter", &interp)
                .with_bytes("first_line", &first_line);
                self.add(f);
                return false;
            }
        };
        if depth + 1 > MAX_INTERP_DEPTH {
            self.too_deep(x, &res.path);
            return false;
        }
        if !self
            .user
            .may_read(res.stat.st_mode, res.stat.st_uid, res.stat.st_gid)
        {
            // The kernel execs the interpreter, which then cannot open the script.
            let f = Finding::new(
                Code::PermissionDeniedUser,
                Severity::Error,
                format!(
                    "user {}:{} may execute {shown} but not read it (mode {:04o}), so its interpreter cannot open it",
                    self.user.uid,
                    self.user.gid,
                    res.stat.st_mode & 0o7777
                ),
                "give the user read permission on the script (chmod a+r)".into(),
            )
            .at(&res.path)
            .with("mode", format!("{:04o}", res.stat.st_mode & 0o7777));
            self.add(f);
            return false;
        }
        self.link(&ires.path, "shebang-interpreter");
        let xi = Exec {
            name: &interp,
            argv0: &interp,
            ..x
        };
        if !self.check_file(xi, &ires, depth + 1) {
            return false;
        }
        let busybox = base_name(&ires.path) == b"busybox";
        if (base_name(&interp) == b"env" || base_name(&ires.path) == b"env")
            && let Some(arg) = &sb.arg
        {
            return self.check_env_target(arg, busybox);
        }
        true
    }

    /// `#!/usr/bin/env NAME`: env receives everything after `env ` as one argument and
    /// execvp()s it with the process's PATH.
    fn check_env_target(&mut self, arg: &[u8], busybox: bool) -> bool {
        if self.chain.len() >= MAX_CHAIN {
            return true;
        }
        let name: Vec<u8> = if let Some(rest) = arg.strip_prefix(b"-S") {
            // GNU env -S splits the rest; the program is its first word.
            let rest = rest.trim_ascii_start();
            rest.split(|b| *b == b' ' || *b == b'\t')
                .next()
                .unwrap_or_default()
                .to_vec()
        } else if arg.starts_with(b"-") {
            return true;
        } else {
            arg.to_vec()
        };
        if name.is_empty() {
            return true;
        }
        let shown = escape_bytes(&name);
        let path_var = self.spec.env_path().unwrap_or("/bin:/usr/bin").to_string();
        let found = if name.contains(&b'/') {
            match self.resolve(&name).1 {
                Resolution::Found(r) => Some((name.clone(), Box::new(r))),
                _ => None,
            }
        } else {
            self.find_in_path(&name, &path_var)
        };
        let Some((path, res)) = found else {
            let mut hint =
                format!("install {shown} in the image, or put its absolute path in the #! line");
            if name.contains(&b' ') {
                hint = "env takes everything after `env ` as one program name: use `#!/usr/bin/env -S prog args` or drop the arguments".into();
            }
            if name.ends_with(b"\r") {
                hint = "the script has Windows line endings: convert it to LF (dos2unix)".into();
            }
            let f = Finding::new(
                Code::EnvTargetMissing,
                Severity::Error,
                format!(
                    "the #! line runs env {shown}, which is in no PATH entry of the container ({})",
                    escape_bytes(path_var.as_bytes())
                ),
                hint,
            )
            .errno("ENOENT")
            .expect(if busybox {
                format!("env: can't execute '{shown}': No such file or directory")
            } else {
                format!("env: '{shown}': No such file or directory")
            })
            .at(&name)
            .with("path_variable", escape_bytes(path_var.as_bytes()));
            self.add(f);
            return false;
        };
        self.link(&res.path, "env-target");
        let x = Exec {
            path: &path,
            caller: Caller::Execvp("env"),
            lookpath: None,
            sh: self.has_sh(),
            name: &path,
            argv0: &name,
        };
        self.check_file(x, &res, 0)
    }

    /// execvp's search: the first entry holding an executable regular file.
    fn find_in_path(&self, name: &[u8], path_var: &str) -> Option<(Vec<u8>, Box<Resolved>)> {
        for dir in path_var.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let cand = join(dir.as_bytes(), name);
            if let (_, Resolution::Found(r)) = self.resolve(&cand)
                && r.stat.st_mode & libc::S_IFMT == libc::S_IFREG
                && r.stat.st_mode & 0o111 != 0
            {
                return Some((cand, Box::new(r)));
            }
        }
        None
    }

    fn check_elf(
        &mut self,
        x: Exec<'_>,
        res: &Resolved,
        header: &[u8],
        file: &std::fs::File,
        _depth: usize,
    ) -> bool {
        let shown = escape_bytes(&res.path);
        let Some(info) = elf::parse(header, file) else {
            return self.check_other(x, res, header, u64::try_from(res.stat.st_size).unwrap_or(0));
        };
        let desc = elf::describe(&info);
        let arch = elf::arch_name(info.class, info.endian, info.machine);
        let size = u64::try_from(res.stat.st_size).unwrap_or(0);
        let truncated = |msg: String, errno: Option<&'static str>| {
            let mut f = Finding::new(
                Code::TruncatedElf,
                Severity::Error,
                msg,
                "the file is cut short or corrupt (an interrupted copy or layer download): rebuild or re-pull the image".into(),
            )
            .at(&res.path)
            .with("size", size)
            .with("elf", desc.clone());
            if let Some(e) = errno {
                f = f.errno(e).expect(exec_line(x, e));
            }
            f
        };
        if let Some(Defect::HeaderTruncated { size }) = &info.defect {
            self.add(truncated(
                format!("{shown} starts like an ELF file but is only {size} bytes, shorter than an ELF header"),
                Some("ENOEXEC"),
            ));
            return false;
        }
        if let Some(Defect::BadType(t)) = &info.defect {
            let kind = match *t {
                1 => "an ELF relocatable object (.o), not a program",
                4 => "an ELF core dump, not a program",
                _ => "an ELF file of a type the kernel does not exec",
            };
            let f = Finding::new(
                Code::ForeignFormat,
                Severity::Error,
                format!("{shown} is {kind} (e_type {t})"),
                "link it into an executable, or point the command at the real program".into(),
            )
            .errno("ENOEXEC")
            .expect(exec_line(x, "ENOEXEC"))
            .at(&res.path)
            .with("elf", desc.clone());
            self.add(f);
            return false;
        }
        if self.host.native.is_empty() {
            let f = Finding::new(
                Code::Unverifiable,
                Severity::Info,
                format!(
                    "this host's machine ({}) is unknown to execguard: whether it runs {arch} natively is not checked",
                    escape_bytes(self.host.machine.as_bytes())
                ),
                String::new(),
            )
            .at(&res.path);
            self.add(f);
            return true;
        }
        if !self
            .host
            .runs_natively(info.class, info.endian, info.machine)
        {
            self.arch_mismatch(x, res, header, &info, &desc, &arch);
            return false;
        }
        match &info.defect {
            Some(Defect::BadPhdrs { reason }) => {
                self.add(truncated(
                    format!("{shown} has unusable program headers ({reason})"),
                    Some("ENOEXEC"),
                ));
                return false;
            }
            Some(Defect::PhdrsPastEnd { end, size }) => {
                self.add(truncated(
                    format!("{shown} is cut short: its program headers end at byte {end}, past the end of the {size}-byte file"),
                    Some("ENOEXEC"),
                ));
                return false;
            }
            Some(Defect::InterpBadSize { size }) => {
                self.add(truncated(
                    format!("{shown} has a corrupt PT_INTERP entry ({size} bytes)"),
                    Some("ENOEXEC"),
                ));
                return false;
            }
            Some(Defect::InterpNotTerminated) => {
                self.add(truncated(
                    format!("{shown} has a corrupt PT_INTERP entry (not NUL-terminated)"),
                    Some("ENOEXEC"),
                ));
                return false;
            }
            Some(Defect::InterpPastEnd { end, size }) => {
                self.add(truncated(
                    format!("{shown} is cut short: its loader path (PT_INTERP) ends at byte {end}, past the end of the {size}-byte file"),
                    Some("EIO"),
                ));
                return false;
            }
            _ => {}
        }
        let loader = match info.interp.clone() {
            Some(ld) => match self.check_loader(x, res, &info, &ld) {
                LoaderCheck::Stop => return false,
                LoaderCheck::Unseen => None,
                LoaderCheck::Usable(l) => Some(l),
            },
            None => None,
        };
        if !self.check_file_caps(x, res, file) {
            return false;
        }
        if let Some(Defect::BadSegment { reason }) = &info.defect {
            let f = truncated(
                format!("{shown} is corrupt: {reason}, which the kernel cannot map, so the process is killed by SIGSEGV during exec"),
                None,
            )
            .expect("the process is killed by SIGSEGV (exit 139)".to_string());
            self.add(f);
            return false;
        }
        if let Some(Defect::SegmentsPastEnd { end, size }) = &info.defect {
            let f = truncated(
                format!("{shown} is cut short: its loadable segments end at byte {end}, past the end of the {size}-byte file, so the process dies by SIGBUS or SIGSEGV right after exec"),
                None,
            )
            .expect("the process is killed by SIGBUS/SIGSEGV (exit 135 or 139)".to_string());
            self.add(f);
            return false;
        }
        // A dynamic program whose loader could not be looked at: what follows is unknown.
        if info.interp.is_none() || loader.is_some() {
            self.after_exec(x, res, &info, header, file, loader.as_deref(), true);
        }
        true
    }

    fn arch_mismatch(
        &mut self,
        x: Exec<'_>,
        res: &Resolved,
        header: &[u8],
        info: &ElfInfo,
        desc: &str,
        arch: &str,
    ) {
        let shown = escape_bytes(&res.path);
        let host = &self.host.machine;
        let mut buf = [0u8; BINPRM_BUF_SIZE];
        let k = header.len().min(BINPRM_BUF_SIZE);
        buf[..k].copy_from_slice(&header[..k]);
        let state = self.host.binfmt();
        let disabled: Vec<binfmt::Entry> = binfmt::disabled_matches(state, &buf, x.name)
            .into_iter()
            .cloned()
            .collect();
        let (mounted, globally_enabled) = match state {
            binfmt::State::Mounted { enabled, .. } => (true, *enabled),
            _ => (false, false),
        };
        let compat = self
            .host
            .compat_note()
            .filter(|_| arch == "i386" || arch == "arm");
        let install = format!(
            "use an image built for {host} (docker run --platform linux/{}; rebuild with docker buildx build --platform linux/{0} ...), or register an emulator for {arch} with the F flag: apt-get install qemu-user-static (Debian/Ubuntu) or docker run --privileged --rm tonistiigi/binfmt --install {arch}",
            platform_of(host),
        );
        let mut f = if !mounted {
            Finding::new(
                Code::ArchMismatch,
                Severity::Warning,
                format!(
                    "{shown} is built for {arch} ({desc}); this host runs {host} natively, and binfmt_misc is not visible here, so whether an emulator takes it is unknown"
                ),
                format!(
                    "mount binfmt_misc (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc) to let execguard see the handlers; {install}"
                ),
            )
        } else if let Some(d) = disabled.first() {
            let why = if globally_enabled {
                format!(
                    "binfmt_misc handler {} would take it but is disabled",
                    d.name
                )
            } else {
                "binfmt_misc is disabled as a whole (status: disabled)".to_string()
            };
            Finding::new(
                Code::ArchMismatch,
                Severity::Error,
                format!(
                    "{shown} is built for {arch} ({desc}) and this host runs {host} natively; {why}"
                ),
                if globally_enabled {
                    format!("enable it: echo 1 > /proc/sys/fs/binfmt_misc/{}", d.name)
                } else {
                    "enable binfmt_misc: echo 1 > /proc/sys/fs/binfmt_misc/status".to_string()
                },
            )
            .with("disabled_handler", d.name.clone())
        } else {
            Finding::new(
                Code::ArchMismatch,
                Severity::Error,
                format!(
                    "{shown} is built for {arch} ({desc}), but this host runs {host} natively and no enabled binfmt_misc handler takes {arch}"
                ),
                install,
            )
        };
        f = f
            .errno("ENOEXEC")
            .expect(exec_line(x, "ENOEXEC"))
            .at(&res.path)
            .with("file_arch", arch.to_string())
            .with("host_arch", host.clone())
            .with("elf", desc.to_string())
            .with(
                "binfmt_misc",
                if !mounted {
                    "not mounted"
                } else if globally_enabled {
                    "enabled"
                } else {
                    "disabled"
                },
            );
        if let Some(c) = compat {
            f = f.with("compat", c);
        }
        self.add(f);
        if mounted {
            for d in &disabled {
                let w = Finding::new(
                    Code::BinfmtHandlerDisabled,
                    Severity::Warning,
                    format!(
                        "binfmt_misc handler {} matches {shown} but {}",
                        d.name,
                        if globally_enabled {
                            "is disabled"
                        } else {
                            "binfmt_misc is disabled as a whole"
                        }
                    ),
                    if globally_enabled {
                        format!("echo 1 > /proc/sys/fs/binfmt_misc/{}", d.name)
                    } else {
                        "echo 1 > /proc/sys/fs/binfmt_misc/status".into()
                    },
                )
                .at(&res.path)
                .with("handler", d.name.clone())
                .with_bytes("interpreter", d.interpreter.as_bytes());
                self.add(w);
            }
        } else {
            let u = Finding::new(
                Code::Unverifiable,
                Severity::Info,
                "binfmt_misc is not mounted in this mount namespace: its handlers are unknown, not missing".into(),
                "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc".into(),
            )
            .with("binfmt_misc_root", self.host.binfmt_root.display().to_string());
            self.add(u);
        }
        let _ = info;
    }

    /// The ELF loader (PT_INTERP): opened with open_exec in the container, then it must be an
    /// ELF of the same machine (load_elf_binary: ELIBBAD otherwise).
    fn check_loader(
        &mut self,
        x: Exec<'_>,
        res: &Resolved,
        info: &ElfInfo,
        ld: &[u8],
    ) -> LoaderCheck {
        let shown = escape_bytes(&res.path);
        let lds = escape_bytes(ld);
        let abs = if ld.starts_with(b"/") {
            ld.to_vec()
        } else {
            join(self.spec.cwd.as_bytes(), ld)
        };
        // A sweep looks at each loader once: what the file system showed is remembered, the
        // user's permissions are judged again below.
        let seen = libs::remembered_loader(&self.root, &abs);
        let fresh = match seen {
            Some(_) => None,
            None => match self.root.resolve(&abs, true) {
                Resolution::Found(l) => Some(l),
                r @ Resolution::Unverifiable { .. } => {
                    self.report_unresolved(ld, r, "the ELF loader", None);
                    return LoaderCheck::Unseen;
                }
                _ => {
                    let (libc_of_binary, fix) = libc_family(ld);
                    let present = self.present_loaders();
                    let mut msg = format!(
                        "{shown} is dynamically linked and needs the loader {lds}, which does not exist in the container"
                    );
                    let mut hint = fix.to_string();
                    if let Some(other) = present.first() {
                        let (img_libc, _) = libc_family(other.as_bytes());
                        if img_libc != libc_of_binary {
                            msg.push_str(&format!(
                                " ({} binary, the image has {img_libc}'s loader {other})",
                                libc_of_binary
                            ));
                            hint = format!(
                                "the program was built against {libc_of_binary} but the image uses {img_libc}: build it for {img_libc} (or statically, e.g. CGO_ENABLED=0 for Go), use a {libc_of_binary}-based image, or add a compatibility layer (gcompat / libc6-compat on Alpine)"
                            );
                        }
                    }
                    let f = Finding::new(Code::InterpreterMissing, Severity::Error, msg, hint)
                        .errno("ENOENT")
                        .expect(exec_line(x, "ENOENT"))
                        .at(&res.path)
                        .with_bytes("loader", ld)
                        .with("binary_libc", libc_of_binary)
                        .with("loaders_in_image", present);
                    self.add(f);
                    return LoaderCheck::Stop;
                }
            },
        };
        let (lpath, lstat, ldirs) = match (&seen, &fresh) {
            (Some(s), _) => (s.path.clone(), s.stat, s.dirs.as_slice()),
            (None, Some(l)) => (l.path.clone(), l.stat, l.dirs.as_slice()),
            (None, None) => return LoaderCheck::Unseen,
        };
        self.link(&lpath, "elf-interpreter");
        let lshown = escape_bytes(&lpath);
        let mode = lstat.st_mode;
        let unusable = |why: String, errno: &'static str, hint: &str| {
            Finding::new(
                Code::InterpreterMissing,
                Severity::Error,
                format!("the loader {lds} of {shown} cannot be used: {why}"),
                hint.to_string(),
            )
            .errno(errno)
            .expect(exec_line(x, errno))
            .at(&res.path)
            .with_bytes("loader", ld)
            .with_bytes("loader_resolved", &lpath)
        };
        if mode & libc::S_IFMT != libc::S_IFREG {
            self.add(unusable(
                format!("{lshown} is not a regular file"),
                "EACCES",
                "restore the loader from the libc package",
            ));
            return LoaderCheck::Stop;
        }
        if !self.user.may_exec(mode, lstat.st_uid, lstat.st_gid)
            || ldirs
                .iter()
                .any(|d| !self.user.may_search(d.mode, d.uid, d.gid))
        {
            self.add(unusable(
                format!(
                    "the user may not execute {lshown} (mode {:04o})",
                    mode & 0o7777
                ),
                "EACCES",
                "restore the loader's mode (0755)",
            ));
            return LoaderCheck::Stop;
        }
        let parsed = match (&seen, fresh) {
            // Remembered only once it was found on an exec mount, opened and read.
            (Some(s), _) => s.elf.clone(),
            (None, Some(lres)) => {
                if let Some(why) = self.noexec(&lres) {
                    self.add(unusable(
                        format!("it lies on a noexec mount ({why})"),
                        "EACCES",
                        "drop noexec from that mount",
                    ));
                    return LoaderCheck::Stop;
                }
                let Ok(lfile) = resolve::open_for_read(&lres) else {
                    return LoaderCheck::Unseen;
                };
                let mut lh = vec![0u8; 1024];
                let n = read_prefix(&lfile, &mut lh);
                lh.truncate(n);
                let parsed = elf::parse(&lh, &lfile).map(|li| {
                    let native = li.machine == info.machine
                        && li.class == info.class
                        && li.endian == info.endian;
                    // The soname matters only for a loader the program can use.
                    let soname = if native {
                        crate::inspect::dynamic::read(&li, &lh, &lfile).and_then(|d| d.soname)
                    } else {
                        None
                    };
                    (li, soname)
                });
                // Another program's loader of another machine would need its soname read.
                if parsed.as_ref().is_none_or(|(li, _)| {
                    li.machine == info.machine && li.class == info.class && li.endian == info.endian
                }) {
                    libs::remember_loader(&self.root, &abs, || libs::LoaderSeen {
                        path: lres.path.clone(),
                        stat: lres.stat,
                        dirs: lres.dirs.clone(),
                        elf: parsed.clone(),
                    });
                }
                parsed
            }
            (None, None) => return LoaderCheck::Unseen,
        };
        match parsed {
            Some((li, soname))
                if li.machine == info.machine
                    && li.class == info.class
                    && li.endian == info.endian =>
            {
                LoaderCheck::Usable(Box::new(libs::Loader {
                    interp: ld.to_vec(),
                    soname,
                    info: li,
                    path: lpath,
                }))
            }
            Some((li, _)) => {
                self.add(unusable(
                    format!(
                        "it is {}, but the program is {}",
                        elf::describe(&li),
                        elf::arch_name(info.class, info.endian, info.machine)
                    ),
                    "ELIBBAD",
                    "install the loader and libraries of the program's architecture, or use a matching image",
                ));
                LoaderCheck::Stop
            }
            None => {
                self.add(unusable(
                    format!("{lshown} is not an ELF file"),
                    "ELIBBAD",
                    "restore the loader from the libc package",
                ));
                LoaderCheck::Stop
            }
        }
    }

    /// Loaders that exist in the image, to name its libc.
    fn present_loaders(&self) -> Vec<String> {
        const KNOWN: &[&str] = &[
            "/lib/ld-musl-x86_64.so.1",
            "/lib/ld-musl-aarch64.so.1",
            "/lib/ld-musl-armhf.so.1",
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/ld-linux-aarch64.so.1",
            "/lib/ld-linux-armhf.so.3",
            "/lib/ld-linux.so.2",
            "/lib64/ld64.so.2",
            "/lib/ld64.so.1",
        ];
        KNOWN
            .iter()
            .filter(|p| matches!(self.root.resolve(p.as_bytes(), true), Resolution::Found(_)))
            .map(|p| p.to_string())
            .collect()
    }

    fn check_file_caps(&mut self, x: Exec<'_>, res: &Resolved, file: &std::fs::File) -> bool {
        let Some(mut fc) = filecaps::read(file) else {
            return true;
        };
        // get_file_caps: a nosuid mount makes the kernel ignore file capabilities.
        let nosuid = match res.mount.and_then(|i| self.root.mount(i)) {
            Some(m) if m.options.iter().any(|o| o == "nosuid") => true,
            Some(m) if bind_is_remounted(m) => false,
            _ => host_nosuid(res),
        };
        if nosuid {
            return true;
        }
        // A revision-3 root id must be root of the container's user namespace
        // (rootid_owns_currentns); otherwise the capabilities are ignored.
        if let Some(rootid) = fc.rootid
            && !self.user.is_container_root(rootid)
        {
            return true;
        }
        // get_vfs_caps_from_disk masks with CAP_VALID_MASK: bits this kernel does not know.
        let valid = filecaps::valid_mask();
        fc.permitted &= valid;
        fc.inheritable &= valid;
        let full = u64::MAX;
        let (bounding, inheritable) = match &self.spec.caps {
            Some(c) => (
                filecaps::mask_of(&c.bounding),
                filecaps::mask_of(&c.inheritable),
            ),
            None => (full, 0),
        };
        let missing = filecaps::missing(&fc, bounding, inheritable);
        if missing == 0 {
            return true;
        }
        let names = filecaps::names_of(missing);
        let shown = escape_bytes(&res.path);
        let f = Finding::new(
            Code::FileCapsExceedBounding,
            Severity::Error,
            format!(
                "{shown} carries file capabilities ({}) with the effective bit that the container's bounding set does not allow, so exec fails even for root",
                names.join(", ")
            ),
            format!(
                "add them to the container (docker run --cap-add {}), or remove them from the file (setcap -r)",
                names
                    .iter()
                    .map(|n| n.trim_start_matches("CAP_").to_string())
                    .collect::<Vec<_>>()
                    .join(" --cap-add ")
            ),
        )
        .errno("EPERM")
        .expect(exec_line(x, "EPERM"))
        .at(&res.path)
        .with("missing_capabilities", names)
        .with("file_permitted", filecaps::names_of(fc.permitted));
        self.add(f);
        false
    }

    fn check_other(&mut self, x: Exec<'_>, res: &Resolved, header: &[u8], size: u64) -> bool {
        let shown = escape_bytes(&res.path);
        // glibc's execvp (tini, shells) runs an ENOEXEC file with /bin/sh: a text file without
        // #! then works, binary data gives a shell syntax error.
        let via_execvp = shell_retries(x);
        let f = match sniff::sniff(header, size) {
            Format::GitLfsPointer { oid, size: lfs_size } => {
                let mut f = Finding::new(
                    Code::GitLfsPointer,
                    Severity::Error,
                    format!("{shown} is a Git LFS pointer file, not the program: the real file was never fetched"),
                    "run `git lfs pull` (or enable LFS in the CI checkout) before building the image".into(),
                );
                if let Some(o) = oid {
                    f = f.with("lfs_oid", escape_bytes(o.as_bytes()));
                }
                if let Some(s) = lfs_size {
                    f = f.with("lfs_size", s);
                }
                f
            }
            Format::Foreign(what) => Finding::new(
                Code::ForeignFormat,
                Severity::Error,
                format!("{shown} is a {what}, which Linux cannot exec"),
                "copy the Linux build of the program into the image".into(),
            )
            .with("format", what),
            Format::Text(flaws) if flaws.bom_then_shebang => Finding::new(
                Code::ShebangBom,
                enoexec_severity(x),
                format!("{shown} starts with a UTF-8 byte-order mark before #!, so the kernel does not see the #! line"),
                "save the script as UTF-8 without BOM (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//'`)".into(),
            ),
            Format::Text(flaws) => {
                let why = if flaws.leading_blank_then_shebang {
                    "the #! line is not the first line (blank lines or spaces come first)"
                } else if flaws.bang_hash {
                    "it starts with !# instead of #!"
                } else if flaws.hash_space_bang {
                    "it starts with \"# !\" instead of #!"
                } else if flaws.bang_only {
                    "it starts with ! without the #"
                } else {
                    "it has no #! line"
                };
                let mut f = Finding::new(
                    Code::NoShebang,
                    enoexec_severity(x),
                    format!("{shown} is a text file the kernel cannot exec: {why}"),
                    "put #!/bin/sh (or the right interpreter) as the very first bytes of the file".into(),
                );
                if via_execvp {
                    f = f.with("note", "execvp runs it with /bin/sh instead");
                }
                f
            }
            Format::Binary { all_zero } => Finding::new(
                Code::UnknownFormat,
                Severity::Error,
                if all_zero {
                    format!("{shown} holds only zero bytes: the file is corrupt (a failed copy or layer unpack)")
                } else {
                    format!("{shown} is binary data that no loader or binfmt_misc handler takes")
                },
                "rebuild or re-pull the image; check that the right file was copied".into(),
            )
            .with("all_zero", all_zero),
            Format::Empty | Format::Elf | Format::Script => return true,
        };
        let head: Vec<u8> = header.iter().take(16).copied().collect();
        let f = f
            .errno("ENOEXEC")
            .expect(exec_line(x, "ENOEXEC"))
            .at(&res.path)
            .with("first_bytes", hex(&head));
        let stop = f.severity == Severity::Error;
        self.add(f);
        !stop
    }

    /// Programs that exec the next program themselves.
    fn follow_wrappers(&mut self, path: &[u8], args: &[Vec<u8>], hops: usize) {
        if hops >= MAX_CHAIN || self.chain.len() >= MAX_CHAIN {
            return;
        }
        let base = base_name(path);
        let name_arg = args
            .first()
            .map(|a| base_name(a).to_vec())
            .unwrap_or_default();
        // busybox dispatches by argv[0]; `busybox sh -c` by argv[1].
        let (base, args) = if base == b"busybox" && name_arg == b"busybox" && args.len() > 1 {
            (base_name(&args[1]).to_vec(), &args[1..])
        } else if base == b"busybox" {
            (name_arg.clone(), args)
        } else {
            (base.to_vec(), args)
        };
        let (who, child): (&'static str, Option<(usize, &'static str)>) = match base.as_slice() {
            b"tini" | b"tini-static" | b"docker-init" => {
                ("tini", tini_child(args).map(|i| (i, "init-wrapper-child")))
            }
            b"dumb-init" => (
                "dumb-init",
                dumb_init_child(args).map(|i| (i, "init-wrapper-child")),
            ),
            b"catatonit" => (
                "catatonit",
                catatonit_child(args).map(|i| (i, "init-wrapper-child")),
            ),
            b"sh" | b"bash" | b"dash" | b"ash" | b"zsh" | b"ksh" | b"mksh" => ("sh", None),
            _ => return,
        };
        if who == "sh" {
            self.follow_shell(args, hops, base_name(path) == b"busybox");
            return;
        }
        let Some((i, role)) = child else { return };
        let rest: Vec<Vec<u8>> = args[i..].to_vec();
        let Some(name) = rest.first().cloned() else {
            return;
        };
        let path_var = self.spec.env_path().unwrap_or("/bin:/usr/bin").to_string();
        self.exec_child(who, role, &name, &rest, &path_var, hops);
    }

    fn exec_child(
        &mut self,
        who: &'static str,
        role: &'static str,
        name: &[u8],
        args: &[Vec<u8>],
        path_var: &str,
        hops: usize,
    ) {
        let found = if name.contains(&b'/') {
            let (abs, r) = self.resolve(name);
            match r {
                Resolution::Found(res) => Some((name.to_vec(), Box::new(res))),
                other => {
                    let line = format!(
                        "{who}: exec {} failed: {}",
                        escape_bytes(name),
                        strerror_c(resolution_errno(&other))
                    );
                    self.report_unresolved(&abs, other, "the program started by", Some(line));
                    return;
                }
            }
        } else {
            match self.lookup_in_path(name, path_var, Some(who)) {
                Lookup::Found(p, r) => Some((p, r)),
                Lookup::Failed => return,
            }
        };
        let Some((path, res)) = found else { return };
        self.link(&res.path, role);
        let x = Exec {
            path: &path,
            caller: Caller::Execvp(who),
            lookpath: None,
            sh: self.has_sh(),
            name: &path,
            argv0: name,
        };
        if self.check_file(x, &res, 0) {
            self.follow_wrappers(&res.path, args, hops + 1);
        }
    }

    /// `sh -c "cmd args"` whose first word is a simple command: check that command too.
    fn follow_shell(&mut self, args: &[Vec<u8>], hops: usize, busybox: bool) {
        let Some(script) = shell_command_string(args) else {
            return;
        };
        let Some((word, fatal)) = first_simple_word(script) else {
            return;
        };
        let path_var = self
            .spec
            .env_path()
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        let before = self.findings.len();
        self.exec_child(
            "sh",
            "shell-command",
            &word,
            std::slice::from_ref(&word),
            &path_var,
            hops,
        );
        if busybox && !word.contains(&b'/') {
            // busybox sh may run its own applets without links (FEATURE_SH_STANDALONE, as
            // Debian builds it): a bare name missing from PATH can still work.
            let mut i = before;
            while i < self.findings.len() {
                if self.findings[i].code == Code::NotFound {
                    self.findings.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        if !fatal {
            // The command list goes on after this command fails (`a; b`, `a || b`): the start
            // is degraded, not stopped.
            for f in &mut self.findings[before..] {
                if f.severity == Severity::Error {
                    f.severity = Severity::Warning;
                }
            }
        }
    }
}

/// The mount holding the opened file is noexec (statvfs ST_NOEXEC).
fn host_noexec(res: &Resolved) -> bool {
    nix::sys::statvfs::fstatvfs(&res.fd)
        .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC))
}

/// The mount holding the file is nosuid: file capabilities are then ignored (get_file_caps).
fn host_nosuid(res: &Resolved) -> bool {
    nix::sys::statvfs::fstatvfs(&res.fd)
        .is_ok_and(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID))
}

/// Whether runc remounts this bind with the spec's flags (libcontainer/rootfs_linux.go: a
/// bind is remounted when flags other than bind, rec and propagation are set).
fn bind_is_remounted(m: &Mount) -> bool {
    const BIND_ONLY: &[&str] = &[
        "bind",
        "rbind",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ];
    !matches!(m.kind, MountKind::Bind { .. })
        || m.options.iter().any(|o| !BIND_ONLY.contains(&o.as_str()))
}

/// The errno a failed resolution stands for.
fn resolution_errno(r: &Resolution) -> &'static str {
    match r {
        Resolution::NotDirectory { .. } => "ENOTDIR",
        Resolution::Loop { .. } => "ELOOP",
        Resolution::NameTooLong => "ENAMETOOLONG",
        _ => "ENOENT",
    }
}

fn links_json(links: &[resolve::Link]) -> serde_json::Value {
    links
        .iter()
        .map(|l| format!("{} -> {}", escape_bytes(&l.at), escape_bytes(&l.target)))
        .collect::<Vec<_>>()
        .into()
}

fn mount_desc(m: &Mount) -> String {
    let kind = match &m.kind {
        MountKind::Bind { source } => {
            format!("bind from {}", escape_bytes(source.as_os_str().as_bytes()))
        }
        MountKind::Opaque { fstype } => escape_bytes(fstype.as_bytes()),
    };
    format!("{} {kind}", escape_bytes(&m.destination))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The libc a loader path belongs to, and the usual fix.
fn libc_family(ld: &[u8]) -> (&'static str, &'static str) {
    let b = base_name(ld);
    if b.starts_with(b"ld-musl") {
        (
            "musl",
            "install musl in the image (apk add musl) or use an Alpine-based image, or build statically",
        )
    } else if b.starts_with(b"ld-linux") || b.starts_with(b"ld64.so") || b == b"ld.so.1" {
        (
            "glibc",
            "install glibc in the image (a Debian/Ubuntu base, or gcompat on Alpine), or build statically",
        )
    } else {
        (
            "an unknown libc",
            "install the loader the program names, or build statically",
        )
    }
}

/// The Docker platform word for a machine name.
fn platform_of(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        m if m.starts_with("armv7") => "arm/v7",
        "i686" | "i386" => "386",
        m => m,
    }
}

/// Read the file's first bytes with positioned reads (no seek, bounded by the buffer).
fn read_prefix(file: &std::fs::File, buf: &mut [u8]) -> usize {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    got
}

/// tini's child: after its options (getopt "+hsvwgle:p:") or `--`.
fn tini_child(args: &[Vec<u8>]) -> Option<usize> {
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if a == b"--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if a.first() != Some(&b'-') || a.len() < 2 {
            return Some(i);
        }
        // A cluster like `-se 143`: -e CODE and -p SIGNAL take the rest of the cluster, or
        // the next argument when they end it.
        if let Some(k) = a.iter().skip(1).position(|b| *b == b'e' || *b == b'p')
            && k + 2 == a.len()
        {
            i += 1;
        }
        i += 1;
    }
    None
}

/// dumb-init's child: after its options (`-r/--rewrite s:r` takes a value) or `--`.
fn dumb_init_child(args: &[Vec<u8>]) -> Option<usize> {
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if a == b"--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if a.first() != Some(&b'-') {
            return Some(i);
        }
        if a == b"-r" || a == b"--rewrite" {
            i += 1;
        }
        i += 1;
    }
    None
}

/// catatonit's child: after its flags (`-g`, `-p`, `-L`) or `--`; `-P` (pause) has none.
fn catatonit_child(args: &[Vec<u8>]) -> Option<usize> {
    if args
        .iter()
        .skip(1)
        .take_while(|a| a.as_slice() != b"--")
        .any(|a| a == b"-P")
    {
        return None;
    }
    dumb_init_child(args)
}

/// The command string of `sh [options] -c STRING`: `-c` (alone or in a cluster like `-ec`)
/// among the options before the first operand; `-o NAME` takes a value.
fn shell_command_string(args: &[Vec<u8>]) -> Option<&Vec<u8>> {
    let mut saw_c = false;
    let mut i = 1;
    while let Some(a) = args.get(i) {
        if a == b"--" {
            i += 1;
            break;
        }
        let is_opt = a.len() > 1 && (a[0] == b'-' || a[0] == b'+');
        if !is_opt {
            break;
        }
        if a[1..].contains(&b'c') && a[0] == b'-' {
            saw_c = true;
        }
        if a.ends_with(b"o") {
            i += 1;
        }
        i += 1;
    }
    if saw_c { args.get(i) } else { None }
}

/// The exec form of a shell command made of plain words only (no quotes, variables,
/// redirections, globs or operators): its first word and the JSON array
/// (`["/app","--flag"]`). A leading `exec` is dropped.
fn exec_form(script: &[u8]) -> Option<(String, String)> {
    const META: &[u8] = b"$`'\"\\|&;<>(){}*?[]~=#!";
    let text = std::str::from_utf8(script).ok()?;
    if text
        .bytes()
        .any(|b| META.contains(&b) || (b.is_ascii_control() && !b" \t".contains(&b)))
    {
        return None;
    }
    let mut words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words.first() == Some(&"exec") {
        words.remove(0);
    }
    let first = words.first()?.to_string();
    Some((first, serde_json::to_string(&words).ok()?))
}

/// The program's loader as the emulated program will use it (its `DT_SONAME` read from the
/// container), when it is an ELF file.
fn emulated_loader(interp: &[u8], lres: &Resolved) -> Option<libs::Loader> {
    let f = resolve::open_for_read(lres).ok()?;
    let mut lh = vec![0u8; 1024];
    let n = read_prefix(&f, &mut lh);
    lh.truncate(n);
    let info = elf::parse(&lh, &f)?;
    let soname = crate::inspect::dynamic::read(&info, &lh, &f).and_then(|d| d.soname);
    Some(libs::Loader {
        interp: interp.to_vec(),
        soname,
        info,
        path: lres.path.clone(),
    })
}

/// The first word of a shell command when it is a plain program name or path, and whether
/// its failure ends the command (it is the whole command, is followed by `&&`, or is exec'd).
fn first_simple_word(script: &[u8]) -> Option<(Vec<u8>, bool)> {
    let trimmed = script.trim_ascii_start();
    let (mut rest, mut exec) = (trimmed, false);
    if let Some(r) = rest.strip_prefix(b"exec")
        && r.first().is_some_and(|b| b.is_ascii_whitespace())
    {
        rest = r.trim_ascii_start();
        exec = true;
    }
    let end = rest
        .iter()
        .position(|b| b.is_ascii_whitespace() || b";&|\n".contains(b))
        .unwrap_or(rest.len());
    let w = &rest[..end];
    if w.is_empty() {
        return None;
    }
    const META: &[u8] = b"$`'\"\\|&;<>(){}*?[]~=#!";
    if w.iter().any(|b| META.contains(b)) {
        return None;
    }
    const BUILTINS: &[&[u8]] = &[
        b"cd",
        b"echo",
        b"export",
        b"set",
        b"unset",
        b"if",
        b"then",
        b"for",
        b"while",
        b"until",
        b"case",
        b"do",
        b"done",
        b"fi",
        b".",
        b"source",
        b"true",
        b"false",
        b"exit",
        b"read",
        b"test",
        b"[",
        b"printf",
        b"trap",
        b"wait",
        b"eval",
        b"ulimit",
        b"umask",
        b"shift",
        b"command",
        b"type",
        b"alias",
        b"local",
        b"return",
        b"break",
        b"continue",
        b":",
        b"pwd",
        b"kill",
        b"time",
        b"readonly",
        b"getopts",
        b"hash",
        b"let",
        b"declare",
        b"typeset",
        b"function",
        b"select",
        b"jobs",
        b"shopt",
        b"exec",
        b"!",
        b"{",
        b"builtin",
        b"times",
    ];
    if BUILTINS.contains(&w) {
        return None;
    }
    // What follows the simple command: its failure stops the list only at the end or before &&.
    let after = &rest[end..];
    let op = after.iter().position(|b| b";&|\n".contains(b));
    let fatal = exec
        || match op {
            None => true,
            Some(k) => after[k..].starts_with(b"&&"),
        };
    Some((w.to_vec(), fatal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn tini_child_positions() {
        assert_eq!(tini_child(&v(&["tini", "--", "/app", "x"])), Some(2));
        assert_eq!(tini_child(&v(&["tini", "-s", "-g", "/app"])), Some(3));
        assert_eq!(
            tini_child(&v(&["tini", "-e", "143", "--", "/app"])),
            Some(4)
        );
        assert_eq!(tini_child(&v(&["docker-init", "--"])), None);
        assert_eq!(tini_child(&v(&["tini"])), None);
        assert_eq!(tini_child(&v(&["tini", "-se", "143", "/app"])), Some(3));
        assert_eq!(tini_child(&v(&["tini", "-e143", "/app"])), Some(2));
        assert_eq!(catatonit_child(&v(&["catatonit", "-P"])), None);
        assert_eq!(
            catatonit_child(&v(&["catatonit", "-g", "--", "/app"])),
            Some(3)
        );
    }

    #[test]
    fn dumb_init_child_positions() {
        assert_eq!(
            dumb_init_child(&v(&["dumb-init", "-r", "15:2", "/app"])),
            Some(3)
        );
        assert_eq!(
            dumb_init_child(&v(&["dumb-init", "--single-child", "--", "/app"])),
            Some(3)
        );
    }

    #[test]
    fn shell_command_strings() {
        let c = |a: &[&str]| shell_command_string(&v(a)).cloned();
        assert_eq!(c(&["sh", "-c", "x"]), Some(b"x".to_vec()));
        assert_eq!(c(&["sh", "-ec", "x"]), Some(b"x".to_vec()));
        assert_eq!(c(&["sh", "-o", "pipefail", "-c", "x"]), Some(b"x".to_vec()));
        // An operand before -c: the script's own argument, not the shell's option.
        assert_eq!(c(&["sh", "/entrypoint.sh", "-c", "conf.yml"]), None);
        assert_eq!(c(&["sh", "-c"]), None);
        assert_eq!(c(&["bash", "-x"]), None);
    }

    #[test]
    fn shell_first_words() {
        assert_eq!(
            first_simple_word(b"  exec /app --x"),
            Some((b"/app".to_vec(), true))
        );
        assert_eq!(
            first_simple_word(b"app && b"),
            Some((b"app".to_vec(), true))
        );
        assert_eq!(
            first_simple_word(b"app -x; b"),
            Some((b"app".to_vec(), false))
        );
        assert_eq!(
            first_simple_word(b"app || b"),
            Some((b"app".to_vec(), false))
        );
        assert_eq!(first_simple_word(b"app\nb"), Some((b"app".to_vec(), false)));
        assert_eq!(first_simple_word(b"time app"), None);
        assert_eq!(first_simple_word(b"$APP x"), None);
        assert_eq!(first_simple_word(b"FOO=1 app"), None);
        assert_eq!(first_simple_word(b"echo hi"), None);
        assert_eq!(first_simple_word(b""), None);
    }

    #[test]
    fn exec_lines_by_caller() {
        let x = Exec {
            path: b"/app",
            caller: Caller::Runtime(Context::default()),
            lookpath: None,
            sh: false,
            name: b"/app",
            argv0: b"/app",
        };
        assert_eq!(
            exec_line(x, "ENOEXEC").as_deref(),
            Some("exec /app: exec format error")
        );
        let x = Exec {
            path: b"/app",
            caller: Caller::Execvp("tini"),
            lookpath: None,
            sh: true,
            name: b"/app",
            argv0: b"/app",
        };
        assert_eq!(
            exec_line(x, "ENOENT").as_deref(),
            Some("exec /app failed: No such file or directory")
        );
        // execvp runs an ENOEXEC file with /bin/sh: the shell's own words follow, not known here.
        assert_eq!(exec_line(x, "ENOEXEC"), None);
        let x = Exec { sh: false, ..x };
        assert_eq!(
            exec_line(x, "ENOEXEC").as_deref(),
            Some("exec /app failed: No such file or directory")
        );
    }

    #[test]
    fn exec_forms() {
        let e = |s: &str| exec_form(s.as_bytes()).map(|(_, j)| j);
        assert_eq!(
            e("/app --flag x").as_deref(),
            Some(r#"["/app","--flag","x"]"#)
        );
        assert_eq!(e("  exec  /app\t-v ").as_deref(), Some(r#"["/app","-v"]"#));
        assert_eq!(e("/app $PORT"), None);
        assert_eq!(e("/app && /b"), None);
        assert_eq!(e("/app \"a b\""), None);
        assert_eq!(e("FOO=1 /app"), None);
        assert_eq!(e("/app\n/b"), None);
        assert_eq!(e(""), None);
        assert_eq!(e("exec"), None);
    }

    fn diagnose_root(files: &[(&str, &[u8])], args: &[&str]) -> Diagnosis {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for (inner, bytes) in files {
            let p = dir
                .path()
                .join("rootfs")
                .join(inner.trim_start_matches('/'));
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::create_dir_all(dir.path().join("rootfs")).unwrap_or_else(|e| panic!("{e}"));
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": args, "env": ["PATH=/usr/bin:/bin"], "cwd": "/"},
            "root": {"path": "rootfs"},
        });
        let spec = crate::spec::from_slice(config.to_string().as_bytes(), dir.path())
            .unwrap_or_else(|e| panic!("{e}"));
        let host = Host::with_machine("x86_64", true, std::path::PathBuf::from("/nonexistent"));
        diagnose(&spec, &host)
    }

    #[test]
    fn no_shell_only_without_any_shell() {
        let codes = |d: &Diagnosis| d.findings.iter().map(|f| f.code).collect::<Vec<_>>();
        let app: &[u8] = b"#!/app\n";
        let d = diagnose_root(&[("/app", app)], &["/bin/sh", "-c", "/app -x"]);
        assert_eq!(codes(&d), [Code::NotFound, Code::NoShell]);
        assert!(
            d.findings[0].hint.contains(r#"["/app","-x"]"#),
            "{}",
            d.findings[0].hint
        );
        assert_eq!(d.findings[1].severity, Severity::Warning);
        assert_eq!(d.findings[1].expected_error, d.findings[0].expected_error);
        let d = diagnose_root(&[("/app", app)], &["sh", "-c", "/app -x"]);
        assert_eq!(codes(&d), [Code::NotFound, Code::NoShell]);
        // Not the shell form, or a shell elsewhere in the image: the finding stays alone.
        let d = diagnose_root(&[("/app", app)], &["/bin/sh", "/entrypoint.sh"]);
        assert_eq!(codes(&d), [Code::NotFound]);
        let d = diagnose_root(
            &[("/app", app), ("/bin/busybox", app)],
            &["/bin/sh", "-c", "x"],
        );
        assert_eq!(codes(&d), [Code::NotFound]);
        // A missing program that is not a shell.
        let d = diagnose_root(&[("/app", app)], &["/bin/app", "-c", "x"]);
        assert_eq!(codes(&d), [Code::NotFound]);
    }

    #[test]
    fn libc_families() {
        assert_eq!(libc_family(b"/lib/ld-musl-x86_64.so.1").0, "musl");
        assert_eq!(libc_family(b"/lib64/ld-linux-x86-64.so.2").0, "glibc");
    }
}
