//! The saved-data check of a swap between saved-data schemas: before a version whose schema
//! differs from the serving version's may serve, its migrations are run over the module's
//! stored data, and the version is refused if any player's data fails.
//!
//! For each player's stored data, of schema `s`, with `i` the incoming version's schema:
//! - `s <= i`: the incoming version takes it up to `i` and back down to `s`, through its root
//!   module's `migrate`; both must succeed and give back the stored data (keys it adds with
//!   empty values, `#[serde(default)]` fields, aside). A migration that fails on or alters
//!   data is caught before the version writes any player's data.
//! - `s > i` (a rollback, or a swap to an older library): the data must go down to `i` with
//!   the loaded version of the highest schema (the serving one, or the module's migrator),
//!   which is what the request path does for that player once the incoming version serves
//!   ([`super::migrator`]).
//!
//! It reads the store a page at a time, locks no player and writes nothing, so the serving
//! version serves throughout; it sees the data as it is while it runs (what the serving
//! version writes afterwards is not checked). Each player's steps run as one job on a module
//! thread under the module's call deadline, like a command. Above
//! `plugins.migration_check_max_players` players it checks a random sample of that many:
//! player ids are random, so the players after a random id are a uniform sample. Its progress
//! and outcome are kept per module for the admin API ([`DataChecks::reports`]).

use super::executor::{Executor, RunError};
use super::version::{ModuleVersion, Refused};
use crate::store::{ModuleData, ModuleDataPages, Store, StoreError};
use plugin_api::abi::SCHEMA_KEY;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest stored data or reason quoted in a refusal.
const QUOTED: usize = 200;

/// The schema of a player's stored data: its stamp, or 1 without one.
pub fn stored_schema(data: &ModuleData) -> Result<u32, String> {
    match data.get(SCHEMA_KEY) {
        None => Ok(1),
        Some(stamp) => stamp
            .as_u64()
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s >= 1)
            .ok_or_else(|| format!("its schema `{SCHEMA_KEY}` is {stamp}, not a schema version")),
    }
}

/// The state of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    Running,
    Passed,
    /// Some player's data failed: the version was refused.
    Failed,
    /// The check could not finish (the database, a stuck step): the version was refused.
    Aborted,
}

/// A check's progress and outcome, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DataCheckReport {
    pub module: String,
    /// The version being loaded, and the file it comes from.
    pub version: String,
    pub file: String,
    /// The serving version's schema, and the loaded version's.
    pub from_schema: u32,
    pub to_schema: u32,
    pub state: CheckState,
    /// Players with stored data of the module when the check began.
    pub stored_players: u64,
    /// Players the check reads: all of them, or a sample of `plugins.migration_check_max_players`.
    pub players: u64,
    pub sampled: bool,
    pub checked: u64,
    pub failed: u64,
    /// The first player whose data failed, and why.
    pub first_failure: Option<Failure>,
    /// Why the check could not finish, if it did not.
    pub aborted: Option<String>,
    pub started_at_ms: u64,
    pub finished_at_ms: Option<u64>,
}

impl DataCheckReport {
    /// What a message adds when the check read a sample, not every player: ` (a random sample
    /// of N of M players: plugins.migration_check_max_players)`, or nothing.
    pub fn sample_note(&self) -> String {
        match self.sampled {
            true => format!(
                " (a random sample of {} of {} players: plugins.migration_check_max_players)",
                self.players, self.stored_players
            ),
            false => String::new(),
        }
    }

    /// The report of a check of `module`'s `version` (from `file`) that starts now, from the
    /// serving schema to the incoming one.
    pub fn starting(
        module: &str,
        version: &str,
        file: &str,
        (from_schema, to_schema): (u32, u32),
    ) -> DataCheckReport {
        DataCheckReport {
            module: module.to_owned(),
            version: version.to_owned(),
            file: file.to_owned(),
            from_schema,
            to_schema,
            state: CheckState::Running,
            stored_players: 0,
            players: 0,
            sampled: false,
            checked: 0,
            failed: 0,
            first_failure: None,
            aborted: None,
            started_at_ms: now_ms(),
            finished_at_ms: None,
        }
    }
}

/// One player's failure.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub player_id: String,
    pub reason: String,
}

/// The checks: the store they read, and the last check of each module.
pub struct DataChecks {
    /// `None` in `game-host check` without a database: nothing to check against.
    store: Option<Arc<dyn Store>>,
    max_players: u64,
    /// A std `Mutex`: held to update or copy a report, never across `.await`.
    reports: Mutex<BTreeMap<String, DataCheckReport>>,
}

/// The swap a check is for.
pub struct Swap<'a> {
    /// The version that would serve; it checks the data at or below its own schema.
    pub incoming: &'a Arc<ModuleVersion>,
    /// The schema of the data the serving version writes (the incoming one's own when there
    /// is none: `game-host check`).
    pub serving_schema: u32,
    /// The loaded version of the highest schema above the incoming one's, if any (the serving
    /// version, or the module's migrator): it downgrades data newer than the incoming one reads.
    pub newer: Option<Arc<ModuleVersion>>,
    /// How long one player's steps may take (the module's call deadline), and the setting
    /// that says so.
    pub deadline: Duration,
    pub deadline_setting: String,
}

impl DataChecks {
    pub fn new(store: Option<Arc<dyn Store>>, max_players: u64) -> DataChecks {
        DataChecks {
            store,
            max_players,
            reports: Mutex::new(BTreeMap::new()),
        }
    }

    /// The last check of each module, by module name.
    pub fn reports(&self) -> Vec<DataCheckReport> {
        self.lock().values().cloned().collect()
    }

    /// Runs the check of `swap` over the module's stored data on `executor`, and returns its
    /// report (`None` without a store: nothing to check); `Err` refuses the incoming version
    /// with the count of players that failed and one of them.
    pub async fn run(
        &self,
        executor: &Executor,
        swap: Swap<'_>,
    ) -> Result<Option<DataCheckReport>, Refused> {
        let Some(store) = self.store.clone() else {
            return Ok(None);
        };
        let meta = &swap.incoming.meta;
        let module = meta.name.clone();
        let report = DataCheckReport::starting(
            &module,
            &meta.version,
            &meta.file.display().to_string(),
            (swap.serving_schema, meta.schema),
        );
        self.lock().insert(module.clone(), report);
        let stuck = Arc::new(AtomicU64::new(0));
        let (deadline, deadline_setting) = (swap.deadline, swap.deadline_setting.as_str());
        let check_one = |player_id: String, stored: String| {
            let (incoming, newer) = (swap.incoming.clone(), swap.newer.clone());
            let job = move || round_trip(&incoming, newer.as_deref(), &stored);
            let stuck = stuck.clone();
            async move {
                match executor.run_within(deadline, &stuck, 1, job).await {
                    Ok(verdict) => Ok(verdict),
                    Err(RunError::Closed(_)) => Err("the host is shutting down".to_owned()),
                    Err(RunError::Overdue | RunError::TooManyStuck(_)) => Err(format!(
                        "the migration steps of player {player_id} did not return within {} ms ({})",
                        deadline.as_millis(),
                        deadline_setting
                    )),
                }
            }
        };
        let outcome = self
            .scan(store.as_ref(), &module, random_id(), check_one)
            .await;
        let report = self.update(&module, |report| {
            report.finished_at_ms = Some(now_ms());
            report.state = match &outcome {
                Ok(()) if report.failed == 0 => CheckState::Passed,
                Ok(()) => CheckState::Failed,
                Err(why) => {
                    report.aborted = Some(why.clone());
                    CheckState::Aborted
                }
            };
        });
        match report.state {
            CheckState::Passed | CheckState::Running => Ok(Some(report)),
            CheckState::Failed | CheckState::Aborted => Err(Refused::SavedData {
                file: meta.file.clone(),
                name: module,
                problem: refusal_text(&report),
            }),
        }
    }

    /// Reads the module's stored data a page at a time and has `check_one` judge each
    /// player's: `Ok(verdict)` counts it, `Err` ends the check (a step stuck, the host
    /// stopping), as does a database that fails. A sample starts after `sample_start` and
    /// wraps around once.
    async fn scan<F, Fut>(
        &self,
        store: &dyn Store,
        module: &str,
        sample_start: String,
        mut check_one: F,
    ) -> Result<(), String>
    where
        F: FnMut(String, String) -> Fut,
        Fut: Future<Output = Result<Result<(), String>, String>>,
    {
        let unreadable = |e: StoreError| {
            format!(
                "the stored data could not be read: {e}; once the database answers, reload the module (POST /admin/modules/{module}/reload)"
            )
        };
        let stored = store.module_data_count(module).await.map_err(unreadable)?;
        let players = stored.min(self.max_players);
        let sampled = players < stored;
        self.update(module, |report| {
            (report.stored_players, report.players, report.sampled) = (stored, players, sampled);
        });
        let start = if sampled { sample_start } else { String::new() };
        let mut pages = ModuleDataPages::after(store, module, start.clone());
        let (mut wrapped, mut checked) = (false, 0u64);
        loop {
            let Some(page) = pages.next().await.map_err(unreadable)? else {
                if wrapped || !sampled {
                    return Ok(()); // every stored player was read
                }
                pages = ModuleDataPages::after(store, module, String::new());
                wrapped = true;
                continue;
            };
            for (player_id, data) in page {
                // A full scan reads to the end: players added meanwhile do not cut it short.
                if sampled && (checked == players || (wrapped && player_id > start)) {
                    return Ok(());
                }
                checked += 1;
                let verdict = check_one(player_id.clone(), data).await?;
                self.update(module, |report| {
                    report.checked = checked;
                    if let Err(reason) = verdict {
                        report.failed += 1;
                        report
                            .first_failure
                            .get_or_insert(Failure { player_id, reason });
                    }
                });
            }
        }
    }

    /// Changes the module's report under the lock and returns a copy of it.
    fn update(&self, module: &str, change: impl FnOnce(&mut DataCheckReport)) -> DataCheckReport {
        let mut reports = self.lock();
        let report = reports
            .get_mut(module)
            .expect("a check's report is made before it runs");
        change(report);
        report.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, DataCheckReport>> {
        // A panic while holding it leaves whole reports behind: still worth showing.
        self.reports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One player's stored data through the steps the swap needs (the module's docs); runs module
/// code.
fn round_trip(
    incoming: &ModuleVersion,
    newer: Option<&ModuleVersion>,
    stored: &str,
) -> Result<(), String> {
    let as_stored = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut data)) => {
            let schema = stored_schema(&data)?;
            data.remove(SCHEMA_KEY);
            Ok((schema, data))
        }
        _ => Err(format!("it is not a JSON object: {}", quoted(text))),
    };
    let (schema, data) = as_stored(stored)?;
    if data.is_empty() {
        return Ok(()); // nothing saved: of every schema
    }
    let top = incoming.meta.schema;
    if schema > top {
        let Some(newer) = newer.filter(|v| v.meta.schema >= schema) else {
            let most = newer.map_or(top, |v| v.meta.schema);
            return Err(format!(
                "it is of schema {schema}, newer than any version loaded (schema {most} at most)"
            ));
        };
        return newer
            .migrate(stored, top)
            .map(drop)
            .map_err(|e| format!("downgrading it from schema {schema} to {top}: {e}"));
    }
    let up = incoming
        .migrate(stored, top)
        .map_err(|e| format!("upgrading it from schema {schema} to {top}: {e}"))?;
    let back = incoming
        .migrate(&up, schema)
        .map_err(|e| format!("downgrading it from schema {top} back to {schema}: {e}"))?;
    if !comes_back(&Value::Object(data), &Value::Object(as_stored(&back)?.1)) {
        return Err(format!(
            "it does not come back the same from schema {top} to {schema}: stored {}, back {}",
            quoted(stored),
            quoted(&back)
        ));
    }
    Ok(())
}

/// Whether `back` holds everything `stored` holds: each key with a value that comes back,
/// numbers equal by value (`1` and `1.0`), and nothing else but keys with empty values (those
/// a `#[serde(default)]` field or an `Option` adds: null, 0, false, "", [], {}).
pub fn comes_back(stored: &Value, back: &Value) -> bool {
    match (stored, back) {
        (Value::Object(stored), Value::Object(back)) => {
            stored
                .iter()
                .all(|(key, value)| back.get(key).is_some_and(|b| comes_back(value, b)))
                && back
                    .iter()
                    .all(|(key, value)| stored.contains_key(key) || is_empty(value))
        }
        (Value::Array(stored), Value::Array(back)) => {
            stored.len() == back.len() && stored.iter().zip(back).all(|(s, b)| comes_back(s, b))
        }
        (Value::Number(stored), Value::Number(back)) => {
            stored == back || (stored.as_f64().is_some() && stored.as_f64() == back.as_f64())
        }
        _ => stored == back,
    }
}

/// A value a default adds: null, 0, false, "", [], {}.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// What a refusal says of a check that did not pass.
fn refusal_text(report: &DataCheckReport) -> String {
    let of = if report.sampled {
        format!(
            "a sample of {} of {}",
            report.players, report.stored_players
        )
    } else {
        report.players.to_string()
    };
    let between = format!(
        "schema {} to {}",
        report.from_schema.min(report.to_schema),
        report.from_schema.max(report.to_schema)
    );
    let example = report.first_failure.as_ref().map_or(String::new(), |f| {
        format!("player {}: {}", f.player_id, quoted(&f.reason))
    });
    match (&report.state, &report.aborted) {
        (CheckState::Aborted, Some(why)) => format!(
            "the check of its saved-data migrations ({between}) could not finish after {} of {of} players: {why}",
            report.checked
        ),
        _ => format!(
            "its saved-data migrations ({between}) fail on the stored data of {} of {of} players checked, for example {example}: fix the migration (docs/modules.md, \"Saved data that changes shape\"), or the player's data, then ship it again or reload the module",
            report.failed
        ),
    }
}

/// `text`, cut to [`QUOTED`] bytes (on a character boundary).
fn quoted(text: &str) -> String {
    if text.len() <= QUOTED {
        return text.to_owned();
    }
    let mut end = QUOTED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A random player id (32 lowercase hex digits, as [`crate::session::new_player_id`] makes).
fn random_id() -> String {
    crate::session::new_player_id()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
