//! The schema version of a module's saved data, and the migrations between versions.
//!
//! A module declares the schema its saved data has (`schema: 2` in
//! [`export_module!`](crate::export_module), 1 by default) and, for each older schema, a
//! migration one schema up and back down (`migrations: [(1, upgrade, downgrade)]`). Saved data
//! of a schema above 1 is stored with its schema under the key [`SCHEMA_KEY`]; data without it
//! is of schema 1, which is how every module's data was stored before schemas existed.
//!
//! Here the glue reads the stored data at the version's own schema before the handler runs
//! (upgrading older data step by step), and stamps what the handler saved with that schema.
//! Data of a newer schema (written by a newer version, before a rollback) cannot be read by
//! this version: the command fails and says so, and nothing is written.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::marker::PhantomData;

use super::{read_naming_the_field, ModuleDef};

pub use crate::abi::SCHEMA_KEY;

/// One migration, between a schema and the next: how [`export_module!`](crate::export_module)
/// stores each `(from, upgrade, downgrade)`.
pub trait Migration: Sync {
    /// Data of schema `from` to schema `from + 1`.
    fn up(&self, data: Map<String, Value>) -> Result<Map<String, Value>, String>;
    /// Data of schema `from + 1` back to schema `from`.
    fn down(&self, data: Map<String, Value>) -> Result<Map<String, Value>, String>;
}

/// An upgrade `fn(Old) -> Result<New, String>` and a downgrade `fn(New) -> Result<Old, String>`
/// as a [`Migration`]; `Old` and `New` are the module's types (or `serde_json::Value`).
pub struct Steps<U, D, Old, New> {
    upgrade: U,
    downgrade: D,
    types: PhantomData<fn(Old) -> New>,
}

impl<U, D, Old, New> Steps<U, D, Old, New>
where
    U: Fn(Old) -> Result<New, String>,
    D: Fn(New) -> Result<Old, String>,
{
    pub const fn new(upgrade: U, downgrade: D) -> Self {
        Steps {
            upgrade,
            downgrade,
            types: PhantomData,
        }
    }
}

impl<U, D, Old, New> Migration for Steps<U, D, Old, New>
where
    U: Fn(Old) -> Result<New, String> + Sync,
    D: Fn(New) -> Result<Old, String> + Sync,
    Old: DeserializeOwned + Serialize,
    New: DeserializeOwned + Serialize,
{
    fn up(&self, data: Map<String, Value>) -> Result<Map<String, Value>, String> {
        step(data, &self.upgrade)
    }

    fn down(&self, data: Map<String, Value>) -> Result<Map<String, Value>, String> {
        step(data, &self.downgrade)
    }
}

/// Reads `data` as `From`, runs `f`, writes the result back as a JSON object.
fn step<From, To>(
    data: Map<String, Value>,
    f: impl Fn(From) -> Result<To, String>,
) -> Result<Map<String, Value>, String>
where
    From: DeserializeOwned,
    To: Serialize,
{
    let from: From = read_naming_the_field(Value::Object(data))
        .map_err(|misfit| format!("the data does not fit: {misfit}"))?;
    match serde_json::to_value(f(from)?) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("it returned {other}, not a JSON object")),
        Err(e) => Err(format!("its result does not serialize: {e}")),
    }
}

/// The stored data `stored` at the module's schema, without its stamp: upgraded if older.
/// Empty data (nothing saved) is of every schema.
pub(crate) fn read(
    def: &ModuleDef,
    mut stored: Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let from = take_stamp(&mut stored)?;
    if stored.is_empty() || from == def.schema {
        return Ok(stored);
    }
    if from > def.schema {
        return Err(format!(
            "the saved data is of schema {from}, written by a newer version of module `{}`; \
             this version ({}) reads schema {} and cannot downgrade it: serve a version with \
             schema {from} or above again",
            def.name, def.version, def.schema
        ));
    }
    let mut upgraded = migrate(def, stored, from, def.schema)?;
    // A step on bare JSON may copy the stamp along; the handler never sees it.
    upgraded.remove(SCHEMA_KEY);
    Ok(upgraded)
}

/// Stored data (JSON text, stamped as stored) migrated to schema `to` and stamped with it, as
/// it would be stored: what the root module's `migrate` returns. Both schemas must be this
/// version's or older; empty data is of every schema and comes back empty.
pub(crate) fn migrate_stored(def: &ModuleDef, stored: &str, to: u32) -> Result<String, String> {
    let mut data: Map<String, Value> = serde_json::from_str(stored)
        .map_err(|e| format!("the saved data is not a JSON object: {e}"))?;
    let from = take_stamp(&mut data)?;
    for (what, schema) in [("the saved data is", from), ("the target is", to)] {
        if schema > def.schema || schema == 0 {
            return Err(format!(
                "{what} of schema {schema}; version {} of module `{}` knows schemas 1 to {}",
                def.version, def.name, def.schema
            ));
        }
    }
    if !data.is_empty() {
        data = migrate(def, data, from, to)?;
        data.remove(SCHEMA_KEY);
        stamp(&mut data, to);
    }
    Ok(Value::Object(data).to_string())
}

/// Removes the stamp from stored data and returns its schema (1 if it has none).
fn take_stamp(stored: &mut Map<String, Value>) -> Result<u32, String> {
    match stored.remove(SCHEMA_KEY) {
        None => Ok(1),
        Some(stamp) => match stamp.as_u64().and_then(|s| u32::try_from(s).ok()) {
            Some(schema) if schema >= 1 => Ok(schema),
            _ => Err(format!(
                "the saved data's schema `{SCHEMA_KEY}` is {stamp}, not a schema version"
            )),
        },
    }
}

/// Stamps data of `schema` as it is stored: schema 1, and empty data, stay bare.
fn stamp(data: &mut Map<String, Value>, schema: u32) {
    if schema > 1 && !data.is_empty() {
        data.insert(SCHEMA_KEY.to_owned(), Value::from(schema));
    }
}

/// `data` of schema `from` to schema `to`, through each migration on the way.
pub(crate) fn migrate(
    def: &ModuleDef,
    mut data: Map<String, Value>,
    from: u32,
    to: u32,
) -> Result<Map<String, Value>, String> {
    let step = |schema: u32| {
        def.migrations
            .iter()
            .find(|(start, _)| *start == schema)
            .map(|(_, migration)| *migration)
            .ok_or_else(|| {
                format!(
                    "module `{}` declares no migration from schema {schema} to {}",
                    def.name,
                    schema + 1
                )
            })
    };
    for schema in from..to {
        data = step(schema)?
            .up(data)
            .map_err(|why| format!("upgrading saved data from schema {schema}: {why}"))?;
    }
    for schema in (to..from).rev() {
        data = step(schema)?.down(data).map_err(|why| {
            format!(
                "downgrading saved data from schema {} to {schema}: {why}",
                schema + 1
            )
        })?;
    }
    Ok(data)
}

/// What the handler saved, stamped with the module's schema (left bare at schema 1, and when
/// empty).
pub(crate) fn write(
    def: &ModuleDef,
    mut saved: Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    if saved.contains_key(SCHEMA_KEY) {
        return Err(format!(
            "the saved data has a field `{SCHEMA_KEY}`, which holds its schema version: rename it"
        ));
    }
    stamp(&mut saved, def.schema);
    Ok(saved)
}

#[cfg(test)]
mod tests;
