//! The HTTP section as wrk measured it: the ceiling and the workloads, with the issue's
//! targets for the request path (bench/RESULTS.md; issue 23), or how to install wrk.

use super::table::Table;
use super::{verdict, Block};
use crate::throughput::HttpFigures;
use crate::wrk::{WrkFigures, WrkRow};

/// The share of the wrk-measured ceiling each workload should reach; p99 under 5 ms for all.
fn target_share(workload: &str) -> Option<f64> {
    match workload {
        "read" => Some(0.60),
        "write" => Some(0.40),
        "mixed" => Some(0.55),
        _ => None,
    }
}

const P99_TARGET_MS: f64 = 5.0;

pub(super) fn section(http: &HttpFigures) -> Vec<Block> {
    let heading = Block::Heading(format!(
        "HTTP, measured with wrk: 1 thread, {} connections, {} logged-in players, {} round(s) \
         of {:.0} s (medians)",
        http.shape.connections,
        http.players,
        http.rounds,
        http.shape.measure.as_secs_f64()
    ));
    let (ceiling, workloads) = match &http.wrk {
        WrkFigures::Missing(install) => {
            return vec![heading, Block::Text(format!("Not measured: {install}."))]
        }
        WrkFigures::Measured { ceiling, workloads } => (ceiling, workloads),
    };
    let mut table = Table::new(
        "lrrrrrrrl",
        [
            "workload",
            "req/s",
            "of ceiling",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "socket errors",
            "server µs CPU / req",
            "target",
        ],
    );
    let base = ceiling.throughput();
    let mut row = |row: &WrkRow, target: String| {
        table.row([
            row.name.to_owned(),
            format!("{:.0}", row.throughput()),
            format!("{:.0}%", row.throughput() / base * 100.0),
            format!("{:.2}", row.p50_ms()),
            format!("{:.2}", row.p99_ms()),
            row.non_2xx().to_string(),
            row.socket_errors().to_string(),
            format!("{:.1}", row.server_micros_per_request()),
            target,
        ])
    };
    row(ceiling, "(bare hyper, same JSON)".into());
    for workload in workloads {
        let share = workload.throughput() / base;
        let p99 = format!("p99 < 5 ms {}", verdict(workload.p99_ms() < P99_TARGET_MS));
        let target = match target_share(workload.name) {
            Some(min) => format!("≥ {:.0}% {}, {p99}", min * 100.0, verdict(share >= min)),
            None => p99,
        };
        row(workload, target);
    }
    vec![
        heading,
        Block::Text(
            "The same host process and ceiling as above, the generator `wrk -t1 -c64 --latency` \
             with a Lua script (`bench/src/wrk.rs`): each request the next player's token and \
             the workload's body. wrk reads no body, so failures show as non-2xx; it has no \
             warm-up (the host is warm from the rounds above)."
                .into(),
        ),
        Block::Table(table),
    ]
}
