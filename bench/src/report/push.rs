//! The push section: an idle socket's memory against the goal, a live push to a room
//! of every socket, kept pushes per second, and a push across two hosts per database server.

use super::table::{cell_text, Table};
use super::{mib, verdict, Block};
use crate::push::cross_host::{self, CrossHostFigures, Latencies, Outcome};
use crate::push::{OneHost, PushFigures, Round, ROUND_WITHIN, SOCKET_GOAL_BYTES};
use crate::stats::median;
use std::time::Duration;

pub(super) fn section(figures: &PushFigures) -> Vec<Block> {
    let mut blocks = vec![Block::Heading(format!(
        "Sockets and pushes: {} sockets on one host, then a push across two hosts",
        match &figures.one_host {
            Ok(one) => one.sockets,
            Err(_) => figures.planned,
        }
    ))];
    match &figures.one_host {
        Ok(one) => blocks.extend(one_host(figures, one)),
        Err(why) => blocks.push(Block::Text(format!(
            "One host: **FAILED**: {}",
            cell_text(why)
        ))),
    }
    blocks.extend(cross_host(&figures.cross_host));
    blocks
}

fn one_host(figures: &PushFigures, one: &OneHost) -> Vec<Block> {
    let limit = figures
        .open_files
        .map_or_else(|| "not raised".to_owned(), |n| n.to_string());
    let mut text = format!(
        "The release host (profile prod, its SQLite; `socket.max_sockets` raised above the \
         sockets; open files: {limit}, the bench's limit, which the host inherits); {} \
         players logged in, each with a socket open on loopback (tokio-tungstenite, one \
         reading task per socket in the bench, on the same cores as the host).",
        one.sockets
    );
    if one.sockets < figures.planned {
        text.push_str(&format!(
            " The plan was {} sockets: the open-file limit allowed no more.",
            figures.planned
        ));
    }
    let per_socket = one.bytes_per_socket();
    let mut memory = Table::new(
        "rrrrl",
        [
            "idle sockets",
            "host RSS before, MiB",
            "after, MiB",
            "per socket, KB",
            "goal: ≤ 10 KB",
        ],
    );
    memory.row([
        one.sockets.to_string(),
        format!("{:.1}", mib(one.rss_before_kib)),
        format!("{:.1}", mib(one.rss_after_kib)),
        format!("{:.1}", per_socket / 1e3),
        verdict(per_socket <= SOCKET_GOAL_BYTES).to_owned(),
    ]);

    let rounds = &one.fanout;
    let med = |f: fn(&Round) -> Duration| median(rounds.iter().map(|r| f(r).as_secs_f64() * 1e3));
    let (lo, hi) = rounds.iter().fold((f64::MAX, 0.0_f64), |(lo, hi), r| {
        let last = r.last.as_secs_f64() * 1e3;
        (lo.min(last), hi.max(last))
    });
    let missed: usize = rounds.iter().map(|r| one.sockets - r.reached).sum();
    let mut fanout = Table::new(
        "rrrrrrr",
        [
            "members",
            "rounds",
            "first ms",
            "half ms",
            "last ms",
            "last: min–max ms",
            "missed",
        ],
    );
    if rounds.is_empty() {
        fanout.note_row(one.sockets.to_string(), "no round measured");
    } else {
        fanout.row([
            one.sockets.to_string(),
            rounds.len().to_string(),
            format!("{:.1}", med(|r| r.first)),
            format!("{:.1}", med(|r| r.half)),
            format!("{:.1}", med(|r| r.last)),
            format!("{lo:.1}–{hi:.1}"),
            missed.to_string(),
        ]);
    }

    let rate = &one.rate;
    let runs = &rate.runs;
    let commands = median(runs.iter().map(|r| r.commands_per_sec()));
    let delivered = median(runs.iter().map(|r| r.delivered_per_sec()));
    let mut pushes = Table::new(
        "rrrrrrr",
        [
            "senders",
            "receivers",
            "commands/s",
            "pushes delivered/s",
            "delivered of answered",
            "host CPU µs per push",
            "not answered ret 0",
        ],
    );
    if runs.is_empty() {
        pushes.note_row(rate.senders.to_string(), "no round measured");
    } else {
        pushes.row([
            rate.senders.to_string(),
            rate.receivers.to_string(),
            format!("{commands:.0}"),
            format!("{delivered:.0}"),
            format!(
                "{:.0}%",
                delivered / commands.max(f64::MIN_POSITIVE) * 100.0
            ),
            format!("{:.0}", median(runs.iter().map(|r| r.host_us_per_push()))),
            runs.iter().map(|r| r.not_answered).sum::<u64>().to_string(),
        ]);
    }

    let mut blocks = vec![
        Block::Text(text),
        Block::Text(
            "**Memory per idle socket**: the host's RSS after the logins and after every socket \
             is open and welcomed (`{\"token\": …}` sent, `{\"ret\": 0}` read), each after a \
             second's rest; the difference over the sockets (KB = 1,000 bytes)."
                .to_owned(),
        ),
        Block::Table(memory),
        Block::Text(format!(
            "**A live push to a room of {}**: every socket joined room `bench` (`1305`); one \
             of them says something there (`1309`), a `say` push to every member, itself \
             included. Times from writing the command to each socket reading the push: the \
             first socket, half of them, the last (medians over {} round(s), after one \
             unmeasured); \"missed\": members that had not read it within {} s, over all \
             rounds.",
            one.sockets,
            rounds.len(),
            ROUND_WITHIN.as_secs()
        )),
        Block::Table(fanout),
        Block::Text(format!(
            "**Pushes per second**: {} senders, each a player on a keep-alive HTTP connection \
             of its own in a closed loop, send `1303` messages to the {} socket players in \
             turn (each a kept push to one socket); {} round(s) of {:.0} s after {:.1} s \
             warm-up (medians). Commands/s: `1303`s answered `ret` 0; delivered/s: `message` \
             pushes read by the sockets in the same window (its edges cut the commands in flight \
             differently, so a round may read slightly over 100%); the host's CPU per push \
             delivered.",
            rate.senders,
            rate.receivers,
            runs.len(),
            rate.shape.measure.as_secs_f64(),
            rate.shape.warmup.as_secs_f64()
        )),
        Block::Table(pushes),
    ];
    if !one.closed.is_empty() {
        let closed: Vec<String> = one
            .closed
            .iter()
            .map(|(code, n)| match code {
                Some(code) => format!("{n} with {code}"),
                None => format!("{n} without a close frame"),
            })
            .collect();
        blocks.push(Block::Text(format!(
            "Sockets closed during the run: {}.",
            closed.join(", ")
        )));
    }
    blocks
}

fn cross_host(figures: &CrossHostFigures) -> Vec<Block> {
    let mut table = Table::new(
        "lrrrrr",
        ["database", "samples", "lost", "p50 ms", "p99 ms", "max ms"],
    );
    for row in &figures.databases {
        let name = row.database.name();
        match &row.outcome {
            Outcome::Measured(latencies) => table.row(measured_row(name, latencies)),
            Outcome::Skipped(why) => table.note_row(name, format!("skipped: {}", cell_text(why))),
            Outcome::Failed(why) => table.note_row(name, format!("**FAILED**: {}", cell_text(why))),
        }
    }
    let poll = figures.poll_ms.map_or("`push.poll_ms`".to_owned(), |ms| {
        format!("{ms} ms (`push.poll_ms`)")
    });
    vec![
        Block::Text(format!(
            "**Across hosts**: two release-built hosts (profile prod) on a scratch database of \
             their own; a sender's `1303` sent to host A over HTTP, the receiver's socket open \
             on host B; {} samples per database, each from sending the command to the socket \
             reading the push, after a pseudo-random pause within one poll interval. Host B \
             hears of A's commit by `NOTIFY` on PostgreSQL, by polling every {poll} on \
             MariaDB. A push not read within {} s is lost.",
            figures.samples,
            cross_host::LOST_AFTER.as_secs()
        )),
        Block::Table(table),
    ]
}

fn measured_row(name: &str, latencies: &Latencies) -> [String; 6] {
    let ms = |p: f64| {
        latencies
            .percentile(p)
            .map_or_else(String::new, |d| format!("{:.1}", d.as_secs_f64() * 1e3))
    };
    [
        name.to_owned(),
        (latencies.times.len() + latencies.lost).to_string(),
        latencies.lost.to_string(),
        ms(0.5),
        ms(0.99),
        ms(1.0),
    ]
}
