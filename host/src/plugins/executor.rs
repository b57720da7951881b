//! The executor: a fixed set of long-lived threads that run all module code.
//!
//! Module calls are synchronous FFI calls; on the async reactor they would stall every other
//! connection on that thread. They also must not run on `spawn_blocking` threads: those exit
//! after 10 s idle, and a thread that exits after running code of an unloaded library can
//! crash the process (research §3b item 3). So the executor starts its threads once, feeds
//! them jobs over a channel, and joins them only at shutdown.
//!
//! A call cannot be killed. A job past its deadline ([`Executor::run_within`]) keeps its
//! thread until it returns, so the executor starts a spare thread for each one: the threads
//! free for other jobs stay at the number configured, and a hung module never starves the
//! others. Spares live as long as the first threads (for the same reason), up to
//! [`MAX_SPARE_THREADS`]; the callers cap how many calls each module may have stuck.

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
    /// `None` once shut down: no more jobs are accepted.
    /// A std `Mutex` because it is held only to clone or take the sender, never across `.await`.
    jobs: Mutex<Option<Sender<Job>>>,
    /// Taken by `shutdown` to join the threads; spares are pushed here. Same reasoning for
    /// the `Mutex`.
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Kept to start spare threads on the same queue.
    queue: Receiver<Job>,
    /// The configured number of threads.
    threads: usize,
    /// Jobs past their deadline that have not returned, over all callers.
    stuck: Arc<AtomicUsize>,
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
    /// The job did not return by its deadline; it runs on, counted as stuck until it returns.
    #[error("the job did not return by its deadline")]
    Overdue,
}

/// Where a job under a deadline is: whichever of the job and the deadline comes second sees
/// the other's mark, so that a stuck job is counted exactly once and uncounted exactly once.
const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const OVERDUE: u8 = 2;

impl Executor {
    /// Starts `threads` worker threads named `module-worker-N`.
    pub fn start(threads: usize) -> std::io::Result<Executor> {
        let (sender, queue) = crossbeam_channel::unbounded::<Job>();
        let workers = (0..threads)
            .map(|n| spawn_worker(n, queue.clone()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Executor {
            jobs: Mutex::new(Some(sender)),
            workers: Mutex::new(workers),
            queue,
            threads,
            stuck: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `job` like [`Executor::run`], but answers [`RunError::Overdue`] once `deadline`
    /// has passed. The job runs on: it is counted in `stuck` (the caller's count, for one
    /// module version) and in the executor's, until it returns, and a spare thread takes its
    /// place in the pool.
    pub async fn run_within<T, F>(
        &self,
        deadline: Duration,
        stuck: &Arc<AtomicU64>,
        job: F,
    ) -> Result<T, RunError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let mark = Arc::new(AtomicU8::new(RUNNING));
        let (done, result) = oneshot::channel();
        let returned = {
            let (mark, caller_stuck, all_stuck) = (mark.clone(), stuck.clone(), self.stuck.clone());
            move || {
                if mark.swap(RETURNED, Ordering::AcqRel) == OVERDUE {
                    caller_stuck.fetch_sub(1, Ordering::AcqRel);
                    all_stuck.fetch_sub(1, Ordering::AcqRel);
                }
            }
        };
        self.submit(Box::new(move || {
            // The caller gave up while the job was queued: its result would be dropped.
            if !done.is_closed() {
                let _ = done.send(job());
            }
            returned();
        }))?;
        match tokio::time::timeout(deadline, result).await {
            Ok(result) => result.map_err(|_| RunError::Closed(ExecutorClosed)),
            Err(_) => {
                // Counted before the mark, so that a job returning in between never takes a
                // count that was not yet given.
                stuck.fetch_add(1, Ordering::AcqRel);
                let now_stuck = self.stuck.fetch_add(1, Ordering::AcqRel) + 1;
                let marked =
                    mark.compare_exchange(RUNNING, OVERDUE, Ordering::AcqRel, Ordering::Acquire);
                if marked.is_ok() {
                    self.add_spare(now_stuck);
                } else {
                    stuck.fetch_sub(1, Ordering::AcqRel);
                    self.stuck.fetch_sub(1, Ordering::AcqRel);
                }
                Err(RunError::Overdue)
            }
        }
    }

    /// Jobs past their deadline that have not returned.
    pub fn stuck(&self) -> usize {
        self.stuck.load(Ordering::Acquire)
    }

    /// Threads running now, spares included.
    pub fn threads(&self) -> usize {
        self.workers.lock().expect("executor lock").len()
    }

    /// Starts a spare thread if fewer than the configured number are free of stuck jobs.
    fn add_spare(&self, stuck: usize) {
        if self.jobs.lock().expect("executor lock").is_none() {
            return;
        }
        let mut workers = self.workers.lock().expect("executor lock");
        let wanted = self.threads + stuck.min(MAX_SPARE_THREADS);
        if workers.len() < wanted {
            // A thread that cannot start leaves the pool one short; the jobs still run.
            if let Ok(worker) = spawn_worker(workers.len(), self.queue.clone()) {
                workers.push(worker);
            }
        }
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
        self.jobs.lock().expect("executor lock").take();
        let mut workers = std::mem::take(&mut *self.workers.lock().expect("executor lock"));
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

impl Drop for Executor {
    fn drop(&mut self) {
        self.jobs.get_mut().map(Option::take).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_job_past_its_deadline_is_counted_stuck_until_it_returns_and_others_still_run() {
        let executor = Executor::start(1).expect("threads start");
        let stuck = Arc::new(AtomicU64::new(0));
        let (release, hold) = mpsc::channel::<()>();
        let hung = executor
            .run_within(Duration::from_millis(50), &stuck, move || hold.recv())
            .await;
        assert!(matches!(hung, Err(RunError::Overdue)), "{hung:?}");
        assert_eq!(stuck.load(Ordering::Acquire), 1);
        assert_eq!(executor.stuck(), 1);
        assert_eq!(
            executor.threads(),
            2,
            "a spare stands in for the stuck thread"
        );

        // The only configured thread is held: the spare runs this one.
        let answer = executor
            .run_within(Duration::from_secs(30), &stuck, || 42)
            .await
            .expect("runs on the spare");
        assert_eq!(answer, 42);

        release.send(()).expect("the hung job waits");
        let deadline = Instant::now() + Duration::from_secs(30);
        while stuck.load(Ordering::Acquire) != 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            stuck.load(Ordering::Acquire),
            0,
            "uncounted when it returns"
        );
        assert_eq!(executor.stuck(), 0);
        assert_eq!(executor.threads(), 2, "spares live on, like every worker");
    }

    #[tokio::test]
    async fn a_job_on_time_is_never_counted_stuck() {
        let executor = Executor::start(2).expect("threads start");
        let stuck = Arc::new(AtomicU64::new(0));
        for n in 0..200 {
            let doubled = executor
                .run_within(Duration::from_secs(30), &stuck, move || n * 2)
                .await
                .expect("on time");
            assert_eq!(doubled, n * 2);
        }
        assert_eq!(stuck.load(Ordering::Acquire), 0);
        assert_eq!(executor.threads(), 2);
    }
}
