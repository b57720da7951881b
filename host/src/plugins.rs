//! Module libraries: loading them, running their code, and routing commands to them.
//!
//! - [`loader`] opens and checks a library (the host's only `unsafe`);
//! - [`version`] is one loaded module version and the calls into it;
//! - [`services`] is what the host offers a module during a call;
//! - [`executor`] is the fixed set of threads that run module code;
//! - [`registry`] holds the routing snapshot: which version serves each prefix.

pub mod executor;
pub mod loader;
pub mod registry;
pub mod services;
pub mod version;

pub use registry::{Registry, Routes, ScanReport};
pub use version::{CallOutcome, ModuleMeta, ModuleVersion, Refused};
