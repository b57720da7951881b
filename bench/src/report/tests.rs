//! The report of a run with made-up figures: every section renders, each table row has its
//! header's cells, and the generated part of RESULTS.md is replaced in place.

use super::*;
use crate::criterion::{AbiFigures, RoutingFigures};
use crate::durability::Mode;
use crate::durability::Synchronous;
use crate::fleet::{Convergence, DatabaseFigures, FleetFigures};
use crate::load::{LoadRun, Shape};
use crate::push::cross_host::{CrossHostFigures, Latencies};
use crate::push::{OneHost, PushFigures, Rate, RateRun, Round};
use crate::reload::{Checkpoint, Memory};
use crate::soak::{Answer, Kind, KindFigures};
use crate::stores::{Database, Outcome, SetupFigures, StoreRow};
use crate::throughput::{CpuUse, Row};
use crate::wrk::{WrkFigures, WrkRow, WrkRun};
use hdrhistogram::Histogram;
use std::time::Duration;

/// A load run of `requests` requests in 10 s, with latencies of 1 to 5 ms.
fn run(requests: u64, refused: u64) -> LoadRun {
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
    for micros in [1_000, 2_000, 3_000, 4_000, 5_000] {
        latency.record(micros).unwrap();
    }
    LoadRun {
        requests,
        seconds: 10.0,
        latency,
        non_2xx: 0,
        negative_ret: 0,
        refused,
        failed: 0,
    }
}

fn cpu(groups: &[(&str, f64)], generator: f64) -> CpuUse {
    CpuUse {
        server: groups.iter().map(|(g, s)| (g.to_string(), *s)).collect(),
        generator,
    }
}

fn row(name: &'static str, requests: u64, cpu: CpuUse) -> Row {
    Row {
        name,
        runs: vec![run(requests, 0), run(requests + 1000, 0)],
        cpu,
    }
}

const SHAPE: Shape = Shape {
    connections: 64,
    warmup: Duration::from_secs(2),
    measure: Duration::from_secs(10),
};

/// A wrk row of one run at `rate` req/s with a p99 of `p99_ms`.
fn wrk_row(name: &'static str, rate: f64, p99_ms: f64) -> WrkRow {
    let mut row = WrkRow::new(name);
    row.runs.push(WrkRun {
        requests_per_second: rate,
        p50_ms: 0.9,
        p99_ms,
        non_2xx: 0,
        socket_errors: 0,
    });
    row
}

fn host_cpu() -> CpuUse {
    cpu(
        &[
            ("tokio-rt-worker", 3.0),
            ("sqlite", 1.0),
            ("module-worker", 0.5),
            ("log-writer", 0.1),
            ("game-host", 0.05),
        ],
        1.5,
    )
}

fn sample() -> Report {
    let store_rows = |scale: u64| {
        ["read", "write", "mixed"]
            .into_iter()
            .map(|name| StoreRow {
                row: row(name, 30_000 / scale, host_cpu()),
                database_cpu: 2.0,
                nginx_cpu: 0.5,
            })
            .collect::<Vec<_>>()
    };
    let kind = |kind: Kind, answers: &[(Answer, u64)], unexpected: u64| KindFigures {
        kind,
        sent: answers.iter().map(|(_, n)| n).sum::<u64>() + 2,
        answers: answers.iter().copied().collect(),
        no_reply: 2,
        server_errors: 0,
        unexpected,
        first_unexpected: (unexpected > 0).then(|| "HTTP/1.1 200 OK | {\"ret\":0}".to_owned()),
    };
    Report {
        command: "make bench".into(),
        machine: Machine {
            cpu: "Test CPU".into(),
            cores: 2,
            commit: "abc1234".into(),
            date: "2026-12-06 10:00 UTC".into(),
            rustc: "rustc 1.95.0".into(),
        },
        abi: vec![
            (
                "mall_1101",
                Some(AbiFigures {
                    through_abi: 3024.0,
                    direct_rust: 1638.0,
                    handler_only: 823.0,
                    json_only: 582.0,
                    paired_boundary: Some(36.0),
                }),
            ),
            ("mall_1103", None),
        ],
        routing: Some(RoutingFigures {
            plain: 21.0,
            canaried: 118.0,
            paired: Some(95.0),
        }),
        http: Some(HttpFigures {
            shape: SHAPE,
            players: 200,
            rounds: 2,
            ceiling: row("ceiling", 800_000, cpu(&[("tokio-rt-worker", 2.0)], 1.0)),
            workloads: vec![
                row("read", 530_000, host_cpu()),
                row("write", 350_000, host_cpu()),
                row("mixed", 570_000, host_cpu()),
            ],
            default_read: row("read, default profile", 510_000, host_cpu()),
            wrk: WrkFigures::Measured {
                ceiling: wrk_row("ceiling", 107_000.0, 2.1),
                workloads: vec![
                    wrk_row("read", 66_000.0, 4.2),
                    wrk_row("write", 40_000.0, 6.5),
                    wrk_row("mixed", 58_000.0, 4.4),
                ],
            },
            rss_idle_kib: 17_800,
            rss_mixed_peak_kib: 23_700,
        }),
        reload: Some(ReloadFigures {
            latency_reloads: 100,
            latency_p50: Duration::from_micros(26_800),
            latency_p99: Duration::from_micros(31_100),
            start: Memory {
                rss_kib: 30_600,
                maps: 166,
            },
            checkpoints: vec![Checkpoint {
                reloads: 1000,
                memory: Memory {
                    rss_kib: 33_200,
                    maps: 167,
                },
                retired: 1000,
                not_unloaded: 0,
                served: 63_823,
                failed: 0,
                reloads_per_sec: 253.4,
            }],
        }),
        startup: Some(vec![
            Start {
                listening: Duration::from_micros(17_300),
                first_reply: Duration::from_micros(19_600),
            },
            Start {
                listening: Duration::from_micros(16_300),
                first_reply: Duration::from_micros(18_200),
            },
        ]),
        stores: Some(StoresFigures {
            shape: SHAPE,
            players: 200,
            rounds: 2,
            pool_size: Some(16),
            batches: Some((1, 1)),
            setups: vec![
                SetupFigures {
                    setup: crate::stores::SETUPS[0],
                    outcome: Outcome::Measured(store_rows(1)),
                },
                SetupFigures {
                    setup: crate::stores::SETUPS[1],
                    outcome: Outcome::Skipped("GAME_BENCH_POSTGRES=off".into()),
                },
                SetupFigures {
                    setup: crate::stores::SETUPS[2],
                    outcome: Outcome::Failed("nginx | exited\nearly".into()),
                },
                SetupFigures {
                    setup: crate::stores::SETUPS[4],
                    outcome: Outcome::Measured(store_rows(10)),
                },
            ],
        }),
        durability: Some(DurabilityFigures {
            rounds: 2,
            window: Duration::from_secs(5),
            filesystem: "ext4 on /dev/vda".into(),
            connections: 64,
            modes: Synchronous::BOTH
                .iter()
                .map(|&synchronous| Mode {
                    synchronous,
                    turns_per_sec: vec![50_000.0, 52_000.0],
                    commits: (1..=100).map(Duration::from_micros).collect(),
                    host_write: vec![run(350_000, 0)],
                })
                .collect(),
        }),
        fleet: Some(FleetFigures {
            publishes: 50,
            poll_ms: Some(250),
            databases: vec![
                DatabaseFigures {
                    database: Database::Postgres,
                    outcome: crate::fleet::Outcome::Measured(Convergence {
                        times: (1..=50).map(|n| Duration::from_millis(300 + n)).collect(),
                        not_converged: Vec::new(),
                    }),
                },
                DatabaseFigures {
                    database: Database::MariaDb,
                    outcome: crate::fleet::Outcome::Measured(Convergence {
                        times: (1..=49).map(|n| Duration::from_millis(400 + n)).collect(),
                        not_converged: vec![
                            "publish 7/50 (libmall.so): fleet-c serves 5f1c0a9e2b7d".into(),
                        ],
                    }),
                },
            ],
        }),
        push: Some(push_sample()),
        soak: Some(SoakFigures {
            duration: Duration::from_secs(600),
            connections: 64,
            players: 200,
            load: run(28_000_000, 1_400_000),
            reloads: 298,
            reloads_failed: 0,
            first_reload_failure: None,
            retired: 298,
            not_unloaded: 0,
            rss_start_kib: 17_900,
            rss_peak_kib: 33_400,
            rss_end_kib: 29_100,
            hostile: crate::soak::HostileFigures {
                kinds: [
                    kind(Kind::GarbageBody, &[(Answer::Ret(-2), 7310)], 0),
                    kind(
                        Kind::BadData,
                        &[(Answer::Ret(3), 3591), (Answer::Ret(1), 2130)],
                        1,
                    ),
                    kind(Kind::GarbageHttp, &[(Answer::Status(400), 7031)], 0),
                    kind(Kind::Abandoned, &[], 0),
                ]
                .into_iter()
                .map(|figures| (figures.kind, figures))
                .collect(),
            },
        }),
    }
}

/// The push section: 10,000 sockets at 8.2 KB each, three fan-out rounds, two rate rounds,
/// PostgreSQL measured and MariaDB skipped.
fn push_sample() -> PushFigures {
    let round = |last_ms: u64| Round {
        reached: 10_000,
        first: Duration::from_millis(2),
        half: Duration::from_millis(last_ms / 2),
        last: Duration::from_millis(last_ms),
    };
    let rate_run = RateRun {
        seconds: 10.0,
        answered: 50_000,
        not_answered: 0,
        delivered: 49_000,
        host_cpu: 9.8,
    };
    PushFigures {
        planned: 10_000,
        open_files: Some(20_000),
        one_host: Ok(OneHost {
            sockets: 10_000,
            rss_before_kib: 20_000,
            rss_after_kib: 100_000,
            fanout: vec![round(300), round(320), round(310)],
            rate: Rate {
                senders: 64,
                receivers: 10_000,
                shape: Shape {
                    connections: 64,
                    warmup: Duration::from_secs(2),
                    measure: Duration::from_secs(10),
                },
                runs: vec![rate_run, rate_run],
            },
            closed: [(Some(4003), 2)].into_iter().collect(),
        }),
        cross_host: CrossHostFigures {
            samples: 200,
            poll_ms: Some(100),
            databases: vec![
                crate::push::cross_host::DatabaseFigures {
                    database: Database::Postgres,
                    outcome: crate::push::cross_host::Outcome::Measured(Latencies {
                        times: (1..=199).map(Duration::from_millis).collect(),
                        lost: 1,
                    }),
                },
                crate::push::cross_host::DatabaseFigures {
                    database: Database::MariaDb,
                    outcome: crate::push::cross_host::Outcome::Skipped(
                        "GAME_BENCH_MYSQL=off".into(),
                    ),
                },
            ],
        },
    }
}

/// The cells of a table line, split on the `|` that are not escaped.
fn cells(line: &str) -> usize {
    let unescaped = line
        .match_indices('|')
        .filter(|(at, _)| !line[..*at].ends_with('\\'));
    unescaped.count() - 1
}

#[test]
fn every_section_renders_and_each_row_has_its_headers_cells() {
    let markdown = sample().markdown();
    let headings: Vec<&str> = markdown
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|heading| heading.split([':', ' ']).next().unwrap())
        .collect();
    assert_eq!(
        headings,
        [
            "ABI",
            "HTTP",
            "HTTP,",
            "Reloads",
            "Start-up",
            "Stores",
            "Durability",
            "Fleet",
            "Sockets",
            "Soak"
        ],
        "{markdown}"
    );
    let mut tables = 0;
    for table in markdown
        .split("\n\n")
        .filter(|block| block.starts_with('|'))
    {
        tables += 1;
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("|---"), "{table}");
        for line in &lines {
            assert_eq!(cells(line), cells(lines[0]), "{line}\nin\n{table}");
        }
    }
    assert_eq!(tables, 17, "{markdown}");
    // The canary's routing, paired, and as a share of `read`'s server CPU per request.
    assert!(
        markdown.contains("| mall, prefix 11 | 21 | 118 | 95 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "Canary routing adds 95 ns per command (paired): 2.17% of a `read` request's \
             server CPU (4.4 µs, HTTP section)."
        ),
        "{markdown}"
    );
    // The wrk targets, each judged on its own ratio of the wrk-measured ceiling.
    assert!(
        markdown.contains(
            "| read | 66000 | 62% | 0.90 | 4.20 | 0 | 0 | 0.0 | ≥ 60% met, p99 < 5 ms met |"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("| write | 40000 | 37% | 0.90 | 6.50 | 0 | 0 | 0.0 | ≥ 40% **MISSED**, p99 < 5 ms **MISSED** |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| read, default profile | 51050 | 96% |"),
        "{markdown}"
    );
    assert!(markdown.contains("≥ 95% of prod met"), "{markdown}");
    assert!(
        markdown.contains(
            "connections per host: 16 (`store.pool_size`), batches under way at once: 1 of \
             reads (`store.batch_readers`) and 1 of writes (`store.batch_writers`)."
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("| MariaDB, 1 host | **FAILED**: nginx \\| exited early |"),
        "{markdown}"
    );
    // A fleet meets its target only if every publish converged.
    assert!(
        markdown.contains("| PostgreSQL | 50 | 0 | 326 | 350 | 350 | p99 < 1 s met |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| MariaDB | 50 | 1 | 425 | 449 | 449 | p99 < 2 s **MISSED** |"),
        "{markdown}"
    );
    // An idle socket's memory against the goal, the fan-out's medians, pushes per second.
    assert!(
        markdown.contains("| 10000 | 19.5 | 97.7 | 8.2 | met |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| 10000 | 3 | 2.0 | 155.0 | 310.0 | 300.0–320.0 | 0 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| 64 | 10000 | 5000 | 4900 | 98% | 200 | 0 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| PostgreSQL | 200 | 1 | 100.0 | 197.0 | 199.0 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| MariaDB | skipped: GAME_BENCH_MYSQL=off |"),
        "{markdown}"
    );
    assert!(markdown.contains("Sockets closed during the run: 2 with 4003."));
    assert!(markdown.ends_with(
        "no 5xx and every well-formed hostile request answered as expected **MISSED**.\n\n"
    ));
}

#[test]
fn without_wrk_the_section_says_how_to_install_it() {
    let mut report = sample();
    if let Some(http) = &mut report.http {
        http.wrk = WrkFigures::Missing(crate::wrk::INSTALL);
    }
    let markdown = report.markdown();
    assert!(
        markdown.contains("Not measured: install wrk (`apt-get install wrk`) to measure with it."),
        "{markdown}"
    );
}

#[test]
fn routing_without_the_http_section_is_in_ns_and_without_the_bench_not_run() {
    let mut report = sample();
    report.http = None;
    let markdown = report.markdown();
    assert!(
        markdown.contains("Canary routing adds 95 ns per command (paired).\n"),
        "{markdown}"
    );
    report.routing = None;
    let markdown = report.markdown();
    assert!(
        markdown.contains(
            "| mall, prefix 11 | not run: `cargo bench -p bench --bench abi` left no figures | | |"
        ),
        "{markdown}"
    );
    assert!(!markdown.contains("Canary routing adds"), "{markdown}");
}

#[test]
fn a_table_is_its_titles_alignments_and_rows() {
    let mut table = Table::new("lr", ["name", "count"]);
    table.row(["a", "1"]);
    table.note_row("b", "none");
    table.row(["", "3"]);
    assert_eq!(
        table.markdown(),
        "| name | count |\n|---|---:|\n| a | 1 |\n| b | none |\n| | 3 |"
    );
}

#[test]
#[should_panic(expected = "a row of 1 cells in a table of 2 columns")]
fn a_row_short_of_cells_is_refused() {
    let mut table = Table::new("lr", ["name", "count"]);
    table.row(["a"]);
}

#[test]
fn write_into_replaces_only_the_generated_part() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("RESULTS.md");
    std::fs::write(
        &file,
        format!("# Title\n{BEGIN}\nold\n{END}\n## Analysis\n"),
    )
    .unwrap();
    write_into(&file, "new\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("# Title\n{BEGIN}\nnew\n{END}\n## Analysis\n")
    );
}

#[test]
fn write_into_appends_when_there_is_no_generated_part() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("RESULTS.md");
    std::fs::write(&file, "# Title\n").unwrap();
    write_into(&file, "figures\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("# Title\n\n{BEGIN}\nfigures\n{END}\n")
    );
}
