//! A module's canary: a second version that serves a share of the module's players, chosen by
//! a hash of their id ([`super::routes::canary_bucket`]), beside the version that serves the
//! rest. The fleet sets one with `game-host publish --canary PERCENT`
//! ([`crate::fleet::follow`]).
//!
//! A canary loads through the same pipeline as any version (trust, interface, clash, init,
//! tables) and enters the routing snapshot the same way, in one store of `Routes`. It must be
//! the same module, on the same prefix, with the same saved-data schema as the version it
//! stands beside: its players' saved data is read by both versions as players move between
//! them (a promotion, a rollback), so a schema change is shipped to every player at once,
//! where the swap's saved-data check guards it.

use super::routes::{Canary, Routes};
use super::{Change, Registry};
use crate::plugins::events::{Event, EventKind};
use std::path::Path;
use std::sync::Arc;

impl Registry {
    /// Loads `file` as the canary of `module`, serving `percent` of its players; a canary
    /// already there drains. Refused (nothing changes) if the module does not serve, or the
    /// library is another module, prefix or saved-data schema, or fails any load check.
    pub async fn load_canary(&self, module: &str, file: &Path, percent: u8) -> Change {
        let mut control = self.control.lock().await;
        let routes = self.routes();
        let Some(serving) = routes.by_name(module).cloned() else {
            return Change::Refused(format!(
                "`{module}` does not serve on this host: a canary serves beside its module's version; publish a release of it without --canary first"
            ));
        };
        let opened = match self.pipeline.read(file) {
            Ok(opened) => opened,
            Err(e) => return Change::Refused(e.to_string()),
        };
        if let Err(untrusted) = self.pipeline.admit(file, &opened) {
            return Change::Refused(untrusted.to_string());
        }
        let opened = self
            .open_checked(
                &mut control,
                file,
                opened.bytes,
                None,
                &routes,
                Some(&serving),
            )
            .await;
        let version = match opened {
            Ok((version, _)) => version,
            Err(refused) => return Change::Refused(refused.to_string()),
        };
        let (meta, stable) = (&version.meta, &serving.meta);
        let mismatch = if meta.name != stable.name || meta.prefix != stable.prefix {
            Some(format!(
                "the canary is module `{}` (prefix {}), not `{}` (prefix {})",
                meta.name, meta.prefix, stable.name, stable.prefix
            ))
        } else if meta.schema != stable.schema {
            Some(format!(
                "the canary writes saved-data schema {} and `{module}` serves schema {}: a canary keeps its module's schema (players move between the two); publish a schema change without --canary, where the swap checks every player's data",
                meta.schema, stable.schema
            ))
        } else {
            None
        };
        if let Some(why) = mismatch {
            self.retirement.retire(version);
            return Change::Refused(why);
        }
        let generation = version.generation;
        let mut next = Routes::clone(&routes);
        let previous = next.canaries.insert(
            stable.prefix.clone(),
            Canary {
                version: version.clone(),
                percent,
            },
        );
        self.routes.store(Arc::new(next));
        slog::info!(self.log, "canary serving"; "module" => module, "percent" => percent,
            "generation" => generation, "sha256" => &version.meta.sha256, "file" => %file.display());
        self.events.push(Event::about(
            EventKind::Load,
            &version,
            format!(
                "canary for {percent}% of players beside generation {}, from {}",
                serving.generation,
                file.display()
            ),
        ));
        if let Some(previous) = previous {
            self.events.push(Event::about(
                EventKind::Drain,
                &previous.version,
                format!("canary replaced by generation {generation}"),
            ));
            self.retirement.retire(previous.version);
        }
        Change::Loaded {
            module: module.to_owned(),
            generation,
        }
    }

    /// Sets the share of players `module`'s canary serves; `false` if it has none.
    pub async fn set_canary_percent(&self, module: &str, percent: u8) -> bool {
        let _control = self.control.lock().await;
        let routes = self.routes();
        let Some(prefix) = routes.canary(module).map(|c| c.version.meta.prefix.clone()) else {
            return false;
        };
        let mut next = Routes::clone(&routes);
        if let Some(canary) = next.canaries.get_mut(&prefix) {
            canary.percent = percent;
        }
        self.routes.store(Arc::new(next));
        true
    }

    /// Stops `module`'s canary: all its players go back to the module's version, and the
    /// canary drains and retires. `Unchanged` if it has none.
    pub async fn drop_canary(&self, module: &str) -> Change {
        let _control = self.control.lock().await;
        let routes = self.routes();
        let Some(prefix) = routes.canary(module).map(|c| c.version.meta.prefix.clone()) else {
            return Change::Unchanged;
        };
        let mut next = Routes::clone(&routes);
        let canary = next.canaries.remove(&prefix);
        self.routes.store(Arc::new(next));
        if let Some(canary) = canary {
            slog::info!(self.log, "canary stopped"; "module" => module);
            self.events.push(Event::about(
                EventKind::Drain,
                &canary.version,
                "canary stopped: its players are back on the module's version",
            ));
            self.retirement.retire(canary.version);
        }
        Change::Removed {
            module: module.to_owned(),
        }
    }
}
