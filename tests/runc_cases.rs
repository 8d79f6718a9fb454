//! Every error finding proven against the real runtime: each bundle really fails under
//! `/usr/bin/runc` the way the finding predicts (non-zero exit, the kernel's or runc's text on
//! stderr), `execguard check --format json` names the code first with the matching errno (and
//! its `expected_error`, when given, is what runc printed), and `execguard run` prints the
//! `[code]` line before runc's own failure line with runc's exit status unchanged. The ok cases
//! prove the reverse: runc succeeds and execguard finds no error.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

/// What a failing bundle must look like under runc and under execguard.
struct Expect<'a> {
    /// Leading finding code.
    code: &'a str,
    /// Leading finding errno name.
    errno: &'a str,
    /// Text runc's stderr must contain (compared lower-case).
    runtime_text: &'a str,
    /// Leading finding path, when the test pins it.
    path: Option<&'a str>,
}

fn fails_as<'a>(code: &'a str, errno: &'a str, runtime_text: &'a str) -> Expect<'a> {
    Expect {
        code,
        errno,
        runtime_text,
        path: None,
    }
}

/// Runs the bundle under runc, execguard check and execguard run and asserts the prediction.
fn assert_fails_as(b: &Bundle, tag: &str, e: &Expect) -> Check {
    // 1. The real runtime fails the predicted way.
    let real = runc_run(b, tag);
    assert_ne!(
        real.code(),
        0,
        "runc must fail for {tag}, it succeeded: {real:?}"
    );
    assert!(
        real.stderr
            .to_lowercase()
            .contains(&e.runtime_text.to_lowercase()),
        "runc stderr for {tag} lacks {:?}: {real:?}",
        e.runtime_text
    );

    // 2. execguard check names the code first, with the errno, and its prediction is real.
    let check = execguard_check(b);
    let lead = check.leading();
    assert_eq!(
        lead["code"],
        e.code,
        "leading code for {tag}; codes {:?}; json {}",
        check.codes(),
        check.json
    );
    assert_eq!(
        lead["severity"], "error",
        "leading severity for {tag}: {lead}"
    );
    assert_eq!(lead["errno"], e.errno, "leading errno for {tag}: {lead}");
    assert_eq!(
        check.json["verdict"], "fail",
        "verdict for {tag}: {}",
        check.json
    );
    if let Some(p) = e.path {
        assert_eq!(lead["path"], p, "leading path for {tag}: {lead}");
    }
    if let Some(expected) = lead["expected_error"].as_str() {
        assert!(
            unescape_runc(&real.stderr).contains(expected),
            "expected_error {expected:?} for {tag} is not what runc printed: {:?}",
            real.stderr
        );
    }

    // 3. execguard run: the block first, then runc's own failure, runc's status unchanged.
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
    let lines = wrapped.stderr_lines();
    let tagged = format!("[{}]", e.code);
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
        .unwrap_or_else(|| panic!("no runc output after the block for {tag}: {wrapped:?}"));
    let after = lines[end..].join("\n");
    assert!(
        after
            .to_lowercase()
            .contains(&e.runtime_text.to_lowercase()),
        "runc's {:?} must come after execguard's block for {tag}: {:?}",
        e.runtime_text,
        wrapped.stderr
    );
    assert!(
        !after.contains("execguard: "),
        "execguard's block must be contiguous and before runc's output for {tag}: {:?}",
        wrapped.stderr
    );
    check
}

/// Runs a bundle that must work: runc succeeds with `stdout`, execguard finds no error
/// (`strict`: no warning either, verdict ok), and `execguard run` is indistinguishable from runc.
fn assert_runs_ok(b: &Bundle, tag: &str, stdout: &str, strict: bool) -> Check {
    let real = runc_run(b, tag);
    assert_eq!(real.code(), 0, "runc must succeed for {tag}: {real:?}");
    assert_eq!(real.stdout, stdout, "runc stdout for {tag}: {real:?}");

    let check = execguard_check(b);
    assert!(
        !check.has_error(),
        "no error finding expected for {tag}: {}",
        check.json
    );
    if strict {
        assert_eq!(
            check.json["verdict"], "ok",
            "verdict for {tag}: {}",
            check.json
        );
        assert!(
            !check.has_warning(),
            "no warning expected for {tag}: {}",
            check.json
        );
    }

    let wrapped = execguard_run(b, &format!("{tag}-w"), &[]);
    assert_eq!(
        wrapped.code(),
        real.code(),
        "exit under execguard for {tag}: {wrapped:?}"
    );
    assert_eq!(
        wrapped.stdout, real.stdout,
        "stdout under execguard for {tag}"
    );
    if !check.has_warning() {
        assert_eq!(
            wrapped.stderr, real.stderr,
            "execguard must add nothing to stderr without a warning for {tag}"
        );
        assert!(execguard_lines(&wrapped.stderr).is_empty());
    }
    check
}

/// A root with only `busybox` from `arch`'s fixture at `/bin/busybox`.
fn foreign_bundle(arch: &str) -> Option<Bundle> {
    let src = foreign_busybox(arch)?;
    let mut b = Bundle::empty();
    b.copy_in(src, "/bin/busybox", Some(0o755));
    b.args(&["/bin/busybox", "echo", "hi"]);
    Some(b)
}

fn script_bundle(text: &[u8]) -> Bundle {
    let mut b = Bundle::busybox();
    b.write("/bin/app", text, 0o755);
    b.args(&["/bin/app"]);
    b
}

fn le_u16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Offset in the file of the PT_INTERP program header entry's `p_offset` field and its value,
/// for a little-endian ELF64 host binary.
fn pt_interp_offset_field(elf: &[u8]) -> (usize, u64) {
    let phoff = le_u64(elf, 0x20) as usize;
    let phentsize = le_u16(elf, 0x36);
    let phnum = le_u16(elf, 0x38);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32::from_le_bytes([elf[ph], elf[ph + 1], elf[ph + 2], elf[ph + 3]]) == 3 {
            return (ph + 8, le_u64(elf, ph + 8));
        }
    }
    panic!("no PT_INTERP in host binary");
}

// ---------------------------------------------------------------------------------------------
// not-found

#[test]
fn a_missing_absolute_program_is_not_found() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/app"]);
    assert_fails_as(
        &b,
        "nf-abs",
        &fails_as("not-found", "ENOENT", "no such file or directory"),
    );
}

#[test]
fn a_bare_name_in_no_path_entry_is_not_found() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["app"]);
    assert_fails_as(
        &b,
        "nf-bare",
        &fails_as("not-found", "ENOENT", "executable file not found"),
    );
}

#[test]
fn a_bare_name_with_no_path_in_the_environment_is_not_found() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["busybox", "echo", "hi"]).env(&["HOME=/"]);
    assert_fails_as(
        &b,
        "nf-nopath",
        &fails_as("not-found", "ENOENT", "executable file not found"),
    );
}

#[test]
fn a_bare_name_with_no_path_is_not_found_even_when_it_sits_in_the_cwd() {
    if !runtime_ready() {
        return;
    }
    // runc's LookPath searches no folder when PATH is unset; the kernel's relative lookup
    // (cwd /bin holds busybox) never happens.
    let mut b = Bundle::busybox();
    b.args(&["busybox", "echo", "hi"])
        .env(&["HOME=/"])
        .cwd("/bin");
    assert_fails_as(
        &b,
        "nf-nopath-cwd",
        &fails_as("not-found", "ENOENT", "executable file not found"),
    );
}

#[test]
fn an_absolute_link_to_a_path_only_the_host_has_is_not_found() {
    if !runtime_ready() {
        return;
    }
    // /usr/bin/runc exists on the host, not in the root: the link must resolve inside the root.
    let mut b = Bundle::busybox();
    b.symlink("/bin/app", RUNC);
    b.args(&["/bin/app"]);
    assert_fails_as(
        &b,
        "nf-hostlink",
        &fails_as("not-found", "ENOENT", "no such file or directory"),
    );
}

#[test]
fn a_relative_link_climbing_out_of_the_root_is_not_found() {
    if !runtime_ready() {
        return;
    }
    // `..` stops at the container's root, so this names /usr/bin/runc inside the root.
    let mut b = Bundle::busybox();
    b.symlink("/bin/app", "../../../../../../../../usr/bin/runc");
    b.args(&["/bin/app"]);
    assert_fails_as(
        &b,
        "nf-escape",
        &fails_as("not-found", "ENOENT", "no such file or directory"),
    );
}

// ---------------------------------------------------------------------------------------------
// file type and permissions

#[test]
fn a_directory_as_the_program_is_is_directory() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin"]);
    assert_fails_as(
        &b,
        "isdir",
        &fails_as("is-directory", "EACCES", "permission denied"),
    );
}

#[test]
fn a_fifo_as_the_program_is_not_regular_and_nothing_hangs() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    mkfifo(&b.host("/bin/app"), 0o755);
    b.args(&["/bin/app"]);
    assert_fails_as(
        &b,
        "fifo",
        &fails_as("not-regular", "EACCES", "permission denied"),
    );
}

#[test]
fn a_program_without_an_execute_bit_is_not_executable() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.copy_in(HOST_BUSYBOX, "/bin/app", Some(0o644));
    b.args(&["/bin/app", "true"]);
    assert_fails_as(
        &b,
        "noexec-bit",
        &fails_as("not-executable", "EACCES", "permission denied"),
    );
}

#[test]
fn a_root_only_program_run_as_uid_1000_is_permission_denied_user() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.copy_in(HOST_BUSYBOX, "/bin/app", Some(0o700));
    b.args(&["/bin/app", "true"]).user(1000, 1000, &[1000]);
    assert_fails_as(
        &b,
        "pdu-file",
        &fails_as("permission-denied-user", "EACCES", "permission denied"),
    );
}

#[test]
fn a_root_only_folder_on_the_path_for_uid_1000_is_permission_denied_user() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.mkdir("/opt/secret", 0o700);
    b.copy_in(HOST_BUSYBOX, "/opt/secret/busybox", Some(0o755));
    b.args(&["/opt/secret/busybox", "true"])
        .user(1000, 1000, &[]);
    assert_fails_as(
        &b,
        "pdu-dir",
        &fails_as("permission-denied-user", "EACCES", "permission denied"),
    );
}

#[test]
fn a_program_on_a_noexec_bind_mount_is_noexec_mount() {
    if !runtime_ready() {
        return;
    }
    let host = tempfile::tempdir().expect("host folder");
    fs::copy(HOST_BUSYBOX, host.path().join("busybox")).expect("copy busybox");
    let mut b = Bundle::busybox();
    b.bind(host.path(), "/opt/tools", &["noexec"]);
    b.args(&["/opt/tools/busybox", "echo", "hi"]);
    assert_fails_as(
        &b,
        "noexec-mnt",
        &fails_as("noexec-mount", "EACCES", "permission denied"),
    );
}

#[test]
fn a_program_with_file_caps_beyond_the_bounding_set_is_file_caps_exceed_bounding() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    let app = b.copy_in(HOST_BUSYBOX, "/bin/app", Some(0o755));
    const CAP_NET_ADMIN: u64 = 12;
    let set = set_file_caps(&app, 1 << CAP_NET_ADMIN);
    if !require(
        set.is_ok(),
        &format!("setxattr security.capability failed: {set:?}"),
    ) {
        return;
    }
    // The default bounding set (AUDIT_WRITE, KILL, NET_BIND_SERVICE) lacks NET_ADMIN.
    b.args(&["/bin/app", "true"]);
    assert_fails_as(
        &b,
        "fcaps",
        &fails_as(
            "file-caps-exceed-bounding",
            "EPERM",
            "operation not permitted",
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// broken files

#[test]
fn an_empty_file_is_empty_file() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"");
    assert_fails_as(
        &b,
        "empty",
        &fails_as("empty-file", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn busybox_cut_to_100_bytes_is_truncated_elf_with_enoexec() {
    if !runtime_ready() {
        return;
    }
    let full = fs::read(HOST_BUSYBOX).expect("read busybox");
    let b = script_bundle(&full[..100]);
    assert_fails_as(
        &b,
        "trunc100",
        &fails_as("truncated-elf", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn a_pt_interp_lying_past_the_end_of_the_file_is_truncated_elf_with_eio() {
    if !runtime_ready() {
        return;
    }
    let ls = fs::read("/bin/ls").expect("read /bin/ls");
    let (field, interp_off) = pt_interp_offset_field(&ls);

    // A full copy whose PT_INTERP points past the end.
    let mut patched = ls.clone();
    let past = (ls.len() as u64 + 4096).to_le_bytes();
    patched[field..field + 8].copy_from_slice(&past);
    let b = script_bundle(&patched);
    assert_fails_as(
        &b,
        "eio-patched",
        &fails_as("truncated-elf", "EIO", "input/output error"),
    );

    // A copy cut where the loader path would start (headers whole, PT_INTERP past the end).
    let interp_off = usize::try_from(interp_off).expect("offset");
    let b = script_bundle(&ls[..interp_off]);
    assert_fails_as(
        &b,
        "eio-cut",
        &fails_as("truncated-elf", "EIO", "input/output error"),
    );
}

#[test]
fn a_zero_filled_executable_is_unknown_format() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(&[0u8; 4096]);
    assert_fails_as(
        &b,
        "zeros",
        &fails_as("unknown-format", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn a_git_lfs_pointer_is_git_lfs_pointer() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(
        b"version https://git-lfs.github.com/spec/v1\n\
          oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n\
          size 1133056\n",
    );
    assert_fails_as(
        &b,
        "lfs",
        &fails_as("git-lfs-pointer", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn a_windows_pe_file_is_foreign_format() {
    if !runtime_ready() {
        return;
    }
    let mut pe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    pe.resize(512, 0);
    pe[0x3c] = 0x80; // e_lfanew
    pe[0x80..0x84].copy_from_slice(b"PE\0\0");
    let b = script_bundle(&pe);
    assert_fails_as(
        &b,
        "pe",
        &fails_as("foreign-format", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn an_html_page_saved_as_the_program_is_foreign_format() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n\
          <body><h1>Not Found</h1></body></html>\n",
    );
    assert_fails_as(
        &b,
        "html",
        &fails_as("foreign-format", "ENOEXEC", "exec format error"),
    );
}

// ---------------------------------------------------------------------------------------------
// dynamic ELF

#[test]
fn a_dynamic_binary_without_its_loader_is_interpreter_missing() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.copy_in("/bin/ls", "/bin/ls", Some(0o755));
    b.args(&["/bin/ls", "/"]);
    assert_fails_as(
        &b,
        "ld-missing",
        &fails_as("interpreter-missing", "ENOENT", "no such file or directory"),
    );
}

// ---------------------------------------------------------------------------------------------
// scripts

#[test]
fn a_script_whose_first_line_is_blank_is_no_shebang() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"\n#!/bin/sh\necho hi\n");
    assert_fails_as(
        &b,
        "blank",
        &fails_as("no-shebang", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn a_script_with_a_utf8_bom_before_the_shebang_is_shebang_bom() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"\xef\xbb\xbf#!/bin/sh\necho hi\n");
    assert_fails_as(
        &b,
        "bom",
        &fails_as("shebang-bom", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn a_script_with_crlf_line_ends_is_shebang_crlf() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"#!/bin/sh\r\necho hi\r\n");
    assert_fails_as(
        &b,
        "crlf",
        &fails_as("shebang-crlf", "ENOENT", "no such file or directory"),
    );
}

#[test]
fn a_bash_script_on_a_busybox_root_is_shebang_interpreter_missing() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"#!/bin/bash\necho hi\n");
    assert_fails_as(
        &b,
        "nobash",
        &fails_as(
            "shebang-interpreter-missing",
            "ENOENT",
            "no such file or directory",
        ),
    );
}

#[test]
fn a_shebang_interpreter_path_over_256_bytes_is_shebang_too_long() {
    if !runtime_ready() {
        return;
    }
    let mut text = b"#!/".to_vec();
    text.extend(std::iter::repeat_n(b'a', 300));
    text.extend_from_slice(b"\necho hi\n");
    let b = script_bundle(&text);
    assert_fails_as(
        &b,
        "toolong",
        &fails_as("shebang-too-long", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn an_env_python3_script_without_python3_is_env_target_missing() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"#!/usr/bin/env python3\nprint('hi')\n");
    b.symlink("/usr/bin/env", "/bin/busybox");
    // busybox env reports `env: can't execute 'python3': No such file or directory`, exit 127.
    assert_fails_as(
        &b,
        "envpy",
        &fails_as("env-target-missing", "ENOENT", "no such file or directory"),
    );
}

// ---------------------------------------------------------------------------------------------
// foreign architectures and binfmt_misc

fn arch_mismatch_without_handler(arch: &str) {
    if !runtime_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle(arch) else {
        return;
    };
    if !guard.require_no_handler_for(&b.host("/bin/busybox")) {
        return;
    }
    assert_fails_as(
        &b,
        &format!("arch-{arch}"),
        &Expect {
            path: Some("/bin/busybox"),
            ..fails_as("arch-mismatch", "ENOEXEC", "exec format error")
        },
    );
}

#[test]
fn an_arm64_busybox_without_a_handler_is_arch_mismatch() {
    arch_mismatch_without_handler("arm64");
}

#[test]
fn an_armhf_busybox_without_a_handler_is_arch_mismatch() {
    arch_mismatch_without_handler("armhf");
}

#[test]
fn a_ppc64el_busybox_without_a_handler_is_arch_mismatch() {
    arch_mismatch_without_handler("ppc64el");
}

#[test]
fn an_s390x_busybox_without_a_handler_is_arch_mismatch() {
    arch_mismatch_without_handler("s390x");
}

#[test]
fn an_arm64_busybox_with_its_handler_disabled_is_arch_mismatch_and_warns_handler_disabled() {
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle("arm64") else {
        return;
    };
    if !require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    ) {
        return;
    }
    let name = guard.register_aarch64(QEMU_AARCH64, "F");
    guard.disable(&name);
    if !guard.require_no_handler_for(&b.host("/bin/busybox")) {
        return;
    }
    let check = assert_fails_as(
        &b,
        "arch-disabled",
        &fails_as("arch-mismatch", "ENOEXEC", "exec format error"),
    );
    let w = check
        .find("binfmt-handler-disabled")
        .unwrap_or_else(|| panic!("binfmt-handler-disabled missing: {}", check.json));
    assert_eq!(w["severity"], "warning", "{w}");
}

#[test]
fn an_arm64_busybox_with_binfmt_misc_globally_off_is_arch_mismatch() {
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle("arm64") else {
        return;
    };
    if !require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    ) {
        return;
    }
    guard.register_aarch64(QEMU_AARCH64, "F");
    guard.set_global(false);
    assert_fails_as(
        &b,
        "arch-global-off",
        &fails_as("arch-mismatch", "ENOEXEC", "exec format error"),
    );
}

#[test]
fn an_arm64_busybox_whose_handler_interpreter_is_not_in_the_root_is_binfmt_interpreter_unreachable()
{
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle("arm64") else {
        return;
    };
    if !require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    ) {
        return;
    }
    // Without F the kernel opens the interpreter inside the container at exec time.
    guard.register_aarch64(QEMU_AARCH64, "");
    if !guard.require_only_ours_for(&b.host("/bin/busybox")) {
        return;
    }
    assert_fails_as(
        &b,
        "binfmt-unreach",
        &fails_as(
            "binfmt-interpreter-unreachable",
            "ENOENT",
            "no such file or directory",
        ),
    );
}

#[test]
fn a_sh_script_whose_bin_sh_is_an_arm64_busybox_is_arch_mismatch_at_bin_sh() {
    if !runtime_ready() {
        return;
    }
    let Some(guard) = binfmt_guard() else {
        return;
    };
    let Some(arm) = foreign_busybox("arm64") else {
        return;
    };
    let mut b = Bundle::empty();
    b.copy_in(&arm, "/bin/sh", Some(0o755));
    b.write("/bin/app", b"#!/bin/sh\necho hi\n", 0o755);
    b.args(&["/bin/app"]);
    if !guard.require_no_handler_for(&b.host("/bin/sh")) {
        return;
    }
    assert_fails_as(
        &b,
        "sh-arm64",
        &Expect {
            path: Some("/bin/sh"),
            ..fails_as("arch-mismatch", "ENOEXEC", "exec format error")
        },
    );
}

// ---------------------------------------------------------------------------------------------
// ok cases

#[test]
fn the_static_busybox_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "echo", "hi"]);
    assert_runs_ok(&b, "ok-static", "hi\n", true);
}

#[test]
fn a_dynamic_ls_with_its_libraries_and_loader_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.copy_in("/bin/ls", "/bin/ls", Some(0o755));
    let libs = ldd_paths("/bin/ls");
    assert!(
        libs.iter()
            .any(|p| p.to_string_lossy().contains("ld-linux")),
        "ldd shows no loader: {libs:?}"
    );
    // Mirrors the host's layout: /lib -> usr/lib, /lib64 -> usr/lib64 and the loader's
    // absolute link /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/..., all resolved
    // inside the root.
    for lib in &libs {
        b.mirror_host_path(lib);
    }
    b.args(&["/bin/ls", "-d", "/"]);
    assert_runs_ok(&b, "ok-dyn", "/\n", true);
}

#[test]
fn a_script_with_a_bin_sh_shebang_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    let b = script_bundle(b"#!/bin/sh\necho script-ran\n");
    assert_runs_ok(&b, "ok-script", "script-ran\n", true);
}

#[test]
fn a_bare_name_found_through_path_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.applets(&["echo"]);
    b.args(&["echo", "hi"]);
    assert_runs_ok(&b, "ok-path", "hi\n", true);
}

#[test]
fn an_absolute_link_resolved_inside_the_root_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    // The target exists only inside the root, never on the host.
    let mut b = Bundle::empty();
    b.copy_in(HOST_BUSYBOX, "/opt/egt-only-in-root/busybox", Some(0o755));
    b.symlink("/usr/local/bin/echo", "/opt/egt-only-in-root/busybox");
    b.args(&["/usr/local/bin/echo", "hi"]);
    assert_runs_ok(&b, "ok-abslink", "hi\n", true);
}

#[test]
fn relative_links_for_the_file_and_a_folder_run_and_check_ok() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.applets(&["echo"]);
    b.symlink("/opt/tools", "../bin");
    b.args(&["/opt/tools/echo", "hi"]);
    assert_runs_ok(&b, "ok-rellink", "hi\n", true);
}

#[test]
fn a_program_from_a_bind_mounted_host_folder_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    let host = tempfile::tempdir().expect("host folder");
    fs::copy(HOST_BUSYBOX, host.path().join("busybox")).expect("copy busybox");
    // The root has nothing at /opt/host: only the mount provides the program.
    let mut b = Bundle::empty();
    b.bind(host.path(), "/opt/host", &[]);
    b.args(&["/opt/host/busybox", "echo", "hi"]);
    assert_runs_ok(&b, "ok-bind", "hi\n", true);
}

#[test]
fn tini_static_as_init_runs_and_checks_ok() {
    if !runtime_ready() {
        return;
    }
    if !require(
        Path::new("/usr/bin/tini-static").exists(),
        "tini-static is missing",
    ) {
        return;
    }
    let mut b = Bundle::busybox();
    b.copy_in("/usr/bin/tini-static", "/sbin/tini", Some(0o755));
    b.args(&["/sbin/tini", "--", "/bin/busybox", "echo", "hi"]);
    assert_runs_ok(&b, "ok-tini", "hi\n", false);
}

#[test]
fn an_arm64_busybox_with_an_f_handler_is_emulated_and_runs() {
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle("arm64") else {
        return;
    };
    if !require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    ) {
        return;
    }
    let name = guard.register_aarch64(QEMU_AARCH64, "F");
    assert_eq!(name, "execguard-test-aarch64");
    if !guard.require_only_ours_for(&b.host("/bin/busybox")) {
        return;
    }
    let check = assert_runs_ok(&b, "ok-emulated", "hi\n", true);
    let f = check
        .find("emulated")
        .unwrap_or_else(|| panic!("no `emulated` finding: {}", check.json));
    assert_eq!(f["severity"], "info", "{f}");
}

#[test]
fn an_arm64_busybox_with_a_handler_without_f_runs_when_the_interpreter_is_in_the_root() {
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let Some(b) = foreign_bundle("arm64") else {
        return;
    };
    if !require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    ) {
        return;
    }
    b.copy_in(QEMU_AARCH64, QEMU_AARCH64, Some(0o755));
    guard.register_aarch64(QEMU_AARCH64, "");
    if !guard.require_only_ours_for(&b.host("/bin/busybox")) {
        return;
    }
    assert_runs_ok(&b, "ok-nof-copied", "hi\n", false);
}

// ---------------------------------------------------------------------------------------------
// check's exit statuses and text mode

#[test]
fn check_of_a_bundle_it_cannot_read_exits_2_with_nothing_on_stdout() {
    if !runtime_ready() {
        return;
    }
    let eg = execguard_bin();
    // No config.json at all.
    let empty = tempfile::tempdir().expect("temp");
    let dir = empty.path().to_str().expect("utf-8").to_string();
    let o = run_cmd(&eg, &["check", "--bundle", &dir, "--format", "json"]);
    assert_eq!(o.code(), 2, "missing config.json: {o:?}");
    assert_eq!(
        o.stdout, "",
        "nothing on stdout when the check could not run"
    );
    assert!(!o.stderr.is_empty(), "the reason goes to stderr");
    // A config.json that is not JSON.
    let b = Bundle::busybox();
    fs::write(b.path().join("config.json"), "{\"process\": ").expect("write");
    let dir = b.path().to_str().expect("utf-8").to_string();
    let o = run_cmd(&eg, &["check", "--bundle", &dir, "--format", "json"]);
    assert_eq!(o.code(), 2, "malformed config.json: {o:?}");
    assert_eq!(o.stdout, "");
}

#[test]
fn the_text_report_exits_like_the_json_report() {
    if !runtime_ready() {
        return;
    }
    let eg = execguard_bin();
    let bad = script_bundle(b"#!/bin/bash\necho hi\n");
    let mut good = Bundle::busybox();
    good.args(&["/bin/busybox", "echo", "hi"]);
    for (b, want) in [(&bad, 1), (&good, 0)] {
        b.save();
        let dir = b.path().to_str().expect("utf-8").to_string();
        let json = execguard_check(b);
        assert_eq!(json.out.code(), want, "{}", json.json);
        let text = run_cmd(&eg, &["check", "--bundle", &dir]);
        assert_eq!(text.code(), want, "text mode: {text:?}");
        assert!(
            serde_json::from_str::<serde_json::Value>(text.stdout.trim()).is_err(),
            "text mode must not print JSON: {text:?}"
        );
        if want == 1 {
            assert!(
                !(text.stdout.trim().is_empty() && text.stderr.trim().is_empty()),
                "text mode explains the error: {text:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// harness self-checks (no execguard involved)

#[test]
fn the_binfmt_guard_removes_its_handlers_and_restores_the_global_status() {
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let before = BinfmtGuard::global_status();
    guard.register_aarch64(QEMU_AARCH64, "F");
    guard.set_global(false);
    assert!(BinfmtGuard::entries().contains(&"execguard-test-aarch64".to_string()));
    assert_eq!(BinfmtGuard::global_status(), "disabled");
    // Drop inside the lock's lifetime: re-acquiring afterwards must see the old state.
    drop(guard);
    let again = binfmt_guard().expect("guard");
    assert_eq!(BinfmtGuard::global_status(), before);
    assert!(
        !BinfmtGuard::entries()
            .iter()
            .any(|n| n.starts_with(HANDLER_PREFIX))
    );
    drop(again);
}

#[test]
fn the_binfmt_matcher_sees_an_enabled_aarch64_handler_and_ignores_a_disabled_one() {
    if !runtime_ready() {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let Some(arm) = foreign_busybox("arm64") else {
        return;
    };
    let name = guard.register_aarch64(QEMU_AARCH64, "F");
    assert!(guard.enabled_handlers_matching(&arm).contains(&name));
    assert!(
        !guard
            .enabled_handlers_matching(Path::new(HOST_BUSYBOX))
            .contains(&name)
    );
    guard.disable(&name);
    assert!(!guard.enabled_handlers_matching(&arm).contains(&name));
}

#[test]
fn the_rfc3339_checker_accepts_runc_times_and_rejects_others() {
    assert!(is_rfc3339("2026-12-01T08:59:23Z"));
    assert!(is_rfc3339("2026-12-01T08:59:23.123456789+02:00"));
    assert!(!is_rfc3339("yesterday"));
    assert!(!is_rfc3339("2026-12-01 08:59:23Z"));
    assert!(!is_rfc3339("2026-12-01T08:59:23"));
}

#[test]
fn the_spec_mount_helper_builds_a_bind_mount() {
    let mut b = Bundle::empty();
    b.bind(Path::new("/tmp"), "/mnt", &["noexec"]);
    let m = b.config["mounts"]
        .as_array()
        .expect("mounts")
        .last()
        .cloned();
    assert_eq!(
        m,
        Some(
            json!({"destination": "/mnt", "type": "bind", "source": "/tmp",
                    "options": ["rbind", "ro", "noexec"]})
        )
    );
}
