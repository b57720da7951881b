//! The fleet path: one module update reaches every host that shares a database.
//!
//! The database is the one source of truth, and each host decides only for itself:
//! - [`publish`] (`game-host publish FILE…`) checks a library as `game-host check` does, then
//!   stores it with its signature and data tables as a release, and makes it the module's
//!   desired release, in one transaction ([`crate::store::fleet`]);
//! - [`follow`] runs on every host with `plugins.source = "database"`: it polls the one change
//!   counter, and for each module whose desired release is not what it serves, writes the
//!   release into its plugins directory (a cache) and loads it through the registry's one
//!   load path, exactly as a file that landed there. A release the host refuses leaves what
//!   serves in place and is reported with its reason; the other hosts go on.
//! - A canary (`publish --canary PERCENT`) serves that share of the players, chosen by a hash
//!   of their id, beside the release the others run; `promote` makes it every player's, and
//!   `rollback` stops it ([`crate::store::fleet::decide`] holds the rules).
//! - Each host writes what it serves and refused, with each version's calls and failures,
//!   into `fleet_hosts`; the admin API's `GET /admin/fleet` shows every host and every
//!   module's desired releases. While a release is watched, every host judges the fleet's
//!   figures ([`watch`]) and rolls a failing release back for the whole fleet.
//!
//! A host that cannot reach the database keeps serving what it has, and catches up when it
//! can; a host that was down catches up when it starts.

pub mod cache;
pub mod follow;
pub mod publish;
pub mod watch;

use serde::{Deserialize, Serialize};

/// What a host reports of one module: the release it serves, its canary, each loaded
/// version's figures, and the last release it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleReport {
    pub module: String,
    /// The identity of the version serving (its library's sha256, and its tables').
    pub serving: Option<String>,
    /// The version the module declares, of what serves.
    pub version: Option<String>,
    /// The identity of the canary serving beside it, and the share of players it serves.
    #[serde(default)]
    pub canary: Option<String>,
    #[serde(default)]
    pub canary_percent: u8,
    /// Calls and failures of each loaded version on this host, since it loaded here.
    #[serde(default)]
    pub counts: Vec<ReleaseCounts>,
    /// The `changed_at_ms` of the module's desired row this host had read when it reported:
    /// the safety net counts only reports of hosts that follow the row it judges.
    #[serde(default)]
    pub desired_at_ms: i64,
    /// A desired release this host refused, and why (what serves stays).
    pub refused: Option<Refusal>,
}

/// One version's calls and failures (panics, deadline overruns) on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseCounts {
    pub release: String,
    pub calls: u64,
    pub failures: u64,
}

/// A release a host would not load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub release: String,
    pub reason: String,
}
