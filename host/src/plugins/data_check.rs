//! The saved-data check of a swap between saved-data schemas: before a version whose schema
//! differs from the serving version's may serve, the migrations between the two schemas are
//! run over the module's stored data, and the version is refused if any player's data fails.
//!
//! The check runs with whichever of the two versions has the higher schema (the `migrator`:
//! only it knows the migrations between them), through its root module's `migrate`. For each
//! player's stored data, of schema `s`:
//! - up to the migrator's schema and back down to `s`, which must succeed and give back the
//!   stored data unchanged (a migration that loses or alters data on the way up is caught
//!   here, before any player's data is written by the new version);
//! - when the other version's schema is lower than `s` (a rollback, or a swap to an older
//!   library), down to that schema too, which must succeed: it is what the request path does
//!   for that player once the older version serves ([`super::migrator`]).
//!
//! It reads the store a page at a time, locks no player and writes nothing, so the serving
//! version serves throughout; each player's steps run as one job on a module thread under the
//! module's call deadline, like a command. Above `plugins.migration_check_max_players` players
//! it checks a random sample of that many: player ids are random, so the players after a
//! random id are a uniform sample. Its progress and outcome are kept per module for the admin
//! API ([`DataChecks::reports`]).

use super::executor::{Executor, RunError};
use super::version::{ModuleVersion, Refused};
use crate::store::{ModuleData, Store};
use plugin_api::abi::SCHEMA_KEY;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Players read from the store at a time.
const PAGE: u32 = 256;
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
    /// The first player whose data failed, and why; or why the check could not finish.
    pub first_failure: Option<Failure>,
    pub started_at_ms: u64,
    pub finished_at_ms: Option<u64>,
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
    /// The version that would serve.
    pub incoming: &'a ModuleVersion,
    /// The schema of the data the serving version writes (the incoming one's own for a first
    /// load).
    pub serving_schema: u32,
    /// Of the two versions, the one with the higher schema: it runs every step.
    pub migrator: Arc<ModuleVersion>,
    /// How long one player's steps may take (the module's call deadline).
    pub deadline: Duration,
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

    /// Runs the check of `swap` over the module's stored data on `executor`; `Err` refuses the
    /// incoming version with the count of players that failed and one of them.
    pub async fn run(&self, executor: &Executor, swap: Swap<'_>) -> Result<(), Refused> {
        let Some(store) = self.store.clone() else {
            return Ok(());
        };
        let meta = &swap.incoming.meta;
        let module = meta.name.clone();
        self.lock().insert(
            module.clone(),
            DataCheckReport {
                module: module.clone(),
                version: meta.version.clone(),
                file: meta.file.display().to_string(),
                from_schema: swap.serving_schema,
                to_schema: meta.schema,
                state: CheckState::Running,
                stored_players: 0,
                players: 0,
                sampled: false,
                checked: 0,
                failed: 0,
                first_failure: None,
                started_at_ms: now_ms(),
                finished_at_ms: None,
            },
        );
        let lower = swap.serving_schema.min(meta.schema);
        let outcome = self
            .scan(store.as_ref(), executor, &swap, lower, &module)
            .await;
        let report = self.update(&module, |report| {
            report.finished_at_ms = Some(now_ms());
            match &outcome {
                Ok(()) if report.failed == 0 => report.state = CheckState::Passed,
                Ok(()) => report.state = CheckState::Failed,
                Err(why) => {
                    report.state = CheckState::Aborted;
                    report.first_failure.get_or_insert_with(|| why.clone());
                }
            }
        });
        match report.state {
            CheckState::Passed | CheckState::Running => Ok(()),
            CheckState::Failed | CheckState::Aborted => Err(Refused::SavedData {
                file: meta.file.clone(),
                name: module,
                problem: refusal_text(&report),
            }),
        }
    }

    /// Reads the module's stored data a page at a time and checks each player's; `Err` when
    /// the check cannot go on (the database failed, a step is stuck).
    async fn scan(
        &self,
        store: &dyn Store,
        executor: &Executor,
        swap: &Swap<'_>,
        lower: u32,
        module: &str,
    ) -> Result<(), Failure> {
        let unreadable = |e: crate::store::StoreError| Failure {
            player_id: String::new(),
            reason: format!(
                "the stored data could not be read: {e}; try again once the database answers"
            ),
        };
        let stored = store.module_data_count(module).await.map_err(unreadable)?;
        let players = stored.min(self.max_players);
        let sampled = players < stored;
        // A sample starts after a random id (ids are random) and wraps around once.
        let start = if sampled { random_id() } else { String::new() };
        self.update(module, |report| {
            (report.stored_players, report.players, report.sampled) = (stored, players, sampled);
        });
        let stuck = Arc::new(AtomicU64::new(0));
        let (mut after, mut wrapped, mut checked) = (start.clone(), false, 0u64);
        while checked < players {
            let page = store
                .module_data_page(module, &after, PAGE)
                .await
                .map_err(unreadable)?;
            let Some((last, _)) = page.last() else {
                if wrapped || start.is_empty() {
                    break; // every stored player was read
                }
                (after, wrapped) = (String::new(), true);
                continue;
            };
            after = last.clone();
            for (player_id, stored) in page {
                if checked == players || (wrapped && player_id > start) {
                    return Ok(());
                }
                checked += 1;
                let migrator = swap.migrator.clone();
                let job = move || round_trip(&migrator, &stored, lower);
                let verdict = match executor.run_within(swap.deadline, &stuck, 1, job).await {
                    Ok(verdict) => verdict,
                    Err(RunError::Closed(_)) => {
                        return Err(Failure {
                            player_id,
                            reason: "the host is shutting down".into(),
                        })
                    }
                    Err(RunError::Overdue | RunError::TooManyStuck(_)) => {
                        return Err(Failure {
                            player_id,
                            reason: format!(
                                "a migration step did not return within {} ms (the module's call deadline)",
                                swap.deadline.as_millis()
                            ),
                        })
                    }
                };
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
        Ok(())
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

/// One player's stored data through `migrator`'s steps (the module's docs); runs module code.
fn round_trip(migrator: &ModuleVersion, stored: &str, lower: u32) -> Result<(), String> {
    let as_stored = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut data)) => {
            let schema = stored_schema(&data)?;
            data.remove(SCHEMA_KEY);
            Ok((schema, data))
        }
        _ => Err(format!("it is not a JSON object: {}", quoted(text))),
    };
    let (schema, data) = as_stored(stored)?;
    let top = migrator.meta.schema;
    if data.is_empty() {
        return Ok(()); // nothing saved: of every schema
    }
    if schema > top {
        return Err(format!(
            "it is of schema {schema}, newer than both versions (schema {top} at most)"
        ));
    }
    let up = migrator
        .migrate(stored, top)
        .map_err(|e| format!("upgrading it from schema {schema} to {top}: {e}"))?;
    let back = migrator
        .migrate(&up, schema)
        .map_err(|e| format!("downgrading it from schema {top} back to {schema}: {e}"))?;
    if as_stored(&back)?.1 != data {
        return Err(format!(
            "it does not come back the same from schema {top} to {schema}: stored {}, back {}",
            quoted(stored),
            quoted(&back)
        ));
    }
    if lower < schema {
        migrator
            .migrate(&up, lower)
            .map_err(|e| format!("downgrading it from schema {top} to {lower}: {e}"))?;
    }
    Ok(())
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
        if f.player_id.is_empty() {
            f.reason.clone()
        } else {
            format!("player {}: {}", f.player_id, quoted(&f.reason))
        }
    });
    match report.state {
        CheckState::Aborted => format!(
            "the check of its saved-data migrations ({between}) could not finish after {} of {of} players: {example}",
            report.checked
        ),
        _ => format!(
            "its saved-data migrations ({between}) fail on the stored data of {} of {of} players checked, for example {example}: fix the migration (docs/modules.md, \"Saved data that changes shape\")",
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
