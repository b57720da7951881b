//! The soak's section: the load beside reloads and a hostile client, what the hostile client
//! got by kind, and the soak's targets ([`SoakFigures::targets`]), met or missed.

use super::table::{cell_text, Table};
use super::{mib, verdict, Block};
use crate::soak::{Answer, SoakFigures, RELOAD_EVERY};
use std::collections::BTreeMap;

pub(super) fn section(soak: &SoakFigures) -> Vec<Block> {
    let load = &soak.load;
    let minutes = soak.duration.as_secs_f64() / 60.0;
    let duration = if minutes >= 1.0 {
        format!("{minutes:.0} min")
    } else {
        format!("{:.0} s", soak.duration.as_secs_f64())
    };
    let reload_every = RELOAD_EVERY.as_secs();
    let mut table = Table::new(
        "rrrrrrrrl",
        [
            "requests",
            "req/s",
            "failed (no reply, non-2xx, ret < 0)",
            "refused (ret > 0)",
            "reloads",
            "reloads failed",
            "versions retired",
            "not unloaded",
            "host RSS MiB: start → peak → end",
        ],
    );
    table.row([
        load.requests.to_string(),
        format!("{:.0}", load.throughput()),
        format!(
            "{} ({}, {}, {})",
            soak.load_failures(),
            load.failed,
            load.non_2xx,
            load.negative_ret
        ),
        load.refused.to_string(),
        soak.reloads.to_string(),
        soak.reloads_failed.to_string(),
        soak.retired.to_string(),
        soak.not_unloaded.to_string(),
        format!(
            "{:.1} → {:.1} → {:.1} ({:+.1})",
            mib(soak.rss_start_kib),
            mib(soak.rss_peak_kib),
            mib(soak.rss_end_kib),
            mib(soak.rss_end_kib) - mib(soak.rss_start_kib),
        ),
    ]);
    let mut blocks = vec![
        Block::Heading(format!(
            "Soak: {duration} of `mixed`, the mall reloaded every {reload_every} s, a hostile \
             client beside"
        )),
        Block::Text(format!(
            "The real host (profile prod); {} connections over {} players in a closed loop; \
             every {reload_every} s the other build of the mall (the demo's, \
             `fixture-mall-sale`) lands on `libmall.so` and `POST /admin/modules/mall/reload` \
             swaps it; meanwhile one client sends malformed, oversized and garbage requests, \
             bad tokens and slow or abandoned sends, each on a new connection.",
            soak.connections, soak.players,
        )),
        Block::Table(table),
    ];
    blocks.extend(hostile_blocks(soak));
    if let Some(first) = &soak.first_reload_failure {
        blocks.push(Block::Text(format!(
            "First failed reload: `{}`",
            cell_text(first)
        )));
    }
    let targets: Vec<String> = soak
        .targets()
        .iter()
        .map(|target| format!("{} {}", target.asks, verdict(target.met)))
        .collect();
    blocks.push(Block::Text(format!("Targets: {}.", targets.join("; "))));
    blocks
}

/// What the hostile client sent and got, by kind; the first unexpected answer of each kind.
fn hostile_blocks(soak: &SoakFigures) -> Vec<Block> {
    let hostile = &soak.hostile;
    let mut table = Table::new(
        "llrlrrr",
        [
            "kind",
            "expected ret",
            "sent",
            "answers (ret: count)",
            "no reply",
            "5xx",
            "unexpected",
        ],
    );
    for kind in hostile.kinds.values() {
        let expected = kind
            .kind
            .expects()
            .map_or("(any, or closed)".to_owned(), |codes| {
                let codes: Vec<String> = codes.iter().map(i64::to_string).collect();
                codes.join(", ")
            });
        table.row([
            kind.kind.name().to_owned(),
            expected,
            kind.sent.to_string(),
            answers_text(&kind.answers),
            kind.no_reply.to_string(),
            kind.server_errors.to_string(),
            kind.unexpected.to_string(),
        ]);
    }
    let mut blocks = vec![
        Block::Text(format!(
            "The hostile client: {} requests. A well-formed one must get the refusal its kind \
             expects; broken HTTP may get hyper's bare reply (a status without `ret`) or be \
             closed. \"Unexpected\" counts well-formed requests answered otherwise or not at \
             all.",
            hostile.sent()
        )),
        Block::Table(table),
        Block::Text(format!(
            "All its replies: {}.",
            answers_text(&hostile.answers())
        )),
    ];
    for kind in hostile.kinds.values() {
        if let Some(first) = &kind.first_unexpected {
            blocks.push(Block::Text(format!(
                "First unexpected answer to \"{}\": `{}`",
                kind.kind.name(),
                cell_text(first).replace('`', "'")
            )));
        }
    }
    blocks
}

/// `ret -2: 10, HTTP 400: 3`, most frequent first.
fn answers_text(answers: &BTreeMap<Answer, u64>) -> String {
    let mut sorted: Vec<(&Answer, &u64)> = answers.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if sorted.is_empty() {
        return "none".into();
    }
    sorted
        .iter()
        .map(|(answer, n)| match answer {
            Answer::Ret(ret) => format!("{ret}: {n}"),
            Answer::Status(status) => format!("HTTP {status} without ret: {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
