//! Turn writes in batches: the plain writes of many commands, each over its own player,
//! applied by one transaction.
//!
//! Why: on a server store a write's cost is mostly its commit (the database flushes its log
//! to disk) and its round trip, not the rows it changes. So a turn whose write is plain (not
//! locked, no gifts or pushes: nearly every command that writes, keyed or not) sends it here
//! ([`Writes::write`]), and a task of the store's collects whatever writes are waiting and
//! applies them together: one commit for them all. Each write keeps its own check: it applies
//! only over the version its turn read and only while its session holds, exactly as a single
//! write ([`Sql::turn_write`]) would, and each turn learns whether its own write applied.
//!
//! - PostgreSQL: one statement ([`WriteSql::Postgres`]). The writes go as one JSON array
//!   (`json_to_recordset`); an `UPDATE … FROM` applies those whose checks hold and returns
//!   their places, and data-modifying CTEs write the module data and the keyed replies of
//!   those it applied.
//! - MariaDB has no `UPDATE … RETURNING`: it says how many rows an `UPDATE` changed, not
//!   which. So a batch is a transaction ([`WriteSql::MySql`]) that updates the records of
//!   every write whose checks hold (the writes as `JSON_TABLE` rows), then commits only if
//!   that was all of them, after their module data (an upsert, so that a player's first data
//!   needs nothing more) and the replies of the keyed ones. Else it is rolled back and each write goes alone: a write whose
//!   checks fail is rare, since a player's commands come one at a time. A lock-first form
//!   (`SELECT … FOR UPDATE`, then the writes that hold) was tried first: a statement more
//!   in every batch, to spare a fallback that is rare, and no faster in a measured run.
//!
//! A batch holds one write per player: a second write of a player waits for the next batch,
//! so two writes of one player never meet in a statement (which would apply one of them, and
//! on MariaDB not say which). The writes are sorted by player: MariaDB's `UPDATE` follows the
//! batch's order, so two of its batches lock their rows in the same order. PostgreSQL's plan
//! may scan `players` instead; should two batches (or a batch and a locked turn's gifts) wait
//! on each other, the database breaks the cycle as a deadlock, and the writes of the batch
//! it undid go alone.
//!
//! How many at once: at most [`MAX_BATCH`] writes (and about [`MAX_BATCH_BYTES`]) a batch,
//! and at most `store.batch_writers` writing at once, batches or lone writes (one by
//! default): while they are all busy, writes wait and gather, so a batch grows with the load.
//! One writer made the bigger batches: in alternating runs of `write` against two writers
//! (and two readers), 10-17% more commands a second on PostgreSQL and MariaDB, at a quarter
//! less of the database's CPU a command. What one writer gives up: a batch that waits for a
//! row lock (a locked turn of one of its players, from its read to its commit) holds back
//! the writes queued behind it until the lock is let go or the statement times out; more
//! writers let other batches pass it, unless they need its players too. A write
//! that finds nothing else waiting goes alone, as it did before batching: the turn writes it
//! with the single statements ([`Written::Alone`]), which cost one round trip where a batch
//! of one would cost more on MariaDB. (The writes of a batch that was undone go alone at
//! once, each on a connection of its own, as they would have without batching.)
//!
//! What a batch changes for a turn: nothing it can see. Its write applies whole or not at
//! all, with the same checks as a single write; a batch the database refuses (a value out of
//! range, say) applied nothing, and each of its turns then writes alone, so the error is its
//! own turn's.
//!
//! Cancellation: a turn whose client hangs up drops its answer's receiver. A write not yet in
//! a batch is left out; one in a batch under way applies or not with its batch, as a single
//! write whose connection was dropped mid-statement would. Nothing is half-applied either
//! way: a batch is one statement, or one transaction that the pool rolls back if it is cut.
//!
//! A database that does not answer: a write that waited longer than `patience`
//! (`store.connect_timeout_ms` + `store.statement_timeout_ms`) when its batch is made fails
//! instead of joining it, a batch gives up after as long, closing its connection, and a turn
//! waits for its write's outcome no longer than twice as long and a second; the turn then
//! gets [`StoreError::Unavailable`] (-6). A
//! batch cut at its commit may or may not have applied, as a single write cut there (the
//! client's `Idempotency-Key` makes its retry safe).

use super::pool::{Lease, Pool};
use super::rows::int;
use super::sql::{
    KEY_COLUMNS, KEY_CONFLICT_MYSQL, KEY_CONFLICT_POSTGRES, MYSQL_IDEM_KEY, MYSQL_KEY,
};
use super::turn::Write;
use super::{no_answer, Backend, Batched, PoolSettings};
use crate::store::{items_json, StoreError};
use serde::Serialize;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// Writes in one batch, at most.
pub(super) const MAX_BATCH: usize = 64;

/// The size of a batch's writes (their records, module data and keyed replies), about, at most: a batch
/// stops growing when it passes this, so its parameter stays well under the servers' packet
/// limits (MariaDB's `max_allowed_packet` is 16 MiB by default).
pub(super) const MAX_BATCH_BYTES: usize = 1 << 20;

/// The store's end of the batching task: where turns send their plain writes. A clone is a
/// handle on the same task.
#[derive(Clone)]
pub(super) struct Writes {
    requests: mpsc::UnboundedSender<Request>,
    counts: Arc<Batched>,
    /// How long a write may wait in the queue, and how long its batch may take.
    patience: Duration,
}

/// What became of a turn's write.
pub(super) enum Written {
    /// It applied, with its batch.
    Applied,
    /// Its checks failed (the player changed since the turn's read, or its session ended):
    /// nothing applied, and the turn is run again.
    Conflict,
    /// Nothing else was waiting, or its batch was refused: the turn writes it alone. A lone
    /// write holds a writer until it has (a refused batch's writers are its turns').
    Alone(Box<Write>, Option<OwnedSemaphorePermit>),
}

/// One turn's write, and where its outcome goes.
struct Request {
    write: Box<Write>,
    queued_at: Instant,
    answer: oneshot::Sender<Result<Written, StoreError>>,
}

impl Request {
    /// The size of the write, about: what it adds to a batch's parameter, its texts counted
    /// twice for the escapes JSON may add (the record's items, the module data and a keyed
    /// reply are JSON themselves, sent as strings: each `"` goes as `\"`).
    fn bytes(&self) -> usize {
        let w = &self.write;
        let player = &w.player;
        let items: usize = player.items.keys().map(|id| id.len() + 24).sum();
        let texts = player.name.len() + player.head_img.len() + items;
        let key = w
            .key
            .as_ref()
            .map_or(0, |k| k.key.len() + k.reply.len() + 64);
        256 + 2 * (texts + key + w.data.as_ref().map_or(0, String::len))
    }
}

/// One write of a batch as the statements' parameter names it ([`WriteSql`]).
#[derive(Serialize)]
struct Row<'a> {
    place: usize,
    player: &'a str,
    module: &'a str,
    token: &'a str,
    version: i64,
    name: &'a str,
    head_img: &'a str,
    gold: i64,
    diamond: i64,
    items: String,
    /// Left out when the module's data did not change: the row's `data` is then NULL on
    /// every backend, however it reads a JSON `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    now_ms: i64,
    /// A keyed command's key, its request's fingerprint and its reply, stored with the write
    /// (left out, as `data`, for a command without a key).
    #[serde(skip_serializing_if = "Option::is_none")]
    idem_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a str>,
}

/// The statements of a batch of writes, for one backend. Each takes the batch as a JSON array
/// of [`Row`]s.
enum WriteSql {
    /// The whole batch in one statement, returning the places of the writes that applied.
    Postgres { apply: String },
    /// The records, then the module data, then the keyed replies, in one transaction.
    MySql {
        records: String,
        module_data: String,
        replies: String,
    },
}

impl WriteSql {
    fn new(backend: Backend) -> WriteSql {
        match backend {
            Backend::Postgres => WriteSql::Postgres {
                apply: format!(
                    "WITH bumped AS (\
                     UPDATE players p SET name = w.name, head_img = w.head_img, gold = w.gold, \
                     diamond = w.diamond, items = w.items, updated_at = w.now_ms, \
                     version = p.version + 1 \
                     FROM json_to_recordset($1::json) AS w(place bigint, player text, \
                     module text, token text, version bigint, name text, head_img text, \
                     gold bigint, diamond bigint, items text, data text, now_ms bigint, \
                     idem_key text, fingerprint text, reply text) \
                     WHERE p.player_id = w.player AND p.version = w.version \
                     AND EXISTS (SELECT 1 FROM sessions s WHERE s.token_hash = w.token \
                     AND s.player_id = w.player AND s.expires_at > w.now_ms) \
                     RETURNING w.place, w.player, w.module, w.data, w.now_ms, w.idem_key, \
                     w.fingerprint, w.reply), \
                     data AS (INSERT INTO module_data (player_id, module, data) \
                     SELECT player, module, data FROM bumped WHERE data IS NOT NULL \
                     ON CONFLICT (player_id, module) DO UPDATE SET data = excluded.data), \
                     replies AS (INSERT INTO idempotency_keys ({KEY_COLUMNS}) \
                     SELECT player, idem_key, fingerprint, reply, now_ms FROM bumped \
                     WHERE idem_key IS NOT NULL {KEY_CONFLICT_POSTGRES}) \
                     SELECT place FROM bumped"
                ),
            },
            Backend::MySql => {
                let key = MYSQL_KEY;
                // Texts in the tables' collation too.
                let text = "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";
                let writes = format!(
                    "JSON_TABLE(?, '$[*]' COLUMNS (place BIGINT PATH '$.place', \
                     player {key} PATH '$.player', module {key} PATH '$.module', \
                     token {key} PATH '$.token', version BIGINT PATH '$.version', \
                     name {text} PATH '$.name', head_img {text} PATH '$.head_img', \
                     gold BIGINT PATH '$.gold', diamond BIGINT PATH '$.diamond', \
                     items {text} PATH '$.items', data {text} PATH '$.data', \
                     now_ms BIGINT PATH '$.now_ms')) AS w"
                );
                WriteSql::MySql {
                    // The batch first, each of its players' rows found by key: left to
                    // itself, the optimizer may scan `players` instead once its statistics
                    // change, and an UPDATE locks every row it scans, so that two batches
                    // wait on each other.
                    records: format!(
                        "UPDATE {writes} STRAIGHT_JOIN players p FORCE INDEX (PRIMARY) \
                         ON p.player_id = w.player \
                         SET p.name = w.name, p.head_img = w.head_img, p.gold = w.gold, \
                         p.diamond = w.diamond, p.items = w.items, p.updated_at = w.now_ms, \
                         p.version = p.version + 1 \
                         WHERE p.version = w.version \
                         AND EXISTS (SELECT 1 FROM sessions s WHERE s.token_hash = w.token \
                         AND s.player_id = w.player AND s.expires_at > w.now_ms)"
                    ),
                    module_data: format!(
                        "INSERT INTO module_data (player_id, module, data) \
                         SELECT w.player, w.module, w.data FROM {writes} \
                         WHERE w.data IS NOT NULL \
                         ON DUPLICATE KEY UPDATE data = VALUES(data)"
                    ),
                    // Its own columns: the records' statement need not parse the replies.
                    replies: format!(
                        "INSERT INTO idempotency_keys ({KEY_COLUMNS}) \
                         SELECT w.player, w.idem_key, w.fingerprint, w.reply, w.now_ms \
                         FROM JSON_TABLE(?, '$[*]' COLUMNS (player {key} PATH '$.player', \
                         idem_key {MYSQL_IDEM_KEY} PATH '$.idem_key', \
                         fingerprint VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PATH '$.fingerprint', \
                         reply {text} PATH '$.reply', now_ms BIGINT PATH '$.now_ms')) AS w \
                         WHERE w.idem_key IS NOT NULL {KEY_CONFLICT_MYSQL}"
                    ),
                }
            }
        }
    }
}

impl Writes {
    /// Starts the batching task on `pool` (of `settings`). The task ends when the store (this
    /// handle) is dropped.
    pub(super) fn start(pool: Pool, backend: Backend, settings: &PoolSettings) -> Writes {
        let (requests, queue) = mpsc::unbounded_channel();
        let writers = Arc::new(Semaphore::new(settings.batch_writers.max(1) as usize));
        let patience = settings.patience();
        let sql = Arc::new(WriteSql::new(backend));
        let counts = Arc::new(Batched::default());
        let task = (sql, writers, patience, counts.clone());
        tokio::spawn(gather(queue, pool, task));
        Writes {
            requests,
            counts,
            patience,
        }
    }

    /// The batches committed and undone so far, and the writes in those committed.
    pub(super) fn counts(&self) -> &Batched {
        &self.counts
    }

    /// A turn's plain write, batched with the others waiting: whether it applied, or that the
    /// turn must write it alone.
    pub(super) async fn write(&self, write: Box<Write>) -> Result<Written, StoreError> {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            write,
            queued_at: Instant::now(),
            answer,
        };
        let closed = || StoreError::Unavailable("the store is closed".into());
        self.requests.send(request).map_err(|_| closed())?;
        // The task answers within twice `patience` (the queue, then the batch); waiting a
        // little longer leaves the answer to it, so that a turn never gives up on a write
        // its batch then applies.
        let wait = self.patience * 2 + Duration::from_secs(1);
        match tokio::time::timeout(wait, answered).await {
            Ok(answer) => answer.map_err(|_| closed())?,
            Err(_) => Err(no_answer("a write", self.patience)),
        }
    }
}

/// The batching task: takes the first waiting write, waits for a free writer, then takes
/// every write that came meanwhile (one per player, up to [`MAX_BATCH`]) and applies them on
/// a task of their own. A write alone goes back to its turn with the writer.
async fn gather(
    mut queue: mpsc::UnboundedReceiver<Request>,
    pool: Pool,
    (sql, writers, patience, counts): (Arc<WriteSql>, Arc<Semaphore>, Duration, Arc<Batched>),
) {
    // Writes put off for a later batch (their player was in the one being made), about in
    // the order they came.
    let mut later: VecDeque<Request> = VecDeque::new();
    loop {
        let first = match later.pop_front() {
            Some(request) => request,
            None => match queue.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        let Ok(writer) = writers.clone().acquire_owned().await else {
            return;
        };
        let mut players = HashSet::new();
        let mut bytes = first.bytes();
        players.insert(first.write.player_id.clone());
        let mut batch = vec![first];
        let mut put_off = VecDeque::new();
        while batch.len() < MAX_BATCH {
            let Some(request) = later.pop_front().or_else(|| queue.try_recv().ok()) else {
                break;
            };
            if players.contains(&request.write.player_id) {
                put_off.push_back(request);
                continue;
            }
            // A write that would take the batch past its size begins the next one (alone,
            // if it is that large by itself).
            let size = request.bytes();
            if bytes + size > MAX_BATCH_BYTES {
                put_off.push_back(request);
                break;
            }
            bytes += size;
            players.insert(request.write.player_id.clone());
            batch.push(request);
        }
        later.extend(put_off);
        // Writes given up on (their clients hung up) are not applied; writes that waited
        // longer than `patience` fail, so that a turn's wait is bounded.
        let (mut batch, late): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .filter(|request| !request.answer.is_closed())
            .partition(|request| request.queued_at.elapsed() <= patience);
        fail(late, no_answer("a write", patience));
        match batch.len() {
            0 => continue,
            1 => {
                let request = batch.pop().expect("one write");
                let _ = request
                    .answer
                    .send(Ok(Written::Alone(request.write, Some(writer))));
            }
            _ => {
                let pool = pool.clone();
                let sql = sql.clone();
                let counts = counts.clone();
                tokio::spawn(async move {
                    run(&pool, &sql, batch, writer, patience, &counts).await;
                });
            }
        }
    }
}

/// Applies one batch and tells each turn what became of its write.
async fn run(
    pool: &Pool,
    sql: &WriteSql,
    mut batch: Vec<Request>,
    writer: OwnedSemaphorePermit,
    patience: Duration,
    counts: &Batched,
) {
    batch.sort_by(|a, b| a.write.player_id.cmp(&b.write.player_id));
    let applied = tokio::time::timeout(patience, apply(pool, sql, &batch)).await;
    let applied = match applied {
        Ok(Ok(applied)) => applied,
        Ok(Err(Failure::NotApplied)) => {
            // Nothing applied: each turn writes alone, so that an error (or a failed check)
            // is its own.
            counts.undone();
            drop(writer);
            for request in batch {
                let _ = request.answer.send(Ok(Written::Alone(request.write, None)));
            }
            return;
        }
        Ok(Err(Failure::Unavailable(e))) => return fail(batch, e),
        Err(_) => return fail(batch, no_answer("a write", patience)),
    };
    drop(writer);
    counts.done(batch.len());
    for (place, request) in batch.into_iter().enumerate() {
        let written = if applied.contains(&place) {
            Written::Applied
        } else {
            Written::Conflict
        };
        let _ = request.answer.send(Ok(written));
    }
}

/// Why a batch did not apply.
enum Failure {
    /// Nothing of it applied: the database refused it, or (MariaDB) a write's checks
    /// failed and the batch was undone. Each of its writes may go alone.
    NotApplied,
    /// The database could not be reached, or did not say whether the batch applied.
    Unavailable(StoreError),
}

/// Applies `batch`: the places of the writes that applied.
async fn apply(pool: &Pool, sql: &WriteSql, batch: &[Request]) -> Result<HashSet<usize>, Failure> {
    let rows: Vec<Row<'_>> = batch
        .iter()
        .enumerate()
        .map(|(place, request)| row(place, &request.write))
        .collect();
    let rows_json = serde_json::to_string(&rows).map_err(|e| {
        Failure::Unavailable(StoreError::Corrupt(format!(
            "a batch of writes cannot be written as JSON: {e}"
        )))
    })?;
    let mut conn = pool.get().await.map_err(Failure::Unavailable)?;
    let places = |rows: Vec<sqlx::any::AnyRow>| -> Result<HashSet<usize>, Failure> {
        rows.iter()
            .map(|row| match int(row, 0).map(usize::try_from) {
                Ok(Ok(place)) if place < batch.len() => Ok(place),
                _ => Err(Failure::Unavailable(StoreError::Corrupt(
                    "a batched write's row names no write of its batch".into(),
                ))),
            })
            .collect()
    };
    match sql {
        WriteSql::Postgres { apply } => {
            let statement = sqlx::query(apply).bind(rows_json);
            match conn.fetch_all(statement).await {
                Ok(rows) => places(rows),
                Err(e) => Err(refused_or(&conn, e)),
            }
        }
        WriteSql::MySql {
            records,
            module_data,
            replies,
        } => {
            conn.start_transaction()
                .await
                .map_err(|_| Failure::NotApplied)?;
            let in_transaction = async {
                let records = sqlx::query(records).bind(rows_json.as_str());
                let updated = conn
                    .execute(records)
                    .await
                    .map_err(|_| Failure::NotApplied)?;
                // Which writes applied, MariaDB does not say, only how many: all of them, or
                // the batch is undone and each write goes alone (a write whose checks fail is
                // rare: a player's commands come one at a time).
                if updated.rows_affected() != batch.len() as u64 {
                    return Err(Failure::NotApplied);
                }
                if rows.iter().any(|row| row.data.is_some()) {
                    let data = sqlx::query(module_data).bind(rows_json.as_str());
                    conn.execute(data).await.map_err(|_| Failure::NotApplied)?;
                }
                if rows.iter().any(|row| row.idem_key.is_some()) {
                    let stored = sqlx::query(replies).bind(rows_json.as_str());
                    conn.execute(stored)
                        .await
                        .map_err(|_| Failure::NotApplied)?;
                }
                Ok::<_, Failure>((0..batch.len()).collect())
            };
            match in_transaction.await {
                Ok(applied) => match conn.end_transaction(true).await {
                    Ok(()) => Ok(applied),
                    // The commit was sent: it may have applied.
                    Err(e) => Err(Failure::Unavailable(e)),
                },
                Err(failure) => {
                    // Nothing was committed. Should the rollback fail, the connection stays
                    // unsettled and the pool closes it, which rolls it back.
                    let _ = conn.end_transaction(false).await;
                    Err(failure)
                }
            }
        }
    }
}

/// A statement's error on `conn` outside a transaction: not applied if the database answered
/// it with its refusal, else unavailable (it may have applied).
fn refused_or(conn: &Lease, e: StoreError) -> Failure {
    if conn.is_settled() {
        Failure::NotApplied
    } else {
        Failure::Unavailable(e)
    }
}

/// A write as a batch's row.
fn row(place: usize, write: &Write) -> Row<'_> {
    let player = &write.player;
    Row {
        place,
        player: &write.player_id,
        module: &write.module,
        token: &write.token_hash,
        version: write.version,
        name: &player.name,
        head_img: &player.head_img,
        gold: player.gold,
        diamond: player.diamond,
        items: items_json(player),
        data: write.data.as_deref(),
        now_ms: write.now_ms,
        idem_key: write.key.as_ref().map(|k| k.key.as_str()),
        fingerprint: write.key.as_ref().map(|k| k.fingerprint.as_str()),
        reply: write.key.as_ref().map(|k| k.reply.as_str()),
    }
}

/// Answers every write of `batch` with `e`.
fn fail(batch: Vec<Request>, e: StoreError) {
    for request in batch {
        let _ = request.answer.send(Err(e.clone()));
    }
}
