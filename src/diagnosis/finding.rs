//! The data model of a diagnosis: stable finding codes, severities, findings and the verdict.
//!
//! The codes are a contract: tests, log consumers and later tooling match on them, so a code is
//! never renamed. Every renderer (text, JSON, runtime log lines) works from these types only.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::sanitize::escape_bytes;

/// A stable identifier of one kind of finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The program does not exist in the container.
    NotFound,
    /// The program is a directory.
    IsDirectory,
    /// The program is a FIFO, socket or device.
    NotRegular,
    /// No execute bit for anyone.
    NotExecutable,
    /// Execute or search permission is denied to `process.user`.
    PermissionDeniedUser,
    /// The file lies on a mount marked `noexec`.
    NoexecMount,
    /// The file is empty.
    EmptyFile,
    /// An ELF file cut short.
    TruncatedElf,
    /// An ELF for a machine this host cannot run and no enabled binfmt_misc handler takes.
    ArchMismatch,
    /// A binfmt_misc handler would take the file but it (or binfmt_misc) is disabled.
    BinfmtHandlerDisabled,
    /// The binfmt_misc handler lacks F and its interpreter cannot be reached in the container.
    BinfmtInterpreterUnreachable,
    /// It will run under emulation.
    Emulated,
    /// The ELF loader named by PT_INTERP is missing or unusable.
    InterpreterMissing,
    /// A library the program needs (`DT_NEEDED`) is in none of the loader's search paths.
    MissingLibrary,
    /// The program or a library needs a higher x86-64 ISA level than this CPU has.
    IsaLevel,
    /// Loadable segments cannot be mapped with the host's page size.
    PageSize,
    /// A shell-form command (`sh -c ...`) in an image without a shell.
    NoShell,
    /// Text without `#!` at byte 0.
    NoShebang,
    /// Binary data that nothing takes.
    UnknownFormat,
    /// A UTF-8 byte-order mark before `#!`.
    ShebangBom,
    /// The `#!` line ends in CR LF.
    ShebangCrlf,
    /// The `#!` interpreter does not exist.
    ShebangInterpreterMissing,
    /// The `#!` line is cut by the kernel's buffer.
    ShebangTooLong,
    /// `#!/usr/bin/env NAME` and NAME is in no PATH entry.
    EnvTargetMissing,
    /// A Git LFS pointer file instead of the binary.
    GitLfsPointer,
    /// A file of another platform or kind (PE, Mach-O, archive, HTML...).
    ForeignFormat,
    /// File capabilities the spec's bounding and inheritable sets cannot grant.
    FileCapsExceedBounding,
    /// Too many symbolic links on the way (ELOOP).
    SymlinkLoop,
    /// More nested interpreters than the kernel follows (ELOOP).
    TooManyInterpreters,
    /// A part execguard cannot see.
    Unverifiable,
    /// A runtime handler that does not exec an ELF (wasm, krun): not checked.
    RuntimeHandler,
    /// An ELF built for another architecture than the image's platform label says.
    PlatformLabelMismatch,
    /// A NUL byte in `process.args`: no C string holds one (runc refuses with EINVAL, crun
    /// cuts the argument there).
    NulInArgument,
    /// A `process.env` entry runc refuses before it starts anything: no `=`, an empty name,
    /// or a NUL byte.
    BadEnvironment,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: &'static [Code] = &[
        Code::NotFound,
        Code::IsDirectory,
        Code::NotRegular,
        Code::NotExecutable,
        Code::PermissionDeniedUser,
        Code::NoexecMount,
        Code::EmptyFile,
        Code::TruncatedElf,
        Code::ArchMismatch,
        Code::BinfmtHandlerDisabled,
        Code::BinfmtInterpreterUnreachable,
        Code::Emulated,
        Code::InterpreterMissing,
        Code::MissingLibrary,
        Code::IsaLevel,
        Code::PageSize,
        Code::NoShell,
        Code::NoShebang,
        Code::UnknownFormat,
        Code::ShebangBom,
        Code::ShebangCrlf,
        Code::ShebangInterpreterMissing,
        Code::ShebangTooLong,
        Code::EnvTargetMissing,
        Code::GitLfsPointer,
        Code::ForeignFormat,
        Code::FileCapsExceedBounding,
        Code::SymlinkLoop,
        Code::TooManyInterpreters,
        Code::Unverifiable,
        Code::RuntimeHandler,
        Code::PlatformLabelMismatch,
        Code::NulInArgument,
        Code::BadEnvironment,
    ];

    /// The code as written in output and configuration (`arch-mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "not-found",
            Code::IsDirectory => "is-directory",
            Code::NotRegular => "not-regular",
            Code::NotExecutable => "not-executable",
            Code::PermissionDeniedUser => "permission-denied-user",
            Code::NoexecMount => "noexec-mount",
            Code::EmptyFile => "empty-file",
            Code::TruncatedElf => "truncated-elf",
            Code::ArchMismatch => "arch-mismatch",
            Code::BinfmtHandlerDisabled => "binfmt-handler-disabled",
            Code::BinfmtInterpreterUnreachable => "binfmt-interpreter-unreachable",
            Code::Emulated => "emulated",
            Code::InterpreterMissing => "interpreter-missing",
            Code::MissingLibrary => "missing-library",
            Code::IsaLevel => "isa-level",
            Code::PageSize => "page-size",
            Code::NoShell => "no-shell",
            Code::NoShebang => "no-shebang",
            Code::UnknownFormat => "unknown-format",
            Code::ShebangBom => "shebang-bom",
            Code::ShebangCrlf => "shebang-crlf",
            Code::ShebangInterpreterMissing => "shebang-interpreter-missing",
            Code::ShebangTooLong => "shebang-too-long",
            Code::EnvTargetMissing => "env-target-missing",
            Code::GitLfsPointer => "git-lfs-pointer",
            Code::ForeignFormat => "foreign-format",
            Code::FileCapsExceedBounding => "file-caps-exceed-bounding",
            Code::SymlinkLoop => "symlink-loop",
            Code::TooManyInterpreters => "too-many-interpreters",
            Code::Unverifiable => "unverifiable",
            Code::RuntimeHandler => "runtime-handler",
            Code::PlatformLabelMismatch => "platform-label-mismatch",
            Code::NulInArgument => "nul-in-argument",
            Code::BadEnvironment => "bad-environment",
        }
    }

    /// Parse a code as written in configuration.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: exec works (or the part was not checked).
    Info,
    /// It may fail or run degraded.
    Warning,
    /// The kernel will refuse it, or the process cannot start.
    Error,
}

impl Severity {
    /// The word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The overall result of a diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing wrong was found.
    Ok,
    /// At least one warning, no error.
    Warn,
    /// At least one error.
    Fail,
    /// The program itself could not be inspected.
    Unknown,
}

/// One observation about the program, with what the kernel will do about it.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity.
    pub severity: Severity,
    /// A sentence that makes sense alone (podman shows one line only).
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The errno execve will return (`ENOEXEC`), or none when exec succeeds and the process dies.
    pub errno: Option<&'static str>,
    /// The line the user would otherwise see (`exec /app: exec format error`).
    pub expected_error: Option<String>,
    /// The container path the finding is about, escaped.
    pub path: Option<String>,
    /// Facts behind the finding.
    pub evidence: Map<String, Value>,
}

impl Finding {
    /// A finding with an empty evidence object.
    pub fn new(code: Code, severity: Severity, message: String, hint: String) -> Finding {
        Finding {
            code,
            severity,
            message,
            hint,
            errno: None,
            expected_error: None,
            path: None,
            evidence: Map::new(),
        }
    }

    /// Set the errno name.
    pub fn errno(mut self, errno: &'static str) -> Finding {
        self.errno = Some(errno);
        self
    }

    /// Set the line the user would otherwise see (`None`: not known exactly).
    pub fn expect(mut self, line: impl Into<Option<String>>) -> Finding {
        self.expected_error = line.into();
        self
    }

    /// Set the container path (raw bytes, escaped here).
    pub fn at(mut self, path: &[u8]) -> Finding {
        self.path = Some(escape_bytes(path));
        self
    }

    /// Add one evidence entry.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Finding {
        self.evidence.insert(key.to_string(), value.into());
        self
    }

    /// Add an evidence entry holding untrusted bytes (escaped).
    pub fn with_bytes(self, key: &str, value: &[u8]) -> Finding {
        self.with(key, escape_bytes(value))
    }
}

/// One program on the way to the process that really runs.
#[derive(Clone, Debug, Serialize)]
pub struct ChainLink {
    /// Container path of the program (escaped).
    pub path: String,
    /// Why it is in the chain: `process`, `init-wrapper-child`, `shell-command`,
    /// `shebang-interpreter`, `env-target`, `elf-interpreter`, `binfmt-interpreter`.
    pub role: &'static str,
}

/// What was checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Program {
    /// `process.args[0]` as written in the spec (escaped).
    pub args0: Option<String>,
    /// The container path args[0] resolved to (escaped).
    pub path: Option<String>,
    /// Every program checked, in exec order.
    pub chain: Vec<ChainLink>,
}

/// The current JSON schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole diagnosis of one process.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// Version of this JSON shape.
    pub schema_version: u32,
    /// Overall verdict.
    pub verdict: Verdict,
    /// What was checked.
    pub program: Program,
    /// Findings, leading finding first.
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// Build a diagnosis: order the findings (the first error in kernel order leads, then the
    /// other findings by severity, stable within a severity) and compute the verdict.
    pub fn new(program: Program, mut findings: Vec<Finding>) -> Diagnosis {
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let verdict = verdict_of(&findings);
        Diagnosis {
            schema_version: SCHEMA_VERSION,
            verdict,
            program,
            findings,
        }
    }

    /// Drop findings whose code the configuration silences, and recompute the verdict.
    pub fn silence(&mut self, codes: &[Code]) {
        self.findings.retain(|f| !codes.contains(&f.code));
        self.verdict = verdict_of(&self.findings);
    }

    /// The first finding, if it is a warning or an error.
    pub fn leading_problem(&self) -> Option<&Finding> {
        self.findings
            .first()
            .filter(|f| f.severity >= Severity::Warning)
    }

    /// The first error finding.
    pub fn leading_error(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.severity == Severity::Error)
    }
}

fn verdict_of(findings: &[Finding]) -> Verdict {
    if findings.iter().any(|f| f.severity == Severity::Error) {
        Verdict::Fail
    } else if findings.iter().any(|f| f.severity == Severity::Warning) {
        Verdict::Warn
    } else if !findings.is_empty() && findings.iter().all(|f| f.code == Code::Unverifiable) {
        Verdict::Unknown
    } else {
        Verdict::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(code: Code, sev: Severity) -> Finding {
        Finding::new(code, sev, String::new(), String::new())
    }

    #[test]
    fn codes_round_trip_and_match_serde() {
        for c in Code::ALL {
            assert_eq!(Code::parse(c.as_str()), Some(*c));
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json, Value::String(c.as_str().to_string()));
        }
    }

    #[test]
    fn errors_lead_and_order_is_stable() {
        let d = Diagnosis::new(
            Program::default(),
            vec![
                f(Code::Emulated, Severity::Info),
                f(Code::BinfmtHandlerDisabled, Severity::Warning),
                f(Code::ArchMismatch, Severity::Error),
                f(Code::InterpreterMissing, Severity::Error),
            ],
        );
        let codes: Vec<_> = d.findings.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [
                Code::ArchMismatch,
                Code::InterpreterMissing,
                Code::BinfmtHandlerDisabled,
                Code::Emulated
            ]
        );
        assert_eq!(d.verdict, Verdict::Fail);
    }

    #[test]
    fn verdicts() {
        let v = |fs: Vec<Finding>| Diagnosis::new(Program::default(), fs).verdict;
        assert_eq!(v(vec![]), Verdict::Ok);
        assert_eq!(v(vec![f(Code::Emulated, Severity::Info)]), Verdict::Ok);
        assert_eq!(
            v(vec![f(Code::Unverifiable, Severity::Info)]),
            Verdict::Unknown
        );
        assert_eq!(
            v(vec![f(Code::ShebangCrlf, Severity::Warning)]),
            Verdict::Warn
        );
    }

    #[test]
    fn silencing_recomputes_the_verdict() {
        let mut d = Diagnosis::new(
            Program::default(),
            vec![f(Code::ArchMismatch, Severity::Error)],
        );
        d.silence(&[Code::ArchMismatch]);
        assert_eq!(d.verdict, Verdict::Ok);
        assert!(d.findings.is_empty());
    }
}
