//! Tolerant scanning of a runc/crun command line into an [`Invocation`].
//!
//! The scanner never rejects anything: it only finds what execguard needs (global
//! `--root`/`--log`/`--log-format`, the subcommand, `--bundle`, `--pid-file`,
//! `--console-socket`, `exec --process`, the container id) and the original argv is
//! forwarded to the real runtime untouched by the delegate. Which tokens are flag
//! values is decided by the table in [`crate::cli::flags`]; its module doc lists the
//! spelling rules (`--f v`, `--f=v`, `-f v`, `-f=v`, `-long`, unknown flags are bools).
//!
//! Shape of a command line, as runc (urfave/cli, `main.go`) and crun (argp,
//! `src/crun.c`) parse it:
//!
//! ```text
//! [global flags] SUBCOMMAND [subcommand flags] CONTAINER-ID [more]
//! ```
//!
//! - Global flags come before the subcommand; the values of value-taking globals are
//!   skipped, so `--root create run` has the subcommand `run`.
//! - `--` ends the flags of the current level: before the subcommand it only ends the
//!   global flags (the next token is the subcommand, whose own flags are still parsed);
//!   after the subcommand every remaining token is a positional.
//! - After the subcommand, a flag is looked up among that subcommand's flags, then
//!   among the globals (newer runc accepts global flags there too).
//! - The first positional after the subcommand is the container id. For `exec` and
//!   `ps`, everything after the id is kept verbatim in `trailing`: it is the command
//!   and its own flags (runc `exec.go` stops flag parsing at the first positional,
//!   `ps.go` passes the rest to ps(1); crun `src/exec.c` parses in order and stops at
//!   the id), so `exec ID sh -c x` does not read `-c` as `--cap`. For other
//!   subcommands flags may still follow the id (urfave/cli reorders them) and only the
//!   remaining positionals go to `trailing` (`kill ID 9` gives `["9"]`).
//!
//! All work is on bytes (`OsStrExt`), so non-UTF-8 paths survive unchanged.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::cli::flags::{self, FlagSpec};

/// Where the runtime's `--log` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// A file path: runc's only form, crun's `file:PATH` or plain `PATH`.
    File(PathBuf),
    /// crun's `journald:ID`.
    Journald(OsString),
    /// crun's `syslog:ID`.
    Syslog(OsString),
}

/// What the scanner found in a runtime command line. Every field is "as far as could
/// be told"; nothing here was validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Index into the scanned args of the subcommand token.
    pub subcommand_index: Option<usize>,
    /// The subcommand token (`create`, `run`, `exec`, ... or anything unknown).
    pub subcommand: Option<OsString>,
    /// Global `--root` (last one wins).
    pub root: Option<OsString>,
    /// Global `--log`; crun's `file:PATH`, `journald:ID`, `syslog:ID`; a plain value is
    /// a file. An empty path (`--log=`, `--log file:`) is `None`, as runc treats it.
    pub log: Option<LogTarget>,
    /// Global `--log-format` (`text` or `json`).
    pub log_format: Option<OsString>,
    /// Global `--debug`.
    pub debug: bool,
    /// Global `--version`/`-v`/`-V` before any subcommand.
    pub version: bool,
    /// `--bundle`/`-b` in every spelling; last one wins; `None` (also for an empty
    /// value) means the current directory.
    pub bundle: Option<PathBuf>,
    /// `create`/`run` `--config` (runc) or `--config`/`-f` (crun): the spec file used
    /// instead of `config.json` in the bundle. A relative path is relative to the
    /// current directory, not the bundle (runc `revisePaths`, crun `realpath` before
    /// `chdir`).
    pub config: Option<PathBuf>,
    /// `--pid-file` (empty value: `None`).
    pub pid_file: Option<PathBuf>,
    /// `--console-socket` (empty value: `None`).
    pub console_socket: Option<PathBuf>,
    /// Where the last `--console-socket` value sits: (index of its token, bytes before the
    /// value in that token: 0 for `--console-socket V`, the flag's length plus `=` inline).
    pub console_socket_at: Option<(usize, usize)>,
    /// `exec --process`/`-p` (empty value: `None`).
    pub process_file: Option<PathBuf>,
    /// The first positional after the subcommand.
    pub container_id: Option<OsString>,
    /// Index into the scanned args of the container id token.
    pub container_id_index: Option<usize>,
    /// `exec` and `ps`: every token after the id, verbatim (for exec, the command when
    /// there is no `--process`); other subcommands: the positionals after the id.
    pub trailing: Vec<OsString>,
    /// `--detach`/`-d` (`--detach=false` clears it).
    pub detach: bool,
    /// `exec --tty`/`-t` (`--tty=false` clears it).
    pub tty: bool,
    /// `exec --user`/`-u` (`UID[:GID]`; last one wins).
    pub exec_user: Option<OsString>,
    /// `exec --env`/`-e`, in order (each appended to the process's environment).
    pub exec_env: Vec<OsString>,
    /// `exec --cwd` (last one wins).
    pub exec_cwd: Option<OsString>,
    /// `exec --additional-gids`/`-g`, in order.
    pub exec_additional_gids: Vec<OsString>,
}

impl Invocation {
    /// Whether the subcommand token is exactly `name`.
    pub fn subcommand_is(&self, name: &str) -> bool {
        self.subcommand
            .as_deref()
            .is_some_and(|s| s.as_bytes() == name.as_bytes())
    }
}

/// Subcommands whose tokens after the container id belong to something else (the
/// exec'd command, ps(1) options) and are never runtime flags.
const VERBATIM_AFTER_ID: &[&str] = &["exec", "ps"];

/// A token seen as a flag: `-name`, `--name`, `-name=value`, `--name=value`.
struct FlagToken<'a> {
    /// 1 or 2.
    dashes: usize,
    /// Everything after the dashes.
    body: &'a [u8],
    /// The part of `body` before the first `=`.
    name: &'a [u8],
    /// The part of `body` after the first `=`.
    inline: Option<&'a [u8]>,
}

/// How one token reads.
enum Token<'a> {
    /// `--`: end of flags.
    EndOfFlags,
    /// A flag.
    Flag(FlagToken<'a>),
    /// Anything else, including `-` and the empty string.
    Positional,
}

fn classify(tok: &[u8]) -> Token<'_> {
    if tok == b"--" {
        return Token::EndOfFlags;
    }
    if tok.len() < 2 || tok.first() != Some(&b'-') {
        return Token::Positional;
    }
    let dashes = if tok.starts_with(b"--") { 2 } else { 1 };
    let body = tok.get(dashes..).unwrap_or_default();
    let (name, inline) = match body.iter().position(|&c| c == b'=') {
        Some(eq) => (
            body.get(..eq).unwrap_or_default(),
            body.get(eq.saturating_add(1)..),
        ),
        None => (body, None),
    };
    Token::Flag(FlagToken {
        dashes,
        body,
        name,
        inline,
    })
}

/// Finds the table entry for a flag token in `scope`, with the value attached to the
/// token if any.
///
/// A single-dash token that is not a known name but starts with a known short value
/// flag carries its value attached, the getopt way crun parses it: `-b/x` is
/// `--bundle /x`.
fn resolve<'a>(
    scope: Option<&str>,
    tok: &FlagToken<'a>,
) -> Option<(&'static FlagSpec, Option<&'a [u8]>)> {
    if let Some(spec) = std::str::from_utf8(tok.name)
        .ok()
        .and_then(|name| flags::lookup(scope, name))
    {
        return Some((spec, tok.inline));
    }
    if tok.dashes != 1 {
        return None;
    }
    let (first, rest) = tok.body.split_first()?;
    if rest.is_empty() || !first.is_ascii_alphanumeric() {
        return None;
    }
    let short = [*first];
    let spec = std::str::from_utf8(&short)
        .ok()
        .and_then(|name| flags::lookup(scope, name))?;
    spec.takes_value.then_some((spec, Some(rest)))
}

/// A bool flag's value written as `--flag=VALUE`: false for the spellings Go's
/// `strconv.ParseBool` and crun's `--tty` treat as false, true otherwise.
fn parse_bool(value: Option<&[u8]>) -> bool {
    match value {
        None => true,
        Some(v) => !matches!(
            v.to_ascii_lowercase().as_slice(),
            b"false" | b"f" | b"0" | b"no"
        ),
    }
}

fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}

fn non_empty_path(value: Option<&[u8]>) -> Option<PathBuf> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| PathBuf::from(os(v)))
}

/// crun's `--log` syntax (`src/libcrun/utils.c` `libcrun_init_logging`):
/// `file:PATH`, `journald:ID`, `syslog:ID`, or a plain path.
fn parse_log(value: &[u8]) -> Option<LogTarget> {
    if let Some(id) = value.strip_prefix(b"journald:") {
        return Some(LogTarget::Journald(os(id)));
    }
    if let Some(id) = value.strip_prefix(b"syslog:") {
        return Some(LogTarget::Syslog(os(id)));
    }
    let path = value.strip_prefix(b"file:").unwrap_or(value);
    non_empty_path(Some(path)).map(LogTarget::File)
}

/// Records what a recognised flag says. `before_subcommand` is true for the global
/// position.
fn apply(inv: &mut Invocation, spec: &FlagSpec, value: Option<&[u8]>, before_subcommand: bool) {
    if spec.is_global() {
        match spec.canonical() {
            "root" => inv.root = value.map(os),
            "log" => inv.log = value.and_then(parse_log),
            "log-format" => inv.log_format = value.map(os),
            "debug" => inv.debug = parse_bool(value),
            "version" if before_subcommand => inv.version = parse_bool(value),
            _ => {}
        }
        return;
    }
    match spec.canonical() {
        "bundle" => inv.bundle = non_empty_path(value),
        "config" => inv.config = non_empty_path(value),
        "pid-file" => inv.pid_file = non_empty_path(value),
        "console-socket" => inv.console_socket = non_empty_path(value),
        "process" => inv.process_file = non_empty_path(value),
        "detach" => inv.detach = parse_bool(value),
        "tty" => inv.tty = parse_bool(value),
        "user" => inv.exec_user = value.map(os),
        "env" => inv.exec_env.extend(value.map(os)),
        "cwd" => inv.exec_cwd = value.map(os),
        "additional-gids" => inv.exec_additional_gids.extend(value.map(os)),
        _ => {}
    }
}

/// Handles the flag token at `args[i]` in `scope` and returns the index of the next
/// unread token.
fn take_flag(
    inv: &mut Invocation,
    args: &[OsString],
    i: usize,
    tok: &FlagToken<'_>,
    scope: Option<&str>,
) -> usize {
    let next = i.saturating_add(1);
    let Some((spec, inline)) = resolve(scope, tok) else {
        // Unknown: assumed to take no value.
        return next;
    };
    if !spec.takes_value {
        apply(inv, spec, inline, scope.is_none());
        return next;
    }
    let console = !spec.is_global() && spec.canonical() == "console-socket";
    match inline {
        Some(v) => {
            apply(inv, spec, Some(v), scope.is_none());
            if console {
                let whole = args.get(i).map_or(0, |t| t.as_bytes().len());
                inv.console_socket_at = Some((i, whole.saturating_sub(v.len())));
            }
            next
        }
        None => {
            let value = args.get(next).map(|v| v.as_bytes());
            apply(inv, spec, value, scope.is_none());
            if console && value.is_some() {
                inv.console_socket_at = Some((next, 0));
            }
            if value.is_some() {
                next.saturating_add(1)
            } else {
                next
            }
        }
    }
}

/// `args` with the `--console-socket` value that `inv` found there replaced by `path`, in
/// the same spelling; `None` when there is none.
pub fn with_console_socket(
    args: &[OsString],
    inv: &Invocation,
    path: &std::path::Path,
) -> Option<Vec<OsString>> {
    let (index, prefix) = inv.console_socket_at?;
    let token = args.get(index)?.as_bytes();
    let mut bytes = token.get(..prefix)?.to_vec();
    bytes.extend_from_slice(path.as_os_str().as_bytes());
    let mut out = args.to_vec();
    *out.get_mut(index)? = os(&bytes);
    Some(out)
}

/// Scans a runtime command line (`args` without argv\[0\]). Never fails and never
/// panics; see the module doc for the rules.
pub fn scan(args: &[OsString]) -> Invocation {
    let mut inv = Invocation::default();
    let mut i = 0;

    // Global flags, up to the subcommand.
    while let Some(arg) = args.get(i) {
        match classify(arg.as_bytes()) {
            Token::EndOfFlags => {
                i = i.saturating_add(1);
                if let Some(sub) = args.get(i) {
                    inv.subcommand_index = Some(i);
                    inv.subcommand = Some(sub.clone());
                    i = i.saturating_add(1);
                }
                break;
            }
            Token::Flag(tok) => i = take_flag(&mut inv, args, i, &tok, None),
            Token::Positional => {
                inv.subcommand_index = Some(i);
                inv.subcommand = Some(arg.clone());
                i = i.saturating_add(1);
                break;
            }
        }
    }
    let Some(sub) = inv.subcommand.clone() else {
        return inv;
    };
    // A non-UTF-8 subcommand is unknown: "" owns no flags, so only globals apply.
    let scope = sub.to_str().unwrap_or("");
    let verbatim_after_id = VERBATIM_AFTER_ID.contains(&scope);

    // Subcommand flags, the container id and the rest.
    let mut flags_ended = false;
    while let Some(arg) = args.get(i) {
        if !flags_ended {
            match classify(arg.as_bytes()) {
                Token::EndOfFlags => {
                    flags_ended = true;
                    i = i.saturating_add(1);
                    continue;
                }
                Token::Flag(tok) => {
                    i = take_flag(&mut inv, args, i, &tok, Some(scope));
                    continue;
                }
                Token::Positional => {}
            }
        }
        if inv.container_id.is_none() {
            inv.container_id = Some(arg.clone());
            inv.container_id_index = Some(i);
            i = i.saturating_add(1);
            if verbatim_after_id {
                inv.trailing = args.get(i..).unwrap_or_default().to_vec();
                break;
            }
            continue;
        }
        inv.trailing.push(arg.clone());
        i = i.saturating_add(1);
    }
    inv
}

/// execguard's own leading flags, found by [`strip_own_flags`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnFlags {
    /// `--execguard-runtime PATH`: the real runtime to exec.
    pub runtime: Option<OsString>,
    /// `--execguard-config PATH`: execguard's config file.
    pub config: Option<OsString>,
    /// `--execguard-version`.
    pub version: bool,
}

/// Removes execguard's own leading flags from `args` (without argv\[0\]) in place:
/// `--execguard-runtime=PATH`, `--execguard-runtime PATH`, `--execguard-config=PATH`,
/// `--execguard-config PATH`, `--execguard-version`.
///
/// Only leading positions (before anything else) are execguard's; the same text later
/// in argv is left alone (it may be a container argument). Repeated flags: the last one
/// wins; a trailing `--execguard-runtime` without a value is removed and gives `None`.
pub fn strip_own_flags(args: &mut Vec<OsString>) -> OwnFlags {
    let mut own = OwnFlags::default();
    let mut n = 0usize;
    while let Some(arg) = args.get(n) {
        let b = arg.as_bytes();
        if b == b"--execguard-version" {
            own.version = true;
            n = n.saturating_add(1);
        } else if let Some(v) = b.strip_prefix(b"--execguard-runtime=") {
            own.runtime = Some(os(v));
            n = n.saturating_add(1);
        } else if let Some(v) = b.strip_prefix(b"--execguard-config=") {
            own.config = Some(os(v));
            n = n.saturating_add(1);
        } else if b == b"--execguard-runtime" {
            own.runtime = args.get(n.saturating_add(1)).cloned();
            n = n.saturating_add(2);
        } else if b == b"--execguard-config" {
            own.config = args.get(n.saturating_add(1)).cloned();
            n = n.saturating_add(2);
        } else {
            break;
        }
    }
    args.drain(..n.min(args.len()));
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::ffi::OsStringExt;
    use std::path::Path;

    const ID: &str = "8f2b4c6d0e1a3b5c7d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";

    fn osb(bytes: &[u8]) -> OsString {
        OsString::from_vec(bytes.to_vec())
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn split(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn p(s: &str) -> Option<PathBuf> {
        Some(PathBuf::from(s))
    }

    fn o(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn exec_identity_flags_are_recorded() {
        let inv = scan(&split(
            "exec --user 1000:1001 -e A=1 --env=PATH=/opt/bin -u 7 --cwd /w -g 5 --additional-gids=6 c1 app --user 9",
        ));
        assert_eq!(inv.exec_user, o("7"));
        assert_eq!(inv.exec_env, argv(&["A=1", "PATH=/opt/bin"]));
        assert_eq!(inv.exec_cwd, o("/w"));
        assert_eq!(inv.exec_additional_gids, argv(&["5", "6"]));
        assert_eq!(inv.trailing, argv(&["app", "--user", "9"]));
    }

    #[test]
    fn the_console_socket_is_replaced_in_its_own_spelling() {
        let new = Path::new("/tmp/eg/console.sock");
        for (line, want) in [
            (
                "--root /r exec --tty --console-socket /tmp/pty1/pty.sock -d c1 /bin/app",
                "--root /r exec --tty --console-socket /tmp/eg/console.sock -d c1 /bin/app",
            ),
            (
                "exec -t --console-socket=/tmp/pty1/pty.sock c1 /bin/app --console-socket x",
                "exec -t --console-socket=/tmp/eg/console.sock c1 /bin/app --console-socket x",
            ),
            (
                "exec -console-socket=/a -console-socket /b c1 sh",
                "exec -console-socket=/a -console-socket /tmp/eg/console.sock c1 sh",
            ),
        ] {
            let args = split(line);
            let inv = scan(&args);
            assert_eq!(
                with_console_socket(&args, &inv, new),
                Some(split(want)),
                "{line}"
            );
        }
        // Not a flag when it follows the id (the exec'd command's own argument), or absent.
        for line in ["exec c1 /bin/app --console-socket /x", "exec --tty c1 sh"] {
            let args = split(line);
            assert_eq!(
                with_console_socket(&args, &scan(&args), new),
                None,
                "{line}"
            );
        }
        // A flag without its value keeps the argv as it is.
        let args = split("exec --console-socket");
        assert_eq!(with_console_socket(&args, &scan(&args), new), None);
    }

    #[test]
    fn empty_argv() {
        assert_eq!(scan(&[]), Invocation::default());
    }

    #[test]
    fn every_bundle_spelling() {
        for cmd in ["create", "run", "restore"] {
            for spelling in [
                vec!["--bundle", "x"],
                vec!["--bundle=x"],
                vec!["-b", "x"],
                vec!["-b=x"],
                vec!["-bundle", "x"],
                vec!["-bundle=x"],
                vec!["--b", "x"],
                vec!["--b=x"],
            ] {
                let mut words = vec![cmd];
                words.extend(&spelling);
                words.push("ID");
                let inv = scan(&argv(&words));
                assert_eq!(inv.subcommand, o(cmd), "{words:?}");
                assert_eq!(inv.bundle, p("x"), "{words:?}");
                assert_eq!(inv.container_id, o("ID"), "{words:?}");
                assert!(inv.trailing.is_empty(), "{words:?}");
            }
        }
    }

    #[test]
    fn bundle_named_create() {
        let inv = scan(&argv(&["create", "--bundle", "create", "ID"]));
        assert_eq!(inv.subcommand_index, Some(0));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.bundle, p("create"));
        assert_eq!(inv.container_id, o("ID"));

        let inv = scan(&argv(&["run", "--bundle", "create", "create"]));
        assert_eq!(inv.subcommand, o("run"));
        assert_eq!(inv.bundle, p("create"));
        assert_eq!(inv.container_id, o("create"));
    }

    #[test]
    fn root_named_create_is_not_the_subcommand() {
        let inv = scan(&argv(&["--root", "create", "run", "ID"]));
        assert_eq!(inv.root, o("create"));
        assert_eq!(inv.subcommand_index, Some(2));
        assert_eq!(inv.subcommand, o("run"));
        assert_eq!(inv.container_id, o("ID"));
    }

    #[test]
    fn bundle_last_one_wins_and_empty_means_cwd() {
        let inv = scan(&argv(&["create", "-b", "a", "--bundle=b", "ID"]));
        assert_eq!(inv.bundle, p("b"));
        let inv = scan(&argv(&["create", "-b", "a", "--bundle=", "ID"]));
        assert_eq!(inv.bundle, None);
        let inv = scan(&argv(&["create", "ID"]));
        assert_eq!(inv.bundle, None);
    }

    #[test]
    fn docker_create_verbatim() {
        let bundle = format!("/run/containerd/io.containerd.runtime.v2.task/moby/{ID}");
        let line = format!(
            "--root /var/run/docker/runtime-runc/moby --log {bundle}/log.json --log-format json \
             create --bundle {bundle} --pid-file {bundle}/init.pid {ID}"
        );
        let args = split(&line);
        let inv = scan(&args);
        assert_eq!(inv.root, o("/var/run/docker/runtime-runc/moby"));
        assert_eq!(
            inv.log,
            Some(LogTarget::File(PathBuf::from(format!("{bundle}/log.json"))))
        );
        assert_eq!(inv.log_format, o("json"));
        assert_eq!(inv.subcommand_index, Some(6));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.bundle.as_deref(), Some(Path::new(&bundle)));
        assert_eq!(
            inv.pid_file,
            Some(PathBuf::from(format!("{bundle}/init.pid")))
        );
        assert_eq!(inv.console_socket, None);
        assert_eq!(inv.container_id, o(ID));
        assert_eq!(inv.container_id_index, Some(args.len() - 1));
        assert!(inv.trailing.is_empty());
        assert!(!inv.version && !inv.detach && !inv.tty);

        // With a TTY.
        let line = format!(
            "--root /var/run/docker/runtime-runc/moby --log {bundle}/log.json --log-format json \
             create --bundle {bundle} --pid-file {bundle}/init.pid \
             --console-socket /tmp/pty123/pty.sock {ID}"
        );
        let inv = scan(&split(&line));
        assert_eq!(inv.console_socket, p("/tmp/pty123/pty.sock"));
        assert_eq!(inv.container_id, o(ID));
    }

    #[test]
    fn docker_other_verbs_verbatim() {
        let g = "--root /var/run/docker/runtime-runc/moby \
                 --log /run/containerd/io.containerd.runtime.v2.task/moby/ID/log.json \
                 --log-format json";
        let inv = scan(&split(&format!("{g} start {ID}")));
        assert_eq!(inv.subcommand, o("start"));
        assert_eq!(inv.container_id, o(ID));

        let inv = scan(&split(&format!("{g} kill {ID} 15")));
        assert_eq!(inv.subcommand, o("kill"));
        assert_eq!(inv.container_id, o(ID));
        assert_eq!(inv.trailing, argv(&["15"]));

        let inv = scan(&split(&format!("{g} kill --all {ID} 9")));
        assert_eq!(inv.container_id, o(ID));
        assert_eq!(inv.trailing, argv(&["9"]));

        let inv = scan(&split(&format!("{g} delete --force {ID}")));
        assert_eq!(inv.subcommand, o("delete"));
        assert_eq!(inv.container_id, o(ID));

        let inv = scan(&split(&format!("{g} ps --format json {ID}")));
        assert_eq!(inv.subcommand, o("ps"));
        assert_eq!(inv.container_id, o(ID));
        assert!(inv.trailing.is_empty());

        let inv = scan(&split(&format!("{g} update --resources - {ID}")));
        assert_eq!(inv.subcommand, o("update"));
        assert_eq!(inv.container_id, o(ID));

        for verb in ["pause", "resume", "state"] {
            let inv = scan(&split(&format!("{g} {verb} {ID}")));
            assert_eq!(inv.subcommand, o(verb));
            assert_eq!(inv.container_id, o(ID));
        }

        let inv = scan(&split(&format!("{g} features")));
        assert_eq!(inv.subcommand, o("features"));
        assert_eq!(inv.container_id, None);
    }

    #[test]
    fn docker_exec_verbatim() {
        let bundle = format!("/run/containerd/io.containerd.runtime.v2.task/moby/{ID}");
        let line = format!(
            "--root /var/run/docker/runtime-runc/moby --log {bundle}/log.json --log-format json \
             exec --process /tmp/runc-process123 --console-socket /tmp/pty9/pty.sock --detach \
             --pid-file {bundle}/abc.pid {ID}"
        );
        let inv = scan(&split(&line));
        assert_eq!(inv.subcommand, o("exec"));
        assert_eq!(inv.process_file, p("/tmp/runc-process123"));
        assert_eq!(inv.console_socket, p("/tmp/pty9/pty.sock"));
        assert!(inv.detach);
        assert_eq!(
            inv.pid_file,
            Some(PathBuf::from(format!("{bundle}/abc.pid")))
        );
        assert_eq!(inv.container_id, o(ID));
        assert!(inv.trailing.is_empty());
    }

    #[test]
    fn containerd_go_runc_globals() {
        let line = format!(
            "--root /run/containerd/runc/default --debug \
             --log /run/containerd/io.containerd.runtime.v2.task/default/{ID}/log.json \
             --log-format json --criu /usr/sbin/criu --systemd-cgroup --rootless=true \
             create --bundle /b --pid-file /b/init.pid --no-pivot --no-new-keyring \
             --preserve-fds 2 {ID}"
        );
        let inv = scan(&split(&line));
        assert_eq!(inv.root, o("/run/containerd/runc/default"));
        assert!(inv.debug);
        assert_eq!(inv.log_format, o("json"));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.bundle, p("/b"));
        assert_eq!(inv.pid_file, p("/b/init.pid"));
        assert_eq!(inv.container_id, o(ID));
        assert!(inv.trailing.is_empty());
    }

    #[test]
    fn podman_no_globals() {
        let line = format!(
            "create --bundle /var/lib/containers/storage/overlay-containers/{ID}/userdata \
             --pid-file /run/containers/storage/overlay-containers/{ID}/userdata/pidfile {ID}"
        );
        let inv = scan(&split(&line));
        assert_eq!(inv.root, None);
        assert_eq!(inv.log, None);
        assert_eq!(inv.subcommand_index, Some(0));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(
            inv.bundle,
            Some(PathBuf::from(format!(
                "/var/lib/containers/storage/overlay-containers/{ID}/userdata"
            )))
        );
        assert_eq!(inv.container_id, o(ID));

        let inv = scan(&split(&format!(
            "exec --pid-file /x/exec.pid --process /x/proc.json --detach {ID}"
        )));
        assert_eq!(inv.process_file, p("/x/proc.json"));
        assert_eq!(inv.pid_file, p("/x/exec.pid"));
        assert!(inv.detach);
        assert_eq!(inv.container_id, o(ID));
    }

    #[test]
    fn dockerd_runtime_args_prepended() {
        let line = format!(
            "--debug --root /custom --root /var/run/docker/runtime-runc/moby \
             --log /l/log.json --log-format json create --bundle /b {ID}"
        );
        let inv = scan(&split(&line));
        assert!(inv.debug);
        assert_eq!(inv.root, o("/var/run/docker/runtime-runc/moby"));
        assert_eq!(inv.subcommand_index, Some(9));
        assert_eq!(inv.bundle, p("/b"));
        assert_eq!(inv.container_id, o(ID));
    }

    #[test]
    fn crun_log_targets() {
        let inv = scan(&argv(&["--log=file:/x", "create", "ID"]));
        assert_eq!(inv.log, Some(LogTarget::File(PathBuf::from("/x"))));
        let inv = scan(&argv(&["--log", "journald:abc", "create", "ID"]));
        assert_eq!(inv.log, Some(LogTarget::Journald(OsString::from("abc"))));
        let inv = scan(&argv(&["--log", "syslog:tag", "create", "ID"]));
        assert_eq!(inv.log, Some(LogTarget::Syslog(OsString::from("tag"))));
        let inv = scan(&argv(&["--log", "/plain", "create", "ID"]));
        assert_eq!(inv.log, Some(LogTarget::File(PathBuf::from("/plain"))));
        let inv = scan(&argv(&["--log=", "create", "ID"]));
        assert_eq!(inv.log, None);
        assert_eq!(inv.subcommand, o("create"));
        let inv = scan(&argv(&["--log", "file:", "create", "ID"]));
        assert_eq!(inv.log, None);
        assert_eq!(inv.subcommand, o("create"));
    }

    #[test]
    fn crun_globals() {
        let inv = scan(&argv(&[
            "--cgroup-manager",
            "systemd",
            "--log-level",
            "debug",
            "create",
            "--config",
            "/other.json",
            "ID",
        ]));
        assert_eq!(inv.subcommand_index, Some(4));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.config, p("/other.json"));
        assert_eq!(inv.container_id, o("ID"));

        let inv = scan(&argv(&["run", "-f", "spec.json", "-b", "/b", "ID"]));
        assert_eq!(inv.config, p("spec.json"));
        assert_eq!(inv.bundle, p("/b"));
        assert_eq!(inv.container_id, o("ID"));
    }

    #[test]
    fn bool_globals_with_values() {
        let inv = scan(&argv(&["--rootless=true", "create", "ID"]));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.container_id, o("ID"));
        // `--rootless` takes a value: the next token is swallowed.
        let inv = scan(&argv(&["--rootless", "true", "create", "ID"]));
        assert_eq!(inv.subcommand_index, Some(2));
        assert_eq!(inv.subcommand, o("create"));
        // `--systemd-cgroup` is a bool: the next token is the subcommand.
        let inv = scan(&argv(&["--systemd-cgroup=true", "create", "ID"]));
        assert_eq!(inv.subcommand, o("create"));
        let inv = scan(&argv(&["--systemd-cgroup", "create", "ID"]));
        assert_eq!(inv.subcommand_index, Some(1));
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&["--debug=false", "create", "ID"]));
        assert!(!inv.debug);
    }

    #[test]
    fn exec_with_process_file() {
        let inv = scan(&argv(&[
            "exec",
            "--process",
            "/tmp/p",
            "--detach",
            "--pid-file",
            "f",
            "ID",
        ]));
        assert_eq!(inv.subcommand, o("exec"));
        assert_eq!(inv.process_file, p("/tmp/p"));
        assert!(inv.detach);
        assert_eq!(inv.pid_file, p("f"));
        assert_eq!(inv.container_id, o("ID"));
        assert_eq!(inv.container_id_index, Some(6));
        assert!(inv.trailing.is_empty());

        let inv = scan(&argv(&["exec", "-p=/tmp/q", "-d", "ID"]));
        assert_eq!(inv.process_file, p("/tmp/q"));
        assert!(inv.detach);
    }

    #[test]
    fn exec_trailing_command_keeps_its_flags() {
        let inv = scan(&argv(&[
            "exec", "-t", "-e", "A=1", "--cwd", "/", "ID", "sh", "-c", "x", "--bundle", "y",
        ]));
        assert_eq!(inv.subcommand, o("exec"));
        assert!(inv.tty);
        assert_eq!(inv.container_id, o("ID"));
        assert_eq!(inv.trailing, argv(&["sh", "-c", "x", "--bundle", "y"]));
        assert_eq!(inv.bundle, None);
        assert_eq!(inv.process_file, None);

        // `--` before the id; the command keeps a `--` of its own.
        let inv = scan(&argv(&["exec", "--", "ID", "--", "ls"]));
        assert_eq!(inv.container_id, o("ID"));
        assert_eq!(inv.trailing, argv(&["--", "ls"]));

        // crun's `--tty=false`.
        let inv = scan(&argv(&["exec", "--tty=false", "ID", "true"]));
        assert!(!inv.tty);
        assert_eq!(inv.trailing, argv(&["true"]));
    }

    #[test]
    fn ps_options_after_id_are_verbatim() {
        let inv = scan(&argv(&["ps", "ID", "-f", "-e"]));
        assert_eq!(inv.container_id, o("ID"));
        assert_eq!(inv.trailing, argv(&["-f", "-e"]));
    }

    #[test]
    fn flags_after_id_still_count_outside_exec() {
        let inv = scan(&argv(&["create", "ID", "--bundle", "/late", "extra"]));
        assert_eq!(inv.container_id, o("ID"));
        assert_eq!(inv.bundle, p("/late"));
        assert_eq!(inv.trailing, argv(&["extra"]));
    }

    #[test]
    fn end_of_flags() {
        let inv = scan(&argv(&["--root", "/r", "--", "create", "-b", "/b", "ID"]));
        assert_eq!(inv.subcommand_index, Some(3));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.bundle, p("/b"));
        assert_eq!(inv.container_id, o("ID"));

        let inv = scan(&argv(&["--", "--weird-verb"]));
        assert_eq!(inv.subcommand, o("--weird-verb"));

        let inv = scan(&argv(&["create", "--", "-b", "x"]));
        assert_eq!(inv.bundle, None);
        assert_eq!(inv.container_id, o("-b"));
        assert_eq!(inv.trailing, argv(&["x"]));

        let inv = scan(&argv(&["--"]));
        assert_eq!(inv, Invocation::default());
    }

    #[test]
    fn version_flags() {
        for v in ["-v", "--version", "-V", "-version"] {
            let inv = scan(&argv(&[v]));
            assert!(inv.version, "{v}");
            assert_eq!(inv.subcommand, None, "{v}");
        }
        // After the subcommand `-v` is not the global version flag.
        let inv = scan(&argv(&["state", "-v", "ID"]));
        assert!(!inv.version);
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&["--root", "-v", "state", "ID"]));
        assert!(!inv.version);
        assert_eq!(inv.root, o("-v"));
    }

    #[test]
    fn non_utf8_bundle_survives() {
        let bundle = osb(b"/run/b\xff\xfe/x");
        let id = osb(b"id\x80");
        let args = vec![
            OsString::from("create"),
            OsString::from("--bundle"),
            bundle.clone(),
            id.clone(),
        ];
        let inv = scan(&args);
        assert_eq!(inv.bundle, Some(PathBuf::from(bundle.clone())));
        assert_eq!(inv.container_id, Some(id));

        let mut inline = b"--bundle=".to_vec();
        inline.extend_from_slice(bundle.as_bytes());
        let inv = scan(&[
            OsString::from("run"),
            OsString::from_vec(inline),
            OsString::from("ID"),
        ]);
        assert_eq!(inv.bundle, Some(PathBuf::from(bundle)));

        // A non-UTF-8 subcommand only knows globals.
        let inv = scan(&[
            osb(b"cr\xffate"),
            OsString::from("--log"),
            OsString::from("/l"),
            OsString::from("ID"),
        ]);
        assert_eq!(inv.log, Some(LogTarget::File(PathBuf::from("/l"))));
        assert_eq!(inv.container_id, o("ID"));
    }

    #[test]
    fn trailing_flag_without_value() {
        let inv = scan(&argv(&["create", "--bundle"]));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.bundle, None);
        assert_eq!(inv.container_id, None);

        let inv = scan(&argv(&["--root"]));
        assert_eq!(inv.root, None);
        assert_eq!(inv.subcommand, None);

        let inv = scan(&argv(&["--log"]));
        assert_eq!(inv.log, None);

        let inv = scan(&argv(&["exec", "ID2", "--process"]));
        assert_eq!(inv.container_id, o("ID2"));
        assert_eq!(inv.trailing, argv(&["--process"]));
        assert_eq!(inv.process_file, None);

        let inv = scan(&argv(&["exec", "--process"]));
        assert_eq!(inv.process_file, None);
        assert_eq!(inv.container_id, None);
    }

    #[test]
    fn unknown_flags_are_bools() {
        let inv = scan(&argv(&["--future-flag", "create", "--new-bool", "ID"]));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&["--future=1", "create", "--x=y", "ID"]));
        assert_eq!(inv.subcommand, o("create"));
        assert_eq!(inv.container_id, o("ID"));
        // Combined short bools are one unknown bool flag.
        let inv = scan(&argv(&["run", "-dt", "ID"]));
        assert_eq!(inv.container_id, o("ID"));
        assert!(!inv.detach);
    }

    #[test]
    fn go_runc_single_dash_flags() {
        let inv = scan(&argv(&[
            "restore",
            "-no-subreaper",
            "-detach",
            "-bundle",
            "/b",
            "-image-path",
            "/img",
            "-work-path",
            "/w",
            "-pid-file",
            "/p",
            "ID",
        ]));
        assert_eq!(inv.subcommand, o("restore"));
        assert!(inv.detach);
        assert_eq!(inv.bundle, p("/b"));
        assert_eq!(inv.pid_file, p("/p"));
        assert_eq!(inv.container_id, o("ID"));
        assert!(inv.trailing.is_empty());
    }

    #[test]
    fn getopt_attached_short_values() {
        let inv = scan(&argv(&["create", "-b/x", "ID"]));
        assert_eq!(inv.bundle, p("/x"));
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&["exec", "-p/tmp/p", "ID"]));
        assert_eq!(inv.process_file, p("/tmp/p"));
        assert_eq!(inv.container_id, o("ID"));
        // Not for double-dash tokens, and not for bool shorts.
        let inv = scan(&argv(&["create", "--bx", "ID"]));
        assert_eq!(inv.bundle, None);
        assert_eq!(inv.container_id, o("ID"));
    }

    #[test]
    fn value_flags_of_other_subcommands_are_skipped() {
        let inv = scan(&argv(&["list", "--format", "json", "-q"]));
        assert_eq!(inv.container_id, None);
        let inv = scan(&argv(&[
            "update",
            "--memory",
            "1g",
            "--pids-limit",
            "5",
            "ID",
        ]));
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&["events", "--interval", "5s", "ID"]));
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&[
            "checkpoint",
            "--image-path",
            "/i",
            "--page-server",
            "h:1",
            "ID",
        ]));
        assert_eq!(inv.container_id, o("ID"));
        let inv = scan(&argv(&["spec", "-b", "/s", "--rootless"]));
        assert_eq!(inv.bundle, p("/s"));
        assert_eq!(inv.container_id, None);
        let inv = scan(&argv(&["delete", "-f", "ID"]));
        assert_eq!(inv.container_id, o("ID"));
    }

    #[test]
    fn globals_after_the_subcommand() {
        let inv = scan(&argv(&["create", "--root", "/late", "--log", "/l", "ID"]));
        assert_eq!(inv.root, o("/late"));
        assert_eq!(inv.log, Some(LogTarget::File(PathBuf::from("/l"))));
        assert_eq!(inv.container_id, o("ID"));
    }

    #[test]
    fn strip_own_flags_all_forms() {
        let mut args = argv(&[
            "--execguard-runtime=/usr/bin/runc",
            "--execguard-config",
            "/etc/eg.json",
            "--execguard-version",
            "--root",
            "/r",
            "create",
            "ID",
        ]);
        let own = strip_own_flags(&mut args);
        assert_eq!(own.runtime, o("/usr/bin/runc"));
        assert_eq!(own.config, o("/etc/eg.json"));
        assert!(own.version);
        assert_eq!(args, argv(&["--root", "/r", "create", "ID"]));

        let mut args = argv(&[
            "--execguard-runtime",
            "/usr/bin/crun",
            "--execguard-config=/c.json",
            "create",
        ]);
        let own = strip_own_flags(&mut args);
        assert_eq!(own.runtime, o("/usr/bin/crun"));
        assert_eq!(own.config, o("/c.json"));
        assert!(!own.version);
        assert_eq!(args, argv(&["create"]));
    }

    #[test]
    fn strip_own_flags_only_leading() {
        let mut args = argv(&[
            "--root",
            "/r",
            "--execguard-runtime=/evil",
            "exec",
            "ID",
            "--execguard-runtime",
            "/x",
        ]);
        let before = args.clone();
        let own = strip_own_flags(&mut args);
        assert_eq!(own, OwnFlags::default());
        assert_eq!(args, before);

        let mut args = argv(&["--execguard-version", "exec", "ID", "--execguard-version"]);
        let own = strip_own_flags(&mut args);
        assert!(own.version);
        assert_eq!(args, argv(&["exec", "ID", "--execguard-version"]));
    }

    #[test]
    fn strip_own_flags_edge_cases() {
        let mut args: Vec<OsString> = Vec::new();
        assert_eq!(strip_own_flags(&mut args), OwnFlags::default());

        let mut args = argv(&["--execguard-runtime"]);
        let own = strip_own_flags(&mut args);
        assert_eq!(own.runtime, None);
        assert!(args.is_empty());

        let mut args = argv(&[
            "--execguard-runtime=/a",
            "--execguard-runtime",
            "/b",
            "state",
        ]);
        let own = strip_own_flags(&mut args);
        assert_eq!(own.runtime, o("/b"));
        assert_eq!(args, argv(&["state"]));

        // Not a prefix match on other names.
        let mut args = argv(&["--execguard-runtimes=/a", "state"]);
        assert_eq!(strip_own_flags(&mut args), OwnFlags::default());
        assert_eq!(args.len(), 2);

        let mut args = vec![OsString::from("--execguard-runtime"), osb(b"/opt/r\xff")];
        let own = strip_own_flags(&mut args);
        assert_eq!(
            own.runtime.as_deref().map(OsStr::as_bytes),
            Some(&b"/opt/r\xff"[..])
        );
        assert!(args.is_empty());
    }

    /// Tokens that exercise the interesting paths, mixed with arbitrary bytes.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(vec![
                "--",
                "-",
                "",
                "create",
                "run",
                "exec",
                "ps",
                "kill",
                "--root",
                "--log",
                "--log=",
                "--log=file:",
                "-b",
                "--bundle",
                "-bundle=",
                "--bundle=x",
                "-p",
                "--process",
                "-d",
                "-t",
                "--tty=false",
                "-v",
                "-V",
                "--rootless",
                "--execguard-runtime",
                "--execguard-config=",
                "--execguard-version",
                "-b=",
                "-=",
                "--=",
                "---",
                "-\u{e9}",
                "-bé",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    fn to_args(raw: Vec<Vec<u8>>) -> Vec<OsString> {
        raw.into_iter().map(OsString::from_vec).collect()
    }

    proptest! {
        #[test]
        fn scan_never_panics_and_indices_agree(raw in prop::collection::vec(token(), 0..14)) {
            let args = to_args(raw);
            let inv = scan(&args);
            if let Some(i) = inv.subcommand_index {
                prop_assert_eq!(args.get(i), inv.subcommand.as_ref());
            } else {
                prop_assert!(inv.subcommand.is_none());
                prop_assert!(inv.container_id.is_none());
            }
            if let Some(k) = inv.container_id_index {
                prop_assert!(inv.subcommand_index.is_some_and(|i| i < k));
                prop_assert_eq!(args.get(k), inv.container_id.as_ref());
                if inv.subcommand_is("exec") || inv.subcommand_is("ps") {
                    prop_assert_eq!(&inv.trailing[..], &args[k + 1..]);
                }
            } else {
                prop_assert!(inv.container_id.is_none());
                prop_assert!(inv.trailing.is_empty());
            }
        }

        #[test]
        fn leading_root_does_not_change_the_rest(
            raw in prop::collection::vec(token(), 0..10),
            root in prop::collection::vec(any::<u8>(), 0..6),
        ) {
            let mut tail = vec![OsString::from("create")];
            tail.extend(to_args(raw));
            let plain = scan(&tail);
            let mut with_root = vec![OsString::from("--root"), OsString::from_vec(root)];
            with_root.extend(tail.iter().cloned());
            let rooted = scan(&with_root);
            prop_assert_eq!(rooted.subcommand_index, Some(2));
            prop_assert_eq!(&rooted.subcommand, &plain.subcommand);
            prop_assert_eq!(&rooted.bundle, &plain.bundle);
            prop_assert_eq!(&rooted.container_id, &plain.container_id);
            prop_assert_eq!(&rooted.trailing, &plain.trailing);
        }

        #[test]
        fn strip_own_flags_never_panics_and_keeps_a_suffix(
            raw in prop::collection::vec(token(), 0..10),
        ) {
            let original = to_args(raw);
            let mut args = original.clone();
            let _ = strip_own_flags(&mut args);
            prop_assert!(original.ends_with(&args));
            // What is left never starts with one of execguard's flags.
            let mut again = args.clone();
            prop_assert_eq!(strip_own_flags(&mut again), OwnFlags::default());
            prop_assert_eq!(again, args);
        }
    }
}
