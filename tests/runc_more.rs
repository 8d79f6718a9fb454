//! More findings proven against the real runtimes: symbolic-link loops, nested `#!`
//! interpreters at the kernel's limit, unusable ELF loaders, emulation of a dynamic foreign
//! binary, `#!` warnings, text files without `#!`, wrapper chains (tini, Docker's `--init`,
//! `sh -c`), mounts execguard cannot see, runtime handlers, the hidden host-machine seam, and
//! crun behind execguard.
//!
//! Each case builds a real bundle, runs it through the real runtime and asserts what really
//! happens (exit status compared, never hard-coded; the kernel's or runtime's text on stderr),
//! then asserts that `execguard check --format json` leads with the predicted code (and errno),
//! that its `expected_error` (when not null) is what the runtime printed, and that in wrapper
//! mode execguard's `[code]` block comes before the runtime's own line.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

/// The second real runtime.
const CRUN: &str = "/usr/bin/crun";
/// Docker's `--init` binary on this host (a link to tini-static).
const DOCKER_INIT: &str = "/usr/bin/docker-init";

// ---------------------------------------------------------------------------------------------
// Helpers of this file

/// What a failing bundle must look like under the runtime and under execguard.
struct Want<'a> {
    /// Leading finding code.
    code: &'a str,
    /// Leading finding errno (`None`: the JSON holds null, the exec itself succeeds).
    errno: Option<&'a str>,
    /// Text the runtime's stderr must contain (compared lower-case).
    runtime_text: &'a str,
    /// Leading finding path, when the test pins it.
    path: Option<&'a str>,
    /// `(path, role)` entries `program.chain` must hold.
    chain: &'a [(&'a str, &'a str)],
}

fn want<'a>(code: &'a str, errno: &'a str, runtime_text: &'a str) -> Want<'a> {
    Want {
        code,
        errno: Some(errno),
        runtime_text,
        path: None,
        chain: &[],
    }
}

/// Asserts the leading finding of `check` against `w` (code, severity error, errno, path) and
/// the verdict `fail`.
fn assert_leading_error(check: &Check, tag: &str, w: &Want) {
    let lead = check.leading();
    assert_eq!(
        lead["code"],
        w.code,
        "leading code for {tag}; codes {:?}; json {}",
        check.codes(),
        check.json
    );
    assert_eq!(
        lead["severity"], "error",
        "leading severity for {tag}: {lead}"
    );
    match w.errno {
        Some(e) => assert_eq!(lead["errno"], e, "leading errno for {tag}: {lead}"),
        None => assert!(
            lead["errno"].is_null(),
            "errno must be null for {tag}: {lead}"
        ),
    }
    if let Some(p) = w.path {
        assert_eq!(lead["path"], p, "leading path for {tag}: {lead}");
    }
    assert_eq!(
        check.json["verdict"], "fail",
        "verdict for {tag}: {}",
        check.json
    );
}

/// The leading finding's `expected_error`, when not null, must be in the runtime's stderr.
fn assert_expected_error_is_real(check: &Check, tag: &str, real: &Outcome) {
    if let Some(expected) = check.leading()["expected_error"].as_str() {
        assert!(
            unescape_runc(&real.stderr).contains(expected),
            "expected_error {expected:?} for {tag} is not what the runtime printed: {:?}",
            real.stderr
        );
    }
}

/// Wrapper mode: the first stderr line is `execguard: ... [code]`, the block is contiguous, and
/// `runtime_text` (if any) comes after it.
fn assert_block_first(wrapped: &Outcome, tag: &str, code: &str, runtime_text: Option<&str>) {
    let lines = wrapped.stderr_lines();
    let tagged = format!("[{code}]");
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("execguard: ") && l.contains(&tagged)),
        "first stderr line for {tag} must be `execguard: ... {tagged}`: {:?}",
        wrapped.stderr
    );
    let end = lines
        .iter()
        .position(|l| !l.starts_with("execguard: "))
        .unwrap_or(lines.len());
    let after = lines[end..].join("\n");
    assert!(
        !after.contains("execguard: "),
        "execguard's block must be contiguous and before the runtime's output for {tag}: {:?}",
        wrapped.stderr
    );
    if let Some(t) = runtime_text {
        assert!(
            after.to_lowercase().contains(&t.to_lowercase()),
            "the runtime's {t:?} must come after execguard's block for {tag}: {:?}",
            wrapped.stderr
        );
    }
}

/// Checks first (before runc creates mount points in the root), then the real runc, then
/// execguard in front of runc; asserts the prediction on all three.
fn prove_fails(b: &Bundle, tag: &str, w: &Want) -> Check {
    let check = execguard_check(b);
    let real = runc_run(b, tag);
    assert_ne!(
        real.code(),
        0,
        "runc must fail for {tag}, it succeeded: {real:?}"
    );
    assert!(
        real.stderr
            .to_lowercase()
            .contains(&w.runtime_text.to_lowercase()),
        "runc stderr for {tag} lacks {:?}: {real:?}",
        w.runtime_text
    );
    assert_leading_error(&check, tag, w);
    for (path, role) in w.chain {
        assert_chain_role(&check, path, role);
    }

    let wrapped = execguard_run(b, &format!("{tag}-w"), &[]);
    assert_eq!(
        wrapped.code(),
        real.code(),
        "execguard run must exit like runc for {tag}: {wrapped:?}"
    );
    assert_eq!(
        wrapped.stdout, real.stdout,
        "stdout under execguard for {tag}"
    );
    assert_block_first(&wrapped, tag, w.code, Some(w.runtime_text));
    // Last, so that a wrong prediction of the runtime's words is reported after everything
    // else about the case has been proven.
    assert_expected_error_is_real(&check, tag, &real);
    check
}

/// A bundle that must work: runc succeeds with `stdout`, execguard finds no error and no
/// warning, and `execguard run` adds nothing.
fn prove_runs(b: &Bundle, tag: &str, stdout: &str) -> Check {
    let check = execguard_check(b);
    let real = runc_run(b, tag);
    assert_eq!(real.code(), 0, "runc must succeed for {tag}: {real:?}");
    assert_eq!(real.stdout, stdout, "runc stdout for {tag}: {real:?}");
    assert!(
        !check.has_error() && !check.has_warning(),
        "no error or warning expected for {tag}: {}",
        check.json
    );
    let wrapped = execguard_run(b, &format!("{tag}-w"), &[]);
    assert_eq!(
        wrapped.code(),
        0,
        "exit under execguard for {tag}: {wrapped:?}"
    );
    assert_eq!(
        wrapped.stdout, real.stdout,
        "stdout under execguard for {tag}"
    );
    assert_eq!(
        wrapped.stderr, real.stderr,
        "execguard must add nothing to stderr for {tag}"
    );
    check
}

/// `execguard check --bundle DIR --format json EXTRA...` (the hidden host flags), parsed.
fn check_with(b: &Bundle, extra: &[&str]) -> Value {
    execguard_check_with(b, extra).json
}

/// The chain entry for `path` must have `role`.
fn assert_chain_role(check: &Check, path: &str, role: &str) {
    let chain = check.json["program"]["chain"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        chain.iter().any(|l| l["path"] == path && l["role"] == role),
        "program.chain lacks {{path: {path}, role: {role}}}: {}",
        check.json
    );
}

/// A root holding `arch`'s static busybox at `inner`, plus (for wrappers) the host busybox as
/// `/bin/sh` when `with_sh`.
fn root_with_foreign(arch: &str, inner: &str, with_sh: bool) -> Option<Bundle> {
    let src = foreign_busybox(arch)?;
    let b = if with_sh {
        Bundle::busybox()
    } else {
        Bundle::empty()
    };
    b.copy_in(src, inner, Some(0o755));
    Some(b)
}

/// True when qemu-aarch64-static exists on the host (else a skip).
fn qemu_ready() -> bool {
    require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    )
}

/// The dynamic arm64 busybox fixture (`arm64-dyn/`), or a skip.
fn arm64_dyn() -> Option<PathBuf> {
    let d = fixtures_dir().join("arm64-dyn");
    let ok = d.join("bin/busybox").is_file()
        && fs::symlink_metadata(d.join("lib/ld-linux-aarch64.so.1")).is_ok();
    if require(
        ok,
        &format!(
            "fixture {} (dpkg -x of busybox:arm64 and libc6:arm64) is missing",
            d.display()
        ),
    ) {
        Some(d)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// crun behind execguard

/// Deletes a crun container when dropped, also when the test panics.
struct CrunGuard(String);

impl Drop for CrunGuard {
    fn drop(&mut self) {
        let _ = Command::new(CRUN)
            .args(["delete", "-f", &self.0])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Root, crun and unshare: what the crun cases need.
fn crun_ready() -> bool {
    runtime_ready()
        && require(
            Path::new(CRUN).exists(),
            "crun is not installed at /usr/bin/crun",
        )
        && require(
            Path::new("/usr/bin/unshare").exists(),
            "unshare (util-linux) is missing",
        )
}

/// `crun run -b BUNDLE ID`, or the same through execguard (`--execguard-runtime=/usr/bin/crun`),
/// inside a private mount namespace without `/sys/fs/cgroup/unified` (this host's hybrid
/// cgroups make crun's create/run fail otherwise). Deleted afterwards.
fn crun_run(b: &Bundle, tag: &str, via_execguard: bool) -> Outcome {
    b.save();
    let id = unique_id(tag);
    let _g = CrunGuard(id.clone());
    let mut c = Command::new("/usr/bin/unshare");
    c.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
        "sh",
    ]);
    if via_execguard {
        c.arg(execguard_bin())
            .arg(format!("--execguard-runtime={CRUN}"));
    } else {
        c.arg(CRUN);
    }
    c.arg("run").arg("-b").arg(b.path()).arg(&id);
    let cleanup_id = id.clone();
    run_limited(c, &format!("crun run {id}"), move || {
        drop(CrunGuard(cleanup_id));
    })
}

/// crun fails with `crun_text`, execguard check leads with `code`, and in front of crun the
/// block comes first and crun's text after it, crun's exit status unchanged. execguard's
/// `expected_error` follows runc's wording, so it is not compared here.
fn prove_fails_crun(b: &Bundle, tag: &str, code: &str, crun_text: &str) {
    let check = execguard_check(b);
    assert_eq!(
        check.leading()["code"],
        code,
        "leading code for {tag}: {}",
        check.json
    );
    assert_eq!(check.json["verdict"], "fail", "{}", check.json);
    let real = crun_run(b, tag, false);
    assert_ne!(real.code(), 0, "crun must fail for {tag}: {real:?}");
    assert!(
        real.stderr.contains(crun_text),
        "crun stderr for {tag} lacks {crun_text:?}: {real:?}"
    );
    let wrapped = crun_run(b, &format!("{tag}-w"), true);
    assert_eq!(
        wrapped.code(),
        real.code(),
        "execguard must exit like crun for {tag}: {wrapped:?}"
    );
    assert_eq!(wrapped.stdout, real.stdout, "stdout for {tag}");
    assert_block_first(&wrapped, tag, code, Some(crun_text));
}

// ---------------------------------------------------------------------------------------------
// 1. symlink-loop

/// `/d0/echo` → `/d1/echo` → ... → `/d{n-1}/echo` → `/bin/busybox`: exactly `n` links, and the
/// last path component stays `echo` so busybox runs its echo applet.
fn link_chain(n: usize) -> Bundle {
    let mut b = Bundle::busybox();
    for i in 0..n {
        let target = if i + 1 == n {
            "/bin/busybox".to_string()
        } else {
            format!("/d{}/echo", i + 1)
        };
        b.symlink(&format!("/d{i}/echo"), &target);
    }
    b.args(&["/d0/echo", "hi"]);
    b
}

#[test]
fn a_chain_of_41_links_is_symlink_loop_and_a_shorter_chain_still_runs() {
    if !runtime_ready() {
        return;
    }
    // fs/namei.c: MAXSYMLINKS is 40.
    let b = link_chain(41);
    let c = prove_fails(
        &b,
        "loop41",
        &Want {
            path: Some("/d0/echo"),
            ..want("symlink-loop", "ELOOP", "too many levels of symbolic links")
        },
    );
    assert!(c.find("symlink-loop").is_some(), "{}", c.json);
    // Exactly 40 runs too, but not always: when an RCU path walk falls back to a ref walk
    // (-ECHILD, which other tests' file churn provokes) the links of both attempts can be
    // counted, and runc got ELOOP at 40 and at 30 with the suite running in parallel.
    // 15 stays clear of that even counted twice.
    let b = link_chain(15);
    prove_runs(&b, "loop15", "hi\n");
}

#[test]
fn a_link_to_itself_is_symlink_loop() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.symlink("/app", "app");
    b.args(&["/app"]);
    prove_fails(
        &b,
        "selfloop",
        &Want {
            path: Some("/app"),
            ..want("symlink-loop", "ELOOP", "too many levels of symbolic links")
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 2. too-many-interpreters

/// `/s1` `#!/s2`, ..., `/s{n}` `#!/bin/sh` echoing `nested-ran`: `n` nested scripts.
fn nested_scripts(n: usize) -> Bundle {
    let mut b = Bundle::busybox();
    for i in 1..=n {
        let text = if i < n {
            format!("#!/s{}\n", i + 1)
        } else {
            "#!/bin/sh\necho nested-ran\n".to_string()
        };
        b.write(&format!("/s{i}"), text.as_bytes(), 0o755);
    }
    b.args(&["/s1"]);
    b
}

#[test]
fn nested_scripts_fail_exactly_where_the_kernel_stops_and_run_one_level_below() {
    if !runtime_ready() {
        return;
    }
    // Find the kernel's limit by trying (fs/exec.c exec_binprm: depth > 5 → ELOOP).
    let mut limit = None;
    for n in 1..=8 {
        let o = runc_run(&nested_scripts(n), &format!("nest-probe{n}"));
        if o.code() == 0 {
            assert_eq!(o.stdout, "nested-ran\n", "{n} scripts: {o:?}");
            continue;
        }
        assert!(
            o.stderr.contains("too many levels of symbolic links"),
            "{n} nested scripts failed, but not with ELOOP: {o:?}"
        );
        limit = Some(n);
        break;
    }
    let limit = limit.expect("8 nested scripts still ran: no ELOOP limit found");
    assert!(limit >= 2, "even one script fails: {limit}");
    eprintln!(
        "the kernel refuses {limit} nested scripts (runs {})",
        limit - 1
    );

    let below = nested_scripts(limit - 1);
    let c = prove_runs(&below, "nest-below", "nested-ran\n");
    assert!(c.find("too-many-interpreters").is_none(), "{}", c.json);

    let at = nested_scripts(limit);
    prove_fails(
        &at,
        "nest-at",
        &want(
            "too-many-interpreters",
            "ELOOP",
            "too many levels of symbolic links",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. interpreter-missing: a loader that is there but unusable

/// `/bin/ls` (dynamic x86_64) in a busybox root, its loader path free.
fn ls_bundle() -> Bundle {
    let mut b = Bundle::busybox();
    b.copy_in("/bin/ls", "/bin/ls", Some(0o755));
    b.args(&["/bin/ls", "/"]);
    b
}

/// The PT_INTERP path of the host's /bin/ls.
const LS_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

#[test]
fn an_arm64_file_as_the_x86_64_loader_is_interpreter_missing_with_elibbad() {
    if !runtime_ready() {
        return;
    }
    let Some(arm) = foreign_busybox("arm64") else {
        return;
    };
    let b = ls_bundle();
    b.copy_in(&arm, LS_LOADER, Some(0o755));
    prove_fails(
        &b,
        "ld-elibbad",
        &Want {
            path: Some("/bin/ls"),
            chain: &[("/bin/ls", "process"), (LS_LOADER, "elf-interpreter")],
            ..want(
                "interpreter-missing",
                "ELIBBAD",
                "accessing a corrupted shared library",
            )
        },
    );
}

#[test]
fn a_loader_with_mode_0644_is_interpreter_missing_with_eacces() {
    if !runtime_ready() {
        return;
    }
    let b = ls_bundle();
    b.copy_in(LS_LOADER, LS_LOADER, Some(0o644));
    prove_fails(
        &b,
        "ld-0644",
        &Want {
            path: Some("/bin/ls"),
            ..want("interpreter-missing", "EACCES", "permission denied")
        },
    );
}

#[test]
fn a_loader_on_a_noexec_bind_mount_is_interpreter_missing_with_eacces() {
    if !runtime_ready() {
        return;
    }
    let host = tempfile::tempdir().expect("host folder");
    fs::copy(LS_LOADER, host.path().join("ld-linux-x86-64.so.2")).expect("copy loader");
    fs::set_permissions(
        host.path().join("ld-linux-x86-64.so.2"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod loader");
    let mut b = ls_bundle();
    b.bind(host.path(), "/lib64", &["noexec"]);
    let c = prove_fails(
        &b,
        "ld-noexec",
        &Want {
            path: Some("/bin/ls"),
            ..want("interpreter-missing", "EACCES", "permission denied")
        },
    );
    let lead = c.leading();
    assert!(
        lead["message"]
            .as_str()
            .is_some_and(|m| m.contains("noexec")),
        "the message names the noexec mount: {lead}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. a dynamic arm64 busybox under emulation

#[test]
fn an_emulated_dynamic_arm64_busybox_without_its_loader_is_interpreter_missing() {
    if !runtime_ready() || !qemu_ready() {
        return;
    }
    let Some(dyn_dir) = arm64_dyn() else {
        return;
    };
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let mut b = Bundle::empty();
    b.copy_in(dyn_dir.join("bin/busybox"), "/bin/busybox", Some(0o755));
    b.args(&["/bin/busybox", "echo", "hi"]);
    guard.register_aarch64(QEMU_AARCH64, "F");
    if !guard.require_only_ours_for(&b.host("/bin/busybox")) {
        return;
    }
    // qemu execs fine (F: the kernel opened it at registration) and then cannot open the
    // program's loader inside the container.
    let c = prove_fails(
        &b,
        "emu-nold",
        &Want {
            code: "interpreter-missing",
            errno: None,
            runtime_text: "Could not open '/lib/ld-linux-aarch64.so.1'",
            path: Some("/bin/busybox"),
            chain: &[("/bin/busybox", "process")],
        },
    );
    let e = c
        .find("emulated")
        .unwrap_or_else(|| panic!("no `emulated` finding: {}", c.json));
    assert_eq!(e["severity"], "info", "{e}");
}

#[test]
fn an_emulated_dynamic_arm64_busybox_with_its_libc_runs() {
    if !runtime_ready() || !qemu_ready() {
        return;
    }
    let Some(dyn_dir) = arm64_dyn() else {
        return;
    };
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let mut b = Bundle::empty();
    b.copy_in(dyn_dir.join("bin/busybox"), "/bin/busybox", Some(0o755));
    // The loader link (relative, as libc6:arm64 ships it) and the libraries busybox needs.
    let link = fs::read_link(dyn_dir.join("lib/ld-linux-aarch64.so.1")).expect("readlink loader");
    b.symlink("/lib/ld-linux-aarch64.so.1", link.to_str().expect("utf-8"));
    for lib in ["ld-linux-aarch64.so.1", "libc.so.6", "libresolv.so.2"] {
        b.copy_in(
            dyn_dir.join("lib/aarch64-linux-gnu").join(lib),
            &format!("/lib/aarch64-linux-gnu/{lib}"),
            Some(0o755),
        );
    }
    b.args(&["/bin/busybox", "echo", "hi"]);
    guard.register_aarch64(QEMU_AARCH64, "F");
    if !guard.require_only_ours_for(&b.host("/bin/busybox")) {
        return;
    }
    let c = prove_runs(&b, "emu-ld", "hi\n");
    let e = c
        .find("emulated")
        .unwrap_or_else(|| panic!("no `emulated` finding: {}", c.json));
    assert_eq!(e["severity"], "info", "{e}");
    assert!(c.find("interpreter-missing").is_none(), "{}", c.json);
}

// ---------------------------------------------------------------------------------------------
// 5. #! warnings

#[test]
fn a_crlf_shebang_with_a_shell_option_is_a_shebang_crlf_error_and_busybox_sh_refuses_it() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.write("/app", b"#!/bin/sh -e\r\necho hi\r\n", 0o755);
    b.args(&["/app"]);
    let check = execguard_check(&b);
    let f = check
        .find("shebang-crlf")
        .unwrap_or_else(|| panic!("no shebang-crlf: {}", check.json));
    // The exec succeeds, but a shell refuses the option "-e\r" and runs nothing: an error.
    assert_eq!(f["severity"], "error", "{f}");
    assert_eq!(check.leading()["code"], "shebang-crlf", "{}", check.json);
    assert!(check.has_error(), "{}", check.json);
    assert_eq!(check.json["verdict"], "fail", "{}", check.json);

    // The exec succeeds; busybox sh then gets the option "-e\r" and stops before any line.
    let real = runc_run(&b, "crlf-arg");
    assert_ne!(real.code(), 0, "busybox sh accepted \"-e\\r\": {real:?}");
    assert!(
        real.stderr.contains("illegal option"),
        "busybox sh's complaint: {real:?}"
    );
    assert_eq!(real.stdout, "", "no line of the script ran: {real:?}");
    assert_expected_error_is_real(&check, "crlf-arg", &real);

    let wrapped = execguard_run(&b, "crlf-arg-w", &[]);
    assert_eq!(wrapped.code(), real.code(), "{wrapped:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert_block_first(&wrapped, "crlf-arg", "shebang-crlf", Some("illegal option"));
}

#[test]
fn a_shebang_line_over_256_bytes_cuts_only_the_argument_and_still_runs() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.applets(&["echo"]);
    let prefix = b"#!/bin/echo ";
    let mut text = prefix.to_vec();
    text.extend(std::iter::repeat_n(b'x', 300));
    text.extend_from_slice(b"\necho body\n");
    b.write("/app", &text, 0o755);
    b.args(&["/app"]);
    let check = execguard_check(&b);
    let f = check
        .find("shebang-too-long")
        .unwrap_or_else(|| panic!("no shebang-too-long: {}", check.json));
    assert_eq!(f["severity"], "warning", "{f}");
    assert!(!check.has_error(), "{}", check.json);
    assert_eq!(check.json["verdict"], "warn", "{}", check.json);

    // fs/binfmt_script.c load_script: without a newline in the 256-byte buffer the line ends at
    // its last byte (replaced by NUL), so echo gets 255 - 12 x's and then the script path.
    let kept = 255 - prefix.len();
    let real = runc_run(&b, "longarg");
    assert_eq!(real.code(), 0, "{real:?}");
    assert_eq!(real.stdout, format!("{} /app\n", "x".repeat(kept)));
    assert_expected_error_is_real(&check, "longarg", &real);

    let wrapped = execguard_run(&b, "longarg-w", &[]);
    assert_eq!(wrapped.code(), 0, "{wrapped:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert_block_first(&wrapped, "longarg", "shebang-too-long", None);
}

// ---------------------------------------------------------------------------------------------
// 6. no-shebang variants

fn no_shebang_case(text: &[u8], tag: &str, why: &str) {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.write("/app", text, 0o755);
    b.args(&["/app"]);
    let c = prove_fails(
        &b,
        tag,
        &Want {
            path: Some("/app"),
            ..want("no-shebang", "ENOEXEC", "exec format error")
        },
    );
    let msg = c.leading()["message"].as_str().unwrap_or_default();
    assert!(msg.contains(why), "the message says {why:?}: {msg}");
}

#[test]
fn bang_hash_instead_of_hash_bang_is_no_shebang() {
    no_shebang_case(b"!#/bin/sh\necho hi\n", "ns-banghash", "!#");
}

#[test]
fn hash_space_bang_is_no_shebang() {
    no_shebang_case(b"# !/bin/sh\necho hi\n", "ns-hashspace", "# !");
}

#[test]
fn a_bang_without_the_hash_is_no_shebang() {
    no_shebang_case(b"!/bin/sh\necho hi\n", "ns-bang", "without the #");
}

#[test]
fn spaces_before_the_shebang_are_no_shebang() {
    no_shebang_case(
        b"   #!/bin/sh\necho hi\n",
        "ns-spaces",
        "not the first line",
    );
}

// ---------------------------------------------------------------------------------------------
// 7. wrapper chains

/// tini as args[0]: the static build, else the dynamic one with its libraries mirrored.
fn put_tini(b: &Bundle, inner: &str) -> bool {
    if Path::new("/usr/bin/tini-static").exists() {
        b.copy_in("/usr/bin/tini-static", inner, Some(0o755));
        return true;
    }
    if !require(
        Path::new("/usr/bin/tini").exists(),
        "neither tini-static nor tini is installed",
    ) {
        return false;
    }
    b.copy_in("/usr/bin/tini", inner, Some(0o755));
    for lib in ldd_paths("/usr/bin/tini") {
        b.mirror_host_path(&lib);
    }
    true
}

#[test]
fn tini_starting_an_arm64_child_is_arch_mismatch_at_the_child_and_sh_reads_it() {
    if !runtime_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(mut b) = root_with_foreign("arm64", "/app", true) else {
        return;
    };
    if !put_tini(&b, "/sbin/tini") || !guard.require_no_handler_for(&b.host("/app")) {
        return;
    }
    b.args(&["/sbin/tini", "--", "/app", "--x"]);
    // glibc's execvp gets ENOEXEC and runs /app with /bin/sh, which chokes on the ELF bytes.
    prove_fails(
        &b,
        "tini-arm",
        &Want {
            path: Some("/app"),
            chain: &[("/sbin/tini", "process"), ("/app", "init-wrapper-child")],
            ..want("arch-mismatch", "ENOEXEC", "syntax error")
        },
    );
}

#[test]
fn tini_starting_an_arm64_child_without_bin_sh_is_arch_mismatch_and_tini_says_enoent() {
    if !runtime_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(mut b) = root_with_foreign("arm64", "/app", false) else {
        return;
    };
    if !put_tini(&b, "/sbin/tini") || !guard.require_no_handler_for(&b.host("/app")) {
        return;
    }
    b.args(&["/sbin/tini", "--", "/app", "--x"]);
    // execvp's /bin/sh fallback finds no shell: tini reports the fallback's ENOENT.
    prove_fails(
        &b,
        "tini-arm-nosh",
        &Want {
            path: Some("/app"),
            chain: &[("/sbin/tini", "process"), ("/app", "init-wrapper-child")],
            ..want(
                "arch-mismatch",
                "ENOEXEC",
                "exec /app failed: No such file or directory",
            )
        },
    );
}

#[test]
fn docker_init_bind_mounted_from_the_host_with_an_arm64_app_is_arch_mismatch_at_the_app() {
    if !runtime_ready() {
        return;
    }
    if !require(
        Path::new(DOCKER_INIT).exists(),
        "docker-init is not installed at /usr/bin/docker-init",
    ) {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(mut b) = root_with_foreign("arm64", "/app", true) else {
        return;
    };
    if !guard.require_no_handler_for(&b.host("/app")) {
        return;
    }
    // Docker's --init: the host's docker-init bound read-only at /sbin/docker-init (the root
    // has nothing there; runc creates the mount point).
    b.add_mount(json!({
        "destination": "/sbin/docker-init", "type": "bind",
        "source": DOCKER_INIT, "options": ["bind", "ro"],
    }));
    b.args(&["/sbin/docker-init", "--", "/app"]);
    assert!(!b.host("/sbin/docker-init").exists());
    prove_fails(
        &b,
        "dinit-arm",
        &Want {
            path: Some("/app"),
            chain: &[
                ("/sbin/docker-init", "process"),
                ("/app", "init-wrapper-child"),
            ],
            ..want("arch-mismatch", "ENOEXEC", "syntax error")
        },
    );
}

#[test]
fn sh_c_running_an_arm64_app_is_arch_mismatch_at_the_app() {
    if !runtime_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(mut b) = root_with_foreign("arm64", "/app", true) else {
        return;
    };
    if !guard.require_no_handler_for(&b.host("/app")) {
        return;
    }
    b.args(&["/bin/sh", "-c", "/app --x"]);
    // busybox sh retries the ENOEXEC file as a script: `/app: line 1: syntax error: ...`.
    prove_fails(
        &b,
        "shc-arm",
        &Want {
            path: Some("/app"),
            chain: &[("/bin/sh", "process"), ("/app", "shell-command")],
            ..want("arch-mismatch", "ENOEXEC", "syntax error")
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 8. unverifiable

/// A tmpfs at `/run` in the spec.
fn with_run_tmpfs(b: &mut Bundle) {
    b.add_mount(json!({
        "destination": "/run", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=755"],
    }));
}

#[test]
fn a_program_under_a_tmpfs_mount_is_unverifiable_with_verdict_unknown() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    with_run_tmpfs(&mut b);
    b.args(&["/run/app"]);
    let check = execguard_check(&b);
    assert_eq!(check.json["verdict"], "unknown", "{}", check.json);
    assert!(!check.has_error() && !check.has_warning(), "{}", check.json);
    assert_eq!(check.leading()["code"], "unverifiable", "{}", check.json);
    assert_eq!(check.leading()["severity"], "info", "{}", check.json);
    assert_eq!(check.leading()["path"], "/run/app", "{}", check.json);

    // Here nothing fills the tmpfs, so runc does not find the program; execguard says
    // "unknown", not "missing", and adds nothing in wrapper mode.
    let real = runc_run(&b, "tmpfs-unk");
    assert_ne!(real.code(), 0, "{real:?}");
    let wrapped = execguard_run(&b, "tmpfs-unk-w", &[]);
    assert_eq!(wrapped.code(), real.code(), "{wrapped:?}");
    assert!(
        execguard_lines(&wrapped.stderr).is_empty(),
        "nothing from execguard for an info-only diagnosis: {wrapped:?}"
    );
}

#[test]
fn a_program_from_a_bind_mount_inside_a_tmpfs_is_found_and_runs() {
    if !runtime_ready() {
        return;
    }
    let host = tempfile::tempdir().expect("host folder");
    fs::copy(HOST_BUSYBOX, host.path().join("busybox")).expect("copy busybox");
    let mut b = Bundle::empty();
    with_run_tmpfs(&mut b);
    b.bind(host.path(), "/run/tools", &[]);
    b.args(&["/run/tools/busybox", "echo", "hi"]);
    let c = prove_runs(&b, "tmpfs-bind", "hi\n");
    assert_eq!(c.json["verdict"], "ok", "{}", c.json);
    assert!(c.find("unverifiable").is_none(), "{}", c.json);
    assert_eq!(
        c.json["program"]["path"], "/run/tools/busybox",
        "{}",
        c.json
    );
}

// ---------------------------------------------------------------------------------------------
// 9. runtime-handler

#[test]
fn a_wasm_runtime_handler_annotation_is_runtime_handler_and_nothing_else() {
    if !runtime_ready() {
        return;
    }
    for key in ["run.oci.handler", "module.wasm.image/variant"] {
        let mut b = Bundle::busybox();
        // A program that does not exist: execguard must not check it at all.
        b.args(&["/app.wasm"]);
        b.config["annotations"] =
            json!({ key: if key == "run.oci.handler" { "wasm" } else { "compat" } });
        let check = execguard_check(&b);
        assert_eq!(
            check.codes(),
            vec!["runtime-handler"],
            "only runtime-handler for {key}: {}",
            check.json
        );
        assert_eq!(check.leading()["severity"], "info", "{}", check.json);
        assert_eq!(check.json["verdict"], "ok", "{}", check.json);
    }
    // In wrapper mode it adds nothing; runc (no wasm handler) fails on its own.
    let mut b = Bundle::busybox();
    b.args(&["/app.wasm"]);
    b.config["annotations"] = json!({"run.oci.handler": "wasm"});
    let real = runc_run(&b, "wasm");
    let wrapped = execguard_run(&b, "wasm-w", &[]);
    assert_eq!(wrapped.code(), real.code(), "{wrapped:?}");
    assert!(execguard_lines(&wrapped.stderr).is_empty(), "{wrapped:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. the host seam (--host-machine, --no-compat)

/// A minimal i386 executable: one PT_LOAD, `write(1, "hi\n", 3); exit(0)` through int 0x80.
fn i386_elf() -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    const HDR: u32 = 52 + 32;
    let mut code: Vec<u8> = Vec::new();
    let msg_at = BASE + HDR + 31;
    code.extend_from_slice(&[0xb8, 4, 0, 0, 0]); // mov eax, 4 (write)
    code.extend_from_slice(&[0xbb, 1, 0, 0, 0]); // mov ebx, 1
    code.push(0xb9); // mov ecx, msg
    code.extend_from_slice(&msg_at.to_le_bytes());
    code.extend_from_slice(&[0xba, 3, 0, 0, 0]); // mov edx, 3
    code.extend_from_slice(&[0xcd, 0x80]); // int 0x80
    code.extend_from_slice(&[0xb8, 1, 0, 0, 0]); // mov eax, 1 (exit)
    code.extend_from_slice(&[0x31, 0xdb]); // xor ebx, ebx
    code.extend_from_slice(&[0xcd, 0x80]); // int 0x80
    assert_eq!(code.len(), 31);
    code.extend_from_slice(b"hi\n");
    let total = HDR + code.len() as u32;

    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x01\x01\x01\x00");
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&3u16.to_le_bytes()); // EM_386
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&(BASE + HDR).to_le_bytes()); // e_entry
    e.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    e.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    e.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    e.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    e.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(e.len(), 52);
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&0u32.to_le_bytes()); // p_offset
    e.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    e.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    e.extend_from_slice(&total.to_le_bytes()); // p_filesz
    e.extend_from_slice(&total.to_le_bytes()); // p_memsz
    e.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    e.extend_from_slice(&0x1000u32.to_le_bytes()); // p_align
    e.extend_from_slice(&code);
    e
}

#[test]
fn host_machine_aarch64_flags_the_x86_64_busybox_and_accepts_the_arm64_one() {
    if !runtime_ready() {
        return;
    }
    // The real binfmt_misc is still read: no handler may take either file meanwhile.
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(arm) = foreign_bundle_at("arm64") else {
        return;
    };
    let mut x86 = Bundle::busybox();
    x86.args(&["/bin/busybox", "echo", "hi"]);
    if !guard.require_no_handler_for(&x86.host("/bin/busybox"))
        || !guard.require_no_handler_for(&arm.host("/bin/busybox"))
    {
        return;
    }
    let j = check_with(&x86, &["--host-machine", "aarch64"]);
    let lead = &j["findings"][0];
    assert_eq!(lead["code"], "arch-mismatch", "{j}");
    assert_eq!(lead["errno"], "ENOEXEC", "{j}");
    assert_eq!(lead["evidence"]["host_arch"], "aarch64", "{j}");
    assert_eq!(lead["evidence"]["file_arch"], "x86_64", "{j}");
    assert_eq!(j["verdict"], "fail", "{j}");

    let j = check_with(&arm, &["--host-machine", "aarch64"]);
    assert_eq!(j["verdict"], "ok", "{j}");
    assert_eq!(j["findings"], json!([]), "{j}");
}

/// A root with only the arm64 busybox at /bin/busybox, running `echo hi`.
fn foreign_bundle_at(arch: &str) -> Option<Bundle> {
    let mut b = root_with_foreign(arch, "/bin/busybox", false)?;
    b.args(&["/bin/busybox", "echo", "hi"]);
    Some(b)
}

#[test]
fn an_i386_elf_is_arch_mismatch_without_compat_and_matches_the_real_host_with_it() {
    if !runtime_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let mut b = Bundle::empty();
    b.write("/app", &i386_elf(), 0o755);
    b.args(&["/app"]);
    if !guard.require_no_handler_for(&b.host("/app")) {
        return;
    }
    let j = check_with(&b, &["--host-machine", "x86_64", "--no-compat"]);
    let lead = &j["findings"][0];
    assert_eq!(lead["code"], "arch-mismatch", "{j}");
    assert_eq!(lead["errno"], "ENOEXEC", "{j}");
    assert_eq!(lead["evidence"]["file_arch"], "i386", "{j}");
    assert_eq!(lead["evidence"]["host_arch"], "x86_64", "{j}");

    let j = check_with(&b, &["--host-machine", "x86_64"]);
    assert!(
        j["findings"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["severity"] != "error")),
        "with compat an i386 ELF runs on x86_64: {j}"
    );

    // The real host decides whether ia32 emulation is on; execguard's own view must agree.
    let real = runc_run(&b, "i386");
    let check = execguard_check(&b);
    if real.code() == 0 {
        assert_eq!(real.stdout, "hi\n", "{real:?}");
        assert!(!check.has_error(), "the host ran it: {}", check.json);
    } else {
        assert!(real.stderr.contains("exec format error"), "{real:?}");
        assert_eq!(check.leading()["code"], "arch-mismatch", "{}", check.json);
    }
}

// ---------------------------------------------------------------------------------------------
// 11. crun behind execguard

#[test]
fn crun_behind_execguard_arch_mismatch() {
    if !crun_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle_at("arm64") else {
        return;
    };
    if !guard.require_no_handler_for(&b.host("/bin/busybox")) {
        return;
    }
    prove_fails_crun(
        &b,
        "crun-arch",
        "arch-mismatch",
        "exec container process `/bin/busybox`: Exec format error",
    );
}

#[test]
fn crun_behind_execguard_shebang_crlf() {
    if !crun_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.write("/app", b"#!/bin/sh\r\necho hi\r\n", 0o755);
    b.args(&["/app"]);
    prove_fails_crun(
        &b,
        "crun-crlf",
        "shebang-crlf",
        "`/app`: No such file or directory",
    );
}

#[test]
fn crun_behind_execguard_interpreter_missing() {
    if !crun_ready() {
        return;
    }
    let b = ls_bundle();
    prove_fails_crun(
        &b,
        "crun-ld",
        "interpreter-missing",
        "(missing dynamic library?) `/bin/ls`: No such file or directory",
    );
}

#[test]
fn crun_behind_execguard_runs_an_ok_bundle_unchanged() {
    if !crun_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "hi"]);
    let check = execguard_check(&b);
    assert_eq!(check.json["verdict"], "ok", "{}", check.json);
    let real = crun_run(&b, "crun-ok", false);
    assert_eq!(real.code(), 0, "{real:?}");
    assert_eq!(real.stdout, "hi\n", "{real:?}");
    let wrapped = crun_run(&b, "crun-ok-w", true);
    assert_eq!(wrapped.code(), 0, "{wrapped:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert_eq!(wrapped.stderr, real.stderr, "execguard adds nothing");
}

// ---------------------------------------------------------------------------------------------
// 12. NUL bytes in process.args

#[test]
fn a_nul_byte_in_args0_is_einval_under_runc() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox\u{0}x", "echo", "hi"]);
    let w = want("nul-in-argument", "EINVAL", "invalid argument");
    prove_fails(&b, "nul-arg0", &w);
}

#[test]
fn a_nul_byte_in_a_later_argument_is_einval_under_runc() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "h\u{0}i"]);
    let w = want(
        "nul-in-argument",
        "EINVAL",
        "exec /bin/busybox: invalid argument",
    );
    let check = prove_fails(&b, "nul-arg2", &w);
    assert_eq!(check.leading()["evidence"]["index"], 2, "{}", check.json);
}

#[test]
fn environment_entries_runc_refuses_are_bad_environment() {
    if !runtime_ready() {
        return;
    }
    for (tag, entry, text) in [
        ("env-noeq", "NOEQUALS", "invalid environment variable: "),
        (
            "env-noname",
            "=x",
            "environment variable name can't be empty: ",
        ),
        ("env-nul", "A\u{0}B=1", "can't contain null"),
    ] {
        let mut b = Bundle::busybox();
        b.args(&["/bin/busybox", "echo", "hi"]);
        b.env(&["PATH=/bin", entry]);
        let w = Want {
            code: "bad-environment",
            errno: None,
            runtime_text: text,
            path: None,
            chain: &[],
        };
        prove_fails(&b, tag, &w);
    }
}

#[test]
fn crun_takes_the_environment_runc_refuses_and_execguard_says_nothing() {
    if !crun_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "hi"]);
    b.env(&["PATH=/bin", "NOEQUALS", "=x", "A\u{0}B=1"]);
    let real = crun_run(&b, "crun-env", false);
    assert_eq!((real.code(), real.stdout.as_str()), (0, "hi\n"), "{real:?}");
    let wrapped = crun_run(&b, "crun-env-w", true);
    assert_eq!(wrapped.code(), 0, "{wrapped:?}");
    assert_eq!(wrapped.stdout, real.stdout);
    assert_eq!(wrapped.stderr, real.stderr, "execguard adds nothing");
}

#[test]
fn crun_cuts_an_argument_at_its_nul_byte_and_execguard_warns() {
    if !crun_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox\u{0}x", "echo", "h\u{0}i"]);
    let real = crun_run(&b, "crun-nul", false);
    assert_eq!(
        (real.code(), real.stdout.as_str()),
        (0, "h\n"),
        "crun runs /bin/busybox echo h: {real:?}"
    );
    let wrapped = crun_run(&b, "crun-nul-w", true);
    assert_eq!(
        (wrapped.code(), wrapped.stdout.as_str()),
        (real.code(), real.stdout.as_str()),
        "as crun alone: {wrapped:?}"
    );
    let lines = execguard_lines(&wrapped.stderr);
    assert!(
        lines
            .first()
            .is_some_and(|l| l.contains("crun cuts it there") && l.ends_with("[nul-in-argument]")),
        "one warning first: {:?}",
        wrapped.stderr
    );
    assert!(
        !wrapped.stderr.contains("error"),
        "a warning only: {wrapped:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// self-checks of this file's helpers

#[test]
fn the_i386_elf_has_the_fields_the_kernel_reads() {
    let e = i386_elf();
    assert_eq!(&e[..4], b"\x7fELF");
    assert_eq!(e[4], 1, "ELFCLASS32");
    assert_eq!(u16::from_le_bytes([e[18], e[19]]), 3, "EM_386");
    let entry = u32::from_le_bytes([e[24], e[25], e[26], e[27]]);
    assert_eq!(entry, 0x0804_8000 + 84);
    assert_eq!(&e[e.len() - 3..], b"hi\n");
    let filesz = u32::from_le_bytes([e[52 + 16], e[52 + 17], e[52 + 18], e[52 + 19]]);
    assert_eq!(filesz as usize, e.len());
}

#[test]
fn the_link_chain_helper_makes_exactly_n_links() {
    let b = link_chain(3);
    for i in 0..3 {
        let p = b.host(&format!("/d{i}/echo"));
        assert!(
            fs::symlink_metadata(&p)
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(
        fs::read_link(b.host("/d2/echo")).expect("readlink"),
        PathBuf::from("/bin/busybox")
    );
    assert!(fs::symlink_metadata(b.host("/d3/echo")).is_err());
}
