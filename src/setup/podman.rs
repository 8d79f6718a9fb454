//! `execguard setup podman`: the edit of `containers.conf`.
//!
//! Adds `[engine.runtimes] <name> = ["<path>"]` (podman takes the first existing path of the
//! list) and, with `--set-as-default`, `[engine] runtime = "<name>"`. Comments and layout are
//! kept (toml_edit). Podman reads the file on every command, so nothing needs reloading.

use toml_edit::{Array, Item, Value};

use super::{
    EditError, Edited, Request, lookup, nested_step, parse_toml, restyle_nested, slot_at, str_is,
    toml_path,
};

/// Whether a `runtimes` entry already starts with `path` (podman uses the first path found).
fn first_is(path: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v.as_array().and_then(|a| a.get(0)).and_then(Value::as_str) == Some(path)
}

/// Add (or update) the runtime in `containers.conf` text; `None` means the file does not exist.
pub fn edit(old: Option<&str>, req: &Request) -> Result<Edited, EditError> {
    let text = old.unwrap_or("");
    let mut doc = parse_toml(text)?;
    let step = nested_step(doc.as_table());
    let mut notes = Vec::new();
    let name = req.name.as_str();

    if let Some(prev) = lookup(doc.as_table(), &["engine", "runtimes", name])
        && let Some(a) = prev.as_array()
        && a.get(0).and_then(Value::as_str) != Some(req.path.as_str())
    {
        let was: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
        notes.push(format!(
            "engine.runtimes.{name} was {was:?}; now [{:?}]",
            req.path
        ));
    }

    if req.set_as_default {
        if let Some(prev) = lookup(doc.as_table(), &["engine", "runtime"]).and_then(Item::as_str)
            && prev != name
        {
            notes.push(format!("engine.runtime was {prev:?}"));
        }
        let mut engine = slot_at(&mut doc, &["engine"])?;
        engine.set(
            "runtime",
            Value::from(name),
            &str_is(name),
            "engine.runtime",
            None,
        )?;
    }
    let keys = ["engine", "runtimes"];
    let mut runtimes = slot_at(&mut doc, &keys)?;
    let mut list = Array::new();
    list.push(req.path.as_str());
    runtimes.set(
        name,
        Value::Array(list),
        &first_is(&req.path),
        &toml_path(&["engine", "runtimes", name]),
        None,
    )?;

    if let Some(step) = step {
        restyle_nested(doc.as_table_mut(), step);
    }
    let new_text = doc.to_string();
    verify(&new_text, req)?;
    let changed = old.is_none() || new_text != text;
    Ok(Edited {
        text: if changed { new_text } else { text.to_string() },
        changed,
        notes,
    })
}

/// Parse the result again and check it holds what was asked; refuses to write otherwise.
fn verify(text: &str, req: &Request) -> Result<(), EditError> {
    let doc = parse_toml(text).map_err(|e| {
        EditError::Unsupported(format!(
            "the edited file would not parse ({e}); not written"
        ))
    })?;
    let root = doc.as_table();
    let first = lookup(root, &["engine", "runtimes", req.name.as_str()])
        .and_then(Item::as_array)
        .and_then(|a| a.get(0))
        .and_then(Value::as_str);
    let dflt = lookup(root, &["engine", "runtime"]).and_then(Item::as_str);
    if first == Some(req.path.as_str()) && (!req.set_as_default || dflt == Some(req.name.as_str()))
    {
        Ok(())
    } else {
        Err(EditError::Unsupported(
            "could not place engine.runtimes in this file's layout; not written".to_string(),
        ))
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

    const CONF: &str = r#"# containers.conf for this host
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]   # host quirk

[engine]
# The runtime podman uses.
#runtime = "crun"
hooks_dir = ["/usr/share/containers/oci/hooks.d"]

[engine.runtimes]
crun = [
  "/usr/bin/crun",
  "/usr/local/bin/crun",
]

[network]
network_backend = "netavark"
"#;

    #[test]
    fn keeps_comments_and_other_runtimes() {
        let e = edit(Some(CONF), &req(false)).unwrap();
        assert!(e.changed);
        let want = CONF.replace(
            "  \"/usr/local/bin/crun\",\n]\n",
            "  \"/usr/local/bin/crun\",\n]\nexecguard = [\"/usr/local/bin/execguard\"]\n",
        );
        assert_eq!(e.text, want);
        assert!(!edit(Some(&e.text), &req(false)).unwrap().changed);
    }

    #[test]
    fn set_as_default_sets_engine_runtime() {
        let e = edit(Some(CONF), &req(true)).unwrap();
        assert!(
            e.text.contains(
                "hooks_dir = [\"/usr/share/containers/oci/hooks.d\"]\nruntime = \"execguard\"\n"
            ),
            "{}",
            e.text
        );
        assert!(e.text.contains("#runtime = \"crun\"\n"), "comment kept");
        let again = edit(Some(&e.text), &req(true)).unwrap();
        assert!(!again.changed);
        // An existing value is replaced where it stands, with its comment.
        let e = edit(
            Some("[engine]\nruntime = \"crun\" # was crun\n"),
            &req(true),
        )
        .unwrap();
        assert!(
            e.text
                .starts_with("[engine]\nruntime = \"execguard\" # was crun\n"),
            "{}",
            e.text
        );
        assert!(e.notes.iter().any(|n| n.contains("\"crun\"")));
    }

    #[test]
    fn missing_file_and_missing_tables() {
        let e = edit(None, &req(true)).unwrap();
        assert_eq!(
            e.text,
            "[engine]\nruntime = \"execguard\"\n\n[engine.runtimes]\nexecguard = [\"/usr/local/bin/execguard\"]\n"
        );
        let e = edit(None, &req(false)).unwrap();
        assert_eq!(
            e.text,
            "[engine.runtimes]\nexecguard = [\"/usr/local/bin/execguard\"]\n"
        );
        // [engine] exists with indented keys: the new key follows that indentation.
        let e = edit(
            Some("[engine]\n  cgroup_manager = \"cgroupfs\"\n\n[machine]\ncpus = 2\n"),
            &req(true),
        )
        .unwrap();
        assert!(
            e.text.starts_with(
                "[engine]\n  cgroup_manager = \"cgroupfs\"\n  runtime = \"execguard\"\n"
            ),
            "{}",
            e.text
        );
        let at = e.text.find("[engine.runtimes]").unwrap();
        assert!(at < e.text.find("[machine]").unwrap(), "{}", e.text);
    }

    #[test]
    fn existing_entry_with_other_paths_is_replaced() {
        let e = edit(Some("[engine.runtimes]\nexecguard = [\"/old/execguard\", \"/usr/local/bin/execguard\"]\n"), &req(false)).unwrap();
        assert_eq!(
            e.text,
            "[engine.runtimes]\nexecguard = [\"/usr/local/bin/execguard\"]\n"
        );
        assert!(e.notes.iter().any(|n| n.contains("/old/execguard")));
        // Already first: left alone, extra fallbacks included.
        let ok =
            "[engine.runtimes]\nexecguard = [\"/usr/local/bin/execguard\", \"/opt/execguard\"]\n";
        let e = edit(Some(ok), &req(false)).unwrap();
        assert!(!e.changed);
        assert_eq!(e.text, ok);
    }

    #[test]
    fn inline_and_dotted_layouts() {
        let e = edit(
            Some("[engine]\nruntimes = { crun = [\"/usr/bin/crun\"] }\n"),
            &req(false),
        )
        .unwrap();
        assert_eq!(
            e.text,
            "[engine]\nruntimes = { crun = [\"/usr/bin/crun\"], execguard = [\"/usr/local/bin/execguard\"] }\n"
        );
        let e = edit(
            Some("[engine]\nruntimes.crun = [\"/usr/bin/crun\"]\n"),
            &req(false),
        )
        .unwrap();
        assert_eq!(
            e.text,
            "[engine]\nruntimes.crun = [\"/usr/bin/crun\"]\nruntimes.execguard = [\"/usr/local/bin/execguard\"]\n"
        );
    }

    #[test]
    fn refusals() {
        for (bad, want) in [
            ("engine = 1\n", "engine is not a table"),
            (
                "[engine]\nruntimes = \"crun\"\n",
                "engine.runtimes is not a table",
            ),
            ("[engine.runtimes.execguard]\nx = 1\n", "is a table"),
        ] {
            match edit(Some(bad), &req(false)) {
                Err(EditError::Unsupported(m)) => assert!(m.contains(want), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match edit(Some("[engine]\nruntime = \n"), &req(false)) {
            Err(EditError::Malformed { line: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
            let _ = edit(Some(&s), &req(true));
        }

        #[test]
        fn idempotent_on_toml_like_text(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "[engine]\n", "[engine.runtimes]\n", "[containers]\n", "runtime = \"crun\"\n",
                "crun = [\"/usr/bin/crun\"]\n", "execguard = []\n", "execguard = [1]\n",
                "runtimes = {}\n", "runtimes.crun = []\n", "# c\n", "[[engine.x]]\n",
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
