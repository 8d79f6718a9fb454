//! `execguard doctor`'s verdicts proven against real runs: a platform the doctor calls
//! runnable runs a real binary of that architecture through runc, one it calls unsupported
//! fails with the kernel's exec format error, and a handler without F runs only where its
//! interpreter is inside the container, as the doctor's note says. binfmt_misc is changed only
//! under the guard and restored.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `execguard doctor --format json --platform P...`: (exit code, JSON).
fn doctor(platforms: &[&str]) -> (i32, Value) {
    let mut c = Command::new(execguard_bin());
    c.args(["doctor", "--format", "json"]);
    for p in platforms {
        c.args(["--platform", p]);
    }
    let out = run_limited(c, "execguard doctor", || {});
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("doctor JSON ({e}): {out:?}"));
    (out.code(), v)
}

fn verdict<'a>(v: &'a Value, platform: &str) -> &'a Value {
    v["platforms"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["platform"] == platform))
        .unwrap_or_else(|| panic!("no {platform} in {v}"))
}

/// A busybox bundle of `arch` (a fixture) running `echo hi`.
fn bundle_of(arch: &str) -> Option<Bundle> {
    let bb = foreign_busybox(arch)?;
    let mut b = Bundle::empty();
    b.copy_in(&bb, "/bin/busybox", Some(0o755));
    b.args(&["/bin/busybox", "echo", "hi"]);
    Some(b)
}

#[test]
fn doctor_verdicts_agree_with_what_runc_really_runs() {
    if !runtime_ready() {
        return;
    }
    let (Some(arm64), Some(armhf)) = (bundle_of("arm64"), bundle_of("armhf")) else {
        require(false, "the arm64 and armhf busybox fixtures are missing");
        return;
    };
    if !require(
        Path::new(QEMU_AARCH64).exists(),
        "qemu-aarch64-static is missing",
    ) {
        return;
    }
    let Some(mut guard) = binfmt_guard() else {
        return;
    };
    if !guard.require_no_handler_for(&arm64.host("/bin/busybox"))
        || !guard.require_no_handler_for(&armhf.host("/bin/busybox"))
    {
        return;
    }
    let mut native = Bundle::busybox();
    native.args(&["/bin/busybox", "echo", "hi"]);
    let platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

    // No handler: amd64 native and runs; arm64 and arm/v7 unsupported and fail.
    let (code, v) = doctor(&platforms);
    assert_eq!(verdict(&v, "linux/amd64")["verdict"], "native", "{v}");
    assert_eq!(verdict(&v, "linux/arm64")["verdict"], "unsupported", "{v}");
    assert_eq!(verdict(&v, "linux/arm/v7")["verdict"], "unsupported", "{v}");
    assert!(
        verdict(&v, "linux/arm64")["fix"].is_string(),
        "a fix is named: {v}"
    );
    assert_eq!(code, 1, "an unsupported platform exits 1");
    let r = runc_run(&native, "doc-native");
    assert_eq!((r.code(), r.stdout.as_str()), (0, "hi\n"), "{r:?}");
    for (b, tag) in [(&arm64, "doc-arm64"), (&armhf, "doc-armhf")] {
        let r = runc_run(b, tag);
        assert_ne!(r.code(), 0, "{tag}: unsupported must fail: {r:?}");
        assert!(r.stderr.contains("exec format error"), "{tag}: {r:?}");
    }

    // A handler with F: arm64 emulated (F), exit 0 for it, and it runs in any image.
    let f = guard.register_aarch64(QEMU_AARCH64, "F");
    let (code, v) = doctor(&["linux/arm64"]);
    let a = verdict(&v, "linux/arm64");
    assert_eq!(a["verdict"], "emulated", "{v}");
    assert_eq!(a["handler"], f.as_str(), "{v}");
    assert_eq!(a["fix_binary"], true, "{v}");
    assert_eq!(code, 0, "emulated with F exits 0: {v}");
    let r = runc_run(&arm64, "doc-arm64-f");
    assert_eq!((r.code(), r.stdout.as_str()), (0, "hi\n"), "{r:?}");

    // Without F (the F one disabled): emulated, no F, exit 1, and it runs only where the
    // interpreter is inside the container.
    guard.disable(&f);
    let nf = guard.register("aarch64-nf", AARCH64_MAGIC, AARCH64_MASK, QEMU_AARCH64, "");
    let (code, v) = doctor(&["linux/arm64"]);
    let a = verdict(&v, "linux/arm64");
    assert_eq!(a["verdict"], "emulated", "{v}");
    assert_eq!(a["handler"], nf.as_str(), "{v}");
    assert_eq!(a["fix_binary"], false, "{v}");
    assert!(
        a["note"].as_str().is_some_and(|n| n.contains("no F flag")),
        "{v}"
    );
    assert_eq!(code, 1, "emulated without F exits 1: {v}");
    let r = runc_run(&arm64, "doc-arm64-nf");
    assert_ne!(
        r.code(),
        0,
        "without the interpreter inside it fails: {r:?}"
    );
    assert!(r.stderr.contains("no such file or directory"), "{r:?}");
    let with_qemu = bundle_of("arm64").expect("fixture");
    with_qemu.copy_in(QEMU_AARCH64, QEMU_AARCH64, Some(0o755));
    let r = runc_run(&with_qemu, "doc-arm64-nf-in");
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (0, "hi\n"),
        "with the interpreter inside it runs: {r:?}"
    );
}
