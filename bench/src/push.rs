//! Sockets and pushes (issue 25): what the WebSocket channel and its pushes cost and how fast
//! they go, on the real release host.
//!
//! One host (its own SQLite, `socket.max_sockets` raised above the run's sockets through
//! `GAME_HOST_*`, and `server.max_connections` with it, though a connection that became a
//! socket no longer counts there: only those still speaking HTTP do), N players logged in
//! (`POST /login`, accounts `push-0` …) and 64 senders (`push-sender-0` …), then:
//! 1. **Memory per idle socket**: the host's RSS (`VmRSS`) after the logins, then after the N
//!    sockets are open and welcomed (`{"token": …}` sent, `{"ret": 0}` read), each time after
//!    a second's rest; the difference over N, against the goal of 10 KB.
//! 2. **A live push to a room of N**: every socket joins room `bench` over the socket
//!    (`1305`); then socket 0 says something there (`1309`), a `say` push to all N, itself
//!    included. Timed from just before the command is written to each socket's reading of
//!    the push (the bench's reader tasks share the machine's cores with the host); the
//!    figure is the last socket's time, a median over rounds (one unmeasured round first).
//! 3. **Pushes per second**: the senders, each on a keep-alive HTTP connection of its own in a
//!    closed loop (the socket's own command rate, 20/s, is for one player, not for load), send
//!    `1303` messages to the N players in turn, each a kept push to one socket. Counted in
//!    the measured window: the commands answered `ret` 0 (the host's commands/s) and the
//!    `message` pushes the receiving sockets read (delivered/s), with the host's CPU per
//!    push.
//!
//! Then **across hosts** ([`cross_host`]): two hosts on one scratch database, on PostgreSQL
//! and on MariaDB; a `1303` to host A, its push read on a socket on host B.
//!
//! The bench raises its own open-file limit first (`setrlimit`; the host, started after,
//! inherits it): each socket is a file on both sides. With a limit it cannot raise far
//! enough it opens fewer sockets, and the report says so.

pub mod cross_host;
mod socket;

use crate::load::{Connection, Shape};
use crate::process::{self, HostOptions, Server};
use crate::stats::percentile;
use anyhow::{anyhow, bail, Context};
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use socket::{Heard, Inbox, Socket, What};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The room every socket joins.
const ROOM: &str = "bench";
/// The goal for an idle socket's memory on the host, in bytes (10 KB).
pub const SOCKET_GOAL_BYTES: f64 = 10_000.0;
/// Logins at once, each stripe of players on a connection of its own.
const LOGIN_CONNECTIONS: usize = 16;
/// Sockets being opened at once: the listener's queue holds them all.
const OPENING_AT_ONCE: usize = 256;
/// Open files beside the sockets: the host's database, logs, libraries and listeners; the
/// bench's own HTTP connections.
const SPARE_FILES: u64 = 1024;
/// The rest before each RSS reading.
const SETTLE: Duration = Duration::from_secs(1);
/// How long the joins may take, all of them.
const JOINS_WITHIN: Duration = Duration::from_secs(120);
/// How long a fan-out round waits for its last socket.
pub const ROUND_WITHIN: Duration = Duration::from_secs(30);
/// The pause before each fan-out round.
const BETWEEN_ROUNDS: Duration = Duration::from_millis(500);

/// How much the section does.
#[derive(Debug, Clone, Copy)]
pub struct PushPlan {
    /// Sockets on the one host (the members of the room, the receivers of messages).
    pub sockets: usize,
    /// Measured fan-out rounds.
    pub fanout_rounds: usize,
    /// The senders (`connections`) and the window of each pushes-per-second round.
    pub shape: Shape,
    pub rate_rounds: usize,
    /// Cross-host deliveries timed per database server.
    pub samples: usize,
}

/// What the push section measured.
#[derive(Debug)]
pub struct PushFigures {
    /// Sockets the plan asked for.
    pub planned: usize,
    /// The open-file limit the bench ran with (and the host inherited), if it could be read.
    pub open_files: Option<u64>,
    /// The one-host figures, or why they could not be measured.
    pub one_host: Result<OneHost, String>,
    pub cross_host: cross_host::CrossHostFigures,
}

/// The one host's figures.
#[derive(Debug)]
pub struct OneHost {
    /// Sockets open on the host.
    pub sockets: usize,
    /// The host's RSS in KiB, before and after the sockets opened.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// The measured fan-out rounds.
    pub fanout: Vec<Round>,
    pub rate: Rate,
    /// Sockets the host closed (or that broke) during the run, by close code.
    pub closed: BTreeMap<Option<u16>, usize>,
}

impl OneHost {
    /// The host's memory per idle socket, in bytes.
    pub fn bytes_per_socket(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) * 1024.0
            / self.sockets.max(1) as f64
    }
}

/// One live push to the room: when its sockets read it, from the command's sending.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Sockets that read it within [`ROUND_WITHIN`].
    pub reached: usize,
    pub first: Duration,
    /// Half the sockets had it by then.
    pub half: Duration,
    pub last: Duration,
}

/// The pushes-per-second rounds.
#[derive(Debug)]
pub struct Rate {
    pub senders: usize,
    pub receivers: usize,
    pub shape: Shape,
    pub runs: Vec<RateRun>,
}

/// One pushes-per-second round's measured window.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateRun {
    pub seconds: f64,
    /// `1303` commands answered `ret` 0.
    pub answered: u64,
    /// Answered with another `ret`, or not at all.
    pub not_answered: u64,
    /// `message` pushes read by the receiving sockets.
    pub delivered: u64,
    /// The host's CPU seconds.
    pub host_cpu: f64,
}

impl RateRun {
    pub fn commands_per_sec(&self) -> f64 {
        self.answered as f64 / self.seconds
    }

    pub fn delivered_per_sec(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }

    /// The host's CPU per push delivered, in µs.
    pub fn host_us_per_push(&self) -> f64 {
        self.host_cpu * 1e6 / self.delivered.max(1) as f64
    }
}

pub async fn run(build: &Path, config_dir: &Path, plan: PushPlan) -> anyhow::Result<PushFigures> {
    let wanted = plan.sockets as u64 + SPARE_FILES;
    let open_files = match raise_open_files(wanted) {
        Ok(limit) => Some(limit),
        Err(e) => {
            eprintln!("push: cannot raise the open-file limit: {e}");
            None
        }
    };
    let sockets = match open_files {
        Some(limit) if limit < wanted => {
            let fewer = limit.saturating_sub(SPARE_FILES) as usize;
            eprintln!(
                "push: the open-file limit is {limit}: {fewer} sockets instead of {}",
                plan.sockets
            );
            fewer
        }
        _ => plan.sockets,
    };
    // Ctrl-C (which the hosts get too) ends the section through the same path as an error,
    // so that the cross-host scratch databases are still dropped.
    let one_host = tokio::select! {
        measured = one_host(build, config_dir, &plan, sockets) => measured,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    };
    let one_host = one_host.map_err(|e| {
        eprintln!("push: FAILED one host: {e:#}");
        format!("{e:#}")
    });
    let cross_host = cross_host::run(build, config_dir, plan.samples).await?;
    Ok(PushFigures {
        planned: plan.sockets,
        open_files,
        one_host,
        cross_host,
    })
}

async fn one_host(
    build: &Path,
    config_dir: &Path,
    plan: &PushPlan,
    sockets: usize,
) -> anyhow::Result<OneHost> {
    let cap = (sockets + 1_000).to_string();
    let env = [
        ("GAME_HOST_SOCKET_MAX_SOCKETS", cap.as_str()),
        ("GAME_HOST_SERVER_MAX_CONNECTIONS", cap.as_str()),
    ];
    let options = HostOptions {
        host_id: Some("push"),
        env: &env,
        ..HostOptions::default()
    };
    let host = Server::host_with(build, config_dir, &options)?;
    let senders = plan.shape.connections;
    eprintln!("push: logging in {sockets} players and {senders} senders");
    let accounts: Vec<String> = (0..sockets).map(receiver_account).collect();
    let tokens = login_all(host.addr, &accounts).await?;
    let sender_accounts: Vec<String> = (0..senders).map(|n| format!("push-sender-{n}")).collect();
    let sender_tokens = login_all(host.addr, &sender_accounts).await?;

    tokio::time::sleep(SETTLE).await;
    let rss_before_kib = host.rss_kib()?;
    eprintln!("push: opening {sockets} sockets");
    let (tx, mut inbox) = Inbox::new();
    let mut open = open_all(host.addr, &tokens, &tx).await?;
    tokio::time::sleep(SETTLE).await;
    let rss_after_kib = host.rss_kib()?;
    eprintln!(
        "push: host RSS {:.1} → {:.1} MiB with {sockets} sockets",
        rss_before_kib as f64 / 1024.0,
        rss_after_kib as f64 / 1024.0
    );

    join_room(&mut open, &mut inbox).await?;
    let fanout = fanout(&mut open[0], sockets, &mut inbox, plan.fanout_rounds).await?;
    let mut rate = Rate {
        senders,
        receivers: sockets,
        shape: plan.shape,
        runs: Vec::new(),
    };
    for round in 1..=plan.rate_rounds {
        let run = rate_round(&host, &sender_tokens, sockets, plan.shape, &mut inbox).await;
        eprintln!(
            "push: pushes per second, round {round}/{}: {:.0} commands/s, {:.0} pushes delivered/s",
            plan.rate_rounds,
            run.commands_per_sec(),
            run.delivered_per_sec()
        );
        rate.runs.push(run);
    }
    while inbox.ready().is_some() {}
    let closed = inbox.closed.clone();
    drop(open);
    drop(host);
    Ok(OneHost {
        sockets,
        rss_before_kib,
        rss_after_kib,
        fanout,
        rate,
        closed,
    })
}

/// Account `push-N`: the players whose sockets are open on the one host.
fn receiver_account(n: usize) -> String {
    format!("push-{n}")
}

/// Logs every account in (`POST /login`), [`LOGIN_CONNECTIONS`] at once; their tokens, in
/// order.
async fn login_all(addr: SocketAddr, accounts: &[String]) -> anyhow::Result<Vec<String>> {
    let stripes = (0..LOGIN_CONNECTIONS).map(|stripe| async move {
        let mut connection = Connection::new(addr);
        let mut tokens = Vec::new();
        for account in accounts.iter().skip(stripe).step_by(LOGIN_CONNECTIONS) {
            tokens.push(connection.login(account).await?);
        }
        anyhow::Ok(tokens)
    });
    let mut tokens = vec![String::new(); accounts.len()];
    for (stripe, result) in join_all(stripes).await.into_iter().enumerate() {
        for (k, token) in result?.into_iter().enumerate() {
            tokens[stripe + k * LOGIN_CONNECTIONS] = token;
        }
    }
    Ok(tokens)
}

/// Opens a socket per token, [`OPENING_AT_ONCE`] at a time, each welcomed; in token order.
async fn open_all(
    addr: SocketAddr,
    tokens: &[String],
    inbox: &mpsc::UnboundedSender<Heard>,
) -> anyhow::Result<Vec<Socket>> {
    let mut opened: Vec<(usize, anyhow::Result<Socket>)> = stream::iter(tokens.iter().enumerate())
        .map(|(n, token)| async move { (n, Socket::open(addr, token, n, inbox).await) })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    opened.sort_by_key(|(n, _)| *n);
    let failed = opened.iter().filter(|(_, s)| s.is_err()).count();
    let mut sockets = Vec::with_capacity(opened.len());
    for (n, socket) in opened {
        sockets.push(
            socket.with_context(|| {
                format!("socket {n} of {} ({failed} failed in all)", tokens.len())
            })?,
        );
    }
    Ok(sockets)
}

/// Every socket sends `1305 {"room": "bench"}` (cid 1); done when each is answered `ret` 0.
async fn join_room(sockets: &mut [Socket], inbox: &mut Inbox) -> anyhow::Result<()> {
    eprintln!("push: {} sockets join room `{ROOM}`", sockets.len());
    for socket in sockets.iter_mut() {
        socket.command(1, "1305", json!({ "room": ROOM })).await?;
    }
    let deadline = Instant::now() + JOINS_WITHIN;
    let mut joined = 0;
    while joined < sockets.len() {
        let heard = inbox.next_until(deadline).await.ok_or_else(|| {
            anyhow!(
                "{joined} of {} sockets joined within {} s ({} closed)",
                sockets.len(),
                JOINS_WITHIN.as_secs(),
                inbox.closed_count()
            )
        })?;
        match heard.what {
            What::Reply { cid: 1, ret: 0 } => joined += 1,
            What::Reply { cid: 1, ret } => {
                bail!("socket {}: 1305 answered ret {ret}", heard.socket)
            }
            What::Other(text) => bail!("socket {}: {text}", heard.socket),
            _ => {}
        }
    }
    Ok(())
}

/// Socket 0 says something in the room, `rounds` times after one unmeasured round: each
/// round's times from the command's sending to each member's reading of its push.
async fn fanout(
    sender: &mut Socket,
    members: usize,
    inbox: &mut Inbox,
    rounds: usize,
) -> anyhow::Result<Vec<Round>> {
    let mut measured = Vec::new();
    for round in 0..=rounds {
        tokio::time::sleep(BETWEEN_ROUNDS).await;
        let said = format!("round {round}");
        let cid = 100 + round as u64;
        let sent = Instant::now();
        sender
            .command(cid, "1309", json!({ "room": ROOM, "text": said }))
            .await?;
        let mut reached = vec![false; members];
        let mut times = Vec::with_capacity(members);
        let deadline = sent + ROUND_WITHIN;
        while times.len() < members {
            let Some(heard) = inbox.next_until(deadline).await else {
                break;
            };
            match heard.what {
                // Each member once (the host sends a push once per socket).
                What::Push { kind, text }
                    if kind == "say" && text == said && !reached[heard.socket] =>
                {
                    reached[heard.socket] = true;
                    times.push(heard.at - sent);
                }
                What::Reply { cid: c, ret } if c == cid && ret != 0 => {
                    bail!("1309 answered ret {ret}")
                }
                _ => {}
            }
        }
        times.sort();
        let Some(&last) = times.last() else {
            bail!(
                "no socket had the room's push within {} s",
                ROUND_WITHIN.as_secs()
            );
        };
        let figures = Round {
            reached: times.len(),
            first: times[0],
            half: percentile(&times, 0.5),
            last,
        };
        if round == 0 {
            eprintln!(
                "push: fan-out warm-up: {} of {members} sockets, the last after {:.1} ms",
                figures.reached,
                ms(last)
            );
            continue;
        }
        eprintln!(
            "push: fan-out round {round}/{rounds}: {} of {members} sockets; first {:.1} ms, \
             half {:.1} ms, last {:.1} ms",
            figures.reached,
            ms(figures.first),
            ms(figures.half),
            ms(last)
        );
        measured.push(figures);
    }
    Ok(measured)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One round of `1303` messages from the senders to the receivers' sockets.
async fn rate_round(
    host: &Server,
    sender_tokens: &[String],
    receivers: usize,
    shape: Shape,
    inbox: &mut Inbox,
) -> RateRun {
    let start = Instant::now();
    let measure_from = start + shape.warmup;
    let end = measure_from + shape.measure;
    let senders: Vec<_> = sender_tokens
        .iter()
        .enumerate()
        .map(|(n, token)| {
            let sending = Sending {
                addr: host.addr,
                token: token.clone(),
                first: n,
                stride: sender_tokens.len(),
                receivers,
                measure_from,
                end,
            };
            tokio::spawn(sending.run())
        })
        .collect();
    let counting = async {
        let mut delivered = 0;
        let mut count = |heard: Heard| {
            let message = matches!(&heard.what, What::Push { kind, .. } if kind == "message");
            if message && heard.at >= measure_from && heard.at <= end {
                delivered += 1;
            }
        };
        while let Some(heard) = inbox.next_until(end).await {
            count(heard);
        }
        // What was read by the end and is still queued.
        while let Some(heard) = inbox.ready() {
            count(heard);
        }
        delivered
    };
    let host_cpu = async {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = process::process_cpu_seconds(host.pid()).unwrap_or_default();
        tokio::time::sleep_until(end.into()).await;
        process::process_cpu_seconds(host.pid()).unwrap_or_default() - before
    };
    let (delivered, host_cpu) = tokio::join!(counting, host_cpu);
    let mut run = RateRun {
        seconds: shape.measure.as_secs_f64(),
        delivered,
        host_cpu,
        ..RateRun::default()
    };
    for sender in senders {
        let (answered, not_answered) = sender.await.unwrap_or_default();
        run.answered += answered;
        run.not_answered += not_answered;
    }
    run
}

/// One sender: `1303` to receivers `first`, `first + stride`, … in a closed loop until `end`.
struct Sending {
    addr: SocketAddr,
    token: String,
    first: usize,
    stride: usize,
    receivers: usize,
    measure_from: Instant,
    end: Instant,
}

impl Sending {
    /// The commands sent in the window: answered `ret` 0, and not.
    async fn run(self) -> (u64, u64) {
        let mut connection = Connection::new(self.addr);
        let (mut answered, mut not_answered) = (0, 0);
        let mut k = 0;
        while Instant::now() < self.end {
            let to = receiver_account((self.first + k * self.stride) % self.receivers.max(1));
            k += 1;
            let body = json!({ "cmd": "1303", "data": { "to": to, "text": format!("m{k}") } });
            let sent = Instant::now();
            let reply = connection
                .post("/logic", Some(&self.token), body.to_string())
                .await;
            let ok = matches!(&reply, Ok((_, reply)) if reply["ret"] == 0);
            if sent >= self.measure_from && Instant::now() <= self.end {
                match ok {
                    true => answered += 1,
                    false => not_answered += 1,
                }
            }
            if reply.is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        (answered, not_answered)
    }
}

/// Raises this process's open-file limit (`RLIMIT_NOFILE`) to `wanted` if it is lower: the
/// hard limit too when allowed (root), else the soft one up to the hard one. Processes
/// started afterwards (the hosts) inherit it. The soft limit now in force.
#[allow(unsafe_code)]
fn raise_open_files(wanted: u64) -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the value it is given, which lives here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    let set = |cur: u64, max: u64| {
        let raised = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads one `rlimit`, which lives here.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 }
    };
    if limit.rlim_max < wanted && set(wanted, wanted) {
        return Ok(wanted);
    }
    let cur = limit.rlim_max.min(wanted);
    if set(cur, limit.rlim_max) {
        Ok(cur)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
