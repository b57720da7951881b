//! What the host's tests, `game-bench` and the fuzz targets start around `game-host`, written
//! once: the real host in this process ([`in_process`]) or as a process of its own
//! ([`served`]), on temporary folders ([`folders`]); scratch databases on the PostgreSQL and
//! MariaDB servers ([`scratch`]); real outside programs, never stand-ins ([`nginx`]); and
//! clients that fail the way real ones do ([`hangup`]). Test and bench code only; nothing here
//! ships.

pub mod folders;
pub mod hangup;
pub mod in_process;
pub mod nginx;
pub mod scratch;
pub mod served;

pub use folders::Folders;

/// The demo modules' crates, whose libraries the hosts serve (what `make run` installs).
pub const DEMO_MODULES: [&str; 4] = ["activity", "mall", "player", "social"];

/// 2026-11-25T12:00:00Z, in ms: a fixed, mid-day moment for a host clock that tests control.
pub const NOON_MS: i64 = 1_795_608_000_000;
