//! `execguard setup docker`: the edit of dockerd's `daemon.json`.
//!
//! Adds `"runtimes": {"<name>": {"path": "<path>"}}` (dockerd turns a path runtime into the
//! runc shim with `BinaryName = path`) and, with `--set-as-default`, `"default-runtime"`.
//! Every other key keeps its value and its place (serde_json with `preserve_order`); the
//! indentation of the file is reused. dockerd reloads `runtimes` and `default-runtime` on
//! SIGHUP.

use serde_json::{Map, Value};

use super::{EditError, Edited, Request};

/// How the file was laid out, reused when it is written back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Style {
    /// `None`: everything on one line.
    indent: Option<String>,
    trailing_newline: bool,
}

impl Style {
    fn detect(text: &str) -> Style {
        let body = text.trim();
        let trailing_newline = text.ends_with('\n') || text.trim().is_empty();
        if !body.is_empty() && !body.contains('\n') {
            return Style {
                indent: None,
                trailing_newline,
            };
        }
        // The whitespace before the first key of the top-level object.
        let indent = body
            .lines()
            .skip(1)
            .find_map(|l| {
                let t = l.trim_start_matches([' ', '\t']);
                t.starts_with('"')
                    .then(|| l.get(..l.len() - t.len()).unwrap_or_default().to_string())
            })
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| "  ".to_string());
        Style {
            indent: Some(indent),
            trailing_newline,
        }
    }

    fn render(&self, v: &Map<String, Value>) -> Result<String, EditError> {
        let mut out = match &self.indent {
            None => serde_json::to_string(v)
                .map_err(|e| EditError::Unsupported(format!("cannot serialize json: {e}")))?,
            Some(ind) => {
                let mut buf = Vec::new();
                let fmt = serde_json::ser::PrettyFormatter::with_indent(ind.as_bytes());
                let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
                serde::Serialize::serialize(v, &mut ser)
                    .map_err(|e| EditError::Unsupported(format!("cannot serialize json: {e}")))?;
                String::from_utf8(buf)
                    .map_err(|e| EditError::Unsupported(format!("cannot serialize json: {e}")))?
            }
        };
        if self.trailing_newline {
            out.push('\n');
        }
        Ok(out)
    }
}

/// Parse `daemon.json` text (an empty file counts as `{}`, as dockerd reads it).
fn parse(text: &str) -> Result<Map<String, Value>, EditError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        EditError::Malformed {
            format: "json",
            line: e.line(),
            column: e.column(),
            message,
        }
    })?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(EditError::Unsupported(format!(
            "the top level is {}, expected a json object",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Add (or update) the runtime in `daemon.json` text; `None` means the file does not exist.
pub fn edit(old: Option<&str>, req: &Request) -> Result<Edited, EditError> {
    let text = old.unwrap_or("");
    let mut root = parse(text)?;
    let before = root.clone();
    let mut notes = Vec::new();

    let runtimes = root
        .entry("runtimes")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(runtimes) = runtimes else {
        return Err(EditError::Unsupported(format!(
            "\"runtimes\" is {}, expected an object",
            kind(runtimes)
        )));
    };
    match runtimes.get_mut(&req.name) {
        None => {
            let mut entry = Map::new();
            entry.insert("path".to_string(), Value::String(req.path.clone()));
            runtimes.insert(req.name.clone(), Value::Object(entry));
        }
        Some(Value::Object(entry)) => {
            if entry.contains_key("runtimeType") {
                return Err(EditError::Unsupported(format!(
                    "runtimes.{} uses \"runtimeType\", which cannot be combined with \"path\"; remove it or choose another --runtime-name",
                    req.name
                )));
            }
            if let Some(old_path) = entry.get("path").and_then(Value::as_str)
                && old_path != req.path
            {
                notes.push(format!(
                    "runtimes.{} pointed at {old_path}; now {}",
                    req.name, req.path
                ));
            }
            // Other keys of the entry (runtimeArgs) stay as the user wrote them.
            entry.insert("path".to_string(), Value::String(req.path.clone()));
        }
        Some(other) => {
            return Err(EditError::Unsupported(format!(
                "runtimes.{} is {}, expected an object",
                req.name,
                kind(other)
            )));
        }
    }
    if req.set_as_default {
        if let Some(prev) = root.get("default-runtime").and_then(Value::as_str)
            && prev != req.name
        {
            notes.push(format!(
                "default-runtime was {prev:?}; write \"default-runtime\": {prev:?} back to revert (dockerd keeps the old default on reload when the key is only deleted)"
            ));
        }
        root.insert(
            "default-runtime".to_string(),
            Value::String(req.name.clone()),
        );
    }

    let changed = old.is_none() || root != before;
    let text = if changed {
        Style::detect(text).render(&root)?
    } else {
        text.to_string()
    };
    Ok(Edited {
        text,
        changed,
        notes,
    })
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

    fn keys(text: &str) -> Vec<String> {
        parse(text).unwrap().keys().cloned().collect()
    }

    #[test]
    fn keeps_other_keys_in_their_order() {
        let old = r#"{
  "storage-driver": "overlay2",
  "log-opts": {"max-size": "10m", "max-file": "3"},
  "bip": "10.1.0.1/24",
  "debug": false,
  "insecure-registries": ["b.example", "a.example"],
  "zz-last": 1
}
"#;
        let e = edit(Some(old), &req(false)).unwrap();
        assert!(e.changed);
        assert_eq!(
            keys(&e.text),
            [
                "storage-driver",
                "log-opts",
                "bip",
                "debug",
                "insecure-registries",
                "zz-last",
                "runtimes"
            ]
        );
        let v = parse(&e.text).unwrap();
        let lo: Vec<&String> = v["log-opts"].as_object().unwrap().keys().collect();
        assert_eq!(lo, ["max-size", "max-file"]);
        assert_eq!(v["insecure-registries"][0], "b.example");
        assert_eq!(
            v["runtimes"]["execguard"]["path"],
            "/usr/local/bin/execguard"
        );
        assert!(e.text.ends_with("}\n"));
        assert!(
            e.text.contains("\n  \"storage-driver\""),
            "indent kept: {}",
            e.text
        );
        assert!(!e.text.contains("default-runtime"));
    }

    #[test]
    fn existing_runtimes_are_kept_and_entry_updated_in_place() {
        let old = "{\n\t\"runtimes\": {\n\t\t\"nvidia\": {\"path\": \"nvidia-container-runtime\", \"runtimeArgs\": []},\n\t\t\"execguard\": {\"path\": \"/old/execguard\", \"runtimeArgs\": [\"--debug\"]},\n\t\t\"crun\": {\"path\": \"/usr/bin/crun\"}\n\t},\n\t\"default-runtime\": \"nvidia\"\n}\n";
        let e = edit(Some(old), &req(false)).unwrap();
        assert!(e.changed);
        assert!(
            e.notes.iter().any(|n| n.contains("/old/execguard")),
            "{:?}",
            e.notes
        );
        let v = parse(&e.text).unwrap();
        let rt: Vec<&String> = v["runtimes"].as_object().unwrap().keys().collect();
        assert_eq!(rt, ["nvidia", "execguard", "crun"]);
        assert_eq!(v["runtimes"]["nvidia"]["path"], "nvidia-container-runtime");
        assert_eq!(
            v["runtimes"]["execguard"]["path"],
            "/usr/local/bin/execguard"
        );
        assert_eq!(v["runtimes"]["execguard"]["runtimeArgs"][0], "--debug");
        assert_eq!(v["default-runtime"], "nvidia");
        assert!(
            e.text.contains("\n\t\"runtimes\""),
            "tab indent kept: {}",
            e.text
        );
    }

    #[test]
    fn idempotent_even_when_formatting_differs() {
        let e1 = edit(None, &req(true)).unwrap();
        assert!(e1.changed);
        let e2 = edit(Some(&e1.text), &req(true)).unwrap();
        assert!(!e2.changed);
        assert_eq!(e2.text, e1.text);
        // Hand-written, oddly formatted, already configured: left byte for byte.
        let odd = "{ \"runtimes\" : { \"execguard\" : { \"path\" : \"/usr/local/bin/execguard\" } },\n\n   \"default-runtime\":\"execguard\" }";
        let e3 = edit(Some(odd), &req(true)).unwrap();
        assert!(!e3.changed);
        assert_eq!(e3.text, odd);
    }

    #[test]
    fn set_as_default_adds_or_replaces_default_runtime() {
        let e = edit(
            Some("{\"default-runtime\": \"runc\", \"debug\": true}"),
            &req(true),
        )
        .unwrap();
        let v = parse(&e.text).unwrap();
        assert_eq!(v["default-runtime"], "execguard");
        assert_eq!(keys(&e.text), ["default-runtime", "debug", "runtimes"]);
        assert!(e.notes.iter().any(|n| n.contains("\"runc\"")));
        // One-line file stays on one line.
        assert_eq!(e.text.trim_end().lines().count(), 1, "{}", e.text);
        assert!(!e.text.ends_with('\n'));
    }

    #[test]
    fn empty_or_missing_file() {
        let e = edit(Some(""), &req(false)).unwrap();
        assert!(e.changed);
        assert_eq!(
            e.text,
            "{\n  \"runtimes\": {\n    \"execguard\": {\n      \"path\": \"/usr/local/bin/execguard\"\n    }\n  }\n}\n"
        );
        let e = edit(None, &req(false)).unwrap();
        assert_eq!(
            e.text,
            "{\n  \"runtimes\": {\n    \"execguard\": {\n      \"path\": \"/usr/local/bin/execguard\"\n    }\n  }\n}\n"
        );
        // An existing "{}" file still changes.
        assert!(edit(Some("{}\n"), &req(false)).unwrap().changed);
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let err = edit(Some("{\n  \"debug\": true\n  \"x\": 1\n}"), &req(false)).unwrap_err();
        match err {
            EditError::Malformed {
                format,
                line,
                column,
                message,
            } => {
                assert_eq!((format, line, column), ("json", 3, 3));
                assert!(message.contains("expected"), "{message}");
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Comments are not JSON (dockerd rejects them too).
        assert!(matches!(
            edit(Some("{ // hi\n}"), &req(false)),
            Err(EditError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            edit(Some("{\"a\": 1"), &req(false)),
            Err(EditError::Malformed { .. })
        ));
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for bad in [
            "[]",
            "\"x\"",
            "null",
            "{\"runtimes\": []}",
            "{\"runtimes\": {\"execguard\": \"/x\"}}",
            "{\"runtimes\": {\"execguard\": {\"runtimeType\": \"io.containerd.runc.v2\"}}}",
        ] {
            let r = edit(Some(bad), &req(false));
            assert!(matches!(r, Err(EditError::Unsupported(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(edit(Some(&deep), &req(false)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
            let _ = edit(Some(&s), &req(true));
        }

        #[test]
        fn result_parses_holds_the_runtime_and_is_stable(
            keys in proptest::collection::vec("k[a-z-]{0,11}", 0..8),
            vals in proptest::collection::vec(0u32..1000, 8),
            indent in "( {1,4}|\t)",
            dflt in proptest::bool::ANY,
        ) {
            let mut m = Map::new();
            for (k, v) in keys.iter().zip(vals.iter()) {
                m.insert(k.clone(), Value::from(*v));
            }
            let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut buf = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&m, &mut ser).unwrap();
            let text = String::from_utf8(buf).unwrap();
            let e = edit(Some(&text), &req(dflt)).unwrap();
            let v = parse(&e.text).unwrap();
            proptest::prop_assert_eq!(&v["runtimes"]["execguard"]["path"], "/usr/local/bin/execguard");
            let before: Vec<&String> = m.keys().filter(|k| *k != "runtimes" && *k != "default-runtime").collect();
            let after: Vec<&String> = v.keys().filter(|k| m.contains_key(*k) && *k != "runtimes" && *k != "default-runtime").collect();
            proptest::prop_assert_eq!(before, after);
            let again = edit(Some(&e.text), &req(dflt)).unwrap();
            proptest::prop_assert!(!again.changed);
        }
    }
}
