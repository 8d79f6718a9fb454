//! `execguard check --rootfs` and `execguard check --image-tar` on real trees.
//!
//! The rootfs half sweeps a real Debian bookworm minbase (debootstrap, cached by .ci/setup at
//! `<fixtures>/minbase`): clean, it has no error; with real problems planted on an overlay over
//! it (the arm64 busybox, a CRLF script, a script whose interpreter is missing, a file without
//! an execute bit named explicitly, a program only root may run) each is found with its code,
//! and each predicted failure is what `/usr/bin/runc` then prints.
//!
//! The image half builds tarballs here, in the shapes `docker save` writes (before and since
//! Docker 25) and an OCI layout with gzip layers, from a busybox root, and checks what execguard
//! reads from them (entrypoint, cmd, env, user, working dir, platform), that whiteouts and
//! opaque directories are applied in layer order, the `platform-label-mismatch` finding, and
//! that hostile tarballs (`..` names, truncation, huge sizes, links out of the root, zstd, a
//! FIFO) end with a clear error and leave nothing behind.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Running execguard

/// `execguard check ARGS --format json` with the shape of the sweep document checked; the
/// document is Null when the exit status is 2.
fn sweep_json(args: &[&str], tmpdir: Option<&Path>) -> (Outcome, Value) {
    let mut c = Command::new(execguard_bin());
    c.arg("check").args(args).args(["--format", "json"]);
    if let Some(t) = tmpdir {
        c.env("TMPDIR", t);
    }
    let out = run_limited(c, &format!("execguard check {args:?}"), || {});
    if out.code() == 2 {
        return (out, Value::Null);
    }
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout of check {args:?} is not one JSON document ({e}): {out:?}")
    });
    assert_eq!(v["schema_version"], 1, "{v}");
    let reports = v["reports"].as_array().expect("reports array");
    assert!(!reports.is_empty(), "{v}");
    let mut errors = 0;
    for r in reports {
        errors += r["summary"]["errors"].as_u64().expect("summary.errors");
        for d in r["diagnoses"].as_array().expect("diagnoses") {
            assert_eq!(d["schema_version"], 1, "{d}");
            for f in d["findings"].as_array().expect("findings") {
                assert!(f["code"].is_string() && f["message"].is_string(), "{f}");
            }
        }
    }
    assert_eq!(
        out.code(),
        if errors > 0 { 1 } else { 0 },
        "exit status must be 1 exactly when a finding is an error: {v}"
    );
    (out, v)
}

/// `execguard check ARGS` in text.
fn sweep_text(args: &[&str]) -> Outcome {
    let mut c = Command::new(execguard_bin());
    c.arg("check").args(args);
    run_limited(c, &format!("execguard check {args:?}"), || {})
}

/// Every (program, code, severity) of a sweep document.
fn findings(v: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for r in v["reports"].as_array().into_iter().flatten() {
        for d in r["diagnoses"].as_array().into_iter().flatten() {
            let who = d["program"]["args0"]
                .as_str()
                .or(d["program"]["path"].as_str())
                .unwrap_or("")
                .to_string();
            for f in d["findings"].as_array().into_iter().flatten() {
                out.push((
                    who.clone(),
                    f["code"].as_str().unwrap_or("").to_string(),
                    f["severity"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    out
}

/// The finding of `code` for program `who`.
fn finding<'a>(v: &'a Value, who: &str, code: &str) -> &'a Value {
    for r in v["reports"].as_array().into_iter().flatten() {
        for d in r["diagnoses"].as_array().into_iter().flatten() {
            if d["program"]["args0"] == who || d["program"]["path"] == who {
                for f in d["findings"].as_array().into_iter().flatten() {
                    if f["code"] == code {
                        return f;
                    }
                }
            }
        }
    }
    panic!("no {code} finding for {who} in {v}");
}

// ---------------------------------------------------------------------------------------------
// The minbase root

/// The cached Debian minbase root, or a skip (a failure in CI).
fn minbase() -> Option<PathBuf> {
    let p = fixtures_dir().join("minbase");
    require(
        p.join("usr/bin/dpkg").is_file() && p.join("etc/debian_version").is_file(),
        &format!(
            "no Debian minbase root at {} (.ci/setup makes it with debootstrap --variant=minbase bookworm)",
            p.display()
        ),
    )
    .then_some(p)
}

/// An overlay mount over a read-only lower root: files planted in `merged` land in the upper
/// directory, the cached root stays as it is. Unmounted on drop.
struct Overlay {
    dir: tempfile::TempDir,
    merged: PathBuf,
}

impl Overlay {
    fn new(lower: &Path) -> Option<Overlay> {
        if !require(
            nix::unistd::geteuid().is_root(),
            "an overlay mount needs root",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("egt-overlay-")
            .tempdir()
            .expect("overlay folder");
        let (upper, work, merged) = (
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("merged"),
        );
        for d in [&upper, &work, &merged] {
            fs::create_dir(d).expect("overlay folder");
        }
        fs::set_permissions(&upper, fs::Permissions::from_mode(0o755)).unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        let ok = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged)
            .status()
            .is_ok_and(|s| s.success());
        require(ok, "cannot mount an overlay over the minbase root")
            .then_some(Overlay { dir, merged })
    }

    fn plant(&self, inner: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.merged.join(inner.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.merged).status();
        let _ = &self.dir;
    }
}

/// A bundle that runs `args` on the root at `rootfs` (read-only, so runc changes nothing).
fn bundle_on(rootfs: &Path, args: &[&str]) -> Bundle {
    let mut b = Bundle::empty();
    b.config["root"] = json!({"path": rootfs, "readonly": true});
    b.args(args);
    b
}

#[test]
fn a_clean_minbase_has_no_error_and_is_swept_fast() {
    let Some(root) = minbase() else { return };
    let r = root.to_str().unwrap();
    let start = Instant::now();
    let (out, v) = sweep_json(&["--rootfs", r, "--all"], None);
    let took = start.elapsed();
    assert_eq!(out.code(), 0, "{out:?}");
    let rep = &v["reports"][0];
    assert_eq!(rep["target"]["kind"], "rootfs");
    assert_eq!(rep["complete"], true);
    let checked = rep["checked"].as_u64().unwrap();
    assert!(
        checked >= 400,
        "a minbase has about 480 programs, swept {checked}"
    );
    assert_eq!(rep["summary"]["errors"], 0, "{}", rep["summary"]);
    assert_eq!(v["verdict"], "ok", "{}", rep["summary"]);
    // Generous even for a debug build on a loaded machine; bench/sweep.sh has the real figure.
    assert!(
        took < Duration::from_secs(10),
        "sweeping {checked} programs took {took:?}"
    );
    // The text form ends with the summary line.
    let t = sweep_text(&["--rootfs", r, "--all"]);
    assert_eq!(t.code(), 0, "{t:?}");
    assert!(
        t.stdout
            .lines()
            .any(|l| l.starts_with(&format!("ok: {checked} programs checked, 0 with errors"))),
        "{}",
        t.stdout
    );
}

#[test]
fn planted_problems_are_found_with_their_codes_and_runc_fails_as_predicted() {
    if !runtime_ready() {
        return;
    }
    let Some(root) = minbase() else { return };
    let Some(arm) = foreign_busybox("arm64") else {
        return;
    };
    let Some(guard) = binfmt_guard() else { return };
    if !guard.require_no_handler_for(&arm) {
        return;
    }
    let Some(ov) = Overlay::new(&root) else {
        return;
    };
    fs::copy(&arm, ov.merged.join("usr/local/bin/arm64-tool")).unwrap();
    ov.plant("/usr/local/bin/crlf.sh", b"#!/bin/sh\r\necho hi\r\n", 0o755);
    ov.plant(
        "/usr/local/bin/needs-python",
        b"#!/usr/bin/python3\nprint('hi')\n",
        0o755,
    );
    ov.plant("/opt/notes.txt", b"#!/bin/sh\necho notes\n", 0o644);
    let m = ov.merged.to_str().unwrap();

    let (out, v) = sweep_json(&["--rootfs", m, "--all"], None);
    assert_eq!(out.code(), 1, "{out:?}");
    let mut errs: Vec<(String, String)> = findings(&v)
        .into_iter()
        .filter(|(_, _, sev)| sev == "error")
        .map(|(w, c, _)| (w, c))
        .collect();
    errs.sort();
    assert_eq!(
        errs,
        [
            (
                "/usr/local/bin/arm64-tool".to_string(),
                "arch-mismatch".to_string()
            ),
            ("/usr/local/bin/crlf.sh".into(), "shebang-crlf".into()),
            (
                "/usr/local/bin/needs-python".into(),
                "shebang-interpreter-missing".into()
            ),
        ],
        "exactly the planted problems, with their codes: {v}"
    );
    let rep = &v["reports"][0];
    assert_eq!(rep["summary"]["codes"]["shebang-crlf"]["error"], 1);
    assert_eq!(rep["summary"]["files_with_errors"], 3);

    // One line per problem in text, then the summary per code.
    let t = sweep_text(&["--rootfs", m, "--all"]);
    assert_eq!(t.code(), 1);
    for (who, code) in &errs {
        assert!(
            t.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{who}: error: "))
                    && l.ends_with(&format!("[{code}]"))),
            "no line for {who} [{code}] in:\n{}",
            t.stdout
        );
    }
    assert!(
        t.stdout.contains("\n  shebang-crlf: 1 error\n"),
        "{}",
        t.stdout
    );

    // A file without an execute bit, named explicitly.
    let (out, nx) = sweep_json(&["--rootfs", m, "/opt/notes.txt"], None);
    assert_eq!(out.code(), 1);
    let f = finding(&nx, "/opt/notes.txt", "not-executable");
    assert_eq!(f["errno"], "EACCES");

    // Each predicted failure is what runc prints.
    for (who, code) in errs
        .iter()
        .map(|(w, c)| (w.as_str(), c.as_str()))
        .chain([("/opt/notes.txt", "not-executable")])
    {
        let doc = if code == "not-executable" { &nx } else { &v };
        let f = finding(doc, who, code);
        let expected = f["expected_error"]
            .as_str()
            .unwrap_or_else(|| panic!("no expected_error for {who}: {f}"));
        let real = runc_run(&bundle_on(&ov.merged, &[who]), "sweep");
        assert_ne!(real.code(), 0, "runc ran {who}: {real:?}");
        assert!(
            unescape_runc(&real.stderr).contains(expected),
            "{code}: expected {expected:?}, runc printed {:?}",
            real.stderr
        );
    }
    drop(guard);
}

#[test]
fn user_and_env_change_the_synthetic_process() {
    if !runtime_ready() {
        return;
    }
    let Some(root) = minbase() else { return };
    let Some(ov) = Overlay::new(&root) else {
        return;
    };
    ov.plant("/usr/local/bin/root-only", b"#!/bin/sh\necho root\n", 0o700);
    let m = ov.merged.to_str().unwrap();
    // As root it runs; as nobody (from the root's own /etc/passwd) it may not.
    let (out, _) = sweep_json(&["--rootfs", m, "/usr/local/bin/root-only"], None);
    assert_eq!(out.code(), 0, "{out:?}");
    let (out, v) = sweep_json(
        &[
            "--rootfs",
            m,
            "--user",
            "nobody",
            "/usr/local/bin/root-only",
        ],
        None,
    );
    assert_eq!(out.code(), 1, "{out:?}");
    let f = finding(&v, "/usr/local/bin/root-only", "permission-denied-user");
    assert!(
        f["message"].as_str().unwrap().contains("65534:65534"),
        "{f}"
    );
    let mut b = bundle_on(&ov.merged, &["/usr/local/bin/root-only"]);
    b.user(65534, 65534, &[]);
    let real = runc_run(&b, "sweep-user");
    assert!(
        real.code() != 0 && real.stderr.contains("permission denied"),
        "{real:?}"
    );
    // A name the root does not have is refused with the engines' words.
    let (out, _) = sweep_json(&["--rootfs", m, "--user", "no-such-user", "/bin/ls"], None);
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr.contains("unable to find user no-such-user"),
        "{out:?}"
    );
    // A bare name is looked up in PATH: the default finds ls, --env PATH decides otherwise.
    let (out, _) = sweep_json(&["--rootfs", m, "ls"], None);
    assert_eq!(out.code(), 0, "{out:?}");
    let (out, v) = sweep_json(&["--rootfs", m, "--env", "PATH=/nowhere", "ls"], None);
    assert_eq!(out.code(), 1, "{out:?}");
    finding(&v, "ls", "not-found");
    // --platform turns every foreign ELF into a label mismatch.
    let (out, v) = sweep_json(
        &["--rootfs", m, "--platform", "linux/arm64", "/usr/bin/ls"],
        None,
    );
    assert_eq!(out.code(), 1);
    let f = finding(&v, "/usr/bin/ls", "platform-label-mismatch");
    assert_eq!(f["evidence"]["file_arch"], "amd64");
}

#[test]
fn bad_arguments_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().to_str().unwrap();
    for args in [
        vec!["--rootfs", d],
        vec!["--all"],
        vec!["/bin/ls"],
        vec!["--rootfs", "/nonexistent-root", "--all"],
        vec!["--rootfs", d, "--platform", "linux//x", "--all"],
        vec!["--rootfs", d, "--env", "NOEQUALS", "--all"],
        vec!["--rootfs", d, "--image-tar", d],
    ] {
        let o = sweep_text(&args);
        assert_eq!(o.code(), 2, "{args:?}: {o:?}");
        assert!(
            o.stderr.starts_with("execguard: ") || o.stderr.contains("error:"),
            "{o:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tarballs built here

/// A ustar writer with pax headers for long names.
#[derive(Default)]
struct Tar(Vec<u8>);

fn octal(h: &mut [u8], at: usize, len: usize, v: u64) {
    let s = format!("{v:0w$o}\0", w = len - 1);
    h[at..at + len].copy_from_slice(s.as_bytes());
}

fn header(name: &[u8], flag: u8, mode: u32, uid: u32, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, u64::from(uid));
    octal(&mut h, 116, 8, u64::from(uid));
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    checksum(&mut h);
    h
}

fn checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

impl Tar {
    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(512) {
            self.0.push(0);
        }
    }

    fn raw(&mut self, name: &str, flag: u8, mode: u32, uid: u32, data: &[u8], link: &str) {
        let (mut n, mut l) = (name.as_bytes(), link.as_bytes());
        if n.len() > 100 || l.len() > 100 {
            let mut pax = Vec::new();
            for (k, v) in [("path", n), ("linkpath", l)] {
                if v.len() > 100 {
                    let body = format!(" {k}={}\n", String::from_utf8_lossy(v));
                    let mut len = body.len() + 1;
                    while format!("{len}{body}").len() != len {
                        len += 1;
                    }
                    pax.extend_from_slice(format!("{len}{body}").as_bytes());
                }
            }
            self.0
                .extend_from_slice(&header(b"PaxHeader", b'x', 0o644, 0, pax.len() as u64, b""));
            self.0.extend_from_slice(&pax);
            self.pad();
            if n.len() > 100 {
                n = &n[..100];
            }
            if l.len() > 100 {
                l = &l[..100];
            }
        }
        self.0
            .extend_from_slice(&header(n, flag, mode, uid, data.len() as u64, l));
        self.0.extend_from_slice(data);
        self.pad();
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.raw(name, b'5', mode, 0, b"", "");
        self
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.raw(name, b'0', mode, 0, data, "");
        self
    }

    fn file_of(&mut self, name: &str, mode: u32, uid: u32, data: &[u8]) -> &mut Self {
        self.raw(name, b'0', mode, uid, data, "");
        self
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, b'2', 0o777, 0, b"", target);
        self
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, b'1', 0o755, 0, b"", target);
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0u8; 1024]);
        std::mem::take(&mut self.0)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A fake digest: the tarballs are never loaded by an engine, and execguard does not hash.
fn digest(n: u32) -> String {
    format!("{n:064x}")
}

/// The busybox base layer: /bin/busybox, /bin/sh, an app user, a root-only program, /opt/old.
fn base_layer(busybox: &[u8]) -> Vec<u8> {
    let mut t = Tar::default();
    t.dir("./", 0o755)
        .dir("./bin/", 0o755)
        .file("./bin/busybox", 0o755, busybox)
        .symlink("./bin/sh", "busybox")
        .hardlink("./bin/busybox-hard", "bin/busybox")
        .file("./bin/root-only", 0o700, b"#!/bin/busybox sh\necho root\n")
        .dir("./etc/", 0o755)
        .file(
            "./etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .file(
            "./etc/group",
            0o644,
            b"root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
        )
        .dir("./opt/", 0o755)
        .file("./opt/old", 0o755, b"#!/bin/sh\necho old\n");
    let deep = format!("./usr/share/{}/prog", "long-directory-name".repeat(8));
    t.file(&deep, 0o755, b"#!/bin/sh\necho deep\n");
    t.finish()
}

/// The top layer: /bin/sh whited out, /opt made opaque, a CRLF script, a new /opt/new.
fn top_layer() -> Vec<u8> {
    let mut t = Tar::default();
    t.file("bin/.wh.sh", 0o644, b"")
        .file("opt/.wh..wh..opq", 0o644, b"")
        .file("opt/new", 0o755, b"#!/bin/busybox sh\necho new\n")
        .file_of("srv/run.sh", 0o755, 1000, b"#!/bin/sh\r\necho hi\r\n");
    t.finish()
}

fn config(arch: &str, entrypoint: &[&str], cmd: &[&str], user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "Env": ["PATH=/bin", "GREETING=hi"],
            "User": user,
            "WorkingDir": "/srv",
        },
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap()
}

/// docker save as Docker up to 24 writes it: `<id>/layer.tar`, `<config>.json`,
/// manifest.json, repositories; here the second layer is a symlink to a blob, as the outer
/// links docker writes are.
fn docker_save_legacy(layers: &[Vec<u8>], cfg: &[u8]) -> Vec<u8> {
    let mut t = Tar::default();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let id = digest(100 + i as u32);
        t.dir(&format!("{id}/"), 0o755);
        t.file(&format!("{id}/VERSION"), 0o644, b"1.0");
        if i == 1 {
            t.file(&format!("blobs/sha256/{id}"), 0o644, l);
            t.symlink(&format!("{id}/layer.tar"), &format!("../blobs/sha256/{id}"));
        } else {
            t.file(&format!("{id}/layer.tar"), 0o644, l);
        }
        names.push(format!("{id}/layer.tar"));
    }
    let cfg_name = format!("{}.json", digest(7));
    t.file(&cfg_name, 0o644, cfg);
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["egtest:sweep"], "Layers": names}]);
    t.file("manifest.json", 0o644, manifest.to_string().as_bytes());
    t.file("repositories", 0o644, b"{}");
    t.finish()
}

/// docker save as Docker 25 and later write it: an OCI layout (uncompressed layers) plus
/// manifest.json pointing at the blobs.
fn docker_save_25(layers: &[Vec<u8>], cfg: &[u8]) -> Vec<u8> {
    let mut t = Tar::default();
    let mut descs = Vec::new();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let d = digest(200 + i as u32);
        t.file(&format!("blobs/sha256/{d}"), 0o644, l);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{d}"), "size": l.len()}));
        names.push(format!("blobs/sha256/{d}"));
    }
    let c = digest(9);
    t.file(&format!("blobs/sha256/{c}"), 0o644, cfg);
    let man = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{c}"), "size": cfg.len()},
        "layers": descs});
    let m = digest(10);
    t.file(
        &format!("blobs/sha256/{m}"),
        0o644,
        man.to_string().as_bytes(),
    );
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{m}"), "size": 1, "annotations": {"io.containerd.image.name": "docker.io/library/egtest:sweep"}}]});
    t.file("index.json", 0o644, index.to_string().as_bytes());
    t.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#);
    let manifest = json!([{"Config": format!("blobs/sha256/{c}"), "RepoTags": ["egtest:sweep"], "Layers": names}]);
    t.file("manifest.json", 0o644, manifest.to_string().as_bytes());
    t.finish()
}

/// An OCI layout (buildx `-o type=oci`) with gzip layers: index.json → an image index of one
/// image per platform, plus a provenance attestation manifest.
/// One image of an OCI layout: its architecture, layers (uncompressed) and config.
type OciImage<'a> = (&'a str, Vec<Vec<u8>>, Vec<u8>);

fn oci_layout(images: &[OciImage<'_>]) -> Vec<u8> {
    let mut t = Tar::default();
    let mut n = 300;
    let mut next = || {
        n += 1;
        digest(n)
    };
    let mut manifests = Vec::new();
    for (arch, layers, cfg) in images {
        let mut descs = Vec::new();
        for l in layers {
            let d = next();
            let gz = gzip(l);
            t.file(&format!("blobs/sha256/{d}"), 0o644, &gz);
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{d}"), "size": gz.len()}));
        }
        let c = next();
        t.file(&format!("blobs/sha256/{c}"), 0o644, cfg);
        let man = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{c}"), "size": cfg.len()},
            "layers": descs});
        let m = next();
        t.file(
            &format!("blobs/sha256/{m}"),
            0o644,
            man.to_string().as_bytes(),
        );
        manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{m}"),
            "size": 1, "platform": {"architecture": arch, "os": "linux"}}));
    }
    // An attestation: a manifest of platform unknown/unknown whose "layers" are not a root.
    let a = next();
    t.file(&format!("blobs/sha256/{a}"), 0o644, b"{\"layers\":[]}");
    manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{a}"), "size": 1,
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}));
    let idx = next();
    let inner = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    t.file(
        &format!("blobs/sha256/{idx}"),
        0o644,
        inner.to_string().as_bytes(),
    );
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{idx}"), "size": 1, "annotations": {"org.opencontainers.image.ref.name": "egtest:multi"}}]});
    t.file("index.json", 0o644, index.to_string().as_bytes());
    t.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.finish()
}

fn write_tar(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn host_busybox() -> Option<Vec<u8>> {
    require(
        Path::new(HOST_BUSYBOX).is_file(),
        "no static busybox at /bin/busybox",
    )
    .then(|| fs::read(HOST_BUSYBOX).unwrap())
}

/// A private TMPDIR, checked empty at the end: every view is removed.
struct Tmp(tempfile::TempDir);

impl Tmp {
    fn new() -> Tmp {
        Tmp(tempfile::tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn assert_clean(&self) {
        let left: Vec<_> = fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "views left behind: {left:?}");
    }
}

#[test]
fn docker_save_tarballs_give_the_process_env_user_and_whiteouts() {
    let Some(bb) = host_busybox() else { return };
    let work = tempfile::tempdir().unwrap();
    let tmp = Tmp::new();
    let cfg = config("amd64", &["/bin/sh", "-c"], &["echo hi"], "app");
    let layers = [base_layer(&bb), top_layer()];
    for (shape, tar) in [
        ("legacy", docker_save_legacy(&layers, &cfg)),
        ("docker25", docker_save_25(&layers, &cfg)),
    ] {
        let file = write_tar(work.path(), &format!("{shape}.tar"), &tar);
        let (out, v) = sweep_json(&["--image-tar", &file], Some(tmp.path()));
        assert_eq!(out.code(), 1, "{shape}: {out:?}");
        let rep = &v["reports"][0];
        let t = &rep["target"];
        assert_eq!(t["kind"], "image", "{shape}");
        assert_eq!(t["platform"], "linux/amd64", "{shape}");
        assert_eq!(t["entrypoint"], json!(["/bin/sh", "-c"]), "{shape}");
        assert_eq!(t["cmd"], json!(["echo hi"]), "{shape}");
        assert_eq!(t["env"], json!(["PATH=/bin", "GREETING=hi"]), "{shape}");
        assert_eq!(t["user"], "app", "{shape}");
        assert_eq!(t["working_dir"], "/srv", "{shape}");
        assert_eq!(t["layers"], 2, "{shape}");
        assert!(
            t["name"].as_str().unwrap().ends_with("egtest:sweep"),
            "{shape}: {t}"
        );
        // The top layer whited /bin/sh out: the process is not there.
        let d = &rep["diagnoses"][0];
        assert_eq!(d["program"]["args0"], "/bin/sh");
        assert_eq!(d["findings"][0]["code"], "not-found", "{shape}: {d}");
        assert_eq!(
            d["findings"][0]["expected_error"],
            "exec: \"/bin/sh\": stat /bin/sh: no such file or directory"
        );

        // Explicit paths, as the image's user (uid 1000 from its /etc/passwd), in /srv.
        let (out, v) = sweep_json(
            &[
                "--image-tar",
                &file,
                "/bin/busybox",
                "/bin/busybox-hard",
                "/opt/old",
                "/opt/new",
                "/bin/root-only",
                "./run.sh",
                "busybox",
            ],
            Some(tmp.path()),
        );
        assert_eq!(out.code(), 1, "{shape}: {out:?}");
        let got = findings(&v);
        let codes = |who: &str| -> Vec<String> {
            got.iter()
                .filter(|(w, _, s)| w == who && s != "info")
                .map(|(_, c, _)| c.clone())
                .collect()
        };
        assert!(codes("/bin/busybox").is_empty(), "{shape}: {got:?}");
        assert!(codes("/bin/busybox-hard").is_empty(), "{shape}: {got:?}");
        assert!(
            codes("busybox").is_empty(),
            "PATH=/bin from the image: {got:?}"
        );
        assert_eq!(
            codes("/opt/old"),
            ["not-found"],
            "{shape}: opaque /opt: {got:?}"
        );
        assert!(codes("/opt/new").is_empty(), "{shape}: {got:?}");
        assert_eq!(
            codes("/bin/root-only"),
            ["permission-denied-user"],
            "{shape}: {got:?}"
        );
        assert_eq!(
            codes("./run.sh"),
            ["shebang-crlf"],
            "{shape}: cwd /srv: {got:?}"
        );
        let f = finding(&v, "/bin/root-only", "permission-denied-user");
        assert!(f["message"].as_str().unwrap().contains("1000:1000"), "{f}");

        // --user and --env win over the image's.
        let (out, _) = sweep_json(
            &["--image-tar", &file, "--user", "0", "/bin/root-only"],
            Some(tmp.path()),
        );
        assert_eq!(out.code(), 0, "{shape}: {out:?}");
        let (out, v) = sweep_json(
            &["--image-tar", &file, "--env", "PATH=/opt", "busybox"],
            Some(tmp.path()),
        );
        assert_eq!(out.code(), 1, "{shape}: {out:?}");
        finding(&v, "busybox", "not-found");

        // --all sweeps the image.
        let (_, v) = sweep_json(&["--image-tar", &file, "--all"], Some(tmp.path()));
        let rep = &v["reports"][0];
        assert_eq!(rep["checked"], 6, "{shape}: {rep}");
        assert_eq!(
            rep["summary"]["codes"]["shebang-crlf"]["error"], 1,
            "{shape}"
        );
        assert_eq!(
            rep["summary"]["codes"]["permission-denied-user"]["error"], 1,
            "{shape}"
        );
    }
    tmp.assert_clean();
}

#[test]
fn oci_layouts_with_gzip_layers_and_the_platform_label() {
    let Some(bb) = host_busybox() else { return };
    let Some(arm_path) = foreign_busybox("arm64") else {
        return;
    };
    let arm = fs::read(&arm_path).unwrap();
    let work = tempfile::tempdir().unwrap();
    let tmp = Tmp::new();
    let app_layer = |bin: &[u8]| {
        let mut t = Tar::default();
        t.file("bin/app", 0o755, bin)
            .file("bin/start.sh", 0o755, b"#!/bin/app sh\necho hi\n");
        t.finish()
    };
    // amd64 and arm64 images, each correct; and an amd64 label on an arm64 program (the buildx
    // mistake), and an arm64 label on an amd64 one.
    let multi = oci_layout(&[
        (
            "amd64",
            vec![base_layer(&bb), app_layer(&bb)],
            config("amd64", &["/bin/start.sh"], &[], ""),
        ),
        (
            "arm64",
            vec![base_layer(&bb), app_layer(&arm)],
            config("arm64", &["/bin/start.sh"], &[], ""),
        ),
    ]);
    let file = write_tar(work.path(), "multi.tar", &multi);
    let (out, v) = sweep_json(
        &["--image-tar", &file, "--platform", "linux/amd64"],
        Some(tmp.path()),
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(v["reports"].as_array().unwrap().len(), 1);
    let rep = &v["reports"][0];
    assert_eq!(rep["target"]["name"], "egtest:multi");
    assert_eq!(rep["target"]["platform"], "linux/amd64");
    let chain: Vec<&str> = rep["diagnoses"][0]["program"]["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(chain, ["/bin/start.sh", "/bin/app"], "{rep}");
    // The arm64 image: labelled as its program is; whatever this host can run, no mismatch.
    let (out, v) = sweep_json(
        &["--image-tar", &file, "--platform", "linux/arm64"],
        Some(tmp.path()),
    );
    assert_ne!(out.code(), 2, "{out:?}");
    assert_eq!(v["reports"][0]["target"]["platform"], "linux/arm64");
    assert!(
        !findings(&v)
            .iter()
            .any(|(_, c, _)| c == "platform-label-mismatch"),
        "{v}"
    );
    // Both images without --platform; none for s390x.
    let (_, v) = sweep_json(&["--image-tar", &file], Some(tmp.path()));
    assert_eq!(v["reports"].as_array().unwrap().len(), 2);
    let (out, _) = sweep_json(
        &["--image-tar", &file, "--platform", "linux/s390x"],
        Some(tmp.path()),
    );
    assert_eq!(out.code(), 2);
    assert!(
        out.stderr.contains("has no image for linux/s390x"),
        "{out:?}"
    );

    // An arm64 label on the host's amd64 busybox: runs here, but not where it is pulled.
    let wrong = oci_layout(&[(
        "arm64",
        vec![base_layer(&bb), app_layer(&bb)],
        config("arm64", &["/bin/start.sh"], &[], ""),
    )]);
    let file = write_tar(work.path(), "wrong.tar", &wrong);
    let (out, v) = sweep_json(&["--image-tar", &file], Some(tmp.path()));
    assert_eq!(out.code(), 1, "{out:?}");
    let f = finding(&v, "/bin/start.sh", "platform-label-mismatch");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["path"], "/bin/app");
    assert_eq!(f["evidence"]["file_arch"], "amd64");
    assert_eq!(f["evidence"]["label"], "linux/arm64");
    assert_eq!(f["evidence"]["role"], "shebang-interpreter");
    assert!(
        f["hint"]
            .as_str()
            .unwrap()
            .contains("docker buildx build --platform linux/arm64"),
        "{f}"
    );
    let t = sweep_text(&["--image-tar", &file]);
    assert!(
        t.stdout.contains("[platform-label-mismatch]"),
        "{}",
        t.stdout
    );

    // An amd64 label on an arm64 program: both findings (with no aarch64 emulator here).
    if let Some(guard) = binfmt_guard()
        && guard.require_no_handler_for(&arm_path)
    {
        let wrong = oci_layout(&[(
            "amd64",
            vec![base_layer(&bb), app_layer(&arm)],
            config("amd64", &["/bin/app", "true"], &[], ""),
        )]);
        let file = write_tar(work.path(), "wrong2.tar", &wrong);
        let (out, v) = sweep_json(&["--image-tar", &file], Some(tmp.path()));
        assert_eq!(out.code(), 1);
        let mut codes: Vec<String> = findings(&v)
            .into_iter()
            .filter(|x| x.2 == "error")
            .map(|x| x.1)
            .collect();
        codes.sort();
        assert_eq!(codes, ["arch-mismatch", "platform-label-mismatch"], "{v}");
        drop(guard);
    }
    tmp.assert_clean();
}

#[test]
fn hostile_tarballs_end_with_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let tmp = Tmp::new();
    let cfg = config("amd64", &["/x"], &[], "");
    let image = |layer: Vec<u8>| docker_save_25(&[layer], &cfg);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    let mut t = Tar::default();
    t.file("../../escape", 0o755, b"x");
    cases.push(("dotdot", image(t.finish()), "climbs out of the image root"));

    let mut t = Tar::default();
    t.hardlink("x", "etc/shadow");
    cases.push((
        "hardlink",
        image(t.finish()),
        "not a regular file in the image",
    ));

    let mut t = Tar::default();
    t.file("x", 0o755, &[7u8; 5000]);
    let mut l = t.finish();
    l.truncate(2048);
    cases.push(("truncated layer", image(l), "cut short"));

    // A header claiming 4 GiB of data that is not there.
    let mut h = header(b"bomb", b'0', 0o755, 0, 0, b"");
    octal(&mut h, 124, 12, 1 << 32);
    checksum(&mut h);
    let mut l = h.to_vec();
    l.extend_from_slice(&[0u8; 4096]);
    cases.push(("huge size", image(l), "cut short"));

    let mut l = vec![0x28, 0xb5, 0x2f, 0xfd];
    l.extend_from_slice(&[0u8; 600]);
    cases.push(("zstd", image(l), "zstd"));

    let mut whole = image(base_layer(b"#!/bin/sh\n"));
    whole.truncate(whole.len() / 2 + 100);
    cases.push(("truncated tarball", whole, "cut short"));

    cases.push(("not a tar", vec![0x42; 4096], "not a readable tar archive"));
    let mut t = Tar::default();
    t.file("hello.txt", 0o644, b"hi");
    cases.push((
        "no manifest",
        t.finish(),
        "neither a docker save tarball nor an OCI layout",
    ));

    for (what, bytes, says) in &cases {
        let file = write_tar(work.path(), "hostile.tar", bytes);
        let (out, _) = sweep_json(&["--image-tar", &file], Some(tmp.path()));
        assert_eq!(out.code(), 2, "{what}: {out:?}");
        assert!(
            out.stderr.starts_with("execguard: cannot check: ") && out.stderr.contains(says),
            "{what}: stderr must say {says:?}: {out:?}"
        );
        assert!(!out.stderr.contains("panicked"), "{what}: {out:?}");
    }

    // A link out of the root, then a file below it in a later layer: nothing is written
    // outside the view.
    let outside = tempfile::tempdir().unwrap();
    let mut l1 = Tar::default();
    l1.symlink("evil", outside.path().to_str().unwrap());
    l1.symlink("bin", "../../../../../../../../usr/bin");
    let mut l2 = Tar::default();
    l2.file("evil/pwned", 0o755, b"#!/bin/sh\n");
    l2.file("bin/pwned", 0o755, b"#!/bin/sh\n");
    let file = write_tar(
        work.path(),
        "links.tar",
        &docker_save_25(
            &[l1.finish(), l2.finish()],
            &config("amd64", &["/evil/pwned"], &[], ""),
        ),
    );
    let (out, v) = sweep_json(&["--image-tar", &file], Some(tmp.path()));
    assert_ne!(out.code(), 2, "{out:?}");
    assert!(!outside.path().join("pwned").exists());
    assert!(!Path::new("/usr/bin/pwned").exists());
    // The later layer's directory hides the link, as in the engines' overlay.
    assert_eq!(
        v["reports"][0]["diagnoses"][0]["program"]["path"],
        "/evil/pwned"
    );

    // A FIFO is refused before it is read (no hang).
    let fifo = work.path().join("fifo.tar");
    mkfifo(&fifo, 0o644);
    let (out, _) = sweep_json(&["--image-tar", fifo.to_str().unwrap()], Some(tmp.path()));
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("not a regular file"), "{out:?}");
    tmp.assert_clean();
}
