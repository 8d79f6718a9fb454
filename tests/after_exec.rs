//! What fails right after exec (issue 4 §3), proven against the real runtime: each warning
//! this machine can produce for real is shown on a bundle that `runc run` then fails the way
//! execguard said, with the words execguard predicted, and the fixed bundle runs with no
//! finding. What this machine cannot produce (16K pages, a CPU below x86-64-v4) goes through
//! the Host seam (`check --host-page-size`, `--host-isa-level`), with the loader's own words
//! taken from the real glibc loader under a CPU emulator.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// The findings with `code`.
fn all<'c>(c: &'c Check, code: &str) -> Vec<&'c Value> {
    c.findings().iter().filter(|f| f["code"] == code).collect()
}

/// The one finding with `code`, a warning (these never make enforce mode refuse).
fn one_warning<'c>(c: &'c Check, code: &str) -> &'c Value {
    let v = all(c, code);
    assert_eq!(v.len(), 1, "expected one {code}: {}", c.json);
    let f = v[0];
    assert_eq!(f["severity"], "warning", "{f}");
    for key in ["message", "hint", "expected_error"] {
        assert!(
            f[key].as_str().is_some_and(|s| !s.is_empty()),
            "{code} without {key}: {f}"
        );
    }
    assert!(f["evidence"].is_object(), "{f}");
    f
}

/// `runc run` fails with exit status 127 and prints exactly the line execguard predicted.
fn assert_loader_refuses(b: &Bundle, tag: &str, f: &Value) -> Outcome {
    let real = runc_run(b, tag);
    let expected = f["expected_error"].as_str().unwrap_or_default();
    assert_eq!(real.code(), 127, "{real:?}");
    assert!(
        real.stderr.lines().any(|l| l == expected),
        "runc's container did not print {expected:?}: {real:?}"
    );
    real
}

/// A bundle with `/bin/ls` and, mirrored from the host, the loader and every library but
/// those whose file name is in `skip`.
fn ls_bundle(skip: &[&str]) -> Bundle {
    let mut b = Bundle::empty();
    b.copy_in("/bin/ls", "/bin/ls", Some(0o755));
    for lib in ldd_paths("/bin/ls") {
        let name = lib.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| skip.contains(&n.as_str())) {
            continue;
        }
        b.mirror_host_path(&lib);
    }
    b.args(&["/bin/ls", "-d", "/"]);
    b
}

/// The host's path of the library `name` that /bin/ls uses.
fn host_lib(name: &str) -> PathBuf {
    ldd_paths("/bin/ls")
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("/bin/ls does not use {name}"))
}

fn ls_ready() -> bool {
    runtime_ready()
        && require(
            Path::new("/bin/ls").exists() && Command::new("ldd").arg("--version").output().is_ok(),
            "/bin/ls and ldd are needed",
        )
}

// ---------------------------------------------------------------------------------------------
// missing-library

#[test]
fn a_missing_direct_library_is_named_and_the_loader_fails_with_those_words() {
    if !ls_ready() {
        return;
    }
    let b = ls_bundle(&["libselinux.so.1"]);
    let c = execguard_check(&b);
    assert_eq!(c.codes(), ["missing-library"], "{}", c.json);
    assert_eq!(c.json["verdict"], "warn");
    let f = one_warning(&c, "missing-library");
    assert_eq!(f["evidence"]["library"], "libselinux.so.1", "{f}");
    assert_eq!(f["path"], "/bin/ls");
    assert_eq!(
        f["expected_error"],
        "/bin/ls: error while loading shared libraries: libselinux.so.1: cannot open shared object file: No such file or directory"
    );
    assert_loader_refuses(&b, "ae-miss", f);

    // Enforce mode does not refuse on a warning: the container starts and the loader fails.
    let cfg = mode_config(b.path(), "enforce");
    let flag = format!("--execguard-config={}", cfg.display());
    let via = execguard_run(&b, "ae-miss-enf", &[&flag]);
    assert_eq!(via.code(), 127, "{via:?}");
    assert!(
        via.stderr
            .contains("libselinux.so.1: cannot open shared object file"),
        "{via:?}"
    );

    // The library in its place: no finding, and it runs.
    let b = ls_bundle(&[]);
    let c = execguard_check(&b);
    assert!(c.findings().is_empty(), "{}", c.json);
    let real = runc_run(&b, "ae-ok");
    assert_eq!((real.code(), real.stdout.as_str()), (0, "/\n"), "{real:?}");
}

#[test]
fn a_missing_library_of_a_library_is_named_with_who_needs_it() {
    if !ls_ready() {
        return;
    }
    // libselinux is there, the libpcre2 it needs is not.
    let b = ls_bundle(&["libpcre2-8.so.0"]);
    let c = execguard_check(&b);
    let f = one_warning(&c, "missing-library");
    assert_eq!(f["evidence"]["library"], "libpcre2-8.so.0", "{f}");
    let by = f["evidence"]["needed_by"].as_str().unwrap_or_default();
    assert!(by.ends_with("/libselinux.so.1"), "{f}");
    assert_loader_refuses(&b, "ae-trans", f);
}

#[test]
fn a_library_listed_in_ld_so_cache_is_found() {
    if !ls_ready()
        || !require(
            Path::new("/sbin/ldconfig").exists(),
            "ldconfig is needed to write a real ld.so.cache",
        )
    {
        return;
    }
    let b = ls_bundle(&["libselinux.so.1"]);
    b.copy_in(
        host_lib("libselinux.so.1"),
        "/opt/sel/libselinux.so.1",
        Some(0o644),
    );
    // Without the cache the loader does not look in /opt/sel.
    let c = execguard_check(&b);
    let f = one_warning(&c, "missing-library");
    assert_eq!(f["evidence"]["ld_so_cache"], "not in the image", "{f}");
    assert_loader_refuses(&b, "ae-nocache", f);
    // ldconfig, run for the image's root, writes /etc/ld.so.cache with /opt/sel in it.
    b.write("/etc/ld.so.conf", b"/opt/sel\n", 0o644);
    let st = Command::new("/sbin/ldconfig")
        .arg("-r")
        .arg(b.rootfs())
        .stdin(Stdio::null())
        .status()
        .expect("run ldconfig");
    assert!(st.success(), "ldconfig -r failed");
    assert!(b.host("/etc/ld.so.cache").is_file());
    let c = execguard_check(&b);
    assert!(c.findings().is_empty(), "{}", c.json);
    let real = runc_run(&b, "ae-cache");
    assert_eq!((real.code(), real.stdout.as_str()), (0, "/\n"), "{real:?}");
}

#[test]
fn ld_library_path_in_the_process_environment_is_searched() {
    if !ls_ready() {
        return;
    }
    let mut b = ls_bundle(&["libselinux.so.1"]);
    b.copy_in(
        host_lib("libselinux.so.1"),
        "/opt/sel/libselinux.so.1",
        Some(0o644),
    );
    let c = execguard_check(&b);
    assert_loader_refuses(&b, "ae-nollp", one_warning(&c, "missing-library"));
    b.env(&["PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=/opt/sel"]);
    let c = execguard_check(&b);
    assert!(c.findings().is_empty(), "{}", c.json);
    let real = runc_run(&b, "ae-llp");
    assert_eq!((real.code(), real.stdout.as_str()), (0, "/\n"), "{real:?}");
}

/// Builds `/app/bin/hello` linked against `libgreet.so.1` with `RUNPATH $ORIGIN/../lib` into
/// the bundle (the library only when `with_lib`), with the loader and libc mirrored.
fn runpath_bundle(with_lib: bool) -> Option<Bundle> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    std::fs::write(
        d.join("greet.c"),
        "#include <stdio.h>\nvoid greet(void) { puts(\"hello from libgreet\"); }\n",
    )
    .expect("write greet.c");
    std::fs::write(
        d.join("hello.c"),
        "void greet(void);\nint main(void) { greet(); return 0; }\n",
    )
    .expect("write hello.c");
    let cc = |args: &[&str]| {
        Command::new("cc")
            .current_dir(d)
            .args(args)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = cc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libgreet.so.1",
        "-o",
        "libgreet.so.1",
        "greet.c",
    ]) && std::os::unix::fs::symlink("libgreet.so.1", d.join("libgreet.so")).is_ok()
        && cc(&[
            "-o",
            "hello",
            "hello.c",
            "-L.",
            "-lgreet",
            "-Wl,--enable-new-dtags",
            "-Wl,-rpath,$ORIGIN/../lib",
        ]);
    if !require(ok, "cannot build a shared library and a program with cc") {
        return None;
    }
    let mut b = Bundle::empty();
    b.copy_in(d.join("hello"), "/app/bin/hello", Some(0o755));
    if with_lib {
        b.copy_in(
            d.join("libgreet.so.1"),
            "/app/lib/libgreet.so.1",
            Some(0o644),
        );
    }
    for lib in ldd_paths("/bin/true") {
        b.mirror_host_path(&lib);
    }
    b.args(&["/app/bin/hello"]);
    Some(b)
}

#[test]
fn runpath_with_origin_finds_a_library_shipped_next_to_the_program() {
    if !runtime_ready() {
        return;
    }
    let Some(b) = runpath_bundle(false) else {
        return;
    };
    let c = execguard_check(&b);
    let f = one_warning(&c, "missing-library");
    assert_eq!(f["evidence"]["library"], "libgreet.so.1", "{f}");
    assert_eq!(f["evidence"]["searched"][0], "/app/bin/../lib", "{f}");
    assert_loader_refuses(&b, "ae-rpath-miss", f);

    let Some(b) = runpath_bundle(true) else {
        return;
    };
    let c = execguard_check(&b);
    assert!(c.findings().is_empty(), "{}", c.json);
    let real = runc_run(&b, "ae-rpath");
    assert_eq!(
        (real.code(), real.stdout.as_str()),
        (0, "hello from libgreet\n"),
        "{real:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Under emulation: the arm64 loader searches the container the same way.

#[test]
fn an_emulated_arm64_program_missing_a_library_fails_as_predicted() {
    if !runtime_ready()
        || !require(
            Path::new(QEMU_AARCH64).exists(),
            "qemu-aarch64-static is not installed",
        )
    {
        return;
    }
    let d = fixtures_dir().join("arm64-dyn");
    if !require(
        d.join("bin/busybox").is_file() && d.join("lib/aarch64-linux-gnu/libc.so.6").is_file(),
        "fixture arm64-dyn (busybox:arm64 with libc6:arm64) is missing",
    ) {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    let mut b = Bundle::empty();
    b.copy_in(d.join("bin/busybox"), "/bin/busybox", Some(0o755));
    let link = std::fs::read_link(d.join("lib/ld-linux-aarch64.so.1")).expect("readlink loader");
    b.symlink("/lib/ld-linux-aarch64.so.1", link.to_str().expect("utf-8"));
    // libresolv.so.2 left out.
    for lib in ["ld-linux-aarch64.so.1", "libc.so.6"] {
        b.copy_in(
            d.join("lib/aarch64-linux-gnu").join(lib),
            &format!("/lib/aarch64-linux-gnu/{lib}"),
            Some(0o755),
        );
    }
    b.args(&["/bin/busybox", "echo", "hi"]);
    guard.register_aarch64(QEMU_AARCH64, "F");
    if !guard.require_only_ours_for(&b.host("/bin/busybox")) {
        return;
    }
    let c = execguard_check(&b);
    assert!(c.find("emulated").is_some(), "{}", c.json);
    let f = one_warning(&c, "missing-library");
    assert_eq!(f["evidence"]["library"], "libresolv.so.2", "{f}");
    assert_loader_refuses(&b, "ae-emu-miss", f);
    // With it, it runs and nothing is missing.
    b.copy_in(
        d.join("lib/aarch64-linux-gnu/libresolv.so.2"),
        "/lib/aarch64-linux-gnu/libresolv.so.2",
        Some(0o755),
    );
    let c = execguard_check(&b);
    assert!(c.find("missing-library").is_none(), "{}", c.json);
    let real = runc_run(&b, "ae-emu-ok");
    assert_eq!((real.code(), real.stdout.as_str()), (0, "hi\n"), "{real:?}");
}

// ---------------------------------------------------------------------------------------------
// isa-level

/// The x86-64 level of this CPU from /proc/cpuinfo's AVX-512 flags: whether it has v4.
fn cpu_has_v4() -> bool {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default()
        .to_string();
    ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
        .iter()
        .all(|f| flags.split_whitespace().any(|w| w == *f))
}

/// `/app`: a dynamic program marked as needing x86-64-v4 (`-Wl,-z,x86-64-v4`), with the
/// loader and libc.
fn v4_bundle() -> Option<Bundle> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = tmp.path().join("v4");
    std::fs::write(
        tmp.path().join("v4.c"),
        "#include <stdio.h>\nint main(void) { puts(\"v4 ran\"); return 0; }\n",
    )
    .expect("write v4.c");
    let ok = Command::new("cc")
        .current_dir(tmp.path())
        .args(["-O0", "-Wl,-z,x86-64-v4", "-o", "v4", "v4.c"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !require(ok, "cannot link with -Wl,-z,x86-64-v4") {
        return None;
    }
    let mut b = Bundle::empty();
    b.copy_in(&exe, "/app", Some(0o755));
    for lib in ldd_paths("/bin/true") {
        b.mirror_host_path(&lib);
    }
    b.args(&["/app"]);
    Some(b)
}

#[test]
fn a_program_needing_x86_64_v4_matches_what_this_cpu_does() {
    if !runtime_ready() || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let Some(b) = v4_bundle() else {
        return;
    };
    let c = execguard_check(&b);
    let real = runc_run(&b, "ae-isa-real");
    if cpu_has_v4() {
        // This CPU has AVX-512: the real loader runs it, and execguard says nothing.
        assert!(c.find("isa-level").is_none(), "{}", c.json);
        assert_eq!(
            (real.code(), real.stdout.as_str()),
            (0, "v4 ran\n"),
            "{real:?}"
        );
    } else {
        let f = one_warning(&c, "isa-level");
        assert_eq!(
            f["expected_error"],
            "/app: CPU ISA level is lower than required"
        );
        assert_eq!(real.code(), 127, "{real:?}");
        assert!(
            real.stderr
                .contains("/app: CPU ISA level is lower than required"),
            "{real:?}"
        );
    }
}

#[test]
fn below_x86_64_v4_the_loader_refuses_with_the_predicted_words() {
    if !runtime_ready()
        || std::env::consts::ARCH != "x86_64"
        || !require(
            Path::new("/usr/bin/qemu-x86_64-static").exists(),
            "qemu-x86_64-static is not installed",
        )
    {
        return;
    }
    let Some(mut b) = v4_bundle() else {
        return;
    };
    // Through the seam: a CPU of x86-64-v2 (Nehalem).
    let c = execguard_check_with(&b, &["--host-isa-level", "2"]);
    assert_eq!(c.codes(), ["isa-level"], "{}", c.json);
    let f = one_warning(&c, "isa-level");
    assert_eq!(
        f["expected_error"],
        "/app: CPU ISA level is lower than required"
    );
    assert_eq!(f["evidence"]["needed_isa_level"], "x86-64-v4", "{f}");
    assert_eq!(f["evidence"]["cpu_isa_level"], "x86-64-v2", "{f}");
    // At v4 the seam agrees with the note.
    let c = execguard_check_with(&b, &["--host-isa-level", "4"]);
    assert!(c.find("isa-level").is_none(), "{}", c.json);
    // The real glibc loader of the image, on an emulated Nehalem CPU inside runc, prints
    // exactly those words and exits 127.
    b.copy_in("/usr/bin/qemu-x86_64-static", "/qemu", Some(0o755));
    b.args(&["/qemu", "-cpu", "Nehalem", "/app"]);
    let real = runc_run(&b, "ae-isa-emu");
    let expected = f["expected_error"].as_str().unwrap_or_default();
    assert_eq!(real.code(), 127, "{real:?}");
    assert!(real.stderr.lines().any(|l| l == expected), "{real:?}");
}

// ---------------------------------------------------------------------------------------------
// page-size (this machine has 4K pages: through the seam)

#[test]
fn libraries_that_do_not_fit_larger_pages_are_named_through_the_seam() {
    if !ls_ready() {
        return;
    }
    let b = ls_bundle(&[]);
    // The real pages of this host (4K): nothing.
    let c = execguard_check_with(&b, &["--host-page-size", "4096"]);
    assert!(c.findings().is_empty(), "{}", c.json);
    // 16K pages: every finding is a warning about a real file of the bundle, and a library
    // whose file offset and address disagree modulo 16K gets glibc's words.
    let c = execguard_check_with(&b, &["--host-page-size", "16384"]);
    let fs = all(&c, "page-size");
    assert!(!fs.is_empty(), "{}", c.json);
    assert!(fs.iter().all(|f| f["severity"] == "warning"), "{}", c.json);
    assert_eq!(c.json["verdict"], "warn");
    for f in &fs {
        assert_eq!(f["evidence"]["page_size"], 16384, "{f}");
        let align = f["evidence"]["p_align"].as_u64().unwrap_or(u64::MAX);
        assert!(align < 16384, "{f}");
        if let (Some(off), Some(vaddr)) = (
            f["evidence"]["p_offset"].as_str(),
            f["evidence"]["p_vaddr"].as_str(),
        ) {
            let n = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0);
            assert_ne!(n(vaddr).wrapping_sub(n(off)) % 16384, 0, "{f}");
            if let Some(lib) = f["evidence"]["library"].as_str() {
                assert_eq!(
                    f["expected_error"],
                    format!(
                        "/bin/ls: error while loading shared libraries: {lib}: ELF load command address/offset not page-aligned"
                    )
                );
            }
        }
    }
}

#[test]
fn arm64_binaries_built_for_64k_pages_fit_through_the_seam() {
    let d = fixtures_dir().join("arm64-dyn");
    if !require(
        d.join("bin/busybox").is_file() && d.join("lib/aarch64-linux-gnu/libc.so.6").is_file(),
        "fixture arm64-dyn (busybox:arm64 with libc6:arm64) is missing",
    ) {
        return;
    }
    // A registered aarch64 handler would take the file even on an aarch64 host (binfmt_misc
    // comes before binfmt_elf): hold the guard so no other test registers one meanwhile.
    let Some(guard) = binfmt_guard() else {
        return;
    };
    if !guard.require_no_handler_for(&d.join("bin/busybox")) {
        return;
    }
    let mut b = Bundle::empty();
    b.copy_in(d.join("bin/busybox"), "/bin/busybox", Some(0o755));
    let link = std::fs::read_link(d.join("lib/ld-linux-aarch64.so.1")).expect("readlink loader");
    b.symlink("/lib/ld-linux-aarch64.so.1", link.to_str().expect("utf-8"));
    for lib in ["ld-linux-aarch64.so.1", "libc.so.6", "libresolv.so.2"] {
        b.copy_in(
            d.join("lib/aarch64-linux-gnu").join(lib),
            &format!("/lib/aarch64-linux-gnu/{lib}"),
            Some(0o755),
        );
    }
    b.args(&["/bin/busybox", "echo", "hi"]);
    // On an arm64 host with 64K pages: Debian links for 64K, so nothing; libc found in the
    // multiarch directory, the loader's own DT_NEEDED matched by its soname.
    let c = execguard_check_with(
        &b,
        &["--host-machine", "aarch64", "--host-page-size", "65536"],
    );
    assert!(c.findings().is_empty(), "{}", c.json);
    // Without libc.so.6 the arm64 loader would not find it.
    std::fs::remove_file(b.host("/lib/aarch64-linux-gnu/libc.so.6")).expect("remove libc");
    let c = execguard_check_with(&b, &["--host-machine", "aarch64"]);
    let f = one_warning(&c, "missing-library");
    assert_eq!(f["evidence"]["library"], "libc.so.6", "{f}");
    assert_eq!(
        f["evidence"]["searched"][0], "/lib/aarch64-linux-gnu",
        "{f}"
    );
}

// ---------------------------------------------------------------------------------------------
// no-shell

/// A distroless-like root: one static C program at `/app` that prints its arguments, and no
/// shell anywhere.
fn distroless_bundle() -> Option<Bundle> {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        tmp.path().join("app.c"),
        "#include <stdio.h>\nint main(int c, char **v) { for (int i = 1; i < c; i++) printf(\"%s%s\", v[i], i + 1 < c ? \" \" : \"\\n\"); return 0; }\n",
    )
    .expect("write app.c");
    let ok = Command::new("cc")
        .current_dir(tmp.path())
        .args(["-static", "-O0", "-o", "app", "app.c"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !require(ok, "cannot build a static program with cc -static") {
        return None;
    }
    let b = Bundle::empty();
    b.copy_in(tmp.path().join("app"), "/app", Some(0o755));
    Some(b)
}

#[test]
fn a_shell_form_command_in_an_image_without_a_shell_gets_the_exec_form() {
    if !runtime_ready() {
        return;
    }
    let Some(mut b) = distroless_bundle() else {
        return;
    };
    b.args(&["/bin/sh", "-c", "/app --port 8080"]);
    let c = execguard_check(&b);
    assert_eq!(c.codes(), ["not-found", "no-shell"], "{}", c.json);
    let nf = c.leading();
    assert_eq!(nf["severity"], "error");
    assert!(
        nf["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("exec form"),
        "{nf}"
    );
    let f = one_warning(&c, "no-shell");
    assert_eq!(
        f["evidence"]["exec_form"], r#"["/app","--port","8080"]"#,
        "{f}"
    );
    assert_eq!(f["expected_error"], nf["expected_error"]);
    let real = runc_run(&b, "ae-noshell");
    assert_ne!(real.code(), 0, "{real:?}");
    let expected = f["expected_error"].as_str().unwrap_or_default();
    assert!(
        unescape_runc(&real.stderr).contains(expected),
        "runc did not say {expected:?}: {real:?}"
    );
    // The exec form the finding gives runs, with nothing to say.
    let form: Vec<String> =
        serde_json::from_str(f["evidence"]["exec_form"].as_str().unwrap_or("[]")).expect("json");
    let form: Vec<&str> = form.iter().map(String::as_str).collect();
    b.args(&form);
    let c = execguard_check(&b);
    assert!(c.findings().is_empty(), "{}", c.json);
    let real = runc_run(&b, "ae-execform");
    assert_eq!(
        (real.code(), real.stdout.as_str()),
        (0, "--port 8080\n"),
        "{real:?}"
    );

    // A bare `sh` looked up through PATH: the same.
    b.args(&["sh", "-c", "exec /app --port 8080"]);
    let c = execguard_check(&b);
    assert_eq!(c.codes(), ["not-found", "no-shell"], "{}", c.json);
    let f = one_warning(&c, "no-shell");
    assert_eq!(
        f["evidence"]["exec_form"], r#"["/app","--port","8080"]"#,
        "{f}"
    );
    let real = runc_run(&b, "ae-noshell-path");
    assert_ne!(real.code(), 0, "{real:?}");
    assert!(
        unescape_runc(&real.stderr).contains(f["expected_error"].as_str().unwrap_or_default()),
        "{real:?}"
    );
    // Shell syntax has no exec form: the hint says what to do instead.
    b.args(&["/bin/sh", "-c", "/app --port $PORT"]);
    let c = execguard_check(&b);
    let f = one_warning(&c, "no-shell");
    assert!(f["evidence"].get("exec_form").is_none(), "{f}");
    assert!(
        f["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("shell syntax"),
        "{f}"
    );
}

#[test]
fn a_missing_bash_in_an_image_with_sh_is_not_no_shell() {
    if !runtime_ready() {
        return;
    }
    let mut b = Bundle::busybox();
    b.args(&["/bin/bash", "-c", "echo hi"]);
    let c = execguard_check(&b);
    assert_eq!(c.codes(), ["not-found"], "{}", c.json);
    let real = runc_run(&b, "ae-nobash");
    assert_ne!(real.code(), 0, "{real:?}");
}
