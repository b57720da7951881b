//! The host's two listening sockets, in one value: taken from a predecessor or from systemd
//! (`LISTEN_FDS`, [`crate::handover::inherited_listeners`]), or bound from the config
//! (`server.listen`, `admin.listen`). [`crate::server::Host::start`] takes them whole, so the
//! binary and the in-process tests start a host the same way.

use crate::handover;
use crate::Config;
use std::net::{SocketAddr, TcpListener};

/// The client listener and, if the admin API is on, the admin listener.
#[derive(Debug)]
pub struct Listeners {
    pub client: TcpListener,
    pub admin: Option<TcpListener>,
}

/// Why the listening sockets could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot take the inherited sockets (LISTEN_FDS): {0}")]
    Inherited(std::io::Error),
    #[error("cannot listen on {address}: {source} (is another process listening there?)")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

impl Listeners {
    /// Binds `server.listen` and, if set, `admin.listen` (port 0 picks a free port).
    pub fn bind(config: &Config) -> Result<Listeners, ListenError> {
        Ok(Listeners {
            client: bind(config.server.listen)?,
            admin: config.admin.listen.map(bind).transpose()?,
        })
    }

    /// The sockets a predecessor or systemd passed in, else [`Listeners::bind`]. An admin
    /// socket that was not passed in (a systemd unit with the client's only) is bound from
    /// `admin.listen`, if set.
    pub fn inherited_or_bound(config: &Config) -> Result<Listeners, ListenError> {
        let Some(inherited) = handover::inherited_listeners().map_err(ListenError::Inherited)?
        else {
            return Listeners::bind(config);
        };
        let admin = match inherited.admin {
            Some(admin) => Some(admin),
            None => config.admin.listen.map(bind).transpose()?,
        };
        Ok(Listeners {
            client: inherited.client,
            admin,
        })
    }

    /// Copies of both sockets (for a successor, which gets them as its inherited ones).
    pub fn duplicate(&self) -> std::io::Result<Listeners> {
        Ok(Listeners {
            client: self.client.try_clone()?,
            admin: self
                .admin
                .as_ref()
                .map(TcpListener::try_clone)
                .transpose()?,
        })
    }
}

fn bind(address: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(address).map_err(|source| ListenError::Bind { address, source })
}
