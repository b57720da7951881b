//! What the host's tests and `game-bench` both start around `game-host`: real outside
//! programs, never stand-ins. Test and bench code only; nothing here ships.

pub mod nginx;
