//! Signed modules: the key files, `game-host keygen`, `game-host sign`, and the check of a
//! detached signature.
//!
//! - A signature is pure Ed25519 (RFC 8032, no pre-hash) over the library file's bytes, all of
//!   them: what is verified is exactly what is loaded, with no format of our own in between.
//!   The library is in memory anyway (it is read once, hashed and copied); verifying a few
//!   megabytes takes milliseconds.
//! - It is stored beside the library as `<file>.sig`: the 64 raw signature bytes, as
//!   `openssl pkeyutl -sign -rawin` writes them.
//! - Keys are PEM: the private key PKCS#8 (`-----BEGIN PRIVATE KEY-----`, mode 0600), the
//!   public key SPKI (`-----BEGIN PUBLIC KEY-----`). OpenSSL makes and reads the same files
//!   (`openssl genpkey -algorithm ed25519`, `openssl pkey -pubout`, `openssl pkeyutl -verify
//!   -rawin -pubin -inkey KEY.pub -in FILE.so -sigfile FILE.so.sig`).

use super::permissions::{self, Ids};
use ed25519_dalek::ed25519::KeypairBytes;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// One public key that may sign libraries, and how the config names it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    /// The key file's path, or `public_keys[N]` for a key given inline.
    pub name: String,
    key: VerifyingKey,
}

/// Why a key could not be used, or a signature made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("public key {path} does not exist: make a key pair with `game-host keygen --key FILE` (where modules are signed) and copy its .pub here")]
    Missing { path: PathBuf },
    #[error(
        "{path} already exists: keygen never overwrites a key; remove it or choose another path"
    )]
    Exists { path: PathBuf },
    #[error("{name} is not an Ed25519 {kind} key in PEM ({reason}): make one with `game-host keygen --key FILE`")]
    Format {
        name: String,
        kind: &'static str,
        reason: String,
    },
    #[error("{path} is a private key: trust.public_keys takes the public one (keygen wrote it beside, as .pub)")]
    PrivateGiven { path: PathBuf },
    #[error("{path} can be read by other users (mode {mode:o}): a signing key must be private; run `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("public key {name}: {flaw}")]
    Untrusted {
        name: String,
        flaw: permissions::Flaw,
    },
}

/// `<file>.sig`, where a library's signature lives.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".sig");
    PathBuf::from(name)
}

impl PublicKey {
    /// A `trust.public_keys` entry: PEM text, or the path of a PEM file. With `ids`, the file
    /// must pass the same permission check as a library: whoever can replace it can sign.
    pub fn load(entry: &str, index: usize, ids: Option<Ids>) -> Result<PublicKey, KeyError> {
        if entry.contains("-----BEGIN") {
            return PublicKey::parse(&format!("trust.public_keys[{index}]"), entry);
        }
        let path = Path::new(entry.trim());
        if !path.exists() {
            return Err(KeyError::Missing {
                path: path.to_owned(),
            });
        }
        if let Some(ids) = ids {
            permissions::check_file(path, ids).map_err(|flaw| KeyError::Untrusted {
                name: path.display().to_string(),
                flaw,
            })?;
        }
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        if text.contains("PRIVATE KEY") {
            return Err(KeyError::PrivateGiven {
                path: path.to_owned(),
            });
        }
        PublicKey::parse(&path.display().to_string(), &text)
    }

    fn parse(name: &str, pem: &str) -> Result<PublicKey, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError::Format {
            name: name.to_owned(),
            kind: "public",
            reason: e.to_string(),
        })?;
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }
}

/// Why a signature does not admit a library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// Not 64 bytes.
    Malformed(usize),
    /// No key verifies it.
    NoKey,
}

/// The key among `keys` that signed `bytes` with `signature`. Strict verification: no
/// malleable or small-order signatures.
pub fn verify<'k>(
    bytes: &[u8],
    signature: &[u8],
    keys: &'k [PublicKey],
) -> Result<&'k PublicKey, Mismatch> {
    let raw: &[u8; 64] = signature
        .try_into()
        .map_err(|_| Mismatch::Malformed(signature.len()))?;
    let signature = Signature::from_bytes(raw);
    keys.iter()
        .find(|k| k.key.verify_strict(bytes, &signature).is_ok())
        .ok_or(Mismatch::NoKey)
}

/// `game-host sign --key KEY FILE`: writes `FILE.sig` (replacing it at once, by a rename) and
/// returns its path.
pub fn sign_file(key_file: &Path, file: &Path) -> Result<PathBuf, KeyError> {
    let key = read_private_key(key_file)?;
    let bytes = std::fs::read(file).map_err(|source| KeyError::Read {
        path: file.to_owned(),
        source,
    })?;
    let signature = key.sign(&bytes).to_bytes();
    let sig = signature_path(file);
    let mut temporary = sig.clone().into_os_string();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let write_error = |source| KeyError::Write {
        path: sig.clone(),
        source,
    };
    std::fs::write(&temporary, signature).map_err(write_error)?;
    std::fs::rename(&temporary, &sig).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        write_error(e)
    })?;
    Ok(sig)
}

fn read_private_key(path: &Path) -> Result<SigningKey, KeyError> {
    let read_error = |source| KeyError::Read {
        path: path.to_owned(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(read_error)?.mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyError::Format {
        name: path.display().to_string(),
        kind: "private",
        reason: e.to_string(),
    })
}

/// `game-host keygen`: a new key pair, the private key at `private` (mode 0600) and the
/// public one at `public`; neither may exist yet. Returns the public key's PEM.
pub fn generate(private: &Path, public: &Path) -> Result<String, KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let format_error = |e: &dyn std::fmt::Display| KeyError::Format {
        name: "the new key".into(),
        kind: "private",
        reason: e.to_string(),
    };
    // PKCS#8 v1, without the public key that ed25519-dalek would add (v2): OpenSSL 3.0
    // cannot read that form.
    let private_pem = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
    .map_err(|e| format_error(&e))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| format_error(&e))?;
    write_new(private, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(public, public_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(private);
        return Err(e);
    }
    Ok(public_pem)
}

/// Writes a file that must not exist yet, created with `mode` (never wider, whatever the umask).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: path.to_owned(),
            },
            _ => KeyError::Write {
                path: path.to_owned(),
                source,
            },
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| KeyError::Write {
            path: path.to_owned(),
            source,
        })
}
