//! TLS to a server database, as `store.url` asks for it: `sslmode=` and `sslrootcert=` on
//! PostgreSQL, `ssl-mode=` and `ssl-ca=` on MariaDB/MySQL. sqlx does the TLS (rustls); this
//! file checks the CA file before the first connection and turns a failed TLS setup into a
//! reason and what to change. It does not parse the modes: sqlx does, and says so if one is
//! wrong.

use super::server::Backend;
use super::{DatabaseUrl, StoreError};
use rustls::CertificateError;
use std::error::Error as _;

/// The TLS parameters of one backend's URLs, as sqlx reads them.
struct Names {
    /// The mode's parameter.
    mode: &'static str,
    /// The CA file's parameter.
    ca: &'static str,
    /// Every spelling sqlx takes for the CA file (sqlx-postgres and sqlx-mysql 0.8.6,
    /// `options/parse.rs`).
    ca_spellings: &'static [&'static str],
    /// The mode that checks the CA but not the host name.
    verify_ca: &'static str,
    /// How to turn TLS on in that server.
    server_tls: &'static str,
}

const POSTGRES: Names = Names {
    mode: "sslmode",
    ca: "sslrootcert",
    ca_spellings: &["sslrootcert", "ssl-root-cert", "ssl-ca"],
    verify_ca: "sslmode=verify-ca",
    server_tls: "ssl = on with ssl_cert_file and ssl_key_file in postgresql.conf",
};

const MYSQL: Names = Names {
    mode: "ssl-mode",
    ca: "ssl-ca",
    ca_spellings: &["ssl-ca", "sslca"],
    verify_ca: "ssl-mode=VERIFY_CA",
    server_tls: "ssl_cert and ssl_key in the server's [mariadbd] settings",
};

fn names(backend: Backend) -> &'static Names {
    match backend {
        Backend::Postgres => &POSTGRES,
        Backend::MySql => &MYSQL,
    }
}

/// Refuses a CA file named in `url` that cannot be read or holds no PEM certificate: sqlx
/// would only say "No such file or directory" at the first connection, naming no file.
pub(crate) fn check_ca_file(url: &DatabaseUrl, backend: Backend) -> Result<(), StoreError> {
    let (DatabaseUrl::Postgres(parsed) | DatabaseUrl::MySql(parsed)) = url else {
        return Ok(());
    };
    let spellings = names(backend).ca_spellings;
    for (key, value) in parsed.query_pairs() {
        // sqlx takes the PEM text itself too.
        if !spellings.contains(&key.as_ref()) || value.trim_start().starts_with("-----BEGIN") {
            continue;
        }
        let refused = |why: String| {
            StoreError::Unavailable(format!(
                "{url}: {why}: `{key}=` in store.url must be the path of the PEM file of the CA \
                 that signed the database server's certificate"
            ))
        };
        let pem = std::fs::read_to_string(value.as_ref())
            .map_err(|e| refused(format!("cannot read the CA file {value}: {e}")))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(refused(format!("{value} holds no PEM certificate")));
        }
    }
    Ok(())
}

/// The URL the host connects with: `url` itself, except for a database on this machine whose
/// URL names no TLS mode, which gets TLS off (`sslmode=disable`, `ssl-mode=DISABLED`).
///
/// sqlx's default mode (`prefer`, `PREFERRED`, as libpq's) encrypts whenever the server can,
/// and checks no certificate: against a network it keeps out only a passive listener, and on
/// loopback there is none that is not already root on the machine. It costs the host and the
/// database server the encryption of every statement and row, though: 10–15 % of their CPU
/// per `read` request, and as much throughput, for a host and a PostgreSQL sharing a 2-core
/// machine (issue 23, alternating runs with `sslmode=prefer` and without). A URL that asks
/// for TLS (any mode, `PGSSLMODE` too) keeps it, on loopback as anywhere.
pub(crate) fn connect_text(url: &url::Url, backend: Backend) -> String {
    let Names { mode, .. } = names(backend);
    let names_a_mode = url
        .query_pairs()
        .any(|(key, _)| key == "sslmode" || key == "ssl-mode");
    // sqlx-postgres reads PGSSLMODE where the URL says nothing.
    let mode_from_environment =
        backend == Backend::Postgres && std::env::var_os("PGSSLMODE").is_some();
    if names_a_mode || mode_from_environment || !on_this_machine(url, backend) {
        return url.as_str().to_owned();
    }
    let off = match backend {
        Backend::Postgres => "disable",
        Backend::MySql => "DISABLED",
    };
    let mut text = url.clone();
    text.query_pairs_mut().append_pair(mode, off);
    text.into()
}

/// Whether `url`'s server is reached over loopback: `localhost`, `127.0.0.0/8` or `::1`, or
/// no host (sqlx's default, localhost). PostgreSQL's `host=` parameter wins over the URL's
/// host (sqlx-mysql has none); a path there is a Unix socket, which has no TLS to turn off.
fn on_this_machine(url: &url::Url, backend: Backend) -> bool {
    let host_parameter = (backend == Backend::Postgres)
        .then(|| url.query_pairs().find(|(key, _)| key == "host"))
        .flatten()
        .map(|(_, value)| value.into_owned());
    let host = host_parameter.or_else(|| url.host_str().map(str::to_owned));
    let Some(host) = host else {
        return true;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `e`, a failure to connect, with what to change when TLS is why.
pub(crate) fn describe(e: &sqlx::Error, backend: Backend) -> String {
    match advice(e, names(backend)) {
        Some(advice) => format!("{e}: {advice}"),
        None => e.to_string(),
    }
}

/// What to change, if `e` is a TLS failure (or a TLS setting sqlx refused).
fn advice(e: &sqlx::Error, names: &Names) -> Option<String> {
    let Names { mode, ca, .. } = names;
    let reason = e.to_string();
    if let sqlx::Error::Configuration(_) = e {
        return reason.contains("ssl").then(|| {
            format!("check `{mode}=` in store.url (README, \"Several hosts on one database\")")
        });
    }
    if reason.contains("server does not support TLS") {
        return Some(format!(
            "the server offers no TLS and store.url asks for it (`{mode}=`): turn TLS on in the \
             server ({}), or connect without it only on a network you trust",
            names.server_tls
        ));
    }
    let certificate = match rustls_error(e)? {
        rustls::Error::InvalidCertificate(certificate) => certificate,
        _ => return Some(format!("check `{mode}=` and `{ca}=` in store.url")),
    };
    Some(match certificate {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
            "the server's certificate is not signed by a CA this host trusts: set `{ca}=` in \
             store.url to the CA certificate (PEM) that signed it"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate is not for the host named in store.url: connect by a \
                 name or address the certificate lists, or use {} (the CA only)",
                names.verify_ca
            )
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is out of its validity period: renew it on the server".into()
        }
        _ => format!("check the server's certificate against `{mode}=` and `{ca}=` in store.url"),
    })
}

/// The rustls error behind `e`: sqlx hands a failed handshake on as an I/O error that wraps it.
fn rustls_error(e: &sqlx::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        // io::Error's `source` skips the error it wraps: ask for that one directly.
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if let Some(found) = wrapped.and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            return Some(found);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests;
