//! The delivery task: one per host, the only reader of the stored pushes and the only writer
//! into sockets' outboxes for pushes, so each socket gets its pushes in id order.
//!
//! Woken by this host's commits, by PostgreSQL's notices of other hosts' commits, and by its
//! poll (`push.poll_ms` where there are no notices, ten times slower where there are, in case
//! one was lost), it reads the pushes after its cursor and hands each to the sockets it is
//! for. A store that fails leaves the cursor where it was: the next wake reads from there, so
//! a database that goes away delays pushes but loses none. It also sends each joining
//! socket's backlog, and prunes old pushes (`push.retention_secs`).
//!
//! Cancellation: the task is aborted when the host stops, at an await of a read (nothing
//! half-done: reads change nothing) or of the prune's delete (one statement, whole or not).

use super::{Joining, PushHub, Subscriber};
use crate::state::AppState;
use crate::store::push::{PushRow, PushTarget};
use crate::store::StoreError;
use crate::websocket::{Delivery, Outgoing};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::MissedTickBehavior;

/// Pushes read per statement.
const BATCH: u32 = 256;
/// How often old pushes are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long a push that is not kept stays in the table: long enough for every host to read it.
const LIVE_KEEP_MS: i64 = 60_000;
/// Pushes deleted per statement.
const PRUNE_BATCH: u32 = 1000;
/// At most one warning this often about a store that fails.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Runs the host's delivery until aborted.
pub async fn deliver(state: AppState) {
    let hub = state.pushes.clone();
    let joining = hub
        .joining_rx
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(mut joining) = joining else {
        return;
    };
    let mut notices = state.store.pushes().push_notices();
    let poll_ms = state.config.push.poll_ms;
    let poll_every = Duration::from_millis(match notices {
        Some(_) => poll_ms.saturating_mul(10),
        None => poll_ms,
    });
    let mut poll = tokio::time::interval(poll_every);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut task = Delivering {
        state: &state,
        hub: &hub,
        cursor: None,
        warned: None,
    };
    loop {
        tokio::select! {
            Some(joining) = joining.recv() => task.join(joining).await,
            () = hub.committed.notified() => task.catch_up().await,
            changed = async { notices.as_mut()?.changed().await.ok() }, if notices.is_some() => {
                match changed {
                    Some(()) => task.catch_up().await,
                    // The store closed its listener: polling alone from now on.
                    None => notices = None,
                }
            }
            _ = poll.tick() => {
                task.catch_up().await;
                state.metrics.set_players_online(hub.online_players());
            }
            _ = prune.tick() => task.prune().await,
        }
    }
}

struct Delivering<'a> {
    state: &'a AppState,
    hub: &'a Arc<PushHub>,
    /// The last push read; `None` until the store has answered once.
    cursor: Option<i64>,
    warned: Option<Instant>,
}

impl Delivering<'_> {
    /// Reads and delivers every push after the cursor.
    async fn catch_up(&mut self) {
        if let Err(e) = self.try_catch_up().await {
            self.warn("reading pushes failed; trying again at the next poll", &e);
        }
    }

    async fn try_catch_up(&mut self) -> Result<(), StoreError> {
        let store = self.state.store.pushes();
        let mut cursor = match self.cursor {
            Some(cursor) => cursor,
            None => {
                let latest = store.latest_push_id().await?;
                self.cursor = Some(latest);
                latest
            }
        };
        loop {
            let rows = store.pushes_after(cursor, BATCH).await?;
            for row in &rows {
                self.deliver(row).await?;
                cursor = row.id;
                self.cursor = Some(cursor);
            }
            if rows.len() < BATCH as usize {
                return Ok(());
            }
        }
    }

    /// Hands `row` to the sockets on this host it is for.
    async fn deliver(&self, row: &PushRow) -> Result<(), StoreError> {
        let players = match &row.target {
            PushTarget::Player(player_id) => vec![player_id.clone()],
            // Only the members connected here matter; with nobody connected, nobody is.
            PushTarget::Group(_) if self.hub.online_players() == 0 => Vec::new(),
            PushTarget::Group(group) => {
                self.state
                    .store
                    .pushes()
                    .group_members(&row.module, group)
                    .await?
            }
        };
        let text: Arc<str> = render(row).into();
        for player_id in &players {
            for subscriber in self.hub.sockets_of(player_id) {
                self.hand(&subscriber, row, &text);
            }
        }
        Ok(())
    }

    fn hand(&self, subscriber: &Subscriber, row: &PushRow, text: &Arc<str>) {
        let push = Outgoing::Push {
            id: row.id,
            text: text.clone(),
        };
        let metrics = &self.state.metrics;
        match subscriber.outbox.deliver(push) {
            Delivery::Queued => metrics.push_delivered(&row.kind),
            Delivery::Full => metrics.push_dropped(&row.kind),
            Delivery::Closed => {}
        }
    }

    /// A socket joins: its backlog first (the newest `push.backlog_max` persistent pushes
    /// after `since`, in one slot of its outbox), then it is among the connected.
    async fn join(&mut self, joining: Joining) {
        let Joining {
            player_id,
            since,
            subscriber,
        } = joining;
        if let Some(since) = since {
            let limit = self.state.config.push.backlog_max;
            match self
                .state
                .store
                .pushes()
                .backlog(&player_id, since, limit)
                .await
            {
                Ok(rows) if rows.is_empty() => {}
                Ok(rows) => {
                    let backlog = rows
                        .iter()
                        .map(|row| (row.id, render(row).into()))
                        .collect();
                    if subscriber.outbox.deliver(Outgoing::Backlog(backlog)) == Delivery::Queued {
                        self.state.metrics.pushes_resent(rows.len());
                    }
                }
                Err(e) => {
                    // The client can only be told by the socket's end: it connects again and
                    // asks again, from the same `since`.
                    self.warn("reading a socket's missed pushes failed; closing it", &e);
                    subscriber.outbox.end(crate::websocket::Close::HostError);
                    return;
                }
            }
        }
        self.hub.join(player_id, subscriber);
    }

    async fn prune(&mut self) {
        let now = self.state.clock.now_millis();
        let retention_ms =
            i64::try_from(self.state.config.push.retention_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX);
        let store = self.state.store.pushes();
        loop {
            let deleted = store
                .prune_pushes(
                    now.saturating_sub(retention_ms),
                    now - LIVE_KEEP_MS,
                    PRUNE_BATCH,
                )
                .await;
            match deleted {
                Ok(deleted) if deleted < u64::from(PRUNE_BATCH) => return,
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => return self.warn("deleting old pushes failed", &e),
            }
        }
    }

    fn warn(&mut self, what: &str, error: &StoreError) {
        if self.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            self.warned = Some(Instant::now());
            slog::warn!(self.state.log, "{}", what; "error" => %error);
        }
    }
}

/// A push as the socket sends it: `{"push": KIND, "id": N, "data": {...}}`.
fn render(row: &PushRow) -> String {
    // The kind is checked to be plain ASCII words, the data a JSON object, when written.
    let kind = serde_json::Value::String(row.kind.clone());
    format!(
        "{{\"push\":{kind},\"id\":{},\"data\":{}}}",
        row.id, row.data
    )
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::store::push::{PushRow, PushTarget};
    use serde_json::{json, Value};

    #[test]
    fn a_push_is_rendered_as_the_protocol_says() {
        let row = PushRow {
            id: 42,
            target: PushTarget::Player("p".into()),
            module: "social".into(),
            kind: "gift".into(),
            data: r#"{"from":"alice","gold":5}"#.into(),
            persistent: true,
        };
        let sent: Value = serde_json::from_str(&render(&row)).unwrap();
        assert_eq!(
            sent,
            json!({ "push": "gift", "id": 42, "data": { "from": "alice", "gold": 5 } })
        );
    }
}
