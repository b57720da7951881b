//! The `[trust]` section: which module libraries the host is willing to load at all, before it
//! looks at what they are (`host/src/plugins/trust.rs` applies it).
//!
//! Loading a library is running its code. By default the host refuses a library that a user
//! other than root, its own user and its own group could have changed (permissions of the
//! file and of every directory above it); optionally, as in the prod profile, it also requires
//! an Ed25519 signature by one of `public_keys` in `<file>.sig`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustConfig {
    /// Refuse a library that other users could have written: the file, or a directory on
    /// its path, owned by someone else or writable by others.
    pub check_permissions: bool,
    /// Load only libraries with a valid detached signature `<file>.sig` (Ed25519 over the
    /// file's bytes) by one of `public_keys`; `game-host sign` makes one.
    pub require_signature: bool,
    /// Ed25519 public keys in PEM (`-----BEGIN PUBLIC KEY-----`, as `game-host keygen` and
    /// `openssl pkey -pubout` write them): a file's path, or the PEM text itself. Any one of
    /// them may sign a library (several allow a key rotation).
    pub public_keys: Vec<String>,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            check_permissions: true,
            require_signature: false,
            public_keys: Vec::new(),
        }
    }
}

impl TrustConfig {
    /// Checks what types alone cannot; the message names the key. Key files are read when the
    /// host starts (or `game-host check` runs), not here: `game-host config` must work without.
    pub fn check(&self) -> Result<(), String> {
        if self.require_signature && self.public_keys.is_empty() {
            return Err("trust.require_signature is true but trust.public_keys is empty: add the public key that signs your modules (`game-host keygen` makes a pair), or set require_signature = false".into());
        }
        if let Some(blank) = self.public_keys.iter().position(|k| k.trim().is_empty()) {
            return Err(format!(
                "trust.public_keys[{blank}] is empty: give a public key file's path or its PEM text"
            ));
        }
        Ok(())
    }
}
