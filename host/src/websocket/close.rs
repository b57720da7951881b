//! Why the host closes a socket: the close codes of docs/PROTOCOL.md ("The socket"), each with
//! a reason that tells the client what to do. A close frame's reason is at most 123 bytes, so
//! every reason here is short (a unit test holds them to it).

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Error;

/// A reason the host ends a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// 1000: the client closed it.
    Normal,
    /// The connection broke or the client vanished: nothing is sent. Counted as 1006, the code
    /// RFC 6455 reserves for a connection that ended without a close frame.
    Gone,
    /// 1001: the host stops or restarts.
    GoingAway,
    /// 1003: a binary message.
    Binary,
    /// 1009: a message over `socket.max_message_bytes`.
    TooBig,
    /// 1011: the host failed (its database is unavailable).
    HostError,
    /// 1013: `socket.max_sockets` are open.
    Full,
    /// 4000: the first message is not `{"token": ...}`.
    BadHello,
    /// 4001: the token is unknown or expired, or the session ended.
    Unauthorized,
    /// 4002: no first message within `socket.hello_timeout_secs`.
    HelloTimeout,
    /// 4003: the client did not read, and `socket.send_queue` messages waited.
    TooSlow,
    /// 4004: nothing heard within `socket.idle_timeout_secs`.
    Idle,
}

impl Close {
    /// Every reason, for tests.
    #[cfg(test)]
    pub const ALL: [Close; 12] = [
        Close::Normal,
        Close::Gone,
        Close::GoingAway,
        Close::Binary,
        Close::TooBig,
        Close::HostError,
        Close::Full,
        Close::BadHello,
        Close::Unauthorized,
        Close::HelloTimeout,
        Close::TooSlow,
        Close::Idle,
    ];

    pub fn code(self) -> u16 {
        match self {
            Close::Normal => 1000,
            Close::Gone => 1006,
            Close::GoingAway => 1001,
            Close::Binary => 1003,
            Close::TooBig => 1009,
            Close::HostError => 1011,
            Close::Full => 1013,
            Close::BadHello => 4000,
            Close::Unauthorized => 4001,
            Close::HelloTimeout => 4002,
            Close::TooSlow => 4003,
            Close::Idle => 4004,
        }
    }

    /// What the client reads in the close frame: what happened and what to do.
    pub fn reason(self) -> &'static str {
        match self {
            Close::Normal | Close::Gone => "",
            Close::GoingAway => "the host is stopping or restarting: connect again and resume",
            Close::Binary => "binary messages are not used: send JSON text",
            Close::TooBig => "message over socket.max_message_bytes: send smaller messages",
            Close::HostError => "the host cannot serve now (database unavailable): connect later",
            Close::Full => "the host has socket.max_sockets open: connect later or elsewhere",
            Close::BadHello => {
                "the first message must be {\"token\": \"...\"} (since: an integer >= 0)"
            }
            Close::Unauthorized => {
                "no session for this token (unknown, expired or ended): log in again"
            }
            Close::HelloTimeout => "no first message in time: send {\"token\": \"...\"} at once",
            Close::TooSlow => "the client did not read its messages (socket.send_queue was full)",
            Close::Idle => "nothing heard within socket.idle_timeout_secs: answer pings",
        }
    }

    /// The reason a socket ends after a read or write failed: a message over the limit, or
    /// else a connection that broke.
    pub fn after(error: &Error) -> Close {
        match error {
            Error::Capacity(_) => Close::TooBig,
            _ => Close::Gone,
        }
    }

    /// Whether the host sends a close frame: not when the client closed first (tungstenite
    /// answers its close frame by itself) or is gone.
    pub fn sends_frame(self) -> bool {
        !matches!(self, Close::Normal | Close::Gone)
    }

    /// Whether the messages already queued for the client go out before the close frame: not
    /// when the client is not reading them, nor when it has gone.
    pub fn sends_queued(self) -> bool {
        self.sends_frame() && self != Close::TooSlow
    }

    pub fn frame(self) -> CloseFrame {
        CloseFrame {
            code: CloseCode::from(self.code()),
            reason: self.reason().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Close;

    #[test]
    fn every_reason_fits_a_close_frame_and_every_code_is_one_a_server_may_send() {
        for close in Close::ALL {
            // RFC 6455 5.5: a control frame's payload is at most 125 bytes, 2 of them the code.
            assert!(close.reason().len() <= 123, "{close:?}: {}", close.reason());
            let code = close.code();
            assert!(
                !close.sends_frame()
                    || matches!(code, 1000..=1003 | 1007..=1011 | 1013 | 4000..=4999),
                "{close:?}: {code}"
            );
        }
        let mut codes: Vec<u16> = Close::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            Close::ALL.len(),
            "each reason has its own code"
        );
    }
}
