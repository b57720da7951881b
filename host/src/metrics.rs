//! The host's metrics in Prometheus text format, served at `GET /metrics` on the admin
//! listener.
//!
//! Requests are counted as they finish ([`Metrics::request_finished`]); what the registry and
//! the store already know (module events, versions draining, sessions) is read when scraped,
//! so there is one source of truth for each figure.
//!
//! Label values are bounded: `endpoint` is one of six, `cmd` is a command of a module that
//! exists (anything else is `other`), `ret` is a protocol code.

use crate::plugins::Registry as Modules;
use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

/// Every metric the host exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    module_events: Family<ModuleEventLabels, Counter>,
    modules: Family<ModuleLabels, Gauge>,
    stuck_calls: Family<ModuleLabels, Gauge>,
    healthy: Family<ModuleLabels, Gauge>,
    versions: Family<VersionLabels, Gauge>,
    sessions: Gauge,
    connections_refused: Counter,
    turn_conflicts: Counter,
    store_batches: Family<BatchLabels, Counter>,
    store_batched_turns: Family<BatchLabels, Counter>,
    store_write_batches_undone: Counter,
    fleet_changes: Family<FleetChangeLabels, Gauge>,
    sockets_open: Gauge,
    sockets_closed: Family<SocketCloseLabels, Counter>,
    pushes_written: Family<PushLabels, Counter>,
    pushes_delivered: Family<PushLabels, Counter>,
    pushes_dropped: Family<PushLabels, Counter>,
    pushes_resent: Counter,
    players_online: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    /// The push's kind, as its module names it.
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SocketCloseLabels {
    /// The close code the host sent (docs/PROTOCOL.md, "The socket"), or 1000 when the client
    /// closed.
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FleetChangeLabels {
    /// `publish`, `canary`, `promote`, `rollback`.
    action: String,
    /// `operator` or `automatic`.
    by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    cmd: String,
    ret: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    endpoint: String,
    cmd: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    /// `read` or `write`.
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleEventLabels {
    module: String,
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleLabels {
    module: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    state: String,
}

/// Decrements its gauge when dropped, however the thing it counts ends: a request in flight, a
/// socket open.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What a scrape reads besides the counts the request path keeps: the modules' routing and
/// retirement, the store's sessions.
pub struct Scrape<'a> {
    pub modules: &'a Modules,
    pub store: &'a dyn Store,
    /// `plugins.max_stuck_calls`: at it, a version is unhealthy.
    pub max_stuck_calls: u64,
    /// The host clock's now: sessions that have not expired by then count.
    pub now_ms: i64,
    pub log: &'a slog::Logger,
}

impl Metrics {
    /// `log_dropped` is the logging queue's counter of dropped lines.
    /// Every series carries `host="<host_id>"`, so that a fleet's figures can be told apart.
    pub fn new(log_dropped: Counter, host_id: &str) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "game_host",
            [("host".into(), host_id.to_owned().into())].into_iter(),
        );
        let metrics = Metrics {
            requests: Family::default(),
            // 100 µs to ~6 s: a module call is microseconds, a timeout is seconds.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 3.0, 11))
            }),
            in_flight: Gauge::default(),
            module_events: Family::default(),
            modules: Family::default(),
            stuck_calls: Family::default(),
            healthy: Family::default(),
            versions: Family::default(),
            sessions: Gauge::default(),
            connections_refused: Counter::default(),
            turn_conflicts: Counter::default(),
            store_batches: Family::default(),
            store_batched_turns: Family::default(),
            store_write_batches_undone: Counter::default(),
            fleet_changes: Family::default(),
            sockets_open: Gauge::default(),
            sockets_closed: Family::default(),
            pushes_written: Family::default(),
            pushes_delivered: Family::default(),
            pushes_dropped: Family::default(),
            pushes_resent: Counter::default(),
            players_online: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Client requests by endpoint, command and ret",
            metrics.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Client request latency",
            metrics.latency.clone(),
        );
        r.register(
            "requests_in_flight",
            "Client requests being served",
            metrics.in_flight.clone(),
        );
        r.register(
            "module_events",
            "Module loads, swaps, refusals, rollbacks, retirements and leaks",
            metrics.module_events.clone(),
        );
        r.register(
            "module_serving",
            "Serving module versions (value 1)",
            metrics.modules.clone(),
        );
        r.register(
            "module_stuck_calls",
            "Calls of a serving version past their deadline that have not returned",
            metrics.stuck_calls.clone(),
        );
        r.register(
            "module_healthy",
            "1 if a serving version takes commands, 0 while plugins.max_stuck_calls of its calls are stuck",
            metrics.healthy.clone(),
        );
        r.register(
            "module_versions",
            "Versions by state: serving, draining, stuck (past the drain deadline), not_unloaded",
            metrics.versions.clone(),
        );
        r.register("sessions", "Sessions not expired", metrics.sessions.clone());
        r.register(
            "connections_refused",
            "Connections closed on arrival because server.max_connections were open",
            metrics.connections_refused.clone(),
        );
        r.register(
            "turn_conflicts",
            "Command turns run again because another host changed the player between the turn's read and its write (server stores)",
            metrics.turn_conflicts.clone(),
        );
        r.register(
            "store_batches",
            "On a server store: statements that read commands' turns together (kind=read, one turn or more each), and batches that committed several commands' writes together (kind=write; a write alone is not one)",
            metrics.store_batches.clone(),
        );
        r.register(
            "store_batched_turns",
            "Command turns read (kind=read) or written (kind=write) as one of a store_batches batch; divided by store_batches, the mean batch size",
            metrics.store_batched_turns.clone(),
        );
        r.register(
            "store_write_batches_undone",
            "Batches of writes that applied nothing and whose writes were then written one by one: the database refused the batch (a deadlock, a value out of range), or on MariaDB a write found its player changed",
            metrics.store_write_batches_undone.clone(),
        );
        r.register(
            "fleet_changes",
            "Changes of the fleet's module releases so far (publish, canary, promote, rollback), by operator or automatic, read from the audit log",
            metrics.fleet_changes.clone(),
        );
        r.register(
            "sockets_open",
            "WebSockets (GET /ws) open on this host",
            metrics.sockets_open.clone(),
        );
        r.register(
            "sockets_closed",
            "WebSockets closed, by the close code (1001 going away, 4003 a client that did not read, ...)",
            metrics.sockets_closed.clone(),
        );
        r.register(
            "pushes_written",
            "Pushes written by the commands of this host, by kind",
            metrics.pushes_written.clone(),
        );
        r.register(
            "pushes_delivered",
            "Pushes handed to sockets on this host, by kind (once per socket)",
            metrics.pushes_delivered.clone(),
        );
        r.register(
            "pushes_dropped",
            "Pushes not delivered because the socket's send queue was full (it is closed with 4003), by kind",
            metrics.pushes_dropped.clone(),
        );
        r.register(
            "pushes_resent",
            "Persistent pushes sent again to sockets that resumed (their backlog)",
            metrics.pushes_resent.clone(),
        );
        r.register(
            "players_online",
            "Players with a socket open on this host",
            metrics.players_online.clone(),
        );
        r.register(
            "log_messages_dropped",
            "Log lines dropped because the log queue was full",
            log_dropped,
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts a request as in flight until the guard drops.
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Counts a connection closed at the cap.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Counts a socket as open until the guard drops.
    pub fn socket_opened(&self) -> InFlight<'_> {
        self.sockets_open.inc();
        InFlight(&self.sockets_open)
    }

    /// Counts a closed socket by its close code.
    pub fn socket_closed(&self, code: u16) {
        self.sockets_closed
            .get_or_create(&SocketCloseLabels { code })
            .inc();
    }

    pub fn push_written(&self, kind: &str) {
        self.push_count(&self.pushes_written, kind);
    }

    pub fn push_delivered(&self, kind: &str) {
        self.push_count(&self.pushes_delivered, kind);
    }

    pub fn push_dropped(&self, kind: &str) {
        self.push_count(&self.pushes_dropped, kind);
    }

    fn push_count(&self, family: &Family<PushLabels, Counter>, kind: &str) {
        family
            .get_or_create(&PushLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn pushes_resent(&self, count: usize) {
        self.pushes_resent.inc_by(count as u64);
    }

    pub fn set_players_online(&self, players: usize) {
        self.players_online
            .set(i64::try_from(players).unwrap_or(i64::MAX));
    }

    /// Counts a turn that wrote nothing because the player changed after its read.
    pub fn turn_conflict(&self) {
        self.turn_conflicts.inc();
    }

    /// Counts a finished request. `cmd` is `None` outside `/logic` or when no module has it.
    pub fn request_finished(&self, path: &str, cmd: Option<&str>, ret: i64, seconds: f64) {
        let endpoint = match path {
            "/login" | "/logic" | "/logout" | "/health" | "/ws" => &path[1..],
            _ => "other",
        };
        let commands = endpoint == "logic" || endpoint == "ws";
        let cmd = cmd.unwrap_or(if commands { "other" } else { "" });
        let labels = LatencyLabels {
            endpoint: endpoint.to_owned(),
            cmd: cmd.to_owned(),
        };
        self.latency.get_or_create(&labels).observe(seconds);
        let labels = RequestLabels {
            endpoint: labels.endpoint,
            cmd: labels.cmd,
            ret,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// The text exposition, with the figures read from the modules and the store now.
    pub async fn render(&self, now: Scrape<'_>) -> String {
        self.refresh(&now).await;
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            slog::error!(now.log, "cannot encode the metrics"; "error" => %e);
        }
        text
    }

    async fn refresh(&self, now: &Scrape<'_>) {
        let registry = now.modules;
        for (module, kind, count) in registry.events().totals() {
            let labels = ModuleEventLabels {
                module,
                event: kind.name().to_owned(),
            };
            self.module_events
                .get_or_create(&labels)
                .inner()
                .store(count, Ordering::Relaxed);
        }
        let serving = registry.routes().versions();
        self.modules.clear();
        self.stuck_calls.clear();
        self.healthy.clear();
        let max_stuck = now.max_stuck_calls;
        for version in &serving {
            let labels = ModuleLabels {
                module: version.meta.name.clone(),
                version: version.meta.version.clone(),
            };
            let stuck = version.stats.counts().stuck;
            self.modules.get_or_create(&labels).set(1);
            self.stuck_calls
                .get_or_create(&labels)
                .set(i64::try_from(stuck).unwrap_or(i64::MAX));
            self.healthy
                .get_or_create(&labels)
                .set(i64::from(version.stats.healthy(max_stuck)));
        }
        let retirement = registry.retirement();
        let draining = retirement.draining();
        let stuck = draining.iter().filter(|d| d.stuck).count();
        for (state_name, count) in [
            ("serving", serving.len()),
            ("draining", draining.len() - stuck),
            ("stuck", stuck),
            ("not_unloaded", retirement.leaked().len()),
        ] {
            let labels = VersionLabels {
                state: state_name.to_owned(),
            };
            self.versions.get_or_create(&labels).set(count as i64);
        }
        match now.store.fleet().change_counts().await {
            Ok(counts) => {
                for (action, automatic, count) in counts {
                    let by = if automatic { "automatic" } else { "operator" };
                    let labels = FleetChangeLabels {
                        action,
                        by: by.to_owned(),
                    };
                    let count = i64::try_from(count).unwrap_or(i64::MAX);
                    self.fleet_changes.get_or_create(&labels).set(count);
                }
            }
            Err(e) => slog::warn!(now.log, "cannot count the fleet's changes"; "error" => %e),
        }
        let batched = now.store.batch_counts();
        for (kind, batches, turns) in [
            ("read", batched.read_batches, batched.reads),
            ("write", batched.write_batches, batched.writes),
        ] {
            let labels = BatchLabels {
                kind: kind.to_owned(),
            };
            let store = |family: &Family<BatchLabels, Counter>, count| {
                family
                    .get_or_create(&labels)
                    .inner()
                    .store(count, Ordering::Relaxed);
            };
            store(&self.store_batches, batches);
            store(&self.store_batched_turns, turns);
        }
        self.store_write_batches_undone
            .inner()
            .store(batched.write_batches_undone, Ordering::Relaxed);
        match now.store.active_sessions(now.now_ms).await {
            Ok(sessions) => {
                self.sessions
                    .set(i64::try_from(sessions).unwrap_or(i64::MAX));
            }
            Err(e) => slog::warn!(now.log, "cannot count sessions"; "error" => %e),
        }
    }
}
