//! One command sent over a socket: `{"cid": 7, "cmd": "1203", "data": {...}}`, run exactly as
//! `POST /logic` runs it (the session checked, [`game::run_command`], the same reply and the
//! same access line, with the path `/ws`), answered with its `cid`.

use crate::error::ApiError;
use crate::game::{self, CommandReply};
use crate::http::{command_reply, error_reply, finish, Access};
use crate::idempotency::IdempotencyKey;
use crate::protocol::LogicRequest;
use crate::state::AppState;
use hyper::Method;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;
use std::time::Instant;

/// The method the access line gives a socket's command (its path is `/ws`).
static SOCKET_METHOD: LazyLock<Method> =
    LazyLock::new(|| Method::from_bytes(b"WS").expect("WS is a valid method token"));

/// The largest `cid`: 2^53, the last integer a JavaScript number holds exactly.
const MAX_CID: u64 = 1 << 53;

/// A received command, its envelope read; what it asks is checked when it runs.
pub(crate) struct Command {
    cid: u64,
    request: Result<LogicRequest, ApiError>,
    /// The command's idempotency key (`"key"`, as the `Idempotency-Key` header of
    /// `POST /logic`), if it has one.
    key: Result<Option<IdempotencyKey>, ApiError>,
}

/// How a command's reply ended its socket, if it did.
pub(crate) enum Outcome {
    Answered,
    /// The session is over: the socket closes after this reply (4001).
    SessionEnded,
}

impl Command {
    /// Reads a message's envelope. A message without a `cid` cannot be answered as a command:
    /// the error is its reply, without `cid`.
    pub fn receive(text: &str) -> Result<Command, String> {
        let mut object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(refusal("a message must be a JSON object")),
            Err(e) => return Err(refusal(&format!("the message is not valid JSON: {e}"))),
        };
        let cid = match object.remove("cid").as_ref().and_then(Value::as_u64) {
            Some(cid) if cid <= MAX_CID => cid,
            _ => return Err(refusal(
                "every command needs `cid`, an integer from 0 to 2^53 that its reply carries back",
            )),
        };
        let key = match object.remove("key") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(key)) => IdempotencyKey::from_text(&key).map(Some),
            Some(_) => IdempotencyKey::from_text("").map(Some),
        };
        Ok(Command {
            cid,
            request: LogicRequest::from_object(object),
            key,
        })
    }

    /// The reply to a command over the socket's rate (`socket.commands_per_sec`), or past
    /// `socket.command_burst` unanswered: -6, not run.
    pub fn over_rate(&self, per_sec: u32, burst: u32) -> String {
        let msg = format!(
            "too many commands on this socket (at most socket.commands_per_sec = {per_sec} a second, and command_burst = {burst} at once or unanswered): slow down, then send it again"
        );
        let mut reply = Map::new();
        reply.insert("cid".into(), self.cid.into());
        reply.insert("ret".into(), (-6).into());
        if let Ok(request) = &self.request {
            reply.insert("cmd".into(), request.cmd.reply().into());
        }
        reply.insert("msg".into(), msg.into());
        Value::Object(reply).to_string()
    }

    /// Runs the command for the session of `token`, to its end; returns its reply, as text.
    pub async fn run(self, state: &AppState, token: &str) -> (String, Outcome) {
        let started = Instant::now();
        let _in_flight = state.metrics.request_started();
        let mut access = Access::default();
        let request = (self.request, self.key);
        let (reply, outcome) = match run(state, token, request, &mut access).await {
            Ok(reply) => (reply, Outcome::Answered),
            Err(error) => {
                let ended = matches!(error, ApiError::Unauthorized(_));
                let reply = error_reply(&error, access.reply_cmd.as_deref(), &state.log);
                let outcome = if ended {
                    Outcome::SessionEnded
                } else {
                    Outcome::Answered
                };
                (reply, outcome)
            }
        };
        finish(
            state,
            &SOCKET_METHOD,
            super::PATH,
            reply.status,
            Some(reply.ret),
            &access,
            started,
        );
        (with_cid(self.cid, reply.body()), outcome)
    }
}

/// What `POST /logic` does after reading its body: the session first, then the request.
/// What `POST /logic` does after reading its body: the session first, then the key and the
/// request. A replayed reply says so with `"replayed": true` (the header of HTTP).
async fn run(
    state: &AppState,
    token: &str,
    (request, key): (
        Result<LogicRequest, ApiError>,
        Result<Option<IdempotencyKey>, ApiError>,
    ),
    access: &mut Access,
) -> Result<crate::http::Reply, ApiError> {
    let caller = game::authenticate(state, Some(token)).await?;
    access.player = Some(caller.player_id.clone());
    let key = key?;
    let request = request?;
    let reply_cmd = request.cmd.reply();
    access.cmd = Some(request.cmd.to_string());
    access.reply_cmd = Some(reply_cmd.clone());
    let outcome = game::run_command(state, &caller, request, key.as_ref()).await?;
    let replayed = matches!(outcome, CommandReply::Replayed(_));
    let reply = command_reply(&reply_cmd, outcome);
    Ok(match replayed {
        true => reply.replayed(),
        false => reply,
    })
}

/// A `-2` reply to a message that is not a command, without `cid`.
fn refusal(msg: &str) -> String {
    json!({ "ret": -2, "msg": msg }).to_string()
}

/// `{"cid": N, ...reply}`: the reply's JSON object with `cid` first.
fn with_cid(cid: u64, reply: &[u8]) -> String {
    let reply = String::from_utf8_lossy(reply);
    match reply.strip_prefix('{').map(str::trim_start) {
        Some("}") | None => format!("{{\"cid\":{cid}}}"),
        Some(rest) => format!("{{\"cid\":{cid},{rest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{with_cid, Command};
    use serde_json::{json, Value};

    #[test]
    fn a_reply_carries_its_cid_first() {
        let reply = with_cid(7, br#"{"ret":0,"cmd":"1204","data":{"gold":1}}"#);
        assert_eq!(reply, r#"{"cid":7,"ret":0,"cmd":"1204","data":{"gold":1}}"#);
        assert_eq!(with_cid(0, b"{}"), r#"{"cid":0}"#);
    }

    #[test]
    fn a_command_needs_a_cid_and_its_other_errors_are_answered_with_it() {
        for bad in [
            "",
            "[1]",
            r#"{"cmd": "1203"}"#,
            r#"{"cid": -1, "cmd": "1203"}"#,
            r#"{"cid": "7"}"#,
            r#"{"cid": 9007199254740993}"#,
        ] {
            let refusal = Command::receive(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} is refused"));
            let refusal: Value = serde_json::from_str(&refusal).expect("JSON");
            assert_eq!(refusal["ret"], json!(-2), "{bad}");
            assert!(refusal.get("cid").is_none(), "{bad}");
        }
        let command = Command::receive(r#"{"cid": 3, "cmd": "12"}"#).expect("a cid");
        assert_eq!(command.cid, 3);
        assert!(
            command.request.is_err(),
            "the bad cmd is answered when it runs"
        );
        let command = Command::receive(r#"{"cid": 4, "cmd": "1203", "data": {}}"#).expect("a cid");
        let over: Value = serde_json::from_str(&command.over_rate(20, 40)).expect("JSON");
        assert_eq!(over["cid"], json!(4));
        assert_eq!(over["ret"], json!(-6));
        assert_eq!(over["cmd"], json!("1204"));
    }
}
