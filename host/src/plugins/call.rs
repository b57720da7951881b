//! A command's call into a module version, as the request path makes it: under its deadline,
//! within the version's cap of stuck calls, and accounted for (calls, failures, calls running,
//! calls stuck). The one place that says whether a version is healthy.
//!
//! A call cannot be killed: past its deadline it keeps its thread and its pin on the version
//! until it returns, counted as stuck ([`super::executor::Executor::run_within`]). A version
//! with `plugins.max_stuck_calls` stuck calls is unhealthy: its commands are refused at once,
//! and it is reported so by the admin API and the metrics, until its calls return.

use super::executor::{Executor, ExecutorClosed, RunError};
use super::version::{CallOutcome, ModuleVersion};
use crate::protocol::Cmd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The bounds of one call: from `[plugins]`.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// How long the caller waits for the module (`plugins.call_timeout_ms`, or the module's).
    pub deadline: Duration,
    /// Stuck calls at which the version takes no more (`plugins.max_stuck_calls`).
    pub max_stuck: u64,
}

/// What a command hands the module: JSON texts.
#[derive(Debug)]
pub struct CallInput {
    pub data: String,
    pub player: String,
    pub module_data: String,
    /// The player's account.
    pub account: String,
}

/// Why a call has no outcome.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Closed(#[from] ExecutorClosed),
    /// The version has this many calls stuck past their deadline: not called.
    #[error("{stuck} calls of this version are past their deadline and have not returned")]
    TooManyStuck { stuck: u64 },
    /// The call did not return by its deadline; it runs on, counted among `stuck`.
    #[error("the call did not return within {}ms", deadline.as_millis())]
    Overdue { deadline: Duration, stuck: u64 },
}

/// Counters of one version's calls since it was loaded.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    failures: AtomicU64,
    in_flight: AtomicU64,
    /// Calls past their deadline that have not returned (shared with the executor's jobs,
    /// which uncount themselves when they return).
    stuck: Arc<AtomicU64>,
    /// Whether the version has refused with a code it does not declare (logged once).
    undeclared_refusal: AtomicBool,
}

/// A reading of [`CallStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    pub calls: u64,
    /// Calls that failed or panicked in the module, passed their deadline, or were not run
    /// because too many were stuck. (What the host refuses of a module's reply afterwards, an
    /// invalid record or one over the size limit, is logged and answered -5, not counted here.)
    pub failures: u64,
    pub in_flight: u64,
    pub stuck: u64,
}

impl CallStats {
    pub fn counts(&self) -> CallCounts {
        CallCounts {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            stuck: self.stuck.load(Ordering::Acquire),
        }
    }

    /// Whether this is the version's first refusal with a code it does not declare: that one
    /// is logged, the next are not (a module refusing with it on every call would flood the
    /// log).
    pub fn first_undeclared_refusal(&self) -> bool {
        !self.undeclared_refusal.swap(true, Ordering::Relaxed)
    }

    /// Calls running now (a version drains until none is).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the version takes commands: fewer than `max_stuck` of its calls are stuck.
    pub fn healthy(&self, max_stuck: u64) -> bool {
        self.stuck.load(Ordering::Acquire) < max_stuck
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one call as running until dropped.
struct Running<'a>(&'a CallStats);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ModuleVersion {
    /// Runs command `cmd` on an `executor` thread under `limits`, and counts it. The job owns
    /// its pin on the version, so a call that outlives its deadline keeps its library loaded
    /// until it returns; its outcome is then dropped.
    pub async fn run_command(
        self: &Arc<Self>,
        executor: &Executor,
        limits: CallLimits,
        cmd: Cmd,
        input: CallInput,
    ) -> Result<CallOutcome, CallError> {
        let pinned = self.clone();
        let outcome = self
            .run_counted(executor, limits, move || {
                let json = (
                    input.data.as_str(),
                    input.player.as_str(),
                    input.module_data.as_str(),
                );
                pinned.call(cmd, json, &input.account)
            })
            .await?;
        if !matches!(
            outcome,
            CallOutcome::Done { .. } | CallOutcome::Refused { .. }
        ) {
            self.stats.failed();
        }
        Ok(outcome)
    }

    /// Migrates one player's stored data to schema `to` ([`ModuleVersion::migrate`]) on an
    /// `executor` thread under `limits`, counted as a call of this version like a command.
    pub async fn run_migrate(
        self: &Arc<Self>,
        executor: &Executor,
        limits: CallLimits,
        stored: String,
        to: u32,
    ) -> Result<Result<String, String>, CallError> {
        let pinned = self.clone();
        let migrated = self
            .run_counted(executor, limits, move || pinned.migrate(&stored, to))
            .await?;
        if migrated.is_err() {
            self.stats.failed();
        }
        Ok(migrated)
    }

    /// Runs `job` (module code of this version) on an `executor` thread under `limits`, counted
    /// among the version's calls, and as a failure if it has no outcome.
    async fn run_counted<T: Send + 'static>(
        &self,
        executor: &Executor,
        limits: CallLimits,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CallError> {
        let stats = &self.stats;
        let stuck = stats.stuck.load(Ordering::Acquire);
        if stuck >= limits.max_stuck {
            stats.failed();
            return Err(CallError::TooManyStuck { stuck });
        }
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let _running = Running(stats);
        let outcome = executor
            .run_within(limits.deadline, &stats.stuck, limits.max_stuck, job)
            .await;
        outcome.map_err(|e| {
            stats.failed();
            match e {
                RunError::Closed(closed) => CallError::Closed(closed),
                RunError::TooManyStuck(stuck) => CallError::TooManyStuck { stuck },
                RunError::Overdue => CallError::Overdue {
                    deadline: limits.deadline,
                    stuck: stats.stuck.load(Ordering::Acquire),
                },
            }
        })
    }
}
