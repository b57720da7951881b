//! A socket's first message: `{"token": T}` or `{"token": T, "since": N}`, within
//! `socket.hello_timeout_secs`. The token is kept by the socket's task to check the session of
//! each command; it is never logged.

use super::close::Close;
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Error, Message};

/// What the first message says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    /// The session token of `POST /login`.
    pub token: String,
    /// The last push id the client saw, to resume after it.
    pub since: Option<u64>,
}

/// Reads the first message, answering pings meanwhile; gives up after `timeout`.
pub(crate) async fn read<S>(socket: &mut S, timeout: Duration) -> Result<Hello, Close>
where
    S: Stream<Item = Result<Message, Error>> + Unpin,
{
    let first = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return parse(&text).ok_or(Close::BadHello),
                Some(Ok(Message::Binary(_))) => return Err(Close::Binary),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => return Err(Close::Normal),
                Some(Err(error)) => return Err(Close::after(&error)),
            }
        }
    };
    tokio::time::timeout(timeout, first)
        .await
        .unwrap_or(Err(Close::HelloTimeout))
}

/// The first message's fields, or `None` when it is not `{"token": "<text>"}` with an optional
/// `since` integer ≥ 0. Other fields are ignored (a later client may send more).
fn parse(text: &str) -> Option<Hello> {
    let mut object: Map<String, Value> = serde_json::from_str(text).ok()?;
    let token = match object.remove("token")? {
        Value::String(token) if !token.is_empty() => token,
        _ => return None,
    };
    let since = match object.remove("since") {
        None | Some(Value::Null) => None,
        Some(since) => Some(since.as_u64()?),
    };
    Some(Hello { token, since })
}

#[cfg(test)]
mod tests {
    use super::{parse, Hello};

    #[test]
    fn the_first_message_is_a_token_and_an_optional_push_id() {
        let hello = |token: &str, since| {
            Some(Hello {
                token: token.into(),
                since,
            })
        };
        assert_eq!(parse(r#"{"token": "t1"}"#), hello("t1", None));
        assert_eq!(
            parse(r#"{"token": "t1", "since": 42}"#),
            hello("t1", Some(42))
        );
        assert_eq!(
            parse(r#"{"token": "t1", "since": null, "x": 1}"#),
            hello("t1", None)
        );
        for bad in [
            "",
            "token",
            "[]",
            r#"{"token": ""}"#,
            r#"{"token": 7}"#,
            r#"{"since": 1}"#,
            r#"{"token": "t1", "since": -1}"#,
            r#"{"token": "t1", "since": 1.5}"#,
            r#"{"token": "t1", "since": "3"}"#,
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
