//! execguard's own subcommands: `check` (diagnose a bundle without starting anything) and
//! `help`. Parsed strictly with clap: these are for people and CI, not for engines.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::host::Host;

/// Names of execguard's own subcommands (none is a runc or crun subcommand, except `help`,
/// which no engine calls).
pub const OWN_SUBCOMMANDS: &[&str] = &["check", "help", "setup", "hook", "doctor"];

#[derive(Parser, Debug)]
#[command(
    name = "execguard",
    version,
    about = "A drop-in OCI runtime that explains why a container's process cannot be exec'd, before the kernel refuses it.",
    long_about = "A drop-in OCI runtime that explains why a container's process cannot be exec'd, before the kernel refuses it.\n\n\
Called like runc (any runc or crun command line), it checks the process on create, run and exec, writes \
a diagnosis to stderr, the runtime's --log file and its own log, then hands over to the real runtime \
unchanged. Every other subcommand is passed straight through.\n\n\
Leading flags of execguard's own: --execguard-runtime=PATH, --execguard-config=PATH, --execguard-version."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Diagnose a bundle's process without starting anything; with --rootfs or --image-tar,
    /// every program of a root file system or image.
    #[command(
        after_help = "Exit status: 0 when no finding is an error, 1 when one is, 2 when nothing could be checked (bad arguments, an unreadable bundle, root or tarball) or a sweep was cut short by a limit."
    )]
    Check(CheckArgs),
    /// What this host can run: machines, binfmt_misc handlers, runtimes, a verdict per platform.
    Doctor {
        /// Arguments of doctor.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Run as an OCI hook (hooks.d, stage createRuntime): reads the OCI state on stdin.
    Hook {
        /// Arguments of hook.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Register execguard in docker, containerd or podman (see `execguard setup --help`).
    Setup {
        /// Arguments of setup.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Explain a container the runtime already has (created, stopped or running) from the
    /// runtime's state; an id prefix naming one container is enough.
    #[arg(long, value_name = "ID", conflicts_with = "bundle")]
    container: Option<String>,
    /// With --container: the runtime's state root (default: runc's, crun's, Docker's and
    /// containerd's roots in turn).
    #[arg(long, value_name = "DIR", requires = "container")]
    root: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Check as if the host were this machine (uname -m); for testing.
    #[arg(long, hide = true)]
    host_machine: Option<String>,
    /// With --host-machine: the compat machine (i386 on x86_64, arm on aarch64) is not allowed.
    #[arg(long, hide = true)]
    no_compat: bool,
    /// Check as if the host's pages were this many bytes; for testing.
    #[arg(long, hide = true)]
    host_page_size: Option<u64>,
    /// Check as if the CPU had this x86-64 ISA level (1 baseline to 4); for testing.
    #[arg(long, hide = true)]
    host_isa_level: Option<u8>,
    /// Read binfmt_misc from this directory.
    #[arg(long)]
    binfmt_root: Option<PathBuf>,
    /// --rootfs, --image-tar and their options.
    #[command(flatten)]
    sweep: Box<SweepArgs>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The options of `check --rootfs` and `check --image-tar`.
#[derive(clap::Args, Debug)]
struct SweepArgs {
    /// Sweep a root file system instead of a bundle: every program (--all) or the PATHs
    /// given, each checked as process.args[0] of a container on it.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bundle", "image_tar"])]
    rootfs: Option<PathBuf>,
    /// Check an image from a `docker save` or OCI layout tarball without unpacking it: its
    /// entrypoint and cmd, the PATHs given, or every program (--all).
    #[arg(long, value_name = "FILE", conflicts_with = "bundle")]
    image_tar: Option<PathBuf>,
    /// With --rootfs or --image-tar: every regular file with an execute bit.
    #[arg(long, conflicts_with = "paths")]
    all: bool,
    /// With --rootfs or --image-tar: the process.args[0] values to check (container paths,
    /// or names looked up in PATH).
    #[arg(value_name = "PATH")]
    paths: Vec<OsString>,
    /// With --rootfs or --image-tar: run as UID[:GID] or NAME[:GROUP] (looked up in the
    /// root's /etc/passwd and /etc/group); default root, or the image's USER.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// With --rootfs or --image-tar: add KEY=VALUE to the process environment (repeatable; it
    /// wins over the default PATH and the image's ENV).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// With --image-tar: check only the images of this platform; with --rootfs: the platform
    /// every program must be built for (a platform-label-mismatch otherwise).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

/// Run an own subcommand; returns the exit status.
pub fn run(args: &[OsString], config_flag: Option<&OsString>) -> i32 {
    if args.first().is_some_and(|a| a == "doctor") {
        return crate::doctor::run(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "hook") {
        return crate::hook::run(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "setup") {
        return crate::setup::run(&args[1..]);
    }
    let mut argv = vec![OsString::from("execguard")];
    argv.extend(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Check(a) => check(a, config_flag),
        Command::Setup { args } => crate::setup::run(&args),
        Command::Hook { args } => crate::hook::run(&args),
        Command::Doctor { args } => crate::doctor::run(&args),
    }
}

fn check(a: CheckArgs, config_flag: Option<&OsString>) -> i32 {
    let cfg_path = crate::config::config_path(config_flag, std::env::var_os("EXECGUARD_CONFIG"));
    let cfg = match crate::config::Config::load(&cfg_path) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "execguard: {e}; checking with the defaults"
            );
            crate::config::Config::default()
        }
    };
    if let Some(code) = sweep(&a, &cfg) {
        return code;
    }
    let binfmt_root = a.binfmt_root.unwrap_or(cfg.binfmt_misc_root.clone());
    let mut host = match &a.host_machine {
        Some(m) => Host::with_machine(m, !a.no_compat, binfmt_root),
        None => Host::detect(binfmt_root),
    };
    if let Some(n) = a.host_page_size {
        host = host.with_page_size(n);
    }
    if a.host_isa_level.is_some() {
        host = host.with_isa_level(a.host_isa_level);
    }
    let diagnosed = match &a.container {
        Some(id) => crate::postmortem::find(id, a.root.as_deref()).and_then(|found| {
            let _ = writeln!(std::io::stderr(), "execguard: {}", found.describe());
            crate::postmortem::diagnose(&found, &host)
        }),
        None => crate::spec::load(&a.bundle)
            .map_err(|e| e.to_string())
            .and_then(|spec| crate::check::diagnose_bundle(&spec, &host)),
    };
    let mut d = match diagnosed {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "execguard: cannot check: {e}");
            return 2;
        }
    };
    d.silence(&cfg.silenced());
    let out = match a.format {
        Format::Json => {
            let mut s = crate::diagnosis::render::json(&d);
            s.push('\n');
            s
        }
        Format::Text => crate::diagnosis::render::for_stdout(
            crate::diagnosis::render::text(&d),
            crate::diagnosis::render::colourize,
        ),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    if d.verdict == crate::diagnosis::Verdict::Fail {
        1
    } else {
        0
    }
}

/// `check --rootfs` and `check --image-tar`; `None` when neither is given (a bundle check).
///
/// Exit status: 0 when nothing is an error, 1 when a finding is an error, 2 when the sweep
/// cannot run (bad arguments, an unreadable root or tarball) or was cut short by a limit.
fn sweep(a: &CheckArgs, cfg: &crate::config::Config) -> Option<i32> {
    use crate::sweep::{Options, Platform, Targets};
    let fail = |msg: String| {
        let _ = writeln!(std::io::stderr(), "execguard: cannot check: {msg}");
        Some(2)
    };
    let sweep_only = a.sweep.all
        || !a.sweep.paths.is_empty()
        || a.sweep.user.is_some()
        || !a.sweep.env.is_empty()
        || a.sweep.platform.is_some();
    if a.sweep.rootfs.is_none() && a.sweep.image_tar.is_none() {
        if sweep_only {
            return fail(
                "--all, PATH, --user, --env and --platform go with --rootfs or --image-tar".into(),
            );
        }
        return None;
    }
    let mut paths = Vec::new();
    for p in &a.sweep.paths {
        match p.to_str() {
            Some(s) if !s.is_empty() => paths.push(s.to_string()),
            _ => {
                return fail(format!(
                    "PATH {} is not a valid UTF-8 name (process.args holds only those)",
                    crate::sanitize::escape_bytes(p.as_encoded_bytes())
                ));
            }
        }
    }
    if let Some(bad) = a.sweep.env.iter().find(|kv| !kv.contains('=')) {
        return fail(format!(
            "--env {} is not KEY=VALUE",
            crate::sanitize::escape_str(bad)
        ));
    }
    let platform = match a.sweep.platform.as_deref().map(Platform::parse).transpose() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let targets = if a.sweep.all {
        Targets::All
    } else if !paths.is_empty() {
        Targets::Paths(paths)
    } else {
        Targets::Process
    };
    let opts = Options {
        user: a.sweep.user.clone(),
        env: a.sweep.env.clone(),
        platform,
        silenced: cfg.silenced(),
    };
    let binfmt_root = a
        .binfmt_root
        .clone()
        .unwrap_or(cfg.binfmt_misc_root.clone());
    let host = match &a.host_machine {
        Some(m) => Host::with_machine(m, !a.no_compat, binfmt_root),
        None => Host::detect(binfmt_root),
    };
    let reports = if let Some(dir) = &a.sweep.rootfs {
        match crate::sweep::rootfs(dir, &targets, &opts, &host) {
            Ok(r) => vec![r],
            Err(e) => return fail(e),
        }
    } else if let Some(file) = &a.sweep.image_tar {
        match crate::image::check_tar(file, &targets, &opts, &host) {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        }
    } else {
        return None;
    };
    let out = match a.format {
        Format::Json => {
            let mut s = crate::diagnosis::render::sweep_json(&reports);
            s.push('\n');
            s
        }
        Format::Text => crate::diagnosis::render::for_stdout(
            crate::diagnosis::render::sweep_text(&reports),
            crate::diagnosis::render::colourize,
        ),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    Some(crate::sweep::exit_code(&reports))
}
