use super::*;

/// A folder shaped like the host's workspace root.
fn workspace() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("plugin-api")).unwrap();
    std::fs::write(
        root.path().join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\n    \"host\",\n    \"plugins/mall\",\n    # Test-only\n    \"host/tests/plugins/faulty\",\n]\n\n[workspace.package]\nedition = \"2021\"\n",
    )
    .unwrap();
    root
}

#[test]
fn in_the_workspace_the_module_joins_its_members_after_the_other_modules() {
    let root = workspace();
    let place = Place::Workspace {
        root: root.path().to_owned(),
    };
    let created = new_module("greeter", "42", &place).unwrap();
    assert_eq!(created.dir, root.path().join("plugins/greeter"));
    let manifest = std::fs::read_to_string(root.path().join("Cargo.toml")).unwrap();
    assert_eq!(
        manifest,
        "[workspace]\nresolver = \"2\"\nmembers = [\n    \"host\",\n    \"plugins/mall\",\n    \"plugins/greeter\",\n    # Test-only\n    \"host/tests/plugins/faulty\",\n]\n\n[workspace.package]\nedition = \"2021\"\n"
    );
    let lib = std::fs::read_to_string(created.dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains(r#"name: "greeter","#) && lib.contains(r#""4201" => rules::greet"#));
    let cargo = std::fs::read_to_string(created.dir.join("Cargo.toml")).unwrap();
    assert!(cargo.contains(r#"name = "greeter""#) && cargo.contains("serde.workspace"));
    assert!(
        !cargo.contains("abi_stable"),
        "plugin-api is all a module needs:\n{cargo}"
    );
    assert!(created
        .next_steps
        .iter()
        .any(|s| s.contains("MODULE=greeter")));

    // Not twice.
    let again = new_module("greeter", "42", &place).unwrap_err();
    assert_eq!(again, ScaffoldError::Exists(created.dir));
}

#[test]
fn outside_a_workspace_it_says_to_pass_dir() {
    let elsewhere = tempfile::tempdir().unwrap();
    let place = Place::Workspace {
        root: elsewhere.path().to_owned(),
    };
    let refused = new_module("greeter", "42", &place).unwrap_err();
    assert!(refused.to_string().contains("--dir"), "{refused}");
}

#[test]
fn names_and_prefixes_are_checked_first() {
    let root = workspace();
    let place = Place::Workspace {
        root: root.path().to_owned(),
    };
    for name in ["", "Greeter", "1st", "greet-er", &"g".repeat(33)] {
        let refused = new_module(name, "42", &place).unwrap_err();
        assert_eq!(refused, ScaffoldError::BadName(name.to_owned()));
    }
    for prefix in ["4", "420", "4x"] {
        let refused = new_module("greeter", prefix, &place).unwrap_err();
        assert_eq!(refused, ScaffoldError::BadPrefix(prefix.to_owned()));
    }
    assert!(!root.path().join("plugins").exists(), "nothing written");
}

#[test]
fn a_standalone_crate_depends_on_plugin_api_by_path() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("greeter");
    let missing = Place::Standalone {
        dir: dir.clone(),
        plugin_api: out.path().join("nowhere"),
    };
    let refused = new_module("greeter", "42", &missing).unwrap_err();
    assert!(refused.to_string().contains("--plugin-api"), "{refused}");

    let plugin_api = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
    let place = Place::Standalone {
        dir: dir.clone(),
        plugin_api: plugin_api.clone(),
    };
    new_module("greeter", "42", &place).unwrap();
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let path = plugin_api.canonicalize().unwrap();
    assert!(
        cargo.contains(&format!("plugin-api = {{ path = \"{}\" }}", path.display())),
        "{cargo}"
    );
    assert!(
        !cargo.contains("abi_stable") && cargo.contains("[workspace]"),
        "{cargo}"
    );
}

#[test]
fn a_plugin_api_path_with_quotes_and_backslashes_stays_one_toml_string() {
    let out = tempfile::tempdir().unwrap();
    let plugin_api = out.path().join(r#"odd "plugin" \api"#);
    std::fs::create_dir(&plugin_api).unwrap();
    std::fs::write(plugin_api.join("Cargo.toml"), "[package]\n").unwrap();
    let dir = out.path().join("greeter");
    let place = Place::Standalone {
        dir: dir.clone(),
        plugin_api: plugin_api.clone(),
    };
    new_module("greeter", "42", &place).unwrap();
    let cargo: toml_edit::DocumentMut = std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let path = plugin_api.canonicalize().unwrap();
    assert_eq!(
        cargo["dependencies"]["plugin-api"]["path"].as_str(),
        Some(path.to_str().unwrap())
    );
}

#[test]
fn a_name_or_prefix_another_module_of_the_workspace_declares_is_refused() {
    let root = workspace();
    let place = Place::Workspace {
        root: root.path().to_owned(),
    };
    new_module("greeter", "42", &place).unwrap();
    let greeter = root.path().join("plugins/greeter/src/lib.rs");

    let refused = new_module("welcome", "42", &place).unwrap_err();
    assert_eq!(
        refused,
        ScaffoldError::Taken {
            what: "prefix",
            value: "42".into(),
            by: greeter.clone()
        }
    );
    assert!(refused.to_string().contains("choose another"), "{refused}");
    // A module whose folder is not named after it.
    std::fs::rename(
        root.path().join("plugins/greeter"),
        root.path().join("plugins/hello"),
    )
    .unwrap();
    let refused = new_module("greeter", "43", &place).unwrap_err();
    assert_eq!(
        refused,
        ScaffoldError::Taken {
            what: "name",
            value: "greeter".into(),
            by: root.path().join("plugins/hello/src/lib.rs")
        }
    );
    assert!(
        !root.path().join("plugins/greeter").exists(),
        "nothing written"
    );
    new_module("welcome", "43", &place).unwrap();
}
