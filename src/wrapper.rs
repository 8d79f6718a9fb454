//! Wrapper mode: what execguard does when it is called like runc.
//!
//! Every subcommand but `create` and `run` is an immediate exec of the real runtime. For
//! `create` and `run` the checks run on a worker thread under a deadline, with panics caught;
//! the diagnosis goes to stderr (the container's stderr without a terminal), to the runtime's
//! `--log` file and to execguard's own log; then the runtime is exec'd with the argument vector,
//! environment and file descriptors untouched. Only enforce mode with an error finding (or a
//! failure that leaves no runtime to call) stops the start. Nothing is ever written to stdout.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::cli::scan::{Invocation, OwnFlags};
use crate::config::{self, Config, Mode};
use crate::delegate::{self, Choice, DelegateError, Runtime};
use crate::diagnosis::{Diagnosis, Verdict, render};
use crate::host::Host;
use crate::logs::{self, RuntimeLog};

/// The annotation that sets the mode for one container: `off`, `warn` or `enforce`.
pub const MODE_ANNOTATION: &str = "io.execguard.mode";
/// The CRI annotation naming the container type; `sandbox` (the pause container) is never enforced.
pub const CRI_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";
/// CRI-O's name for the same annotation.
pub const CRIO_TYPE_ANNOTATION: &str = "io.kubernetes.cri-o.ContainerType";

/// What the process should do next.
pub enum Outcome {
    /// Exit with this status (after writing what had to be written).
    Exit(i32),
    /// Exec the runtime.
    Exec(Runtime),
}

/// The inputs of one wrapper call.
pub struct Call<'a> {
    /// execguard's argv[0].
    pub argv0: Option<&'a OsString>,
    /// execguard's own leading flags (already stripped from `args`).
    pub own: &'a OwnFlags,
    /// The runtime's arguments.
    pub args: &'a [OsString],
    /// The scanned command line.
    pub inv: &'a Invocation,
}

fn explicit_runtime(call: &Call<'_>) -> bool {
    call.own.runtime.is_some()
        || std::env::var_os("EXECGUARD_RUNTIME").is_some_and(|v| !v.is_empty())
        || call
            .argv0
            .is_some_and(|a| delegate::name_from_argv0(a).is_some())
}

/// Choose the runtime; `cfg` is read only when nothing earlier decides.
fn runtime_for(call: &Call<'_>, cfg: Option<&Config>) -> Result<Runtime, DelegateError> {
    let loaded;
    let cfg = match cfg {
        Some(c) => Some(c),
        None if explicit_runtime(call) => None,
        None => {
            loaded = load_config(call.own).ok();
            loaded.as_ref()
        }
    };
    delegate::choose(&Choice {
        flag: call.own.runtime.as_deref(),
        env: std::env::var_os("EXECGUARD_RUNTIME"),
        argv0: call.argv0.map(OsString::as_os_str),
        config: cfg.and_then(|c| c.runtime.as_deref()),
        path_var: std::env::var_os("PATH"),
    })
}

fn load_config(own: &OwnFlags) -> Result<Config, config::ConfigError> {
    let path = config::config_path(own.config.as_ref(), std::env::var_os("EXECGUARD_CONFIG"));
    Config::load(&path)
}

/// A pass-through subcommand: find the runtime and exec it, nothing else.
pub fn pass_through(call: &Call<'_>) -> Outcome {
    match runtime_for(call, None) {
        Ok(rt) => Outcome::Exec(rt),
        Err(e) => {
            // No runtime: say why on stderr (stdout belongs to the runtime's callers).
            let _ = writeln!(std::io::stderr(), "execguard: {e}");
            Outcome::Exit(1)
        }
    }
}

/// A runtime loop was detected: refuse, in the runtime's words where its callers look.
pub fn refuse_loop(inv: &Invocation) -> Outcome {
    let e = DelegateError::Loop(delegate::nesting());
    let msg = format!("execguard: {e}");
    let _ = writeln!(std::io::stderr(), "{msg}");
    if let Some(l) = RuntimeLog::from_invocation(inv) {
        l.write("error", &msg);
    }
    Outcome::Exit(1)
}

/// What the worker thread hands back.
struct Checked {
    diagnosis: Diagnosis,
    annotations: BTreeMap<String, String>,
    terminal: bool,
    /// The spec as read (for the live check after `create`).
    spec: Option<crate::spec::SpecView>,
    /// The static diagnosis was not made (warn-mode create: the live view after create
    /// replaces it, and only a failed create needs it).
    deferred: bool,
}

/// Why the checks gave no diagnosis.
pub(crate) enum Skipped {
    Timeout(Duration),
    Panic(String),
    Failed(String),
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::Timeout(d) => write!(f, "the checks took longer than {} ms", d.as_millis()),
            Skipped::Panic(m) => write!(f, "internal error (panic: {m})"),
            Skipped::Failed(m) => write!(f, "{m}"),
        }
    }
}

static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// Run the checks of a bundle on a worker thread, bounded by `timeout`, panics caught.
pub(crate) fn run_checks<T, F>(job: F, timeout: Duration) -> Result<T, Skipped>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    // A panic is reported by us in one line, not by the default hook's backtrace text.
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        if let Ok(mut m) = PANIC_MESSAGE.lock() {
            // One line: the payload escaped, so a newline in it cannot split the message.
            *m = Some(crate::sanitize::escape_str(&payload));
        }
    }));
    // One malloc arena: the checks thread would otherwise map a fresh 64 MiB arena of its
    // own (mmap, munmap, mprotect and the page faults of its header) for a few KiB.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a malloc parameter; no allocation is in flight on another
    // thread (this thread is the only one yet).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("execguard-check".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fault_injection();
                job()
            }));
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(Skipped::Failed(format!("cannot start the checks: {e}")));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(Ok(c))) => Ok(c),
        Ok(Ok(Err(msg))) => Err(Skipped::Failed(msg)),
        Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let m = PANIC_MESSAGE
                .lock()
                .ok()
                .and_then(|mut m| m.take())
                .unwrap_or_else(|| "unknown".into());
            Err(Skipped::Panic(m))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Skipped::Timeout(timeout)),
    }
}

/// Test hook: `EXECGUARD_FAULT=panic` or `EXECGUARD_FAULT=sleep:MS` makes the checks fail the
/// way a bug or a stalled filesystem would, so the fail-open path can be proven end to end.
fn fault_injection() {
    let Some(v) = std::env::var_os("EXECGUARD_FAULT") else {
        return;
    };
    let v = v.to_string_lossy();
    if v == "panic" {
        panic!("fault injected by EXECGUARD_FAULT");
    }
    if let Some(ms) = v.strip_prefix("sleep:").and_then(|s| s.parse::<u64>().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// The static view of a bundle: its spec, rootfs and mounts.
fn bundle_job(
    bundle: PathBuf,
    binfmt_root: PathBuf,
    flavor: crate::check::Flavor,
    defer_in: Option<Mode>,
) -> Result<Checked, String> {
    let spec = crate::spec::load(&bundle).map_err(|e| e.to_string())?;
    // A warn-mode create is checked after create, in the live view: no need to do it twice.
    let deferred = defer_in.is_some_and(|m| effective_mode(m, &spec.annotations).0 == Mode::Warn);
    let diagnosis = if deferred {
        Diagnosis::new(crate::diagnosis::Program::default(), Vec::new())
    } else {
        static_diagnosis(&spec, binfmt_root, flavor)
    };
    Ok(Checked {
        diagnosis,
        annotations: spec.annotations.clone(),
        terminal: spec.terminal,
        spec: Some(spec),
        deferred,
    })
}

/// The static view: rootfs plus the spec's mounts.
fn static_diagnosis(
    spec: &crate::spec::SpecView,
    binfmt_root: PathBuf,
    flavor: crate::check::Flavor,
) -> Diagnosis {
    let host = Host::detect(binfmt_root);
    let ctx = crate::check::Context {
        flavor,
        exec: false,
    };
    crate::check::diagnose_for(spec, &host, ctx)
}

/// The mode for one container, as wrapper mode decides it: the `io.execguard.mode`
/// annotation overrides the configured mode, and the CRI sandbox (pause) container is never
/// enforced. The second value says why an annotation was ignored.
pub fn effective_mode(
    configured: Mode,
    annotations: &BTreeMap<String, String>,
) -> (Mode, Option<String>) {
    let mut mode = configured;
    let mut note = None;
    if let Some(m) = annotations.get(MODE_ANNOTATION) {
        match Mode::parse(m) {
            Some(m) => mode = m,
            None => {
                note = Some(format!(
                    "annotation {MODE_ANNOTATION}={} is not off, warn or enforce: ignored",
                    crate::sanitize::escape_str(m)
                ));
            }
        }
    }
    let sandbox = [CRI_TYPE_ANNOTATION, CRIO_TYPE_ANNOTATION]
        .iter()
        .any(|k| annotations.get(*k).map(String::as_str) == Some("sandbox"));
    if mode == Mode::Enforce && sandbox {
        mode = Mode::Warn;
    }
    (mode, note)
}

/// The live view of a created container: its process against `/proc/<pid>/root`, where the
/// mounts, volumes and whatever createRuntime hooks added are in place.
fn created_job(
    mut spec: crate::spec::SpecView,
    pid: i32,
    binfmt_root: PathBuf,
    flavor: crate::check::Flavor,
) -> Result<Checked, String> {
    spec.root = PathBuf::from(format!("/proc/{pid}/root"));
    let diagnosis = crate::check::diagnose_created(&spec, binfmt_root, flavor)?;
    Ok(Checked {
        diagnosis,
        annotations: BTreeMap::new(),
        terminal: spec.terminal,
        spec: None,
        deferred: false,
    })
}

/// The live view of a running container for `exec`: its root through /proc/<pid>/root.
fn exec_job(runtime: Runtime, inv: Invocation, binfmt_root: PathBuf) -> Result<Checked, String> {
    let id = inv
        .container_id
        .clone()
        .ok_or_else(|| "no container id on the command line".to_string())?;
    let pid = crate::live::init_pid(&runtime, &inv, &id)?;
    let spec = crate::live::exec_spec(&inv, pid)?;
    let host = Host::detect(binfmt_root);
    let ctx = crate::check::Context {
        flavor: crate::check::Flavor::of(&runtime.path),
        exec: true,
    };
    let diagnosis = crate::check::diagnose_live(&spec, &host, &spec.root, ctx);
    Ok(Checked {
        diagnosis,
        annotations: BTreeMap::new(),
        terminal: spec.terminal || inv.tty,
        spec: None,
        deferred: false,
    })
}

/// What is being started.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `create` or `run` of a bundle.
    Container,
    /// `exec` into a running container.
    Exec,
}

/// `create`, `run` or `exec`: check, explain, then exec the runtime (or refuse in enforce mode).
pub fn checked_start(call: &Call<'_>, what: Start) -> Outcome {
    let runtime_log = RuntimeLog::from_invocation(call.inv);
    let mut notes: Vec<String> = Vec::new();
    let cfg = match load_config(call.own) {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("{e}; running with the defaults in warn mode"));
            Config::default()
        }
    };
    let say = |msg: &str| {
        let _ = writeln!(std::io::stderr(), "execguard: {msg}");
        if let Some(l) = &runtime_log {
            l.write("warning", &format!("execguard: {msg}"));
        }
    };
    for n in &notes {
        say(n);
        own_log(
            &cfg,
            serde_json::json!({
                "time": render::rfc3339(SystemTime::now()),
                "container_id": call.inv.container_id.as_ref().map(|i| i.to_string_lossy().into_owned()),
                "config_error": n,
            }),
            &say,
        );
    }
    let runtime = match runtime_for(call, Some(&cfg)) {
        Ok(rt) => rt,
        Err(e) => {
            let msg = format!("execguard: {e}");
            let _ = writeln!(std::io::stderr(), "{msg}");
            if let Some(l) = &runtime_log {
                l.write("error", &msg);
            }
            return Outcome::Exit(1);
        }
    };
    if cfg.mode == Mode::Off && notes.is_empty() {
        return Outcome::Exec(runtime);
    }
    let bundle = match &call.inv.bundle {
        Some(b) => b.clone(),
        None => PathBuf::from("."),
    };
    let id = call
        .inv
        .container_id
        .as_ref()
        .map(|i| i.to_string_lossy().into_owned());
    let bundle_json: serde_json::Value = match what {
        Start::Container => bundle.to_string_lossy().into_owned().into(),
        Start::Exec => serde_json::Value::Null,
    };
    let timeout = Duration::from_millis(cfg.check_timeout_ms);
    let binfmt_root = cfg.binfmt_misc_root.clone();
    let checked = match what {
        Start::Container => {
            let b = bundle.clone();
            let flavor = crate::check::Flavor::of(&runtime.path);
            let defer = create_as_child(what, call.inv).then_some(cfg.mode);
            run_checks(move || bundle_job(b, binfmt_root, flavor, defer), timeout)
        }
        Start::Exec => {
            let (rt, inv) = (runtime.clone(), call.inv.clone());
            run_checks(move || exec_job(rt, inv, binfmt_root), timeout)
        }
    };
    let checked = match checked {
        Ok(c) => c,
        Err(skip) => {
            let msg = match what {
                Start::Container => {
                    format!("checks skipped, starting the container unchecked: {skip}")
                }
                Start::Exec => format!("checks skipped, starting the process unchecked: {skip}"),
            };
            say(&msg);
            own_log(
                &cfg,
                serde_json::json!({
                    "time": render::rfc3339(SystemTime::now()),
                    "container_id": id,
                    "bundle": bundle_json,
                    "skipped": skip.to_string(),
                }),
                &say,
            );
            return Outcome::Exec(runtime);
        }
    };
    let Checked {
        mut diagnosis,
        annotations,
        terminal,
        spec,
        deferred,
    } = checked;
    let (mode, note) = effective_mode(cfg.mode, &annotations);
    if let Some(n) = note {
        say(&n);
    }
    if mode == Mode::Off {
        return Outcome::Exec(runtime);
    }
    diagnosis.silence(&cfg.silenced());
    let report = Report {
        cfg: &cfg,
        runtime_log: runtime_log.as_ref(),
        id: id.clone(),
        bundle: bundle_json.clone(),
        mode,
        // A container terminal translates LF to CR LF itself (runc leaves OPOST/ONLCR on).
        line_end: "\n",
        say: &say,
    };
    let create = create_as_child(what, call.inv);
    // A file missing from the bundle's view may still be there after create (a createRuntime
    // hook injects it, or a mount the static view cannot see provides it): let create run
    // and decide on the live view, which deletes what create made if the error stands.
    let live_may_differ = create
        && diagnosis
            .leading_error()
            .is_some_and(|f| may_appear_at_create(f.code));
    if mode == Mode::Enforce && diagnosis.verdict == Verdict::Fail && !live_may_differ {
        report.emit(&diagnosis, Channel::Stderr, "refused");
        report.refuse(&diagnosis);
        return Outcome::Exit(1);
    }
    // exec with a terminal: the runtime's stderr is thrown away, and the process's terminal
    // only exists once the runtime hands it to the caller's console socket.
    if what == Start::Exec
        && terminal
        && let Some(real) = call.inv.console_socket.clone()
        && let Some(block) =
            Some(render::stderr_block(&diagnosis, report.line_end)).filter(|b| !b.is_empty())
    {
        return exec_with_relay(&report, &diagnosis, &runtime, call, real, block);
    }
    let Some(spec) = spec.filter(|_| create) else {
        report.emit(&diagnosis, Channel::Stderr, "started");
        return Outcome::Exec(runtime);
    };
    // A warn-mode create deferred its checks to the live view: the bundle's view, made when
    // there is no live view to use.
    let bundle_view = |diagnosis: &mut Diagnosis| {
        if !deferred {
            return;
        }
        let flavor = crate::check::Flavor::of(&runtime.path);
        let (sp, root) = (spec.clone(), cfg.binfmt_misc_root.clone());
        match run_checks(move || Ok(static_diagnosis(&sp, root, flavor)), timeout) {
            Ok(mut d) => {
                d.silence(&cfg.silenced());
                *diagnosis = d;
            }
            Err(skip) => say(&format!("checks skipped: {skip}")),
        }
    };
    // create: run the runtime as a child, then explain with what it really made.
    let status = match run_child(&runtime, call.args, &say, || {
        report.emit(&diagnosis, Channel::Stderr, "started")
    }) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    if status != 0 {
        // create failed: the static view explains it, as the last error line after the
        // runtime's own (containerd shows the last one), carrying the runtime's words too.
        bundle_view(&mut diagnosis);
        report.emit(&diagnosis, Channel::Stderr, "create-failed");
        // Only an error finding explains a failed create, and only after the runtime's own
        // error line: with none, containerd falls back to the runtime's stderr, kept as is.
        if let (Some(l), Some(f)) = (&runtime_log, diagnosis.leading_error())
            && let Some(theirs) = l.last_error()
        {
            let name = runtime
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut msg = render::log_message(f);
            msg.push_str(&format!("; {name} said: {theirs}"));
            l.write("error", &msg);
        }
        return Outcome::Exit(status);
    }
    let pid = call
        .inv
        .pid_file
        .as_deref()
        .and_then(crate::child::read_pid_file)
        .or_else(|| {
            let id = call.inv.container_id.as_ref()?;
            crate::live::init_pid(&runtime, call.inv, id).ok()
        });
    let live = pid.and_then(|pid| {
        let flavor = crate::check::Flavor::of(&runtime.path);
        let (sp, binfmt_root) = (spec.clone(), cfg.binfmt_misc_root.clone());
        match run_checks(move || created_job(sp, pid, binfmt_root, flavor), timeout) {
            Ok(c) => Some((pid, c.diagnosis)),
            Err(skip) => {
                say(&format!(
                    "live checks skipped, using the bundle's view: {skip}"
                ));
                None
            }
        }
    });
    let live_seen = live.is_some();
    let (channel, diagnosis) = match live {
        Some((pid, mut d)) => {
            d.silence(&cfg.silenced());
            // With a terminal the runtime's stderr is thrown away (docker run -t); the init's
            // fd 2 is the container's terminal.
            (
                if terminal {
                    Channel::Init(pid)
                } else {
                    Channel::Stderr
                },
                d,
            )
        }
        None => {
            bundle_view(&mut diagnosis);
            (Channel::Stderr, diagnosis)
        }
    };
    // Without a live view, an error the live view might not share (a missing file a hook or a
    // mount provides) is no reason to undo a create the runtime made.
    let unseen = !live_seen && live_may_differ;
    if mode == Mode::Enforce && diagnosis.verdict == Verdict::Fail && !unseen {
        // Only the live view saw it (a hook or a volume put it there): undo the create.
        report.emit(&diagnosis, Channel::Stderr, "refused");
        report.refuse(&diagnosis);
        delete_created(&runtime, call.inv);
        return Outcome::Exit(1);
    }
    report.emit(&diagnosis, channel, "started");
    Outcome::Exit(0)
}

/// `exec --tty` with something to show (`block`): the runtime runs as a child with execguard's own
/// console socket, which writes the block through the new terminal and passes it on
/// (src/console.rs). Anything that goes wrong before the runtime starts means the plain exec.
fn exec_with_relay(
    report: &Report<'_>,
    diagnosis: &Diagnosis,
    runtime: &Runtime,
    call: &Call<'_>,
    real: PathBuf,
    block: String,
) -> Outcome {
    let hold = diagnosis.verdict == Verdict::Fail;
    let relay = crate::console::Relay::start(real, block, hold)
        .map_err(|e| format!("cannot relay the console socket ({e})"))
        .and_then(|r| {
            crate::cli::scan::with_console_socket(call.args, call.inv, r.path())
                .map(|args| (r, args))
                .ok_or_else(|| "cannot relay the console socket (no value)".to_string())
        });
    let (relay, args) = match relay {
        Ok(r) => r,
        Err(e) => {
            report.emit(diagnosis, Channel::Stderr, "started");
            (report.say)(&e);
            return Outcome::Exec(runtime.clone());
        }
    };
    report.emit(diagnosis, Channel::Terminal, "started");
    let status = match run_child(runtime, &args, report.say, || {}) {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    if let Some(Err(e)) = relay.finish(status == 0) {
        (report.say)(&e);
    }
    Outcome::Exit(status)
}

/// The runtime run as a child. When it cannot start, `before_handover` runs, one line says so,
/// and the outcome is the plain exec (nothing ran yet); when its end is lost, exit 1 (it ran:
/// running it again would repeat it, and its result is unknown).
fn run_child(
    runtime: &Runtime,
    args: &[std::ffi::OsString],
    say: &dyn Fn(&str),
    before_handover: impl FnOnce(),
) -> Result<i32, Outcome> {
    match crate::child::run(runtime, args) {
        Ok(s) => Ok(s),
        Err(crate::child::ChildError::Spawn(e)) => {
            before_handover();
            say(&format!(
                "cannot run the runtime as a child ({e}): handing over"
            ));
            Err(Outcome::Exec(runtime.clone()))
        }
        Err(e @ crate::child::ChildError::Wait(_)) => {
            say(&e.to_string());
            Err(Outcome::Exit(1))
        }
    }
}

/// Whether this start is a `create` run as a child and checked in the live view. Socket
/// activation hands descriptors to LISTEN_PID only (go-systemd activation.Files): a create
/// meant for this pid must run in this pid, so it is exec'd, with the bundle's view only.
fn create_as_child(what: Start, inv: &Invocation) -> bool {
    let activated = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    what == Start::Container && inv.subcommand_is("create") && !activated
}

/// Findings about a file that is missing, which the live view after create may not share.
fn may_appear_at_create(code: crate::diagnosis::Code) -> bool {
    use crate::diagnosis::Code;
    matches!(
        code,
        Code::NotFound
            | Code::InterpreterMissing
            | Code::ShebangInterpreterMissing
            | Code::EnvTargetMissing
            | Code::BinfmtInterpreterUnreachable
    )
}

/// Where the block goes.
#[derive(Clone, Copy)]
enum Channel {
    /// execguard's stderr (the container's stderr without a terminal).
    Stderr,
    /// The created container's init's fd 2 (its terminal).
    Init(i32),
    /// The exec'd process's terminal, written by the console relay.
    Terminal,
}

/// The outputs of one diagnosis.
struct Report<'a> {
    cfg: &'a Config,
    runtime_log: Option<&'a RuntimeLog>,
    id: Option<String>,
    bundle: serde_json::Value,
    mode: Mode,
    line_end: &'static str,
    say: &'a dyn Fn(&str),
}

impl Report<'_> {
    /// The block, the runtime log's warning lines and execguard's own log line.
    fn emit(&self, d: &Diagnosis, channel: Channel, action: &str) {
        let block = render::stderr_block(d, self.line_end);
        if !block.is_empty() {
            match channel {
                Channel::Stderr => {
                    let _ = std::io::stderr().write_all(block.as_bytes());
                }
                Channel::Init(pid) => {
                    if let Err(e) = crate::child::write_to_init_stderr(pid, &block) {
                        (self.say)(&format!("cannot write to the container's terminal: {e}"));
                    }
                }
                Channel::Terminal => {}
            }
        }
        if let Some(l) = self.runtime_log {
            for f in d
                .findings
                .iter()
                .filter(|f| f.severity >= crate::diagnosis::Severity::Warning)
            {
                l.write("warning", &render::log_message(f));
            }
        }
        if d.verdict != Verdict::Ok || self.cfg.log.include_ok {
            let mut v = serde_json::to_value(d).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("time".into(), render::rfc3339(SystemTime::now()).into());
                o.insert("container_id".into(), self.id.clone().into());
                o.insert("bundle".into(), self.bundle.clone());
                o.insert("mode".into(), self.mode.as_str().into());
                o.insert("action".into(), action.into());
            }
            own_log(self.cfg, v, self.say);
        }
    }

    /// The error line that makes the engine print execguard's reason.
    fn refuse(&self, d: &Diagnosis) {
        if let (Some(l), Some(f)) = (self.runtime_log, d.leading_error()) {
            // The last `error` line is what containerd shows: `OCI runtime create failed: <msg>`
            // (`OCI runtime exec failed: <msg>` for exec).
            l.write("error", &render::log_message(f));
        }
    }
}

/// Remove what `create` made: `<runtime> [--root R] delete --force ID`.
fn delete_created(runtime: &Runtime, inv: &Invocation) {
    let Some(id) = &inv.container_id else {
        return;
    };
    let mut cmd = std::process::Command::new(&runtime.path);
    if let Some(r) = &inv.root {
        cmd.arg("--root").arg(r);
    }
    let _ = cmd
        .arg("delete")
        .arg("--force")
        .arg(id)
        .env(delegate::MARKER, delegate::marker_value())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Append to execguard's own log; a failure is said in one line and changes nothing else.
fn own_log(cfg: &Config, v: serde_json::Value, say: &dyn Fn(&str)) {
    if let Err(e) = logs::append_json_line(&cfg.log, &v) {
        let path = cfg
            .log
            .path
            .as_deref()
            .map(|p| crate::sanitize::escape_bytes(p.as_os_str().as_encoded_bytes()))
            .unwrap_or_default();
        say(&format!("cannot write the diagnosis log {path}: {e}"));
    }
}

/// The runtime that would be called, for `--execguard-version`.
///
/// # Errors
/// No runtime can be found.
pub fn describe_runtime(call: &Call<'_>) -> Result<(String, &'static str), DelegateError> {
    runtime_for(call, None).map(|rt| (rt.path.display().to_string(), rt.source.describe()))
}
