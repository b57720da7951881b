//! The wire format of docs/PROTOCOL.md v1: request envelopes, their validation, and commands.
//!
//! Everything here is pure: bytes in, typed requests or an [`ApiError::BadRequest`] out.

use crate::error::ApiError;
use serde_json::{Map, Value};
use std::fmt;

/// A four-digit game command such as `1103`: module prefix `11`, command `03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cmd([u8; 4]);

impl Cmd {
    /// Parses exactly four ASCII digits.
    pub fn parse(text: &str) -> Option<Cmd> {
        let bytes: [u8; 4] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_digit).then_some(Cmd(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).expect("cmd is ASCII digits")
    }

    /// The module prefix: the first two digits.
    pub fn prefix(&self) -> &str {
        &self.as_str()[..2]
    }

    /// The command a reply carries: this one plus one (`1201` is answered by `1202`).
    pub fn reply(&self) -> String {
        let n: u32 = self.as_str().parse().expect("cmd is four digits");
        format!("{:04}", n + 1)
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    pub account: String,
    pub name: Option<String>,
    pub head_img: Option<String>,
}

/// `POST /logic`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogicRequest {
    pub cmd: Cmd,
    pub data: Map<String, Value>,
}

/// Longest `account`, in characters.
pub const MAX_ACCOUNT_CHARS: usize = 64;
/// Longest `name` accepted at login, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest `head_img` accepted at login, in characters.
pub const MAX_HEAD_IMG_CHARS: usize = 1024;

impl LoginRequest {
    pub fn parse(body: &[u8]) -> Result<LoginRequest, ApiError> {
        let mut object = parse_object(body)?;
        let account = match object.remove("account") {
            Some(Value::String(account)) if valid_account(&account) => account,
            _ => {
                return Err(bad(format!(
                    "`account` must be a string of 1 to {MAX_ACCOUNT_CHARS} characters from A-Z a-z 0-9 _ . -"
                )))
            }
        };
        Ok(LoginRequest {
            account,
            name: optional_string(&mut object, "name", MAX_NAME_CHARS)?,
            head_img: optional_string(&mut object, "head_img", MAX_HEAD_IMG_CHARS)?,
        })
    }
}

impl LogicRequest {
    pub fn parse(body: &[u8]) -> Result<LogicRequest, ApiError> {
        LogicRequest::from_object(parse_object(body)?)
    }

    /// The request in a JSON object already read (a socket's message, its `cid` taken out).
    pub fn from_object(mut object: Map<String, Value>) -> Result<LogicRequest, ApiError> {
        let cmd = match object.remove("cmd") {
            Some(Value::String(text)) => Cmd::parse(&text),
            _ => None,
        }
        .ok_or_else(|| {
            bad("`cmd` must be a string of exactly 4 digits, such as \"1203\"".into())
        })?;
        let data = match object.remove("data") {
            None => Map::new(),
            Some(Value::Object(data)) => data,
            Some(_) => return Err(bad("`data` must be a JSON object when present".into())),
        };
        Ok(LogicRequest { cmd, data })
    }
}

/// Parses a body that must be a JSON object. serde_json refuses invalid UTF-8 and nesting
/// deeper than 128 levels, so hostile bodies end here as -2 too.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad("the body must be a JSON object".into())),
        Err(e) => Err(bad(format!("the body is not valid JSON: {e}"))),
    }
}

fn optional_string(
    object: &mut Map<String, Value>,
    key: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match object.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max_chars => Ok(Some(s)),
        Some(_) => Err(bad(format!(
            "`{key}` must be a string of at most {max_chars} characters"
        ))),
    }
}

pub(crate) fn valid_account(account: &str) -> bool {
    (1..=MAX_ACCOUNT_CHARS).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn bad(msg: String) -> ApiError {
    ApiError::BadRequest(msg)
}

#[cfg(test)]
mod tests;
