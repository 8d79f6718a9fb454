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
}

/// Why the checks gave no diagnosis.
enum Skipped {
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
fn run_checks<F>(job: F, timeout: Duration) -> Result<Checked, Skipped>
where
    F: FnOnce() -> Result<Checked, String> + Send + 'static,
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
) -> Result<Checked, String> {
    let spec = crate::spec::load(&bundle).map_err(|e| e.to_string())?;
    let host = Host::detect(binfmt_root);
    let ctx = crate::check::Context {
        flavor,
        exec: false,
    };
    let diagnosis = crate::check::diagnose_for(&spec, &host, ctx);
    Ok(Checked {
        diagnosis,
        annotations: spec.annotations,
        terminal: spec.terminal,
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
            run_checks(move || bundle_job(b, binfmt_root, flavor), timeout)
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
    } = checked;
    let mut mode = cfg.mode;
    if let Some(m) = annotations.get(MODE_ANNOTATION) {
        match Mode::parse(m) {
            Some(m) => mode = m,
            None => say(&format!(
                "annotation {MODE_ANNOTATION}={} is not off, warn or enforce: ignored",
                crate::sanitize::escape_str(m)
            )),
        }
    }
    if mode == Mode::Off {
        return Outcome::Exec(runtime);
    }
    if mode == Mode::Enforce
        && annotations.get(CRI_TYPE_ANNOTATION).map(String::as_str) == Some("sandbox")
    {
        mode = Mode::Warn;
    }
    diagnosis.silence(&cfg.silenced());
    let refuse = mode == Mode::Enforce && diagnosis.verdict == Verdict::Fail;
    // With a terminal, stderr may be a pty in raw mode: end lines with CR LF there.
    let line_end = if terminal { "\r\n" } else { "\n" };
    let block = render::stderr_block(&diagnosis, line_end);
    if !block.is_empty() {
        let _ = std::io::stderr().write_all(block.as_bytes());
    }
    if let Some(l) = &runtime_log {
        for f in diagnosis
            .findings
            .iter()
            .filter(|f| f.severity >= crate::diagnosis::Severity::Warning)
        {
            l.write("warning", &render::log_message(f));
        }
    }
    if diagnosis.verdict != Verdict::Ok || cfg.log.include_ok {
        let mut v = serde_json::to_value(&diagnosis).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("time".into(), render::rfc3339(SystemTime::now()).into());
            o.insert("container_id".into(), id.clone().into());
            o.insert("bundle".into(), bundle_json.clone());
            o.insert("mode".into(), mode.as_str().into());
            o.insert(
                "action".into(),
                if refuse { "refused" } else { "started" }.into(),
            );
        }
        own_log(&cfg, v, &say);
    }
    if refuse {
        if let (Some(l), Some(f)) = (&runtime_log, diagnosis.leading_error()) {
            // The last `error` line is what containerd shows: `OCI runtime create failed: <msg>`
            // (`OCI runtime exec failed: <msg>` for exec).
            l.write("error", &render::log_message(f));
        }
        return Outcome::Exit(1);
    }
    // A terminal container: the runtime's stderr does not reach the user (docker run -t
    // discards it), the container's terminal does. Run create as a child, then write the
    // block through the init's fd 2, which is the pty.
    if what == Start::Container
        && terminal
        && !block.is_empty()
        && call.inv.subcommand_is("create")
        && let Some(pid_file) = call.inv.pid_file.clone()
    {
        return match crate::child::run(&runtime, call.args) {
            Ok(status) => {
                if status == 0
                    && let Some(pid) = crate::child::read_pid_file(&pid_file)
                    && let Err(e) = crate::child::write_to_init_stderr(pid, &block)
                {
                    say(&format!("cannot write to the container's terminal: {e}"));
                }
                Outcome::Exit(status)
            }
            Err(e) => {
                say(&format!(
                    "cannot run the runtime as a child ({e}): handing over"
                ));
                Outcome::Exec(runtime)
            }
        };
    }
    Outcome::Exec(runtime)
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
