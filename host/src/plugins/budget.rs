//! Reload budgets: a safety valve that refuses a reload before the process runs out of
//! something it can never get back, instead of crashing later.
//!
//! Each library copy that cannot be unloaded keeps its memory maps; each copy whose std used
//! `std::thread::current()` keeps a pthread key (docs/modules.md, "Rules that keep unloading
//! safe"). The process has `vm.max_map_count` maps and 1024 pthread keys. When a limit comes near,
//! the answer is a graceful restart of the host, and the refusal says so.

use super::loader::pthread_keys_in_use;

/// glibc's `PTHREAD_KEYS_MAX`.
const PTHREAD_KEYS_MAX: u32 = 1024;
/// Keys kept free for the host and its libraries.
const PTHREAD_KEYS_RESERVE: u32 = 64;
/// Share of `vm.max_map_count` reloads may fill.
const MAPS_SHARE: f64 = 0.8;

/// Why another load must not happen now. Each says to restart the host gracefully, which is
/// what reclaims the resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error("{leaked} earlier versions did not leave memory (limit {max}): {RESTART}")]
    LeakedVersions { leaked: usize, max: usize },
    #[error("{used} of {PTHREAD_KEYS_MAX} pthread keys are used: {RESTART}")]
    PthreadKeys { used: u32 },
    #[error("{used} of {max} memory maps are used: {RESTART}")]
    MemoryMaps { used: usize, max: usize },
}

const RESTART: &str = "restart the host gracefully to reclaim it";

/// Whether another load may happen now.
pub fn check(leaked_versions: usize, max_leaked_versions: usize) -> Result<(), OverBudget> {
    if leaked_versions >= max_leaked_versions {
        return Err(OverBudget::LeakedVersions {
            leaked: leaked_versions,
            max: max_leaked_versions,
        });
    }
    if let Some(keys) = pthread_keys_in_use() {
        if keys + PTHREAD_KEYS_RESERVE >= PTHREAD_KEYS_MAX {
            return Err(OverBudget::PthreadKeys { used: keys });
        }
    }
    if let (Some(used), Some(max)) = (maps_in_use(), max_map_count()) {
        if used as f64 >= max as f64 * MAPS_SHARE {
            return Err(OverBudget::MemoryMaps { used, max });
        }
    }
    Ok(())
}

/// Memory maps of this process now.
pub fn maps_in_use() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .map(|maps| maps.lines().count())
}

fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests;
