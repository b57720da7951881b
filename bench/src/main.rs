//! `game-bench`: the figures behind every speed and memory claim, measured against a ceiling
//! in the same run. `make bench` runs the ABI bench (criterion) first, then this.
//!
//! Sections: `http` (the ceiling and the `read`, `write`, `mixed` workloads on the real
//! `game-host` binary, with its memory, measured with our generator and with wrk; `read` in
//! the default profile beside the prod profile's), `reload` (hot-swap latency, failures and memory over
//! thousands of reloads), `startup` (exec to the first reply), `stores` (the same workloads
//! on SQLite, PostgreSQL and MariaDB, and on two hosts behind nginx sharing a server database),
//! `durability` (what SQLite's `synchronous = FULL` would cost against the host's `NORMAL`),
//! `fleet` (from `game-host publish` to three hosts serving the release, on PostgreSQL and
//! MariaDB), `push` (the WebSocket channel: an idle socket's memory, a live push to a room of
//! 10,000 sockets, kept pushes per second, a push across two hosts on PostgreSQL and MariaDB)
//! and `soak` (10 minutes of `mixed` with a reload every 2 s and a hostile client beside it).
//! Figures are printed, never asserted: the machine is noisy, so each is a median of several
//! runs, printed with the machine, commit and date. Only a run that could not measure at all
//! fails (a database server or nginx that is not there skips its rows, saying so).

mod ceiling;
mod criterion;
mod durability;
mod fleet;
mod load;
mod machine;
mod process;
mod push;
mod reload;
mod report;
mod soak;
mod startup;
mod stats;
mod stores;
mod throughput;
mod wrk;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// The same allocator as `game-host`, so that the ceiling (served from this binary) and the
/// host differ in what they do, not in how they allocate.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "game-bench",
    about = "Benchmarks of game-host against a bare-hyper ceiling"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A short run (seconds, not minutes): a smoke test, not figures to quote.
    #[arg(long, env = "QUICK", value_parser = clap::builder::FalseyValueParser::new())]
    quick: bool,
    /// Write the report into this Markdown file, between the game-bench markers.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Which sections to run (default: all).
    #[arg(long, value_delimiter = ',')]
    sections: Vec<Section>,
    /// The host's profile folder.
    #[arg(long, default_value = "config")]
    config_dir: PathBuf,
    /// The command line to print in the report.
    #[arg(long, default_value = "game-bench")]
    command_line: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ceiling (a bare hyper server) and print `listening on <addr>`.
    #[command(hide = true)]
    Ceiling,
    /// Load a running host (log in the players, then run one workload) and print the figures:
    /// for profiling, e.g. under `perf record -p <host pid>`.
    Load {
        /// The host's client address.
        addr: std::net::SocketAddr,
        #[arg(long, value_enum, default_value = "read")]
        workload: load::Workload,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    Http,
    Reload,
    Startup,
    Stores,
    Durability,
    Fleet,
    Push,
    Soak,
}

/// How much of everything a run does.
struct Plan {
    shape: load::Shape,
    rounds: usize,
    latency_reloads: usize,
    checkpoints: &'static [usize],
    starts: usize,
    /// Each `synchronous` setting's window, per round (`rounds` rounds).
    durability_window: Duration,
    /// Publishes to the fleet, per database server.
    publishes: usize,
    /// Sockets on one host, fan-out rounds and cross-host samples (the pushes-per-second
    /// rounds take `shape` and `rounds`).
    push_sockets: usize,
    fanout_rounds: usize,
    push_samples: usize,
    soak: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                shape: load::Shape {
                    connections: 64,
                    warmup: Duration::from_millis(500),
                    measure: Duration::from_secs(2),
                },
                rounds: 1,
                latency_reloads: 20,
                checkpoints: &[100, 1_000],
                starts: 3,
                durability_window: Duration::from_millis(500),
                publishes: 10,
                push_sockets: 1_000,
                fanout_rounds: 3,
                push_samples: 20,
                soak: Duration::from_secs(10),
            }
        } else {
            Plan {
                shape: load::Shape {
                    connections: 64,
                    warmup: Duration::from_secs(2),
                    measure: Duration::from_secs(10),
                },
                rounds: 3,
                latency_reloads: 100,
                checkpoints: &[1_000, 10_000],
                starts: 5,
                durability_window: Duration::from_secs(5),
                publishes: 50,
                push_sockets: 10_000,
                fanout_rounds: 7,
                push_samples: 200,
                soak: Duration::from_secs(600),
            }
        }
    }
}

/// Logged-in players the load is spread over.
const PLAYERS: usize = 200;

/// `game-bench load`: one workload against a host that is already running.
async fn load_once(
    addr: std::net::SocketAddr,
    workload: load::Workload,
    seconds: u64,
    connections: usize,
) -> anyhow::Result<()> {
    let tokens = std::sync::Arc::new(load::login_players(addr, PLAYERS).await?);
    let shape = load::Shape {
        connections,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(seconds),
    };
    let run = load::run(addr, workload, tokens, shape).await;
    println!(
        "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; {} non-2xx, {} ret < 0, {} refused, {} no reply",
        workload.name(),
        run.throughput(),
        run.latency_ms(50.0),
        run.latency_ms(99.0),
        run.latency_ms(99.9),
        run.non_2xx,
        run.negative_ret,
        run.refused,
        run.failed
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Command::Ceiling) => return runtime.block_on(ceiling::serve()),
        Some(Command::Load {
            addr,
            workload,
            seconds,
            connections,
        }) => return runtime.block_on(load_once(addr, workload, seconds, connections)),
        None => {}
    }
    let plan = Plan::new(cli.quick);
    let wants = |section| cli.sections.is_empty() || cli.sections.contains(&section);
    let build = process::build_dir()?;
    let report = runtime.block_on(async {
        let http = if wants(Section::Http) {
            Some(throughput::run(&build, &cli.config_dir, plan.shape, PLAYERS, plan.rounds).await?)
        } else {
            None
        };
        let reload = if wants(Section::Reload) {
            eprintln!("reloads");
            Some(reload::run(&build, plan.latency_reloads, plan.checkpoints).await?)
        } else {
            None
        };
        let startup = if wants(Section::Startup) {
            eprintln!("start-up");
            Some(startup::run(&build, &cli.config_dir, plan.starts).await?)
        } else {
            None
        };
        let stores = if wants(Section::Stores) {
            eprintln!("stores");
            Some(stores::run(&build, &cli.config_dir, plan.shape, PLAYERS, plan.rounds).await?)
        } else {
            None
        };
        let durability = if wants(Section::Durability) {
            eprintln!("durability");
            Some(
                durability::run(
                    &build,
                    &cli.config_dir,
                    plan.shape,
                    PLAYERS,
                    plan.rounds,
                    plan.durability_window,
                )
                .await?,
            )
        } else {
            None
        };
        let fleet = if wants(Section::Fleet) {
            eprintln!("fleet: {} publishes per database server", plan.publishes);
            Some(fleet::run(&build, &cli.config_dir, plan.publishes).await?)
        } else {
            None
        };
        let push = if wants(Section::Push) {
            eprintln!("push: {} sockets", plan.push_sockets);
            let push_plan = push::PushPlan {
                sockets: plan.push_sockets,
                fanout_rounds: plan.fanout_rounds,
                shape: plan.shape,
                rate_rounds: plan.rounds,
                samples: plan.push_samples,
            };
            Some(push::run(&build, &cli.config_dir, push_plan).await?)
        } else {
            None
        };
        let soak = if wants(Section::Soak) {
            eprintln!("soak: {} s", plan.soak.as_secs());
            let connections = plan.shape.connections;
            Some(soak::run(&build, &cli.config_dir, connections, PLAYERS, plan.soak).await?)
        } else {
            None
        };
        // criterion writes into the target folder, above the profile's.
        let target = build.parent().unwrap_or(&build);
        anyhow::Ok(report::Report {
            command: cli.command_line.clone(),
            machine: machine::Machine::describe(),
            abi: criterion::read(target),
            routing: criterion::read_routing(target),
            http,
            reload,
            startup,
            stores,
            durability,
            fleet,
            push,
            soak,
        })
    })?;
    let markdown = report.markdown();
    println!("{markdown}");
    if let Some(file) = &cli.results {
        report::write_into(file, &markdown)?;
        eprintln!("wrote the figures into {}", file.display());
    }
    Ok(())
}
