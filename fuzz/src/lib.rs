//! What the fuzz targets share: a real `game-host` running in this process
//! ([`FuzzHost`]) and what PROTOCOL.md says its replies must be ([`expect`]).
//!
//! Each target sends its input as the raw body of one request, over a real HTTP/1 connection,
//! to the real host: the host library's accept loop, hyper, `http::handle`, the session
//! lookup, the envelope parser, the command path through the demo module libraries built by
//! the workspace, and SQLite in a temporary folder. Then it asserts what the reply must be.
//! A panic anywhere in the process (the host's threads included) is a crash.

pub mod expect;
mod server;

pub use server::{FuzzHost, Reply, BODY_LIMIT, NOW_MS};
