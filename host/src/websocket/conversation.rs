//! One socket from the upgrade to its close: the first message, then commands and their
//! replies, pings, and the reasons to end ([`Close`]).
//!
//! Two tasks share the socket, each owning one half: this one reads (messages, the rate, the
//! ping clock, the reasons to end) and never waits on a write; the writer ([`write`]) sends
//! what waits in the socket's queue (`socket.send_queue` messages). Each command runs in a
//! task of its own (in [`AppState::requests`], so shutdown waits for it) and hands its reply to
//! the queue without waiting: a full queue means the client is not reading, and ends the
//! socket with 4003 at once, instead of growing or stalling the reads. A command's task never
//! holds the socket, so a socket that closes, for any reason, cuts no command off: it runs to
//! its end, its reply dropped if nobody is left to read it.
//!
//! Cancellation: every await here reads or writes the socket, waits for the queue or the
//! writer, or sleeps; none holds a lock, a transaction or a player's turn, so the host
//! dropping these tasks at any of them (at the end of shutdown's grace) leaves nothing
//! half-done.

use super::close::Close;
use super::command::{Command, Outcome};
use super::hello;
use super::outbox::{Ending, Outbox, Outgoing};
use super::rate::CommandRate;
use crate::error::ApiError;
use crate::game;
use crate::state::AppState;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// How long the host waits for a close frame to go out, then for the client's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Serves one socket to its end. `admitted` is its place under `socket.max_sockets`: without
/// one it is closed at once (1013).
pub(crate) async fn serve(state: AppState, socket: Socket, admitted: Option<OwnedSemaphorePermit>) {
    let _open = state.metrics.socket_opened();
    let (close, socket) = match admitted {
        Some(_place) => converse(&state, socket).await,
        None => (Close::Full, Some(socket)),
    };
    state.metrics.socket_closed(close.code());
    if let Some(mut socket) = socket {
        say_goodbye(&mut socket, close).await;
    }
}

/// From the first message to the reason the socket ends, and the socket if a close frame can
/// still be sent on it.
async fn converse(state: &AppState, mut socket: Socket) -> (Close, Option<Socket>) {
    let going_away = state.websockets.going_away.clone();
    let config = &state.config.socket;
    let hello = tokio::select! {
        hello = hello::read(&mut socket, config.hello_timeout()) => hello,
        () = going_away.cancelled() => Err(Close::GoingAway),
    };
    let hello = match hello {
        Ok(hello) => hello,
        Err(close) => return (close, Some(socket)),
    };
    let caller = match game::authenticate(state, Some(&hello.token)).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthorized(_)) => return (Close::Unauthorized, Some(socket)),
        Err(error) => {
            slog::warn!(state.log, "a socket's session could not be checked"; "error" => %error);
            return (Close::HostError, Some(socket));
        }
    };
    let welcome = json!({ "ret": 0, "player_id": caller.player_id }).to_string();
    if socket.send(Message::text(welcome)).await.is_err() {
        return (Close::Gone, None);
    }
    let subscriber = (caller.player_id.as_str(), hello.since);
    Conversation::new(state, hello.token)
        .run(socket, subscriber, &going_away)
        .await
}

/// A socket's state after its first message, on the reading side.
struct Conversation {
    state: AppState,
    /// The session token, checked again for each command.
    token: Arc<str>,
    /// Messages on their way to the client: the writer's queue.
    outbox: Outbox,
    queued: Option<mpsc::Receiver<Outgoing>>,
    /// Set by whoever ends the socket from outside this task: a command's task (its session
    /// ended), a delivery that found the queue full (the client is not reading).
    ending: Arc<Ending>,
    rate: CommandRate,
    /// One permit per command that may be running at once (`socket.command_burst`).
    unanswered: Arc<Semaphore>,
}

impl Conversation {
    fn new(state: &AppState, token: String) -> Conversation {
        let config = &state.config.socket;
        let (queue, queued) = mpsc::channel(config.send_queue);
        let ending = Arc::new(Ending::default());
        Conversation {
            state: state.clone(),
            token: token.into(),
            outbox: Outbox::new(queue, ending.clone()),
            queued: Some(queued),
            ending,
            rate: CommandRate::new(
                config.commands_per_sec,
                config.command_burst,
                std::time::Instant::now(),
            ),
            unanswered: Arc::new(Semaphore::new(config.command_burst as usize)),
        }
    }

    /// Serves the socket of `player_id` until a reason to end; `since`: the last push id the
    /// client saw, to send what it missed first.
    async fn run(
        mut self,
        socket: Socket,
        (player_id, since): (&str, Option<u64>),
        going_away: &CancellationToken,
    ) -> (Close, Option<Socket>) {
        let (sink, mut stream) = socket.split();
        let queued = self.queued.take().expect("a conversation runs once");
        let abandon = CancellationToken::new();
        let mut writer = tokio::spawn(write(sink, queued, abandon.clone()));
        let since = since.map(|since| i64::try_from(since).unwrap_or(i64::MAX));
        let subscription = self
            .state
            .pushes
            .subscribe(player_id, since, self.outbox.clone());
        let config = &self.state.config.socket;
        let (ping_every, idle) = (config.ping_every(), config.idle_timeout());
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        let ending = self.ending.clone();
        let close = loop {
            tokio::select! {
                biased;
                () = going_away.cancelled() => break Close::GoingAway,
                () = ending.signal.cancelled() => break ending.why(),
                // The writer ends early only when a write failed: the client is gone, or it
                // stopped reading for the listener's write timeout.
                _ = &mut writer => return (Close::Gone, None),
                frame = stream.next() => {
                    heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.receive(&text),
                        Some(Ok(Message::Binary(_))) => break Close::Binary,
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(_))) | None => break Close::Normal,
                        Some(Err(error)) => break Close::after(&error),
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() >= idle {
                        break Close::Idle;
                    }
                    self.outbox.deliver(Outgoing::Ping);
                }
            }
        };
        // No more pushes; every command's task holds a sender of the queue: once the last
        // has answered, the writer has sent everything and hands its half back.
        drop(subscription);
        drop(self.outbox);
        let wait = if close.sends_queued() {
            Duration::from_secs(self.state.config.server.shutdown_grace_secs)
        } else if close.sends_frame() {
            // A client that does not read: what waits is dropped, and the close frame may
            // still reach it if it reads again soon.
            abandon.cancel();
            CLOSE_WAIT
        } else {
            writer.abort();
            return (close, None);
        };
        match tokio::time::timeout(wait, &mut writer).await {
            Ok(Ok(Some(sink))) => (close, sink.reunite(stream).ok()),
            _ => {
                writer.abort();
                (close, None)
            }
        }
    }

    /// A text message: a command, run in a task of its own, or the error that answers it.
    fn receive(&mut self, text: &str) {
        let command = match Command::receive(text) {
            Ok(command) => command,
            Err(refusal) => {
                self.outbox.deliver(Outgoing::Text(refusal));
                return;
            }
        };
        // Commands wait on their player's turn one at a time: without a bound on those not yet
        // answered, a fast client would pile up tasks (and memory) behind it.
        let admitted = match self.unanswered.clone().try_acquire_owned() {
            Ok(place) if self.rate.take(std::time::Instant::now()) => place,
            _ => {
                let config = &self.state.config.socket;
                let reply = command.over_rate(config.commands_per_sec, config.command_burst);
                self.outbox.deliver(Outgoing::Text(reply));
                return;
            }
        };
        let (state, token) = (self.state.clone(), self.token.clone());
        let outbox = self.outbox.clone();
        self.state.requests.spawn(async move {
            let (reply, outcome) = command.run(&state, &token).await;
            drop(admitted);
            outbox.deliver(Outgoing::Text(reply));
            if let Outcome::SessionEnded = outcome {
                outbox.end(Close::Unauthorized);
            }
        });
    }
}

/// The writer: sends what the queue holds, in order, until every sender is gone or `abandon`
/// is cancelled; then hands its half of the socket back for the close frame. `None` when a
/// write failed.
///
/// A write abandoned midway leaves its frame whole in tungstenite's buffer, ahead of the close
/// frame, so what the client reads stays a valid stream of frames.
async fn write(
    mut sink: SplitSink<Socket, Message>,
    mut queued: mpsc::Receiver<Outgoing>,
    abandon: CancellationToken,
) -> Option<SplitSink<Socket, Message>> {
    let mut last_push = i64::MIN;
    loop {
        let outgoing = tokio::select! {
            outgoing = queued.recv() => outgoing,
            () = abandon.cancelled() => return Some(sink),
        };
        let Some(outgoing) = outgoing else {
            return Some(sink);
        };
        let messages = match outgoing {
            Outgoing::Text(text) => vec![Message::text(text)],
            Outgoing::Ping => vec![Message::Ping(Bytes::new())],
            Outgoing::Push { id, text } => new_pushes(&mut last_push, [(id, text)]),
            Outgoing::Backlog(pushes) => new_pushes(&mut last_push, pushes),
        };
        for message in messages {
            tokio::select! {
                sent = sink.send(message) => sent.ok()?,
                () = abandon.cancelled() => return Some(sink),
            }
        }
    }
}

/// The pushes to send of `pushes` (in id order): those above the last one sent, which they
/// move on. One at or below it came twice (in a backlog and among the new ones).
fn new_pushes(
    last_push: &mut i64,
    pushes: impl IntoIterator<Item = (i64, Arc<str>)>,
) -> Vec<Message> {
    let mut messages = Vec::new();
    for (id, text) in pushes {
        if id > *last_push {
            *last_push = id;
            messages.push(Message::text(text.as_ref()));
        }
    }
    messages
}

/// Sends the close frame (when the host closes) and waits a moment for the client's, so that
/// the client reads the code and the reason.
async fn say_goodbye(socket: &mut Socket, close: Close) {
    if close.sends_frame() {
        let sent = tokio::time::timeout(CLOSE_WAIT, socket.close(Some(close.frame()))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
    // Reading on ends when the client's answer to the close frame arrives.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}
