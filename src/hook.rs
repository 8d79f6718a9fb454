//! `execguard hook [createRuntime|prestart|createContainer] [--config FILE]`: execguard as an
//! OCI hook (podman's and CRI-O's hooks.d, `hooks/50-execguard.json`), for engines that keep
//! calling runc or crun directly.
//!
//! The runtime runs the hook during `create` with the OCI state on stdin (`id`, `pid`,
//! `bundle`, `annotations`). The hook reads `<bundle>/config.json` and checks the process
//! against the container's live root: the init exists and its mounts are in place, but it has
//! not yet called pivot_root (runtime-spec config.md "createRuntime Hooks"), so the rootfs is
//! `root.path` as seen through `/proc/<pid>/root`. The mode, the `io.execguard.mode`
//! annotation and the CRI sandbox rule are those of wrapper mode. In warn mode the block goes
//! through the init's fd 2 (the container's stderr: `podman logs`); a container with a
//! terminal gets no terminal until after the hook (its fd 2 is `/dev/null` until then), so a
//! short-lived helper writes the block once the terminal is there. In enforce mode with an
//! error the block goes to the hook's stderr and the hook exits 1: runc then fails the create
//! and podman prints that stderr in its error. Any fault of the hook's own (a bad state, an
//! unreadable spec, a panic, the deadline) is one line on stderr and exit 0: the container
//! starts unchecked. Nothing is ever written to stdout.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::config::{self, Config, Mode};
use crate::diagnosis::{Diagnosis, Verdict, render};
use crate::sanitize::escape_str;
use crate::wrapper::effective_mode;
#[cfg(test)]
use crate::wrapper::{CRI_TYPE_ANNOTATION, MODE_ANNOTATION};

/// The largest OCI state read from stdin (bytes).
pub const MAX_STATE_BYTES: usize = 1 << 20;

/// The largest text the terminal helper takes on its stdin (bytes).
const MAX_DELIVERY_BYTES: usize = 64 << 10;

/// How long the terminal helper waits for the container's terminal to appear.
const TERMINAL_WAIT: Duration = Duration::from_secs(3);

/// The hidden option that runs the terminal helper: `hook --deliver-to-terminal FD`.
const DELIVER_FLAG: &str = "--deliver-to-terminal";

const USAGE: &str = "usage: execguard hook [createRuntime|prestart|createContainer] [--config FILE]
an OCI hook: reads the OCI state on stdin, checks the container's process against its live root,
explains (warn) or fails the create (enforce); see hooks/50-execguard.json";

/// The hook stages execguard can run at: all run during `create`, before the process is
/// exec'd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// `createRuntime`: in the runtime's namespaces; `pid` is the init's pid on the host.
    #[default]
    CreateRuntime,
    /// `prestart` (deprecated in the runtime spec): runc runs it with createRuntime.
    Prestart,
    /// `createContainer`: in the container's namespaces, before pivot_root; the hook is a
    /// child of the init and `pid` counts in the container's pid namespace.
    CreateContainer,
}

impl Stage {
    /// Parse a stage name as hooks.d spells it.
    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "createRuntime" => Some(Stage::CreateRuntime),
            "prestart" => Some(Stage::Prestart),
            "createContainer" => Some(Stage::CreateContainer),
            _ => None,
        }
    }

    /// The name as hooks.d spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::CreateRuntime => "createRuntime",
            Stage::Prestart => "prestart",
            Stage::CreateContainer => "createContainer",
        }
    }
}

/// The command line of `execguard hook`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The stage named in hooks.d's `args`.
    pub stage: Stage,
    /// `--config FILE`.
    pub config: Option<OsString>,
    /// `--help`.
    pub help: bool,
    /// The hidden terminal helper: the inherited `/proc/<pid>` directory descriptor.
    pub deliver_fd: Option<RawFd>,
}

/// Parse the arguments after `hook`.
///
/// # Errors
/// An unknown option or stage, a missing value, or two stages.
pub fn parse_args(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut stage_seen = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        if b == b"--help" || b == b"-h" {
            o.help = true;
        } else if b == b"--config" {
            let v = it
                .next()
                .ok_or_else(|| "--config needs a file".to_string())?;
            o.config = Some(v.clone());
        } else if let Some(v) = b.strip_prefix(b"--config=") {
            if v.is_empty() {
                return Err("--config needs a file".into());
            }
            o.config = Some(OsString::from(std::ffi::OsStr::from_bytes(v)));
        } else if b == DELIVER_FLAG.as_bytes() {
            let v = it
                .next()
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<RawFd>().ok())
                .filter(|fd| *fd > 2)
                .ok_or_else(|| format!("{DELIVER_FLAG} needs a descriptor number"))?;
            o.deliver_fd = Some(v);
        } else if b.starts_with(b"-") {
            return Err(format!(
                "unknown option {}",
                escape_str(&a.to_string_lossy())
            ));
        } else {
            let s = a.to_string_lossy();
            let stage = Stage::parse(&s).ok_or_else(|| {
                format!(
                    "unknown stage {} (createRuntime, prestart or createContainer)",
                    escape_str(&s)
                )
            })?;
            if stage_seen {
                return Err("more than one stage given".into());
            }
            stage_seen = true;
            o.stage = stage;
        }
    }
    Ok(o)
}

/// The OCI state a runtime gives a hook on stdin (runtime-spec runtime.md "State").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// `id`.
    pub id: String,
    /// `status` (`creating` for the create-time stages); empty when absent.
    pub status: String,
    /// `pid`, when present.
    pub pid: Option<i32>,
    /// `bundle`: an absolute path.
    pub bundle: PathBuf,
    /// `annotations` with string values (others are dropped).
    pub annotations: BTreeMap<String, String>,
}

/// Interpret the OCI state JSON.
///
/// # Errors
/// Not a JSON object, no `id`, no absolute `bundle`, or a `pid` that is no process id.
pub fn parse_state(bytes: &[u8]) -> Result<State, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the OCI state is not JSON: {e}"))?;
    let Value::Object(map) = v else {
        return Err("the OCI state is not a JSON object".into());
    };
    let id = match map.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("the OCI state has no id".into()),
    };
    let bundle = match map.get("bundle") {
        Some(Value::String(s)) if s.starts_with('/') && !s.contains('\0') => PathBuf::from(s),
        Some(Value::String(s)) => {
            return Err(format!(
                "the OCI state's bundle {} is not an absolute path",
                escape_str(s)
            ));
        }
        _ => return Err("the OCI state has no bundle".into()),
    };
    let pid = match map.get("pid") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("the OCI state's pid {p} is not a process id"))?,
        ),
    };
    let status = map
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let annotations = match map.get("annotations") {
        Some(Value::Object(a)) => a
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(State {
        id,
        status,
        pid,
        bundle,
        annotations,
    })
}

/// Read at most `cap` bytes from `fd` until end of file, giving up at `deadline`; never blocks
/// past it (poll before every read).
///
/// # Errors
/// The deadline passes, more than `cap` bytes arrive, or the read fails.
pub fn read_bounded(fd: BorrowedFd<'_>, cap: usize, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no end of input before the deadline".into());
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.to_string());
        }
        if r == 0 {
            continue;
        }
        // SAFETY: the buffer is valid for its length; the fd is borrowed for the call.
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.kind() {
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => continue,
                _ => return Err(e.to_string()),
            }
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > cap {
            return Err(format!("more than {cap} bytes"));
        }
    }
}

/// What the hook does with a finished diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to say: exit 0.
    Quiet,
    /// Write the block to the container's stderr and exit 0.
    Explain,
    /// Write the block to the hook's stderr and exit 1: the runtime fails the create.
    Refuse,
}

/// The action for a diagnosis in a mode.
pub fn action(mode: Mode, d: &Diagnosis) -> Action {
    match mode {
        Mode::Off => Action::Quiet,
        Mode::Enforce if d.verdict == Verdict::Fail => Action::Refuse,
        _ if d.leading_problem().is_some() => Action::Explain,
        _ => Action::Quiet,
    }
}

/// The pid of this process's parent, in the pid namespace of the mounted /proc (the
/// namespace in which `/proc/<pid>` paths resolve), from field 4 of /proc/self/stat
/// (fs/proc/array.c, do_task_stat, which prints the ppid as that namespace numbers it).
fn parent_pid() -> Option<i32> {
    let mut stat = Vec::new();
    std::fs::File::open("/proc/self/stat")
        .ok()?
        .take(4096)
        .read_to_end(&mut stat)
        .ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = std::str::from_utf8(stat.get(close.checked_add(2)?..)?).ok()?;
    rest.split(' ').nth(1)?.parse().ok().filter(|p| *p > 0)
}

/// The runtime that runs the hook, by the name of its parent's executable (runc, unless it
/// is crun). At createContainer the parent is the init, which is the runtime's binary too.
fn runtime_flavor() -> crate::check::Flavor {
    use crate::check::Flavor;
    let Some(p) = parent_pid() else {
        return Flavor::Runc;
    };
    // crun's executable can read as `/` from here (it runs from a cloned copy); its command
    // name is still `crun`.
    let exe = std::fs::read_link(format!("/proc/{p}/exe")).unwrap_or_default();
    let comm = std::fs::read(format!("/proc/{p}/comm")).unwrap_or_default();
    let comm = PathBuf::from(String::from_utf8_lossy(comm.trim_ascii()).into_owned());
    [Flavor::of(&exe), Flavor::of(&comm)]
        .into_iter()
        .find(|f| *f != Flavor::Runc)
        .unwrap_or(Flavor::Runc)
}

/// The container's root as the init will see it after pivot_root, reached from this process.
///
/// While the init has not pivoted, its root is the root of this process too (same device and
/// inode, in a copy of the mount namespace), and the container's root is `rootfs` below it,
/// with the container's mounts on it. Once pivoted, `/proc/<pid>/root` is the container's root.
///
/// # Errors
/// The init's root cannot be seen (the process is gone, or no permission), or `rootfs` is not
/// a directory in the init's mount namespace.
pub fn live_root(pid: i32, rootfs: &Path) -> Result<PathBuf, String> {
    let base = PathBuf::from(format!("/proc/{pid}/root"));
    let theirs = std::fs::metadata(&base)
        .map_err(|e| format!("cannot see the container's root {}: {e}", base.display()))?;
    let ours = std::fs::metadata("/proc/self/root")
        .map_err(|e| format!("cannot see this process's root: {e}"))?;
    if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
        return Ok(base);
    }
    let rel = rootfs.strip_prefix("/").unwrap_or(rootfs);
    let root = base.join(rel);
    match std::fs::metadata(&root) {
        Ok(m) if m.is_dir() => Ok(root),
        Ok(_) => Err(format!(
            "the rootfs {} is not a directory",
            escape_str(&rootfs.to_string_lossy())
        )),
        Err(e) => Err(format!(
            "cannot see the rootfs {} in the container's mount namespace: {e}",
            escape_str(&rootfs.to_string_lossy())
        )),
    }
}

/// What the worker thread hands back.
struct Checked {
    diagnosis: Diagnosis,
    annotations: BTreeMap<String, String>,
    terminal: bool,
}

/// Load the spec and diagnose its process against the live root of init `pid`.
fn job(
    bundle: PathBuf,
    pid: i32,
    binfmt_root: PathBuf,
    flavor: crate::check::Flavor,
) -> Result<Checked, String> {
    let mut spec = crate::spec::load(&bundle).map_err(|e| e.to_string())?;
    spec.root = live_root(pid, &spec.root)?;
    let diagnosis = crate::check::diagnose_created(&spec, binfmt_root, flavor)?;
    Ok(Checked {
        diagnosis,
        annotations: spec.annotations,
        terminal: spec.terminal,
    })
}

/// Say one line on the hook's stderr (podman shows it only when the hook fails).
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "execguard: hook: {msg}");
}

/// Append to execguard's own log; a failure is said on stderr.
fn own_log(cfg: &Config, v: &Value) {
    if let Err(e) = crate::logs::append_json_line(&cfg.log, v) {
        let path = cfg
            .log
            .path
            .as_deref()
            .map(|p| crate::sanitize::escape_bytes(p.as_os_str().as_bytes()))
            .unwrap_or_default();
        say(&format!("cannot write the diagnosis log {path}: {e}"));
    }
}

/// `execguard hook ...`: returns the exit status (0 unless enforce mode refuses the start).
pub fn run(args: &[OsString]) -> i32 {
    // A panic is one line of ours, never the default hook's text (the checks thread installs
    // its own recording hook).
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(|| run_inner(args)) {
        Ok(code) => code,
        Err(_) => {
            say("internal error (panic): the container starts unchecked");
            0
        }
    }
}

fn run_inner(args: &[OsString]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            say(&format!("{e}: the container starts unchecked"));
            return 0;
        }
    };
    if opts.help {
        let _ = writeln!(std::io::stderr(), "{USAGE}");
        return 0;
    }
    if let Some(fd) = opts.deliver_fd {
        deliver_when_terminal(fd, TERMINAL_WAIT);
        return 0;
    }
    // The runtime was called through execguard, which checked already.
    if crate::delegate::nesting() > 0 {
        return 0;
    }
    let mut notes: Vec<String> = Vec::new();
    let path = config::config_path(opts.config.as_ref(), std::env::var_os("EXECGUARD_CONFIG"));
    let cfg = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let n = format!("{e}; running with the defaults in warn mode");
            say(&n);
            notes.push(n);
            Config::default()
        }
    };
    if cfg.mode == Mode::Off && notes.is_empty() {
        return 0;
    }
    // The state read and the checks each get the configured time.
    let timeout = Duration::from_millis(cfg.check_timeout_ms);
    let now = Instant::now();
    let state = match read_state(now.checked_add(timeout).unwrap_or(now)) {
        Ok(s) => s,
        Err(e) => {
            say(&format!(
                "cannot read the OCI state on stdin: {e}: the container starts unchecked"
            ));
            return 0;
        }
    };
    for n in &notes {
        own_log(
            &cfg,
            &serde_json::json!({
                "time": render::rfc3339(SystemTime::now()),
                "container_id": state.id,
                "config_error": n,
            }),
        );
    }
    let init = match opts.stage {
        Stage::CreateContainer => parent_pid(),
        Stage::CreateRuntime | Stage::Prestart => state.pid,
    };
    let bundle_json: Value = state.bundle.to_string_lossy().into_owned().into();
    let skipped = |why: String| {
        say(&format!(
            "checks skipped, starting the container unchecked: {why}"
        ));
        own_log(
            &cfg,
            &serde_json::json!({
                "time": render::rfc3339(SystemTime::now()),
                "container_id": state.id,
                "bundle": bundle_json,
                "skipped": why,
            }),
        );
    };
    let Some(init) = init else {
        skipped(format!(
            "the OCI state names no pid for stage {}",
            opts.stage.as_str()
        ));
        return 0;
    };
    let flavor = runtime_flavor();
    let bundle = state.bundle.clone();
    let binfmt_root = cfg.binfmt_misc_root.clone();
    let checked =
        match crate::wrapper::run_checks(move || job(bundle, init, binfmt_root, flavor), timeout) {
            Ok(c) => c,
            Err(skip) => {
                skipped(skip.to_string());
                return 0;
            }
        };
    let Checked {
        mut diagnosis,
        annotations,
        terminal,
    } = checked;
    let (mode, note) = effective_mode(cfg.mode, &annotations);
    if let Some(n) = note {
        say(&n);
        notes.push(n);
    }
    if mode == Mode::Off {
        return 0;
    }
    diagnosis.silence(&cfg.silenced());
    let act = action(mode, &diagnosis);
    if diagnosis.verdict != Verdict::Ok || cfg.log.include_ok {
        let mut v = serde_json::to_value(&diagnosis).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("time".into(), render::rfc3339(SystemTime::now()).into());
            o.insert("container_id".into(), state.id.clone().into());
            o.insert("bundle".into(), bundle_json.clone());
            o.insert("mode".into(), mode.as_str().into());
            let done = if act == Action::Refuse {
                "refused"
            } else {
                "started"
            };
            o.insert("action".into(), done.into());
        }
        own_log(&cfg, &v);
    }
    if act == Action::Refuse {
        // The runtime puts the hook's stderr into its error (podman under runc: `error
        // running hook #0: ... stderr: <this>`).
        let block = render::stderr_block(&diagnosis, "\n");
        let _ = std::io::stderr().write_all(block.as_bytes());
        return 1;
    }
    // LF here; a terminal that does not turn LF into CR LF itself gets CR LF on write.
    let mut text: String = notes.iter().map(|n| format!("execguard: {n}\n")).collect();
    if act == Action::Explain {
        text.push_str(&render::stderr_block(&diagnosis, "\n"));
    }
    if !text.is_empty()
        && let Err(e) = deliver(init, terminal, &text)
    {
        say(&format!("cannot write to the container's stderr: {e}"));
    }
    0
}

/// The OCI state from stdin, bounded in size and time.
fn read_state(deadline: Instant) -> Result<State, String> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(fd.as_raw_fd()) } == 1 {
        return Err("stdin is a terminal".into());
    }
    let bytes = read_bounded(fd, MAX_STATE_BYTES, deadline)?;
    parse_state(&bytes)
}

/// Open `/proc/<pid>` as a directory: later lookups through it never reach a process that
/// reused the pid.
fn open_proc_dir(pid: i32) -> std::io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        format!("/proc/{pid}").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(fd)
}

/// Open the fd 2 of the process whose `/proc/<pid>` directory is `dir`, without blocking and
/// without making it this process's controlling terminal.
fn open_init_stderr(dir: BorrowedFd<'_>) -> std::io::Result<std::fs::File> {
    let fd = nix::fcntl::openat(
        dir,
        "fd/2",
        nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_NOCTTY
            | nix::fcntl::OFlag::O_NONBLOCK
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

fn is_tty(f: &impl AsFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(f.as_fd().as_raw_fd()) == 1 }
}

/// `text` (LF line ends) as it must be written to terminal `f`: unchanged when the terminal
/// turns LF into CR LF itself (OPOST and ONLCR, a cooked pty as podman's), else with CR LF (a
/// pty in raw mode, as Docker's), so every line starts at the left margin.
fn for_terminal(f: &impl AsFd, text: &[u8]) -> Vec<u8> {
    // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; the descriptor is borrowed for the call.
    let cooked = unsafe { libc::tcgetattr(f.as_fd().as_raw_fd(), &mut t) } == 0
        && t.c_oflag & libc::OPOST != 0
        && t.c_oflag & libc::ONLCR != 0;
    if cooked {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len().saturating_add(64));
    let mut prev = 0u8;
    for &b in text {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Write `text` to the container's stderr: the init's fd 2 now, or, for a container with a
/// terminal whose fd 2 is not the terminal yet, through a helper that waits for it.
fn deliver(pid: i32, terminal: bool, text: &str) -> Result<(), String> {
    if !terminal {
        return crate::child::write_to_init_stderr(pid, text).map_err(|e| e.to_string());
    }
    let dir = open_proc_dir(pid).map_err(|e| format!("/proc/{pid}: {e}"))?;
    let mut f = open_init_stderr(dir.as_fd()).map_err(|e| format!("/proc/{pid}/fd/2: {e}"))?;
    if is_tty(&f) {
        let bytes = for_terminal(&f, text.as_bytes());
        return f.write_all(&bytes).map_err(|e| e.to_string());
    }
    drop(f);
    spawn_terminal_helper(&dir, text)
}

/// Start `execguard hook --deliver-to-terminal FD` on its own, with the `/proc/<pid>`
/// directory inherited as FD and the text on its stdin. It must not hold the hook's stdout or
/// stderr: the runtime waits for those to close.
fn spawn_terminal_helper(dir: &OwnedFd, text: &str) -> Result<(), String> {
    // A duplicate without close-on-exec is what the helper inherits.
    let inherited = nix::unistd::dup(dir).map_err(|e| format!("dup: {e}"))?;
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg0("execguard")
        .arg("hook")
        .arg(DELIVER_FLAG)
        .arg(inherited.as_raw_fd().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the terminal helper: {e}"))?;
    drop(inherited);
    let wrote = child
        .stdin
        .take()
        .map(|mut s| s.write_all(text.as_bytes()))
        .transpose()
        .map_err(|e| format!("cannot hand the text to the terminal helper: {e}"));
    // Not waited for: it outlives the hook by design and is reaped by whoever adopts it.
    wrote.map(|_| ())
}

/// The terminal helper: read the text from stdin, wait (at most `wait`) until fd 2 of the
/// process whose `/proc/<pid>` directory is `dir_fd` is a terminal, write the text there.
/// Gives up silently when the process goes away or the time is up.
fn deliver_when_terminal(dir_fd: RawFd, wait: Duration) {
    // SAFETY: the descriptor was inherited for this purpose and is owned from here on; a
    // number that is not open makes the first use fail, nothing else.
    let dir = unsafe { OwnedFd::from_raw_fd(dir_fd) };
    let is_proc = nix::sys::statfs::fstatfs(&dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    if !is_proc {
        return;
    }
    let start = Instant::now();
    let deadline = start.checked_add(wait).unwrap_or(start);
    let Ok(text) = read_bounded(std::io::stdin().as_fd(), MAX_DELIVERY_BYTES, deadline) else {
        return;
    };
    let _ = write_when_terminal(dir.as_fd(), &text, deadline);
}

/// Poll until fd 2 behind `dir` is a terminal, then write `text` to it.
fn write_when_terminal(dir: BorrowedFd<'_>, text: &[u8], deadline: Instant) -> Result<(), String> {
    loop {
        match open_init_stderr(dir) {
            Ok(mut f) if is_tty(&f) => {
                let bytes = for_terminal(&f, text);
                return f.write_all(&bytes).map_err(|e| e.to_string());
            }
            Ok(_) => {}
            // ENOENT/ESRCH: the process is gone (or has no fd 2): nobody to tell.
            Err(e) if e.raw_os_error() != Some(libc::EACCES) => return Err(e.to_string()),
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return Err("no terminal before the deadline".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Code, Finding, Program, Severity};
    use proptest::prelude::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn ann(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn diag(sev: Option<Severity>) -> Diagnosis {
        let findings = sev
            .map(|s| {
                vec![Finding::new(
                    Code::ArchMismatch,
                    s,
                    "m".into(),
                    String::new(),
                )]
            })
            .unwrap_or_default();
        Diagnosis::new(Program::default(), findings)
    }

    const PODMAN_STATE: &str = r#"{"ociVersion":"1.0.2-dev","id":"cf84aa","status":"creating","pid":27592,
 "bundle":"/var/lib/containers/storage/overlay-containers/cf84aa/userdata",
 "annotations":{"io.container.manager":"libpod","io.kubernetes.cri-o.TTY":"false","n":1}}"#;

    #[test]
    fn podman_state_parses() {
        let s = parse_state(PODMAN_STATE.as_bytes()).unwrap();
        assert_eq!(s.id, "cf84aa");
        assert_eq!(s.status, "creating");
        assert_eq!(s.pid, Some(27592));
        assert_eq!(
            s.bundle,
            PathBuf::from("/var/lib/containers/storage/overlay-containers/cf84aa/userdata")
        );
        assert_eq!(s.annotations.get("io.container.manager").unwrap(), "libpod");
        // A non-string annotation value is dropped, not an error.
        assert!(!s.annotations.contains_key("n"));
    }

    #[test]
    fn bad_states_are_refused_with_a_reason() {
        for (text, want) in [
            ("", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"bundle":"/b"}"#, "no id"),
            (r#"{"id":"","bundle":"/b"}"#, "no id"),
            (r#"{"id":"x"}"#, "no bundle"),
            (r#"{"id":"x","bundle":7}"#, "no bundle"),
            (r#"{"id":"x","bundle":"rel/b"}"#, "not an absolute path"),
            (r#"{"id":"x","bundle":"/b\u0000c"}"#, "not an absolute path"),
            (r#"{"id":"x","bundle":"/b","pid":0}"#, "not a process id"),
            (r#"{"id":"x","bundle":"/b","pid":-5}"#, "not a process id"),
            (
                r#"{"id":"x","bundle":"/b","pid":4294967296}"#,
                "not a process id",
            ),
            (r#"{"id":"x","bundle":"/b","pid":"12"}"#, "not a process id"),
            (r#"{"id":"x","bundle":"/b","pid":1.5}"#, "not a process id"),
        ] {
            let e = parse_state(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        // No pid (or null) is allowed: stages that need one say so later.
        let s = parse_state(br#"{"id":"x","bundle":"/b","pid":null}"#).unwrap();
        assert_eq!(s.pid, None);
        assert!(s.annotations.is_empty());
    }

    #[test]
    fn args_parse() {
        assert_eq!(parse_args(&[]).unwrap(), Options::default());
        let o = parse_args(&os(&["prestart", "--config", "/e.json"])).unwrap();
        assert_eq!(o.stage, Stage::Prestart);
        assert_eq!(o.config, Some(OsString::from("/e.json")));
        let o = parse_args(&os(&["--config=/f.json", "createContainer"])).unwrap();
        assert_eq!(o.stage, Stage::CreateContainer);
        assert_eq!(o.config, Some(OsString::from("/f.json")));
        assert!(parse_args(&os(&["--help"])).unwrap().help);
        assert_eq!(
            parse_args(&os(&[DELIVER_FLAG, "7"])).unwrap().deliver_fd,
            Some(7)
        );
        for bad in [
            &["poststart"][..],
            &["createRuntime", "prestart"],
            &["--config"],
            &["--config="],
            &["--verbose"],
            &[DELIVER_FLAG],
            &[DELIVER_FLAG, "1"],
            &[DELIVER_FLAG, "x"],
        ] {
            assert!(parse_args(&os(bad)).is_err(), "{bad:?}");
        }
        for s in [
            Stage::CreateRuntime,
            Stage::Prestart,
            Stage::CreateContainer,
        ] {
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn annotation_overrides_and_sandbox_is_never_enforced() {
        let none = BTreeMap::new();
        assert_eq!(effective_mode(Mode::Warn, &none), (Mode::Warn, None));
        let a = ann(&[(MODE_ANNOTATION, "enforce")]);
        assert_eq!(effective_mode(Mode::Warn, &a), (Mode::Enforce, None));
        let a = ann(&[(MODE_ANNOTATION, " OFF ")]);
        assert_eq!(effective_mode(Mode::Enforce, &a), (Mode::Off, None));
        let a = ann(&[(MODE_ANNOTATION, "loud\n")]);
        let (m, note) = effective_mode(Mode::Enforce, &a);
        assert_eq!(m, Mode::Enforce);
        let note = note.unwrap();
        assert!(note.contains("loud\\n") && !note.contains('\n'), "{note}");
        let a = ann(&[(CRI_TYPE_ANNOTATION, "sandbox")]);
        assert_eq!(effective_mode(Mode::Enforce, &a), (Mode::Warn, None));
        let a = ann(&[
            (CRI_TYPE_ANNOTATION, "sandbox"),
            (MODE_ANNOTATION, "enforce"),
        ]);
        assert_eq!(effective_mode(Mode::Warn, &a), (Mode::Warn, None));
        let a = ann(&[(CRI_TYPE_ANNOTATION, "container")]);
        assert_eq!(effective_mode(Mode::Enforce, &a), (Mode::Enforce, None));
    }

    #[test]
    fn actions() {
        let err = diag(Some(Severity::Error));
        let warn = diag(Some(Severity::Warning));
        let info = diag(Some(Severity::Info));
        let ok = diag(None);
        assert_eq!(action(Mode::Enforce, &err), Action::Refuse);
        assert_eq!(action(Mode::Warn, &err), Action::Explain);
        assert_eq!(action(Mode::Off, &err), Action::Quiet);
        assert_eq!(action(Mode::Enforce, &warn), Action::Explain);
        assert_eq!(action(Mode::Warn, &warn), Action::Explain);
        assert_eq!(action(Mode::Enforce, &info), Action::Quiet);
        assert_eq!(action(Mode::Enforce, &ok), Action::Quiet);
    }

    #[test]
    fn bounded_read_stops_at_the_cap_and_the_deadline() {
        let later = || Instant::now() + Duration::from_secs(5);
        // End of input: everything read.
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut w = std::fs::File::from(w);
        w.write_all(PODMAN_STATE.as_bytes()).unwrap();
        drop(w);
        let got = read_bounded(r.as_fd(), MAX_STATE_BYTES, later()).unwrap();
        assert_eq!(got, PODMAN_STATE.as_bytes());
        // Too much: refused once past the cap, without waiting for the end.
        let (r, w) = nix::unistd::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut w = std::fs::File::from(w);
            let _ = w.write_all(&[b' '; 200]);
            std::thread::sleep(Duration::from_millis(300));
        });
        let e = read_bounded(r.as_fd(), 100, later()).unwrap_err();
        assert!(e.contains("more than 100 bytes"), "{e}");
        writer.join().unwrap();
        // A writer that never closes: the deadline ends the wait.
        let (r, w) = nix::unistd::pipe().unwrap();
        let t0 = Instant::now();
        let e =
            read_bounded(r.as_fd(), 100, Instant::now() + Duration::from_millis(150)).unwrap_err();
        assert!(e.contains("deadline"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2));
        drop(w);
    }

    #[test]
    fn parent_pid_is_the_parent() {
        assert_eq!(
            parent_pid(),
            Some(std::os::unix::process::parent_id() as i32)
        );
    }

    #[test]
    fn live_root_before_pivot_is_the_rootfs_below_the_init_root() {
        let d = tempfile::tempdir().unwrap();
        let me = std::process::id() as i32;
        // This process shares its root with itself: not pivoted, so the rootfs lies below it.
        let r = live_root(me, d.path()).unwrap();
        let want =
            PathBuf::from(format!("/proc/{me}/root")).join(d.path().strip_prefix("/").unwrap());
        assert_eq!(r, want);
        assert!(r.is_dir());
        let e = live_root(me, &d.path().join("none")).unwrap_err();
        assert!(e.contains("cannot see the rootfs"), "{e}");
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(live_root(me, &f).unwrap_err().contains("not a directory"));
        // A process that does not exist.
        assert!(live_root(i32::MAX, d.path()).is_err());
    }

    #[test]
    fn delivery_reaches_the_init_stderr_pipe() {
        use std::process::{Command, Stdio};
        let mut child = Command::new("/bin/sleep")
            .arg("5")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        deliver(pid, false, "execguard: x\n").unwrap();
        let mut got = [0u8; 13];
        child.stderr.as_mut().unwrap().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"execguard: x\n");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A pseudo-terminal pair: (master, slave).
    fn pty() -> (std::fs::File, std::fs::File) {
        // SAFETY: plain libc calls on descriptors this test owns; ptsname_r gets a sized buffer.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
            let path = std::ffi::CStr::from_ptr(name.as_ptr()).to_str().unwrap();
            let slave = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(path)
                .unwrap();
            (std::fs::File::from_raw_fd(m), slave)
        }
    }
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn terminal_delivery_waits_for_a_terminal() {
        use std::process::{Command, Stdio};
        // fd 2 is /dev/null: never a terminal, the wait ends at the deadline.
        let mut child = Command::new("/bin/sleep")
            .arg("5")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let dir = open_proc_dir(child.id() as i32).unwrap();
        let t0 = Instant::now();
        let e = write_when_terminal(
            dir.as_fd(),
            b"x",
            Instant::now() + Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.contains("deadline"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(2));
        let _ = child.kill();
        let _ = child.wait();
        // Once reaped, the directory refers to nothing: it fails at once, never another process.
        let e = write_when_terminal(dir.as_fd(), b"x", Instant::now() + Duration::from_secs(5))
            .unwrap_err();
        assert!(!e.contains("deadline"), "{e}");
        // fd 2 is a pty: the text arrives on the master.
        let (mut master, slave) = pty();
        let mut child = Command::new("/bin/sleep")
            .arg("5")
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let dir = open_proc_dir(child.id() as i32).unwrap();
        write_when_terminal(
            dir.as_fd(),
            b"execguard: y",
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        let mut got = [0u8; 12];
        master.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"execguard: y");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn line_ends_follow_the_terminal_mode() {
        let (_master, slave) = pty();
        // A new pty is cooked: it turns LF into CR LF itself.
        assert_eq!(for_terminal(&slave, b"a\nb\n"), b"a\nb\n");
        // SAFETY: termios calls on a descriptor this test owns.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
            libc::cfmakeraw(&mut t);
            assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
        }
        assert_eq!(for_terminal(&slave, b"a\nb\r\n"), b"a\r\nb\r\n");
        // Not a terminal at all: CR LF, as for a raw one.
        let f = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(for_terminal(&f, b"x\n"), b"x\r\n");
    }

    proptest! {
        #[test]
        fn state_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_state(&bytes);
        }

        #[test]
        fn state_like_json_never_panics(
            id in ".{0,8}",
            bundle in ".{0,12}",
            pid in any::<i64>(),
            key in ".{0,6}",
            val in ".{0,6}",
        ) {
            let doc = serde_json::json!({
                "id": id, "bundle": bundle, "pid": pid, "annotations": { key: val },
            });
            if let Ok(s) = parse_state(doc.to_string().as_bytes()) {
                prop_assert!(s.bundle.is_absolute());
                prop_assert!(s.pid.is_some_and(|p| p > 0));
            }
        }

        #[test]
        fn args_never_panic(args in proptest::collection::vec(".{0,12}", 0..5)) {
            let v: Vec<OsString> = args.iter().map(OsString::from).collect();
            let _ = parse_args(&v);
        }
    }
}
