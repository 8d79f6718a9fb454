//! `execguard setup docker|containerd|podman`: registers execguard as a runtime in an engine's
//! configuration file, the way `nvidia-ctk runtime configure` does for NVIDIA's runtime.
//!
//! This module owns the command line of `setup`, the safe file handling shared by the three
//! engines (bounded read, refusal of malformed files with line and column, backup, atomic
//! write that keeps the file's mode and owner, `--dry-run` diff) and the final "how to apply"
//! step (`--reload` sends SIGHUP to dockerd). The edits themselves live in [`docker`],
//! [`containerd`] and [`podman`]; each is a pure function from the old text to the new text.

pub mod containerd;
pub mod docker;
pub mod podman;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Parser;
use toml_edit::{InlineTable, Item, Table, Value};

/// Name the runtime gets when `--runtime-name` is not given.
pub const DEFAULT_RUNTIME_NAME: &str = "execguard";

/// Largest configuration file `setup` reads (these files are a few kilobytes).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Suffix of the backup written next to a configuration file before it is replaced.
pub const BACKUP_SUFFIX: &str = ".execguard.bak";

/// What every engine is asked to write: one runtime entry, optionally the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Runtime name as the engine will know it (`docker run --runtime NAME`, the RuntimeClass
    /// handler, `podman --runtime NAME`).
    pub name: String,
    /// Absolute path of the execguard binary.
    pub path: String,
    /// Also make this runtime the engine's default.
    pub set_as_default: bool,
}

/// The result of an edit: the new text and whether it differs from the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// Full new file content (the old text, byte for byte, when nothing changed).
    pub text: String,
    /// True when the configuration changes.
    pub changed: bool,
    /// Remarks for the user (printed on stderr), lower-case.
    pub notes: Vec<String>,
}

/// Why an engine refuses to edit a file; the file is left as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file does not parse; line and column are 1-based, the column counts characters.
    #[error("malformed {format} at line {line}, column {column}: {message}")]
    Malformed {
        /// "json" or "toml".
        format: &'static str,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The parser's description of the error.
        message: String,
    },
    /// The file parses but has a shape `setup` will not guess about.
    #[error("{0}")]
    Unsupported(String),
}

/// The three engines `setup` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// dockerd's `daemon.json`.
    Docker,
    /// containerd's `config.toml` (CRI runtime handler).
    Containerd,
    /// podman's `containers.conf`.
    Podman,
}

impl Engine {
    /// Parse an engine name as typed on the command line.
    pub fn from_name(name: &str) -> Option<Engine> {
        match name {
            "docker" => Some(Engine::Docker),
            "containerd" => Some(Engine::Containerd),
            "podman" => Some(Engine::Podman),
            _ => None,
        }
    }

    /// The configuration file edited when `--config` is not given.
    pub fn default_config(self) -> &'static str {
        match self {
            Engine::Docker => "/etc/docker/daemon.json",
            Engine::Containerd => "/etc/containerd/config.toml",
            Engine::Podman => "/etc/containers/containers.conf",
        }
    }

    /// Apply this engine's edit to the old text (`None`: the file does not exist).
    pub fn edit(self, old: Option<&str>, req: &Request) -> Result<Edited, EditError> {
        match self {
            Engine::Docker => docker::edit(old, req),
            Engine::Containerd => containerd::edit(old, req),
            Engine::Podman => podman::edit(old, req),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Containerd => "containerd",
            Engine::Podman => "podman",
        }
    }
}

const LONG_ABOUT: &str = "\
Register execguard as a runtime in a container engine's configuration, like \
`nvidia-ctk runtime configure` does for NVIDIA's runtime.

  docker      /etc/docker/daemon.json: runtimes.NAME = {\"path\": PATH}
              (--set-as-default: \"default-runtime\": NAME)
  containerd  /etc/containerd/config.toml (config version 1, 2 or 3): the CRI runtime
              handler NAME, runtime_type io.containerd.runc.v2, options.BinaryName = PATH,
              other settings copied from the default/runc entry
              (--set-as-default: default_runtime_name = NAME)
  podman      /etc/containers/containers.conf: [engine.runtimes] NAME = [PATH]
              (--set-as-default: [engine] runtime = NAME)

Every other key, comment and the key order are kept. The old file is saved as \
FILE.execguard.bak before it is replaced atomically (same mode and owner). Running it twice \
changes nothing the second time. A file that does not parse is never touched.

Exit status: 0 done or nothing to do, 1 refused (unknown engine, malformed or unsupported \
file, write or reload failed), 2 usage error.";

#[derive(Parser, Debug)]
#[command(
    name = "execguard setup",
    bin_name = "execguard setup",
    about = "Register execguard as a runtime in docker, containerd or podman's configuration",
    long_about = LONG_ABOUT
)]
struct SetupArgs {
    /// The engine to configure: docker, containerd or podman.
    #[arg(value_name = "ENGINE")]
    engine: String,
    /// The configuration file to edit [default: the engine's file under /etc].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Name of the runtime in the engine's configuration.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_RUNTIME_NAME)]
    runtime_name: String,
    /// Absolute path of the execguard binary [default: this executable].
    #[arg(long, value_name = "PATH")]
    path: Option<PathBuf>,
    /// Also make the runtime the engine's default.
    #[arg(long)]
    set_as_default: bool,
    /// Print a diff of the change on stdout and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// docker: send SIGHUP to dockerd afterwards, so it reloads daemon.json.
    #[arg(long)]
    reload: bool,
    /// docker: dockerd's pid file, for --reload and the printed command.
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
}

/// Default pid file of dockerd.
pub const DOCKER_PIDFILE: &str = "/var/run/docker.pid";

/// Run `execguard setup` with the arguments after `setup`; returns the exit status
/// (0 done or nothing to do, 1 refused, 2 usage error).
pub fn run(args: &[OsString]) -> i32 {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    run_with(args, &mut out, &mut err)
}

/// [`run`] with explicit output streams: diffs and help go to `out`, messages to `err`.
pub fn run_with(args: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut argv = vec![OsString::from("execguard setup")];
    argv.extend(args.iter().cloned());
    let a = match SetupArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                return 2;
            }
            let _ = out.write_all(text.as_bytes());
            return 0;
        }
    };
    let Some(engine) = Engine::from_name(&a.engine) else {
        say(
            err,
            &format!(
                "unknown engine {:?}: expected docker, containerd or podman",
                a.engine
            ),
        );
        return 1;
    };
    if engine != Engine::Docker && (a.reload || a.pidfile.is_some()) {
        say(err, "--reload and --pidfile apply to docker only");
        return 2;
    }
    if let Err(m) = check_runtime_name(engine, &a.runtime_name) {
        say(err, &m);
        return 2;
    }
    let path = match binary_path(a.path.as_deref()) {
        Ok(p) => p,
        Err(m) => {
            say(err, &m);
            return 2;
        }
    };
    for w in binary_warnings(Path::new(&path)) {
        say(err, &w);
    }
    let req = Request {
        name: a.runtime_name.clone(),
        path,
        set_as_default: a.set_as_default,
    };
    let file = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(engine.default_config()));
    let pidfile = a
        .pidfile
        .clone()
        .unwrap_or_else(|| PathBuf::from(DOCKER_PIDFILE));
    let opts = ApplyOptions {
        dry_run: a.dry_run,
        hooks: &mut |_| Ok(()),
    };
    let status = match apply(engine, &file, &req, opts, out, err) {
        Ok(s) => s,
        Err(m) => {
            say(err, &m);
            return 1;
        }
    };
    if engine == Engine::Docker && a.reload {
        if a.dry_run {
            say(
                err,
                &format!(
                    "dry run: would send SIGHUP to the dockerd named by {}",
                    pidfile.display()
                ),
            );
            return 0;
        }
        return match reload_docker(&pidfile) {
            Ok(pid) => {
                say(
                    err,
                    &format!(
                        "sent SIGHUP to dockerd (pid {pid}): it reloads {} now",
                        file.display()
                    ),
                );
                0
            }
            Err(m) => {
                say(err, &format!("{m}; the file is written but not applied"));
                1
            }
        };
    }
    if status == Status::Changed || (status == Status::WouldChange) {
        say(err, &apply_hint(engine, &file, &pidfile, &req));
    }
    0
}

fn say(err: &mut dyn Write, msg: &str) {
    let _ = writeln!(err, "execguard setup: {msg}");
}

/// Runtime names are written into JSON keys, TOML keys and command lines: keep them simple.
fn check_runtime_name(engine: Engine, name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 63 || !ok_chars || !first_ok {
        return Err(format!(
            "invalid --runtime-name {name:?}: use 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or digit"
        ));
    }
    if engine == Engine::Docker && name == "runc" {
        return Err("invalid --runtime-name \"runc\": dockerd reserves that name".to_string());
    }
    Ok(())
}

/// The binary path to register: `--path` (must be absolute) or this executable.
fn binary_path(flag: Option<&Path>) -> Result<String, String> {
    let p = match flag {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| {
            format!("cannot find this executable's path (/proc/self/exe): {e}; pass --path")
        })?,
    };
    if !p.is_absolute() {
        return Err(format!(
            "invalid --path {}: engines need an absolute path",
            p.display()
        ));
    }
    let Some(s) = p.to_str() else {
        return Err(format!("invalid --path {}: not valid utf-8", p.display()));
    };
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("invalid --path {s:?}: contains control characters"));
    }
    if s.ends_with(" (deleted)") {
        return Err(format!(
            "this executable was deleted ({s}); pass --path with the installed binary"
        ));
    }
    Ok(s.to_string())
}

/// Warnings (not refusals: the binary may be installed later) about the registered path.
fn binary_warnings(path: &Path) -> Vec<String> {
    match fs::metadata(path) {
        Err(e) => vec![format!(
            "warning: {} does not exist yet ({e}); the engine will fail until it is installed",
            path.display()
        )],
        Ok(m) if !m.is_file() => vec![format!("warning: {} is not a regular file", path.display())],
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            vec![format!("warning: {} is not executable", path.display())]
        }
        Ok(_) => Vec::new(),
    }
}

/// Quote a word for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn apply_hint(engine: Engine, file: &Path, pidfile: &Path, req: &Request) -> String {
    match engine {
        Engine::Docker => format!(
            "to apply, run: kill -HUP $(cat {})   (or pass --reload); then: docker run --runtime {} ...",
            shell_word(&pidfile.to_string_lossy()),
            req.name
        ),
        Engine::Containerd => format!(
            "to apply, run: systemctl restart containerd   (containerd 1.6 cannot reload its config); kubernetes: a RuntimeClass with handler {}",
            req.name
        ),
        Engine::Podman => format!(
            "nothing to reload: the next podman command reads {}; use it: podman --runtime {} run ...",
            file.display(),
            req.name
        ),
    }
}

/// How [`apply`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The file was written (a backup of the old one next to it when there was one).
    Changed,
    /// The file already holds the configuration; nothing was written.
    Unchanged,
    /// `--dry-run`: the diff was printed, nothing was written.
    WouldChange,
}

/// Options of [`apply`].
pub struct ApplyOptions<'a> {
    /// Print the diff and write nothing.
    pub dry_run: bool,
    /// Called with the temporary file's path after it is written and synced, just before it
    /// is renamed over the target; an error aborts the write (tests use it to fail there).
    pub hooks: &'a mut dyn FnMut(&Path) -> io::Result<()>,
}

/// Edit one engine's configuration file; diffs go to `out`, messages to `err`.
/// Returns an error message (for exit status 1) when the file is refused or cannot be written.
pub fn apply(
    engine: Engine,
    file: &Path,
    req: &Request,
    opts: ApplyOptions<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Status, String> {
    let target = resolve_target(file)?;
    let existing = read_config(&target)?;
    let old_text = existing.as_ref().map(|e| e.text.as_str());
    let edited = engine
        .edit(old_text, req)
        .map_err(|e| format!("refusing to edit {}: {e}", target.display()))?;
    for n in &edited.notes {
        say(err, n);
    }
    if !edited.changed {
        say(
            err,
            &format!(
                "{} already registers runtime {} ({}): no change",
                target.display(),
                req.name,
                req.path
            ),
        );
        return Ok(Status::Unchanged);
    }
    let label = target.display().to_string();
    if opts.dry_run {
        let old_label = if existing.is_some() {
            label.clone()
        } else {
            "/dev/null".to_string()
        };
        let diff = unified_diff(
            old_text.unwrap_or(""),
            &edited.text,
            &old_label,
            &format!("{label} (execguard setup {})", engine.label()),
        );
        let _ = out.write_all(diff.as_bytes());
        say(
            err,
            &format!("dry run: {label} would change as shown; nothing written"),
        );
        return Ok(Status::WouldChange);
    }
    let (mode, owner, stamp) = match &existing {
        Some(e) => (e.mode, Some((e.uid, e.gid)), Some(e.stamp)),
        None => (0o644, None, None),
    };
    if existing.is_none()
        && let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    let mut backup = None;
    if let Some(e) = &existing {
        let bak = backup_path(&target);
        write_atomic(&bak, e.text.as_bytes(), mode, owner, None, &mut |_| Ok(()))
            .map_err(|er| format!("cannot write backup {}: {er}", bak.display()))?;
        backup = Some(bak);
    }
    write_atomic(
        &target,
        edited.text.as_bytes(),
        mode,
        owner,
        stamp.as_ref(),
        opts.hooks,
    )
    .map_err(|e| format!("cannot write {label}: {e}; the file is unchanged"))?;
    let mut msg = format!("registered runtime {} ({}) in {label}", req.name, req.path);
    if req.set_as_default {
        msg.push_str(" as the default");
    }
    if let Some(b) = backup {
        msg.push_str(&format!("; previous file saved as {}", b.display()));
    }
    say(err, &msg);
    Ok(Status::Changed)
}

/// The path of the backup of `file`: `<file>.execguard.bak`.
pub fn backup_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(BACKUP_SUFFIX);
    PathBuf::from(s)
}

/// A symlinked configuration file is edited where it points, so the link survives.
fn resolve_target(file: &Path) -> Result<PathBuf, String> {
    match fs::symlink_metadata(file) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(file)
            .map_err(|e| format!("cannot follow symlink {}: {e}", file.display())),
        _ => Ok(file.to_path_buf()),
    }
}

/// Identity of the file as read, checked again just before it is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

struct Existing {
    text: String,
    mode: u32,
    uid: u32,
    gid: u32,
    stamp: Stamp,
}

/// Read a configuration file: `None` when it does not exist; refuses anything but a regular
/// file of at most [`MAX_CONFIG_BYTES`] of UTF-8 (never blocks on a FIFO).
fn read_config(path: &Path) -> Result<Option<Existing>, String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let m = f
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if !m.is_file() {
        return Err(format!(
            "refusing to edit {}: not a regular file",
            path.display()
        ));
    }
    if m.size() > MAX_CONFIG_BYTES {
        return Err(format!(
            "refusing to edit {}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        ));
    }
    let mut buf = Vec::new();
    (&mut f)
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "refusing to edit {}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        ));
    }
    let text = match String::from_utf8(buf) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(bytes.get(..at).unwrap_or(&[])).into_owned();
            let (line, column) = line_col(&prefix, prefix.len());
            return Err(format!(
                "refusing to edit {}: not utf-8 at line {line}, column {column}",
                path.display()
            ));
        }
    };
    Ok(Some(Existing {
        text,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        stamp: Stamp::of(&m),
    }))
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Removes the temporary file unless it was renamed into place.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Replace `path` with `data`: a temporary file in the same directory, mode `mode` (umask
/// ignored), owner `owner` when possible, fsync, a check that `path` is still the file that was
/// read (`expect`), rename over `path`, fsync of the directory. On any error `path` is untouched
/// and the temporary file is removed.
fn write_atomic(
    path: &Path,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
    expect: Option<&Stamp>,
    before_rename: &mut dyn FnMut(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let pid = std::process::id();
    let mut attempt = 0u32;
    let (tmp, mut f) = loop {
        let tmp = dir.join(format!(".{name}.execguard-{pid}-{attempt}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let mut guard = TempGuard(Some(tmp.clone()));
    if let Some((uid, gid)) = owner {
        // Keeps a root-owned file root-owned; a user editing their own file may not chown.
        if let Err(e) = std::os::unix::fs::fchown(&f, Some(uid), Some(gid)) {
            let m = f.metadata()?;
            if m.uid() != uid || m.gid() != gid {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot keep owner {uid}:{gid}: {e}"),
                ));
            }
        }
    }
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    before_rename(&tmp)?;
    if let Some(want) = expect {
        let now = fs::metadata(path).map(|m| Stamp::of(&m)).ok();
        if now.as_ref() != Some(want) {
            return Err(io::Error::other(
                "it changed while it was being edited; run setup again",
            ));
        }
    }
    fs::rename(&tmp, path)?;
    guard.0 = None;
    File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Send SIGHUP to the dockerd whose pid is in `pidfile` (it reloads daemon.json's runtimes);
/// refuses a pid that is not a dockerd process. Returns the pid.
fn reload_docker(pidfile: &Path) -> Result<i32, String> {
    let mut buf = Vec::new();
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(pidfile)
        .map_err(|e| format!("cannot read dockerd pid file {}: {e}", pidfile.display()))?;
    f.take(64)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read dockerd pid file {}: {e}", pidfile.display()))?;
    let text = String::from_utf8_lossy(&buf);
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("no pid in dockerd pid file {}", pidfile.display()))?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_err(|e| format!("pid {pid} from {} is not running: {e}", pidfile.display()))?;
    let comm = comm.trim_end_matches('\n');
    if comm != "dockerd" {
        return Err(format!(
            "pid {pid} from {} is {comm:?}, not dockerd: not sending SIGHUP",
            pidfile.display()
        ));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| format!("cannot send SIGHUP to dockerd (pid {pid}): {e}"))?;
    Ok(pid)
}

// ---------------------------------------------------------------------------------------------
// Diff

enum Op {
    Same(usize),
    Del(usize),
    Ins(usize),
}

/// Largest middle section (lines × lines) diffed line by line; beyond it the middle is shown
/// as removed then added.
const DIFF_CELLS: usize = 4_000_000;

/// A unified diff (3 lines of context) of `old` to `new`; empty when they are equal.
pub fn unified_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = diff_ops(&a, &b);
    let mut out = format!("--- {old_label}\n+++ {new_label}\n");
    const CTX: usize = 3;
    // Indices (into ops) of changes, grouped into hunks.
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| !matches!(o, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        let start = i.saturating_sub(CTX);
        let end = (i + CTX + 1).min(ops.len());
        match groups.last_mut() {
            Some(g) if start <= g.1 => g.1 = end,
            _ => groups.push((start, end)),
        }
    }
    for (s, e) in groups {
        let hunk = ops.get(s..e).unwrap_or(&[]);
        // Position of the hunk in each file: count lines before it.
        let (mut a0, mut b0) = (0usize, 0usize);
        for o in ops.get(..s).unwrap_or(&[]) {
            match o {
                Op::Same(..) => {
                    a0 += 1;
                    b0 += 1;
                }
                Op::Del(_) => a0 += 1,
                Op::Ins(_) => b0 += 1,
            }
        }
        let alen = hunk.iter().filter(|o| !matches!(o, Op::Ins(_))).count();
        let blen = hunk.iter().filter(|o| !matches!(o, Op::Del(_))).count();
        let astart = if alen == 0 { a0 } else { a0 + 1 };
        let bstart = if blen == 0 { b0 } else { b0 + 1 };
        out.push_str(&format!("@@ -{astart},{alen} +{bstart},{blen} @@\n"));
        for o in hunk {
            let (mark, line) = match *o {
                Op::Same(i) => (' ', a.get(i).copied().unwrap_or("")),
                Op::Del(i) => ('-', a.get(i).copied().unwrap_or("")),
                Op::Ins(j) => ('+', b.get(j).copied().unwrap_or("")),
            };
            out.push(mark);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

fn diff_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let pre = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
    let max_suf = a.len().min(b.len()) - pre;
    let suf = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suf)
        .take_while(|(x, y)| x == y)
        .count();
    let am = a.get(pre..a.len() - suf).unwrap_or(&[]);
    let bm = b.get(pre..b.len() - suf).unwrap_or(&[]);
    let mut ops: Vec<Op> = (0..pre).map(Op::Same).collect();
    let (n, m) = (am.len(), bm.len());
    if n.saturating_mul(m) > DIFF_CELLS || n == 0 || m == 0 {
        ops.extend((0..n).map(|i| Op::Del(pre + i)));
        ops.extend((0..m).map(|j| Op::Ins(pre + j)));
    } else {
        // lcs[i][j] = length of the LCS of am[i..] and bm[j..].
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                let v = if am.get(i) == bm.get(j) {
                    lcs.get((i + 1) * w + j + 1).copied().unwrap_or(0) + 1
                } else {
                    let down = lcs.get((i + 1) * w + j).copied().unwrap_or(0);
                    let right = lcs.get(i * w + j + 1).copied().unwrap_or(0);
                    down.max(right)
                };
                if let Some(c) = lcs.get_mut(i * w + j) {
                    *c = v;
                }
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n && j < m {
            if am.get(i) == bm.get(j) {
                ops.push(Op::Same(pre + i));
                i += 1;
                j += 1;
            } else if lcs.get((i + 1) * w + j) >= lcs.get(i * w + j + 1) {
                ops.push(Op::Del(pre + i));
                i += 1;
            } else {
                ops.push(Op::Ins(pre + j));
                j += 1;
            }
        }
        ops.extend((i..n).map(|i| Op::Del(pre + i)));
        ops.extend((j..m).map(|j| Op::Ins(pre + j)));
    }
    let alen = a.len();
    ops.extend((0..suf).map(|k| Op::Same(alen - suf + k)));
    ops
}

// ---------------------------------------------------------------------------------------------
// TOML helpers shared by containerd and podman

/// A table that can receive keys: a `[header]`/dotted table or an inline `{ ... }` table.
enum Slot<'a> {
    Table(&'a mut Table),
    Inline(&'a mut InlineTable),
}

/// Parse TOML, turning an error into [`EditError::Malformed`] with line and column.
fn parse_toml(text: &str) -> Result<toml_edit::DocumentMut, EditError> {
    text.parse::<toml_edit::DocumentMut>().map_err(|e| {
        let (line, column) = line_col(text, e.span().map(|s| s.start).unwrap_or(text.len()));
        EditError::Malformed {
            format: "toml",
            line,
            column,
            message: e.message().trim().replace('\n', "; "),
        }
    })
}

/// The indentation (whitespace after the last newline) of a decor prefix, if it is only that.
fn indent_of(prefix: Option<&str>) -> Option<String> {
    let p = prefix?;
    let last = p.rsplit('\n').next().unwrap_or("");
    if last.chars().all(|c| c == ' ' || c == '\t') {
        Some(last.to_string())
    } else {
        None
    }
}

/// The indentation used by the key/value lines of a table, if it has any.
fn key_indent(t: &Table) -> Option<String> {
    for (k, item) in t.iter() {
        if item.is_value()
            && let Some(key) = t.key(k)
            && let Some(i) = indent_of(key.leaf_decor().prefix().and_then(|r| r.as_str()))
        {
            return Some(i);
        }
    }
    None
}

/// Append `key = v` to an inline table, moving the space before `}` behind the new value.
fn inline_append(t: &mut InlineTable, key: &str, mut v: Value) {
    let last = t.iter().last().map(|(k, _)| k.to_string());
    if let Some(prev) = last.and_then(|k| t.get_mut(&k)) {
        let suffix = prev
            .decor()
            .suffix()
            .and_then(|r| r.as_str())
            .map(str::to_string);
        if let Some(sfx) = suffix.filter(|s| s.chars().all(char::is_whitespace)) {
            prev.decor_mut().set_suffix("");
            v.decor_mut().set_suffix(sfx);
        }
    }
    t.insert(key, v);
}

/// The indentation of a table's `[header]` line.
fn header_indent(t: &Table) -> String {
    indent_of(t.decor().prefix().and_then(|r| r.as_str())).unwrap_or_default()
}

impl<'a> Slot<'a> {
    /// Descend into (creating if missing) the sub-table `key`; `shown` names it in errors.
    fn child(self, key: &str, shown: &str) -> Result<Slot<'a>, EditError> {
        match self {
            Slot::Table(t) => {
                if !t.contains_key(key) {
                    let mut n = Table::new();
                    n.set_implicit(true);
                    n.set_dotted(t.is_dotted());
                    t.insert(key, Item::Table(n));
                }
                match t.get_mut(key) {
                    Some(Item::Table(c)) => Ok(Slot::Table(c)),
                    Some(Item::Value(Value::InlineTable(c))) => Ok(Slot::Inline(c)),
                    _ => Err(not_a_table(shown)),
                }
            }
            Slot::Inline(t) => {
                if !t.contains_key(key) {
                    t.insert(key, Value::InlineTable(InlineTable::new()));
                }
                match t.get_mut(key) {
                    Some(Value::InlineTable(c)) => Ok(Slot::Inline(c)),
                    _ => Err(not_a_table(shown)),
                }
            }
        }
    }

    /// A shorter-lived handle on the same table.
    fn reborrow(&mut self) -> Slot<'_> {
        match self {
            Slot::Table(t) => Slot::Table(t),
            Slot::Inline(t) => Slot::Inline(t),
        }
    }

    /// Insert (or overwrite) `key` with `v`; in a `[header]` table the key line gets `indent`
    /// (default: the indentation of the table's other keys, else none).
    fn put(&mut self, key: &str, v: Value, indent: Option<&str>) {
        match self {
            Slot::Table(t) => {
                let indent = indent
                    .map(str::to_string)
                    .or_else(|| key_indent(t))
                    .unwrap_or_default();
                t.insert(key, Item::Value(v));
                // No indentation: left unset, so `restyle_nested` may indent it later.
                if !indent.is_empty()
                    && let Some(mut k) = t.key_mut(key)
                {
                    k.leaf_decor_mut().set_prefix(indent);
                }
            }
            Slot::Inline(t) => {
                if t.contains_key(key) {
                    t.insert(key, v);
                } else {
                    inline_append(t, key, v);
                }
            }
        }
    }

    /// The indentation of this table's key lines, if it has any.
    fn indent(&self) -> Option<String> {
        match self {
            Slot::Table(t) => key_indent(t),
            Slot::Inline(_) => None,
        }
    }

    /// Set `key` to `want` unless `same` says the current value already is it; keeps the
    /// value's surrounding comments. A new key line is indented like its siblings, else with
    /// `indent`. Returns whether it changed.
    fn set(
        &mut self,
        key: &str,
        want: Value,
        same: &dyn Fn(&Value) -> bool,
        shown: &str,
        indent: Option<&str>,
    ) -> Result<bool, EditError> {
        let current = match self {
            Slot::Table(t) => match t.get_mut(key) {
                Some(Item::Value(v)) => Some(v),
                Some(Item::None) | None => None,
                Some(_) => {
                    return Err(EditError::Unsupported(format!(
                        "{shown} is a table, expected a value"
                    )));
                }
            },
            Slot::Inline(t) => t.get_mut(key),
        };
        if let Some(v) = current {
            return Ok(replace_value(v, want, same));
        }
        let indent = self.indent().or(indent.map(str::to_string));
        self.put(key, want, indent.as_deref());
        Ok(true)
    }
}

fn replace_value(v: &mut Value, mut want: Value, same: &dyn Fn(&Value) -> bool) -> bool {
    if same(v) {
        return false;
    }
    *want.decor_mut() = v.decor().clone();
    *v = want;
    true
}

fn not_a_table(shown: &str) -> EditError {
    EditError::Unsupported(format!("{shown} is not a table"))
}

/// The per-level indentation of a file written in `containerd config default`'s nested style
/// (`[a.b]` indented by one step, `[a.b.c]` by two, keys one step deeper than their header);
/// `None` for a flat file or an inconsistent one.
fn nested_step(root: &Table) -> Option<usize> {
    fn walk(t: &Table, depth: usize, steps: &mut Vec<usize>) {
        for (_, item) in t.iter() {
            if let Item::Table(c) = item {
                if !c.is_dotted() && !c.is_implicit() && c.position().is_some() && depth >= 1 {
                    match indent_of(c.decor().prefix().and_then(|r| r.as_str())) {
                        Some(i) if i.chars().all(|ch| ch == ' ') && i.len() % depth == 0 => {
                            steps.push(i.len() / depth)
                        }
                        _ => steps.push(usize::MAX),
                    }
                }
                walk(c, depth + 1, steps);
            }
        }
    }
    let mut steps = Vec::new();
    walk(root, 0, &mut steps);
    let first = *steps.first()?;
    (first > 0 && first != usize::MAX && steps.iter().all(|s| *s == first)).then_some(first)
}

/// Indent what the edit added (tables without a position, keys without a prefix) in the
/// file's nested style, if it has one (`step` from [`nested_step`] of the original file).
fn restyle_nested(root: &mut Table, step: usize) {
    fn walk(t: &mut Table, depth: usize, step: usize) {
        let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
        for k in keys {
            let is_value = t.get(&k).is_some_and(Item::is_value);
            if is_value {
                if let Some(mut key) = t.key_mut(&k)
                    && key.leaf_decor().prefix().is_none()
                {
                    key.leaf_decor_mut().set_prefix(" ".repeat(step * depth));
                }
                continue;
            }
            if let Some(Item::Table(c)) = t.get_mut(&k) {
                if c.is_dotted() {
                    continue;
                }
                if c.position().is_none() && c.decor().prefix().is_none() {
                    c.decor_mut()
                        .set_prefix(format!("\n{}", " ".repeat(step * depth)));
                }
                walk(c, depth + 1, step);
            }
        }
    }
    walk(root, 0, step);
}

/// Quote a TOML key for messages the way it would appear in a header.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        format!("\"{k}\"")
    }
}

/// A dotted path for messages: `plugins."io.containerd.grpc.v1.cri".containerd`.
fn toml_path(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| toml_key(k))
        .collect::<Vec<_>>()
        .join(".")
}

/// Navigate `keys` from the document root, creating missing tables.
fn slot_at<'a>(doc: &'a mut toml_edit::DocumentMut, keys: &[&str]) -> Result<Slot<'a>, EditError> {
    let mut slot = Slot::Table(doc.as_table_mut());
    for (i, k) in keys.iter().enumerate() {
        let shown = toml_path(keys.get(..=i).unwrap_or(keys));
        slot = slot.child(k, &shown)?;
    }
    Ok(slot)
}

/// Read-only lookup of `keys` from the document root: the item, if every step is a table.
fn lookup<'a>(root: &'a Table, keys: &[&str]) -> Option<&'a Item> {
    let (last, init) = keys.split_last()?;
    let mut cur: &dyn toml_edit::TableLike = root;
    for k in init {
        cur = cur.get(k)?.as_table_like()?;
    }
    cur.get(last)
}

fn str_is(want: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v.as_str() == Some(want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn run_capture(v: &[&str]) -> (i32, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run_with(&args(v), &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    fn exe() -> String {
        // Any existing executable file stands in for the installed binary.
        "/bin/sh".to_string()
    }

    fn dir_names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn usage_errors_exit_2_and_unknown_engine_exits_1() {
        let (c, _, e) = run_capture(&[]);
        assert_eq!(c, 2, "{e}");
        let (c, _, e) = run_capture(&["docker", "--no-such-flag"]);
        assert_eq!(c, 2, "{e}");
        let (c, _, e) = run_capture(&["lxc"]);
        assert_eq!(c, 1);
        assert!(e.contains("unknown engine \"lxc\""), "{e}");
        let (c, _, e) = run_capture(&["podman", "--reload"]);
        assert_eq!(c, 2);
        assert!(e.contains("docker only"), "{e}");
        let (c, _, e) = run_capture(&["docker", "--path", "relative/execguard"]);
        assert_eq!(c, 2);
        assert!(e.contains("absolute"), "{e}");
        let (c, _, e) = run_capture(&["docker", "--runtime-name", "runc"]);
        assert_eq!(c, 2);
        assert!(e.contains("reserves"), "{e}");
        let (c, _, e) = run_capture(&["docker", "--runtime-name", "a b"]);
        assert_eq!(c, 2, "{e}");
        let (c, out, _) = run_capture(&["--help"]);
        assert_eq!(c, 0);
        assert!(out.contains("Usage: execguard setup"), "{out}");
        assert!(out.contains("--set-as-default"), "{out}");
    }

    #[test]
    fn run_docker_end_to_end_with_backup_idempotence_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.json");
        fs::write(
            &f,
            "{\n    \"log-driver\": \"journald\",\n    \"debug\": true\n}\n",
        )
        .unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = f.to_str().unwrap();
        let p = exe();
        let (c, out, e) = run_capture(&["docker", "--config", cfg, "--path", &p]);
        assert_eq!(c, 0, "{e}");
        assert!(out.is_empty(), "no diff without --dry-run: {out}");
        assert!(e.contains("kill -HUP $(cat /var/run/docker.pid)"), "{e}");
        let new = fs::read_to_string(&f).unwrap();
        assert_eq!(
            new,
            "{\n    \"log-driver\": \"journald\",\n    \"debug\": true,\n    \"runtimes\": {\n        \"execguard\": {\n            \"path\": \"/bin/sh\"\n        }\n    }\n}\n"
        );
        assert_eq!(
            fs::read_to_string(backup_path(&f)).unwrap(),
            "{\n    \"log-driver\": \"journald\",\n    \"debug\": true\n}\n"
        );
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(
            fs::metadata(backup_path(&f)).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(
            dir_names(d.path()),
            vec!["daemon.json", "daemon.json.execguard.bak"]
        );

        // Second run: nothing changes, says so, backup left alone.
        fs::write(backup_path(&f), "sentinel").unwrap();
        let (c, _, e) = run_capture(&["docker", "--config", cfg, "--path", &p]);
        assert_eq!(c, 0);
        assert!(e.contains("no change"), "{e}");
        assert!(!e.contains("kill -HUP"), "{e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), new);
        assert_eq!(fs::read_to_string(backup_path(&f)).unwrap(), "sentinel");
    }

    #[test]
    fn dry_run_writes_nothing_and_prints_a_diff() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.toml");
        let old = "version = 2\n# keep me\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n";
        fs::write(&f, old).unwrap();
        let before = fs::metadata(&f).unwrap();
        let (c, out, e) = run_capture(&[
            "containerd",
            "--config",
            f.to_str().unwrap(),
            "--path",
            "/usr/local/bin/execguard",
            "--dry-run",
        ]);
        assert_eq!(c, 0, "{e}");
        assert!(e.contains("nothing written"), "{e}");
        assert!(e.contains("systemctl restart containerd"), "{e}");
        assert!(
            out.starts_with(&format!("--- {}\n+++ ", f.display())),
            "{out}"
        );
        assert!(
            out.contains(
                "+[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("+  BinaryName = \"/usr/local/bin/execguard\"\n"),
            "{out}"
        );
        assert!(!out.contains("-# keep me"), "{out}");
        assert_eq!(fs::read_to_string(&f).unwrap(), old);
        assert_eq!(Stamp::of(&fs::metadata(&f).unwrap()), Stamp::of(&before));
        assert_eq!(dir_names(d.path()), vec!["config.toml"]);

        // Missing file: diff from /dev/null, still nothing created.
        let g = d.path().join("sub").join("containers.conf");
        let (c, out, e) = run_capture(&[
            "podman",
            "--config",
            g.to_str().unwrap(),
            "--path",
            "/usr/local/bin/execguard",
            "--dry-run",
        ]);
        assert_eq!(c, 0, "{e}");
        assert!(out.starts_with("--- /dev/null\n"), "{out}");
        assert!(!d.path().join("sub").exists());
    }

    #[test]
    fn malformed_json_refused_with_line_and_column_and_untouched() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.json");
        let bad = "{\n  \"debug\": true,\n  \"runtimes\": {\n    \"x\": 1,,\n  }\n}\n";
        fs::write(&f, bad).unwrap();
        let (c, out, e) = run_capture(&["docker", "--config", f.to_str().unwrap(), "--path", "/x"]);
        assert_eq!(c, 1);
        assert!(out.is_empty());
        assert!(e.contains("malformed json at line 4, column 12"), "{e}");
        assert!(e.contains(&f.display().to_string()), "{e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), bad);
        assert_eq!(dir_names(d.path()), vec!["daemon.json"]);
    }

    #[test]
    fn malformed_toml_refused_with_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.toml");
        let bad = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"\n";
        fs::write(&f, bad).unwrap();
        let (c, _, e) = run_capture(&[
            "containerd",
            "--config",
            f.to_str().unwrap(),
            "--path",
            "/x",
        ]);
        assert_eq!(c, 1);
        assert!(e.contains("malformed toml at line 3, column"), "{e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), bad);
    }

    #[test]
    fn non_utf8_and_fifo_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.json");
        fs::write(&f, b"{\n \"a\": \"\xff\"}\n").unwrap();
        let (c, _, e) = run_capture(&["docker", "--config", f.to_str().unwrap(), "--path", "/x"]);
        assert_eq!(c, 1);
        assert!(e.contains("not utf-8 at line 2, column 8"), "{e}");
        let fifo = d.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let (c, _, e) =
            run_capture(&["docker", "--config", fifo.to_str().unwrap(), "--path", "/x"]);
        assert_eq!(c, 1);
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn missing_file_and_directory_are_created_with_mode_0644() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("etc").join("docker").join("daemon.json");
        let (c, _, e) = run_capture(&[
            "docker",
            "--config",
            f.to_str().unwrap(),
            "--path",
            "/nonexistent/execguard",
            "--set-as-default",
        ]);
        assert_eq!(c, 0, "{e}");
        assert!(e.contains("does not exist yet"), "{e}");
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["runtimes"]["execguard"]["path"], "/nonexistent/execguard");
        assert_eq!(v["default-runtime"], "execguard");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        assert!(
            !backup_path(&f).exists(),
            "no backup of a file that did not exist"
        );
    }

    #[test]
    fn symlinked_config_is_edited_through_the_link() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.conf");
        fs::write(&real, "[engine]\n").unwrap();
        let link = d.path().join("containers.conf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (c, _, e) =
            run_capture(&["podman", "--config", link.to_str().unwrap(), "--path", "/x"]);
        assert_eq!(c, 0, "{e}");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            fs::read_to_string(&real)
                .unwrap()
                .contains("execguard = [\"/x\"]")
        );
    }

    #[test]
    fn failed_write_leaves_file_and_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.json");
        fs::write(&f, "{\"debug\": true}\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let req = Request {
            name: "execguard".into(),
            path: "/x".into(),
            set_as_default: false,
        };
        let mut seen_tmp = None;
        let mut hook = |tmp: &Path| -> io::Result<()> {
            // The temporary file is complete, in the same directory, with the final mode.
            let m = fs::metadata(tmp)?;
            assert_eq!(m.permissions().mode() & 0o7777, 0o640);
            assert_eq!(tmp.parent(), f.parent());
            let t = fs::read_to_string(tmp)?;
            assert!(t.contains("\"execguard\""), "{t}");
            seen_tmp = Some(tmp.to_path_buf());
            Err(io::Error::other("injected failure"))
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = apply(
            Engine::Docker,
            &f,
            &req,
            ApplyOptions {
                dry_run: false,
                hooks: &mut hook,
            },
            &mut out,
            &mut err,
        );
        let e = r.unwrap_err();
        assert!(
            e.contains("injected failure") && e.contains("unchanged"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&f).unwrap(), "{\"debug\": true}\n");
        let tmp = seen_tmp.unwrap();
        assert!(!tmp.exists(), "temporary file removed");
        let names = dir_names(d.path());
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

        // Success path: no temp file left, mode kept.
        let mut ok = |_: &Path| Ok(());
        let r = apply(
            Engine::Docker,
            &f,
            &req,
            ApplyOptions {
                dry_run: false,
                hooks: &mut ok,
            },
            &mut out,
            &mut err,
        );
        assert_eq!(r, Ok(Status::Changed));
        assert_eq!(
            dir_names(d.path()),
            vec!["daemon.json", "daemon.json.execguard.bak"]
        );
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o640
        );
    }

    #[test]
    fn file_changed_during_edit_is_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("daemon.json");
        fs::write(&f, "{}\n").unwrap();
        let req = Request {
            name: "execguard".into(),
            path: "/x".into(),
            set_as_default: false,
        };
        let f2 = f.clone();
        let mut hook = move |_: &Path| -> io::Result<()> {
            fs::write(&f2, "{\"someone\": \"else\"}\n")?;
            Ok(())
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let r = apply(
            Engine::Docker,
            &f,
            &req,
            ApplyOptions {
                dry_run: false,
                hooks: &mut hook,
            },
            &mut out,
            &mut err,
        );
        assert!(r.unwrap_err().contains("changed while"));
        assert_eq!(fs::read_to_string(&f).unwrap(), "{\"someone\": \"else\"}\n");
    }

    #[test]
    fn reload_refuses_a_pid_that_is_not_dockerd() {
        let d = tempfile::tempdir().unwrap();
        let pf = d.path().join("docker.pid");
        fs::write(&pf, format!("{}\n", std::process::id())).unwrap();
        let e = reload_docker(&pf).unwrap_err();
        assert!(e.contains("not dockerd"), "{e}");
        fs::write(&pf, "garbage").unwrap();
        assert!(reload_docker(&pf).unwrap_err().contains("no pid"));
        assert!(reload_docker(&d.path().join("none")).is_err());
    }

    #[test]
    fn reload_sends_sighup_to_a_process_named_dockerd() {
        let d = tempfile::tempdir().unwrap();
        let Some(sleep) = ["/bin/sleep", "/usr/bin/sleep"]
            .iter()
            .find(|p| Path::new(p).exists())
        else {
            return;
        };
        let fake = d.path().join("dockerd");
        fs::copy(sleep, &fake).unwrap();
        let mut child = std::process::Command::new(&fake).arg("30").spawn().unwrap();
        let pf = d.path().join("docker.pid");
        fs::write(&pf, format!("{}\n", child.id())).unwrap();
        // Wait until the child has exec'd (comm becomes "dockerd").
        for _ in 0..200 {
            let comm = fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
            if comm.trim_end() == "dockerd" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let f = d.path().join("daemon.json");
        let (c, _, e) = run_capture(&[
            "docker",
            "--config",
            f.to_str().unwrap(),
            "--path",
            "/bin/sh",
            "--reload",
            "--pidfile",
            pf.to_str().unwrap(),
        ]);
        assert_eq!(c, 0, "{e}");
        assert!(e.contains("sent SIGHUP to dockerd"), "{e}");
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGHUP));
    }

    #[test]
    fn diff_hunks_are_well_formed() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\nk\n";
        let d = unified_diff(old, new, "x", "y");
        assert_eq!(
            d,
            "--- x\n+++ y\n@@ -2,9 +2,10 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n i\n j\n+k\n"
        );
        assert_eq!(unified_diff("same\n", "same\n", "x", "y"), "");
        let d = unified_diff("", "new\n", "/dev/null", "y");
        assert_eq!(d, "--- /dev/null\n+++ y\n@@ -0,0 +1,1 @@\n+new\n");
        let d = unified_diff("a", "b", "x", "y");
        assert!(
            d.contains("-a\n\\ No newline at end of file\n+b\n\\ No newline"),
            "{d}"
        );
        // Two distant changes make two hunks.
        let old: String = (0..30).map(|i| format!("{i}\n")).collect();
        let new = old
            .replace("\n2\n", "\ntwo\n")
            .replace("\n27\n", "\ntwenty-seven\n");
        let d = unified_diff(&old, &new, "x", "y");
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("éx", 2), (1, 2));
        assert_eq!(line_col("abc", 99), (1, 4));
    }

    proptest::proptest! {
        #[test]
        fn diff_never_panics_and_counts_match(old in "[abc\n]{0,40}", new in "[abc\n]{0,40}") {
            let d = unified_diff(&old, &new, "x", "y");
            if old == new {
                proptest::prop_assert!(d.is_empty());
            } else {
                let plus = d.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).count();
                let minus = d.lines().filter(|l| l.starts_with('-') && !l.starts_with("---")).count();
                proptest::prop_assert!(plus + minus > 0);
            }
        }

        #[test]
        fn line_col_never_panics(s in "\\PC{0,30}", off in 0usize..64) {
            let _ = line_col(&s, off);
        }
    }
}
