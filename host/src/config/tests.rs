use super::*;
use std::path::Path;

/// The files alone, no environment.
fn load(dir: &Path, profile: Option<&str>, file: Option<&Path>) -> Result<Config, ConfigError> {
    load_env(dir, profile, file, &[])
}

fn load_env(
    dir: &Path,
    profile: Option<&str>,
    file: Option<&Path>,
    env: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    Config::load(Sources {
        config_dir: dir,
        profile,
        file,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

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
    let config = load(dir.path(), Some("dev"), Some(&extra)).unwrap();
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
    let err = load(dir.path(), Some("dev"), None).unwrap_err().to_string();
    assert!(err.contains("dev.toml"), "{err}");
    assert!(err.contains("body_limt"), "{err}");
}

#[test]
fn unknown_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), Some("staging"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown profile `staging`"), "{err}");
}

#[test]
fn bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "x.toml", "[plugins]\nworkers = 5000\n");
    let err = load(dir.path(), None, Some(&file)).unwrap_err().to_string();
    assert!(err.contains("plugins.workers"), "{err}");
}

#[test]
fn module_threads_are_one_per_core_unless_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(dir.path(), None, None).unwrap();
    assert_eq!(config.plugins.workers, 0, "the default is one per core");
    let per_core = config.plugins.worker_threads();
    assert!(per_core >= crate::config::MIN_WORKERS, "{per_core}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(per_core >= cores, "{per_core} threads for {cores} cores");
    // 0 set explicitly is the default; a number set is kept, even below one per core.
    for (set, threads) in [("0", per_core), ("1", 1), ("3", 3)] {
        let config = load_env(
            dir.path(),
            None,
            None,
            &[("GAME_HOST_PLUGINS_WORKERS", set)],
        )
        .unwrap_or_else(|e| panic!("workers = {set}: {e}"));
        assert_eq!(config.plugins.worker_threads(), threads, "workers = {set}");
    }
}

#[test]
fn batches_under_way_are_from_one_to_the_pool_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(dir.path(), None, None).unwrap();
    let settings = config.pool_settings();
    assert_eq!((settings.batch_readers, settings.batch_writers), (1, 1));
    // Layers apply one key at a time, the environment's in name order: the readers come
    // before the pool that makes room for them, and are checked against it only at the end.
    for (pool, readers, writers) in [("4", "4", "2"), ("64", "32", "1")] {
        let env = [
            ("GAME_HOST_STORE_POOL_SIZE", pool),
            ("GAME_HOST_STORE_BATCH_READERS", readers),
            ("GAME_HOST_STORE_BATCH_WRITERS", writers),
        ];
        let settings = load_env(dir.path(), None, None, &env)
            .unwrap()
            .pool_settings();
        let read = [
            settings.size,
            settings.batch_readers,
            settings.batch_writers,
        ];
        assert_eq!(read.map(|n| n.to_string()), [pool, readers, writers]);
    }
    for (key, value, allowed) in [
        (
            "batch_readers",
            5,
            "it must be from 1 to store.pool_size (4)",
        ),
        ("batch_writers", 0, "it must be from 1 to 1000"),
    ] {
        let file = write(
            dir.path(),
            "x.toml",
            &format!("[store]\npool_size = 4\n{key} = {value}\n"),
        );
        let err = load(dir.path(), None, Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains(&format!("store.{key} is {value}: {allowed}")),
            "{err}"
        );
    }
}

#[test]
fn a_cors_origin_that_is_not_an_origin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "x.toml",
        "[server]\ncors_origins = [\"https://game.example.com/\"]\n",
    );
    let err = load(dir.path(), None, Some(&file)).unwrap_err().to_string();
    assert!(
        err.contains("server.cors_origins") && err.contains("trailing slash"),
        "{err}"
    );
    let file = write(
        dir.path(),
        "y.toml",
        "[server]\ncors_origins = [\"https://game.example.com\", \"*\"]\n",
    );
    assert_eq!(
        load(dir.path(), None, Some(&file))
            .unwrap()
            .server
            .cors_origins
            .len(),
        2
    );
}

#[test]
fn shipped_profiles_load() {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    for profile in ["default", "dev", "prod"] {
        load(&config_dir, Some(profile), None).unwrap_or_else(|e| panic!("{profile}: {e}"));
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
    let err = load(dir.path(), None, Some(&open)).unwrap_err().to_string();
    assert!(err.contains("admin.token"), "{err}");
    let closed = write(
        dir.path(),
        "closed.toml",
        "[admin]\nlisten = \"0.0.0.0:8001\"\ntoken = \"t\"\n",
    );
    assert!(load(dir.path(), None, Some(&closed)).is_ok());
    let off = write(dir.path(), "off.toml", "[admin]\nlisten = \"\"\n");
    assert_eq!(
        load(dir.path(), None, Some(&off)).unwrap().admin.listen,
        None
    );
}

#[test]
fn default_toml_spells_out_the_built_in_defaults() {
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let from_file = load(&config_dir, Some("default"), None).unwrap();
    assert_eq!(
        from_file.to_toml_redacted(),
        Config::default().to_toml_redacted(),
        "config/default.toml and the Default impls disagree"
    );
}

#[test]
fn the_environment_overrides_the_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "dev.toml",
        "[server]\nlisten = \"127.0.0.1:7000\"\nbody_limit = 10\n[modules.mall]\ndiscount_percent = 5\n",
    );
    let config = load_env(
        dir.path(),
        Some("dev"),
        None,
        &[
            ("GAME_HOST_SERVER_LISTEN", "0.0.0.0:9000"),
            ("GAME_HOST_PLUGINS_CALL_TIMEOUT_MS", "250"),
            ("GAME_HOST_PLUGINS_WATCH", "false"),
            ("GAME_HOST_LOG_FILES_INFO_KEEP", "7"),
            ("GAME_HOST_MODULES_MALL_DISCOUNT_PERCENT", "20"),
            ("GAME_HOST_ADMIN_TOKEN", "s3cret"),
            // Not ours: ignored.
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.server.body_limit, 10, "the file's value stays");
    assert_eq!(config.plugins.call_timeout_ms, 250);
    assert!(!config.plugins.watch);
    assert_eq!(config.log.files["info"].keep, 7);
    assert_eq!(
        config.module_config_json("mall"),
        r#"{"discount_percent":20}"#
    );
    assert_eq!(config.admin.token.as_deref(), Some("s3cret"));
}

#[test]
fn a_bad_environment_value_names_the_variable_and_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_env(
        dir.path(),
        None,
        None,
        &[("GAME_HOST_PLUGINS_WORKERS", "many")],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("GAME_HOST_PLUGINS_WORKERS"), "{err}");
    assert!(err.contains("expected an integer"), "{err}");

    let err = load_env(
        dir.path(),
        None,
        None,
        &[("GAME_HOST_PLUGINS_WORKERS", "1025")],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("GAME_HOST_PLUGINS_WORKERS"), "{err}");
    assert!(
        err.contains("0 (one thread per core, at least 2) or from 1 to 1024"),
        "{err}"
    );

    let err = load_env(dir.path(), None, None, &[("GAME_HOST_LOG_STDERR", "loud")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("GAME_HOST_LOG_STDERR"), "{err}");
    assert!(
        err.contains("debug"),
        "the allowed levels are listed: {err}"
    );
}

#[test]
fn an_unknown_environment_variable_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_env(
        dir.path(),
        None,
        None,
        &[("GAME_HOST_SERVER_LISTN", "0.0.0.0:1")],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("GAME_HOST_SERVER_LISTN"), "{err}");
    assert!(err.contains("GAME_HOST_SERVER_LISTEN"), "{err}");
    assert!(err.contains("GAME_HOST_LOG_FILES_ERROR_KEEP"), "{err}");
}

#[test]
fn log_files_are_set_per_profile_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prod.toml",
        "[log]\nstderr = \"off\"\n[log.files.info]\nkeep = 30\n[log.files.debug]\nlevel = \"off\"\n[log.files.audit]\npath = \"game/audit.log\"\nlevel = \"warning\"\n",
    );
    let config = load(dir.path(), Some("prod"), None).unwrap();
    assert_eq!(config.log.stderr, LevelName::Off);
    let info = &config.log.files["info"];
    assert_eq!(
        (info.keep, info.path.to_str().unwrap(), info.format),
        (30, "game/info.log", LineFormat::Simple),
        "the other keys keep their defaults"
    );
    assert_eq!(config.log.files["debug"].level, LevelName::Off);
    let audit = &config.log.files["audit"];
    assert_eq!(audit.level, LevelName::Warning);
    assert_eq!((audit.rotate, audit.keep), (Rotation::Daily, 20));
}

#[test]
fn log_files_must_stay_under_the_log_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "x.toml",
        "[log.files.info]\npath = \"../../etc/passwd\"\n",
    );
    let err = load(dir.path(), None, Some(&file)).unwrap_err().to_string();
    assert!(err.contains("x.toml"), "{err}");
    assert!(err.contains("log.files.info.path"), "{err}");
}

#[test]
fn the_printed_config_hides_the_token_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_env(
        dir.path(),
        None,
        None,
        &[("GAME_HOST_ADMIN_TOKEN", "s3cret")],
    )
    .unwrap();
    let printed = config.to_toml_redacted();
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(printed.contains("token = \"<redacted>\""), "{printed}");
    let file = write(dir.path(), "printed.toml", &printed);
    let reloaded = load(dir.path(), None, Some(&file)).unwrap();
    assert_eq!(reloaded.to_toml_redacted(), printed);
}
