use super::*;
use std::sync::mpsc;

#[tokio::test]
async fn a_job_past_its_deadline_is_counted_stuck_until_it_returns_and_others_still_run() {
    let executor = Executor::start(1).expect("threads start");
    let stuck = Arc::new(AtomicU64::new(0));
    let (release, hold) = mpsc::channel::<()>();
    let hung = executor
        .run_within(Duration::from_millis(50), &stuck, 100, move || hold.recv())
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
        .run_within(Duration::from_secs(30), &stuck, 100, || 42)
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
            .run_within(Duration::from_secs(30), &stuck, 100, move || n * 2)
            .await
            .expect("on time");
        assert_eq!(doubled, n * 2);
    }
    assert_eq!(stuck.load(Ordering::Acquire), 0);
    assert_eq!(executor.threads(), 2);
}

async fn wait_for(count: &AtomicU64, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count.load(Ordering::Acquire) != value && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(count.load(Ordering::Acquire), value);
}

/// Starts a job on `executor` that holds its thread until the sender is used or dropped,
/// under `deadline`; returns once the job runs, with its caller's task.
async fn hold_a_thread(
    executor: &Arc<Executor>,
    deadline: Duration,
    stuck: &Arc<AtomicU64>,
) -> (
    tokio::task::JoinHandle<Result<Result<(), mpsc::RecvError>, RunError>>,
    mpsc::Sender<()>,
) {
    let (release, hold) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel::<()>();
    let caller = {
        let (executor, stuck) = (executor.clone(), stuck.clone());
        tokio::spawn(async move {
            executor
                .run_within(deadline, &stuck, 100, move || {
                    started.send(()).unwrap();
                    hold.recv()
                })
                .await
        })
    };
    tokio::task::spawn_blocking(move || running.recv())
        .await
        .unwrap()
        .unwrap();
    (caller, release)
}

#[tokio::test]
async fn a_call_whose_caller_went_away_is_still_counted_stuck_at_its_deadline() {
    let executor = Arc::new(Executor::start(1).expect("threads start"));
    let stuck = Arc::new(AtomicU64::new(0));
    let (caller, release) = hold_a_thread(&executor, Duration::from_millis(100), &stuck).await;
    caller.abort(); // the client hung up before the deadline
    wait_for(&stuck, 1).await;
    assert_eq!(executor.threads(), 2, "a spare took its place");
    release.send(()).unwrap();
    wait_for(&stuck, 0).await;
}

#[tokio::test]
async fn a_job_still_queued_at_its_deadline_is_dropped_unrun_and_not_counted() {
    let executor = Arc::new(Executor::start(1).expect("threads start"));
    let (stuck_a, stuck_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (holding, release) = hold_a_thread(&executor, Duration::from_secs(60), &stuck_a).await;
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let queued = {
        let ran = ran.clone();
        executor.run_within(Duration::from_millis(50), &stuck_b, 100, move || {
            ran.store(true, Ordering::Release)
        })
    };
    let (queued, ()) = tokio::join!(queued, async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.send(()).unwrap();
    });
    assert!(matches!(queued, Err(RunError::Overdue)), "{queued:?}");
    holding
        .await
        .unwrap()
        .expect("the first job returns")
        .unwrap();
    // A job after it runs on the same thread: by then the queued one was taken and skipped.
    executor
        .run_within(Duration::from_secs(30), &stuck_b, 100, || ())
        .await
        .unwrap();
    assert!(!ran.load(Ordering::Acquire), "never run");
    assert_eq!(stuck_b.load(Ordering::Acquire), 0, "never counted");
    assert_eq!(executor.threads(), 1, "no spare for a job that never ran");
}

#[tokio::test]
async fn a_job_of_a_caller_at_its_cap_is_refused_unrun() {
    let executor = Executor::start(1).expect("threads start");
    let stuck = Arc::new(AtomicU64::new(2));
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let refused = executor
        .run_within(Duration::from_secs(30), &stuck, 2, move || {
            flag.store(true, Ordering::Release)
        })
        .await;
    assert!(
        matches!(refused, Err(RunError::TooManyStuck(2))),
        "{refused:?}"
    );
    assert!(!ran.load(Ordering::Acquire));
}
