//! Integration tests of `game-host`: the real server (in process, or the real binary) on
//! port 0, real module libraries built by the workspace, real HTTP.
//!
//! The libraries must be built first: `make test` runs `cargo build --workspace` before
//! `cargo test`.

mod admin;
mod cli;
mod clients;
mod cors;
// First of the modules that use its `tests_on!`.
#[macro_use]
mod databases;
mod behind_nginx;
mod crash;
mod db_tls;
mod demo_migration;
mod deploy;
mod docs;
mod faults;
mod fleet;
mod hangups;
mod harness;
mod hotswap;
mod idempotency;
mod isolation;
mod loading;
mod modules;
mod operators;
mod ops;
mod persistence;
mod private_mariadb;
mod private_postgres;
mod properties;
mod protocol;
mod push;
mod push_served;
mod rollout;
mod saved_schema;
mod scaffold;
mod served;
mod smoke;
mod socket;
mod sqlite_lock;
mod store_contract;
mod tables;
mod trust;
mod web;
mod ws;
