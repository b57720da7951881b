//! Test-only module `swap` (prefix 95), build "b": the same module as the other build
//! but for its answer, so tests can tell which version served each command.

/// What this build answers.
const BUILD: &str = "b";

include!("../../swap-common/module.rs");
