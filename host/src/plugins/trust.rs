//! Trust: may this file be loaded at all? Loading a library is running its code, so before the
//! loader looks at what a library is, this decides whether the host believes where it came
//! from (`[trust]` in the config, [`crate::config::TrustConfig`]).
//!
//! - Permissions ([`permissions`], on by default): the library, the directory holding it and
//!   every directory above (symbolic links followed) must be changeable only by root, the
//!   host's user and the host's group. The message names the path, what is wrong, and the
//!   `chmod` or `chown` that fixes it.
//! - Signature ([`signature`], `require_signature`, on in the prod profile): `<file>.sig` must
//!   be an Ed25519 signature of the file's bytes by one of `public_keys`.
//!
//! No time-of-check/time-of-use gap: [`read`] opens the file once and reads it through that
//! descriptor; [`Trust::admit`] judges the path and requires that it still leads to the very
//! file that was read (same device and inode), and verifies the signature over the bytes read.
//! Those bytes, and no others, are hashed, written to the shadow copy and loaded; the shadow
//! directory passes the same permission check ([`Trust::check_shadow_dir`]), and the copy is
//! created new with mode 0600, so nobody but the host and root can change it before `dlopen`.
//!
//! What it does not do: look inside the library (that is [`super::loader`]), or decide what
//! serves (that is [`super::registry`], which refuses an untrusted file like any other:
//! logged, a `refuse` event, what serves stays).

pub mod permissions;
pub mod signature;

use crate::config::TrustConfig;
use permissions::{Flaw, Ids};
use signature::{KeyError, Mismatch, PublicKey};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The trust settings, with the public keys read and the host's user and group known.
#[derive(Debug, Clone)]
pub struct Trust {
    /// `Some` when permissions are checked: the user and group trusted besides root.
    ids: Option<Ids>,
    /// `Some` when a signature is required: the keys that may sign.
    keys: Option<Vec<PublicKey>>,
}

/// A library file as read, once, through one open descriptor.
pub struct Opened {
    pub bytes: Vec<u8>,
    /// The (device, inode) of the file that was read.
    identity: (u64, u64),
}

/// What the host knows of an admitted library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The key that signed it, when signatures are required.
    pub signed_by: Option<String>,
}

/// Why a file may not be loaded. Each message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Untrusted {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} not loaded: {flaw}")]
    Permissions { file: PathBuf, flaw: Flaw },
    #[error("{file} not loaded: the loader's private copies go to {dir}, and {flaw}")]
    ShadowDir {
        file: PathBuf,
        dir: PathBuf,
        flaw: Flaw,
    },
    #[error("{file} not loaded: its data tables in {folder} could be changed by others: {flaw}")]
    Tables {
        file: PathBuf,
        folder: PathBuf,
        flaw: Flaw,
    },
    #[error("{file} not loaded: it was replaced while it was being checked; it is checked again when it changes")]
    Replaced { file: PathBuf },
    #[error("{file} not loaded: it is not signed ({sig} is missing) and trust.require_signature is on: sign it with `game-host sign --key KEY {file}`, and ship the .sig before the library")]
    Unsigned { file: PathBuf, sig: PathBuf },
    #[error("{file} not loaded: {sig} is not a signature ({len} bytes, an Ed25519 signature has 64): sign it again with `game-host sign --key KEY {file}`")]
    MalformedSignature {
        file: PathBuf,
        sig: PathBuf,
        len: usize,
    },
    #[error("{file} not loaded: {sig} is not a valid signature of it by {keys} (signed with another key, or the library changed after it was signed): sign this build with `game-host sign --key KEY {file}`")]
    BadSignature {
        file: PathBuf,
        sig: PathBuf,
        keys: String,
    },
    /// Not a `#[source]`: the message already carries it, and error chains would repeat it.
    #[error("trust.public_keys: {0}")]
    Key(KeyError),
    #[error("cannot tell which user this host runs as (/proc/self/status): {0}")]
    Ids(std::io::Error),
}

impl From<KeyError> for Untrusted {
    fn from(error: KeyError) -> Self {
        Untrusted::Key(error)
    }
}

/// Opens `file` (following symbolic links) and reads it through that one descriptor.
pub fn read(file: &Path) -> Result<Opened, Untrusted> {
    let read_error = |source| Untrusted::Read {
        file: file.to_owned(),
        source,
    };
    let mut opened = std::fs::File::open(file).map_err(read_error)?;
    let meta = opened.metadata().map_err(read_error)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    opened.read_to_end(&mut bytes).map_err(read_error)?;
    Ok(Opened {
        bytes,
        identity: (meta.dev(), meta.ino()),
    })
}

impl Trust {
    /// The settings of `config`, the public keys read (and their files checked like libraries).
    pub fn from_config(config: &TrustConfig) -> Result<Trust, Untrusted> {
        let ids = match config.check_permissions {
            true => Some(Ids::current().map_err(Untrusted::Ids)?),
            false => None,
        };
        let keys = match config.require_signature {
            true => Some(
                config
                    .public_keys
                    .iter()
                    .enumerate()
                    .map(|(index, entry)| PublicKey::load(entry, index, ids))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            false => None,
        };
        Ok(Trust { ids, keys })
    }

    /// Whether `opened`, read from `file`, may be loaded.
    pub fn admit(&self, file: &Path, opened: &Opened) -> Result<Admitted, Untrusted> {
        if let Some(ids) = self.ids {
            let meta =
                permissions::check_file(file, ids).map_err(|flaw| Untrusted::Permissions {
                    file: file.to_owned(),
                    flaw,
                })?;
            if (meta.dev(), meta.ino()) != opened.identity {
                return Err(Untrusted::Replaced {
                    file: file.to_owned(),
                });
            }
        }
        let signed_by = match &self.keys {
            Some(keys) => Some(verify(file, &opened.bytes, keys)?),
            None => None,
        };
        Ok(Admitted { signed_by })
    }

    /// Whether the loader may write its copy of `file` into `dir` and load it from there.
    pub fn check_shadow_dir(&self, file: &Path, dir: &Path) -> Result<(), Untrusted> {
        let Some(ids) = self.ids else {
            return Ok(());
        };
        permissions::check_dir(dir, ids)
            .map(drop)
            .map_err(|flaw| Untrusted::ShadowDir {
                file: file.to_owned(),
                dir: dir.to_owned(),
                flaw,
            })
    }

    /// Whether the tables folder `folder` of the library `file`, and each of its `tables`
    /// files, can be changed only by root, the host's user and the host's group, as a library
    /// must (a missing folder has nothing to judge). Tables are not signed: what a designer
    /// changes is judged by who could change it.
    pub fn check_tables(
        &self,
        file: &Path,
        folder: &Path,
        tables: &[&str],
    ) -> Result<(), Untrusted> {
        let Some(ids) = self.ids else {
            return Ok(());
        };
        if !folder.exists() {
            return Ok(());
        }
        let flawed = |flaw| Untrusted::Tables {
            file: file.to_owned(),
            folder: folder.to_owned(),
            flaw,
        };
        permissions::check_dir(folder, ids).map_err(flawed)?;
        for table in tables {
            permissions::check_file(&folder.join(table), ids).map_err(flawed)?;
        }
        Ok(())
    }

    /// Whether signatures are required.
    pub fn requires_signature(&self) -> bool {
        self.keys.is_some()
    }
}

/// The name of the key in `keys` that signed `bytes`, the content of `file`.
fn verify(file: &Path, bytes: &[u8], keys: &[PublicKey]) -> Result<String, Untrusted> {
    let sig = signature::signature_path(file);
    let signature = match std::fs::read(&sig) {
        Ok(signature) => signature,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Untrusted::Unsigned {
                file: file.to_owned(),
                sig,
            })
        }
        Err(source) => return Err(Untrusted::Read { file: sig, source }),
    };
    match signature::verify(bytes, &signature, keys) {
        Ok(key) => Ok(key.name.clone()),
        Err(Mismatch::Malformed(len)) => Err(Untrusted::MalformedSignature {
            file: file.to_owned(),
            sig,
            len,
        }),
        Err(Mismatch::NoKey) => Err(Untrusted::BadSignature {
            file: file.to_owned(),
            sig,
            keys: match keys {
                [one] => format!("the key {}", one.name),
                _ => format!(
                    "any of the {} keys in trust.public_keys ({})",
                    keys.len(),
                    keys.iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        }),
    }
}

#[cfg(test)]
mod tests;
