//! What the host's tests and `game-bench` both start around `game-host`: real outside
//! programs, never stand-ins, and clients that fail the way real ones do. Test and bench code
//! only; nothing here ships.

pub mod hangup;
pub mod nginx;
