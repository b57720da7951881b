//! Saved data of a newer schema than the serving version reads, made readable on the request
//! path: after a step back to an older saved-data schema (a rollback, or an older library),
//! the registry keeps the version with the higher schema loaded as the module's migrator
//! ([`super::Routes::migrator`]); a player whose stored data that version wrote has it
//! downgraded by the migrator's steps before the serving version reads it, and the command's
//! turn stores it at the serving schema when it commits.
//!
//! The swap's saved-data check ([`super::data_check`]) ran the same downgrade over the stored
//! data before the older version was let in. Without a migrator (the host restarted since the
//! step back), such data fails the command and says which version can read it.

use super::call::{CallError, CallLimits};
use super::data_check::stored_schema;
use super::executor::Executor;
use super::version::ModuleVersion;
use crate::store::ModuleData;
use serde_json::Value;
use std::sync::Arc;

/// Why a player's data could not be downgraded; the command fails and nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum DowngradeError {
    /// The migrator's step failed or panicked.
    #[error(
        "downgrading the saved data from schema {from} to {to} with version {migrator}: {reason}"
    )]
    Step {
        from: u32,
        to: u32,
        migrator: String,
        reason: String,
    },
    /// The migrator's call has no outcome (its deadline, too many stuck, shutting down).
    #[error(transparent)]
    Call(#[from] CallError),
}

/// `data` at `serving`'s schema if it is stored at a newer one that `migrator` knows, or
/// `None` when it needs nothing (or nothing can be done: the serving version then says why).
/// Runs the migrator's code on an `executor` thread under `limits`, counted as its call.
pub async fn readable_by(
    serving: &ModuleVersion,
    migrator: &Arc<ModuleVersion>,
    executor: &Executor,
    limits: CallLimits,
    data: &ModuleData,
) -> Result<Option<ModuleData>, DowngradeError> {
    let to = serving.meta.schema;
    let Ok(from) = stored_schema(data) else {
        return Ok(None);
    };
    if from <= to || migrator.meta.schema < from {
        return Ok(None);
    }
    let stored = Value::Object(data.clone()).to_string();
    let step = |reason: String| DowngradeError::Step {
        from,
        to,
        migrator: migrator.meta.version.clone(),
        reason,
    };
    let migrated = migrator
        .run_migrate(executor, limits, stored, to)
        .await?
        .map_err(step)?;
    match serde_json::from_str(&migrated) {
        Ok(Value::Object(downgraded)) => Ok(Some(downgraded)),
        _ => Err(step(format!("it returned {migrated:?}, not a JSON object"))),
    }
}
