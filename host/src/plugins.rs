//! Module libraries: loading them, running their code, and routing commands to them.
//!
//! - [`trust`] decides whether a file may be loaded at all (permissions, signature);
//! - [`loader`] opens and checks a library (the host's only `unsafe`);
//! - [`version`] is one loaded module version and the calls into it;
//! - [`call`] runs a command's call under its deadline and stuck-call cap, and counts it;
//! - [`services`] is what the host offers a module during a call;
//! - [`executor`] is the fixed set of threads that run module code;
//! - [`pipeline`] is the one way a library's bytes become a version that may serve;
//! - [`tables`] reads a module's data tables folder (a version is a library and its tables);
//! - [`data_check`] runs a swap's saved-data migrations over stored data before it is let in;
//! - [`migrator`] downgrades a player's data of a newer schema after a step back;
//! - [`rewrite`] then rewrites the stored data of a newer schema, in the background;
//! - [`registry`] holds the routing snapshot and the one path by which it changes;
//! - [`retire`] drains, shuts down and unloads versions that no longer serve;
//! - [`watcher`] reports changes in the plugins directory to the registry;
//! - [`archive`] keeps recent versions' libraries for rollback;
//! - [`budget`] refuses reloads before the process runs out of maps or pthread keys;
//! - [`events`] is the recent history the admin API shows.

pub mod archive;
pub mod budget;
pub mod call;
pub mod data_check;
pub mod events;
pub mod executor;
pub mod loader;
pub mod migrator;
pub mod pipeline;
pub mod registry;
pub mod retire;
pub mod rewrite;
pub mod services;
pub mod tables;
pub mod trust;
pub mod version;
pub mod watcher;

pub use call::{CallError, CallInput, CallLimits};
pub use registry::{Change, Registry, RollbackError, Routes, ScanReport};
pub use version::{CallOutcome, ModuleMeta, ModuleVersion, Refused};
