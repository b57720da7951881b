//! The tables a library has read, by id: what `load_tables` returns and `drop_tables` frees.
//!
//! The library keeps each value it read until the host frees it, in a static list: the host
//! frees every id before it unloads the library (after the version's last command), so nothing
//! here outlives the library. A `RwLock` rather than a thread-local (docs/modules.md, "Rules
//! that keep unloading safe"); commands only read it.

use crate::abi::{TableFile, TableRefusal};
use crate::tables::{TableError, Tables};
use abi_stable::std_types::RSlice;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Tables as a command reads them: the module's own type, behind `Any`.
pub type Read = Arc<dyn Any + Send + Sync>;

/// A module's table reader, whatever type it reads: how the macro stores `tables: f`.
pub trait TablesReader: Sync {
    fn read(&self, tables: &Tables<'_>) -> Result<Read, TableError>;
}

/// A reader `fn(&Tables) -> Result<T, TableError>` as a [`TablesReader`].
pub struct Reader<F, T> {
    read: F,
    value: PhantomData<fn() -> T>,
}

impl<F, T> Reader<F, T>
where
    F: Fn(&Tables<'_>) -> Result<T, TableError>,
{
    pub const fn new(read: F) -> Self {
        Reader {
            read,
            value: PhantomData,
        }
    }
}

impl<F, T> TablesReader for Reader<F, T>
where
    F: Fn(&Tables<'_>) -> Result<T, TableError> + Sync,
    T: Any + Send + Sync,
{
    fn read(&self, tables: &Tables<'_>) -> Result<Read, TableError> {
        Ok(Arc::new((self.read)(tables)?))
    }
}

static LOADED: RwLock<Vec<(u64, Read)>> = RwLock::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Reads `files` with `reader` and keeps the value under a new id.
pub(crate) fn load(
    module: &str,
    reader: &dyn TablesReader,
    files: RSlice<'_, TableFile<'_>>,
) -> Result<u64, TableRefusal> {
    let files = files
        .iter()
        .map(|file| (file.name.as_str(), file.text.as_str()))
        .collect();
    let read = reader
        .read(&Tables::new(module, files))
        .map_err(|refused| TableRefusal {
            file: refused.file.into(),
            line: refused.line.unwrap_or(0),
            reason: refused.reason.into(),
        })?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    LOADED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, read));
    Ok(id)
}

/// The tables kept under `id`.
pub(crate) fn get(id: u64) -> Option<Read> {
    let loaded = LOADED.read().unwrap_or_else(PoisonError::into_inner);
    loaded
        .iter()
        .find(|(kept, _)| *kept == id)
        .map(|(_, read)| read.clone())
}

/// Frees the tables kept under `id` (and the list's memory once it is empty).
pub(crate) fn free(id: u64) {
    let mut loaded = LOADED.write().unwrap_or_else(PoisonError::into_inner);
    loaded.retain(|(kept, _)| *kept != id);
    if loaded.is_empty() {
        loaded.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests;
