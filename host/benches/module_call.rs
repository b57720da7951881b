//! What it costs to run module code off the async reactor.
//!
//! Compares, for the mall's `1101` (list goods) on the real library: a direct call through the
//! ABI on the calling thread, the same call through the host's executor (a channel hop to a
//! long-lived module thread and back, awaited from tokio), and through `spawn_blocking`
//! (which the host avoids for module code; here only as a reference).
//! The difference between the first two is the price of keeping the reactor free.
//!
//! Needs the workspace built in release mode: `make bench` does it.

use criterion::{criterion_group, criterion_main, Criterion};
use host::clock::SystemClock;
use host::plugins::executor::Executor;
use host::plugins::ModuleVersion;
use host::protocol::Cmd;
use std::path::PathBuf;
use std::sync::Arc;

const PLAYER: &str =
    r#"{"player_id":"p","name":"n","head_img":"","gold":1000,"diamond":0,"items":{}}"#;

fn mall() -> Arc<ModuleVersion> {
    let target = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let file: PathBuf = target.join("libmall.so");
    assert!(
        file.is_file(),
        "{} is missing: run `make bench`",
        file.display()
    );
    let shadow = tempfile::tempdir().unwrap();
    let log = host::logging::discard();
    let bytes = std::fs::read(&file).unwrap();
    let version = ModuleVersion::open(
        &file,
        &bytes,
        shadow.path(),
        &log,
        Arc::new(SystemClock),
        |_| "{}".into(),
    )
    .unwrap();
    version.init().unwrap();
    Arc::new(version)
}

fn module_call(c: &mut Criterion) {
    let version = mall();
    let cmd = Cmd::parse("1101").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let executor = Arc::new(Executor::start(4).unwrap());
    let mut group = c.benchmark_group("mall 1101");

    group.bench_function("direct ABI call", |b| {
        b.iter(|| version.call(cmd, "{}", PLAYER, "{}"))
    });

    group.bench_function("through the executor", |b| {
        b.to_async(&runtime).iter(|| {
            let version = version.clone();
            let executor = executor.clone();
            async move {
                executor
                    .run(move || version.call(cmd, "{}", PLAYER, "{}"))
                    .await
                    .unwrap()
            }
        })
    });

    group.bench_function("through spawn_blocking (reference)", |b| {
        b.to_async(&runtime).iter(|| {
            let version = version.clone();
            async move {
                tokio::task::spawn_blocking(move || version.call(cmd, "{}", PLAYER, "{}"))
                    .await
                    .unwrap()
            }
        })
    });
    group.finish();
    executor.shutdown(std::time::Instant::now() + std::time::Duration::from_secs(5));
}

criterion_group!(benches, module_call);
criterion_main!(benches);
