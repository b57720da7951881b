//! After a step back to an older saved-data schema, the stored data that the newer version
//! wrote is rewritten at the serving schema, in the background, with the migrator's steps.
//!
//! The migrator ([`super::migrator`]) makes such data readable on the request path, but only
//! while it is loaded: a restart (a zero-downtime one too) loses it. The rewrite makes the
//! stored data itself readable by the serving version. It reads the module's data a page at a
//! time, downgrades each player's data of a newer schema on a module thread (the migrator's
//! call, under the module's deadline), and writes it back only if it is still what was read
//! ([`Store::replace_module_data`]): a player's turn that wrote meanwhile wins, and that turn
//! stored the data at the serving schema anyway. It locks no player and holds no transaction;
//! a later change of the module stops it (`cancelled`), and so does a stopping host.

use super::call::{CallError, CallLimits};
use super::data_check::{stored_schema, Failure};
use super::executor::Executor;
use super::version::ModuleVersion;
use crate::store::{ModuleData, ModuleDataPages, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to rewrite: module `module`'s data of a schema above `to`, with `migrator`'s steps.
pub struct Rewrite {
    pub module: String,
    pub to: u32,
    pub migrator: Arc<ModuleVersion>,
    pub limits: CallLimits,
}

/// What a rewrite did.
#[derive(Debug, Clone, Default)]
pub struct RewriteReport {
    /// Players whose data was read.
    pub read: u64,
    /// Players whose data was of a newer schema and is now stored at the serving one.
    pub rewritten: u64,
    /// Players whose data changed between the read and the write (their own turn stored it).
    pub changed_meanwhile: u64,
    /// Players whose data the migrator could not downgrade: they stay on the migrator.
    pub failed: u64,
    pub first_failure: Option<Failure>,
    /// The rewrite stopped before the end: a later change of the module, or why it could not
    /// go on (the database, a stuck step, the host stopping).
    pub stopped: Option<String>,
}

/// Runs `rewrite` over the stored data to its end (or until `cancelled`).
pub async fn run(
    store: &dyn Store,
    executor: &Executor,
    rewrite: &Rewrite,
    cancelled: &AtomicBool,
) -> RewriteReport {
    let mut report = RewriteReport::default();
    let mut pages = ModuleDataPages::after(store, &rewrite.module, String::new());
    loop {
        if cancelled.load(Ordering::Relaxed) {
            report.stopped = Some("the module changed again".into());
            return report;
        }
        let page = match pages.next().await {
            Ok(Some(page)) => page,
            Ok(None) => return report,
            Err(e) => {
                report.stopped = Some(format!("the stored data could not be read: {e}"));
                return report;
            }
        };
        for (player_id, stored) in page {
            report.read += 1;
            let newer = serde_json::from_str::<ModuleData>(&stored)
                .ok()
                .and_then(|data| stored_schema(&data).ok())
                .is_some_and(|schema| schema > rewrite.to);
            if !newer {
                continue;
            }
            if let Err(stop) =
                rewrite_one(store, executor, rewrite, &player_id, stored, &mut report).await
            {
                report.stopped = Some(stop);
                return report;
            }
        }
    }
}

/// Downgrades and writes back one player's data; `Err` when the rewrite cannot go on.
async fn rewrite_one(
    store: &dyn Store,
    executor: &Executor,
    rewrite: &Rewrite,
    player_id: &str,
    stored: String,
    report: &mut RewriteReport,
) -> Result<(), String> {
    let downgraded = rewrite
        .migrator
        .run_migrate(executor, rewrite.limits, stored.clone(), rewrite.to)
        .await;
    match downgraded {
        Ok(Ok(downgraded)) => {
            let replaced = store
                .replace_module_data(player_id, &rewrite.module, &stored, &downgraded)
                .await
                .map_err(|e| format!("the stored data could not be written: {e}"))?;
            match replaced {
                true => report.rewritten += 1,
                false => report.changed_meanwhile += 1,
            }
            Ok(())
        }
        Ok(Err(reason)) => {
            report.failed += 1;
            report.first_failure.get_or_insert(Failure {
                player_id: player_id.to_owned(),
                reason,
            });
            Ok(())
        }
        Err(CallError::Closed(_)) => Err("the host is stopping".into()),
        Err(e) => Err(format!("downgrading the data of player {player_id}: {e}")),
    }
}
