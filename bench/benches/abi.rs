//! What one module command costs at the plugin boundary (issue: "the boundary adds under
//! 100 ns per call"), and how much of a call is JSON.
//!
//! Groups `mall_1101` (list goods) and `mall_1103` (buy one potion: succeeds and changes the
//! player) measure the same command four ways:
//!
//! - `through_abi`: `ModuleVersion::call` on the release `libmall.so`, what the host does for
//!   every command on a module thread: JSON texts in, the call into the library, JSON texts
//!   out, copied into host `String`s.
//! - `direct_rust`: the same work without the library: the glue's `handle` (the function the
//!   library's entry point calls: command lookup, `catch_unwind`, JSON decoding, the handler,
//!   JSON encoding of the reply and of what changed) on the mall's rules compiled into this
//!   benchmark, with the same host services, and the outcome turned into `String`s by the
//!   conversion `ModuleVersion::call` uses.
//! - `handler_only`: the handler alone, on an already decoded player and request: no JSON.
//!   Includes dropping the request and the reply; building and dropping the `Ctx` are not timed.
//! - `json_only`: only the JSON work of `direct_rust`: decoding the request, the player and
//!   the module data, encoding the reply and the changed record.
//!
//! How to read them (medians):
//!
//! - **boundary cost = `through_abi` − `direct_rust`**: the call through the root module's
//!   function pointer into the library, and copying the strings it returns (a string the
//!   library allocated is copied and freed through its vtable; one allocated here is moved).
//!   It also carries what differs between the library's optimized code and this binary's, so
//!   a few tens of ns either way are noise. The report takes it from a paired measurement
//!   (`paired`): the difference of two medians measured a minute apart moves by hundreds of ns
//!   on a shared VM, while the median of differences taken in alternating short rounds does
//!   not.
//! - **JSON share = `json_only` / `direct_rust`**.
//! - `direct_rust` − `handler_only` − `json_only` is the glue's own bookkeeping (copying the
//!   record to see what changed, the lookup, the outcome).
//!
//! Group `executor` (mall 1101 through the ABI) is what it costs to run module code off the
//! async reactor: `direct_abi_call` on the calling thread, `through_executor` (a channel hop to
//! one of the host's long-lived module threads and back, awaited from tokio), and
//! `spawn_blocking` (which the host avoids for module code; a reference only). The difference
//! between the first two is the price of keeping the reactor free.
//!
//! Group `routing` is what a canary costs each command: `Routes::route` on the mall's prefix
//! for a rotating set of player ids, `plain` (the release `libmall.so` alone) against
//! `canaried` (the same version also as its own canary for 30% of players, so that only the
//! routing differs: the canary hashes the player's id to choose). The report takes
//! `canaried` − `plain` paired, as it does the boundary.
//!
//! Needs the release build of the workspace: `make bench` does it. `QUICK=1` measures briefly.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use host::clock::SystemClock;
use host::plugins::executor::Executor;
use host::plugins::services::ModuleServices;
use host::plugins::tables::TableSet;
use host::plugins::{CallOutcome, ModuleVersion, Routes};
use host::protocol::Cmd;
use mall::rules;
use plugin_api::abi::{CommandCall, TableFile};
use plugin_api::glue::{self, ModuleDef};
use plugin_api::{Ctx, Handler, Player, Tables};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The player record the host would load: enough gold for a potion (50).
const PLAYER: &str =
    r#"{"player_id":"p","name":"n","head_img":"","gold":1000,"diamond":0,"items":{}}"#;
/// The mall's data for a player it has not seen yet.
const MODULE_DATA: &str = "{}";
/// The account of the player the benchmarks play.
const ACCOUNT: &str = "bench_player";

/// One measured command: what a client sends, and the mall's handler for it.
struct Command {
    cmd: &'static str,
    data: &'static str,
    handler: Handler,
}

const LIST_GOODS: Command = Command {
    cmd: "1101",
    data: "{}",
    handler: rules::list_goods,
};
const BUY_POTION: Command = Command {
    cmd: "1103",
    data: r#"{"id":"potion","count":1}"#,
    handler: rules::buy,
};

/// The mall's command table as its `lib.rs` declares it with `export_module!`, here linked
/// into the benchmark instead of a library.
static MALL_IN_PROCESS: ModuleDef = ModuleDef {
    name: "mall",
    prefix: "11",
    version: env!("CARGO_PKG_VERSION"),
    commands: &[
        ("1101", &glue::Typed::new(rules::list_goods)),
        ("1103", &glue::Typed::new(rules::buy)),
    ],
    refusals: &[
        rules::NOT_ENOUGH_GOLD,
        rules::NO_SUCH_GOOD,
        rules::BAD_COUNT,
    ],
    bad_request: plugin_api::BAD_REQUEST,
    schema: 1,
    migrations: &[],
    tables: Some(&glue::Reader::new(rules::read_tables)),
    init: None,
    shutdown: None,
};

/// The mall's data tables as it ships them (`plugins/mall/tables`).
fn mall_tables() -> TableSet {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/mall/tables");
    TableSet::read(std::path::Path::new(folder)).expect("the mall's tables read")
}

/// The folder of the release build: the bench executable is target/release/deps/abi-*.
fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench executable's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("the bench executable is in target/<profile>/deps")
        .to_owned()
}

/// The target folder, where criterion writes its estimates (`criterion/`).
fn target_dir() -> PathBuf {
    release_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_owned()
}

/// The release `libmall.so`, loaded and initialized the way the host does it.
fn mall_library() -> Arc<ModuleVersion> {
    let file: PathBuf = release_dir().join("libmall.so");
    assert!(
        file.is_file(),
        "{} is missing: run `make bench`",
        file.display()
    );
    let bytes = std::fs::read(&file).expect("read libmall.so");
    let shadow = tempfile::tempdir().expect("a shadow directory");
    let version = ModuleVersion::open(
        &file,
        &bytes,
        shadow.path(),
        &host::logging::discard(),
        Arc::new(SystemClock),
        |_| "{}".into(),
    )
    .expect("libmall.so loads");
    version.init().expect("the mall initializes");
    let mut version = version;
    version
        .load_tables(&mall_tables())
        .expect("the mall reads its tables");
    Arc::new(version)
}

/// What the glue encodes after a command: the reply, and the record where it changed.
struct Outputs {
    reply: Value,
    player: Option<Player>,
    module_data: Option<Map<String, Value>>,
}

/// The JSON part of the glue's `run`: decode the three inputs, encode the outputs.
fn json_work(call: &CommandCall<'_>, outputs: &Outputs) -> impl Sized {
    let decoded = (
        serde_json::from_str::<Value>(call.data.as_str()).expect("the request decodes"),
        serde_json::from_str::<Player>(call.player.as_str()).expect("the player decodes"),
        serde_json::from_str::<Map<String, Value>>(call.module_data.as_str())
            .expect("the module data decodes"),
    );
    let encoded = (
        serde_json::to_string(&outputs.reply).expect("the reply encodes"),
        outputs.player.as_ref().map(serde_json::to_string),
        outputs.module_data.as_ref().map(serde_json::to_string),
    );
    (decoded, encoded)
}

/// Group `mall_<cmd>`: `through_abi`, `direct_rust`, `handler_only` and `json_only`.
fn command_group(c: &mut Criterion, library: &ModuleVersion, command: &Command) {
    let cmd = Cmd::parse(command.cmd).expect("a four-digit command");
    let call = CommandCall {
        cmd: command.cmd.into(),
        data: command.data.into(),
        player: PLAYER.into(),
        module_data: MODULE_DATA.into(),
        tables: 0,
        account: ACCOUNT.into(),
    };
    // The host services a version gets, with the log discarded as `mall_library` does.
    let services =
        ModuleServices::new(host::logging::discard(), Arc::new(SystemClock), "{}".into());
    // The in-process mall reads its tables as the library did.
    let tables = mall_tables();
    let files: Vec<TableFile<'_>> = tables
        .files
        .iter()
        .map(|(name, text)| TableFile {
            name: name.as_str().into(),
            text: text.as_str().into(),
        })
        .collect();
    let tables_id = glue::load_tables(
        &MALL_IN_PROCESS,
        services.as_host_ref(),
        files.as_slice().into(),
    )
    .into_result()
    .unwrap_or_else(|refusal| panic!("the mall's tables: {refusal:?}"));
    let call = CommandCall {
        tables: tables_id,
        ..call
    };
    let catalogue = {
        let files: Vec<(&str, &str)> = tables
            .files
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str()))
            .collect();
        rules::read_tables(&Tables::for_test("mall", &files)).expect("the catalogue")
    };
    let direct_rust = || {
        CallOutcome::from(glue::handle(
            &MALL_IN_PROCESS,
            services.as_host_ref(),
            black_box(call),
        ))
    };

    // Both ways must do the same work to the same result, or their difference means nothing.
    let through_library = library.call(cmd, (command.data, PLAYER, MODULE_DATA), ACCOUNT);
    assert!(
        matches!(through_library, CallOutcome::Done { .. }),
        "{} must succeed: {through_library:?}",
        command.cmd
    );
    assert_eq!(direct_rust(), through_library);

    // The decoded inputs, and the outputs the glue encodes, for the parts without JSON.
    let player: Player = serde_json::from_str(PLAYER).expect("the player decodes");
    let data: Value = serde_json::from_str(command.data).expect("the request decodes");
    let module_data: Map<String, Value> =
        serde_json::from_str(MODULE_DATA).expect("the module data decodes");
    let host_ref = services.as_host_ref();
    let host = glue::host_of(&host_ref);
    let new_ctx =
        || Ctx::new(player.clone(), module_data.clone(), host).with_tables(catalogue.clone());
    let mut ctx = new_ctx();
    let outputs = Outputs {
        reply: (command.handler)(&mut ctx, data.clone()).expect("the command succeeds"),
        module_data: (ctx.saved_json() != &module_data).then(|| ctx.saved_json().clone()),
        player: (ctx.player != player).then_some(ctx.player),
    };

    let through_abi = || library.call(cmd, (black_box(command.data), PLAYER, MODULE_DATA), ACCOUNT);
    let group_name = format!("mall_{}", command.cmd);
    // Not in `cargo test`'s single pass over each benchmark.
    if std::env::args().any(|arg| arg == "--bench") {
        paired(
            &group_name,
            "boundary_paired",
            ["through_abi", "direct_rust"],
            through_abi,
            direct_rust,
        );
    }

    let mut group = c.benchmark_group(&group_name);
    group.bench_function("through_abi", |b| b.iter(through_abi));
    group.bench_function("direct_rust", |b| b.iter(direct_rust));
    group.bench_function("handler_only", |b| {
        // A fresh context per call (buying changes it); building it is not timed.
        b.iter_batched_ref(
            || (new_ctx(), data.clone()),
            |(ctx, data)| drop(black_box((command.handler)(ctx, std::mem::take(data)))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("json_only", |b| {
        b.iter(|| json_work(black_box(&call), &outputs))
    });
    group.finish();
}

/// Measures `a` − `b` as the median, over alternating short rounds, of the difference between
/// the two per-call times of a round (each round runs both, in turn first), and writes it to
/// `criterion/<group>/<file>.json` beside criterion's estimates, where `game-bench` reads it.
/// Slow drifts of the machine (another process, the CPU's clock) hit both halves of a round
/// alike and cancel out. `names` are `a`'s and `b`'s, for the line it prints.
fn paired<A, B>(group: &str, file: &str, names: [&str; 2], a: impl Fn() -> A, b: impl Fn() -> B) {
    let (rounds, calls) = if quick() { (11, 2_000) } else { (101, 10_000) };
    let per_call_ns = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(calls)
    };
    let a = || drop(black_box(a()));
    let b = || drop(black_box(b()));
    // Warm both paths up (caches, the allocator's free lists) before the first round.
    per_call_ns(&a);
    per_call_ns(&b);
    let mut differences: Vec<f64> = (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let first = per_call_ns(&a);
                first - per_call_ns(&b)
            } else {
                let first = per_call_ns(&b);
                per_call_ns(&a) - first
            }
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    let median = differences[differences.len() / 2];
    let [a_name, b_name] = names;
    println!(
        "{group}/{file}: {a_name} - {b_name} = {median:.1} ns per call \
         (median of {rounds} alternating rounds of {calls} calls each)"
    );
    let dir = target_dir().join("criterion").join(group);
    std::fs::create_dir_all(&dir).expect("criterion's folder for the group");
    let figures = serde_json::json!({
        "median_ns": median,
        "rounds": rounds,
        "calls_per_round": calls,
    });
    std::fs::write(dir.join(format!("{file}.json")), figures.to_string())
        .unwrap_or_else(|e| panic!("write {file}.json: {e}"));
}

fn boundary(c: &mut Criterion) {
    let library = mall_library();
    command_group(c, &library, &LIST_GOODS);
    command_group(c, &library, &BUY_POTION);
}

/// Group `executor`: mall 1101 through the ABI on this thread, on a module thread, and on a
/// `spawn_blocking` thread.
fn executor(c: &mut Criterion) {
    let library = mall_library();
    let cmd = Cmd::parse(LIST_GOODS.cmd).expect("a four-digit command");
    let data = LIST_GOODS.data;
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let executor = Arc::new(Executor::start(4).expect("the module threads start"));
    let mut group = c.benchmark_group("executor");

    group.bench_function("direct_abi_call", |b| {
        b.iter(|| library.call(cmd, (data, PLAYER, MODULE_DATA), ACCOUNT))
    });

    group.bench_function("through_executor", |b| {
        b.to_async(&runtime).iter(|| {
            let library = library.clone();
            let executor = executor.clone();
            async move {
                executor
                    .run(move || library.call(cmd, (data, PLAYER, MODULE_DATA), ACCOUNT))
                    .await
                    .expect("the executor runs the call")
            }
        })
    });

    group.bench_function("spawn_blocking", |b| {
        b.to_async(&runtime).iter(|| {
            let library = library.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    library.call(cmd, (data, PLAYER, MODULE_DATA), ACCOUNT)
                })
                .await
                .expect("the blocking task runs")
            }
        })
    });
    group.finish();
    executor.shutdown(Instant::now() + Duration::from_secs(5));
}

/// The share of players the canary of group `routing` serves, in percent.
const CANARY_PERCENT: u8 = 30;
/// How many player ids group `routing` routes in turn.
const PLAYER_IDS: usize = 1_000;

/// Group `routing`: `Routes::route` on the mall's prefix, `plain` (the mall's version alone)
/// against `canaried` (the same version also as its canary for [`CANARY_PERCENT`] of players),
/// each for the player ids in turn; then `canaried` − `plain`, paired.
fn routing(c: &mut Criterion) {
    let version = mall_library();
    let prefix = version.meta.prefix.clone();
    let plain = Routes::for_bench(vec![version.clone()], None);
    let canaried = Routes::for_bench(
        vec![version.clone()],
        Some((version.clone(), CANARY_PERCENT)),
    );
    // Ids as the host makes them at a player's first login.
    let players: Vec<String> = (0..PLAYER_IDS)
        .map(|_| host::session::new_player_id())
        .collect();
    let canary = canaried.canary(&version.meta.name).expect("a canary");
    let served = players.iter().filter(|id| canary.serves(id)).count();
    // A canary that served none (or all) would be routed but never chosen (or always).
    assert!(
        (1..PLAYER_IDS).contains(&served),
        "the canary serves {served} of {PLAYER_IDS} players"
    );
    println!("routing: the canary serves {served} of {PLAYER_IDS} players");
    let plain_route = rotating(&plain, &prefix, &players);
    let canaried_route = rotating(&canaried, &prefix, &players);
    assert!(plain_route().is_some() && canaried_route().is_some());
    // Not in `cargo test`'s single pass over each benchmark.
    if std::env::args().any(|arg| arg == "--bench") {
        paired(
            "routing",
            "canary_paired",
            ["canaried", "plain"],
            &canaried_route,
            &plain_route,
        );
    }

    let mut group = c.benchmark_group("routing");
    group.bench_function("plain", |b| b.iter(&plain_route));
    group.bench_function("canaried", |b| b.iter(&canaried_route));
    group.finish();
}

/// `routes.route(prefix, id)` for each of `players` in turn, a call each, from where the last
/// call left off.
fn rotating<'a>(
    routes: &'a Routes,
    prefix: &'a str,
    players: &'a [String],
) -> impl Fn() -> Option<&'a Arc<ModuleVersion>> {
    let next = Cell::new(0);
    move || {
        let at = next.get();
        next.set((at + 1) % players.len());
        routes.route(black_box(prefix), black_box(&players[at]))
    }
}

/// Whether `QUICK` is set (and not `0`): a short smoke run.
fn quick() -> bool {
    std::env::var("QUICK").is_ok_and(|value| !value.is_empty() && value != "0")
}

/// Criterion's defaults, or short runs when `QUICK` is set.
fn config() -> Criterion {
    if quick() {
        Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(1))
    } else {
        Criterion::default()
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = boundary, executor, routing
}
criterion_main!(benches);
