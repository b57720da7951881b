//! The fleet's part of the store: module releases published into the shared database, which
//! release each module should run ("desired"), and what each host reports it serves.
//!
//! The database is the fleet's one source of truth (`crate::fleet`): `game-host publish` writes
//! a release and makes it desired in one transaction, with its audit row; every host polls one
//! change counter and brings itself to what is desired. Every store implements it, SQLite too:
//! a single host is a fleet of one.

use super::{AuditNote, StoreError};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};

/// A module release as published: the library, its signature, and its data tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The version's identity (`plugins::version::identity`): the library's sha256, and its
    /// tables' if it has any.
    pub id: String,
    pub module: String,
    /// The version the module declares.
    pub version: String,
    /// The library, zlib-compressed ([`pack`], [`unpack`]).
    pub library_zlib: Vec<u8>,
    /// The `.sig` beside the library, if it had one.
    pub signature: Option<Vec<u8>>,
    /// The tables folder's files, `(name, text)`, if the module has tables.
    pub tables: Option<Vec<(String, String)>>,
}

/// A module's row of desired releases: what every host should run, and its canary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    pub module: String,
    /// The release every player runs (but the canary's share).
    pub release_id: String,
    /// The release before it: what a rollback returns to.
    pub previous_id: Option<String>,
    /// A release that serves `canary_percent` of the players, beside `release_id`.
    pub canary_id: Option<String>,
    pub canary_percent: u8,
    /// Until when (ms) the release made desired by a publish or a promotion is watched for
    /// failures, and rolled back by the fleet if it fails more than the one before it.
    pub watch_until_ms: i64,
    pub changed_at_ms: i64,
}

/// A change of a module's desired releases: what an operator (or the fleet itself) asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetChange {
    /// The release stored with the change becomes what every player runs, or with
    /// `canary: Some(percent)` what that share of players runs.
    Publish { canary: Option<u8> },
    /// The canary becomes what every player runs.
    Promote,
    /// Back one step: the canary stops, or without one the previous release returns. With
    /// `expected`, only if the release stepped back from is still that one (an automatic
    /// rollback, decided on figures that may be stale by the time it runs).
    RollBack { expected: Option<String> },
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetOutcome {
    /// Applied: the module's row before (none for its first release) and after.
    Changed {
        before: Option<Box<Desired>>,
        after: Box<Desired>,
    },
    /// Nothing to do: the row already says so.
    Unchanged(String),
    /// Not applied, and why (it says what to do instead).
    Refused(String),
}

/// Why [`decide`] changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declined {
    /// The row already says so.
    Unchanged(String),
    /// Not applied, and why (it says what to do instead).
    Refused(String),
}

impl From<Declined> for FleetOutcome {
    fn from(declined: Declined) -> FleetOutcome {
        match declined {
            Declined::Unchanged(why) => FleetOutcome::Unchanged(why),
            Declined::Refused(why) => FleetOutcome::Refused(why),
        }
    }
}

/// The rule of every change of desired releases, whatever the store: what `current` becomes
/// under `change` (the release published with it is `published`) at `now_ms`, and the audit
/// row's action. Each store runs it inside its transaction, between reading the row and
/// writing it.
pub fn decide(
    module: &str,
    current: Option<&Desired>,
    change: &FleetChange,
    published: Option<&str>,
    now_ms: i64,
    watch_ms: i64,
) -> Result<(Desired, &'static str), Declined> {
    let refuse = |why: String| Err(Declined::Refused(why));
    let fresh = |release_id: &str| Desired {
        module: module.to_owned(),
        release_id: release_id.to_owned(),
        previous_id: None,
        canary_id: None,
        canary_percent: 0,
        watch_until_ms: 0,
        changed_at_ms: now_ms,
    };
    let mut next = current.cloned().unwrap_or_else(|| fresh(""));
    next.changed_at_ms = now_ms;
    match change {
        FleetChange::Publish { canary } => {
            let Some(release) = published else {
                return refuse("a publish needs its release".into());
            };
            let Some(current) = current else {
                if canary.is_some() {
                    return refuse(format!("`{module}` has no release in the fleet yet: a canary serves beside one; publish a first release without --canary"));
                }
                return Ok((fresh(release), "publish"));
            };
            match (canary, &current.canary_id) {
                (Some(percent), running) => {
                    if running.as_deref().is_some_and(|r| r != release) {
                        return refuse(format!("`{module}` has a canary already ({}, {}% of players): promote it or roll it back first", running.as_deref().unwrap_or_default(), current.canary_percent));
                    }
                    if current.release_id == release {
                        return Err(Declined::Unchanged(format!("{release} is what every player of `{module}` runs already")));
                    }
                    if running.is_some() && current.canary_percent == *percent {
                        return Err(Declined::Unchanged(format!("{release} is the canary of `{module}` for {percent}% already")));
                    }
                    next.canary_id = Some(release.to_owned());
                    next.canary_percent = *percent;
                    Ok((next, "canary"))
                }
                (None, Some(running)) => refuse(format!("`{module}` has a canary ({running}, {}% of players): promote it or roll it back before publishing another release", current.canary_percent)),
                (None, None) if current.release_id == release => Err(Declined::Unchanged(format!("{release} is what every player of `{module}` runs already"))),
                (None, None) => {
                    next.previous_id = Some(current.release_id.clone());
                    next.release_id = release.to_owned();
                    next.watch_until_ms = now_ms + watch_ms;
                    Ok((next, "publish"))
                }
            }
        }
        FleetChange::Promote => {
            let Some(canary) = current.and_then(|c| c.canary_id.clone()) else {
                return refuse(format!("`{module}` has no canary to promote: `game-host publish --canary PERCENT` starts one"));
            };
            next.previous_id = Some(next.release_id.clone());
            next.release_id = canary;
            next.canary_id = None;
            next.canary_percent = 0;
            next.watch_until_ms = now_ms + watch_ms;
            Ok((next, "promote"))
        }
        FleetChange::RollBack { expected } => {
            let Some(current) = current else {
                return refuse(format!(
                    "`{module}` has no release in the fleet to roll back"
                ));
            };
            let from = current.canary_id.as_ref().unwrap_or(&current.release_id);
            if expected.as_ref().is_some_and(|e| e != from) {
                return Err(Declined::Unchanged(format!(
                    "`{module}` runs {from} now, not the release to roll back"
                )));
            }
            if current.canary_id.is_some() {
                next.canary_id = None;
                next.canary_percent = 0;
                return Ok((next, "rollback"));
            }
            let Some(previous) = current.previous_id.clone() else {
                return refuse(format!("`{module}` has no previous release in the fleet (nothing published before the current one, or already rolled back): publish the release you want"));
            };
            next.release_id = previous;
            next.previous_id = None;
            next.watch_until_ms = 0;
            Ok((next, "rollback"))
        }
    }
}

/// The audit row's states of a change: the module's row before and after.
pub fn audit_states(before: Option<&Desired>, after: &Desired) -> (Value, Value) {
    let state = |row: Option<&Desired>| match row {
        Some(row) => json!({
            "module": row.module,
            "release": row.release_id,
            "canary": row.canary_id,
            "canary_percent": row.canary_percent,
        }),
        None => json!({ "module": after.module, "release": null }),
    };
    (state(before), state(Some(after)))
}

/// A host as it last reported itself: where it serves, what it runs, when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    pub host_id: String,
    /// The client address it serves on.
    pub address: String,
    /// The `game-host` version it runs.
    pub binary_version: String,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    /// Per module: what it serves, and what it refused (JSON, [`crate::fleet::ModuleReport`]).
    pub modules: String,
    /// Players with a socket open on it.
    pub players_online: i64,
}

/// How long the fleet keeps things: releases per module, and the watch after a release is
/// made every player's (`[fleet]`'s `keep_releases` and `watch_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub keep_releases: usize,
    pub watch_ms: i64,
}

/// The fleet's tables, on every store.
#[async_trait]
pub trait FleetStore: Send + Sync {
    /// Applies `change` to `module`'s desired releases ([`decide`]) in one transaction with its
    /// audit row, storing `release` first if one is given (once per identity) and then keeping
    /// at most `retention.keep_releases` releases of the module (never one its row names).
    /// Every applied change bumps the change counter. A release made desired is watched for
    /// `retention.watch_ms`.
    async fn change(
        &self,
        module: &str,
        change: &FleetChange,
        release: Option<&Release>,
        note: &AuditNote,
        retention: Retention,
    ) -> Result<FleetOutcome, StoreError>;

    /// The counter that every change of a desired release bumps: a host polls it.
    async fn fleet_changes(&self) -> Result<i64, StoreError>;

    /// Every module's desired releases.
    async fn desired(&self) -> Result<Vec<Desired>, StoreError>;

    /// One release, whole.
    async fn release(&self, id: &str) -> Result<Option<Release>, StoreError>;

    /// Writes this host's report over its last one.
    async fn report_host(&self, report: &HostReport) -> Result<(), StoreError>;

    /// Every host's last report, by host id.
    async fn hosts(&self) -> Result<Vec<HostReport>, StoreError>;

    /// A receiver that changes when another process may have changed the fleet's tables
    /// (PostgreSQL's `NOTIFY`), to wake a follower before its next poll; `None` where the
    /// store cannot tell (MariaDB, SQLite: poll).
    fn change_notices(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// The fleet's changes so far, from the audit log: (action, whether automatic, count).
    async fn change_counts(&self) -> Result<Vec<(String, bool, u64)>, StoreError>;
}

/// [`FleetStore::change_counts`]' statement, the same on every store.
pub const CHANGE_COUNTS: &str = "SELECT action, CASE WHEN operator = 'automatic' THEN 1 ELSE 0 END, COUNT(*) FROM audit WHERE player_id = '' GROUP BY action, CASE WHEN operator = 'automatic' THEN 1 ELSE 0 END ORDER BY action";

/// A library compressed as it is stored.
pub fn pack(library: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut packed = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(library.len() / 3),
        flate2::Compression::fast(),
    );
    packed
        .write_all(library)
        .expect("writing to memory cannot fail");
    packed.finish().expect("writing to memory cannot fail")
}

/// A stored library back as it was published, checked against the sha256 its release is
/// known by (the start of [`Release::id`]); `None` if it is not that library.
pub fn unpack(release: &Release) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut library = Vec::new();
    flate2::read::ZlibDecoder::new(release.library_zlib.as_slice())
        .read_to_end(&mut library)
        .ok()?;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&library));
    release.id.starts_with(&sha256).then_some(library)
}

/// The audit row's player for a fleet action: none.
pub const NO_PLAYER: &str = "";

/// The tables of a release as stored: JSON `[[name, text], …]`.
pub fn tables_text(tables: &Option<Vec<(String, String)>>) -> Option<String> {
    tables
        .as_ref()
        .map(|files| serde_json::to_string(files).expect("strings serialize"))
}

/// [`tables_text`] read back.
pub fn parse_tables(
    id: &str,
    text: Option<String>,
) -> Result<Option<Vec<(String, String)>>, StoreError> {
    text.map(|text| {
        serde_json::from_str(&text).map_err(|e| {
            StoreError::Unavailable(format!(
                "the stored tables of release {id} are not valid: {e}"
            ))
        })
    })
    .transpose()
}

/// Of a module's releases, newest first, those to delete so that `keep` remain: never one
/// that `row` names (desired, previous, canary).
pub fn to_prune<'a>(newest_first: &'a [String], keep: usize, row: &Desired) -> Vec<&'a str> {
    let named = |id: &str| {
        id == row.release_id
            || row.previous_id.as_deref() == Some(id)
            || row.canary_id.as_deref() == Some(id)
    };
    let mut kept = newest_first.iter().filter(|id| named(id)).count();
    let mut pruned = Vec::new();
    for id in newest_first.iter().filter(|id| !named(id)) {
        if kept < keep {
            kept += 1;
        } else {
            pruned.push(id.as_str());
        }
    }
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(release: &str, previous: Option<&str>, canary: Option<&str>) -> Desired {
        Desired {
            module: "m".into(),
            release_id: release.into(),
            previous_id: previous.map(Into::into),
            canary_id: canary.map(Into::into),
            canary_percent: if canary.is_some() { 30 } else { 0 },
            watch_until_ms: 0,
            changed_at_ms: 0,
        }
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_a_release_the_row_names() {
        let ids: Vec<String> = ["e", "d", "c", "b", "a"].map(String::from).into();
        assert_eq!(to_prune(&ids, 3, &row("e", Some("d"), None)), ["b", "a"]);
        // A step back to an old release keeps it and the one it replaced.
        assert_eq!(to_prune(&ids, 3, &row("a", Some("e"), None)), ["c", "b"]);
        assert_eq!(
            to_prune(&ids, 10, &row("e", None, None)),
            Vec::<&str>::new()
        );
        assert_eq!(
            to_prune(&ids, 1, &row("e", Some("d"), Some("a"))),
            ["c", "b"]
        );
    }

    fn decided(
        current: Option<&Desired>,
        change: FleetChange,
        release: Option<&str>,
    ) -> Result<(Desired, &'static str), Declined> {
        decide("m", current, &change, release, 1_000, 300_000)
    }

    fn publish(canary: Option<u8>) -> FleetChange {
        FleetChange::Publish { canary }
    }

    #[test]
    fn a_publish_makes_a_release_desired_and_watched_and_keeps_the_one_before() {
        let (first, action) = decided(None, publish(None), Some("a")).unwrap();
        assert_eq!((first.release_id.as_str(), action), ("a", "publish"));
        assert_eq!(first.previous_id, None);
        let (second, _) = decided(Some(&first), publish(None), Some("b")).unwrap();
        assert_eq!(second.previous_id.as_deref(), Some("a"));
        assert_eq!(second.watch_until_ms, 301_000);
        assert!(matches!(
            decided(Some(&second), publish(None), Some("b")),
            Err(Declined::Unchanged(_))
        ));
        let refused = decided(None, publish(Some(10)), Some("a"));
        assert!(matches!(refused, Err(Declined::Refused(why)) if why.contains("without --canary")));
    }

    #[test]
    fn one_canary_at_a_time_then_promote_or_roll_back() {
        let stable = row("a", None, None);
        let (canary, action) = decided(Some(&stable), publish(Some(30)), Some("b")).unwrap();
        assert_eq!(action, "canary");
        assert_eq!(
            (
                canary.release_id.as_str(),
                canary.canary_id.as_deref(),
                canary.canary_percent
            ),
            ("a", Some("b"), 30)
        );
        // The same canary at another share is a change; another release is refused, as is a
        // publish to every player while it runs.
        let (wider, _) = decided(Some(&canary), publish(Some(50)), Some("b")).unwrap();
        assert_eq!(wider.canary_percent, 50);
        for (change, release) in [(publish(Some(30)), "c"), (publish(None), "c")] {
            let refused = decided(Some(&canary), change, Some(release));
            assert!(
                matches!(refused, Err(Declined::Refused(why)) if why.contains("promote it or roll it back"))
            );
        }
        let (promoted, action) = decided(Some(&canary), FleetChange::Promote, None).unwrap();
        assert_eq!(action, "promote");
        assert_eq!(
            (
                promoted.release_id.as_str(),
                promoted.previous_id.as_deref(),
                promoted.canary_id.as_deref()
            ),
            ("b", Some("a"), None)
        );
        assert_eq!(promoted.watch_until_ms, 301_000);
        let (back, action) = decided(
            Some(&canary),
            FleetChange::RollBack { expected: None },
            None,
        )
        .unwrap();
        assert_eq!(action, "rollback");
        assert_eq!(
            (back.release_id.as_str(), back.canary_id.as_deref()),
            ("a", None)
        );
        // After a promotion, a rollback returns to the release before it, once.
        let (back, _) = decided(
            Some(&promoted),
            FleetChange::RollBack { expected: None },
            None,
        )
        .unwrap();
        assert_eq!(
            (back.release_id.as_str(), back.previous_id.as_deref()),
            ("a", None)
        );
        assert!(matches!(
            decided(Some(&back), FleetChange::RollBack { expected: None }, None),
            Err(Declined::Refused(_))
        ));
        assert!(matches!(
            decided(Some(&stable), FleetChange::Promote, None),
            Err(Declined::Refused(_))
        ));
    }

    #[test]
    fn an_automatic_rollback_applies_only_to_the_release_it_judged() {
        let canary = row("a", None, Some("b"));
        let stale = decided(
            Some(&canary),
            FleetChange::RollBack {
                expected: Some("c".into()),
            },
            None,
        );
        assert!(matches!(stale, Err(Declined::Unchanged(_))));
        let (back, _) = decided(
            Some(&canary),
            FleetChange::RollBack {
                expected: Some("b".into()),
            },
            None,
        )
        .unwrap();
        assert_eq!(back.canary_id, None);
    }
}
