//! Renderings of a [`Diagnosis`]: the JSON document, the text a person reads, the short
//! `execguard:` block on a container's stderr, and the runtime's own log-line formats.
//!
//! All untrusted text was escaped when the findings were built (see `sanitize`), so the
//! renderers only lay it out.

use std::time::{SystemTime, UNIX_EPOCH};

use super::finding::{Diagnosis, Finding, Severity, Verdict};

/// The JSON document (`check --format json`, one line).
pub fn json(d: &Diagnosis) -> String {
    // Serialising our own types cannot fail: every map key is a string.
    serde_json::to_string(d).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The first line of a finding: the cause alone, with the code.
pub fn headline(f: &Finding) -> String {
    format!("{} [{}]", f.message, f.code.as_str())
}

/// One line saying what the kernel will return, if anything is known.
fn expect_line(f: &Finding) -> Option<String> {
    match (&f.expected_error, f.errno) {
        (Some(line), Some(errno)) => Some(format!("the start will fail with: {line} ({errno})")),
        (Some(line), None) => Some(format!("the start will fail with: {line}")),
        (None, Some(errno)) => Some(format!("execve returns {errno}")),
        (None, None) => None,
    }
}

/// The short block written on stderr during `create`/`run` when there is a warning or an error,
/// every line prefixed `execguard: `. Empty for ok and info-only diagnoses.
pub fn stderr_block(d: &Diagnosis, line_end: &str) -> String {
    let Some(lead) = d.leading_problem() else {
        return String::new();
    };
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str("execguard: ");
        out.push_str(s);
        out.push_str(line_end);
    };
    line(&headline(lead));
    if let Some(e) = expect_line(lead) {
        line(&format!("  {e}"));
    }
    if !lead.hint.is_empty() {
        line(&format!("  hint: {}", lead.hint));
    }
    for f in d.findings.iter().skip(1) {
        if f.severity >= Severity::Warning {
            line(&format!("  also {}: {}", f.severity.as_str(), headline(f)));
        }
    }
    out
}

/// The message of one runtime log line (`--log`): cause, code and hint on one line.
pub fn log_message(f: &Finding) -> String {
    let mut msg = format!("execguard: {}", headline(f));
    if let Some(e) = expect_line(f) {
        msg.push_str("; ");
        msg.push_str(&e);
    }
    if !f.hint.is_empty() {
        msg.push_str("; hint: ");
        msg.push_str(&f.hint);
    }
    msg
}

/// The text a person at a terminal reads (`check` without `--format json`).
/// Whether people-facing text gets colour: only on a terminal, and never when `NO_COLOR` is
/// set to anything but the empty string (no-color.org).
pub fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// `text` painted by `paint` when it goes to a terminal on stdout and [`use_colour`] says so.
pub fn for_stdout(text: String, paint: fn(&str) -> String) -> String {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR");
    if use_colour(std::io::stdout().is_terminal(), no_color.as_deref()) {
        paint(&text)
    } else {
        text
    }
}

/// The text report with ANSI colour: severities and verdicts by weight, hints in green. Only
/// whole known prefixes are coloured; the (already escaped) untrusted text is left as it is.
pub fn colourize(text: &str) -> String {
    const RED: &str = "\x1b[1;31m";
    const YELLOW: &str = "\x1b[1;33m";
    const CYAN: &str = "\x1b[36m";
    const GREEN: &str = "\x1b[32m";
    const BOLD: &str = "\x1b[1m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let paint = |prefix: &str, colour: &str| {
            line.strip_prefix(prefix)
                .map(|rest| format!("{colour}{prefix}{RESET}{rest}"))
        };
        let painted = paint("error:", RED)
            .or_else(|| paint("warning:", YELLOW))
            .or_else(|| paint("info:", CYAN))
            .or_else(|| paint("  hint:", GREEN))
            .or_else(|| {
                // The verdict line: `<program>: fail: ...`.
                [(": fail: ", RED), (": warn: ", YELLOW), (": ok: ", GREEN)]
                    .iter()
                    .find_map(|(word, colour)| {
                        let at = line.find(word)?;
                        let (head, tail) = line.split_at(at + 2);
                        let verdict_end = tail.find(':')?;
                        let (verdict, rest) = tail.split_at(verdict_end);
                        Some(format!("{BOLD}{head}{RESET}{colour}{verdict}{RESET}{rest}"))
                    })
            });
        out.push_str(painted.as_deref().unwrap_or(line));
    }
    out
}

pub fn text(d: &Diagnosis) -> String {
    let mut out = String::new();
    let what = d
        .program
        .path
        .as_deref()
        .or(d.program.args0.as_deref())
        .unwrap_or("(no process)");
    let verdict = match d.verdict {
        Verdict::Ok => "ok: it can be exec'd",
        Verdict::Warn => "warn: it may fail or run degraded",
        Verdict::Fail => "fail: the start will fail",
        Verdict::Unknown => "unknown: it could not be inspected",
    };
    out.push_str(&format!("{what}: {verdict}\n"));
    if d.program.chain.len() > 1 {
        let chain: Vec<String> = d
            .program
            .chain
            .iter()
            .map(|c| format!("{} ({})", c.path, c.role))
            .collect();
        out.push_str(&format!("  chain: {}\n", chain.join(" -> ")));
    }
    for f in &d.findings {
        out.push_str(&format!("\n{}: {}\n", f.severity.as_str(), headline(f)));
        if let Some(p) = &f.path {
            out.push_str(&format!("  path: {p}\n"));
        }
        if let Some(e) = expect_line(f) {
            out.push_str(&format!("  {e}\n"));
        }
        if !f.hint.is_empty() {
            out.push_str(&format!("  hint: {}\n", f.hint));
        }
        for (k, v) in &f.evidence {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out
}

/// The JSON document of `check --rootfs` / `check --image-tar` (one line): the schema version,
/// an overall verdict and one report per root or image, each with its summary per code and its
/// diagnoses in the same shape as [`json`].
pub fn sweep_json(reports: &[crate::sweep::Report]) -> String {
    let verdict = if reports.iter().any(|r| r.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if reports.iter().any(|r| r.verdict == Verdict::Warn) {
        Verdict::Warn
    } else if reports.iter().any(|r| r.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Ok
    };
    let doc = serde_json::json!({
        "schema_version": super::finding::SCHEMA_VERSION,
        "verdict": verdict,
        "reports": reports,
    });
    doc.to_string()
}

/// The text of `check --rootfs` / `check --image-tar`: per report, what was swept, then one
/// line per warning or error (`PROGRAM: SEVERITY: cause [code]`), or each diagnosis in full
/// for an image's process and explicit paths, then the summary per code.
pub fn sweep_text(reports: &[crate::sweep::Report]) -> String {
    use crate::sweep::Target;
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match &r.target {
            Target::Rootfs { path } => out.push_str(&format!("rootfs {path}\n")),
            Target::Image(t) => {
                out.push_str(&format!(
                    "image {} ({}) in {}\n  entrypoint: {:?}\n  cmd: {:?}\n  user: {}\n",
                    t.name.as_deref().unwrap_or("(unnamed)"),
                    t.platform.as_deref().unwrap_or("no platform label"),
                    t.file,
                    t.entrypoint,
                    t.cmd,
                    if t.user.is_empty() { "(root)" } else { &t.user },
                ));
            }
        }
        for n in &r.notes {
            out.push_str(&format!("  note: {n}\n"));
        }
        for d in &r.diagnoses {
            if r.detailed {
                out.push('\n');
                out.push_str(&text(d));
                continue;
            }
            let who = d
                .program
                .args0
                .as_deref()
                .or(d.program.path.as_deref())
                .unwrap_or("(no process)");
            // Warnings and errors; and the directories a walk could not sweep.
            let walk_note = d.program.args0.is_none();
            for f in d
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Warning || walk_note)
            {
                out.push_str(&format!(
                    "{who}: {}: {}\n",
                    f.severity.as_str(),
                    headline(f)
                ));
            }
        }
        let s = &r.summary;
        let plural = |n: usize, one: &str| {
            if n == 1 {
                format!("{n} {one}")
            } else {
                format!("{n} {one}s")
            }
        };
        out.push_str(&format!(
            "\n{}: {} checked, {} with errors, {} with warnings ({}, {}, {} info)\n",
            match r.verdict {
                Verdict::Ok => "ok",
                Verdict::Warn => "warn",
                Verdict::Fail => "fail",
                Verdict::Unknown => "incomplete",
            },
            plural(r.checked, "program"),
            s.files_with_errors,
            s.files_with_warnings,
            plural(s.errors, "error"),
            plural(s.warnings, "warning"),
            s.infos,
        ));
        for (code, c) in &s.codes {
            let mut parts = Vec::new();
            if c.error > 0 {
                parts.push(plural(c.error, "error"));
            }
            if c.warning > 0 {
                parts.push(plural(c.warning, "warning"));
            }
            if c.info > 0 {
                parts.push(format!("{} info", c.info));
            }
            out.push_str(&format!("  {code}: {}\n", parts.join(", ")));
        }
    }
    out
}

/// A line in the runtime's JSON log format (`{"level","msg","time"}`), as runc's logrus and
/// crun's `make_json_error` write it; containerd's shim shows the `msg` of the last `error` line.
pub fn runtime_json_line(level: &str, msg: &str, now: SystemTime) -> String {
    let obj = serde_json::json!({ "level": level, "msg": msg, "time": rfc3339(now) });
    format!("{obj}\n")
}

/// A line in runc's text log format (logrus `TextFormatter`).
pub fn runtime_text_line(level: &str, msg: &str, now: SystemTime) -> String {
    let quoted = serde_json::Value::String(msg.to_string()).to_string();
    format!("time=\"{}\" level={level} msg={quoted}\n", rfc3339(now))
}

/// RFC 3339 UTC time with seconds (`2026-12-01T08:51:23Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::super::finding::{Code, Program};
    use super::*;
    use std::time::Duration;

    fn sample() -> Diagnosis {
        let f = Finding::new(
            Code::ArchMismatch,
            Severity::Error,
            "/app is an ELF for aarch64".into(),
            "install qemu-user-static".into(),
        )
        .errno("ENOEXEC")
        .expect("exec /app: exec format error".to_string());
        let w = Finding::new(
            Code::BinfmtHandlerDisabled,
            Severity::Warning,
            "handler qemu-aarch64 is disabled".into(),
            String::new(),
        );
        Diagnosis::new(Program::default(), vec![w, f])
    }

    #[test]
    fn sweep_text_is_one_line_per_problem_then_the_summary() {
        use crate::sweep::{Report, Target};
        let mut d = sample();
        d.program.args0 = Some("/app".into());
        let clean = Diagnosis::new(
            Program {
                args0: Some("/ok".into()),
                ..Program::default()
            },
            vec![],
        );
        let r = Report::new(
            Target::Rootfs {
                path: "/root".into(),
            },
            vec![d, clean],
            false,
            vec![],
        );
        let t = sweep_text(std::slice::from_ref(&r));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "rootfs /root");
        assert_eq!(
            lines[1],
            "/app: error: /app is an ELF for aarch64 [arch-mismatch]"
        );
        assert_eq!(
            lines[2],
            "/app: warning: handler qemu-aarch64 is disabled [binfmt-handler-disabled]"
        );
        assert_eq!(
            lines[4],
            "fail: 2 programs checked, 1 with errors, 0 with warnings (1 error, 1 warning, 0 info)"
        );
        assert_eq!(lines[5], "  arch-mismatch: 1 error");
        assert_eq!(lines[6], "  binfmt-handler-disabled: 1 warning");
        let v: serde_json::Value = serde_json::from_str(&sweep_json(&[r])).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["verdict"], "fail");
        assert_eq!(v["reports"][0]["checked"], 2);
        // Only programs with a finding are listed in a sweep.
        assert_eq!(v["reports"][0]["diagnoses"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["reports"][0]["summary"]["codes"]["arch-mismatch"]["error"],
            1
        );
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_115_083);
        assert_eq!(rfc3339(t), "2026-12-01T08:51:23Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn stderr_block_leads_with_the_cause_and_prefixes_every_line() {
        let b = stderr_block(&sample(), "\n");
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(
            lines[0],
            "execguard: /app is an ELF for aarch64 [arch-mismatch]"
        );
        assert!(lines.iter().all(|l| l.starts_with("execguard: ")));
        assert!(b.contains("exec /app: exec format error (ENOEXEC)"));
        assert!(b.contains("[binfmt-handler-disabled]"));
    }

    #[test]
    fn stderr_block_is_empty_for_ok() {
        let d = Diagnosis::new(Program::default(), vec![]);
        assert_eq!(stderr_block(&d, "\n"), "");
    }

    #[test]
    fn runtime_json_line_has_the_three_keys() {
        let l = runtime_json_line("error", "execguard: x\ny", UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "execguard: x\ny");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
    }

    #[test]
    fn runtime_text_line_quotes_the_message() {
        let l = runtime_text_line("warning", "a \"b\"", UNIX_EPOCH);
        assert_eq!(
            l,
            "time=\"1970-01-01T00:00:00Z\" level=warning msg=\"a \\\"b\\\"\"\n"
        );
    }
}

#[cfg(test)]
mod colour_tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn colourize_paints_prefixes_and_keeps_the_text() {
        let t = "/app: fail: the start will fail\n\nerror: /app is bad [x]\n  hint: rebuild\n  path: /app\n";
        let c = colourize(t);
        assert!(c.contains("\x1b[1;31merror:\x1b[0m /app is bad [x]"));
        assert!(c.contains("\x1b[32m  hint:\x1b[0m rebuild"));
        assert!(c.contains("\x1b[1;31mfail\x1b[0m: the start will fail"));
        let mut stripped = String::new();
        let mut chars = c.chars();
        while let Some(ch) = chars.next() {
            if ch == '\x1b' {
                for n in chars.by_ref() {
                    if n == 'm' {
                        break;
                    }
                }
            } else {
                stripped.push(ch);
            }
        }
        assert_eq!(stripped, t, "colour adds escapes only");
    }
}
