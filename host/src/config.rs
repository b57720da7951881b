//! The host's configuration: its shape, its defaults, and how its sources are layered.
//!
//! Precedence, lowest first: built-in defaults (the same values as `config/default.toml`),
//! the profile file `config/<profile>.toml`, the `--config` file, the environment
//! (`GAME_HOST_*`, see [`env`]), then command-line flags (applied by `main.rs`). Each source is
//! checked as it is applied, so an unknown key or a bad value is reported with the source it
//! came from, the key, and what is allowed.

pub mod env;
mod load;
pub mod log;
pub mod trust;

pub use load::{ConfigError, Sources};

use crate::store::server::PoolSettings;
use crate::store::{DatabaseUrl, Durability};
pub use log::{LevelName, LineFormat, LogConfig, LogFileConfig, Rotation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
pub use trust::TrustConfig;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub paths: PathsConfig,
    pub store: StoreConfig,
    pub session: SessionConfig,
    pub plugins: PluginsConfig,
    /// Module releases shared by a fleet (`[fleet]`, with `plugins.source = "database"`).
    pub fleet: FleetConfig,
    /// The WebSocket channel, `GET /ws` (`[socket]`, see [`crate::websocket`]).
    pub socket: SocketConfig,
    /// Pushes from modules to players (`[push]`, see [`crate::push`]).
    pub push: PushConfig,
    pub log: LogConfig,
    /// Which libraries may be loaded at all (`[trust]`, see [`trust`]).
    pub trust: TrustConfig,
    pub admin: AdminConfig,
    /// Each module's own section (`[modules.mall]`), handed to that module as JSON.
    pub modules: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the client listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger ones get 413 and `ret: -4`.
    pub body_limit: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may wait for its next request, in seconds; then the connection is closed.
    pub header_read_timeout_secs: u64,
    /// How long a client may take to send a request's body, in seconds; then it gets
    /// `ret: -2` and the connection is closed.
    pub body_read_timeout_secs: u64,
    /// How long a reply may wait for a client that does not read it, in seconds; then the
    /// connection is closed.
    pub write_timeout_secs: u64,
    /// Client HTTP connections open at once, at most; past it, new ones are closed at once. A
    /// connection that becomes a socket counts under `socket.max_sockets` instead.
    pub max_connections: usize,
    /// Origins whose pages may call the API from a browser (CORS), or `"*"` for any; empty
    /// allows none (see [`crate::cors`]).
    pub cors_origins: Vec<String>,
    /// How long shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
    /// How long a successor (`SIGUSR2`) may take to load its modules and serve, in seconds.
    pub handover_timeout_secs: u64,
    /// This host's name among several on one database, in its logs, metrics and admin API;
    /// `""` is the machine's hostname.
    pub host_id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathsConfig {
    /// Where module libraries (`*.so`) are loaded from.
    pub plugins_dir: PathBuf,
    /// Where the database and the loader's shadow copies live.
    pub data_dir: PathBuf,
    /// Where log files are written.
    pub log_dir: PathBuf,
    /// Files the client listener also serves (GET and HEAD on any other path), such as the
    /// demo page and the client SDK (`client/` in the dev profile). Unset serves none.
    pub static_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which database: `""` (SQLite in `<data_dir>/game.db`), `sqlite://PATH`,
    /// `postgres://USER:PASSWORD@HOST/DB` or `mysql://…` (MariaDB and MySQL). Also
    /// `--database-url` and `GAME_HOST_DATABASE_URL`.
    pub url: String,
    /// Server databases: connections at most. Commands' reads are batched on
    /// `batch_readers` of them, and their plain writes on `batch_writers`.
    pub pool_size: u32,
    /// Server databases: how long to wait for a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Server databases: longest a statement may run (lock waits included), in milliseconds.
    pub statement_timeout_ms: u64,
    /// Server databases: whether commands' reads and writes go in batches, many in one
    /// statement or commit (where the server can: MariaDB 10.6+, MySQL 8.0.4+).
    pub batch_turns: bool,
    /// Server databases: batches of commands' reads sent at once, at most (each on a
    /// connection of the pool). More of them means smaller batches, which cost the database
    /// more per command.
    pub batch_readers: u32,
    /// Server databases: batches of commands' writes (or lone writes) applied at once, at
    /// most, each on a connection of the pool.
    pub batch_writers: u32,
    /// SQLite: what a committed command survives, `"normal"` (a killed process) or `"full"`
    /// (a power loss too, at a sync per commit).
    pub sqlite_synchronous: Durability,
    /// SQLite: players whose record and module data are kept in memory, at most, so that a
    /// command reads no database; 0 keeps none.
    pub sqlite_cache_players: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            pool_size: 16,
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
            batch_turns: true,
            batch_readers: 1,
            batch_writers: 1,
            sqlite_synchronous: Durability::Normal,
            sqlite_cache_players: crate::store::sqlite::DEFAULT_CACHE_PLAYERS,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// How long a login token stays valid, in seconds.
    pub ttl_secs: u64,
    /// How long a host trusts a session it has read before reading it again, in seconds; a
    /// logout through another host takes effect here within this time. 0 reads every time.
    pub recheck_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Threads that run module code (kept for the life of the host); 0 is one per core the
    /// host may use, at least [`MIN_WORKERS`] ([`PluginsConfig::worker_threads`]).
    pub workers: usize,
    /// How long a command may run before the client gets `ret: -7`, in milliseconds.
    pub call_timeout_ms: u64,
    /// `call_timeout_ms` for the modules named here (`mall = 2000`), in milliseconds.
    pub call_timeout_ms_per_module: BTreeMap<String, u64>,
    /// Calls past their deadline that one module version may have running at once; past
    /// it, its commands get `ret: -6` until calls return, and it is reported unhealthy.
    pub max_stuck_calls: u64,
    /// How long a module's init hook may run before the library is refused, in milliseconds.
    pub init_timeout_ms: u64,
    /// Largest reply a module may return (its data, player record and module data, each),
    /// in bytes; a larger one gets `ret: -5` and nothing is committed.
    pub max_reply_bytes: usize,
    /// Where the modules come from: the plugins directory (watched), or the releases
    /// published into the database (`game-host publish`), which the directory then caches.
    pub source: PluginsSource,
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
    /// Players whose saved data a swap between saved-data schemas checks at most; above it,
    /// a random sample of this many (the check's event says so).
    pub migration_check_max_players: u64,
}

/// Where a host takes its modules from (`plugins.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginsSource {
    /// The libraries in the plugins directory, swapped as files land (one host, `make run`).
    Directory,
    /// The releases published into the database: every host of a fleet runs what is desired
    /// there (`crate::fleet`); the plugins directory only caches them.
    Database,
}

/// `[fleet]`: how a host follows the releases published into the database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// How often the host asks the database whether a module's desired release changed, in
    /// milliseconds (one integer read).
    pub poll_ms: u64,
    /// How often the host writes its report (what it serves, last seen), in seconds.
    pub heartbeat_secs: u64,
    /// Releases kept per module in the database (the desired one and the one before it are
    /// always kept).
    pub keep_releases: usize,
    /// Largest library `publish` stores, in bytes. On MariaDB the server's
    /// `max_allowed_packet` must be larger.
    pub max_library_bytes: u64,
    /// How long a release made desired for every player (a publish, a promotion) is watched
    /// for failures after it, in seconds; a canary is watched as long as it runs.
    pub watch_secs: u64,
    /// Calls of a watched release, over the fleet, before its failures are judged.
    pub rollback_min_calls: u64,
    /// The share of a watched release's calls that may fail (panics, deadline overruns); above
    /// it, and above the release it replaced, the fleet rolls it back by itself.
    pub rollback_failure_rate: f64,
}

impl FleetConfig {
    /// What the store keeps, and how long a new release is watched.
    pub fn retention(&self) -> crate::store::fleet::Retention {
        crate::store::fleet::Retention {
            keep_releases: self.keep_releases,
            watch_ms: i64::try_from(self.watch_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        }
    }
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            poll_ms: 250,
            heartbeat_secs: 5,
            keep_releases: 5,
            max_library_bytes: 64 << 20,
            watch_secs: 300,
            rollback_min_calls: 100,
            rollback_failure_rate: 0.01,
        }
    }
}

/// `[socket]`: the limits of the WebSocket channel (docs/PROTOCOL.md, "The socket").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketConfig {
    /// Sockets open at once on this host; past it a new one is closed with 1013. A connection
    /// that becomes a socket leaves `server.max_connections`' count for this one.
    pub max_sockets: usize,
    /// Largest message a client may send, in bytes; a larger one closes its socket with 1009.
    pub max_message_bytes: usize,
    /// Messages waiting to be sent to one client; when a client that does not read lets it
    /// fill, its socket is closed with 4003 (so the host's memory stays bounded).
    pub send_queue: usize,
    /// Seconds a new socket may take to send its first message (the token); then 4002.
    pub hello_timeout_secs: u64,
    /// Seconds between the host's pings.
    pub ping_secs: u64,
    /// Seconds a socket may send nothing (pongs included) before it is closed with 4004.
    pub idle_timeout_secs: u64,
    /// Commands per second one socket may send, on average; one over it is answered -6.
    pub commands_per_sec: u32,
    /// Commands one socket may send at once above the average.
    pub command_burst: u32,
}

impl SocketConfig {
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_secs(self.hello_timeout_secs)
    }

    pub fn ping_every(&self) -> Duration {
        Duration::from_secs(self.ping_secs)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            max_sockets: 10_000,
            max_message_bytes: 64 << 10,
            send_queue: 256,
            hello_timeout_secs: 10,
            ping_secs: 20,
            idle_timeout_secs: 60,
            commands_per_sec: 20,
            command_burst: 40,
        }
    }
}

/// `[push]`: how pushes reach the hosts their players are connected to, and how long they are
/// kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// How often a host reads new pushes without being woken, in milliseconds: MariaDB has no
    /// notices, so this is how long another host's push may take to arrive there. With
    /// PostgreSQL's notices (and on SQLite, one host) it polls ten times less often.
    pub poll_ms: u64,
    /// How long a persistent push is kept for a player who is offline, in seconds.
    pub retention_secs: u64,
    /// Persistent pushes sent to a socket that resumes, at most (the newest).
    pub backlog_max: u32,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            poll_ms: 100,
            retention_secs: 7 * 86_400,
            backlog_max: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener (`""` turns it off); port 0 picks a free port.
    #[serde(with = "optional_text")]
    pub listen: Option<SocketAddr>,
    /// Bearer token the admin API requires; mandatory when `listen` is not loopback.
    /// Best set by `GAME_HOST_ADMIN_TOKEN`. `""` is none.
    #[serde(with = "optional_text")]
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

/// An optional value written as text, `""` for none (TOML has no null).
mod optional_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<S: Serializer, T: Display>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(value),
            None => serializer.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: Display,
    {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            body_limit: 1024 * 1024,
            shutdown_grace_secs: 10,
            handover_timeout_secs: 60,
            header_read_timeout_secs: 30,
            body_read_timeout_secs: 30,
            write_timeout_secs: 30,
            max_connections: 10_000,
            cors_origins: Vec::new(),
            host_id: String::new(),
        }
    }
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            plugins_dir: "var/plugins".into(),
            data_dir: "var/data".into(),
            log_dir: "log".into(),
            static_dir: None,
        }
    }
}

impl SessionConfig {
    /// `ttl_secs` in milliseconds, as the host clock counts.
    pub fn ttl_ms(&self) -> i64 {
        secs_to_ms(self.ttl_secs)
    }

    /// `recheck_secs` in milliseconds, as the host clock counts.
    pub fn recheck_ms(&self) -> i64 {
        secs_to_ms(self.recheck_secs)
    }
}

/// Seconds as clock milliseconds, saturating (checked keys never come near the limit).
fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl_secs: 7 * 24 * 3600,
            recheck_secs: 5,
        }
    }
}

/// Module threads at the least when `plugins.workers` is 0: with one, a single slow call
/// would hold up every module's.
pub const MIN_WORKERS: usize = 2;

impl PluginsConfig {
    /// The module threads to start: `workers`, or for 0 one per core this process may use
    /// (std's `available_parallelism`, which follows CPU affinity and cgroup quotas), at least
    /// [`MIN_WORKERS`].
    ///
    /// Why one per core: module calls are CPU work (a module has no I/O of its own), so
    /// threads beyond the cores add no throughput, only switching. An idle worker spins and
    /// yields before it sleeps (crossbeam-channel's receive), so each extra one takes CPU from
    /// the reactor and from the other processes of the machine. On a 2-core machine, 2
    /// threads against 8 under wrk's `read`, alternating runs: p99 4.6–4.8 ms against
    /// 5.3–5.8, and less CPU a request. A hung call holds its thread either way; under load,
    /// calls to a hung module take every thread within its first deadline whatever their
    /// number, and spares take their place from then on.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism()
            .map_or(MIN_WORKERS, usize::from)
            .max(MIN_WORKERS)
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            workers: 0,
            call_timeout_ms: 5000,
            call_timeout_ms_per_module: BTreeMap::new(),
            max_stuck_calls: 4,
            max_reply_bytes: 1 << 20,
            init_timeout_ms: 30_000,
            source: PluginsSource::Directory,
            watch: true,
            debounce_ms: 300,
            drain_deadline_secs: 30,
            keep_versions: 3,
            max_leaked_versions: 32,
            migration_check_max_players: 100_000,
        }
    }
}

impl Config {
    /// The configuration as TOML, secrets replaced: what `game-host config` prints.
    pub fn to_toml_redacted(&self) -> String {
        let mut shown = self.clone();
        if shown.admin.token.is_some() {
            shown.admin.token = Some("<redacted>".into());
        }
        if !shown.store.url.is_empty() {
            shown.store.url = crate::store::url::redact_text(&shown.store.url);
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The database `store.url` names; the error names the key and what is accepted.
    pub fn database_url(&self) -> Result<DatabaseUrl, ConfigError> {
        Ok(DatabaseUrl::parse(&self.store.url, &self.paths.data_dir)?)
    }

    /// How a server store connects.
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            size: self.store.pool_size,
            connect_timeout: Duration::from_millis(self.store.connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.store.statement_timeout_ms),
            batch_turns: self.store.batch_turns,
            batch_readers: self.store.batch_readers,
            batch_writers: self.store.batch_writers,
        }
    }

    /// How the embedded store runs.
    pub fn sqlite_options(&self) -> crate::store::SqliteOptions {
        crate::store::SqliteOptions {
            durability: self.store.sqlite_synchronous,
            cache_players: self.store.sqlite_cache_players,
        }
    }

    /// `server.host_id`, or the machine's hostname if it is unset (`Host::start` resolves it
    /// once, into the config the host runs with).
    pub fn host_id(&self) -> String {
        if !self.server.host_id.is_empty() {
            return self.server.host_id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "game-host".into())
    }

    pub fn drain_deadline(&self) -> Duration {
        Duration::from_secs(self.plugins.drain_deadline_secs)
    }

    /// How long a call into `module` may run: its own setting, or `plugins.call_timeout_ms`.
    pub fn call_timeout(&self, module: &str) -> Duration {
        Duration::from_millis(self.call_timeout_ms(module))
    }

    /// The setting [`Config::call_timeout`] comes from, for messages that tell what to change.
    pub fn call_timeout_setting(&self, module: &str) -> String {
        if self.plugins.call_timeout_ms_per_module.contains_key(module) {
            format!("plugins.call_timeout_ms_per_module.{module}")
        } else {
            "plugins.call_timeout_ms".to_owned()
        }
    }

    pub fn call_timeout_ms(&self, module: &str) -> u64 {
        let plugins = &self.plugins;
        plugins
            .call_timeout_ms_per_module
            .get(module)
            .copied()
            .unwrap_or(plugins.call_timeout_ms)
    }

    /// The module's config section as JSON text, `{}` if it has none.
    pub fn module_config_json(&self, module: &str) -> String {
        self.modules
            .get(module)
            .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string)
    }
}

/// Reads one file as a TOML table, checked alone first: parsing the text gives errors that
/// show the line and the key.
#[cfg(test)]
mod tests;
