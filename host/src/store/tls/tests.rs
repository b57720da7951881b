//! The CA file check and the advice, on errors built as sqlx builds them.

use super::*;
use std::path::Path;

fn url(text: &str) -> DatabaseUrl {
    DatabaseUrl::parse(text, Path::new("var/data")).unwrap()
}

/// A failed certificate check as sqlx 0.8.6 returns it: the rustls error in an I/O error.
fn certificate_error(error: CertificateError) -> sqlx::Error {
    let rustls = rustls::Error::InvalidCertificate(error);
    sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, rustls))
}

#[test]
fn a_ca_file_that_cannot_be_read_is_refused_naming_it_and_the_setting() {
    let text = "postgres://game:s3cret@db/game?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem";
    let err = check_ca_file(&url(text), Backend::Postgres)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    assert!(err.contains("`sslrootcert=`"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let text = format!(
        "mysql://game:s3cret@db/game?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        not_pem.display()
    );
    let err = check_ca_file(&url(&text), Backend::MySql)
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds no PEM certificate"), "{err}");
    assert!(err.contains("`ssl-ca=`"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn no_ca_file_or_inline_pem_needs_no_file() {
    check_ca_file(
        &url("postgres://db/game?sslmode=require"),
        Backend::Postgres,
    )
    .unwrap();
    let inline = "postgres://db/game?sslrootcert=-----BEGIN%20CERTIFICATE-----x";
    check_ca_file(&url(inline), Backend::Postgres).unwrap();
}

#[test]
fn a_server_without_tls_is_told_with_the_setting_and_how_to_turn_it_on() {
    let e = sqlx::Error::Tls("server does not support TLS".into());
    let shown = describe(&e, Backend::MySql);
    assert!(shown.contains("server does not support TLS"), "{shown}");
    assert!(
        shown.contains("`ssl-mode=`") && shown.contains("ssl_cert"),
        "{shown}"
    );
    let shown = describe(&e, Backend::Postgres);
    assert!(
        shown.contains("`sslmode=`") && shown.contains("ssl = on"),
        "{shown}"
    );
}

#[test]
fn a_certificate_that_does_not_verify_says_which_setting_to_check() {
    let shown = describe(
        &certificate_error(CertificateError::UnknownIssuer),
        Backend::Postgres,
    );
    assert!(shown.contains("UnknownIssuer"), "the reason: {shown}");
    assert!(shown.contains("`sslrootcert=`"), "{shown}");
    let shown = describe(
        &certificate_error(CertificateError::NotValidForName),
        Backend::MySql,
    );
    assert!(shown.contains("ssl-mode=VERIFY_CA"), "{shown}");
    let shown = describe(
        &certificate_error(CertificateError::Expired),
        Backend::MySql,
    );
    assert!(shown.contains("renew"), "{shown}");
}

#[test]
fn other_failures_get_no_tls_advice() {
    let e = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    assert_eq!(describe(&e, Backend::Postgres), e.to_string());
}

fn parsed(text: &str) -> url::Url {
    url::Url::parse(text).unwrap()
}

#[test]
fn a_database_on_this_machine_is_reached_without_tls_unless_the_url_asks_for_it() {
    for (text, backend, connects_with) in [
        (
            "postgres://game@127.0.0.1:5432/game",
            Backend::Postgres,
            "postgres://game@127.0.0.1:5432/game?sslmode=disable",
        ),
        (
            "postgres://game@localhost/game?application_name=a",
            Backend::Postgres,
            "postgres://game@localhost/game?application_name=a&sslmode=disable",
        ),
        (
            "mysql://root@[::1]:3306/game",
            Backend::MySql,
            "mysql://root@[::1]:3306/game?ssl-mode=DISABLED",
        ),
        (
            "mysql://root@127.0.0.2/game",
            Backend::MySql,
            "mysql://root@127.0.0.2/game?ssl-mode=DISABLED",
        ),
        // Asked for: kept, on loopback too, in either spelling.
        (
            "postgres://game@127.0.0.1/game?sslmode=require",
            Backend::Postgres,
            "postgres://game@127.0.0.1/game?sslmode=require",
        ),
        (
            "mysql://root@localhost/game?ssl-mode=PREFERRED",
            Backend::MySql,
            "mysql://root@localhost/game?ssl-mode=PREFERRED",
        ),
        (
            "postgres://game@127.0.0.1/game?ssl-mode=prefer",
            Backend::Postgres,
            "postgres://game@127.0.0.1/game?ssl-mode=prefer",
        ),
        // Another machine: sqlx's default (encrypt when the server can).
        (
            "postgres://game@db.internal/game",
            Backend::Postgres,
            "postgres://game@db.internal/game",
        ),
        (
            "mysql://root@10.0.0.7/game",
            Backend::MySql,
            "mysql://root@10.0.0.7/game",
        ),
        // PostgreSQL's host= wins over the URL's host.
        (
            "postgres://game@localhost/game?host=db.internal",
            Backend::Postgres,
            "postgres://game@localhost/game?host=db.internal",
        ),
        // sqlx-mysql takes no host= parameter: the URL's host decides.
        (
            "mysql://root@localhost/game?host=db.internal",
            Backend::MySql,
            "mysql://root@localhost/game?host=db.internal&ssl-mode=DISABLED",
        ),
    ] {
        assert_eq!(
            connect_text(&parsed(text), backend),
            connects_with,
            "{text}"
        );
    }
}
