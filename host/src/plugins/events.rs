//! The recent module events (load, swap, refuse, retire, ...) that the admin API shows, and
//! how many of each there were since start (the metrics).

use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many events are kept; older ones are dropped.
const KEPT: usize = 256;

/// What happened to a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// A version started serving a prefix that had none.
    Load,
    /// A new version replaced the serving one.
    Swap,
    /// A library was refused; what serves stayed.
    Refuse,
    /// A version stopped serving and waits for its calls to finish.
    Drain,
    /// A draining version is past the drain deadline with calls still running.
    Stuck,
    /// A version was shut down and left memory.
    Retire,
    /// A retired version is still mapped after unloading (the module broke a rule of
    /// docs/modules.md, "Rules that keep unloading safe").
    Leak,
    /// The previous version was restored.
    Rollback,
    /// A library was removed from the plugins directory.
    Remove,
    /// A version's saved-data migrations passed the check over stored data (a refusal is a
    /// `Refuse`).
    Check,
    /// After a step back to an older schema, the stored data of a newer one was rewritten.
    Rewrite,
}

impl EventKind {
    /// The name the admin API (through `Serialize`) and the metrics use.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Load => "load",
            EventKind::Swap => "swap",
            EventKind::Refuse => "refuse",
            EventKind::Drain => "drain",
            EventKind::Stuck => "stuck",
            EventKind::Retire => "retire",
            EventKind::Leak => "leak",
            EventKind::Rollback => "rollback",
            EventKind::Remove => "remove",
            EventKind::Check => "check",
            EventKind::Rewrite => "rewrite",
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch (wall clock).
    pub at_ms: u64,
    pub kind: EventKind,
    pub module: String,
    pub version: String,
    pub generation: u64,
    pub file: String,
    pub message: String,
}

/// The last [`KEPT`] events, oldest first, and the count of every event by module and kind.
#[derive(Default)]
pub struct EventLog {
    /// A std `Mutex`: held for a push or a copy, never across `.await`.
    events: Mutex<VecDeque<Event>>,
    /// Same kind of lock, same rule; `""` is a file refused before it said which module it is.
    totals: Mutex<BTreeMap<(String, EventKind), u64>>,
}

impl EventLog {
    pub fn push(&self, mut event: Event) {
        event.at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        *self
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((event.module.clone(), event.kind))
            .or_default() += 1;
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.len() == KEPT {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// How many events of each kind each module had since start.
    pub fn totals(&self) -> Vec<(String, EventKind, u64)> {
        let totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        totals
            .iter()
            .map(|((m, k), n)| (m.clone(), *k, *n))
            .collect()
    }

    pub fn recent(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl Event {
    /// An event about one version.
    pub fn about(
        kind: EventKind,
        version: &super::ModuleVersion,
        message: impl Into<String>,
    ) -> Event {
        Event {
            at_ms: 0,
            kind,
            module: version.meta.name.clone(),
            version: version.meta.version.clone(),
            generation: version.generation,
            file: version.meta.file.display().to_string(),
            message: message.into(),
        }
    }

    /// An event about a file whose module is unknown (refused before it said who it is).
    pub fn file(kind: EventKind, file: &std::path::Path, message: impl Into<String>) -> Event {
        Event {
            at_ms: 0,
            kind,
            module: String::new(),
            version: String::new(),
            generation: 0,
            file: file.display().to_string(),
            message: message.into(),
        }
    }
}
