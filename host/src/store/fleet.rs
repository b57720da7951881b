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

/// Which release a module should run on every host, and the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    pub module: String,
    pub release_id: String,
    pub previous_id: Option<String>,
    pub changed_at_ms: i64,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The release is now the module's desired one; `previous` was.
    Desired { previous: Option<String> },
    /// The release already was the module's desired one: nothing changed.
    AlreadyDesired,
}

/// What a rollback did: the module's desired release went from `from` back to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    pub from: String,
    pub to: String,
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
}

/// The fleet's tables, on every store.
#[async_trait]
pub trait FleetStore: Send + Sync {
    /// Stores `release` (once per identity) and makes it the module's desired release, in one
    /// transaction with its audit row (action `publish`); then keeps at most `keep` releases of
    /// the module (never the desired one or the one before it).
    async fn publish(
        &self,
        release: &Release,
        note: &AuditNote,
        keep: usize,
    ) -> Result<Published, StoreError>;

    /// Makes the module's previous release its desired one again, in one transaction with its
    /// audit row (action `rollback`). `None` if the module has no previous release (nothing
    /// published, or already rolled back): nothing changes.
    async fn roll_back(
        &self,
        module: &str,
        note: &AuditNote,
    ) -> Result<Option<RolledBack>, StoreError>;

    /// The counter that every change of a desired release bumps: a host polls it.
    async fn fleet_changes(&self) -> Result<i64, StoreError>;

    /// Every module's desired release.
    async fn desired(&self) -> Result<Vec<Desired>, StoreError>;

    /// One release, whole.
    async fn release(&self, id: &str) -> Result<Option<Release>, StoreError>;

    /// Writes this host's report over its last one.
    async fn report_host(&self, report: &HostReport) -> Result<(), StoreError>;

    /// Every host's last report, by host id.
    async fn hosts(&self) -> Result<Vec<HostReport>, StoreError>;
}

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

/// The audit row's states of a publish: which release the module ran before, and after.
pub fn publish_states(module: &str, before: Option<&str>, after: &str) -> (Value, Value) {
    let state = |release: Option<&str>| json!({ "module": module, "release": release });
    (state(before), state(Some(after)))
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

/// Of a module's releases, newest first, those to delete so that `keep` remain: never the
/// desired release or the one before it.
pub fn to_prune<'a>(
    newest_first: &'a [String],
    keep: usize,
    desired: &str,
    previous: Option<&str>,
) -> Vec<&'a str> {
    let kept_anyway = |id: &str| id == desired || Some(id) == previous;
    let mut kept = newest_first.iter().filter(|id| kept_anyway(id)).count();
    let mut pruned = Vec::new();
    for id in newest_first.iter().filter(|id| !kept_anyway(id)) {
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

    #[test]
    fn pruning_keeps_the_newest_and_never_the_desired_or_previous_release() {
        let ids: Vec<String> = ["e", "d", "c", "b", "a"].map(String::from).into();
        assert_eq!(to_prune(&ids, 3, "e", Some("d")), ["b", "a"]);
        // A step back to an old release keeps it and the one it replaced.
        assert_eq!(to_prune(&ids, 3, "a", Some("e")), ["c", "b"]);
        assert_eq!(to_prune(&ids, 10, "e", None), Vec::<&str>::new());
        assert_eq!(to_prune(&ids, 1, "e", Some("d")), ["c", "b", "a"]);
    }
}
