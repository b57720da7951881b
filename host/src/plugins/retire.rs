//! Retirement: a version that no longer serves drains, shuts down, leaves memory, and the
//! host checks that it really left.
//!
//! The routing snapshot no longer names a retiring version, so nothing new reaches it; the
//! requests that pinned it before the swap hold `Arc`s. When only the retirement list holds
//! it, its shutdown hook runs on a module thread, the last `Arc` drops (`dlclose`), and
//! `/proc/self/maps` is read: a library still mapped pinned itself in memory (for example a
//! thread-local with a destructor), and is counted and reported as leaked.
//! A version past the drain deadline is reported stuck; it is never unloaded while a call runs.

use super::events::{Event, EventKind, EventLog};
use super::executor::Executor;
use super::version::ModuleVersion;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often draining versions are looked at.
const TICK: Duration = Duration::from_millis(10);

/// The versions on their way out, and what became of those that left.
pub struct Retirement {
    /// A std `Mutex`: held to add, inspect or take entries, never across `.await`.
    draining: Mutex<Vec<Draining>>,
    leaked: Mutex<Vec<Leaked>>,
    retired: AtomicU64,
    drain_deadline: Duration,
}

struct Draining {
    version: Arc<ModuleVersion>,
    since: Instant,
    stuck: bool,
}

/// A version that stopped serving and has calls still running, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DrainingReport {
    pub module: String,
    pub version: String,
    pub generation: u64,
    pub sha256: String,
    pub in_flight: u64,
    pub draining_ms: u64,
    /// Past the drain deadline.
    pub stuck: bool,
}

/// A version that was unloaded but is still mapped.
#[derive(Debug, Clone, Serialize)]
pub struct Leaked {
    pub module: String,
    pub version: String,
    pub generation: u64,
    pub sha256: String,
    pub reason: String,
}

impl Retirement {
    pub fn new(drain_deadline: Duration) -> Self {
        Retirement {
            draining: Mutex::new(Vec::new()),
            leaked: Mutex::new(Vec::new()),
            retired: AtomicU64::new(0),
            drain_deadline,
        }
    }

    /// Takes a version that no longer serves.
    pub fn retire(&self, version: Arc<ModuleVersion>) {
        self.lock_draining().push(Draining {
            version,
            since: Instant::now(),
            stuck: false,
        });
    }

    /// Drains, shuts down and unloads retiring versions, forever: spawn it once.
    pub async fn run(
        self: Arc<Self>,
        executor: Arc<Executor>,
        events: Arc<EventLog>,
        log: slog::Logger,
    ) {
        loop {
            tokio::time::sleep(TICK).await;
            for version in self.take_drained(&events, &log) {
                self.unload(version, &executor, &events, &log).await;
            }
        }
    }

    /// Removes and returns the versions nothing else pins; flags the ones past the deadline.
    fn take_drained(&self, events: &EventLog, log: &slog::Logger) -> Vec<Arc<ModuleVersion>> {
        let mut draining = self.lock_draining();
        let mut drained = Vec::new();
        let mut index = 0;
        while index < draining.len() {
            let entry = &mut draining[index];
            if Arc::strong_count(&entry.version) == 1 {
                drained.push(draining.swap_remove(index).version);
                continue;
            }
            if !entry.stuck && entry.since.elapsed() > self.drain_deadline {
                entry.stuck = true;
                let message = format!(
                    "calls still running {} s after the swap; the version stays loaded until they return",
                    self.drain_deadline.as_secs_f64()
                );
                slog::warn!(log, "module version stuck draining"; "module" => &entry.version.meta.name,
                    "generation" => entry.version.generation, "in_flight" => entry.version.stats.in_flight());
                events.push(Event::about(EventKind::Stuck, &entry.version, message));
            }
            index += 1;
        }
        drained
    }

    async fn unload(
        &self,
        version: Arc<ModuleVersion>,
        executor: &Executor,
        events: &EventLog,
        log: &slog::Logger,
    ) {
        let event = |kind, message: String| Event::about(kind, &version, message);
        let (retire_event, shadow) = (
            event(EventKind::Retire, "shut down and unloaded".into()),
            version.shadow.clone(),
        );
        let leak_event = event(EventKind::Leak, String::new());
        let (name, generation) = (version.meta.name.clone(), version.generation);
        let report = Leaked {
            module: name.clone(),
            version: version.meta.version.clone(),
            generation,
            sha256: version.meta.sha256.clone(),
            reason: String::new(),
        };
        let hook = version.clone();
        // The shutdown hook is module code: it runs on a module thread. Its pin drops there.
        let _ = executor.run(move || hook.shutdown()).await;
        drop(version); // the last pin: `dlclose`
        if still_mapped(&shadow) {
            let reason = "still mapped after unloading: the library pinned itself in memory (a thread-local \
                          with a destructor, or linked with -z nodelete); see plugin-api's rules"
                .to_owned();
            slog::error!(log, "module version did not leave memory"; "module" => &name, "generation" => generation, "reason" => &reason);
            events.push(Event {
                message: reason.clone(),
                ..leak_event
            });
            self.leaked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Leaked { reason, ..report });
        } else {
            self.retired.fetch_add(1, Ordering::Relaxed);
            slog::info!(log, "module version retired"; "module" => &name, "generation" => generation);
            events.push(retire_event);
        }
    }

    pub fn draining(&self) -> Vec<DrainingReport> {
        self.lock_draining()
            .iter()
            .map(|d| DrainingReport {
                module: d.version.meta.name.clone(),
                version: d.version.meta.version.clone(),
                generation: d.version.generation,
                sha256: d.version.meta.sha256.clone(),
                in_flight: d.version.stats.in_flight(),
                draining_ms: d.since.elapsed().as_millis() as u64,
                stuck: d.stuck,
            })
            .collect()
    }

    pub fn leaked(&self) -> Vec<Leaked> {
        self.leaked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Versions that left memory since start.
    pub fn retired_count(&self) -> u64 {
        self.retired.load(Ordering::Relaxed)
    }

    /// Every version still retiring, for shutdown.
    pub fn take_all(&self) -> Vec<Arc<ModuleVersion>> {
        self.lock_draining().drain(..).map(|d| d.version).collect()
    }

    fn lock_draining(&self) -> std::sync::MutexGuard<'_, Vec<Draining>> {
        self.draining.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether a mapping of `shadow` is still in this process (`/proc/self/maps` names unlinked
/// files as `<path> (deleted)`).
pub fn still_mapped(shadow: &std::path::Path) -> bool {
    let Some(shadow) = shadow.to_str() else {
        return false;
    };
    std::fs::read_to_string("/proc/self/maps")
        .is_ok_and(|maps| maps.lines().any(|line| line.contains(shadow)))
}
