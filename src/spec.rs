//! Loading a bundle's `config.json` into the few facts the checks need ([`SpecView`]).
//!
//! The spec comes from whoever built the image and the engine that wrote it, so it is
//! untrusted: the read is bounded, and when oci-spec's typed loader refuses the document (an
//! unknown capability name fails the whole load, for one) the same facts are taken leniently
//! from the JSON value instead, and the view records why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The largest config.json read (bytes); anything larger is refused (and passed through).
pub const MAX_SPEC_BYTES: u64 = 64 << 20;

/// One entry of `mounts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountSpec {
    /// Container path.
    pub destination: String,
    /// `type`, empty when absent.
    pub fstype: String,
    /// `source`, empty when absent.
    pub source: String,
    /// `options`.
    pub options: Vec<String>,
}

impl MountSpec {
    /// A bind mount: `type` is `bind` or the options hold `bind`/`rbind`.
    pub fn is_bind(&self) -> bool {
        self.fstype == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// The capability sets of `process.capabilities`, as names (unknown names kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// effective
    pub effective: Vec<String>,
    /// bounding
    pub bounding: Vec<String>,
    /// inheritable
    pub inheritable: Vec<String>,
    /// permitted
    pub permitted: Vec<String>,
    /// ambient
    pub ambient: Vec<String>,
}

/// One line of `linux.uidMappings` / `gidMappings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the container.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// Number of ids.
    pub size: u32,
}

/// What the checks need from the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecView {
    /// True when `process` is present.
    pub has_process: bool,
    /// `process.args`.
    pub args: Vec<String>,
    /// `process.env`.
    pub env: Vec<String>,
    /// `process.cwd` (default `/`).
    pub cwd: String,
    /// `process.user.uid`.
    pub uid: u32,
    /// `process.user.gid`.
    pub gid: u32,
    /// `process.user.additionalGids`.
    pub additional_gids: Vec<u32>,
    /// `process.capabilities`, `None` when absent (the runtime then leaves its own).
    pub caps: Option<CapSets>,
    /// `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `process.terminal`.
    pub terminal: bool,
    /// `root.path` made absolute against the bundle.
    pub root: PathBuf,
    /// `mounts`, with relative bind sources made absolute against the bundle.
    pub mounts: Vec<MountSpec>,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
    /// A user namespace is requested (`linux.namespaces` has `user`).
    pub user_namespace: bool,
    /// `linux.uidMappings`.
    pub uid_mappings: Vec<IdMap>,
    /// `linux.gidMappings`.
    pub gid_mappings: Vec<IdMap>,
    /// Why the typed loader refused the spec, when the lenient reading was used.
    pub lenient_reason: Option<String>,
}

impl SpecView {
    /// The value of `PATH` in `process.env` (the last definition wins, as runc sets them in
    /// order with os.Setenv); `None` when the environment has no PATH.
    pub fn env_path(&self) -> Option<&str> {
        self.env_var("PATH")
    }

    /// The view of a process execguard makes up rather than reads (`check --rootfs`,
    /// `check --image-tar`): `args` with `env` on the root file system `root`, in `/` as root,
    /// with no mounts, no capability set (the runtime's own: root keeps CAP_DAC_OVERRIDE) and
    /// no user namespace. Callers set `cwd` and the user fields as needed.
    pub fn for_process(root: PathBuf, args: Vec<String>, env: Vec<String>) -> SpecView {
        SpecView {
            has_process: true,
            args,
            env,
            cwd: "/".into(),
            root,
            ..SpecView::default()
        }
    }

    /// The value of a variable in `process.env` (last definition wins).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// Why the spec could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// config.json cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// config.json is larger than [`MAX_SPEC_BYTES`].
    #[error("{path} is larger than {MAX_SPEC_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not JSON, or not an object.
    #[error("{path} is not a JSON object: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// Read and interpret `<bundle>/config.json`.
///
/// # Errors
/// See [`SpecError`]; a document that oci-spec refuses but that is a JSON object is not an
/// error (see [`SpecView::lenient_reason`]).
pub fn load(bundle: &Path) -> Result<SpecView, SpecError> {
    let path = bundle.join("config.json");
    let read_err = |source| SpecError::Read {
        path: path.clone(),
        source,
    };
    // Non-blocking and regular files only: a FIFO in its place is an error, never a hang.
    let bytes = crate::live::read_bounded(&path, MAX_SPEC_BYTES + 1).map_err(read_err)?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::TooLarge { path });
    }
    from_slice(&bytes, bundle).map_err(|message| SpecError::Invalid { path, message })
}

/// Interpret config.json text; `bundle` anchors relative paths.
///
/// # Errors
/// The text is not a JSON object.
pub fn from_slice(bytes: &[u8], bundle: &Path) -> Result<SpecView, String> {
    // serde would also take a JSON array as a struct in sequence form: refuse anything that
    // does not open an object.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err("the top level is not an object".into());
    }
    match serde_json::from_slice::<oci_spec::runtime::Spec>(bytes) {
        Ok(spec) => {
            let mut view = from_typed(&spec, bundle);
            if view.caps.is_some() {
                // oci-spec normalises names (`cap_net_admin`, `NET_ADMIN` become
                // CAP_NET_ADMIN); runc matches them exactly and ignores the rest.
                if let Ok(raw) = serde_json::from_slice::<RawDoc>(bytes) {
                    view.caps = raw.process.and_then(|p| p.capabilities).map(|c| CapSets {
                        effective: c.effective.unwrap_or_default(),
                        bounding: c.bounding.unwrap_or_default(),
                        inheritable: c.inheritable.unwrap_or_default(),
                        permitted: c.permitted.unwrap_or_default(),
                        ambient: c.ambient.unwrap_or_default(),
                    });
                }
            }
            Ok(view)
        }
        Err(typed_err) => {
            let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            if !value.is_object() {
                return Err("the top level is not an object".into());
            }
            // Lenient only where runc is (unknown capability names): a type runc's decoder
            // refuses means runc starts nothing, and any other reading would check a process
            // that is not the one runc sees.
            go_types(&value)?;
            let mut view = from_value(&value, bundle);
            view.lenient_reason = Some(typed_err.to_string());
            Ok(view)
        }
    }
}

/// The capability sets exactly as written.
#[derive(serde::Deserialize)]
struct RawDoc {
    process: Option<RawProcess>,
}

#[derive(serde::Deserialize)]
struct RawProcess {
    capabilities: Option<RawCaps>,
}

#[derive(serde::Deserialize)]
struct RawCaps {
    effective: Option<Vec<String>>,
    bounding: Option<Vec<String>>,
    inheritable: Option<Vec<String>>,
    permitted: Option<Vec<String>>,
    ambient: Option<Vec<String>>,
}

/// The process fields execguard reads, typed as runc's Go decoder types them (encoding/json
/// into specs-go: `[]string`, `string`, `uint32`, `bool`); null is Go's zero value.
fn go_types(doc: &Value) -> Result<(), String> {
    let kind = |v: &Value| match v {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
    };
    let top = |name: &str, want: &str, got: &Value| {
        Err(format!(
            "{name} is {}, not {want}: runc's decoder refuses it (json: cannot unmarshal), so runc starts nothing",
            kind(got)
        ))
    };
    match doc.get("root") {
        None | Some(Value::Null) => {}
        Some(Value::Object(r)) => match r.get("path") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => return top("root.path", "a string", other),
        },
        Some(other) => return top("root", "an object", other),
    }
    match doc.get("mounts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ms)) => {
            for m in ms {
                let Value::Object(o) = m else {
                    if m.is_null() {
                        continue;
                    }
                    return top("mounts[]", "an object", m);
                };
                for k in ["destination", "type", "source"] {
                    match o.get(k) {
                        None | Some(Value::Null | Value::String(_)) => {}
                        Some(other) => return top(&format!("mounts[].{k}"), "a string", other),
                    }
                }
                match o.get("options") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(a)) => {
                        if let Some(bad) = a.iter().find(|x| !x.is_string() && !x.is_null()) {
                            return top("mounts[].options[]", "a string", bad);
                        }
                    }
                    Some(other) => return top("mounts[].options", "an array of strings", other),
                }
            }
        }
        Some(other) => return top("mounts", "an array", other),
    }
    match doc.get("annotations") {
        None | Some(Value::Null) => {}
        Some(Value::Object(a)) => {
            if let Some(bad) = a.values().find(|x| !x.is_string() && !x.is_null()) {
                return top("annotations{}", "a string", bad);
            }
        }
        Some(other) => return top("annotations", "an object of strings", other),
    }
    if let Some(l) = doc.get("linux").filter(|l| !l.is_null()) {
        let Value::Object(l) = l else {
            return top("linux", "an object", l);
        };
        match l.get("namespaces") {
            None | Some(Value::Null) => {}
            Some(Value::Array(ns)) => {
                for n in ns {
                    match n {
                        Value::Null => {}
                        Value::Object(o) => match o.get("type") {
                            None | Some(Value::Null | Value::String(_)) => {}
                            Some(other) => {
                                return top("linux.namespaces[].type", "a string", other);
                            }
                        },
                        other => return top("linux.namespaces[]", "an object", other),
                    }
                }
            }
            Some(other) => return top("linux.namespaces", "an array", other),
        }
        for k in ["uidMappings", "gidMappings"] {
            match l.get(k) {
                None | Some(Value::Null) => {}
                Some(Value::Array(ms)) => {
                    for m in ms {
                        match m {
                            Value::Null => {}
                            Value::Object(o) => {
                                for f in ["containerID", "hostID", "size"] {
                                    match o.get(f) {
                                        None | Some(Value::Null) => {}
                                        Some(n)
                                            if n.as_u64()
                                                .is_some_and(|n| u32::try_from(n).is_ok()) => {}
                                        Some(other) => {
                                            return top(
                                                &format!("linux.{k}[].{f}"),
                                                "a number from 0 to 4294967295",
                                                other,
                                            );
                                        }
                                    }
                                }
                            }
                            other => return top(&format!("linux.{k}[]"), "an object", other),
                        }
                    }
                }
                Some(other) => return top(&format!("linux.{k}"), "an array", other),
            }
        }
    }
    let Some(p) = doc.get("process").filter(|p| !p.is_null()) else {
        return Ok(());
    };
    let refuse = |field: &str, want: &str, got: &Value| {
        let kind = match got {
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
            Value::Null => "null",
        };
        let name = if field.is_empty() {
            "process".to_string()
        } else {
            format!("process.{field}")
        };
        Err(format!(
            "{name} is {kind}, not {want}: runc's decoder refuses it (json: cannot unmarshal), so runc starts nothing"
        ))
    };
    if !p.is_object() {
        return refuse("", "an object", p);
    }
    let strings = |field: &str, v: Option<&Value>| match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) => match a.iter().find(|x| !x.is_string() && !x.is_null()) {
            Some(bad) => refuse(field, "a string", bad),
            None => Ok(()),
        },
        Some(other) => refuse(field, "an array of strings", other),
    };
    let u32_ok = |v: &Value| v.as_u64().is_some_and(|n| u32::try_from(n).is_ok());
    let uint = |field: &str, v: Option<&Value>| match v {
        None | Some(Value::Null) => Ok(()),
        Some(n) if u32_ok(n) => Ok(()),
        Some(other) => refuse(field, "a number from 0 to 4294967295", other),
    };
    let boolean = |field: &str, v: Option<&Value>| match v {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(other) => refuse(field, "a boolean", other),
    };
    strings("args", p.get("args"))?;
    strings("env", p.get("env"))?;
    match p.get("cwd") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(other) => return refuse("cwd", "a string", other),
    }
    boolean("terminal", p.get("terminal"))?;
    boolean("noNewPrivileges", p.get("noNewPrivileges"))?;
    if let Some(u) = p.get("user").filter(|u| !u.is_null()) {
        if !u.is_object() {
            return refuse("user", "an object", u);
        }
        uint("user.uid", u.get("uid"))?;
        uint("user.gid", u.get("gid"))?;
        match u.get("additionalGids") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                if let Some(bad) = a.iter().find(|g| !u32_ok(g)) {
                    return refuse("user.additionalGids", "a number from 0 to 4294967295", bad);
                }
            }
            Some(other) => return refuse("user.additionalGids", "an array of numbers", other),
        }
    }
    if let Some(c) = p.get("capabilities").filter(|c| !c.is_null()) {
        if !c.is_object() {
            return refuse("capabilities", "an object", c);
        }
        for set in [
            "effective",
            "bounding",
            "inheritable",
            "permitted",
            "ambient",
        ] {
            strings(&format!("capabilities.{set}"), c.get(set))?;
        }
    }
    Ok(())
}

fn absolute(bundle: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    }
}

fn fix_mount(mut m: MountSpec, bundle: &Path) -> MountSpec {
    if m.is_bind() && !m.source.is_empty() && !m.source.starts_with('/') {
        m.source = absolute(bundle, &m.source).to_string_lossy().into_owned();
    }
    m
}

fn from_typed(spec: &oci_spec::runtime::Spec, bundle: &Path) -> SpecView {
    let mut v = SpecView {
        cwd: "/".into(),
        root: absolute(bundle, "rootfs"),
        ..SpecView::default()
    };
    if let Some(p) = spec.process() {
        v.has_process = true;
        v.args = p.args().clone().unwrap_or_default();
        v.env = p.env().clone().unwrap_or_default();
        v.cwd = p.cwd().to_string_lossy().into_owned();
        v.uid = p.user().uid();
        v.gid = p.user().gid();
        v.additional_gids = p.user().additional_gids().clone().unwrap_or_default();
        v.no_new_privileges = p.no_new_privileges().unwrap_or(false);
        v.terminal = p.terminal().unwrap_or(false);
        v.caps = p.capabilities().as_ref().map(|c| {
            let names = |s: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
                s.as_ref()
                    .map(|set| set.iter().map(|c| format!("CAP_{c}")).collect())
                    .unwrap_or_default()
            };
            CapSets {
                effective: names(c.effective()),
                bounding: names(c.bounding()),
                inheritable: names(c.inheritable()),
                permitted: names(c.permitted()),
                ambient: names(c.ambient()),
            }
        });
    }
    if let Some(r) = spec.root() {
        v.root = absolute(bundle, &r.path().to_string_lossy());
    }
    if let Some(ms) = spec.mounts() {
        v.mounts = ms
            .iter()
            .map(|m| {
                fix_mount(
                    MountSpec {
                        destination: m.destination().to_string_lossy().into_owned(),
                        fstype: m.typ().clone().unwrap_or_default(),
                        source: m
                            .source()
                            .as_ref()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        options: m.options().clone().unwrap_or_default(),
                    },
                    bundle,
                )
            })
            .collect();
    }
    if let Some(a) = spec.annotations() {
        v.annotations = a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    if let Some(l) = spec.linux() {
        v.user_namespace = l.namespaces().as_ref().is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
        let maps = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
            m.as_ref()
                .map(|m| {
                    m.iter()
                        .map(|x| IdMap {
                            container: x.container_id(),
                            host: x.host_id(),
                            size: x.size(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        v.uid_mappings = maps(l.uid_mappings());
        v.gid_mappings = maps(l.gid_mappings());
    }
    v
}

/// A `[]string` as Go decodes it: a null element is the empty string.
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| match s {
                    Value::Null => Some(String::new()),
                    _ => s.as_str().map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn u32_of(v: Option<&Value>) -> u32 {
    v.and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

fn from_value(doc: &Value, bundle: &Path) -> SpecView {
    let mut v = SpecView {
        cwd: "/".into(),
        root: absolute(bundle, "rootfs"),
        ..SpecView::default()
    };
    if let Some(p) = doc.get("process").filter(|p| p.is_object()) {
        v.has_process = true;
        v.args = strings(p.get("args"));
        v.env = strings(p.get("env"));
        if let Some(c) = p.get("cwd").and_then(Value::as_str) {
            v.cwd = c.to_string();
        }
        let user = p.get("user");
        v.uid = u32_of(user.and_then(|u| u.get("uid")));
        v.gid = u32_of(user.and_then(|u| u.get("gid")));
        v.additional_gids = user
            .and_then(|u| u.get("additionalGids"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect()
            })
            .unwrap_or_default();
        v.no_new_privileges = p
            .get("noNewPrivileges")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        v.terminal = p.get("terminal").and_then(Value::as_bool).unwrap_or(false);
        v.caps = p
            .get("capabilities")
            .filter(|c| c.is_object())
            .map(|c| CapSets {
                effective: strings(c.get("effective")),
                bounding: strings(c.get("bounding")),
                inheritable: strings(c.get("inheritable")),
                permitted: strings(c.get("permitted")),
                ambient: strings(c.get("ambient")),
            });
    }
    if let Some(r) = doc
        .get("root")
        .and_then(|r| r.get("path"))
        .and_then(Value::as_str)
    {
        v.root = absolute(bundle, r);
    }
    if let Some(ms) = doc.get("mounts").and_then(Value::as_array) {
        v.mounts = ms
            .iter()
            .filter_map(|m| {
                let destination = m.get("destination")?.as_str()?.to_string();
                let s = |k: &str| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                Some(fix_mount(
                    MountSpec {
                        destination,
                        fstype: s("type"),
                        source: s("source"),
                        options: strings(m.get("options")),
                    },
                    bundle,
                ))
            })
            .collect();
    }
    if let Some(a) = doc.get("annotations").and_then(Value::as_object) {
        v.annotations = a
            .iter()
            .filter_map(|(k, val)| Some((k.clone(), val.as_str()?.to_string())))
            .collect();
    }
    if let Some(l) = doc.get("linux") {
        v.user_namespace = l
            .get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.get("type").and_then(Value::as_str) == Some("user"))
            });
        let maps = |k: &str| -> Vec<IdMap> {
            l.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| IdMap {
                            container: u32_of(x.get("containerID")),
                            host: u32_of(x.get("hostID")),
                            size: u32_of(x.get("size")),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        v.uid_mappings = maps("uidMappings");
        v.gid_mappings = maps("gidMappings");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [27]},
            "args": ["app", "--flag"],
            "env": ["PATH=/usr/bin:/bin", "HOME=/", "PATH=/opt/bin"],
            "cwd": "/work",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/app", "type": "none", "source": "host-app", "options": ["rbind", "ro"]}
        ],
        "annotations": {"io.kubernetes.cri.container-type": "sandbox"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "user"}],
                  "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
    }"#;

    fn check_view(v: &SpecView) {
        assert!(v.has_process);
        assert_eq!(v.args, ["app", "--flag"]);
        assert_eq!(v.env_path(), Some("/opt/bin"));
        assert_eq!(v.cwd, "/work");
        assert_eq!((v.uid, v.gid), (1000, 1000));
        assert_eq!(v.additional_gids, [27]);
        assert_eq!(v.root, PathBuf::from("/b/rootfs"));
        assert_eq!(v.mounts.len(), 2);
        assert!(!v.mounts[0].is_bind());
        assert!(v.mounts[1].is_bind());
        assert_eq!(v.mounts[1].source, "/b/host-app");
        assert_eq!(
            v.annotations
                .get("io.kubernetes.cri.container-type")
                .map(String::as_str),
            Some("sandbox")
        );
        assert!(v.user_namespace);
        assert_eq!(
            v.uid_mappings,
            [IdMap {
                container: 0,
                host: 100000,
                size: 65536
            }]
        );
        let caps = v.caps.as_ref().unwrap();
        assert_eq!(caps.bounding, ["CAP_CHOWN"]);
        assert!(v.no_new_privileges);
    }

    #[test]
    fn load_reads_the_file_and_refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), SPEC).unwrap();
        let v = load(dir.path()).unwrap();
        assert_eq!(v.root, dir.path().join("rootfs"));
        assert_eq!(v, from_slice(SPEC.as_bytes(), dir.path()).unwrap());
        let fifo = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(
            fifo.path()
                .join("config.json")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would never return.
        assert!(matches!(load(fifo.path()), Err(SpecError::Read { .. })));
    }

    #[test]
    fn typed_reading() {
        let v = from_slice(SPEC.as_bytes(), Path::new("/b")).unwrap();
        assert_eq!(v.lenient_reason, None);
        check_view(&v);
    }

    #[test]
    fn an_unknown_capability_falls_back_to_the_lenient_reading() {
        let text = SPEC.replace(
            r#""effective": ["CAP_CHOWN"]"#,
            r#""effective": ["CAP_CHOWN", "CAP_NOPE"]"#,
        );
        let v = from_slice(text.as_bytes(), Path::new("/b")).unwrap();
        assert!(v.lenient_reason.is_some());
        check_view(&v);
        assert_eq!(v.caps.unwrap().effective, ["CAP_CHOWN", "CAP_NOPE"]);
    }

    #[test]
    fn wrong_types_and_missing_process_do_not_fail() {
        let v = from_slice(
            br#"{"process": null, "mounts": [{"x":1}], "root": {}}"#,
            Path::new("/b"),
        )
        .unwrap();
        assert!(!v.has_process);
        assert!(v.mounts.is_empty());
        assert_eq!(v.root, PathBuf::from("/b/rootfs"));
        let v = from_slice(
            br#"{"ociVersion":"1.0.2","root":{"path":"/abs"}}"#,
            Path::new("/b"),
        )
        .unwrap();
        assert!(!v.has_process);
        assert_eq!(v.root, PathBuf::from("/abs"));
    }

    #[test]
    fn types_runcs_decoder_refuses_are_errors_not_a_guess() {
        for (doc, field) in [
            (r#"{"process": 5}"#, "process is a number"),
            (r#"{"process": {"args": "/bin/sh -c x"}}"#, "process.args"),
            (r#"{"process": {"args": [1, "/bin/sh"]}}"#, "process.args"),
            (r#"{"process": {"env": [true]}}"#, "process.env"),
            (r#"{"process": {"cwd": 7}}"#, "process.cwd"),
            (
                r#"{"process": {"user": {"uid": "1000"}}}"#,
                "process.user.uid",
            ),
            (r#"{"process": {"user": {"uid": -1}}}"#, "process.user.uid"),
            (
                r#"{"process": {"user": {"gid": 1099511627776}}}"#,
                "process.user.gid",
            ),
            (
                r#"{"process": {"user": {"additionalGids": ["x"]}}}"#,
                "process.user.additionalGids",
            ),
            (r#"{"process": {"terminal": "yes"}}"#, "process.terminal"),
            (
                r#"{"process": {"capabilities": {"bounding": [3]}}}"#,
                "process.capabilities.bounding",
            ),
        ] {
            let e = from_slice(doc.as_bytes(), Path::new("/b")).unwrap_err();
            assert!(e.starts_with(field) && e.contains("runc"), "{doc}: {e}");
        }
        // What runc forgives stays lenient: unknown capability names, nulls.
        let v = from_slice(
            br#"{"process": {"args": ["/x", null], "user": {"uid": null}, "capabilities": {"bounding": ["CAP_NOPE"]}}}"#,
            Path::new("/b"),
        )
        .unwrap();
        // Go decodes a null element of []string as "".
        assert_eq!(v.args, ["/x", ""]);
        assert!(v.lenient_reason.is_some());
    }

    #[test]
    fn capability_names_are_kept_as_written() {
        let v = from_slice(
            br#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["/x"],
                "capabilities": {"bounding": ["cap_net_admin", "CAP_KILL"], "effective": ["NET_ADMIN"]}}}"#,
            Path::new("/b"),
        )
        .unwrap();
        let c = v.caps.unwrap();
        assert_eq!(c.bounding, ["cap_net_admin", "CAP_KILL"]);
        assert_eq!(c.effective, ["NET_ADMIN"]);
        assert_eq!(
            crate::check::filecaps::mask_of(&c.bounding),
            1 << 5,
            "only CAP_KILL counts"
        );
    }

    #[test]
    fn non_objects_are_errors() {
        assert!(from_slice(b"[]", Path::new("/b")).is_err());
        assert!(from_slice(b"{", Path::new("/b")).is_err());
        assert!(from_slice(b"", Path::new("/b")).is_err());
    }

    #[test]
    fn env_without_path() {
        let v = SpecView {
            env: vec!["HOME=/".into(), "PATHX=/x".into()],
            ..SpecView::default()
        };
        assert_eq!(v.env_path(), None);
    }
}

/// Interpret a runtime-spec `process` object (the `--process` file of `runtime exec`).
///
/// # Errors
/// The text is not a JSON object.
pub fn process_from_slice(bytes: &[u8]) -> Result<SpecView, String> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err("the process file is not a JSON object".into());
    }
    let process: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let doc = serde_json::json!({ "process": process });
    Ok(from_value(&doc, Path::new("/")))
}

#[cfg(test)]
mod process_tests {
    use super::*;

    #[test]
    fn a_process_file_is_read() {
        let v = process_from_slice(
            br#"{"args":["/app","x"],"env":["PATH=/bin"],"cwd":"/w","user":{"uid":5,"gid":6}}"#,
        )
        .unwrap();
        assert!(v.has_process);
        assert_eq!(v.args, ["/app", "x"]);
        assert_eq!(v.env_path(), Some("/bin"));
        assert_eq!((v.uid, v.gid, v.cwd.as_str()), (5, 6, "/w"));
        assert!(process_from_slice(b"[1]").is_err());
    }
}
