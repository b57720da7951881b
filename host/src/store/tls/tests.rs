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
