//! The same workloads driven by wrk (`wrk -t1 -c64 --latency -s script`), a generator that
//! costs less CPU per request than ours (`load.rs`): on a shared machine the generator's CPU
//! is taken from the server, so a cheaper one shows more of the server's own cost.
//!
//! The bench logs the players in itself; a Lua script written to a temporary folder gives
//! each request the next player's token (round robin over all of them) and the workload's
//! body, as `load.rs` does: `read` 1203, `write` 1201 with a new name each time, `mixed` 80%
//! 1203, 15% 1101, 5% 1103. wrk reads no reply body (that would cost Lua per reply), so
//! host errors are seen as non-2xx statuses, which the host gives every negative `ret`.

use crate::load::Workload;
use crate::process::cpu_seconds_by_thread;
use crate::stats::median;
use anyhow::{anyhow, bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How to get wrk, for the report when it is missing.
pub const INSTALL: &str = "install wrk (`apt-get install wrk`) to measure with it";

/// wrk's figures for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkRun {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// "Non-2xx or 3xx responses".
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts, summed.
    pub socket_errors: u64,
}

/// The wrk part of the HTTP section: measured, or why not.
#[derive(Debug)]
pub enum WrkFigures {
    /// No wrk on `PATH`: what to do to get it.
    Missing(&'static str),
    Measured {
        ceiling: WrkRow,
        workloads: Vec<WrkRow>,
    },
}

/// One line of the wrk table: its runs (one per round) and the server's CPU in them.
#[derive(Debug)]
pub struct WrkRow {
    pub name: &'static str,
    pub runs: Vec<WrkRun>,
    /// The server's CPU seconds over all runs, and its requests (rate × window) over them.
    server_cpu: f64,
    requests: f64,
}

impl WrkRow {
    pub fn new(name: &'static str) -> WrkRow {
        WrkRow {
            name,
            runs: Vec::new(),
            server_cpu: 0.0,
            requests: 0.0,
        }
    }

    pub fn throughput(&self) -> f64 {
        median(self.runs.iter().map(|r| r.requests_per_second))
    }
    pub fn p50_ms(&self) -> f64 {
        median(self.runs.iter().map(|r| r.p50_ms))
    }
    pub fn p99_ms(&self) -> f64 {
        median(self.runs.iter().map(|r| r.p99_ms))
    }
    pub fn non_2xx(&self) -> u64 {
        self.runs.iter().map(|r| r.non_2xx).sum()
    }
    pub fn socket_errors(&self) -> u64 {
        self.runs.iter().map(|r| r.socket_errors).sum()
    }
    /// The server's µs of CPU per request, over all rounds.
    pub fn server_micros_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.requests.max(1.0)
    }
}

/// wrk and the scripts of one HTTP section, in a temporary folder removed on drop.
pub struct Session {
    wrk: PathBuf,
    folder: tempfile::TempDir,
    pub connections: usize,
    pub measure: Duration,
}

impl Session {
    /// wrk's session, or `None` when wrk is not installed.
    pub fn start(connections: usize, measure: Duration) -> anyhow::Result<Option<Session>> {
        let Some(wrk) = find() else {
            return Ok(None);
        };
        Ok(Some(Session {
            wrk,
            folder: tempfile::tempdir()?,
            connections,
            measure,
        }))
    }

    /// Writes `workload`'s script for `tokens` under `name` and returns its path.
    pub fn script(
        &self,
        name: &str,
        workload: Workload,
        tokens: &[String],
    ) -> anyhow::Result<PathBuf> {
        let path = self.folder.path().join(format!("{name}.lua"));
        std::fs::write(&path, script(workload, tokens))?;
        Ok(path)
    }

    /// Runs `script` against the server `pid` at `addr` and records it in `row`, with the
    /// server's CPU in that window.
    pub async fn record(
        &self,
        row: &mut WrkRow,
        addr: SocketAddr,
        pid: u32,
        script: &Path,
    ) -> anyhow::Result<()> {
        let (wrk, script) = (self.wrk.clone(), script.to_owned());
        let (connections, measure) = (self.connections, self.measure);
        let before: f64 = cpu_seconds_by_thread(pid).values().sum();
        let run =
            tokio::task::spawn_blocking(move || run(&wrk, addr, &script, measure, connections))
                .await??;
        let after: f64 = cpu_seconds_by_thread(pid).values().sum();
        row.server_cpu += after - before;
        row.requests += run.requests_per_second * measure.as_secs().max(1) as f64;
        row.runs.push(run);
        Ok(())
    }
}

/// The `wrk` binary on `PATH`, if there is one.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("wrk"))
        .find(|candidate| candidate.is_file())
}

/// The Lua script: requests are formatted once per player and body where they can be (`read`,
/// `mixed`), so that wrk spends its time on the socket, not in Lua; `write`'s body differs
/// every time.
pub fn script(workload: Workload, tokens: &[String]) -> String {
    let tokens: Vec<String> = tokens.iter().map(|t| format!("{t:?}")).collect();
    let mut lua = format!(
        "-- game-bench: {} (written by bench/src/wrk.rs)\n\
         local tokens = {{{}}}\n\
         local n = #tokens\n\
         local i = 0\n\
         local function headers(token)\n  \
           return {{[\"Content-Type\"] = \"application/json\", [\"Authorization\"] = \"Bearer \" .. token}}\n\
         end\n\
         local function prepared(body)\n  \
           local out = {{}}\n  \
           for k, token in ipairs(tokens) do out[k] = wrk.format(\"POST\", \"/logic\", headers(token), body) end\n  \
           return out\n\
         end\n",
        workload.name(),
        tokens.join(", ")
    );
    lua += match workload {
        Workload::Read => {
            "local record = prepared('{\"cmd\":\"1203\",\"data\":{}}')\n\
             request = function()\n  \
               i = i + 1\n  \
               return record[i % n + 1]\n\
             end\n"
        }
        Workload::Write => {
            "request = function()\n  \
               i = i + 1\n  \
               local body = '{\"cmd\":\"1201\",\"data\":{\"name\":\"bench-' .. i .. '\"}}'\n  \
               return wrk.format(\"POST\", \"/logic\", headers(tokens[i % n + 1]), body)\n\
             end\n"
        }
        Workload::Mixed => {
            "local record = prepared('{\"cmd\":\"1203\",\"data\":{}}')\n\
             local goods = prepared('{\"cmd\":\"1101\",\"data\":{}}')\n\
             local buy = prepared('{\"cmd\":\"1103\",\"data\":{\"id\":\"potion\",\"count\":1}}')\n\
             -- A fixed seed: the mix is the same on every run.\n\
             math.randomseed(42)\n\
             request = function()\n  \
               i = i + 1\n  \
               local roll = math.random(0, 99)\n  \
               local k = i % n + 1\n  \
               if roll < 80 then return record[k] elseif roll < 95 then return goods[k] else return buy[k] end\n\
             end\n"
        }
        // Keys of each run's own (see `load.rs`): the players are the same every run, and one
        // script serves every round, so the prefix is taken when wrk loads it.
        Workload::KeyedWrite => {
            "local run = os.time()\n\
             request = function()\n  \
               i = i + 1\n  \
               local h = headers(tokens[i % n + 1])\n  \
               h[\"Idempotency-Key\"] = \"wrk-\" .. run .. \"-\" .. i\n  \
               local body = '{\"cmd\":\"1201\",\"data\":{\"name\":\"bench-' .. i .. '\"}}'\n  \
               return wrk.format(\"POST\", \"/logic\", h, body)\n\
             end\n"
        }
    };
    lua
}

/// Runs wrk against `addr` with `script` for `seconds` on `connections` connections, and reads
/// its figures.
pub fn run(
    wrk: &Path,
    addr: SocketAddr,
    script: &Path,
    measure: Duration,
    connections: usize,
) -> anyhow::Result<WrkRun> {
    let output = Command::new(wrk)
        .arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", measure.as_secs().max(1)))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(format!("http://{addr}/logic"))
        .output()
        .with_context(|| format!("cannot run {}", wrk.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&stdout)
}

/// Reads wrk's report (with `--latency`).
pub fn parse(report: &str) -> anyhow::Result<WrkRun> {
    let mut run = WrkRun {
        requests_per_second: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        non_2xx: 0,
        socket_errors: 0,
    };
    for line in report.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            run.requests_per_second = rate.trim().parse()?;
        } else if let Some(latency) = line.strip_prefix("50%") {
            run.p50_ms = millis(latency.trim())?;
        } else if let Some(latency) = line.strip_prefix("99%") {
            run.p99_ms = millis(latency.trim())?;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.non_2xx = count.trim().parse()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            run.socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    if run.requests_per_second.is_nan() || run.p99_ms.is_nan() {
        bail!("no Requests/sec or latency distribution in wrk's report: {report}");
    }
    Ok(run)
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.01s`, `1.00m`) in milliseconds.
fn millis(text: &str) -> anyhow::Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| anyhow!("no unit in wrk's duration {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        _ => bail!("unknown unit in wrk's duration {text:?}"),
    })
}

#[cfg(test)]
mod tests;
