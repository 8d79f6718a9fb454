//! `execguard setup containerd`: the edit of containerd's `config.toml` (the CRI runtime
//! handler Kubernetes selects with a RuntimeClass).
//!
//! The plugin that holds the runtimes depends on the file's `version`: 2 →
//! `plugins."io.containerd.grpc.v1.cri"` (containerd 1.x), 3 →
//! `plugins."io.containerd.cri.v1.runtime"` (containerd 2.x), no `version` key in a file that
//! has other keys → version 1 → `plugins.cri` (containerd 1.x reads it with a deprecation
//! warning). An empty or missing file becomes a version-2 file. Like `nvidia-ctk runtime
//! configure`, a new entry starts as a copy of the default runtime's entry (else `runc`, else
//! `crun`), so settings such as `SystemdCgroup` match, then gets `runtime_type =
//! "io.containerd.runc.v2"` and `options.BinaryName = <path>`. An entry that already exists is
//! updated in place (only those two keys). Comments and layout are kept (toml_edit).
//!
//! containerd 1.6 replaces its built-in runtime list as soon as the file names any runtime
//! (`containerd config dump` of a file holding only the new entry shows no `runc`, and
//! `default_runtime_name = "runc"` then points at nothing), so when the file had no runtimes,
//! an explicit `runc` entry is added next to the new one.

use toml_edit::{DocumentMut, Item, Table, Value};

use super::{
    EditError, Edited, Request, Slot, header_indent, indent_of, lookup, nested_step, parse_toml,
    restyle_nested, slot_at, str_is, toml_path,
};

/// `runtime_type` of the runc shim, which runs `options.BinaryName` like runc.
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";

/// The CRI plugin key for a config version (1, 2 or 3).
pub fn cri_plugin(version: i64) -> Option<&'static str> {
    match version {
        1 => Some("cri"),
        2 => Some("io.containerd.grpc.v1.cri"),
        3 => Some("io.containerd.cri.v1.runtime"),
        _ => None,
    }
}

/// Decide the config version; may add `version = 2` to an empty document.
fn version(doc: &mut DocumentMut, notes: &mut Vec<String>) -> Result<i64, EditError> {
    match doc.get("version") {
        None if doc.as_table().is_empty() => {
            doc.insert("version", toml_edit::value(2));
            Ok(2)
        }
        None => {
            notes.push(
                "no version key: config version 1 (deprecated in containerd 1.x, not read by 2.x); editing plugins.cri"
                    .to_string(),
            );
            Ok(1)
        }
        Some(item) => match item.as_integer() {
            Some(v) if cri_plugin(v).is_some() => Ok(v),
            Some(v) => Err(EditError::Unsupported(format!(
                "unsupported config version {v}: expected 1, 2 or 3"
            ))),
            None => Err(EditError::Unsupported(format!(
                "version is {}, expected an integer",
                item.type_name()
            ))),
        },
    }
}

/// Add (or update) the runtime handler in containerd `config.toml` text; `None` means the
/// file does not exist.
pub fn edit(old: Option<&str>, req: &Request) -> Result<Edited, EditError> {
    let text = old.unwrap_or("");
    let mut doc = parse_toml(text)?;
    let step = nested_step(doc.as_table());
    let mut notes = Vec::new();
    let version = version(&mut doc, &mut notes)?;
    let plugin = cri_plugin(version).unwrap_or("io.containerd.grpc.v1.cri");
    let base = ["plugins", plugin, "containerd"];
    let runtimes_keys = ["plugins", plugin, "containerd", "runtimes"];
    let name = req.name.as_str();

    // Look before touching anything.
    let root = doc.as_table();
    let default_name = lookup(
        root,
        &["plugins", plugin, "containerd", "default_runtime_name"],
    )
    .and_then(Item::as_str)
    .map(str::to_string);
    let runtimes = lookup(root, &runtimes_keys).and_then(Item::as_table_like);
    let had_runtimes = runtimes.is_some_and(|t| !t.is_empty());
    let existing = runtimes.and_then(|t| t.get(name)).filter(|i| !i.is_none());
    if let Some(e) = existing
        && e.as_table_like().is_none()
    {
        return Err(EditError::Unsupported(format!(
            "{} is not a table",
            toml_path(&["plugins", plugin, "containerd", "runtimes", name])
        )));
    }
    let exists = existing.is_some();
    let mut candidates: Vec<String> = Vec::new();
    if let Some(d) = &default_name {
        candidates.push(d.clone());
    }
    candidates.push("runc".into());
    candidates.push("crun".into());
    let source = candidates
        .iter()
        .filter(|c| c.as_str() != name)
        .find_map(|c| {
            runtimes
                .and_then(|t| t.get(c))
                .filter(|i| i.is_table_like())
                .map(|i| (c.clone(), i.clone()))
        });
    if let Some((src_name, src)) = &source {
        let bin = src
            .as_table_like()
            .and_then(|t| t.get("options"))
            .and_then(Item::as_table_like)
            .and_then(|o| o.get("BinaryName"))
            .and_then(Item::as_str)
            .filter(|b| !b.is_empty());
        if let Some(b) = bin
            && !exists
        {
            notes.push(format!(
                "runtimes.{src_name} runs BinaryName = {b:?}: set \"runtime\": {b:?} in /etc/execguard/config.json so execguard delegates to it"
            ));
        }
        if exists {
            let theirs = systemd_cgroup(Some(src));
            let ours = systemd_cgroup(existing);
            if theirs != ours {
                notes.push(format!(
                    "runtimes.{name} has SystemdCgroup = {} but runtimes.{src_name} has {}: containers may fail to start",
                    ours.unwrap_or(false),
                    theirs.unwrap_or(false)
                ));
            }
        }
    }
    if disables_cri(root, plugin) {
        notes.push(
            "disabled_plugins turns the cri plugin off: kubernetes will not reach this runtime until it is enabled"
                .to_string(),
        );
    }
    if !is_dns_label(name) {
        notes.push(format!(
            "{name:?} is not a DNS label: a kubernetes RuntimeClass cannot name it as its handler"
        ));
    }

    // Edit.
    let mut rts = slot_at(&mut doc, &runtimes_keys)?;
    if !had_runtimes && name != "runc" {
        let shown = toml_path(&["plugins", plugin, "containerd", "runtimes", "runc"]);
        let mut runc = rts.reborrow().child("runc", &shown)?;
        runc.set(
            "runtime_type",
            Value::from(RUNC_SHIM),
            &str_is(RUNC_SHIM),
            &shown,
            None,
        )?;
        notes.push(
            "added runtimes.runc too: containerd drops its built-in runc entry once the file lists a runtime"
                .to_string(),
        );
    }
    let entry_keys = ["plugins", plugin, "containerd", "runtimes", name];
    let shown = toml_path(&entry_keys);
    let mut entry = rts.child(name, &shown)?;
    if !exists && let Some((src_name, src)) = &source {
        copy_into(&mut entry, src, &shown)?;
        notes.push(format!("settings copied from runtimes.{src_name}"));
    }
    entry.set(
        "runtime_type",
        Value::from(RUNC_SHIM),
        &str_is(RUNC_SHIM),
        &format!("{shown}.runtime_type"),
        None,
    )?;
    let entry_indent = entry.indent();
    let opt_shown = format!("{shown}.options");
    let mut options = entry.child("options", &opt_shown)?;
    options.set(
        "BinaryName",
        Value::from(req.path.as_str()),
        &str_is(&req.path),
        &format!("{opt_shown}.BinaryName"),
        entry_indent.as_deref(),
    )?;
    if req.set_as_default {
        let shown = toml_path(&base);
        let mut c = slot_at(&mut doc, &base)?;
        c.set(
            "default_runtime_name",
            Value::from(name),
            &str_is(name),
            &format!("{shown}.default_runtime_name"),
            None,
        )?;
    }

    if let Some(step) = step {
        restyle_nested(doc.as_table_mut(), step);
    }
    let new_text = doc.to_string();
    verify(&new_text, plugin, req)?;
    let changed = old.is_none() || new_text != text;
    Ok(Edited {
        text: if changed { new_text } else { text.to_string() },
        changed,
        notes,
    })
}

/// `options.SystemdCgroup` of a runtime entry.
fn systemd_cgroup(entry: Option<&Item>) -> Option<bool> {
    entry?
        .as_table_like()?
        .get("options")?
        .as_table_like()?
        .get("SystemdCgroup")?
        .as_bool()
}

/// Whether `disabled_plugins` names the CRI plugin (as Docker's packaged config does).
fn disables_cri(root: &Table, plugin: &str) -> bool {
    root.get("disabled_plugins")
        .and_then(Item::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s == "cri" || s == plugin || s == "io.containerd.grpc.v1.cri")
        })
}

/// RFC 1123 label: what a RuntimeClass `handler` must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Copy every key of `src` (a runtime entry) into the fresh `dst`, without the comments around
/// them; sub-tables (`options`) are copied the same way.
fn copy_into(dst: &mut Slot<'_>, src: &Item, shown: &str) -> Result<(), EditError> {
    let Some(src_t) = src.as_table_like() else {
        return Ok(());
    };
    if let (Slot::Table(d), Item::Table(s)) = (&mut *dst, src) {
        d.decor_mut().set_prefix(format!("\n{}", header_indent(s)));
        d.set_dotted(s.is_dotted());
    }
    for (k, item) in src_t.iter() {
        let key_indent = src_t
            .get_key_value(k)
            .and_then(|(key, _)| indent_of(key.leaf_decor().prefix().and_then(|r| r.as_str())));
        let sub_shown = format!("{shown}.{}", super::toml_key(k));
        match item {
            Item::Value(v) => {
                let mut v = v.clone();
                v.decor_mut().clear();
                if let Value::InlineTable(t) = &mut v {
                    t.fmt();
                }
                dst.put(k, v, key_indent.as_deref());
            }
            Item::Table(_) => {
                let mut child = dst.reborrow().child(k, &sub_shown)?;
                copy_into(&mut child, item, &sub_shown)?;
            }
            Item::ArrayOfTables(a) => {
                if let Slot::Table(d) = &mut *dst {
                    d.insert(k, Item::ArrayOfTables(a.clone()));
                }
            }
            Item::None => {}
        }
    }
    Ok(())
}

/// Parse the result again and check it holds what was asked; refuses to write otherwise.
fn verify(text: &str, plugin: &str, req: &Request) -> Result<(), EditError> {
    let doc = parse_toml(text).map_err(|e| {
        EditError::Unsupported(format!(
            "the edited file would not parse ({e}); not written"
        ))
    })?;
    let root = doc.as_table();
    let entry = [
        "plugins",
        plugin,
        "containerd",
        "runtimes",
        req.name.as_str(),
    ];
    let rt = lookup(
        root,
        &[
            entry[0],
            entry[1],
            entry[2],
            entry[3],
            entry[4],
            "runtime_type",
        ],
    )
    .and_then(Item::as_str);
    let bin = lookup(
        root,
        &[entry[0], entry[1], entry[2], entry[3], entry[4], "options"],
    )
    .and_then(Item::as_table_like)
    .and_then(|o| o.get("BinaryName"))
    .and_then(Item::as_str);
    let dflt = lookup(
        root,
        &[entry[0], entry[1], entry[2], "default_runtime_name"],
    )
    .and_then(Item::as_str);
    let ok = rt == Some(RUNC_SHIM)
        && bin == Some(req.path.as_str())
        && (!req.set_as_default || dflt == Some(req.name.as_str()));
    if ok {
        Ok(())
    } else {
        Err(EditError::Unsupported(format!(
            "could not place {} in this file's layout; not written",
            toml_path(&entry)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(set_as_default: bool) -> Request {
        Request {
            name: "execguard".into(),
            path: "/usr/local/bin/execguard".into(),
            set_as_default,
        }
    }

    fn get<'a>(doc: &'a DocumentMut, keys: &[&str]) -> Option<&'a Item> {
        lookup(doc.as_table(), keys)
    }

    const V2: &str = r#"# containerd config, managed by hand
version = 2
root = "/var/lib/containerd"

[grpc]
  address = "/run/containerd/containerd.sock" # the socket

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.9"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        # the stock runtime
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          privileged_without_host_devices = false # keep
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true
            BinaryName = ""
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"

[metrics]
  address = ""
"#;

    #[test]
    fn v2_keeps_comments_and_copies_runc_options() {
        let e = edit(Some(V2), &req(false)).unwrap();
        assert!(e.changed);
        let t = &e.text;
        for keep in [
            "# containerd config, managed by hand\n",
            "address = \"/run/containerd/containerd.sock\" # the socket\n",
            "        # the stock runtime\n",
            "privileged_without_host_devices = false # keep\n",
            "[metrics]\n  address = \"\"\n",
        ] {
            assert!(t.contains(keep), "lost {keep:?}:\n{t}");
        }
        let expect = "\n        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]\n          runtime_type = \"io.containerd.runc.v2\"\n          privileged_without_host_devices = false\n\n          [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard.options]\n            SystemdCgroup = true\n            BinaryName = \"/usr/local/bin/execguard\"\n";
        assert!(t.contains(expect), "{t}");
        // Placed after runc's tables, before the next plugin table.
        let at = t.find("runtimes.execguard]").unwrap();
        assert!(at > t.find("runtimes.runc.options]").unwrap());
        assert!(
            at < t
                .find("[plugins.\"io.containerd.grpc.v1.cri\".cni]")
                .unwrap()
        );
        // The comments of runc are not duplicated.
        assert_eq!(t.matches("# keep").count(), 1);
        assert_eq!(t.matches("# the stock runtime").count(), 1);
        // runc itself untouched.
        let doc = parse_toml(t).unwrap();
        let p = [
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "runtimes",
        ];
        assert_eq!(
            get(&doc, &[p[0], p[1], p[2], p[3], "runc", "options"])
                .and_then(|o| o.get("BinaryName"))
                .and_then(Item::as_str),
            Some("")
        );
        assert!(!e.notes.iter().any(|n| n.contains("added runtimes.runc")));
        assert_eq!(
            get(&doc, &[p[0], p[1], p[2], "default_runtime_name"]).and_then(Item::as_str),
            Some("runc")
        );
        // Everything outside the inserted block is byte-identical.
        assert_eq!(t.replacen(expect, "", 1), V2);
    }

    #[test]
    fn nested_style_file_without_runtimes_gets_nested_indentation() {
        // The shape of this host's /etc/containerd/config.toml.
        let old = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".cni]\n      bin_dir = \"/usr/lib/cni\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/var/lib/containerd/opt\"\n";
        let e = edit(Some(old), &req(true)).unwrap();
        let block = "\n    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      default_runtime_name = \"execguard\"\n\n        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n          runtime_type = \"io.containerd.runc.v2\"\n\n        [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]\n          runtime_type = \"io.containerd.runc.v2\"\n\n          [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard.options]\n            BinaryName = \"/usr/local/bin/execguard\"\n";
        let want = old.replace(
            "bin_dir = \"/usr/lib/cni\"\n",
            &format!("bin_dir = \"/usr/lib/cni\"\n{block}"),
        );
        assert_eq!(e.text, want);
        assert!(e.notes.iter().any(|n| n.contains("added runtimes.runc")));
        assert!(!edit(Some(&e.text), &req(true)).unwrap().changed);
        // A flat file stays flat.
        assert_eq!(
            nested_step(parse_toml("[a]\n[a.b]\nx = 1\n").unwrap().as_table()),
            None
        );
        assert_eq!(
            nested_step(
                parse_toml("[a]\n  [a.b]\n    [a.b.c]\n")
                    .unwrap()
                    .as_table()
            ),
            Some(2)
        );
        assert_eq!(
            nested_step(parse_toml("[a]\n  [a.b]\n[a.c]\n").unwrap().as_table()),
            None
        );
    }

    #[test]
    fn v2_idempotent() {
        let e1 = edit(Some(V2), &req(true)).unwrap();
        let e2 = edit(Some(&e1.text), &req(true)).unwrap();
        assert!(!e2.changed, "{}", e2.text);
        assert_eq!(e2.text, e1.text);
    }

    #[test]
    fn set_as_default_replaces_the_value_in_place() {
        let e = edit(Some(V2), &req(true)).unwrap();
        assert!(
            e.text
                .contains("      default_runtime_name = \"execguard\"\n"),
            "{}",
            e.text
        );
        assert!(!e.text.contains("default_runtime_name = \"runc\""));
        // Source of the copy is the old default (runc): SystemdCgroup came along.
        assert!(
            e.text
                .contains("execguard.options]\n            SystemdCgroup = true")
        );
    }

    #[test]
    fn v3_uses_the_runtime_plugin_key() {
        let v3 = r#"version = 3

# cri runtime plugin of containerd 2
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    sandboxer = 'podsandbox'

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = true
"#;
        let e = edit(Some(v3), &req(true)).unwrap();
        let t = &e.text;
        assert!(t.contains("# cri runtime plugin of containerd 2\n"));
        assert!(t.contains("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]"));
        assert!(
            t.contains("\n  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.execguard]\n    runtime_type = 'io.containerd.runc.v2'\n    sandboxer = 'podsandbox'\n"),
            "{t}"
        );
        assert!(t.contains("execguard.options]\n      SystemdCgroup = true\n      BinaryName = \"/usr/local/bin/execguard\"\n"), "{t}");
        assert!(t.contains("default_runtime_name = \"execguard\""), "{t}");
        assert!(!t.contains("io.containerd.grpc.v1.cri"));
        assert!(!edit(Some(t), &req(true)).unwrap().changed);
    }

    #[test]
    fn v1_without_version_uses_plugins_cri() {
        let v1 = "root = \"/var/lib/containerd\"\n[plugins.cri.containerd]\n  snapshotter = \"overlayfs\"\n";
        let e = edit(Some(v1), &req(false)).unwrap();
        assert!(
            e.notes.iter().any(|n| n.contains("version 1")),
            "{:?}",
            e.notes
        );
        assert!(
            !e.text.contains("version"),
            "no version key added: {}",
            e.text
        );
        let doc = parse_toml(&e.text).unwrap();
        assert_eq!(
            get(
                &doc,
                &[
                    "plugins",
                    "cri",
                    "containerd",
                    "runtimes",
                    "execguard",
                    "runtime_type"
                ]
            )
            .and_then(Item::as_str),
            Some(RUNC_SHIM)
        );
        // No runtimes before: runc is listed explicitly so the default keeps existing.
        assert_eq!(
            get(
                &doc,
                &[
                    "plugins",
                    "cri",
                    "containerd",
                    "runtimes",
                    "runc",
                    "runtime_type"
                ]
            )
            .and_then(Item::as_str),
            Some(RUNC_SHIM)
        );
        assert!(e.text.starts_with(v1), "{}", e.text);
        // Explicit version = 1 is the same.
        let e = edit(Some("version = 1\n"), &req(false)).unwrap();
        assert!(
            e.text
                .contains("[plugins.cri.containerd.runtimes.execguard]"),
            "{}",
            e.text
        );
    }

    #[test]
    fn missing_or_empty_file_gets_a_minimal_version_2_file() {
        let want = "version = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]\nruntime_type = \"io.containerd.runc.v2\"\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard.options]\nBinaryName = \"/usr/local/bin/execguard\"\n";
        let e = edit(None, &req(false)).unwrap();
        assert!(e.changed);
        assert_eq!(e.text, want);
        let e = edit(Some(""), &req(false)).unwrap();
        assert_eq!(e.text, want);
        let e = edit(Some("# nothing here yet\n"), &req(false)).unwrap();
        assert!(e.text.starts_with("version = 2\n"), "{}", e.text);
        assert!(e.text.contains("# nothing here yet\n"));
        let e = edit(None, &req(true)).unwrap();
        assert!(e.text.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"execguard\"\n"), "{}", e.text);
    }

    #[test]
    fn existing_entry_is_updated_in_place() {
        let old = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n    SystemdCgroup = true\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]\n  runtime_type = \"io.containerd.runc.v1\" # old shim\n  pod_annotations = [\"x\"]\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard.options]\n    BinaryName = \"/opt/old/execguard\"\n";
        let e = edit(Some(old), &req(false)).unwrap();
        assert!(
            e.text
                .contains("  runtime_type = \"io.containerd.runc.v2\" # old shim\n"),
            "{}",
            e.text
        );
        assert!(
            e.text
                .contains("    BinaryName = \"/usr/local/bin/execguard\"\n")
        );
        assert!(e.text.contains("pod_annotations = [\"x\"]"));
        assert!(
            e.notes.iter().any(|n| n.contains("SystemdCgroup")),
            "{:?}",
            e.notes
        );
        assert!(!e.notes.iter().any(|n| n.contains("copied")));
        assert_eq!(e.text.lines().count(), old.lines().count());
    }

    #[test]
    fn runtime_name_runc_points_runc_at_execguard() {
        let r = Request {
            name: "runc".into(),
            ..req(false)
        };
        let e = edit(Some(V2), &r).unwrap();
        assert!(e.text.contains("runtimes.runc.options]\n            SystemdCgroup = true\n            BinaryName = \"/usr/local/bin/execguard\"\n"), "{}", e.text);
        assert!(!e.text.contains("execguard]"));
    }

    #[test]
    fn inline_and_dotted_layouts() {
        let inline = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = { runc = { runtime_type = \"io.containerd.runc.v2\", options = { SystemdCgroup = true } } }\n";
        let e = edit(Some(inline), &req(false)).unwrap();
        let doc = parse_toml(&e.text).unwrap();
        let p = [
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "runtimes",
            "execguard",
            "options",
        ];
        let o = get(&doc, &p).and_then(Item::as_table_like).unwrap();
        assert_eq!(o.get("SystemdCgroup").and_then(Item::as_bool), Some(true));
        assert_eq!(
            o.get("BinaryName").and_then(Item::as_str),
            Some("/usr/local/bin/execguard")
        );
        assert!(!edit(Some(&e.text), &req(false)).unwrap().changed);

        let dotted = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes.runc.runtime_type = \"io.containerd.runc.v2\"\nruntimes.runc.options.SystemdCgroup = true\n";
        let e = edit(Some(dotted), &req(false)).unwrap();
        let doc = parse_toml(&e.text).unwrap();
        let o = get(&doc, &p).and_then(Item::as_table_like).unwrap();
        assert_eq!(o.get("SystemdCgroup").and_then(Item::as_bool), Some(true));
        assert!(!edit(Some(&e.text), &req(false)).unwrap().changed);
    }

    #[test]
    fn refusals() {
        for (bad, want) in [
            ("version = 4\n", "unsupported config version 4"),
            ("version = \"2\"\n", "expected an integer"),
            ("version = 2\nplugins = 1\n", "plugins is not a table"),
            (
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = [1]\n",
                "runtimes is not a table",
            ),
            (
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes]\nexecguard = \"x\"\n",
                "execguard is not a table",
            ),
            (
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]\nruntime_type.x = 1\n",
                "runtime_type is a table",
            ),
        ] {
            match edit(Some(bad), &req(false)) {
                Err(EditError::Unsupported(m)) => assert!(m.contains(want), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match edit(Some("version = 2\n[plugins\nx = 1\n"), &req(false)) {
            Err(EditError::Malformed {
                format: "toml",
                line: 2,
                column,
                ..
            }) => {
                assert!(column >= 2, "{column}")
            }
            other => panic!("{other:?}"),
        }
        match edit(Some("a = 1\na = 2\n"), &req(false)) {
            Err(EditError::Malformed {
                line: 2, column: 1, ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn notes_for_disabled_cri_and_non_dns_names() {
        let e = edit(
            Some("version = 2\ndisabled_plugins = [\"cri\"]\n"),
            &req(false),
        )
        .unwrap();
        assert!(
            e.notes.iter().any(|n| n.contains("disabled_plugins")),
            "{:?}",
            e.notes
        );
        let r = Request {
            name: "Exec_Guard".into(),
            ..req(false)
        };
        let e = edit(None, &r).unwrap();
        assert!(e.notes.iter().any(|n| n.contains("DNS label")));
        assert!(is_dns_label("execguard-debug"));
        let custom = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nBinaryName = \"/opt/runc\"\n";
        let e = edit(Some(custom), &req(false)).unwrap();
        assert!(
            e.notes
                .iter()
                .any(|n| n.contains("\"/opt/runc\"") && n.contains("config.json")),
            "{:?}",
            e.notes
        );
        assert!(e.text.contains("BinaryName = \"/usr/local/bin/execguard\""));
        assert!(e.text.contains("BinaryName = \"/opt/runc\""));
        assert!(!is_dns_label("-x") && !is_dns_label("a.b") && !is_dns_label(""));
    }

    /// containerd itself parses the written file (`config dump` reads and merges it without
    /// starting the daemon); skipped where containerd is not installed.
    #[test]
    fn containerd_config_dump_accepts_the_result() {
        let Some(bin) = ["/usr/bin/containerd", "/usr/local/bin/containerd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            return;
        };
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("v2", Some(V2)),
            ("new", None),
            (
                "v1",
                Some("[plugins.cri.containerd]\n  snapshotter = \"overlayfs\"\n"),
            ),
        ];
        for (label, old) in cases {
            let e = edit(old, &req(false)).unwrap();
            let f = d.path().join(format!("{label}.toml"));
            std::fs::write(&f, &e.text).unwrap();
            let out = std::process::Command::new(bin)
                .arg("--config")
                .arg(&f)
                .args(["config", "dump"])
                .output()
                .unwrap();
            let dump = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                dump.contains(
                    "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.execguard]"
                ),
                "{label}: {dump}"
            );
            assert!(
                dump.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]"),
                "{label}: runc kept: {dump}"
            );
            assert!(
                dump.contains("BinaryName = \"/usr/local/bin/execguard\""),
                "{label}"
            );
            if label == "v2" {
                let sec = dump
                    .split("runtimes.execguard.options]")
                    .nth(1)
                    .unwrap_or("");
                let sec = sec.split("\n\n").next().unwrap_or("");
                assert!(sec.contains("SystemdCgroup = true"), "{sec}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
            let _ = edit(Some(&s), &req(true));
        }

        #[test]
        fn never_panics_on_toml_like_text(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "version = 2\n", "version = 3\n", "version = 1\n", "[plugins]\n",
                "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n",
                "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n",
                "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n",
                "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n",
                "runtime_type = \"io.containerd.runc.v2\"\n", "SystemdCgroup = true\n",
                "runtimes.runc.options.SystemdCgroup = false\n", "runtimes = {}\n",
                "execguard = { options = { BinaryName = \"x\" } }\n", "# comment\n",
                "default_runtime_name = \"runc\"\n", "[[plugins.x]]\n", "options = 3\n",
            ]), 0..10),
            dflt in proptest::bool::ANY,
        ) {
            let text: String = parts.concat();
            if let Ok(e) = edit(Some(&text), &req(dflt)) {
                let again = edit(Some(&e.text), &req(dflt));
                proptest::prop_assert!(again.is_ok(), "{:?}", again);
                proptest::prop_assert!(!again.unwrap().changed);
            }
        }
    }
}
