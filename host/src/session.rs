//! Session tokens: how they are made, how they are stored, and where a request carries them.
//!
//! A token is 32 bytes from the operating system's CSPRNG (256 bits), sent as hex. The store
//! keeps only its SHA-256, so a leaked database holds no usable token; looking a session up by
//! that hash compares no secret byte by byte.

pub mod cache;

use hyper::header::{HeaderMap, AUTHORIZATION, COOKIE};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The cookie that carries the token for browsers.
pub const COOKIE_NAME: &str = "sid";

/// A new token, as handed to the client.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new player id: 32 lowercase hex digits.
pub fn new_player_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    // Every request hashes its token: `encode_to_slice` is a table lookup per byte, where
    // `hex::encode` goes through a char iterator.
    let mut text = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut text)
        .expect("a sha256 digest is 32 bytes, 64 in hex");
    String::from_utf8(text.to_vec()).expect("hex is ASCII")
}

/// The token a request carries: `Authorization: Bearer <token>` first, else the `sid` cookie.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 7235).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if let Some(token) = bearer.filter(|t| !t.is_empty()) {
        return Some(token.to_owned());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value that hands a token to a browser.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax")
}

/// The `Set-Cookie` value that clears the token.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests;
