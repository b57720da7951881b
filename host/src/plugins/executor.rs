//! The executor: a fixed set of long-lived threads that run all module code.
//!
//! Module calls are synchronous FFI calls; on the async reactor they would stall every other
//! connection on that thread. They also must not run on `spawn_blocking` threads: those exit
//! after 10 s idle, and a thread that exits after running code of an unloaded library can
//! crash the process (research §3b item 3). So the executor starts its threads once, feeds
//! them jobs over a channel, and joins them only at shutdown.

use crossbeam_channel::{Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool of worker threads for module code.
pub struct Executor {
    /// `None` once shut down: no more jobs are accepted.
    /// A std `Mutex` because it is held only to clone or take the sender, never across `.await`.
    jobs: Mutex<Option<Sender<Job>>>,
    /// Taken by `shutdown` to join the threads. Same reasoning for the `Mutex`.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// The executor no longer takes jobs (the host is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the module executor is shut down")]
pub struct ExecutorClosed;

impl Executor {
    /// Starts `threads` worker threads named `module-worker-N`.
    pub fn start(threads: usize) -> std::io::Result<Executor> {
        let (sender, receiver) = crossbeam_channel::unbounded::<Job>();
        let workers = (0..threads)
            .map(|n| {
                let receiver: Receiver<Job> = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("module-worker-{n}"))
                    .spawn(move || receiver.iter().for_each(run_job))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Executor {
            jobs: Mutex::new(Some(sender)),
            workers: Mutex::new(workers),
        })
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
