//! The loader: the only code that opens module libraries, and the only `unsafe` in the host.
//!
//! It follows the recipe of docs/modules.md ("Rules that keep unloading safe", which states the
//! measured reasons): copy the file to a private shadow path with a new inode (never `dlopen` the
//! watched file: overwriting a loaded library crashes the process, and `dlopen` of a path already
//! open returns the old code), load it with abi_stable's low-level API (never
//! `RootModule::load_from*`, which caches one module per type forever), require exactly this host's
//! interface version, let abi_stable check every type layout, then unlink the shadow file (the
//! mapping survives).
//!
//! What it does not do: call the module (that is [`super::version`]), decide what serves
//! (that is [`super::registry`]).

#![allow(unsafe_code)]

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary, RootModule};
use object::{Object, ObjectSegment};
use plugin_api::abi::ModuleRoot_Ref;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An open module library. Dropping it unloads the library (`dlclose`): everything obtained
/// from it (the root module, strings, vtables) must be gone by then.
pub struct Library {
    /// Held only to keep the library mapped: dropping it is the `dlclose`.
    _raw: RawLibrary,
}

/// Why a file could not be loaded. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot make a shadow copy of {file}: {source}")]
    Copy {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} is not a loadable library ({reason}): ship the `.so` that `cargo build` writes for a module crate")]
    NotALibrary { file: PathBuf, reason: String },
    #[error("{file} is not a game module: it exports no abi_stable root module ({reason}); declare it with `plugin_api::export_module!`")]
    NotAModule { file: PathBuf, reason: String },
    #[error("{file} was built against plugin-api {found}, this host has plugin-api {expected}: rebuild the module against plugin-api {expected}")]
    IncompatibleInterface {
        file: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{file} does not match this host's plugin-api {expected} type layouts: rebuild the module against plugin-api {expected} ({summary})")]
    IncompatibleLayout {
        file: PathBuf,
        expected: String,
        summary: String,
    },
}

/// Numbers shadow copies, so that every load gets a path (and inode) of its own.
static SHADOW_SEQ: AtomicU64 = AtomicU64::new(0);

/// A library as loaded: the open library, its checked root module, the sha256 of its bytes.
/// The root module's function pointers are valid exactly as long as `library`.
pub struct Loaded {
    pub library: Library,
    pub root: ModuleRoot_Ref,
    pub sha256: String,
    /// The (already unlinked) shadow path: `/proc/self/maps` names the mapping after it.
    pub shadow: PathBuf,
}

/// Writes `bytes` (the content of `file`, read once by the caller) to a fresh shadow path
/// in `shadow_dir`, opens the copy and checks it. `file` names the library in messages.
pub fn load(file: &Path, bytes: &[u8], shadow_dir: &Path) -> Result<Loaded, LoadError> {
    if let Some(reason) = image_problem(bytes) {
        return Err(LoadError::NotALibrary {
            file: file.to_owned(),
            reason,
        });
    }
    let shadow = shadow_copy(file, bytes, shadow_dir)?;
    let opened = open_and_check(file, &shadow);
    // The mapping outlives the path; a failed load must not leave the copy behind either.
    let _ = std::fs::remove_file(&shadow);
    let (library, root) = opened?;
    Ok(Loaded {
        library,
        root,
        sha256: sha256_hex(bytes),
        shadow,
    })
}

/// The SHA-256 of a library's bytes, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes the bytes to a new shadow path: a new inode, so `dlopen` cannot hand back an older copy.
/// Created exclusively (never through a link or over a file someone placed there) with mode
/// 0600: between this write and the `dlopen`, only the host and root can change the copy.
fn shadow_copy(file: &Path, bytes: &[u8], shadow_dir: &Path) -> Result<PathBuf, LoadError> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("module");
    let seq = SHADOW_SEQ.fetch_add(1, Ordering::Relaxed);
    let shadow = shadow_dir.join(format!("{stem}-{}-{seq}.so", std::process::id()));
    let copy_error = |source| LoadError::Copy {
        file: file.to_owned(),
        source,
    };
    std::fs::create_dir_all(shadow_dir).map_err(copy_error)?;
    let mut copy = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&shadow)
        .map_err(copy_error)?;
    if let Err(e) = copy.write_all(bytes) {
        drop(copy);
        let _ = std::fs::remove_file(&shadow);
        return Err(copy_error(e));
    }
    Ok(shadow)
}

/// Why `bytes` cannot be a complete shared library, if they cannot. `dlopen` maps each
/// loadable segment from the file; a segment that reaches past the end of a truncated or
/// half-written file would be mapped beyond it, and the first touch kills the whole process
/// with SIGBUS. So the image is checked before it is opened.
fn image_problem(bytes: &[u8]) -> Option<String> {
    let image = match object::File::parse(bytes) {
        Ok(image) => image,
        Err(e) if bytes.starts_with(b"\x7fELF") => {
            return Some(format!(
                "a damaged or incomplete ELF file (still being written?): {e}"
            ))
        }
        Err(e) => return Some(format!("not an ELF shared library: {e}")),
    };
    if image.kind() != object::ObjectKind::Dynamic {
        return Some(format!(
            "an ELF file of kind {:?}, not a shared library",
            image.kind()
        ));
    }
    let length = bytes.len() as u64;
    image.segments().find_map(|segment| {
        let (offset, size) = segment.file_range();
        (offset.saturating_add(size) > length).then(|| {
            format!("truncated: a segment ends at byte {}, the file has {length} (still being written?)", offset + size)
        })
    })
}

fn open_and_check(file: &Path, shadow: &Path) -> Result<(Library, ModuleRoot_Ref), LoadError> {
    let raw = RawLibrary::load_at(shadow).map_err(|e| LoadError::NotALibrary {
        file: file.to_owned(),
        reason: one_line(&e),
    })?;
    // SAFETY: the header refers into the library's memory. It is used only inside this
    // function, while `raw` is alive; the root module it yields is returned together with
    // `raw` in a `Library`, whose owner (`ModuleVersion`) drops the module before the library.
    let header =
        unsafe { lib_header_from_raw_library(&raw) }.map_err(|e| LoadError::NotAModule {
            file: file.to_owned(),
            reason: one_line(&e),
        })?;
    let expected = ModuleRoot_Ref::VERSION_STRINGS.version.as_str();
    let found = header.version_strings().version.as_str();
    // Exact match, stricter than abi_stable's semver rule: a newer interface with extra
    // fields would put pointers into the library in abi_stable's global layout map, which
    // crashes the process once that library is unloaded (docs/modules.md, "Why: what
    // unloading involves").
    if found != expected {
        return Err(LoadError::IncompatibleInterface {
            file: file.to_owned(),
            found: found.to_owned(),
            expected: expected.to_owned(),
        });
    }
    let module = header
        .init_root_module::<ModuleRoot_Ref>()
        .map_err(|e| layout_error(file, expected, e))?;
    Ok((Library { _raw: raw }, module))
}

fn layout_error(file: &Path, expected: &str, error: LibraryError) -> LoadError {
    // abi_stable's layout reports run to kilobytes; the `Error:` lines say what differs.
    let text = error.to_string();
    let summary: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Error:"))
        .take(3)
        .collect();
    LoadError::IncompatibleLayout {
        file: file.to_owned(),
        expected: expected.to_owned(),
        summary: if summary.is_empty() {
            one_line(&error)
        } else {
            summary.join("; ")
        },
    }
}

fn one_line(error: &LibraryError) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// How many pthread keys this process uses, probed by creating one key and deleting it again:
/// glibc hands out the lowest free key. Each library copy whose std calls
/// `std::thread::current()` leaks one key forever, and the 1025th kills the process
/// (docs/modules.md, "Why: what unloading involves"), so reloads stop before that.
pub fn pthread_keys_in_use() -> Option<u32> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid place for the new key, and no destructor is registered; the
    // key is deleted right away and never used to store anything.
    let created = unsafe { libc::pthread_key_create(&mut key, None) };
    if created != 0 {
        return None;
    }
    // SAFETY: `key` was just created by this thread and is deleted exactly once.
    unsafe { libc::pthread_key_delete(key) };
    Some(key)
}
