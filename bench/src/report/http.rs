//! The request path's sections: the ABI call's cost and a canary's routing (criterion's
//! figures), and the HTTP workloads against the ceiling, with where their CPU goes.

use super::table::Table;
use super::{load_heading, mib, outcomes, verdict, Block};
use crate::criterion::{AbiFigures, RoutingFigures};
use crate::throughput::{HttpFigures, Row};

/// The host's own thread groups, in the order of the request path; other threads are summed.
const HOST_THREADS: [&str; 4] = ["tokio-rt-worker", "sqlite", "module-worker", "log-writer"];

pub(super) fn abi_section(abi: &[(&'static str, Option<AbiFigures>)]) -> Vec<Block> {
    let mut table = Table::new(
        "lrrrrrrl",
        [
            "command",
            "through the ABI",
            "direct Rust call",
            "boundary adds",
            "handler alone",
            "JSON alone",
            "JSON share",
            "target: boundary < 100 ns",
        ],
    );
    for (group, figures) in abi {
        let command = group.replace('_', " ");
        match figures {
            Some(f) => table.row([
                command,
                format!("{:.0}", f.through_abi),
                format!("{:.0}", f.direct_rust),
                format!("{:.0}", f.boundary()),
                format!("{:.0}", f.handler_only),
                format!("{:.0}", f.json_only),
                format!("{:.0}%", f.json_share() * 100.0),
                verdict(f.boundary() < 100.0).to_owned(),
            ]),
            None => table.note_row(
                command,
                "not run: `cargo bench -p bench --bench abi` left no figures",
            ),
        }
    }
    vec![
        Block::Heading("ABI call cost (criterion medians, ns per call)".into()),
        Block::Text(
            "`boundary adds` is through the ABI − direct, measured paired: the median of the \
             differences over alternating short rounds of both (steadier on a shared machine \
             than the difference of the two medians beside it)."
                .into(),
        ),
        Block::Table(table),
    ]
}

/// Beside the ABI table: what a canary adds to routing a command, and that as a share of a
/// `read` request's server CPU when the HTTP section ran.
pub(super) fn routing(routing: Option<&RoutingFigures>, http: Option<&HttpFigures>) -> Vec<Block> {
    let mut table = Table::new(
        "lrrr",
        [
            "routing a command",
            "module alone",
            "with a canary",
            "canary adds (paired)",
        ],
    );
    let module = "mall, prefix 11";
    let mut blocks = vec![Block::Text(
        "A canary's routing (`Routes::route`, criterion medians, ns per command): the mall's \
         version alone against the same version with itself as its canary for 30% of players, \
         so that only the routing differs (the player's id is hashed to choose); `canary adds` \
         is measured paired, as `boundary adds` is."
            .into(),
    )];
    let Some(f) = routing else {
        table.note_row(
            module,
            "not run: `cargo bench -p bench --bench abi` left no figures",
        );
        blocks.push(Block::Table(table));
        return blocks;
    };
    table.row([
        module.to_owned(),
        format!("{:.0}", f.plain),
        format!("{:.0}", f.canaried),
        format!("{:.0}", f.canary_adds()),
    ]);
    blocks.push(Block::Table(table));
    let read = http.and_then(|h| h.workloads.iter().find(|w| w.name == "read"));
    let share = match read {
        Some(read) => {
            let server_us = read.micros_per_request(read.cpu.server_total());
            format!(
                ": {:.2}% of a `read` request's server CPU ({server_us:.1} µs, HTTP section)",
                f.canary_adds() / (server_us * 1e3) * 100.0
            )
        }
        None => String::new(),
    };
    blocks.push(Block::Text(format!(
        "Canary routing adds {:.0} ns per command (paired){share}.",
        f.canary_adds()
    )));
    blocks
}

pub(super) fn section(http: &HttpFigures) -> Vec<Block> {
    let ceiling = http.ceiling.throughput();
    let mut table = Table::new(
        "lrrrrrrrrrl",
        [
            "workload",
            "req/s",
            "of ceiling",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "non-2xx",
            "ret < 0",
            "refused (ret > 0)",
            "no reply",
            "target",
        ],
    );
    let mut row = |row: &Row, target: String| {
        let figures = [
            row.name.to_owned(),
            format!("{:.0}", row.throughput()),
            format!("{:.0}%", row.throughput() / ceiling * 100.0),
            format!("{:.2}", row.latency_ms(50.0)),
            format!("{:.2}", row.latency_ms(99.0)),
            format!("{:.2}", row.latency_ms(99.9)),
        ];
        table.row(figures.into_iter().chain(outcomes(row)).chain([target]))
    };
    row(&http.ceiling, "(bare hyper, same JSON)".into());
    for workload in &http.workloads {
        let share = workload.throughput() / ceiling;
        let target = match workload.name {
            "read" => format!(
                "≥ 60% {}, p99 < 5 ms {}",
                verdict(share >= 0.6),
                verdict(workload.latency_ms(99.0) < 5.0)
            ),
            "write" => format!("≥ 30% {}", verdict(share >= 0.3)),
            _ => String::new(),
        };
        row(workload, target);
    }
    vec![
        load_heading("HTTP", &http.shape, http.players, http.rounds),
        Block::Table(table),
        Block::Text(format!(
            "Host memory (RSS): {:.1} MiB idle with {} players logged in, {:.1} MiB at most \
             under `mixed`.",
            mib(http.rss_idle_kib),
            http.players,
            mib(http.rss_mixed_peak_kib)
        )),
        Block::Text(
            "Where the CPU goes, in µs of CPU per request in the measured windows. The server \
             and the generator share the machine's cores, so req/s ≈ cores × 10⁶ / (server + \
             generator):"
                .into(),
        ),
        Block::Table(cpu_table(http)),
        Block::Text(
            "The default profile (no `--profile`: `config/default.toml` alone, the access line \
             also to stderr at `info`, here into a file) against the prod profile, `read`, \
             same rounds:"
                .into(),
        ),
        Block::Table(profiles_table(http)),
    ]
}

/// `read` in the default profile against the prod profile, with the target: within
/// 5% of prod's throughput.
fn profiles_table(http: &HttpFigures) -> Table {
    let mut table = Table::new(
        "lrrrrl",
        ["run", "req/s", "of prod", "p50 ms", "p99 ms", "target"],
    );
    let prod = http.workloads.iter().find(|w| w.name == "read");
    let prod_rate = prod.map_or(f64::NAN, Row::throughput);
    for row in prod.into_iter().chain([&http.default_read]) {
        let share = row.throughput() / prod_rate;
        let (name, target) = if std::ptr::eq(row, &http.default_read) {
            let met = share >= 0.95;
            (
                row.name.to_owned(),
                format!("≥ 95% of prod {}", verdict(met)),
            )
        } else {
            ("read, prod profile".to_owned(), String::new())
        };
        table.row([
            name,
            format!("{:.0}", row.throughput()),
            format!("{:.0}%", share * 100.0),
            format!("{:.2}", row.latency_ms(50.0)),
            format!("{:.2}", row.latency_ms(99.0)),
            target,
        ]);
    }
    table
}

/// Where the CPU goes, per request: the server's threads and the generator's. The ceiling's
/// server has no thread groups of the host's.
fn cpu_table(http: &HttpFigures) -> Table {
    let titles = ["run", "server"]
        .into_iter()
        .chain(HOST_THREADS)
        .chain(["other threads", "generator"]);
    let mut table = Table::new("lrrrrrrr", titles);
    for row in std::iter::once(&http.ceiling).chain(&http.workloads) {
        let per_request = |seconds: f64| format!("{:.1}", row.micros_per_request(seconds));
        let server = row.cpu.server_total();
        let threads: Vec<String> = if row.name == "ceiling" {
            vec![String::new(); HOST_THREADS.len() + 1]
        } else {
            let group = |name: &str| row.cpu.server.get(name).copied().unwrap_or_default();
            let known: f64 = HOST_THREADS.iter().map(|name| group(name)).sum();
            HOST_THREADS
                .iter()
                .map(|name| per_request(group(name)))
                .chain([per_request(server - known)])
                .collect()
        };
        table.row(
            [row.name.to_owned(), per_request(server)]
                .into_iter()
                .chain(threads)
                .chain([per_request(row.cpu.generator)]),
        );
    }
    table
}
