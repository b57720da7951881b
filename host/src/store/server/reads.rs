//! Turn reads in batches: the reads of many commands, each for its own player, module and
//! session, answered by one statement.
//!
//! Why: on a server store a read costs far more in fixed costs than in work. Each statement
//! is a round trip that wakes the database's backend and then the host, and parses, binds and
//! plans; what the statement reads (one row by its key, two small rows beside it) is a small
//! part of that. So a turn that is not locked (keyed or not) sends its read here
//! ([`Reads::read`]), and a task of the store's collects whatever reads are waiting and runs
//! them as one statement ([`Sql::turn_read_batch`]): the reads go as one JSON array, which
//! the database turns into rows (`json_to_recordset`, MariaDB's `JSON_TABLE`) and joins to
//! the players by key; each row carries its read's place in the batch. One statement, one
//! plan, one executor however many reads: a batch of reads written as a `UNION ALL` of single
//! reads was tried first, and cost PostgreSQL as much per read as single statements did.
//!
//! How many at once: at most [`MAX_BATCH`] reads a statement, and at most
//! `store.batch_readers` batches under way (one by default; [`Reads::start`]): while they are
//! all busy, reads wait and gather, so a batch grows with the load and a lone read goes at
//! once. The other connections stay free for writes. Fewer readers make bigger batches, which
//! cost the database less a read: with PostgreSQL on the host's two cores, `read` ran at 18.8k
//! req/s with four readers, 21-23k with two, 22-25k with one (at 41, 28-34 and 19-26 µs of
//! PostgreSQL's CPU a read); in alternating runs with one writer against two of each, one
//! reader served 8-13% more `read` on PostgreSQL and MariaDB, at a third less of the
//! database's CPU a read. More readers keep statements under way while one is answered, for
//! a database further away (a round trip of milliseconds) with cores to spare.
//!
//! What a batch changes for a turn: nothing it can see. Every read reads what a single
//! [`Sql::turn_read_keyed`] would (the key's columns `NULL` for a turn without one), so it
//! still reads the record, its version, the module's data, the session and the reply stored
//! under its key from one snapshot; the turn's write still applies only over the version it
//! read. A turn no longer holds a connection while its module runs.
//!
//! Cancellation: a turn whose client hangs up drops its answer's receiver; the batch runs on
//! its own task, unaffected, and its answer for that turn is dropped. A read sits in no
//! transaction and takes no lock, so nothing is left behind either way.
//!
//! A database that does not answer: a turn waits for its read no longer than a single read
//! could have taken (a connection, `store.connect_timeout_ms`, then the statement,
//! `store.statement_timeout_ms`), then gets [`StoreError::Unavailable`] (the client -6), and
//! a batch gives up after as long, freeing its reader and closing its connection. So reads
//! queued behind a stalled database fail in time, and the ones given up on are not sent.

use super::pool::Pool;
use super::rows::int;
use super::sql::Sql;
use super::{no_answer, Batched, PoolSettings};
use crate::store::{StoreError, TurnKey};
use serde::Serialize;
use sqlx::any::AnyRow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Reads in one statement, at most: a batch's parameter (about 150 bytes a read, up to 450
/// with a key) and its answer stay small.
pub(super) const MAX_BATCH: usize = 64;

/// The store's end of the batching task: where turns send their reads.
pub(super) struct Reads {
    requests: mpsc::UnboundedSender<Request>,
    counts: Arc<Batched>,
    /// How long a read may take, waiting for a connection included.
    patience: Duration,
}

/// One turn of a batch as the statement's parameter names it ([`Sql::turn_read_batch`]). A
/// keyed turn's key and the moment at or before which a stored key is expired; absent for
/// an unkeyed turn (a missing path is `NULL` to both databases).
#[derive(Serialize)]
struct Turn<'a> {
    place: usize,
    player: &'a str,
    module: &'a str,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    idem_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_expired_at: Option<i64>,
}

/// One turn's read, and where its row goes: `None` when the player has no record.
struct Request {
    player_id: String,
    module: String,
    token_hash: String,
    /// A keyed turn's key, and when stored keys expire ([`crate::store::TurnKey`]).
    key: Option<(String, i64)>,
    answer: oneshot::Sender<Result<Option<AnyRow>, StoreError>>,
}

impl Reads {
    /// Starts the batching task on `pool` (of `settings`). The task ends when the store (this
    /// handle) is dropped.
    pub(super) fn start(pool: Pool, sql: Arc<Sql>, settings: &PoolSettings) -> Reads {
        let (requests, queue) = mpsc::unbounded_channel();
        let readers = Arc::new(Semaphore::new(settings.batch_readers.max(1) as usize));
        let patience = settings.patience();
        let counts = Arc::new(Batched::default());
        tokio::spawn(gather(queue, pool, sql, readers, patience, counts.clone()));
        Reads {
            requests,
            counts,
            patience,
        }
    }

    /// The statements sent so far, and the reads in them.
    pub(super) fn counts(&self) -> &Batched {
        &self.counts
    }

    /// A turn's read ([`Sql::turn_read_keyed`]'s columns, the key's `NULL` for an unkeyed
    /// turn), batched with the others waiting: the row, or `None` if the player has none.
    pub(super) async fn read(
        &self,
        player_id: &str,
        module: &str,
        token_hash: &str,
        key: Option<TurnKey<'_>>,
    ) -> Result<Option<AnyRow>, StoreError> {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            player_id: player_id.to_owned(),
            module: module.to_owned(),
            token_hash: token_hash.to_owned(),
            key: key.map(|key| (key.key.to_owned(), key.expired_at_ms)),
            answer,
        };
        let closed = || StoreError::Unavailable("the store is closed".into());
        self.requests.send(request).map_err(|_| closed())?;
        match tokio::time::timeout(self.patience, answered).await {
            Ok(answer) => answer.map_err(|_| closed())?,
            Err(_) => Err(no_answer("a read", self.patience)),
        }
    }
}

/// The batching task: takes the first waiting read, waits for a free reader, then takes every
/// read that came meanwhile (up to [`MAX_BATCH`]) and runs them on a task of their own.
async fn gather(
    mut queue: mpsc::UnboundedReceiver<Request>,
    pool: Pool,
    sql: Arc<Sql>,
    readers: Arc<Semaphore>,
    patience: Duration,
    counts: Arc<Batched>,
) {
    while let Some(first) = queue.recv().await {
        let Ok(reader) = readers.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        // Turns that were given up on (their clients hung up) are not read.
        batch.retain(|request| !request.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        counts.done(batch.len());
        let pool = pool.clone();
        let sql = sql.clone();
        tokio::spawn(async move {
            run(&pool, &sql, batch, patience).await;
            drop(reader);
        });
    }
}

/// Runs one batch and hands each read its row; a failure goes to every read of the batch. A
/// batch that takes longer than `patience` is given up (its connection, dropped mid-statement,
/// is closed).
async fn run(pool: &Pool, sql: &Sql, batch: Vec<Request>, patience: Duration) {
    let rows = async {
        let turns: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(place, request)| Turn {
                place,
                player: &request.player_id,
                module: &request.module,
                token: &request.token_hash,
                idem_key: request.key.as_ref().map(|(key, _)| key.as_str()),
                key_expired_at: request.key.as_ref().map(|&(_, at)| at),
            })
            .collect();
        let turns = serde_json::to_string(&turns).map_err(|e| {
            StoreError::Corrupt(format!("a batch of reads cannot be written as JSON: {e}"))
        })?;
        let statement = sqlx::query(&sql.turn_read_batch).bind(turns);
        pool.get().await?.fetch_all(statement).await
    };
    let rows = tokio::time::timeout(patience, rows)
        .await
        .unwrap_or_else(|_| Err(no_answer("a read", patience)));
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return fail(batch, e),
    };
    // Each row names its read by its place in the batch (the last column); a read without a
    // row is a player with no record.
    let mut answers: Vec<Option<AnyRow>> = batch.iter().map(|_| None).collect();
    for row in rows {
        let place = int(&row, Sql::TURN_READ_BATCH_PLACE).map(usize::try_from);
        match place {
            Ok(Ok(place)) if place < answers.len() => answers[place] = Some(row),
            _ => {
                let e = "a batched read's row names no read of its batch";
                return fail(batch, StoreError::Corrupt(e.into()));
            }
        }
    }
    for (request, row) in batch.into_iter().zip(answers) {
        let _ = request.answer.send(Ok(row));
    }
}

/// Answers every read of `batch` with `e`.
fn fail(batch: Vec<Request>, e: StoreError) {
    for request in batch {
        let _ = request.answer.send(Err(e.clone()));
    }
}
