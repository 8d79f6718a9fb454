//! execguard: a drop-in OCI runtime that explains why a container's process cannot be exec'd,
//! before the kernel refuses it.
//!
//! The pipeline, in the order [`main_entry`] runs it: strip execguard's own leading flags, scan
//! the runc/crun command line ([`cli::scan`]), and either exec the real runtime at once
//! ([`delegate`]) or, on `create`/`run`, load the config ([`config`]) and the spec ([`spec`]),
//! resolve the program inside the container ([`rootfs`]), classify what the kernel will see
//! ([`inspect`]) against this host ([`host`]), diagnose ([`check`], [`diagnosis`]), write the
//! diagnosis ([`logs`]) and hand over ([`wrapper`]).

pub mod check;
pub mod child;
pub mod cli;
pub mod config;
pub mod console;
pub mod delegate;
pub mod diagnosis;
pub mod doctor;
pub mod engines;
pub mod hook;
pub mod host;
pub mod image;
pub mod inspect;
pub mod live;
pub mod logs;
pub mod postmortem;
pub mod rootfs;
pub mod sanitize;
pub mod setup;
pub mod spec;
pub mod sweep;
pub mod wrapper;

use std::ffi::OsString;
use std::io::Write;

use wrapper::{Call, Outcome};

/// Install a stderr tracing subscriber when `EXECGUARD_DEBUG` is set (never on stdout).
fn init_debug_tracing() {
    if std::env::var_os("EXECGUARD_DEBUG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .try_init();
    }
}

/// The whole program: returns only to exit.
pub fn main_entry() -> i32 {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = if args.is_empty() {
        None
    } else {
        Some(args.remove(0))
    };
    let own = cli::scan::strip_own_flags(&mut args);
    let inv = cli::scan::scan(&args);
    let call = Call {
        argv0: argv0.as_ref(),
        own: &own,
        args: &args,
        inv: &inv,
    };
    let sub = inv.subcommand.as_ref().and_then(|s| s.to_str());
    if own.version {
        return print_version(&call);
    }
    // Every path but a plain pass-through writes (stderr, logs, stdout for check): a closed
    // pipe must give EPIPE, not kill execguard.
    let writes = own.version
        || matches!(sub, Some("create" | "run" | "exec"))
        || sub.is_some_and(|s| cli::own::OWN_SUBCOMMANDS.contains(&s))
        || (sub.is_none() && args.is_empty())
        || delegate::nesting() >= delegate::MAX_NESTING;
    if writes {
        delegate::ignore_sigpipe();
    }
    let outcome = match sub {
        Some(s) if cli::own::OWN_SUBCOMMANDS.contains(&s) && !inv.version => {
            init_debug_tracing();
            let start = inv.subcommand_index.unwrap_or(0);
            let rest = if s == "help" {
                vec![OsString::from("--help")]
            } else {
                args[start..].to_vec()
            };
            Outcome::Exit(cli::own::run(&rest, own.config.as_ref()))
        }
        None if args.is_empty() => Outcome::Exit(cli::own::run(&[OsString::from("--help")], None)),
        _ if delegate::nesting() >= delegate::MAX_NESTING => wrapper::refuse_loop(&inv),
        // An outer execguard already checked (a hook calling the runtime): pass through.
        _ if delegate::nesting() > 0 => wrapper::pass_through(&call),
        Some("create") | Some("run") => {
            init_debug_tracing();
            wrapper::checked_start(&call, wrapper::Start::Container)
        }
        Some("exec") => {
            init_debug_tracing();
            wrapper::checked_start(&call, wrapper::Start::Exec)
        }
        _ => wrapper::pass_through(&call),
    };
    finish(outcome, &args)
}

fn finish(outcome: Outcome, args: &[OsString]) -> i32 {
    match outcome {
        Outcome::Exit(code) => code,
        Outcome::Exec(rt) => {
            let e = delegate::exec(&rt, args);
            let _ = writeln!(std::io::stderr(), "execguard: {e}");
            1
        }
    }
}

fn print_version(call: &Call<'_>) -> i32 {
    let mut out = format!("execguard {}\n", env!("CARGO_PKG_VERSION"));
    let _ = call;
    out.push_str(&match wrapper::describe_runtime(call) {
        Ok((path, source)) => format!("runtime: {path} (from {source})\n"),
        Err(e) => format!("runtime: none ({e})\n"),
    });
    let _ = std::io::stdout().write_all(out.as_bytes());
    0
}
