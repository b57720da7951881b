//! The storage sections: the workloads on each store and setup, with where the slowest
//! setup's CPU goes, and what SQLite's `synchronous = FULL` costs.

use super::table::{cell_text, Table};
use super::{load_heading, outcomes, Block};
use crate::durability::{DurabilityFigures, Synchronous};
use crate::stores::{Database, Outcome, Setup, StoreRow, StoresFigures};
use std::collections::BTreeMap;

pub(super) fn section(stores: &StoresFigures, cores: usize) -> Vec<Block> {
    let pool = stores
        .pool_size
        .map_or("`store.pool_size`".to_owned(), |n| {
            format!("{n} (`store.pool_size`)")
        });
    let batches = stores.batches.map_or(String::new(), |(readers, writers)| {
        format!(
            ", batches under way at once: {readers} of reads (`store.batch_readers`) and \
             {writers} of writes (`store.batch_writers`)"
        )
    });
    let workers = crate::stores::NGINX_WORKERS;
    let mut table = Table::new(
        "llrrrrrrrr",
        [
            "setup",
            "workload",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/req",
            "non-2xx",
            "ret < 0",
            "refused (ret > 0)",
            "no reply",
        ],
    );
    for figures in &stores.setups {
        let name = figures.setup.name();
        match &figures.outcome {
            Outcome::Measured(rows) => {
                for store_row in rows {
                    let row = &store_row.row;
                    let figures = [
                        name.clone(),
                        row.name.to_owned(),
                        format!("{:.0}", row.throughput()),
                        format!("{:.2}", row.latency_ms(50.0)),
                        format!("{:.2}", row.latency_ms(99.0)),
                        format!("{:.1}", row.micros_per_request(all_cpu(store_row))),
                    ];
                    table.row(figures.into_iter().chain(outcomes(row)));
                }
            }
            Outcome::Skipped(why) => table.note_row(name, format!("skipped: {}", cell_text(why))),
            Outcome::Failed(why) => table.note_row(name, format!("**FAILED**: {}", cell_text(why))),
        }
    }
    let mut blocks = vec![
        load_heading("Stores", &stores.shape, stores.players, stores.rounds),
        Block::Text(format!(
            "One host on each store, then two hosts sharing one server database behind nginx \
             (the example `config/deploy/nginx/game-host.conf`, its upstream the two hosts, \
             {workers} workers). Each server setup has a scratch database of its own; \
             connections per host: {pool}{batches}. \"CPU\" is every process's CPU (hosts, database \
             server, nginx, generator) per request."
        )),
        Block::Table(table),
    ];
    if let Some((setup, rows)) = stores.slowest() {
        blocks.extend(cpu_section(setup, rows, cores));
    }
    blocks
}

/// All the CPU seconds of a row: hosts, database server, nginx, generator.
fn all_cpu(row: &StoreRow) -> f64 {
    row.row.cpu.server_total() + row.database_cpu + row.nginx_cpu + row.row.cpu.generator
}

/// Where the CPU goes in one setup, per request: the hosts' thread groups (the largest four,
/// the rest summed), the database server, nginx, the generator.
fn cpu_section(setup: &Setup, rows: &[StoreRow], cores: usize) -> Vec<Block> {
    let (name, hosts, database) = (setup.name(), setup.hosts, setup.database);
    let mut groups: BTreeMap<&str, f64> = BTreeMap::new();
    for row in rows {
        for (group, seconds) in &row.row.cpu.server {
            *groups.entry(group.as_str()).or_default() += seconds;
        }
    }
    let mut largest: Vec<(&str, f64)> = groups.into_iter().collect();
    largest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shown: Vec<&str> = largest.iter().take(4).map(|(group, _)| *group).collect();
    let hosts_text = if hosts == 1 {
        "the host's threads by group".to_owned()
    } else {
        format!("the hosts' threads by group, summed over the {hosts} hosts")
    };
    let database_text = match database {
        Database::Sqlite => "SQLite runs inside the host (its `sqlite` thread)",
        Database::Postgres => {
            "The database server is PostgreSQL's postmaster, its shared processes and this \
             database's backends"
        }
        Database::MariaDb => {
            "The database server is the `mariadbd` process (other clients' work on it counts \
             too, if any were busy)"
        }
    };
    let titles = ["workload", "all", "host(s)"]
        .into_iter()
        .chain(shown.iter().copied())
        .chain([
            "other host threads",
            "database server",
            "nginx",
            "generator",
        ]);
    let mut table = Table::new(&format!("l{}", "r".repeat(shown.len() + 6)), titles);
    for row in rows {
        let per_request = |seconds: f64| format!("{:.1}", row.row.micros_per_request(seconds));
        let host = row.row.cpu.server_total();
        let group = |name: &str| row.row.cpu.server.get(name).copied().unwrap_or_default();
        let known: f64 = shown.iter().map(|name| group(name)).sum();
        let database_cpu = if database == Database::Sqlite {
            "(in the host)".into()
        } else {
            per_request(row.database_cpu)
        };
        let nginx_cpu = if hosts > 1 {
            per_request(row.nginx_cpu)
        } else {
            String::new()
        };
        table.row(
            [
                row.row.name.to_owned(),
                per_request(all_cpu(row)),
                per_request(host),
            ]
            .into_iter()
            .chain(shown.iter().map(|name| per_request(group(name))))
            .chain([
                per_request(host - known),
                database_cpu,
                nginx_cpu,
                per_request(row.row.cpu.generator),
            ]),
        );
    }
    vec![
        Block::Text(format!(
            "Where the time goes in the slowest setup, {name}: µs of CPU per request in the \
             measured windows, by process; {hosts_text}. {database_text}. Everything shares \
             the machine's {cores} cores, so req/s ≈ {cores} × 10⁶ / all when the CPU is the \
             limit:"
        )),
        Block::Table(table),
    ]
}

pub(super) fn durability_section(figures: &DurabilityFigures) -> Vec<Block> {
    let mut table = Table::new(
        "lrrrrrrrl",
        [
            "synchronous",
            "turns/s, one by one",
            "µs per turn",
            "commit p50 ms",
            "commit p99 ms",
            "the host's `write` req/s",
            "its p99 ms",
            "failed",
            "a committed turn survives",
        ],
    );
    for mode in &figures.modes {
        let survives = match mode.synchronous {
            Synchronous::Normal => "a killed process; not always a power loss or OS crash",
            Synchronous::Full => "a killed process, a power loss, an OS crash",
        };
        table.row([
            mode.synchronous.name().to_owned(),
            format!("{:.0}", mode.throughput()),
            format!("{:.1}", 1e6 / mode.throughput()),
            format!("{:.3}", mode.commit_ms(0.5)),
            format!("{:.3}", mode.commit_ms(0.99)),
            format!("{:.0}", mode.host_write_throughput()),
            format!("{:.2}", mode.host_write_ms(99.0)),
            mode.host_write_failed().to_string(),
            survives.to_owned(),
        ]);
    }
    let mut blocks = vec![
        Block::Heading(
            "Durability: SQLite `synchronous`, `NORMAL` (the host's) against `FULL`".into(),
        ),
        Block::Text(format!(
            "The `1201` turn through the host's own store (`Store::begin_turn`, then \
             `PlayerTurn::end` with a new name, timed as the commit), opened with each setting \
             as the host opens it, one turn after another, on a database made by that store; \
             {} round(s) of {:.1} s per setting, alternating (medians); the database on {}. \
             Then the real host with each setting (`store.sqlite_synchronous`) under `write`, \
             {} connections, in alternating rounds: it commits the turns queued together in \
             one transaction, so it syncs once per group.",
            figures.rounds,
            figures.window.as_secs_f64(),
            figures.filesystem,
            figures.connections
        )),
        Block::Table(table),
    ];
    if let (Some(normal), Some(full)) = (
        figures.mode(Synchronous::Normal),
        figures.mode(Synchronous::Full),
    ) {
        blocks.push(Block::Text(format!(
            "`FULL` makes a lone turn {:.1}× as long ({:+.0} µs: a sync of the log per \
             commit). Under load, with turns committed in groups, the host's `write` with \
             `FULL` reaches {:.0}% of its throughput with `NORMAL`.",
            normal.throughput() / full.throughput(),
            1e6 / full.throughput() - 1e6 / normal.throughput(),
            100.0 * full.host_write_throughput() / normal.host_write_throughput()
        )));
    }
    blocks
}
