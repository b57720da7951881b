//! Integration tests of `game-host`: the real server (in process, or the real binary) on
//! port 0, real module libraries built by the workspace, real HTTP.
//!
//! The libraries must be built first: `make test` runs `cargo build --workspace` before
//! `cargo test`.

mod admin;
mod cli;
#[macro_use]
mod databases;
mod deploy;
mod fleet;
mod harness;
mod hotswap;
mod loading;
mod modules;
mod operators;
mod ops;
mod persistence;
mod private_postgres;
mod protocol;
mod smoke;
mod store_contract;
mod web;
