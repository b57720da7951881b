//! The soak's judgement as a test, `#[ignore]`d: `make soak` runs it. The soak of a quick
//! `make bench` (its connections and players) on the host the workspace built, for
//! `SOAK_SECONDS` (20 unless set); it must meet every target that the report marks
//! ([`SoakFigures::targets`]: no failed request, no failed reload, no 5xx, every well-formed
//! hostile request refused as it should be).

use super::*;
use crate::process::build_dir;

/// The shipped profiles; the soak runs the host in `prod`.
const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
/// How long the soak runs unless `SOAK_SECONDS` says.
const DEFAULT_SECONDS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "SOAK_SECONDS (20) of load on the built host: `make soak` runs it"]
async fn the_soak_fails_no_request_and_answers_every_hostile_request_as_expected() {
    let seconds = std::env::var("SOAK_SECONDS").map_or(DEFAULT_SECONDS, |text| {
        text.parse()
            .unwrap_or_else(|_| panic!("SOAK_SECONDS={text:?} is not a number of seconds"))
    });
    let duration = Duration::from_secs(seconds);
    let build = build_dir().expect("the build folder");
    let connections = crate::Plan::new(true).shape.connections;
    let figures = run(
        &build,
        Path::new(CONFIG_DIR),
        connections,
        crate::PLAYERS,
        duration,
    )
    .await
    .unwrap_or_else(|e| panic!("the soak did not run: {e:#}"));
    let report = crate::report::soak_markdown(&figures);
    eprintln!("{report}");
    assert!(
        figures.load.requests > 0 && figures.hostile.sent() > 0,
        "the soak sent nothing:\n{report}"
    );
    assert!(
        duration <= RELOAD_EVERY || figures.reloads > 0,
        "the soak reloaded nothing:\n{report}"
    );
    let missed: Vec<&str> = figures
        .targets()
        .iter()
        .filter(|target| !target.met)
        .map(|target| target.asks)
        .collect();
    assert!(missed.is_empty(), "missed: {}\n{report}", missed.join("; "));
}
