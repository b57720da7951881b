//! Reading the configuration: its sources layered over the defaults, each checked as it is
//! applied, then every value checked against what it allows.

use super::{env, Config};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("unknown profile `{profile}`: no file {path} (profiles are the files in config/)")]
    UnknownProfile { profile: String, path: PathBuf },
    #[error("invalid config: {0}")]
    Value(String),
    #[error("store.url: {0}")]
    StoreUrl(#[from] crate::store::UrlError),
}

/// Where the configuration comes from, lowest precedence first (flags are applied after).
#[derive(Debug)]
pub struct Sources<'a> {
    /// Where profile files live.
    pub config_dir: &'a Path,
    /// `config_dir/<profile>.toml`.
    pub profile: Option<&'a str>,
    /// A file applied over the profile (`--config`).
    pub file: Option<&'a Path>,
    /// The process environment; only `GAME_HOST_*` variables are read.
    pub env: Vec<(String, String)>,
}

impl Config {
    /// Layers the sources over the defaults, checking each as it is applied.
    pub fn load(sources: Sources<'_>) -> Result<Config, ConfigError> {
        let mut merged = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Value(e.to_string()))?;
        let mut files = Vec::new();
        if let Some(profile) = sources.profile {
            let path = sources.config_dir.join(format!("{profile}.toml"));
            if !path.is_file() {
                return Err(ConfigError::UnknownProfile {
                    profile: profile.to_owned(),
                    path,
                });
            }
            files.push(path);
        }
        files.extend(sources.file.map(Path::to_owned));
        for path in files {
            merge(&mut merged, read_file(&path)?);
            from_table(&merged).map_err(|message| ConfigError::Invalid { path, message })?;
        }
        for (var, raw) in env::select(sources.env) {
            env::apply(&mut merged, &var, &raw)?;
            from_table(&merged).map_err(|message| ConfigError::Env { var, message })?;
        }
        let config = from_table(&merged).map_err(ConfigError::Value)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the whole, once every source is applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_values().map_err(ConfigError::Value)?;
        // Keys checked against each other only here, once every layer is applied: a layer
        // may raise `batch_readers` before a later one raises `pool_size`.
        self.check_batches().map_err(ConfigError::Value)?;
        if let Some(listen) = self.admin.listen {
            if !listen.ip().is_loopback() && self.admin.token.is_none() {
                return Err(ConfigError::Value(format!(
                    "admin.listen is {listen}, off loopback: set admin.token (or GAME_HOST_ADMIN_TOKEN), or listen on 127.0.0.1"
                )));
            }
        }
        Ok(())
    }

    /// Batches need a connection each: more of them at once than the pool has would only
    /// wait for one.
    fn check_batches(&self) -> Result<(), String> {
        let store = &self.store;
        for (key, batches) in [
            ("store.batch_readers", store.batch_readers),
            ("store.batch_writers", store.batch_writers),
        ] {
            if batches > store.pool_size {
                return Err(format!(
                    "{key} is {batches}: it must be from 1 to store.pool_size ({}); raise \
                     store.pool_size or lower {key}",
                    store.pool_size
                ));
            }
        }
        Ok(())
    }

    /// Checks what types alone cannot, key by key; the message names the key and what is
    /// allowed.
    pub(super) fn check_values(&self) -> Result<(), String> {
        let range = |key: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!("{key} is {value}: it must be from {min} to {max}"))
            }
        };
        let plugins = &self.plugins;
        range(
            "server.body_limit",
            self.server.body_limit as u64,
            1,
            1 << 30,
        )?;
        range(
            "server.header_read_timeout_secs",
            self.server.header_read_timeout_secs,
            1,
            3600,
        )?;
        range(
            "server.body_read_timeout_secs",
            self.server.body_read_timeout_secs,
            1,
            3600,
        )?;
        range(
            "server.write_timeout_secs",
            self.server.write_timeout_secs,
            1,
            3600,
        )?;
        range(
            "server.max_connections",
            self.server.max_connections as u64,
            1,
            1_000_000,
        )?;
        for origin in &self.server.cors_origins {
            if let Some(why) = crate::cors::invalid_origin(origin) {
                return Err(format!(
                    "server.cors_origins: `{origin}` is not an origin: {why}"
                ));
            }
        }
        range(
            "server.handover_timeout_secs",
            self.server.handover_timeout_secs,
            1,
            3600,
        )?;
        if plugins.workers > 1024 {
            return Err(format!(
                "plugins.workers is {}: it must be 0 (one thread per core, at least {}) or from 1 to 1024",
                plugins.workers,
                super::MIN_WORKERS
            ));
        }
        range("push.poll_ms", self.push.poll_ms, 10, 60_000)?;
        range(
            "push.retention_secs",
            self.push.retention_secs,
            60,
            365 * 86_400,
        )?;
        range(
            "push.backlog_max",
            u64::from(self.push.backlog_max),
            1,
            100_000,
        )?;
        let socket = &self.socket;
        range(
            "socket.max_sockets",
            socket.max_sockets as u64,
            1,
            1_000_000,
        )?;
        range(
            "socket.max_message_bytes",
            socket.max_message_bytes as u64,
            256,
            16 << 20,
        )?;
        range("socket.send_queue", socket.send_queue as u64, 1, 1 << 20)?;
        range(
            "socket.hello_timeout_secs",
            socket.hello_timeout_secs,
            1,
            3600,
        )?;
        range("socket.ping_secs", socket.ping_secs, 1, 3600)?;
        range(
            "socket.idle_timeout_secs",
            socket.idle_timeout_secs,
            socket.ping_secs + 1,
            86_400,
        )
        .map_err(|e| format!("{e} (more than socket.ping_secs, so a pong can come back)"))?;
        range(
            "socket.commands_per_sec",
            u64::from(socket.commands_per_sec),
            1,
            1_000_000,
        )?;
        range(
            "socket.command_burst",
            u64::from(socket.command_burst),
            1,
            1_000_000,
        )?;
        range("fleet.poll_ms", self.fleet.poll_ms, 10, 60_000)?;
        range("fleet.heartbeat_secs", self.fleet.heartbeat_secs, 1, 3600)?;
        range(
            "fleet.keep_releases",
            self.fleet.keep_releases as u64,
            2,
            1000,
        )?;
        range("fleet.watch_secs", self.fleet.watch_secs, 0, 7 * 86_400)?;
        range(
            "fleet.rollback_min_calls",
            self.fleet.rollback_min_calls,
            1,
            1 << 40,
        )?;
        let rate = self.fleet.rollback_failure_rate;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "fleet.rollback_failure_rate is {rate}: it must be from 0 to 1 (0.01 is 1 % of calls)"
            ));
        }
        range(
            "fleet.max_library_bytes",
            self.fleet.max_library_bytes,
            1 << 10,
            1 << 30,
        )?;
        range(
            "plugins.call_timeout_ms",
            plugins.call_timeout_ms,
            1,
            3_600_000,
        )?;
        for (module, ms) in &plugins.call_timeout_ms_per_module {
            range(
                &format!("plugins.call_timeout_ms_per_module.{module}"),
                *ms,
                1,
                3_600_000,
            )?;
        }
        range("plugins.max_stuck_calls", plugins.max_stuck_calls, 1, 1024)?;
        range(
            "plugins.init_timeout_ms",
            plugins.init_timeout_ms,
            1,
            3_600_000,
        )?;
        range(
            "plugins.max_reply_bytes",
            plugins.max_reply_bytes as u64,
            1024,
            1 << 30,
        )?;
        range(
            "session.ttl_secs",
            self.session.ttl_secs,
            1,
            366 * 24 * 3600,
        )?;
        range("session.recheck_secs", self.session.recheck_secs, 0, 3600)?;
        range("plugins.keep_versions", plugins.keep_versions as u64, 0, 16)?;
        range(
            "plugins.migration_check_max_players",
            plugins.migration_check_max_players,
            1,
            1 << 40,
        )?;
        range("store.pool_size", u64::from(self.store.pool_size), 1, 1000)?;
        range(
            "store.batch_readers",
            self.store.batch_readers.into(),
            1,
            1000,
        )?;
        range(
            "store.batch_writers",
            self.store.batch_writers.into(),
            1,
            1000,
        )?;
        range(
            "store.connect_timeout_ms",
            self.store.connect_timeout_ms,
            1,
            3_600_000,
        )?;
        range(
            "store.statement_timeout_ms",
            self.store.statement_timeout_ms,
            1,
            3_600_000,
        )?;
        self.database_url().map_err(|e| e.to_string())?;
        range(
            "plugins.drain_deadline_secs",
            plugins.drain_deadline_secs,
            1,
            86_400,
        )?;
        self.trust.check()?;
        self.log.check()
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    };
    toml::from_str::<Config>(&text).map_err(|e| invalid(describe_serde_error(&e.to_string())))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| invalid(e.to_string()))
}

/// The configuration `table` describes, checked key by key.
fn from_table(table: &toml::Table) -> Result<Config, String> {
    let config = Config::deserialize(toml::Value::Table(table.clone()))
        .map_err(|e| describe_serde_error(e.message()))?;
    config.check_values()?;
    Ok(config)
}

/// serde's messages name the unknown field and the expected ones; add where to look.
fn describe_serde_error(message: &str) -> String {
    if message.contains("unknown field") {
        format!("{message} (config/default.toml lists every key)")
    } else {
        message.to_owned()
    }
}

/// Deep-merges `layer` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(layer_table)) => {
                merge(base_table, layer_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
