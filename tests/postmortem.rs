//! `execguard check --container ID`: a container that already failed under the plain runtime
//! (runc alone, no execguard anywhere) is explained from runc's own state, with the same
//! finding and the same predicted error line that runc really printed; a running container is
//! checked through its live view; an id prefix is enough; unknown and ambiguous ids are clear
//! errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `runc --root ROOT ARGS...`.
fn runc(root: &Path, args: &[&str]) -> Outcome {
    let mut c = Command::new(RUNC);
    c.arg("--root").arg(root).args(args);
    run_limited(c, &format!("runc {args:?}"), || {})
}

/// Deletes the container when dropped.
struct Delete<'a>(&'a Path, String);

impl Drop for Delete<'_> {
    fn drop(&mut self) {
        let _ = runc(self.0, &["delete", "-f", &self.1]);
    }
}

/// `execguard check --container ID --root ROOT --format json`: (exit code, JSON, stderr).
fn check_container(root: &Path, id: &str) -> (i32, Option<Value>, String) {
    let mut c = Command::new(execguard_bin());
    c.args(["check", "--container", id, "--root"])
        .arg(root)
        .args(["--format", "json"]);
    let out = run_limited(c, "execguard check --container", || {});
    (
        out.code(),
        serde_json::from_str(out.stdout.trim()).ok(),
        out.stderr,
    )
}

#[test]
fn a_container_whose_start_failed_is_explained_from_runcs_state() {
    if !runtime_ready() {
        return;
    }
    let Some(arm) = foreign_busybox("arm64") else {
        return;
    };
    let Some(guard) = binfmt_guard() else {
        return;
    };
    if !guard.require_no_handler_for(&arm) {
        return;
    }
    let root = tempfile::Builder::new()
        .prefix("egt-pm-")
        .tempdir()
        .unwrap();
    let mut b = Bundle::busybox();
    b.copy_in(&arm, "/bin/app", Some(0o755));
    b.args(&["/bin/app", "echo", "hi"]);
    b.save();
    let id = unique_id("pm");
    let _d = Delete(root.path(), id.clone());
    let bundle = b.path().to_string_lossy().into_owned();
    // The init keeps create's stdio: files, so what it writes at start can be read after.
    let (out, err) = (b.path().join("create.out"), b.path().join("create.err"));
    let mut c = Command::new(RUNC);
    c.arg("--root")
        .arg(root.path())
        .args(["create", "-b", &bundle, &id]);
    let st = run_to_files(c, &out, &err, "runc create");
    assert!(st.success(), "runc create: {st}");
    let started = runc(root.path(), &["start", &id]);
    // runc 1.1.5 creates it and the exec fails when it starts: the init writes the error.
    // The exec fails a moment after start returns: wait for runc to see it stopped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let state = runc(root.path(), &["state", &id]);
        let v: Value = serde_json::from_str(&state.stdout).expect("runc state JSON");
        if v["status"] == "stopped" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the start must fail: {state:?} {started:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let (code, json, stderr) = check_container(root.path(), &id[..id.len() - 2]);
    assert_eq!(code, 1, "a definite error exits 1: {stderr}");
    assert!(
        stderr.contains(&format!("container {id} (runc state in"))
            && stderr.contains("not running: checking its bundle"),
        "says what it found: {stderr}"
    );
    let json = json.expect("JSON on stdout");
    let lead = &json["findings"][0];
    assert_eq!(lead["code"], "arch-mismatch", "{json}");
    assert_eq!(lead["path"], "/bin/app", "{json}");
    assert_eq!(
        lead["expected_error"], "exec /bin/app: exec format error",
        "{json}"
    );
    // Proof that this is the failure the user met: the container's init said exactly that
    // (its stderr is runc's, without a terminal).
    let said = format!(
        "{}{}",
        std::fs::read_to_string(&err).unwrap_or_default(),
        started.stderr
    );
    assert!(
        said.contains("exec /bin/app: exec format error"),
        "runc's own words: {said:?}"
    );
}

#[test]
fn a_running_container_is_checked_through_its_live_view() {
    if !runtime_ready() {
        return;
    }
    let root = tempfile::Builder::new()
        .prefix("egt-pm-")
        .tempdir()
        .unwrap();
    let mut b = Bundle::busybox();
    b.args(&["/bin/busybox", "sleep", "60"]);
    b.save();
    let id = unique_id("pmlive");
    let _d = Delete(root.path(), id.clone());
    let bundle = b.path().to_string_lossy().into_owned();
    let out = Command::new(RUNC)
        .arg("--root")
        .arg(root.path())
        .args(["run", "-d", "-b", &bundle, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("runc run -d");
    assert!(out.success());
    let (code, json, stderr) = check_container(root.path(), &id);
    assert_eq!(code, 0, "{stderr} {json:?}");
    assert!(stderr.contains("running (init pid"), "{stderr}");
    assert_eq!(json.expect("JSON")["verdict"], "ok");
    // What only the running container has: a tmpfs over /bin hides the program from the live
    // view, while the bundle's folder still holds it. Only the live view says not-found.
    let pid = {
        let st = runc(root.path(), &["state", &id]);
        let v: Value = serde_json::from_str(&st.stdout).expect("state");
        v["pid"].as_i64().expect("pid")
    };
    let m = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-m",
            "/bin/busybox",
            "mount",
            "-t",
            "tmpfs",
            "tmpfs",
            "/bin",
        ])
        .status()
        .expect("nsenter");
    if !require(
        m.success(),
        "nsenter could not mount a tmpfs in the container",
    ) {
        return;
    }
    let (code, json, stderr) = check_container(root.path(), &id);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(json.expect("JSON")["findings"][0]["code"], "not-found");
    let real = runc(root.path(), &["exec", &id, "/bin/busybox", "true"]);
    assert_ne!(
        real.code(),
        0,
        "runc exec of the hidden program fails too: {real:?}"
    );
}

#[test]
fn unknown_and_ambiguous_ids_are_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let (code, json, stderr) = check_container(root.path(), "nosuchcontainer");
    assert_eq!(code, 2, "{stderr}");
    assert!(json.is_none());
    assert!(
        stderr.contains("no container nosuchcontainer in")
            && stderr.contains("--runtime execguard"),
        "{stderr}"
    );
    for name in ["ab1", "ab2"] {
        std::fs::create_dir_all(root.path().join(name)).unwrap();
        std::fs::write(root.path().join(name).join("status"), r#"{"bundle":"/x"}"#).unwrap();
    }
    let (code, _, stderr) = check_container(root.path(), "ab");
    assert_eq!(code, 2);
    assert!(stderr.contains("2 containers match ab"), "{stderr}");
}
