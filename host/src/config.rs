//! The host's configuration: its shape, its defaults, and how files are layered.
//!
//! Precedence, lowest first: built-in defaults (the same values as `config/default.toml`),
//! the profile file `config/<profile>.toml`, the `--config` file, then command-line flags
//! (applied by `main.rs`). Every file is checked on its own, so an unknown key or a bad value
//! is reported with the file it came from.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub paths: PathsConfig,
    pub session: SessionConfig,
    pub plugins: PluginsConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    /// Each module's own section (`[modules.mall]`), handed to that module as JSON.
    pub modules: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the client listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413 and `ret: -4`.
    pub body_limit: usize,
    /// How long shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathsConfig {
    /// Where module libraries (`*.so`) are loaded from.
    pub plugins_dir: PathBuf,
    /// Where the database and the loader's shadow copies live.
    pub data_dir: PathBuf,
    /// Where log files are written.
    pub log_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// How long a login token stays valid, in seconds.
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Threads that run module code (kept for the life of the host).
    pub workers: usize,
    /// How long a command may run before the client gets `ret: -7`, in milliseconds.
    pub call_timeout_ms: u64,
    /// Watch the plugins directory and reload libraries that change.
    pub watch: bool,
    /// How long a library file must be quiet before it is loaded, in milliseconds.
    pub debounce_ms: u64,
    /// After a swap, how long the old version may have calls running before it is reported
    /// stuck, in seconds. It is never unloaded while a call runs.
    pub drain_deadline_secs: u64,
    /// Previous versions kept per module for rollback.
    pub keep_versions: usize,
    /// Versions that did not leave memory before reloads are refused (restart to reclaim).
    pub max_leaked_versions: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener (`""` turns it off); port 0 picks a free port.
    #[serde(deserialize_with = "optional_address")]
    pub listen: Option<SocketAddr>,
    /// Bearer token the admin API requires; mandatory when `listen` is not loopback.
    /// Also set by `GAME_HOST_ADMIN_TOKEN`.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8001))),
            token: None,
        }
    }
}

/// An address, or `""` for none.
fn optional_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Lowest level written to stderr: `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            body_limit: 1024 * 1024,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            plugins_dir: "var/plugins".into(),
            data_dir: "var/data".into(),
            log_dir: "log".into(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl_secs: 7 * 24 * 3600,
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            workers: 8,
            call_timeout_ms: 5000,
            watch: true,
            debounce_ms: 300,
            drain_deadline_secs: 30,
            keep_versions: 3,
            max_leaked_versions: 32,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

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
    #[error("unknown profile `{profile}`: no file {path} (profiles are the files in config/)")]
    UnknownProfile { profile: String, path: PathBuf },
    #[error("invalid config: {0}")]
    Value(String),
}

impl Config {
    /// Reads `config_dir/<profile>.toml` (if a profile is named), then `file` on top of it.
    pub fn load(
        config_dir: &Path,
        profile: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut merged = toml::Table::new();
        if let Some(profile) = profile {
            let path = config_dir.join(format!("{profile}.toml"));
            if !path.is_file() {
                return Err(ConfigError::UnknownProfile {
                    profile: profile.to_owned(),
                    path,
                });
            }
            merge(&mut merged, read_layer(&path)?);
        }
        if let Some(path) = file {
            merge(&mut merged, read_layer(path)?);
        }
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Value(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: &str| Err(ConfigError::Value(msg.to_owned()));
        if self.server.body_limit == 0 {
            return bad("server.body_limit must be at least 1 byte");
        }
        if self.plugins.workers == 0 || self.plugins.workers > 1024 {
            return bad("plugins.workers must be from 1 to 1024");
        }
        if self.plugins.call_timeout_ms == 0 {
            return bad("plugins.call_timeout_ms must be at least 1");
        }
        if self.session.ttl_secs == 0 {
            return bad("session.ttl_secs must be at least 1");
        }
        if let Some(listen) = self.admin.listen {
            if !listen.ip().is_loopback() && self.admin.token.as_deref().is_none_or(str::is_empty) {
                return bad(&format!(
                    "admin.listen is {listen}, off loopback: set admin.token (or GAME_HOST_ADMIN_TOKEN), or listen on 127.0.0.1"
                ));
            }
        }
        if self.plugins.keep_versions > 16 {
            return bad("plugins.keep_versions must be at most 16");
        }
        if self.plugins.drain_deadline_secs == 0 {
            return bad("plugins.drain_deadline_secs must be at least 1");
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            return bad("log.level must be one of error, warn, info, debug, trace");
        }
        Ok(())
    }

    pub fn drain_deadline(&self) -> Duration {
        Duration::from_secs(self.plugins.drain_deadline_secs)
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.plugins.call_timeout_ms)
    }

    /// The module's config section as JSON text, `{}` if it has none.
    pub fn module_config_json(&self, module: &str) -> String {
        self.modules
            .get(module)
            .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string)
    }
}

/// Reads one file and checks it alone, so that errors name the file they are in.
fn read_layer(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    Config::deserialize(toml::Value::Table(table.clone()))
        .map_err(|e| invalid(e.message().to_owned()))?;
    Ok(table)
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

#[cfg(test)]
mod tests;
