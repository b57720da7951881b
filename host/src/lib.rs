//! `game-host`: an HTTP game server whose game modules are hot-swappable libraries.
//!
//! In abi_stable's terms this is the *user crate*: it loads *implementation crates*
//! (`plugins/*`) through the *interface crate* `plugin-api`. ARCHITECTURE.md at the top of the
//! repository maps the modules below and tells the request, loading and shutdown paths.

pub mod admin;
pub mod check;
pub mod clock;
pub mod config;
pub mod cors;
pub mod error;
pub mod fleet;
pub mod game;
pub mod handover;
pub mod http;
pub mod idempotency;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod player_locks;
pub mod plugins;
pub mod process;
pub mod protocol;
pub mod push;
pub mod restart;
pub mod scaffold;
pub mod server;
pub mod session;
pub mod signals;
pub mod sockets;
pub mod state;
pub mod static_files;
pub mod store;
pub mod websocket;

pub use config::Config;
pub use server::{Deps, Host, StartError};
pub use sockets::Listeners;
