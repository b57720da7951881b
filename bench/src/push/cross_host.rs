//! A push across hosts: two release-built hosts on one scratch database (PostgreSQL, then
//! MariaDB, as the stores and fleet sections make theirs), a sender logged in on host A and a
//! receiver whose socket is open on host B. Each sample is one `1303` message sent to A over
//! HTTP, timed from just before the request to the receiver's socket reading the push. Host B
//! hears of A's commit by PostgreSQL's `NOTIFY`, or by polling every `push.poll_ms` on MariaDB,
//! so the samples come after pseudo-random pauses within one poll interval (as the fleet's
//! publishes do), not in step with B's polls. A push not read within [`LOST_AFTER`] is
//! counted lost. The scratch database is dropped at the end whatever happened, the hosts
//! stopped first; a server that does not answer skips its row, saying why.

use super::socket::{Inbox, Socket, What};
use crate::fleet::Pauses;
use crate::load::Connection;
use crate::process::{self, HostOptions, Server};
use crate::stats::percentile;
use crate::stores::Database;
use anyhow::{anyhow, bail};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::scratch::ScratchDatabase;

/// The servers measured, in order.
pub const DATABASES: [Database; 2] = [Database::Postgres, Database::MariaDb];
/// Past this, a push has not arrived.
pub const LOST_AFTER: Duration = Duration::from_secs(5);
/// The receiver, whose socket is on host B.
const RECEIVER: &str = "push-x-receiver";
/// Tries of the first, unmeasured push (it also tells that B's socket gets pushes at all).
const WARM_UP_TRIES: usize = 5;

/// What the cross-host part measured.
#[derive(Debug)]
pub struct CrossHostFigures {
    /// Samples per server.
    pub samples: usize,
    /// `push.poll_ms` as the hosts read it, if it could be read.
    pub poll_ms: Option<u64>,
    pub databases: Vec<DatabaseFigures>,
}

#[derive(Debug)]
pub struct DatabaseFigures {
    pub database: Database,
    pub outcome: Outcome,
}

/// How one server's run went.
#[derive(Debug)]
pub enum Outcome {
    Measured(Latencies),
    /// Not run, and why (the server does not answer, or refused a scratch database).
    Skipped(String),
    /// Started, but could not be measured, and why.
    Failed(String),
}

/// One server's samples.
#[derive(Debug, Default)]
pub struct Latencies {
    /// Each delivered push's time, from sending the command to the socket reading the push.
    pub times: Vec<Duration>,
    /// Pushes not read within [`LOST_AFTER`].
    pub lost: usize,
}

impl Latencies {
    /// A percentile (0..=1) of the delivered pushes' times; `None` if none was delivered.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.times.clone();
        sorted.sort();
        (!sorted.is_empty()).then(|| percentile(&sorted, p))
    }
}

pub async fn run(
    build: &Path,
    config_dir: &Path,
    samples: usize,
) -> anyhow::Result<CrossHostFigures> {
    let poll_ms =
        process::host_setting(build, config_dir, "push", "poll_ms").and_then(|ms| ms.parse().ok());
    // Unread, the pauses still spread over the documented default.
    let poll = Duration::from_millis(poll_ms.unwrap_or(100));
    let mut databases = Vec::new();
    for database in DATABASES {
        let outcome = tokio::select! {
            outcome = measure_database(build, config_dir, database, samples, poll) => outcome,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        };
        match &outcome {
            Outcome::Skipped(why) => eprintln!("push: SKIPPED {}: {why}", database.name()),
            Outcome::Failed(why) => eprintln!("push: FAILED {}: {why}", database.name()),
            Outcome::Measured(_) => {}
        }
        databases.push(DatabaseFigures { database, outcome });
    }
    Ok(CrossHostFigures {
        samples,
        poll_ms,
        databases,
    })
}

async fn measure_database(
    build: &Path,
    config_dir: &Path,
    database: Database,
    samples: usize,
    poll: Duration,
) -> Outcome {
    let Some(server) = database.server() else {
        return Outcome::Skipped("not a database server".into());
    };
    let admin = match server.admin_url("GAME_BENCH") {
        Ok(admin) => admin,
        Err(why) => return Outcome::Skipped(why),
    };
    let name = format!(
        "game_bench_{}_push_{}",
        std::process::id(),
        database.name().to_lowercase()
    );
    let scratch = match ScratchDatabase::create(&admin, &name).await {
        Ok(scratch) => scratch,
        Err(why) => return Outcome::Skipped(why.to_string()),
    };
    // The hosts are stopped when this returns, before `scratch` is dropped.
    let measured = measure_pair(build, config_dir, database, scratch.url(), samples, poll).await;
    drop(scratch);
    match measured {
        Ok(latencies) => Outcome::Measured(latencies),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

async fn measure_pair(
    build: &Path,
    config_dir: &Path,
    database: Database,
    url: &str,
    samples: usize,
    poll: Duration,
) -> anyhow::Result<Latencies> {
    let name = database.name();
    eprintln!("push: {name}: starting two hosts");
    let host = |host_id| {
        let options = HostOptions {
            database_url: Some(url),
            host_id: Some(host_id),
            ..HostOptions::default()
        };
        Server::host_with(build, config_dir, &options)
    };
    let (a, b) = (host("push-a")?, host("push-b")?);
    let mut to_a = Connection::new(a.addr);
    let sender = to_a.login("push-x-sender").await?;
    let receiver = Connection::new(b.addr).login(RECEIVER).await?;
    let (tx, inbox) = Inbox::new();
    let _socket = Socket::open(b.addr, &receiver, 0, &tx).await?;
    let mut pair = Pair {
        to_a,
        sender,
        inbox,
    };
    // A push that is read tells that B's socket has joined its host's pushes.
    let mut warmed = false;
    for n in 0..WARM_UP_TRIES {
        if pair.deliver(&format!("warm-up {n}")).await?.is_some() {
            warmed = true;
            break;
        }
    }
    if !warmed {
        bail!(
            "no push reached the socket on host B in {WARM_UP_TRIES} tries of {} s",
            LOST_AFTER.as_secs()
        );
    }
    let mut pauses = Pauses::new();
    let mut latencies = Latencies::default();
    for n in 1..=samples {
        tokio::time::sleep(pauses.next(poll)).await;
        match pair.deliver(&format!("sample {n}")).await? {
            Some(took) => latencies.times.push(took),
            None => latencies.lost += 1,
        }
        if n % 50 == 0 || n == samples {
            let p50 = latencies.percentile(0.5).unwrap_or_default();
            eprintln!(
                "push: {name}: {n}/{samples} samples, p50 {:.1} ms, {} lost",
                p50.as_secs_f64() * 1e3,
                latencies.lost
            );
        }
    }
    drop(pair);
    drop((a, b));
    Ok(latencies)
}

/// The sender's connection to host A, and what the receiver's socket on B reads.
struct Pair {
    to_a: Connection,
    sender: String,
    inbox: Inbox,
}

impl Pair {
    /// Sends `1303 {"to": RECEIVER, "text": text}` to host A; the time until the receiver's
    /// socket read its push, or `None` if it did not within [`LOST_AFTER`].
    async fn deliver(&mut self, text: &str) -> anyhow::Result<Option<Duration>> {
        let body = json!({ "cmd": "1303", "data": { "to": RECEIVER, "text": text } });
        let sent = Instant::now();
        let (_, reply) = self
            .to_a
            .post("/logic", Some(&self.sender), body.to_string())
            .await?;
        if reply["ret"] != 0 {
            return Err(anyhow!("1303 on host A answered {reply}"));
        }
        while let Some(heard) = self.inbox.next_until(sent + LOST_AFTER).await {
            if matches!(&heard.what, What::Push { kind, text: t } if kind == "message" && t == text)
            {
                return Ok(Some(heard.at - sent));
            }
        }
        if self.inbox.closed_count() > 0 {
            bail!("the socket on host B closed: {:?}", self.inbox.closed);
        }
        Ok(None)
    }
}
