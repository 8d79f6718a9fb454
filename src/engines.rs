//! What the container engines of this host are configured to run, for `execguard doctor`:
//! Docker's daemon.json (`runtimes`, `default-runtime`), containerd's config.toml (the CRI
//! plugin's `runtimes.<name>.options.BinaryName` and `default_runtime_name`, config versions 2
//! and 3), podman's containers.conf (`[engine] runtime` and `[engine.runtimes]`). Read only,
//! bounded, never fatal: a missing file says "not configured", a broken one says why.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where each engine's config is read (the packaged defaults).
#[derive(Clone, Debug)]
pub struct Paths {
    /// Docker's daemon.json.
    pub docker: PathBuf,
    /// containerd's config.toml.
    pub containerd: PathBuf,
    /// podman's containers.conf.
    pub podman: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            docker: PathBuf::from("/etc/docker/daemon.json"),
            containerd: PathBuf::from("/etc/containerd/config.toml"),
            podman: PathBuf::from("/etc/containers/containers.conf"),
        }
    }
}

/// One engine's configuration as it concerns execguard.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Engine {
    /// `docker`, `containerd` or `podman`.
    pub engine: &'static str,
    /// The file read.
    pub config: String,
    /// Whether the file exists.
    pub found: bool,
    /// Runtime names whose binary is execguard.
    pub execguard_runtimes: Vec<String>,
    /// The engine's default runtime name, when the file sets one.
    pub default_runtime: Option<String>,
    /// Whether that default is one of [`Engine::execguard_runtimes`].
    pub default_is_execguard: bool,
    /// Why the file could not be read or parsed.
    pub error: Option<String>,
}

/// Largest config file read.
const MAX_CONFIG: u64 = 4 << 20;

/// Whether `path` (absolute, or a name the engine looks up on PATH) is execguard: this very
/// binary (same file), or a file named `execguard` or `execguard-*`.
pub fn is_execguard(path: &str, me: Option<(u64, u64)>) -> bool {
    let p = Path::new(path);
    let named = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "execguard" || n.starts_with("execguard-"));
    let resolved = if p.is_absolute() {
        Some(p.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|pv| {
            std::env::split_paths(&pv)
                .map(|d| d.join(p))
                .find(|c| c.is_file())
        })
    };
    let same = match (me, resolved.and_then(|r| std::fs::metadata(r).ok())) {
        (Some((dev, ino)), Some(m)) => m.dev() == dev && m.ino() == ino,
        _ => false,
    };
    named || same
}

fn read(path: &Path) -> Result<Option<String>, String> {
    match crate::live::read_bounded(path, MAX_CONFIG) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{} is not UTF-8 text", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The parsed config file of `e`, or None (missing: not found; unreadable or unparsable: the
/// error is kept on `e`).
fn load<T, E: std::fmt::Display>(
    e: &mut Engine,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    let text = match read(path) {
        Ok(t) => t?,
        Err(err) => {
            e.error = Some(err);
            return None;
        }
    };
    e.found = true;
    parse(&text)
        .map_err(|err| e.error = Some(format!("{}: {err}", path.display())))
        .ok()
}

fn engine(name: &'static str, path: &Path) -> Engine {
    Engine {
        engine: name,
        config: path.display().to_string(),
        found: false,
        execguard_runtimes: Vec::new(),
        default_runtime: None,
        default_is_execguard: false,
        error: None,
    }
}

fn finish(mut e: Engine) -> Engine {
    e.default_is_execguard = e
        .default_runtime
        .as_ref()
        .is_some_and(|d| e.execguard_runtimes.contains(d));
    e
}

/// Docker: `{"runtimes": {"NAME": {"path": "..."}}, "default-runtime": "NAME"}`.
pub fn docker(path: &Path, me: Option<(u64, u64)>) -> Engine {
    let mut e = engine("docker", path);
    let Some(v) = load(&mut e, path, |t| {
        serde_json::from_str::<serde_json::Value>(t)
    }) else {
        return finish(e);
    };
    if let Some(rts) = v.get("runtimes").and_then(|r| r.as_object()) {
        for (name, rt) in rts {
            if rt
                .get("path")
                .and_then(|p| p.as_str())
                .is_some_and(|p| is_execguard(p, me))
            {
                e.execguard_runtimes.push(name.clone());
            }
        }
    }
    e.default_runtime = v
        .get("default-runtime")
        .and_then(|d| d.as_str())
        .map(str::to_string);
    finish(e)
}

/// containerd: the CRI plugin's runtimes (`io.containerd.grpc.v1.cri` in config version 2,
/// `io.containerd.cri.v1.runtime` in version 3), `options.BinaryName`.
pub fn containerd(path: &Path, me: Option<(u64, u64)>) -> Engine {
    let mut e = engine("containerd", path);
    let Some(doc) = load(&mut e, path, str::parse::<toml_edit::DocumentMut>) else {
        return finish(e);
    };
    for plugin in ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"] {
        let Some(c) = doc
            .get("plugins")
            .and_then(|p| p.get(plugin))
            .and_then(|p| p.get("containerd"))
        else {
            continue;
        };
        if let Some(d) = c.get("default_runtime_name").and_then(|d| d.as_str()) {
            e.default_runtime = Some(d.to_string());
        }
        let Some(rts) = c.get("runtimes").and_then(|r| r.as_table_like()) else {
            continue;
        };
        for (name, rt) in rts.iter() {
            let bin = rt
                .get("options")
                .and_then(|o| o.get("BinaryName"))
                .and_then(|b| b.as_str());
            if bin.is_some_and(|b| is_execguard(b, me)) {
                e.execguard_runtimes.push(name.to_string());
            }
        }
    }
    finish(e)
}

/// podman: `[engine] runtime = "NAME"` and `[engine.runtimes] NAME = ["/path", ...]`.
pub fn podman(path: &Path, me: Option<(u64, u64)>) -> Engine {
    let mut e = engine("podman", path);
    let Some(doc) = load(&mut e, path, str::parse::<toml_edit::DocumentMut>) else {
        return finish(e);
    };
    let eng = doc.get("engine");
    e.default_runtime = eng
        .and_then(|g| g.get("runtime"))
        .and_then(|r| r.as_str())
        .map(str::to_string);
    if let Some(rts) = eng
        .and_then(|g| g.get("runtimes"))
        .and_then(|r| r.as_table_like())
    {
        for (name, paths) in rts.iter() {
            let any = paths.as_array().is_some_and(|a| {
                a.iter()
                    .filter_map(|p| p.as_str())
                    .any(|p| is_execguard(p, me))
            });
            if any {
                e.execguard_runtimes.push(name.to_string());
            }
        }
    }
    finish(e)
}

/// All three.
pub fn read_all(p: &Paths) -> Vec<Engine> {
    let me = crate::delegate::self_identity();
    vec![
        docker(&p.docker, me),
        containerd(&p.containerd, me),
        podman(&p.podman, me),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(d: &Path, name: &str, text: &str) -> PathBuf {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn docker_runtimes_and_default() {
        let d = tempfile::tempdir().unwrap();
        let p = file(
            d.path(),
            "daemon.json",
            r#"{"runtimes": {"eg": {"path": "/usr/local/bin/execguard"}, "nv": {"path": "/usr/bin/nvidia-container-runtime"}, "egc": {"path": "/opt/execguard-crun"}}, "default-runtime": "eg"}"#,
        );
        let e = docker(&p, None);
        assert!(e.found && e.error.is_none());
        assert_eq!(e.execguard_runtimes, ["eg", "egc"]);
        assert_eq!(e.default_runtime.as_deref(), Some("eg"));
        assert!(e.default_is_execguard);
        let e = docker(&d.path().join("none.json"), None);
        assert!(!e.found && e.error.is_none() && e.execguard_runtimes.is_empty());
        let p = file(d.path(), "bad.json", "{ not json");
        assert!(docker(&p, None).error.is_some());
    }

    #[test]
    fn containerd_v2_and_v3_binary_names() {
        let d = tempfile::tempdir().unwrap();
        let p = file(
            d.path(),
            "v2.toml",
            r#"version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.execguard.options]
    BinaryName = "/usr/local/bin/execguard"
"#,
        );
        let e = containerd(&p, None);
        assert_eq!(e.execguard_runtimes, ["execguard"]);
        assert_eq!(e.default_runtime.as_deref(), Some("runc"));
        assert!(!e.default_is_execguard);
        let p = file(
            d.path(),
            "v3.toml",
            r#"version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "eg"
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.eg.options]
  BinaryName = "/usr/bin/execguard"
"#,
        );
        let e = containerd(&p, None);
        assert_eq!(e.execguard_runtimes, ["eg"]);
        assert!(e.default_is_execguard);
        let p = file(d.path(), "bad.toml", "[plugins\n");
        assert!(containerd(&p, None).error.is_some());
    }

    #[test]
    fn podman_runtimes_and_the_engine_runtime() {
        let d = tempfile::tempdir().unwrap();
        let p = file(
            d.path(),
            "containers.conf",
            "[engine]\nruntime = \"execguard\"\n[engine.runtimes]\nexecguard = [\"/usr/local/bin/execguard\"]\ncrun = [\"/usr/bin/crun\"]\n",
        );
        let e = podman(&p, None);
        assert_eq!(e.execguard_runtimes, ["execguard"]);
        assert!(e.default_is_execguard);
    }

    #[test]
    fn this_binary_counts_under_any_name() {
        let me = crate::delegate::self_identity();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert!(is_execguard(&exe.to_string_lossy(), me));
        assert!(!is_execguard("/bin/true", me));
        assert!(is_execguard("execguard", None));
    }
}
