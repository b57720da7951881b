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
