use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn layers_merge_in_order_and_keep_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "dev.toml",
        "[server]\nbody_limit = 10\n[modules.mall]\ndiscount = 5\n",
    );
    let extra = write(
        dir.path(),
        "extra.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\n",
    );
    let config = Config::load(dir.path(), Some("dev"), Some(&extra)).unwrap();
    assert_eq!(config.server.body_limit, 10);
    assert_eq!(config.server.listen.port(), 0);
    assert_eq!(config.session.ttl_secs, 7 * 24 * 3600);
    assert_eq!(config.module_config_json("mall"), r#"{"discount":5}"#);
    assert_eq!(config.module_config_json("player"), "{}");
}

#[test]
fn unknown_key_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "dev.toml", "[server]\nbody_limt = 10\n");
    let err = Config::load(dir.path(), Some("dev"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dev.toml"), "{err}");
    assert!(err.contains("body_limt"), "{err}");
}

#[test]
fn unknown_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(dir.path(), Some("staging"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown profile `staging`"), "{err}");
}

#[test]
fn bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "x.toml", "[plugins]\nworkers = 0\n");
    let err = Config::load(dir.path(), None, Some(&file))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plugins.workers"), "{err}");
}

#[test]
fn shipped_profiles_load() {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    for profile in ["default", "dev", "prod"] {
        Config::load(&config_dir, Some(profile), None).unwrap_or_else(|e| panic!("{profile}: {e}"));
    }
}

#[test]
fn an_admin_listener_off_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let open = write(
        dir.path(),
        "open.toml",
        "[admin]\nlisten = \"0.0.0.0:8001\"\n",
    );
    let err = Config::load(dir.path(), None, Some(&open))
        .unwrap_err()
        .to_string();
    assert!(err.contains("admin.token"), "{err}");
    let closed = write(
        dir.path(),
        "closed.toml",
        "[admin]\nlisten = \"0.0.0.0:8001\"\ntoken = \"t\"\n",
    );
    assert!(Config::load(dir.path(), None, Some(&closed)).is_ok());
    let off = write(dir.path(), "off.toml", "[admin]\nlisten = \"\"\n");
    assert_eq!(
        Config::load(dir.path(), None, Some(&off))
            .unwrap()
            .admin
            .listen,
        None
    );
}
