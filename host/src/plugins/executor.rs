//! The executor: a fixed set of long-lived threads that run all module code.
//!
//! Module calls are synchronous FFI calls; on the async reactor they would stall every other
//! connection on that thread. They also must not run on `spawn_blocking` threads: those exit after
//! 10 s idle, and a thread that exits after running code of an unloaded library can crash the
//! process (docs/modules.md, "Why: what unloading involves"). So the executor starts its threads
//! once, feeds them jobs over a channel, and joins them only at shutdown.
//!
//! A call cannot be killed. A job past its deadline ([`Executor::run_within`]) keeps its
//! thread until it returns, so the executor starts a spare thread for each one: the threads
//! free for other jobs stay at the number configured, and a hung module never starves the
//! others for longer than one deadline. Spares live as long as the first threads (for the same
//! reason), up to [`MAX_SPARE_THREADS`]. The deadline runs whether or not the caller still
//! waits (a client that hangs up does not hide a hung call), only a job that started counts
//! (one still queued at its deadline is dropped unrun), and a job whose caller's count is at
//! its cap when a thread takes it is refused unrun, so calls queued behind a hung module do not
//! reach it.

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Threads started beyond the configured number, at most, to stand in for stuck ones.
pub const MAX_SPARE_THREADS: usize = 256;

/// A pool of worker threads for module code.
pub struct Executor {
    pool: Arc<Pool>,
}

/// What the executor and its deadline watches share.
struct Pool {
    /// `None` once shut down: no more jobs are accepted.
    /// A std `Mutex` because it is held only to clone or take the sender, never across `.await`.
    jobs: Mutex<Option<Sender<Job>>>,
    /// Taken by `shutdown` to join the threads; spares are pushed here. Same reasoning for
    /// the `Mutex`.
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Kept to start spare threads on the same queue.
    queue: Receiver<Job>,
    /// The number of threads started (`PluginsConfig::worker_threads`); spares come on top.
    threads: usize,
    /// Jobs past their deadline that have not returned, over all callers.
    stuck: AtomicUsize,
}

/// The executor no longer takes jobs (the host is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the module executor is shut down")]
pub struct ExecutorClosed;

/// Why [`Executor::run_within`] has no result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Closed(#[from] ExecutorClosed),
    /// The job did not return by its deadline; it runs on, counted as stuck until it returns
    /// (or it was still queued, and is dropped unrun).
    #[error("the job did not return by its deadline")]
    Overdue,
    /// When a thread took the job, its caller's count of stuck jobs was at the cap: not run.
    #[error("{0} jobs of this caller are stuck past their deadline")]
    TooManyStuck(u64),
}

/// Where a job under a deadline is. The job and its deadline each move it with one atomic
/// step, so that exactly one of them decides: a job that started and passed its deadline is
/// counted stuck once and uncounted once, and one that had not started is never run.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const RETURNED: u8 = 2;
const ABANDONED: u8 = 3;
const OVERDUE: u8 = 4;

/// One job under a deadline: its place, and the counts it is in while stuck.
struct Watched {
    mark: AtomicU8,
    /// The caller's count (one module version's).
    stuck: Arc<AtomicU64>,
    pool: Arc<Pool>,
}

impl Watched {
    /// The deadline passed: a queued job is abandoned; a started one is counted stuck and a
    /// spare thread takes its place.
    fn deadline_passed(&self) {
        // Counted before the mark, so that a job returning in between never takes back a
        // count that was not yet given; undone if the job was not running.
        self.stuck.fetch_add(1, Ordering::AcqRel);
        self.pool.stuck.fetch_add(1, Ordering::AcqRel);
        let marked =
            self.mark
                .compare_exchange(STARTED, OVERDUE, Ordering::AcqRel, Ordering::Acquire);
        if marked.is_ok() {
            self.pool.add_spares();
            return;
        }
        self.stuck.fetch_sub(1, Ordering::AcqRel);
        self.pool.stuck.fetch_sub(1, Ordering::AcqRel);
        let _ = self
            .mark
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Ends a started job, however it ends (a panic included): uncounts it if it was stuck.
struct Returned(Arc<Watched>);

impl Drop for Returned {
    fn drop(&mut self) {
        if self.0.mark.swap(RETURNED, Ordering::AcqRel) == OVERDUE {
            self.0.stuck.fetch_sub(1, Ordering::AcqRel);
            self.0.pool.stuck.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Held by the caller while it waits. If the caller goes away before the job settled (its
/// client hung up), the deadline still runs, on a task of its own.
struct DeadlineWatch {
    watched: Arc<Watched>,
    deadline: tokio::time::Instant,
    settled: bool,
}

impl Drop for DeadlineWatch {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let watched = self.watched.clone();
        let deadline = self.deadline;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep_until(deadline).await;
                    watched.deadline_passed();
                });
            }
            // No runtime left to wait on (the host is stopping): decide now.
            Err(_) => watched.deadline_passed(),
        }
    }
}

impl Executor {
    /// Starts `threads` worker threads named `module-worker-N`.
    pub fn start(threads: usize) -> std::io::Result<Executor> {
        let (sender, queue) = crossbeam_channel::unbounded::<Job>();
        let workers = (0..threads)
            .map(|n| spawn_worker(n, queue.clone()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Executor {
            pool: Arc::new(Pool {
                jobs: Mutex::new(Some(sender)),
                workers: Mutex::new(workers),
                queue,
                threads,
                stuck: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `job` like [`Executor::run`], but answers [`RunError::Overdue`] once `deadline`
    /// has passed. A job that started runs on: it is counted in `stuck` (the caller's count,
    /// for one module version) and in the executor's until it returns, and a spare thread
    /// takes its place. A job is not run if, when a thread takes it, `stuck` is at
    /// `max_stuck` ([`RunError::TooManyStuck`]) or its deadline has passed.
    pub async fn run_within<T, F>(
        &self,
        deadline: Duration,
        stuck: &Arc<AtomicU64>,
        max_stuck: u64,
        job: F,
    ) -> Result<T, RunError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let watched = Arc::new(Watched {
            mark: AtomicU8::new(QUEUED),
            stuck: stuck.clone(),
            pool: self.pool.clone(),
        });
        let (done, result) = oneshot::channel();
        let on_thread = watched.clone();
        self.submit(Box::new(move || {
            let started = on_thread.mark.compare_exchange(
                QUEUED,
                STARTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if started.is_err() {
                return; // abandoned at its deadline while queued
            }
            let returned = Returned(on_thread);
            let stuck_now = returned.0.stuck.load(Ordering::Acquire);
            let outcome = if stuck_now >= max_stuck {
                Err(RunError::TooManyStuck(stuck_now))
            } else {
                Ok(job())
            };
            drop(returned);
            let _ = done.send(outcome);
        }))?;
        let mut watch = DeadlineWatch {
            watched,
            deadline: tokio::time::Instant::now() + deadline,
            settled: false,
        };
        let outcome = tokio::time::timeout_at(watch.deadline, result).await;
        watch.settled = true;
        match outcome {
            Ok(result) => result.map_err(|_| RunError::Closed(ExecutorClosed))?,
            Err(_) => {
                watch.watched.deadline_passed();
                Err(RunError::Overdue)
            }
        }
    }

    /// Jobs past their deadline that have not returned.
    pub fn stuck(&self) -> usize {
        self.pool.stuck.load(Ordering::Acquire)
    }

    /// Threads running now, spares included.
    pub fn threads(&self) -> usize {
        self.pool.workers.lock().expect("executor lock").len()
    }
    /// Runs `job` on a worker thread and waits for its result without blocking the reactor.
    /// If the waiting future is dropped (a timeout), the job still runs to its end.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ExecutorClosed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        self.submit(Box::new(move || {
            // The caller gave up while the job was queued (a timeout): its result would be dropped.
            if !done.is_closed() {
                let _ = done.send(job());
            }
        }))?;
        result.await.map_err(|_| ExecutorClosed)
    }

    /// Runs `job` on a worker thread and blocks the calling thread until it returns.
    /// For start-up, shutdown and the `check` command, which have no reactor to keep free.
    pub fn run_blocking<T, F>(&self, job: F) -> Result<T, ExecutorClosed>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = std::sync::mpsc::sync_channel(1);
        self.submit(Box::new(move || {
            let _ = done.send(job());
        }))?;
        result.recv().map_err(|_| ExecutorClosed)
    }

    fn submit(&self, job: Job) -> Result<(), ExecutorClosed> {
        let sender = self
            .pool
            .jobs
            .lock()
            .expect("executor lock")
            .clone()
            .ok_or(ExecutorClosed)?;
        sender.send(job).map_err(|_| ExecutorClosed)
    }

    /// Stops taking jobs, lets queued ones finish, and joins the worker threads that end
    /// before `deadline`. Returns how many are still running a job (a module call that does
    /// not return); those are left behind, and what they pin stays loaded.
    /// Blocks: call it from a blocking context.
    pub fn shutdown(&self, deadline: Instant) -> usize {
        self.pool.jobs.lock().expect("executor lock").take();
        let mut workers = std::mem::take(&mut *self.pool.workers.lock().expect("executor lock"));
        while Instant::now() < deadline && workers.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (finished, running): (Vec<_>, Vec<_>) =
            workers.drain(..).partition(JoinHandle::is_finished);
        for worker in finished {
            let _ = worker.join();
        }
        running.len()
    }
}

fn spawn_worker(n: usize, queue: Receiver<Job>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("module-worker-{n}"))
        .spawn(move || queue.iter().for_each(run_job))
}

/// Runs one job. A panic here is a host bug (module panics are caught inside the module);
/// it is contained so that the worker thread lives on.
fn run_job(job: Job) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
}

impl Pool {
    /// Starts spare threads until the threads free of stuck jobs are back to the number
    /// configured (spares at most [`MAX_SPARE_THREADS`]); none once shut down.
    fn add_spares(&self) {
        let mut workers = self.workers.lock().expect("executor lock");
        // Checked under the workers lock: `shutdown` closes `jobs` before it takes the
        // workers, so a spare started here is always among those it joins.
        if self.jobs.lock().expect("executor lock").is_none() {
            return;
        }
        let stuck = self.stuck.load(Ordering::Acquire).min(MAX_SPARE_THREADS);
        while workers.len() < self.threads + stuck {
            // A thread that cannot start leaves the pool short; the jobs still run.
            match spawn_worker(workers.len(), self.queue.clone()) {
                Ok(worker) => workers.push(worker),
                Err(_) => break,
            }
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.pool.jobs.lock() {
            jobs.take();
        }
    }
}

#[cfg(test)]
mod tests;
