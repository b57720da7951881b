//! The host's life-cycle sections: hot-swap reloads (latency, and memory and failures over
//! thousands of them) and start-up.

use super::table::Table;
use super::{mib, verdict, Block};
use crate::reload::ReloadFigures;
use crate::startup::Start;
use crate::stats::median;
use std::time::Duration;

pub(super) fn section(reload: &ReloadFigures) -> Vec<Block> {
    let mut table = Table::new(
        "lrrrrrrr",
        [
            "under load (8 clients)",
            "RSS MiB",
            "maps",
            "retired",
            "not unloaded",
            "requests served",
            "failed",
            "reloads/s",
        ],
    );
    let start = reload.start;
    table.row(
        [
            "start".to_owned(),
            format!("{:.1}", mib(start.rss_kib)),
            start.maps.to_string(),
        ]
        .into_iter()
        .chain(std::iter::repeat_n(String::new(), 5)),
    );
    for c in &reload.checkpoints {
        table.row([
            format!("after {} reloads", c.reloads),
            format!(
                "{:.1} ({:+.1})",
                mib(c.memory.rss_kib),
                mib(c.memory.rss_kib) - mib(start.rss_kib)
            ),
            format!(
                "{} ({:+})",
                c.memory.maps,
                c.memory.maps as i64 - start.maps as i64
            ),
            c.retired.to_string(),
            c.not_unloaded.to_string(),
            c.served.to_string(),
            c.failed.to_string(),
            format!("{:.0}", c.reloads_per_sec),
        ]);
    }
    let mut blocks = vec![
        Block::Heading("Reloads".into()),
        Block::Text(format!(
            "Latency, library landing → first reply by the new version ({} reloads, debounce \
             20 ms): p50 {:.1} ms, p99 {:.1} ms.",
            reload.latency_reloads,
            reload.latency_p50.as_secs_f64() * 1e3,
            reload.latency_p99.as_secs_f64() * 1e3,
        )),
        Block::Table(table),
    ];
    if let Some(last) = reload.checkpoints.last() {
        let growth_mb = (last.memory.rss_kib as f64 - start.rss_kib as f64) * 1024.0 / 1e6;
        blocks.push(Block::Text(format!(
            "Targets: zero failed requests {}; RSS after {} reloads within 10 MB of the start \
             ({:+.1} MB) {}.",
            verdict(last.failed == 0),
            last.reloads,
            growth_mb,
            verdict(growth_mb <= 10.0)
        )));
    }
    blocks
}

pub(super) fn startup_section(starts: &[Start]) -> Vec<Block> {
    let ms = |f: fn(&Start) -> Duration| {
        let values: Vec<f64> = starts.iter().map(|s| f(s).as_secs_f64() * 1e3).collect();
        let (min, max) = values
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        (median(values), min, max)
    };
    let (listen, listen_min, listen_max) = ms(|s| s.listening);
    let (reply, reply_min, reply_max) = ms(|s| s.first_reply);
    vec![
        Block::Heading(format!(
            "Start-up ({} starts, new database, three demo modules)",
            starts.len()
        )),
        Block::Text(format!(
            "exec → `listening on`: median {listen:.1} ms ({listen_min:.1}–{listen_max:.1}); \
             exec → first successful `/logic` reply: median {reply:.1} ms \
             ({reply_min:.1}–{reply_max:.1})."
        )),
    ]
}
