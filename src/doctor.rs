//! `execguard doctor`: what this host can run.
//!
//! This module owns the host report: the native machine and the compat machine the kernel
//! allows ([`Host`]), the binfmt_misc mount and every handler in it (flags and what they mean
//! for containers, the architecture each emulates, whether its interpreter exists on the host,
//! handlers that shadow each other), the OCI runtimes on PATH, and a verdict per platform
//! (`native`, `emulated`, `unsupported`, or `unknown` when binfmt_misc cannot be read) with the
//! one command that would fix it.
//!
//! Verdicts mirror the kernel's choice for an ELF executable of each platform: fs/exec.c
//! `search_binary_handler` tries binfmt_elf first (native and compat triples, see
//! [`Host::runs_natively`]), then binfmt_misc, where fs/binfmt_misc.c `check_file`
//! (`search_binfmt_handler` in newer kernels) takes the first enabled entry in match order
//! whose magic matches the header ([`binfmt::select`]). A minimal ELF header is built per
//! platform and run through that same selection.
//!
//! Exit codes (for CI and node health checks):
//! - `0`: every listed platform is native, or emulated by a handler with the F flag;
//! - `1`: some platform is unsupported, or emulated by a handler without F (usable only in
//!   images that contain the interpreter at the registered path);
//! - `2`: the host could not be inspected (binfmt_misc unreadable) or the arguments are wrong.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::host::binfmt::{self, Entry, Matcher, State};
use crate::host::{Host, em};
use crate::inspect::elf::{Class, Endian};

/// MIPS (elf.h `EM_MIPS`).
const EM_MIPS: u16 = 8;

/// How long one `--version` call of a runtime may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(3);

/// Cap on the bytes read from a runtime's `--version` output.
const VERSION_READ_CAP: u64 = 4096;

/// The exit codes, for `--help`.
const EXIT_HELP: &str = "Exit status:\n  \
0  every listed platform is native, or emulated by a binfmt_misc handler with the F flag\n  \
1  some platform is unsupported, or emulated by a handler without F (usable only in images that contain the interpreter)\n  \
2  the host could not be inspected (binfmt_misc unreadable) or the arguments are wrong";

#[derive(Parser, Debug)]
#[command(
    name = "execguard doctor",
    about = "Report what this host can run: native and compat machines, binfmt_misc handlers, OCI runtimes, and a verdict per platform with the command that fixes it.",
    after_help = EXIT_HELP
)]
struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Give verdicts (and the exit status) for these platforms only (repeatable; default:
    /// linux/amd64, linux/386, linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x,
    /// linux/riscv64, linux/mips64le).
    #[arg(long = "platform", value_name = "PLATFORM")]
    platforms: Vec<String>,
    /// Read binfmt_misc from this directory.
    #[arg(long, default_value = binfmt::DEFAULT_ROOT)]
    binfmt_root: PathBuf,
    /// Report as if the host were this machine (uname -m); for testing.
    #[arg(long, hide = true)]
    host_machine: Option<String>,
    /// With --host-machine: the compat machine (i386 on x86_64, arm on aarch64) is not allowed.
    #[arg(long, hide = true)]
    no_compat: bool,
    /// Docker's daemon.json, read to tell whether Docker runs execguard.
    #[arg(long, value_name = "FILE", default_value = "/etc/docker/daemon.json")]
    docker_config: PathBuf,
    /// containerd's config.toml.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/containerd/config.toml"
    )]
    containerd_config: PathBuf,
    /// podman's containers.conf.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/containers/containers.conf"
    )]
    podman_config: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// A platform the doctor gives a verdict for.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// OCI platform string (`linux/arm64`).
    pub name: &'static str,
    /// ELF class of its executables.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// e_machine.
    pub machine: u16,
    /// The architecture name `tonistiigi/binfmt --install` takes.
    pub binfmt_arch: &'static str,
}

/// The platforms reported, in order.
pub const PLATFORMS: &[Platform] = &[
    p(
        "linux/amd64",
        Class::Elf64,
        Endian::Little,
        em::X86_64,
        "amd64",
    ),
    p("linux/386", Class::Elf32, Endian::Little, em::I386, "386"),
    p(
        "linux/arm64",
        Class::Elf64,
        Endian::Little,
        em::AARCH64,
        "arm64",
    ),
    p("linux/arm/v7", Class::Elf32, Endian::Little, em::ARM, "arm"),
    p(
        "linux/ppc64le",
        Class::Elf64,
        Endian::Little,
        em::PPC64,
        "ppc64le",
    ),
    p("linux/s390x", Class::Elf64, Endian::Big, em::S390, "s390x"),
    p(
        "linux/riscv64",
        Class::Elf64,
        Endian::Little,
        em::RISCV,
        "riscv64",
    ),
    p(
        "linux/mips64le",
        Class::Elf64,
        Endian::Little,
        EM_MIPS,
        "mips64le",
    ),
];

const fn p(
    name: &'static str,
    class: Class,
    endian: Endian,
    machine: u16,
    binfmt_arch: &'static str,
) -> Platform {
    Platform {
        name,
        class,
        endian,
        machine,
        binfmt_arch,
    }
}

/// Extra (class, endian, machine) triples tried when looking for shadowing handlers.
const EXTRA_TRIPLES: &[(Class, Endian, u16)] = &[
    (Class::Elf64, Endian::Big, em::AARCH64),
    (Class::Elf32, Endian::Big, em::ARM),
    (Class::Elf32, Endian::Little, em::X86_64),
    (Class::Elf64, Endian::Big, em::PPC64),
    (Class::Elf32, Endian::Big, 20),
    (Class::Elf32, Endian::Big, em::S390),
    (Class::Elf32, Endian::Little, em::RISCV),
    (Class::Elf64, Endian::Big, EM_MIPS),
    (Class::Elf32, Endian::Big, EM_MIPS),
    (Class::Elf32, Endian::Little, EM_MIPS),
    (Class::Elf64, Endian::Little, em::LOONGARCH),
];

/// A minimal ELF header (64 bytes, zero-padded to the 256 bytes the kernel matches against)
/// of an executable of `e_type` (2 = ET_EXEC, 3 = ET_DYN) for the triple.
pub fn elf_header(class: Class, endian: Endian, machine: u16, e_type: u16) -> Vec<u8> {
    let mut h = vec![0u8; binfmt::BINPRM_BUF_SIZE];
    let (t, m, v) = match endian {
        Endian::Little => (
            e_type.to_le_bytes(),
            machine.to_le_bytes(),
            1u32.to_le_bytes(),
        ),
        Endian::Big => (
            e_type.to_be_bytes(),
            machine.to_be_bytes(),
            1u32.to_be_bytes(),
        ),
    };
    let ident = [
        0x7f,
        b'E',
        b'L',
        b'F',
        match class {
            Class::Elf32 => 1,
            Class::Elf64 => 2,
        },
        match endian {
            Endian::Little => 1,
            Endian::Big => 2,
        },
        1,
    ];
    for (slot, b) in h.iter_mut().zip(ident) {
        *slot = b;
    }
    for (i, b) in [(16, t[0]), (17, t[1]), (18, m[0]), (19, m[1])] {
        if let Some(slot) = h.get_mut(i) {
            *slot = b;
        }
    }
    for (i, b) in v.iter().enumerate() {
        if let Some(slot) = h.get_mut(20 + i) {
            *slot = *b;
        }
    }
    h
}

fn triple_name(class: Class, endian: Endian, machine: u16) -> String {
    let cls = match class {
        Class::Elf32 => "ELF32",
        Class::Elf64 => "ELF64",
    };
    let end = match endian {
        Endian::Little => "LE",
        Endian::Big => "BE",
    };
    let name = PLATFORMS
        .iter()
        .find(|p| p.class == class && p.endian == endian && p.machine == machine)
        .map(|p| p.name.to_string())
        .unwrap_or_else(|| format!("e_machine {machine}"));
    format!("{name} ({cls} {end})")
}

/// The compat machine and whether the kernel allows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Compat {
    /// The compat platform (`linux/386` on x86_64, `linux/arm/v7` on aarch64), if the machine
    /// has one.
    pub platform: Option<String>,
    /// Whether binfmt_elf's compat loader takes it.
    pub allowed: bool,
    /// Why not, when known.
    pub note: Option<String>,
}

/// One binfmt_misc handler as reported.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Handler {
    /// Entry name.
    pub name: String,
    /// Whether the entry is switched on.
    pub enabled: bool,
    /// `magic` or `extension`.
    pub kind: &'static str,
    /// Interpreter path (escaped when not printable UTF-8).
    pub interpreter: String,
    /// Flag letters (subset of `POCF`).
    pub flags: String,
    /// What the flags mean for containers.
    pub flags_meaning: String,
    /// Whether F is set.
    pub fix_binary: bool,
    /// The architecture it emulates, when it can be told.
    pub arch: Option<&'static str>,
    /// Whether the interpreter exists on the host (for F handlers it was opened at
    /// registration, so a later removal does not break them).
    pub interpreter_on_host: bool,
    /// Enabled handlers earlier in match order that take the same ELF headers.
    pub shadowed_by: Vec<String>,
    /// The ELF loader the interpreter names (PT_INTERP) when it is dynamically linked: the
    /// kernel opens that loader, and the loader its libraries, inside each container at exec
    /// time, F or not (`qemu-user-static` is static for this reason).
    pub interpreter_loader: Option<String>,
}

/// PT_INTERP of a host file, when it is a dynamically linked ELF (bounded, non-blocking).
fn loader_of(path: &Path) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut header = vec![0u8; 4096];
    let n = {
        use std::os::unix::fs::FileExt;
        f.read_at(&mut header, 0).ok()?
    };
    header.truncate(n);
    let info = crate::inspect::elf::parse(&header, &f)?;
    info.interp.map(|i| show(OsStr::from_bytes(&i)))
}

/// Two enabled handlers that both match the ELF header of one architecture.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Shadow {
    /// The architecture header both match.
    pub arch: String,
    /// The handler the kernel takes (first in match order).
    pub winner: String,
    /// The handler that never sees these files.
    pub shadowed: String,
}

/// binfmt_misc as reported.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BinfmtReport {
    /// The directory read.
    pub root: String,
    /// Whether binfmt_misc is mounted there.
    pub mounted: bool,
    /// Whether it could be read (`false` only for an unreadable mount).
    pub readable: bool,
    /// The global switch.
    pub enabled: bool,
    /// The command that mounts it, when not mounted.
    pub mount_command: Option<String>,
    /// Why it could not be read.
    pub error: Option<String>,
    /// Handlers in the kernel's match order.
    pub handlers: Vec<Handler>,
    /// Entry files that could not be parsed.
    pub skipped: Vec<String>,
    /// Handlers that shadow each other.
    pub shadows: Vec<Shadow>,
}

/// An OCI runtime found on PATH.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// `runc`, `crun` or `youki`.
    pub name: String,
    /// Where it was found.
    pub path: String,
    /// First line of `--version`, or why there is none.
    pub version: Option<String>,
    /// Whether the file is this execguard binary (installed under the runtime's name).
    pub is_execguard: bool,
}

/// Verdict for one platform.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// binfmt_elf runs it.
    Native,
    /// A binfmt_misc handler runs it.
    Emulated,
    /// Nothing runs it.
    Unsupported,
    /// binfmt_misc could not be read.
    Unknown,
}

/// The verdict for one platform.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PlatformReport {
    /// `linux/arm64`.
    pub platform: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// The handler that emulates it.
    pub handler: Option<String>,
    /// Whether that handler has F (null unless emulated).
    pub fix_binary: Option<bool>,
    /// What limits it (non-F handler, disabled handler, compat off...).
    pub note: Option<String>,
    /// The one command that would fix it.
    pub fix: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Always 1 for this layout.
    pub schema_version: u32,
    /// `uname -m`.
    pub machine: String,
    /// The compat machine.
    pub compat: Compat,
    /// binfmt_misc.
    pub binfmt_misc: BinfmtReport,
    /// OCI runtimes on PATH.
    pub runtimes: Vec<RuntimeInfo>,
    /// Whether Docker, containerd and podman are configured to run execguard.
    pub engines: Vec<crate::engines::Engine>,
    /// One verdict per platform of [`PLATFORMS`].
    pub platforms: Vec<PlatformReport>,
    /// The exit status (see the module documentation).
    pub exit_code: i32,
}

/// How fixes are phrased.
#[derive(Clone, Debug, Default)]
pub struct FixStyle {
    /// apt-get is on PATH: suggest `apt-get install qemu-user-static` for a missing handler.
    pub apt: bool,
    /// Registration lines found in the host's binfmt.d directories (file, line): an
    /// installed but unregistered handler is fixed by writing its line to `register`.
    pub registrations: Vec<(PathBuf, String)>,
}

/// Where packages leave binfmt_misc registration lines (systemd-binfmt, binfmt.d(5)).
pub const BINFMT_D_DIRS: &[&str] = &["/etc/binfmt.d", "/run/binfmt.d", "/usr/lib/binfmt.d"];

/// Cap on the bytes read from one binfmt.d file.
const BINFMT_D_READ_CAP: u64 = 64 * 1024;

/// Cap on the files read from one binfmt.d directory.
const BINFMT_D_MAX_FILES: usize = 512;

/// The registration lines (`:name:type:...`) of the `*.conf` files in `dirs`, bounded, without
/// blocking on FIFOs; lines that the kernel would refuse are left out.
pub fn read_registrations(dirs: &[PathBuf]) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .take(BINFMT_D_MAX_FILES)
            .collect();
        files.sort();
        for f in files {
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(&f)
            else {
                continue;
            };
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                continue;
            }
            let mut buf = Vec::new();
            if file.take(BINFMT_D_READ_CAP).read_to_end(&mut buf).is_err() {
                continue;
            }
            for line in buf.split(|&b| b == b'\n') {
                let line = line.trim_ascii();
                if line.is_empty() || line.starts_with(b"#") || line.starts_with(b";") {
                    continue;
                }
                if binfmt::parse_register_line(line).is_ok()
                    && let Ok(text) = std::str::from_utf8(line)
                {
                    out.push((f.clone(), text.to_string()));
                }
            }
        }
    }
    out
}

fn show(s: &OsStr) -> String {
    crate::sanitize::escape_bytes(s.as_bytes())
}

fn handler_of(e: &Entry) -> Handler {
    let interp = Path::new(&e.interpreter);
    Handler {
        name: e.name.clone(),
        enabled: e.enabled,
        kind: match e.matcher {
            Matcher::Magic { .. } => "magic",
            Matcher::Extension(_) => "extension",
        },
        interpreter: show(&e.interpreter),
        flags: e.flags.letters(),
        flags_meaning: binfmt::describe_flags(&e.flags),
        fix_binary: e.flags.fix_binary,
        arch: binfmt::emulated_arch(e),
        interpreter_on_host: interp.is_absolute() && std::fs::metadata(interp).is_ok(),
        shadowed_by: Vec::new(),
        interpreter_loader: if interp.is_absolute() {
            loader_of(interp)
        } else {
            None
        },
    }
}

/// Pairs of enabled entries that both match some architecture's ELF header; the first in
/// match order wins (fs/binfmt_misc.c `check_file`).
pub fn shadows(entries: &[Entry]) -> Vec<Shadow> {
    let mut out: Vec<Shadow> = Vec::new();
    let triples = PLATFORMS
        .iter()
        .map(|p| (p.class, p.endian, p.machine))
        .chain(EXTRA_TRIPLES.iter().copied());
    for (class, endian, machine) in triples {
        for e_type in [2u16, 3] {
            let h = elf_header(class, endian, machine, e_type);
            let matching: Vec<&Entry> = entries
                .iter()
                .filter(|e| e.enabled && binfmt::entry_matches(e, &h, b""))
                .collect();
            let Some((winner, rest)) = matching.split_first() else {
                continue;
            };
            for loser in rest {
                let arch = triple_name(class, endian, machine);
                if !out
                    .iter()
                    .any(|s| s.winner == winner.name && s.shadowed == loser.name && s.arch == arch)
                {
                    out.push(Shadow {
                        arch,
                        winner: winner.name.clone(),
                        shadowed: loser.name.clone(),
                    });
                }
            }
        }
    }
    out
}

fn binfmt_report(host: &Host) -> BinfmtReport {
    let root = host.binfmt_root.display().to_string();
    let mut r = BinfmtReport {
        root: root.clone(),
        mounted: false,
        readable: true,
        enabled: false,
        mount_command: None,
        error: None,
        handlers: Vec::new(),
        skipped: Vec::new(),
        shadows: Vec::new(),
    };
    match host.binfmt() {
        State::NotMounted => {
            r.mount_command = Some(format!("mount -t binfmt_misc binfmt_misc {root}"));
        }
        State::Unreadable(msg) => {
            r.mounted = true;
            r.readable = false;
            r.error = Some(msg.clone());
        }
        State::Mounted {
            enabled,
            entries,
            skipped,
        } => {
            r.mounted = true;
            r.enabled = *enabled;
            r.skipped = skipped.clone();
            r.shadows = shadows(entries);
            r.handlers = entries.iter().map(handler_of).collect();
            for h in &mut r.handlers {
                for s in &r.shadows {
                    if s.shadowed == h.name && !h.shadowed_by.contains(&s.winner) {
                        h.shadowed_by.push(s.winner.clone());
                    }
                }
            }
        }
    }
    r
}

/// The shell command that writes a registration line to `register` (printf, not echo: some
/// shells' echo rewrites backslashes, and the line is full of `\xHH`).
fn register_command(line: &str, root: &Path) -> String {
    format!(
        "printf '%s' '{}' > {}",
        line.replace('\'', r"'\''"),
        root.join("register").display()
    )
}

/// A registration line from the host's binfmt.d files that takes this platform.
fn installed_registration<'a>(p: &Platform, style: &'a FixStyle) -> Option<&'a (PathBuf, String)> {
    let header = elf_header(p.class, p.endian, p.machine, 2);
    style.registrations.iter().find(|(_, line)| {
        binfmt::parse_register_line(line.as_bytes())
            .is_ok_and(|e| binfmt::entry_matches(&e, &header, b""))
    })
}

fn missing_fix(p: &Platform, style: &FixStyle, root: &Path) -> String {
    if let Some((_, line)) = installed_registration(p, style) {
        return register_command(line, root);
    }
    if style.apt {
        "apt-get install qemu-user-static".to_string()
    } else {
        format!(
            "docker run --privileged --rm tonistiigi/binfmt --install {}",
            p.binfmt_arch
        )
    }
}

fn platform_report(host: &Host, p: &Platform, style: &FixStyle) -> PlatformReport {
    let mut r = PlatformReport {
        platform: p.name,
        verdict: Verdict::Unsupported,
        handler: None,
        fix_binary: None,
        note: None,
        fix: None,
    };
    if host.runs_natively(Some(p.class), Some(p.endian), p.machine) {
        r.verdict = Verdict::Native;
        return r;
    }
    let compat_off = host
        .compat_target
        .is_some_and(|t| t.class == p.class && t.endian == p.endian && t.machine == p.machine);
    if compat_off {
        r.note = Some(format!(
            "the kernel's compat loader is off{}",
            host.compat_note()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ));
    }
    let header = elf_header(p.class, p.endian, p.machine, 2);
    let state = host.binfmt();
    let root = &host.binfmt_root;
    let add_note = |r: &mut PlatformReport, n: String| {
        r.note = Some(match r.note.take() {
            Some(old) => format!("{old}; {n}"),
            None => n,
        });
    };
    match state {
        State::NotMounted => {
            add_note(&mut r, "binfmt_misc is not mounted".into());
            r.fix = Some(format!(
                "mount -t binfmt_misc binfmt_misc {}",
                root.display()
            ));
        }
        State::Unreadable(msg) => {
            r.verdict = Verdict::Unknown;
            add_note(&mut r, msg.clone());
        }
        State::Mounted { enabled, .. } => {
            if let Some(e) = binfmt::select(state, &header, b"") {
                r.verdict = Verdict::Emulated;
                r.handler = Some(e.name.clone());
                r.fix_binary = Some(e.flags.fix_binary);
                let interp = Path::new(&e.interpreter);
                if let Some(l) = interp.is_absolute().then(|| loader_of(interp)).flatten() {
                    add_note(
                        &mut r,
                        format!(
                            "{} is dynamically linked ({l}): it runs only in images that contain that loader and its libraries",
                            show(&e.interpreter)
                        ),
                    );
                    if r.fix.is_none() {
                        r.fix = Some("apt-get install qemu-user-static (static interpreters, registered with F)".into());
                    }
                }
                if !e.flags.fix_binary {
                    add_note(
                        &mut r,
                        format!(
                            "{} has no F flag: it runs only in images that contain {}",
                            e.name,
                            show(&e.interpreter)
                        ),
                    );
                    let interp = Path::new(&e.interpreter);
                    if interp.is_absolute() && std::fs::metadata(interp).is_ok() {
                        // Re-register with F: the kernel opens the interpreter now
                        // (fs/binfmt_misc.c bm_register_write, MISC_FMT_OPEN_FILE).
                        let mut with_f = e.clone();
                        with_f.flags.fix_binary = true;
                        let line = binfmt::to_register_line(&with_f);
                        r.fix = Some(format!(
                            "echo -1 > {} && {}",
                            root.join(&e.name).display(),
                            register_command(&String::from_utf8_lossy(&line), root)
                        ));
                    } else {
                        add_note(
                            &mut r,
                            "the interpreter is not on the host either, so it cannot be re-registered with F".into(),
                        );
                        r.fix = Some(missing_fix(p, style, root));
                    }
                }
            } else if !enabled {
                add_note(&mut r, "binfmt_misc is disabled globally".into());
                r.fix = Some(format!("echo 1 > {}", root.join("status").display()));
            } else if let Some(d) = binfmt::disabled_matches(state, &header, b"").first() {
                add_note(&mut r, format!("handler {} is disabled", d.name));
                r.fix = Some(format!("echo 1 > {}", root.join(&d.name).display()));
            } else {
                match installed_registration(p, style) {
                    Some((file, _)) => add_note(
                        &mut r,
                        format!(
                            "no binfmt_misc handler matches; {} has one that is not registered",
                            file.display()
                        ),
                    ),
                    None => add_note(&mut r, "no binfmt_misc handler matches".into()),
                }
                r.fix = Some(missing_fix(p, style, root));
            }
        }
    }
    r
}

/// The exit status of a report's platforms (see the module documentation).
pub fn exit_code(platforms: &[PlatformReport]) -> i32 {
    if platforms.iter().any(|p| p.verdict == Verdict::Unknown) {
        2
    } else if platforms.iter().any(|p| {
        p.verdict == Verdict::Unsupported
            || (p.verdict == Verdict::Emulated && p.fix_binary != Some(true))
    }) {
        1
    } else {
        0
    }
}

/// The platforms named by `names` (all of [`PLATFORMS`] when empty).
///
/// # Errors
/// A name that is not in [`PLATFORMS`], with the list of known ones.
pub fn select_platforms(names: &[String]) -> Result<Vec<Platform>, String> {
    if names.is_empty() {
        return Ok(PLATFORMS.to_vec());
    }
    names
        .iter()
        .map(|n| {
            PLATFORMS
                .iter()
                .find(|p| p.name == n || p.name.strip_suffix("/v7") == Some(n.as_str()))
                .copied()
                .ok_or_else(|| {
                    let known: Vec<&str> = PLATFORMS.iter().map(|p| p.name).collect();
                    format!(
                        "unknown platform {}: known are {}",
                        crate::sanitize::escape_bytes(n.as_bytes()),
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// Build the report for `host` over `platforms`, with the runtimes already found.
pub fn inspect(
    host: &Host,
    platforms: &[Platform],
    runtimes: Vec<RuntimeInfo>,
    style: &FixStyle,
) -> Report {
    let compat = match host.compat_target {
        Some(t) => Compat {
            platform: PLATFORMS
                .iter()
                .find(|p| p.class == t.class && p.endian == t.endian && p.machine == t.machine)
                .map(|p| p.name.to_string()),
            allowed: host.runs_natively(Some(t.class), Some(t.endian), t.machine),
            note: host.compat_note(),
        },
        None => Compat {
            platform: None,
            allowed: false,
            note: None,
        },
    };
    let platforms: Vec<PlatformReport> = platforms
        .iter()
        .map(|p| platform_report(host, p, style))
        .collect();
    let exit_code = exit_code(&platforms);
    Report {
        schema_version: 1,
        machine: host.machine.clone(),
        compat,
        binfmt_misc: binfmt_report(host),
        runtimes,
        engines: Vec::new(),
        platforms,
        exit_code,
    }
}

/// The first executable regular file called `name` in the directories of `path_var`.
fn find_on_path(name: &str, path_var: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// First line of `path --version`, run with [`crate::delegate::MARKER`]`=1` (so an execguard
/// installed as the runtime passes through), no stdin, and a timeout.
fn version_line(path: &Path) -> Result<String, String> {
    let mut child = Command::new(path)
        .arg("--version")
        .env(crate::delegate::MARKER, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {} --version: {e}", path.display()))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() < VERSION_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(VERSION_READ_CAP).read_to_end(&mut out);
    }
    let Some(status) = status else {
        return Err(format!(
            "{} --version did not finish within {}s",
            path.display(),
            VERSION_TIMEOUT.as_secs()
        ));
    };
    let line = out
        .split(|&b| b == b'\n')
        .next()
        .map(|l| crate::sanitize::escape_bytes(l.trim_ascii()))
        .unwrap_or_default();
    if line.is_empty() {
        Err(format!(
            "{} --version printed nothing ({status})",
            path.display()
        ))
    } else {
        Ok(line)
    }
}

/// The OCI runtimes (runc, crun, youki) on `path_var`, each with its version line.
pub fn find_runtimes(path_var: &OsStr) -> Vec<RuntimeInfo> {
    let me = std::fs::metadata("/proc/self/exe")
        .ok()
        .map(|m| (m.dev(), m.ino()));
    ["runc", "crun", "youki"]
        .iter()
        .filter_map(|name| {
            let path = find_on_path(name, path_var)?;
            let is_execguard = std::fs::metadata(&path)
                .ok()
                .is_some_and(|m| Some((m.dev(), m.ino())) == me);
            let version = match version_line(&path) {
                Ok(v) => Some(v),
                Err(e) => Some(format!("unknown: {e}")),
            };
            Some(RuntimeInfo {
                name: (*name).to_string(),
                path: show(path.as_os_str()),
                version,
                is_execguard,
            })
        })
        .collect()
}

/// The report as JSON (one line, no trailing newline).
pub fn render_json(r: &Report) -> String {
    serde_json::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"cannot render: {e}\"}}"))
}

/// The report as text for people.
/// The text report with ANSI colour: each platform's verdict by outcome, fixes in green.
pub fn colour_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let painted = if line.starts_with("  linux/") {
            [
                (" unsupported", "\x1b[1;31m"),
                (" unknown", "\x1b[1;33m"),
                (" emulated", "\x1b[36m"),
                (" native", "\x1b[32m"),
            ]
            .iter()
            .find_map(|(word, colour)| {
                let at = line.find(word)?;
                let (head, rest) = line.split_at(at + 1);
                let w = word.len() - 1;
                Some(format!(
                    "{head}{colour}{}\x1b[0m{}",
                    rest.get(..w)?,
                    rest.get(w..)?
                ))
            })
        } else if trimmed.starts_with("fix: ") {
            Some(format!(
                "{}\x1b[32mfix:\x1b[0m{}",
                &line[..indent],
                &trimmed[4..]
            ))
        } else {
            None
        };
        out.push_str(painted.as_deref().unwrap_or(line));
    }
    out
}

pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "machine: {}", r.machine);
    match &r.compat.platform {
        Some(p) if r.compat.allowed => {
            let _ = writeln!(s, "compat: {p} allowed");
        }
        Some(p) => {
            let _ = writeln!(
                s,
                "compat: {p} not allowed{}",
                r.compat
                    .note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(s, "compat: none for this machine");
        }
    }
    let b = &r.binfmt_misc;
    if !b.mounted {
        let _ = writeln!(
            s,
            "binfmt_misc: not mounted at {} (mount it: {})",
            b.root,
            b.mount_command.as_deref().unwrap_or("")
        );
    } else if !b.readable {
        let _ = writeln!(
            s,
            "binfmt_misc: cannot be read: {}",
            b.error.as_deref().unwrap_or("")
        );
    } else {
        let _ = writeln!(
            s,
            "binfmt_misc: mounted at {}, {}, {} handler{}",
            b.root,
            if b.enabled {
                "enabled"
            } else {
                "disabled globally"
            },
            b.handlers.len(),
            if b.handlers.len() == 1 { "" } else { "s" }
        );
        for h in &b.handlers {
            let _ = writeln!(
                s,
                "  {} ({}, {}, emulates {}): {}{}",
                h.name,
                if h.enabled { "enabled" } else { "disabled" },
                h.kind,
                h.arch.unwrap_or("unknown architecture"),
                h.interpreter,
                match (h.interpreter_on_host, h.fix_binary) {
                    (true, _) => "",
                    (false, true) => " (missing on the host; it was opened at registration)",
                    (false, false) => " (missing on the host)",
                }
            );
            let _ = writeln!(
                s,
                "    flags {}: {}",
                if h.flags.is_empty() { "none" } else { &h.flags },
                h.flags_meaning
            );
            if let Some(l) = &h.interpreter_loader {
                let _ = writeln!(
                    s,
                    "    the interpreter is dynamically linked ({l}): that loader and its libraries must exist inside every container{}; a static build (qemu-user-static) does not need them",
                    if h.fix_binary { ", F or not" } else { "" }
                );
            }
        }
        for sk in &b.skipped {
            let _ = writeln!(s, "  skipped: {sk}");
        }
        for sh in &b.shadows {
            let _ = writeln!(
                s,
                "  shadowing: {} takes {} files before {} (the kernel uses the first match)",
                sh.winner, sh.arch, sh.shadowed
            );
        }
    }
    if r.runtimes.is_empty() {
        let _ = writeln!(s, "runtimes: none of runc, crun, youki on PATH");
    } else {
        let _ = writeln!(s, "runtimes:");
        for rt in &r.runtimes {
            let _ = writeln!(
                s,
                "  {} {}: {}{}",
                rt.name,
                rt.path,
                rt.version.as_deref().unwrap_or("unknown"),
                if rt.is_execguard {
                    " (this is execguard)"
                } else {
                    ""
                }
            );
        }
    }
    if !r.engines.is_empty() {
        let _ = writeln!(s, "engines:");
    }
    for e in &r.engines {
        let state = if let Some(err) = &e.error {
            format!("cannot tell: {err}")
        } else if !e.found {
            "no config file: execguard not configured".to_string()
        } else if e.execguard_runtimes.is_empty() {
            "execguard not configured (execguard setup adds it)".to_string()
        } else {
            format!(
                "runtime{} {} run{} execguard{}",
                if e.execguard_runtimes.len() == 1 {
                    ""
                } else {
                    "s"
                },
                e.execguard_runtimes.join(", "),
                if e.execguard_runtimes.len() == 1 {
                    "s"
                } else {
                    ""
                },
                if e.default_is_execguard {
                    ", and it is the default"
                } else {
                    ", not the default"
                }
            )
        };
        let _ = writeln!(s, "  {} ({}): {state}", e.engine, e.config);
    }
    let _ = writeln!(s, "platforms:");
    for p in &r.platforms {
        let verdict = match (p.verdict, &p.handler, p.fix_binary) {
            (Verdict::Native, _, _) => "native".to_string(),
            (Verdict::Emulated, Some(h), Some(true)) => format!("emulated by {h} (F)"),
            (Verdict::Emulated, Some(h), _) => format!("emulated by {h} (no F)"),
            (Verdict::Emulated, None, _) => "emulated".to_string(),
            (Verdict::Unsupported, _, _) => "unsupported".to_string(),
            (Verdict::Unknown, _, _) => "unknown".to_string(),
        };
        let _ = writeln!(s, "  {:<15} {verdict}", p.platform);
        if let Some(n) = &p.note {
            let _ = writeln!(s, "                  {n}");
        }
        if let Some(f) = &p.fix {
            let _ = writeln!(s, "                  fix: {f}");
        }
    }
    let _ = writeln!(
        s,
        "exit status {}: {}",
        r.exit_code,
        match r.exit_code {
            0 => "every platform runs here",
            1 => "some platforms cannot run, or run only with the interpreter in the image",
            _ => "binfmt_misc could not be inspected",
        }
    );
    s
}

/// `execguard doctor [--format text|json] [--binfmt-root DIR]`: print the report and return
/// its exit status (see the module documentation).
pub fn run(args: &[OsString]) -> i32 {
    let mut argv = vec![OsString::from("execguard doctor")];
    argv.extend(args.iter().cloned());
    let a = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let host = match &a.host_machine {
        Some(m) => Host::with_machine(m, !a.no_compat, a.binfmt_root.clone()),
        None => Host::detect(a.binfmt_root.clone()),
    };
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = BINFMT_D_DIRS.iter().map(PathBuf::from).collect();
    let style = FixStyle {
        apt: find_on_path("apt-get", &path_var).is_some(),
        registrations: read_registrations(&dirs),
    };
    let platforms = match select_platforms(&a.platforms) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "execguard doctor: {e}");
            return 2;
        }
    };
    let mut report = inspect(&host, &platforms, find_runtimes(&path_var), &style);
    report.engines = crate::engines::read_all(&crate::engines::Paths {
        docker: a.docker_config.clone(),
        containerd: a.containerd_config.clone(),
        podman: a.podman_config.clone(),
    });
    let out = match a.format {
        Format::Json => render_json(&report) + "\n",
        Format::Text => crate::diagnosis::render::for_stdout(render_text(&report), colour_text),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    report.exit_code
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The Debian qemu-user-static qemu-aarch64 entry as the kernel prints it.
    const QEMU_AARCH64_F: &str = "enabled\n\
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
flags: POCF\n\
offset 0\n\
magic 7f454c460201010000000000000000000200b700\n\
mask ffffffffffffff00fffffffffffffffffeffffff\n";

    fn tree(status: &str, entries: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("status"), status).unwrap();
        std::fs::write(d.path().join("register"), "").unwrap();
        for (name, text) in entries {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

    fn report(machine: &str, root: &Path) -> Report {
        let h = Host::with_machine(machine, true, root.to_path_buf());
        inspect(&h, PLATFORMS, Vec::new(), &FixStyle::default())
    }

    fn plat<'a>(r: &'a Report, name: &str) -> &'a PlatformReport {
        r.platforms.iter().find(|p| p.platform == name).unwrap()
    }

    /// The exit status of a report over the named platforms only (`--platform`).
    fn code_for(machine: &str, root: &Path, names: &[&str]) -> i32 {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let h = Host::with_machine(machine, true, root.to_path_buf());
        let ps = select_platforms(&names).unwrap();
        let r = inspect(&h, &ps, Vec::new(), &FixStyle::default());
        assert_eq!(r.platforms.len(), ps.len());
        r.exit_code
    }

    #[test]
    fn f_handler_emulates_arm64_exit_0() {
        let d = tree("enabled\n", &[("qemu-aarch64", QEMU_AARCH64_F)]);
        let r = report("x86_64", d.path());
        let a = plat(&r, "linux/arm64");
        assert_eq!(a.verdict, Verdict::Emulated);
        assert_eq!(a.handler.as_deref(), Some("qemu-aarch64"));
        assert_eq!(a.fix_binary, Some(true));
        assert_eq!(a.fix, None);
        assert_eq!(plat(&r, "linux/amd64").verdict, Verdict::Native);
        assert_eq!(plat(&r, "linux/386").verdict, Verdict::Native);
        assert_eq!(
            code_for(
                "x86_64",
                d.path(),
                &["linux/amd64", "linux/386", "linux/arm64"]
            ),
            0
        );
        // The other platforms have no handler: the whole report says 1.
        assert_eq!(r.exit_code, 1);
        assert_eq!(plat(&r, "linux/s390x").verdict, Verdict::Unsupported);
        let h = &r.binfmt_misc.handlers[0];
        assert_eq!(h.arch, Some("aarch64"));
        assert_eq!(h.flags, "POCF");
        assert!(h.flags_meaning.contains("works in any container"));
        let json: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["platforms"][2]["platform"], "linux/arm64");
        assert_eq!(json["platforms"][2]["verdict"], "emulated");
        assert_eq!(json["platforms"][2]["handler"], "qemu-aarch64");
        assert_eq!(json["platforms"][2]["fix_binary"], true);
        assert!(json["platforms"][0]["handler"].is_null());
        assert!(json["platforms"][0]["fix_binary"].is_null());
    }

    #[test]
    fn colour_marks_verdicts_and_fixes_only() {
        let t = "machine: x86_64\n  linux/arm64     unsupported\n                  fix: apt-get install qemu-user-static\n  linux/amd64     native\n";
        let c = colour_text(t);
        assert!(c.contains("\x1b[1;31munsupported\x1b[0m"));
        assert!(c.contains("\x1b[32mnative\x1b[0m"));
        assert!(c.contains("\x1b[32mfix:\x1b[0m apt-get install"));
        assert_eq!(
            c.replace("\x1b[1;31m", "")
                .replace("\x1b[32m", "")
                .replace("\x1b[0m", ""),
            t
        );
    }

    #[test]
    fn a_dynamically_linked_interpreter_is_named_with_its_loader() {
        // /bin/ls is dynamically linked on every glibc host; a static one (busybox) is not.
        let dynamic =
            QEMU_AARCH64_F.replace("/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "/bin/ls");
        let d = tree("enabled\n", &[("qemu-aarch64", &dynamic)]);
        let r = report("x86_64", d.path());
        let h = &r.binfmt_misc.handlers[0];
        let loader = h
            .interpreter_loader
            .as_deref()
            .expect("/bin/ls names its loader");
        assert!(loader.contains("ld-linux"), "{loader}");
        let a = plat(&r, "linux/arm64");
        assert!(
            a.note
                .as_deref()
                .is_some_and(|n| n.contains("dynamically linked")),
            "{a:?}"
        );
        assert!(render_text(&r).contains("the interpreter is dynamically linked"));
        if Path::new("/bin/busybox").exists() {
            let stat =
                QEMU_AARCH64_F.replace("/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "/bin/busybox");
            let d = tree("enabled\n", &[("qemu-aarch64", &stat)]);
            let r = report("x86_64", d.path());
            assert_eq!(r.binfmt_misc.handlers[0].interpreter_loader, None);
            assert_eq!(plat(&r, "linux/arm64").note, None);
        }
    }

    #[test]
    fn non_f_handler_exit_1_with_note_and_reregister_fix() {
        let text = QEMU_AARCH64_F.replace("flags: POCF", "flags: P").replace(
            "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
            "/nonexistent-eg/aarch64-binfmt-P",
        );
        let d = tree("enabled\n", &[("qemu-aarch64", &text)]);
        let r = report("x86_64", d.path());
        let a = plat(&r, "linux/arm64");
        assert_eq!(a.verdict, Verdict::Emulated);
        assert_eq!(a.fix_binary, Some(false));
        assert!(a.note.as_deref().unwrap().contains("no F flag"), "{a:?}");
        assert!(a.note.as_deref().unwrap().contains("aarch64-binfmt-P"));
        let fix = a.fix.as_deref().unwrap();
        // The interpreter is not on this host: re-registering with F cannot work.
        assert!(
            a.note.as_deref().unwrap().contains("not on the host"),
            "{a:?}"
        );
        assert_eq!(
            fix,
            "docker run --privileged --rm tonistiigi/binfmt --install arm64"
        );
        assert_eq!(
            code_for("x86_64", d.path(), &["linux/amd64", "linux/arm64"]),
            1
        );
        assert!(render_text(&r).contains("emulated by qemu-aarch64 (no F)"));

        // With an interpreter that exists on the host the fix re-registers the entry with F.
        let text = text.replace("/nonexistent-eg/aarch64-binfmt-P", "/bin/sh");
        let d = tree("enabled\n", &[("qemu-aarch64", &text)]);
        let r = report("x86_64", d.path());
        let fix = plat(&r, "linux/arm64").fix.clone().unwrap();
        let reg = d.path().join("register");
        let prefix = format!(
            "echo -1 > {} && printf '%s' '",
            d.path().join("qemu-aarch64").display()
        );
        let suffix = format!("' > {}", reg.display());
        let line = fix
            .strip_prefix(&prefix)
            .and_then(|f| f.strip_suffix(&suffix))
            .unwrap_or_else(|| panic!("{fix}"));
        let e = binfmt::parse_register_line(line.as_bytes()).unwrap();
        assert!(e.flags.fix_binary && e.flags.preserve_argv0);
        assert_eq!(e.name, "qemu-aarch64");
        assert_eq!(e.interpreter, OsString::from("/bin/sh"));
    }

    #[test]
    fn disabled_handler_unsupported_with_enable_command() {
        let text = QEMU_AARCH64_F.replace("enabled\n", "disabled\n");
        let d = tree("enabled\n", &[("qemu-aarch64", &text)]);
        let r = report("x86_64", d.path());
        let a = plat(&r, "linux/arm64");
        assert_eq!(a.verdict, Verdict::Unsupported);
        assert_eq!(
            a.fix.as_deref(),
            Some(format!("echo 1 > {}", d.path().join("qemu-aarch64").display()).as_str())
        );
        assert_eq!(code_for("x86_64", d.path(), &["linux/arm64"]), 1);
    }

    #[test]
    fn globally_disabled_names_status() {
        let d = tree("disabled\n", &[("qemu-aarch64", QEMU_AARCH64_F)]);
        let r = report("x86_64", d.path());
        let a = plat(&r, "linux/arm64");
        assert_eq!(a.verdict, Verdict::Unsupported);
        assert!(a.fix.as_deref().unwrap().ends_with("/status"));
        assert!(!r.binfmt_misc.enabled);
    }

    #[test]
    fn not_mounted_gives_mount_command() {
        let d = tempfile::tempdir().unwrap();
        let r = report("x86_64", d.path());
        assert!(!r.binfmt_misc.mounted);
        let mount = format!("mount -t binfmt_misc binfmt_misc {}", d.path().display());
        assert_eq!(r.binfmt_misc.mount_command.as_deref(), Some(mount.as_str()));
        let a = plat(&r, "linux/arm64");
        assert_eq!(a.verdict, Verdict::Unsupported);
        assert_eq!(a.fix.as_deref(), Some(mount.as_str()));
        assert_eq!(plat(&r, "linux/amd64").verdict, Verdict::Native);
        assert_eq!(r.exit_code, 1);
        assert!(render_text(&r).contains("not mounted"));
    }

    #[test]
    fn platform_filter() {
        assert!(select_platforms(&["linux/sparc".into()]).is_err());
        let ps = select_platforms(&["linux/arm".into(), "linux/amd64".into()]).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].name, "linux/arm/v7");
        let d = tree("enabled\n", &[]);
        assert_eq!(
            code_for("x86_64", d.path(), &["linux/amd64", "linux/386"]),
            0
        );
        assert_eq!(code_for("aarch64", d.path(), &["linux/amd64"]), 1);
    }

    #[test]
    fn installed_but_unregistered_handler_fix_writes_its_line() {
        let conf = tempfile::tempdir().unwrap();
        let line = r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF";
        std::fs::write(
            conf.path().join("qemu-aarch64.conf"),
            format!("# comment\n\n{line}\n:broken:Q::x\n"),
        )
        .unwrap();
        std::fs::write(conf.path().join("ignored.txt"), line).unwrap();
        let regs = read_registrations(&[conf.path().to_path_buf(), PathBuf::from("/nonexistent")]);
        assert_eq!(regs.len(), 1, "{regs:?}");
        let d = tree("enabled\n", &[]);
        let h = Host::with_machine("x86_64", true, d.path().to_path_buf());
        let style = FixStyle {
            apt: true,
            registrations: regs,
        };
        let r = inspect(&h, PLATFORMS, Vec::new(), &style);
        let want = format!(
            "printf '%s' '{line}' > {}",
            d.path().join("register").display()
        );
        assert_eq!(plat(&r, "linux/arm64").fix.as_deref(), Some(want.as_str()));
        // No registration line for s390x: apt-get.
        assert_eq!(
            plat(&r, "linux/s390x").fix.as_deref(),
            Some("apt-get install qemu-user-static")
        );
    }

    #[test]
    fn unreadable_is_exit_2() {
        let d = tree("garbage\n", &[]);
        let r = report("x86_64", d.path());
        assert!(!r.binfmt_misc.readable);
        assert_eq!(plat(&r, "linux/arm64").verdict, Verdict::Unknown);
        assert_eq!(r.exit_code, 2);
    }

    #[test]
    fn shadowing_handlers_reported_first_wins() {
        // Both match aarch64 ELF headers; listing order is creation order on tmpfs-like
        // directories only by chance, so the check reads the order load() returned.
        let other = QEMU_AARCH64_F.replace("aarch64-binfmt-P", "box64-like");
        let d = tree(
            "enabled\n",
            &[("qemu-aarch64", QEMU_AARCH64_F), ("fex-aarch64", &other)],
        );
        let r = report("x86_64", d.path());
        let names: Vec<&str> = r
            .binfmt_misc
            .handlers
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names.len(), 2);
        let (first, second) = (names[0], names[1]);
        assert_eq!(
            r.binfmt_misc.shadows.len(),
            1,
            "{:?}",
            r.binfmt_misc.shadows
        );
        let s = &r.binfmt_misc.shadows[0];
        assert_eq!((s.winner.as_str(), s.shadowed.as_str()), (first, second));
        assert!(s.arch.starts_with("linux/arm64"));
        assert_eq!(
            r.binfmt_misc.handlers[1].shadowed_by,
            vec![first.to_string()]
        );
        assert_eq!(plat(&r, "linux/arm64").handler.as_deref(), Some(first));
        assert!(render_text(&r).contains("shadowing:"));
    }

    #[test]
    fn disabled_duplicate_does_not_shadow() {
        let other = QEMU_AARCH64_F.replacen("enabled", "disabled", 1);
        let d = tree(
            "enabled\n",
            &[("qemu-aarch64", QEMU_AARCH64_F), ("old-aarch64", &other)],
        );
        let r = report("x86_64", d.path());
        assert!(r.binfmt_misc.shadows.is_empty());
    }

    #[test]
    fn aarch64_host_arm64_native_amd64_unsupported() {
        let d = tree("enabled\n", &[]);
        let r = report("aarch64", d.path());
        assert_eq!(plat(&r, "linux/arm64").verdict, Verdict::Native);
        assert_eq!(plat(&r, "linux/arm/v7").verdict, Verdict::Native);
        let a = plat(&r, "linux/amd64");
        assert_eq!(a.verdict, Verdict::Unsupported);
        assert_eq!(
            a.fix.as_deref(),
            Some("docker run --privileged --rm tonistiigi/binfmt --install amd64")
        );
        assert_eq!(r.compat.platform.as_deref(), Some("linux/arm/v7"));
        let h = Host::with_machine("aarch64", true, d.path().to_path_buf());
        let r = inspect(
            &h,
            PLATFORMS,
            Vec::new(),
            &FixStyle {
                apt: true,
                registrations: Vec::new(),
            },
        );
        assert_eq!(
            plat(&r, "linux/amd64").fix.as_deref(),
            Some("apt-get install qemu-user-static")
        );
    }

    #[test]
    fn compat_off_makes_386_unsupported_with_note() {
        let d = tree("enabled\n", &[]);
        let h = Host::with_machine("x86_64", false, d.path().to_path_buf());
        let r = inspect(&h, PLATFORMS, Vec::new(), &FixStyle::default());
        assert!(!r.compat.allowed);
        let a = plat(&r, "linux/386");
        assert_eq!(a.verdict, Verdict::Unsupported);
        assert!(a.note.as_deref().unwrap().contains("compat loader is off"));
    }

    #[test]
    fn headers_match_real_qemu_masks_per_platform() {
        // A mips64el entry (qemu's magic/mask) is chosen for linux/mips64le only.
        let mips = "enabled\ninterpreter /usr/bin/qemu-mips64el-static\nflags: F\noffset 0\n\
magic 7f454c4602010100000000000000000002000800\n\
mask ffffffffffffff00fffffffffffffffffeffffff\n";
        let d = tree("enabled\n", &[("qemu-mips64el", mips)]);
        let r = report("x86_64", d.path());
        for p in &r.platforms {
            let want = p.platform == "linux/mips64le";
            assert_eq!(p.verdict == Verdict::Emulated, want, "{p:?}");
        }
    }

    #[test]
    fn runtime_version_timeout_and_marker() {
        let d = tempfile::tempdir().unwrap();
        let rt = d.path().join("runc");
        std::fs::write(
            &rt,
            "#!/bin/sh\nif [ \"$EXECGUARD_DELEGATED\" = 1 ]; then echo 'runc version 9.9'; echo second; else echo wrong; fi\n",
        )
        .unwrap();
        let slow = d.path().join("crun");
        std::fs::write(&slow, "#!/bin/sh\nexec sleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in [&rt, &slow] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let t = Instant::now();
        let found = find_runtimes(d.path().as_os_str());
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].version.as_deref(), Some("runc version 9.9"));
        assert!(
            found[1]
                .version
                .as_deref()
                .unwrap()
                .contains("did not finish")
        );
    }

    /// The real host: only the shape is asserted.
    #[test]
    fn real_host_shape() {
        let root = Path::new(binfmt::DEFAULT_ROOT);
        if !root.join("status").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "binfmt_misc is not mounted at {} under CI",
                root.display()
            );
            eprintln!("SKIPPED real_host_shape: binfmt_misc not mounted");
            return;
        }
        let h = Host::detect(root.to_path_buf());
        let r = inspect(
            &h,
            PLATFORMS,
            find_runtimes(&std::env::var_os("PATH").unwrap_or_default()),
            &FixStyle::default(),
        );
        assert!(r.binfmt_misc.mounted);
        assert_eq!(r.platforms.len(), PLATFORMS.len());
        assert!(r.platforms.iter().any(|p| p.verdict == Verdict::Native));
        let v: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
        for key in ["machine", "compat", "binfmt_misc", "runtimes", "platforms"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v["binfmt_misc"]["handlers"].is_array());
        assert!((0..=2).contains(&r.exit_code));
    }

    proptest! {
        #[test]
        fn any_entry_text_never_panics(text in proptest::collection::vec(any::<u8>(), 0..300)) {
            let d = tree("enabled\n", &[]);
            std::fs::write(d.path().join("x"), &text).unwrap();
            let r = report("x86_64", d.path());
            let _ = render_text(&r);
            prop_assert!(serde_json::from_str::<serde_json::Value>(&render_json(&r)).is_ok());
        }
    }
}
