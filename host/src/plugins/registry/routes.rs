//! A routing snapshot: which module version serves each prefix, immutable once built, and
//! the rule a new version must pass to enter one.

use crate::plugins::version::{ModuleVersion, Refused};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One immutable routing snapshot: prefix to the version that serves it, and by module name
/// the migrator kept for it (a version with a higher saved-data schema, which downgrades data
/// the serving version cannot read: [`crate::plugins::migrator`]).
#[derive(Default, Clone)]
pub struct Routes {
    pub(super) by_prefix: HashMap<String, Arc<ModuleVersion>>,
    pub(super) migrators: HashMap<String, Arc<ModuleVersion>>,
    /// By prefix, a module's canary: a second version that serves a share of its players
    /// (the fleet's `publish --canary`), beside the one in `by_prefix`, which serves the rest.
    pub(super) canaries: HashMap<String, Canary>,
}

/// A canary version and the share of players it serves.
#[derive(Clone)]
pub struct Canary {
    pub version: Arc<ModuleVersion>,
    /// Percent of players (0 to 100), chosen by [`canary_bucket`].
    pub percent: u8,
}

/// A player's bucket, 0 to 9999, from a hash of their id: the same on every host and across
/// restarts, so a player meets the same version wherever they play. A canary of `percent`
/// serves the players whose bucket is below `percent × 100`.
pub fn canary_bucket(player_id: &str) -> u16 {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(player_id.as_bytes());
    let first = u64::from_be_bytes(hash[..8].try_into().expect("a sha256 has 32 bytes"));
    (first % 10_000) as u16
}

impl Canary {
    /// Whether this canary serves `player_id`.
    pub fn serves(&self, player_id: &str) -> bool {
        canary_bucket(player_id) < u16::from(self.percent) * 100
    }
}

impl Routes {
    /// The version serving `prefix` for `player_id`: the module's canary if it has one that
    /// serves the player ([`Canary::serves`]), else the module's version.
    pub fn route(&self, prefix: &str, player_id: &str) -> Option<&Arc<ModuleVersion>> {
        match self.canaries.get(prefix) {
            Some(canary) if canary.serves(player_id) => Some(&canary.version),
            _ => self.by_prefix.get(prefix),
        }
    }

    /// A snapshot serving `versions` on their prefixes, and `canary` (a version and the percent
    /// of players it serves) on its own prefix if given. It exists for the routing benchmark
    /// (`bench/benches/abi.rs`, group `routing`); the host builds snapshots only through the
    /// registry's change path.
    #[doc(hidden)]
    pub fn for_bench(
        versions: Vec<Arc<ModuleVersion>>,
        canary: Option<(Arc<ModuleVersion>, u8)>,
    ) -> Routes {
        let by_prefix = versions
            .into_iter()
            .map(|v| (v.meta.prefix.clone(), v))
            .collect();
        let canaries = canary
            .into_iter()
            .map(|(version, percent)| (version.meta.prefix.clone(), Canary { version, percent }))
            .collect();
        Routes {
            by_prefix,
            migrators: HashMap::new(),
            canaries,
        }
    }

    /// The canary of module `name`, if it has one.
    pub fn canary(&self, name: &str) -> Option<&Canary> {
        self.canaries.values().find(|c| c.version.meta.name == name)
    }

    /// The migrator kept for module `name`, if its serving version stepped back to an older
    /// saved-data schema.
    pub fn migrator(&self, name: &str) -> Option<&Arc<ModuleVersion>> {
        self.migrators.get(name)
    }

    /// The serving versions, ordered by prefix.
    pub fn versions(&self) -> Vec<Arc<ModuleVersion>> {
        let mut versions: Vec<_> = self.by_prefix.values().cloned().collect();
        versions.sort_by(|a, b| a.meta.prefix.cmp(&b.meta.prefix));
        versions
    }

    pub(super) fn by_file(&self, file: &Path) -> Option<&Arc<ModuleVersion>> {
        self.by_prefix.values().find(|v| v.meta.file == file)
    }

    /// The version of module `name` serving (not its canary), if one does.
    pub fn by_name(&self, name: &str) -> Option<&Arc<ModuleVersion>> {
        self.by_prefix.values().find(|v| v.meta.name == name)
    }

    /// A new version may take its predecessor's prefix and name, or free ones.
    pub fn check_clash(
        &self,
        version: &ModuleVersion,
        replacing: Option<&ModuleVersion>,
    ) -> Result<(), Refused> {
        let meta = &version.meta;
        let others = || {
            self.by_prefix
                .values()
                .filter(|v| replacing.is_none_or(|r| !std::ptr::eq(v.as_ref(), r)))
        };
        if let Some(owner) = others().find(|v| v.meta.prefix == meta.prefix) {
            return Err(Refused::PrefixTaken {
                file: meta.file.clone(),
                name: meta.name.clone(),
                prefix: meta.prefix.clone(),
                owner: owner.meta.name.clone(),
            });
        }
        match others().find(|v| v.meta.name == meta.name) {
            Some(other) => Err(Refused::NameTaken {
                file: meta.file.clone(),
                name: meta.name.clone(),
                other: other.meta.file.clone(),
            }),
            None => Ok(()),
        }
    }
}
