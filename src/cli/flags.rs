//! The table of runc and crun command-line flags: which global and per-subcommand flags
//! exist and whether each one takes a value.
//!
//! The scanner in [`crate::cli::scan`] only needs this table to know which tokens to
//! skip: a value-taking flag written as `--root X` swallows `X`, so `X` is never taken
//! for the subcommand or the container id. The table covers runc 1.1 to 1.5
//! (urfave/cli flags in runc's `main.go`, `create.go`, `run.go`, `exec.go`, ...) and
//! crun 1.8 and later (GNU argp tables in crun's `src/crun.c`, `src/create.c`,
//! `src/run.c`, `src/exec.c`, ...). A flag that only one of the two runtimes knows is
//! still listed: execguard does not know which runtime it wraps, and the other runtime
//! rejects the flag anyway, so honouring it can only help.
//!
//! Conventions the scanner applies on top of this table:
//!
//! - An unknown flag is assumed to take **no** value. Guessing "bool" keeps the next
//!   token visible as a positional, which is right for every flag added so far to
//!   either runtime except value flags, and those are listed here.
//! - `--flag=value` always carries its value, whatever the table says; a bool flag may
//!   therefore be written `--systemd-cgroup=true` or `--detach=false`.
//! - Single-dash long flags (`-bundle`, `-no-subreaper`, as go-runc emits them) are the
//!   same as double-dash ones, and `--b` is the same as `-b`: Go's flag parsing, which
//!   urfave/cli uses, accepts one or two dashes for every name.
//! - A value flag's value is the next token whatever it looks like (`--root -x` sets the
//!   root to `-x`), as both Go's flag package and getopt do.
//! - crun (getopt) also accepts a short value flag with its value attached (`-b/x`);
//!   the scanner honours that for single-dash tokens that are not a known name.
//! - Combined short bools (`-dt`) are not split: urfave/cli does not combine them by
//!   default, and such an unknown shape is treated as one bool flag.
//! - argp's unambiguous long-option prefixes (`--bund x` in crun) are not expanded.

/// Which runtime defines a flag (documentation only; the scanner honours every entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Both runc and crun accept the flag.
    Both,
    /// Only runc accepts the flag (or only some runc versions).
    Runc,
    /// Only crun accepts the flag.
    Crun,
}

/// One flag of runc or crun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    /// The subcommands the flag belongs to; empty for a global flag (one that must come
    /// before the subcommand).
    pub commands: &'static [&'static str],
    /// Every spelling without dashes: the canonical long name first, then its aliases.
    pub names: &'static [&'static str],
    /// Whether the flag takes a value (the next token, unless written `--flag=value`).
    pub takes_value: bool,
    /// Which runtime defines it.
    pub origin: Origin,
}

impl FlagSpec {
    /// The canonical long name (the first entry of `names`).
    pub fn canonical(&self) -> &'static str {
        self.names.first().copied().unwrap_or("")
    }

    /// Whether this is a global flag.
    pub fn is_global(&self) -> bool {
        self.commands.is_empty()
    }
}

const GLOBAL: &[&str] = &[];
const CREATE_RUN: &[&str] = &["create", "run"];
const RUN: &[&str] = &["run"];
const EXEC: &[&str] = &["exec"];
const KILL: &[&str] = &["kill"];
const DELETE: &[&str] = &["delete"];
const PS: &[&str] = &["ps"];
const LIST: &[&str] = &["list"];
const UPDATE: &[&str] = &["update"];
const CHECKPOINT_RESTORE: &[&str] = &["checkpoint", "restore"];
const CHECKPOINT: &[&str] = &["checkpoint"];
const RESTORE: &[&str] = &["restore"];
const EVENTS: &[&str] = &["events"];
const SPEC: &[&str] = &["spec"];

/// Shorthand for a table row.
const fn flag(
    commands: &'static [&'static str],
    names: &'static [&'static str],
    takes_value: bool,
    origin: Origin,
) -> FlagSpec {
    FlagSpec {
        commands,
        names,
        takes_value,
        origin,
    }
}

const V: bool = true;
const B: bool = false;

/// Every known global and per-subcommand flag of runc (1.1 to 1.5) and crun (1.8+).
///
/// Subcommands without flags (`start`, `state`, `pause`, `resume`, `features`, crun's
/// `mounts`) have no rows.
pub static FLAGS: &[FlagSpec] = &[
    // Global flags: runc main.go `app.Flags`, crun src/crun.c `options`.
    flag(GLOBAL, &["root"], V, Origin::Both),
    flag(GLOBAL, &["log"], V, Origin::Both),
    flag(GLOBAL, &["log-format"], V, Origin::Both),
    // Hidden and ignored, then removed in runc 1.4; old go-runc still sends it.
    flag(GLOBAL, &["criu"], V, Origin::Runc),
    // runc: 'true', 'false' or 'auto'; crun: accepted and ignored, value mandatory.
    flag(GLOBAL, &["rootless"], V, Origin::Both),
    flag(GLOBAL, &["debug"], B, Origin::Both),
    flag(GLOBAL, &["systemd-cgroup"], B, Origin::Both),
    // `-V` is crun's alias only.
    flag(GLOBAL, &["version", "v", "V"], B, Origin::Both),
    flag(GLOBAL, &["help", "h"], B, Origin::Both),
    flag(GLOBAL, &["cgroup-manager"], V, Origin::Crun),
    flag(GLOBAL, &["log-level"], V, Origin::Crun),
    // create and run: runc create.go/run.go, crun src/create.c/src/run.c.
    flag(CREATE_RUN, &["bundle", "b"], V, Origin::Both),
    // runc has `--config` (newer releases); crun has `--config/-f`.
    flag(CREATE_RUN, &["config", "f"], V, Origin::Both),
    flag(CREATE_RUN, &["console-socket"], V, Origin::Both),
    flag(CREATE_RUN, &["pidfd-socket"], V, Origin::Runc),
    flag(CREATE_RUN, &["pid-file"], V, Origin::Both),
    flag(CREATE_RUN, &["preserve-fds"], V, Origin::Both),
    flag(CREATE_RUN, &["no-pivot"], B, Origin::Both),
    flag(CREATE_RUN, &["no-new-keyring"], B, Origin::Both),
    // runc: run only; crun: create and run (ignored).
    flag(CREATE_RUN, &["no-subreaper"], B, Origin::Both),
    flag(RUN, &["detach", "d"], B, Origin::Both),
    flag(RUN, &["keep"], B, Origin::Both),
    // exec: runc exec.go, crun src/exec.c.
    flag(EXEC, &["console-socket"], V, Origin::Both),
    flag(EXEC, &["pidfd-socket"], V, Origin::Runc),
    flag(EXEC, &["cwd"], V, Origin::Both),
    flag(EXEC, &["env", "e"], V, Origin::Both),
    flag(EXEC, &["user", "u"], V, Origin::Both),
    flag(EXEC, &["additional-gids", "g"], V, Origin::Runc),
    flag(EXEC, &["process", "p"], V, Origin::Both),
    flag(EXEC, &["pid-file"], V, Origin::Both),
    flag(EXEC, &["process-label"], V, Origin::Both),
    flag(EXEC, &["apparmor"], V, Origin::Both),
    flag(EXEC, &["cap", "c"], V, Origin::Both),
    flag(EXEC, &["preserve-fds"], V, Origin::Both),
    flag(EXEC, &["cgroup"], V, Origin::Both),
    // crun's `--tty` takes an optional value, which only `--tty=false` can carry.
    flag(EXEC, &["tty", "t"], B, Origin::Both),
    flag(EXEC, &["detach", "d"], B, Origin::Both),
    flag(EXEC, &["no-new-privs"], B, Origin::Both),
    flag(EXEC, &["ignore-paused"], B, Origin::Runc),
    // Hidden in older runc exec.
    flag(EXEC, &["no-subreaper"], B, Origin::Runc),
    // kill, delete, ps, list.
    flag(KILL, &["all", "a"], B, Origin::Both),
    flag(KILL, &["regex", "r"], V, Origin::Crun),
    flag(DELETE, &["force", "f"], B, Origin::Both),
    flag(DELETE, &["regex", "r"], V, Origin::Crun),
    flag(PS, &["format", "f"], V, Origin::Both),
    flag(LIST, &["format", "f"], V, Origin::Both),
    flag(LIST, &["quiet", "q"], B, Origin::Both),
    // update: runc update.go, crun src/update.c.
    flag(UPDATE, &["resources", "r"], V, Origin::Both),
    flag(UPDATE, &["blkio-weight"], V, Origin::Both),
    flag(UPDATE, &["cpu-period"], V, Origin::Both),
    flag(UPDATE, &["cpu-quota"], V, Origin::Both),
    flag(UPDATE, &["cpu-burst"], V, Origin::Runc),
    flag(UPDATE, &["cpu-share"], V, Origin::Both),
    flag(UPDATE, &["cpu-rt-period"], V, Origin::Both),
    flag(UPDATE, &["cpu-rt-runtime"], V, Origin::Both),
    flag(UPDATE, &["cpu-idle"], V, Origin::Runc),
    flag(UPDATE, &["cpuset-cpus"], V, Origin::Both),
    flag(UPDATE, &["cpuset-mems"], V, Origin::Both),
    flag(UPDATE, &["kernel-memory"], V, Origin::Both),
    flag(UPDATE, &["kernel-memory-tcp"], V, Origin::Both),
    flag(UPDATE, &["memory"], V, Origin::Both),
    flag(UPDATE, &["memory-reservation"], V, Origin::Both),
    flag(UPDATE, &["memory-swap"], V, Origin::Both),
    flag(UPDATE, &["pids-limit"], V, Origin::Both),
    flag(UPDATE, &["l3-cache-schema"], V, Origin::Runc),
    flag(UPDATE, &["mem-bw-schema"], V, Origin::Runc),
    // checkpoint and restore: runc checkpoint.go/restore.go, crun src/checkpoint.c/restore.c.
    flag(CHECKPOINT_RESTORE, &["image-path"], V, Origin::Both),
    flag(CHECKPOINT_RESTORE, &["work-path"], V, Origin::Both),
    flag(CHECKPOINT_RESTORE, &["tcp-established"], B, Origin::Both),
    flag(CHECKPOINT_RESTORE, &["ext-unix-sk"], B, Origin::Both),
    flag(CHECKPOINT_RESTORE, &["shell-job"], B, Origin::Both),
    flag(CHECKPOINT_RESTORE, &["file-locks"], B, Origin::Both),
    flag(
        CHECKPOINT_RESTORE,
        &["manage-cgroups-mode"],
        V,
        Origin::Both,
    ),
    flag(CHECKPOINT_RESTORE, &["empty-ns"], V, Origin::Runc),
    flag(CHECKPOINT_RESTORE, &["auto-dedup"], B, Origin::Runc),
    flag(CHECKPOINT_RESTORE, &["lazy-pages"], B, Origin::Runc),
    flag(CHECKPOINT, &["parent-path"], V, Origin::Both),
    flag(CHECKPOINT, &["leave-running"], B, Origin::Both),
    flag(CHECKPOINT, &["page-server"], V, Origin::Runc),
    flag(CHECKPOINT, &["pre-dump"], B, Origin::Both),
    flag(CHECKPOINT, &["status-fd"], V, Origin::Runc),
    flag(CHECKPOINT, &["tcp-skip-in-flight"], B, Origin::Runc),
    flag(CHECKPOINT, &["link-remap"], B, Origin::Runc),
    flag(RESTORE, &["bundle", "b"], V, Origin::Both),
    flag(RESTORE, &["console-socket"], V, Origin::Both),
    flag(RESTORE, &["pidfd-socket"], V, Origin::Runc),
    flag(RESTORE, &["pid-file"], V, Origin::Both),
    flag(RESTORE, &["detach", "d"], B, Origin::Both),
    flag(RESTORE, &["no-subreaper"], B, Origin::Runc),
    flag(RESTORE, &["no-pivot"], B, Origin::Runc),
    flag(RESTORE, &["lsm-profile"], V, Origin::Both),
    flag(RESTORE, &["lsm-mount-context"], V, Origin::Both),
    // events, spec.
    flag(EVENTS, &["interval"], V, Origin::Runc),
    flag(EVENTS, &["stats"], B, Origin::Runc),
    flag(SPEC, &["bundle", "b"], V, Origin::Both),
    flag(SPEC, &["rootless"], B, Origin::Both),
];

/// The global flag spelled `name` (without dashes), if there is one.
pub fn lookup_global(name: &str) -> Option<&'static FlagSpec> {
    FLAGS
        .iter()
        .find(|f| f.is_global() && f.names.contains(&name))
}

/// The flag of `subcommand` spelled `name` (without dashes), not looking at globals.
pub fn lookup_local(subcommand: &str, name: &str) -> Option<&'static FlagSpec> {
    FLAGS
        .iter()
        .find(|f| f.commands.contains(&subcommand) && f.names.contains(&name))
}

/// The flag spelled `name` (without dashes) as the scanner resolves it.
///
/// With `subcommand == None` (before the subcommand) only global flags are searched.
/// With `Some(cmd)`, the flags of `cmd` are searched first and then the global flags:
/// newer runc (urfave/cli v3) also accepts global flags after the subcommand.
pub fn lookup(subcommand: Option<&str>, name: &str) -> Option<&'static FlagSpec> {
    match subcommand {
        None => lookup_global(name),
        Some(cmd) => lookup_local(cmd, name).or_else(|| lookup_global(name)),
    }
}

/// Whether the flag spelled `name` (without dashes) takes a value in the scope of
/// `subcommand` (see [`lookup`]). An unknown flag is assumed to take no value.
pub fn takes_value(subcommand: Option<&str>, name: &str) -> bool {
    lookup(subcommand, name).is_some_and(|f| f.takes_value)
}

/// Whether `name` (without dashes) is a known flag in the scope of `subcommand`
/// (see [`lookup`]).
pub fn is_known(subcommand: Option<&str>, name: &str) -> bool {
    lookup(subcommand, name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_from_the_brief() {
        for name in [
            "root",
            "log",
            "log-format",
            "criu",
            "rootless",
            "cgroup-manager",
            "log-level",
        ] {
            assert!(takes_value(None, name), "{name} must take a value");
        }
        for name in ["debug", "systemd-cgroup", "version", "v", "V", "help", "h"] {
            assert!(is_known(None, name), "{name} must be known");
            assert!(!takes_value(None, name), "{name} must be a bool");
        }
    }

    #[test]
    fn subcommand_flags_do_not_leak_into_globals() {
        assert!(!is_known(None, "bundle"));
        assert!(!is_known(None, "b"));
        assert!(!is_known(None, "process"));
        assert!(lookup_local("create", "root").is_none());
    }

    #[test]
    fn create_run_exec() {
        for cmd in ["create", "run"] {
            for name in [
                "bundle",
                "b",
                "console-socket",
                "pidfd-socket",
                "pid-file",
                "preserve-fds",
                "config",
            ] {
                assert!(takes_value(Some(cmd), name), "{cmd} {name}");
            }
            for name in ["no-pivot", "no-new-keyring"] {
                assert!(is_known(Some(cmd), name) && !takes_value(Some(cmd), name));
            }
        }
        for name in ["detach", "d", "keep", "no-subreaper"] {
            assert!(is_known(Some("run"), name) && !takes_value(Some("run"), name));
        }
        assert!(!is_known(Some("create"), "d"));
        for name in [
            "console-socket",
            "pidfd-socket",
            "cwd",
            "env",
            "e",
            "user",
            "u",
            "additional-gids",
            "g",
            "process",
            "p",
            "pid-file",
            "process-label",
            "apparmor",
            "cap",
            "c",
            "preserve-fds",
            "cgroup",
        ] {
            assert!(takes_value(Some("exec"), name), "exec {name}");
        }
        for name in ["tty", "t", "detach", "d", "no-new-privs", "ignore-paused"] {
            assert!(is_known(Some("exec"), name) && !takes_value(Some("exec"), name));
        }
    }

    #[test]
    fn same_short_name_differs_by_subcommand() {
        assert!(!takes_value(Some("delete"), "f"));
        assert!(takes_value(Some("ps"), "f"));
        assert!(takes_value(Some("list"), "f"));
        assert!(takes_value(Some("create"), "f"));
        assert!(!takes_value(Some("spec"), "rootless"));
        assert!(takes_value(None, "rootless"));
    }

    #[test]
    fn globals_are_found_after_the_subcommand() {
        assert!(takes_value(Some("create"), "root"));
        assert!(takes_value(Some("unknown-verb"), "log"));
        assert!(!is_known(Some("create"), "no-such-flag"));
        assert!(!takes_value(Some("create"), "no-such-flag"));
    }

    #[test]
    fn table_is_consistent() {
        for (i, a) in FLAGS.iter().enumerate() {
            assert!(!a.names.is_empty());
            for name in a.names {
                assert!(!name.is_empty() && !name.starts_with('-') && !name.contains('='));
            }
            for b in FLAGS.iter().skip(i + 1) {
                let same_scope = (a.is_global() && b.is_global())
                    || a.commands.iter().any(|c| b.commands.contains(c));
                if same_scope {
                    for name in a.names {
                        assert!(
                            !b.names.contains(name),
                            "{name} is listed twice in one scope"
                        );
                    }
                }
            }
        }
    }
}
