//! TLS between the host and its server database, on servers of the test's own (the shared
//! ones must not be reconfigured): a private PostgreSQL and a private MariaDB that take TLS
//! connections only, with a certificate this file makes ([`ServerTls`]), and each without TLS.
//!
//! A host must serve (a login and a purchase) over `sslmode=require` / `ssl-mode=REQUIRED`
//! and over the verifying modes given the CA that signed the server's certificate; given
//! another CA it must refuse to start, and so must a mode that requires TLS against a server
//! without it; each refusal names the URL without its password, the reason, and the setting
//! to change. The servers refuse connections without TLS, so a host that serves spoke TLS.
//!
//! Without the `openssl` command (to make the certificates) the tests are skipped the way
//! `databases.rs` skips, or fail under `GAME_TEST_REQUIRE_DATABASES=1`.

use crate::databases::{databases_required, report_skipped};
use crate::harness::{test_logger, Dirs, TestHost, DEMO_MODULES};
use crate::private_mariadb::PrivateMariaDb;
use crate::private_postgres::{which, PrivatePostgres};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;
use testkit::in_process::InProcessHost;

/// The password put in the URLs of the refusals, which no message may show. (The private
/// servers do not ask for one: PostgreSQL trusts, MariaDB's root has none, and the refusals
/// come before authentication.)
const PASSWORD: &str = "s3cret";

/// A CA, a server certificate it signed for 127.0.0.1 and localhost, and a second CA that
/// signed nothing; made by the `openssl` command, valid for two days.
pub struct ServerTls {
    dir: TempDir,
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// A CA that did not.
    pub other_ca: PathBuf,
}

impl ServerTls {
    /// New certificates; `None` if the test must be skipped (no `openssl`).
    pub fn make() -> Option<ServerTls> {
        if which("openssl").is_none() {
            let why = "no `openssl` command to make the test's certificates";
            assert!(!databases_required(), "database TLS tests: {why}");
            report_skipped("database TLS", why);
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let at = |name: &str| dir.path().join(name);
        for (name, subject) in [("ca", "game-host test CA"), ("other-ca", "another CA")] {
            openssl(
                dir.path(),
                &[
                    "req",
                    "-x509",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={subject}"),
                ]
                .into_iter()
                .chain(new_key(&format!("{name}.key")))
                .chain(["-out", &format!("{name}.pem")])
                .chain(["-addext", "basicConstraints=critical,CA:TRUE"])
                .chain(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .collect::<Vec<_>>(),
            );
        }
        openssl(
            dir.path(),
            &["req", "-subj", "/CN=localhost", "-out", "server.csr"]
                .into_iter()
                .chain(new_key("server.key"))
                .collect::<Vec<_>>(),
        );
        // What rustls (webpki) checks of a server's certificate: the names, not a CA, and
        // made for a TLS server.
        std::fs::write(
            at("server.ext"),
            "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n\
             keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
        )
        .expect("write server.ext");
        openssl(
            dir.path(),
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        Some(ServerTls {
            ca: at("ca.pem"),
            other_ca: at("other-ca.pem"),
            dir,
        })
    }

    /// Copies the server's certificate and key into `dir`, owned by `owner` (the server's OS
    /// user, when it is not this process's), the key readable by it alone (PostgreSQL insists);
    /// returns their paths.
    pub fn install(&self, dir: &Path, owner: Option<(u32, u32)>) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
        for (from, to) in [("server.pem", &cert), ("server.key", &key)] {
            std::fs::copy(self.dir.path().join(from), to).expect("copy the server's certificate");
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(to, Some(uid), Some(gid)).expect("chown");
            }
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        (cert, key)
    }
}

/// openssl's arguments for a new P-256 key, unencrypted, written to `file`.
fn new_key(file: &str) -> [&str; 7] {
    [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        file,
    ]
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A host on `url` serves: a login, then a purchase that writes gold and items.
async fn serves_over(url: &str, account: &str) {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let host = TestHost::start_in(dirs, |config| config.store.url = url.to_owned()).await;
    let (_, token) = host.login(account).await;
    host.ok(&token, "1103", json!({ "id": "potion", "count": 1 }))
        .await;
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(
        (record["gold"].as_i64(), record["items"]["potion"].as_i64()),
        (Some(950), Some(1)),
        "over {url}: {record}"
    );
    host.stop().await;
}

/// Why a host on `url` does not start; fails if it starts. Checks that the message names the
/// URL without its password.
async fn refused(url: &str) -> String {
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.store.url = url.to_owned();
    config.store.connect_timeout_ms = 10_000;
    let Err(e) = InProcessHost::start(config, host::Deps::new(test_logger())).await else {
        panic!("a host started on {url}");
    };
    let message = format!("{e:#}");
    eprintln!("refused as it should be: {message}");
    let shown = url.replace(PASSWORD, "***");
    assert!(message.contains(&shown), "names {shown}: {message}");
    assert!(!message.contains(PASSWORD), "shows the password: {message}");
    message
}

fn assert_says(message: &str, what: &[&str]) {
    for part in what {
        assert!(message.contains(part), "says `{part}`: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serves_over_tls_and_refuses_a_certificate_its_ca_did_not_sign() {
    let Some(tls) = ServerTls::make() else { return };
    let Some(postgres) = PrivatePostgres::start_tls(&tls).await else {
        return;
    };
    let url = postgres.create_database("game").await;
    serves_over(&format!("{url}?sslmode=require"), "required").await;
    let ca = tls.ca.display();
    serves_over(
        &format!("{url}?sslmode=verify-full&sslrootcert={ca}"),
        "verified",
    )
    .await;

    let with_password = url.replace("postgres@", &format!("postgres:{PASSWORD}@"));
    let other = tls.other_ca.display();
    let message = refused(&format!(
        "{with_password}?sslmode=verify-full&sslrootcert={other}"
    ))
    .await;
    assert_says(
        &message,
        &["UnknownIssuer", "not signed by a CA", "`sslrootcert=`"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_tls_refuses_sslmode_require() {
    let Some(postgres) = PrivatePostgres::start().await else {
        return;
    };
    let url = postgres.create_database("game").await;
    let with_password = url.replace("postgres@", &format!("postgres:{PASSWORD}@"));
    let message = refused(&format!("{with_password}?sslmode=require")).await;
    assert_says(
        &message,
        &["server does not support TLS", "`sslmode=`", "ssl = on"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_serves_over_tls_and_refuses_a_certificate_its_ca_did_not_sign() {
    let Some(tls) = ServerTls::make() else { return };
    let Some(mariadb) = PrivateMariaDb::start(Some(&tls)).await else {
        return;
    };
    mariadb.create_database("game", "ssl-mode=REQUIRED").await;
    let ca = tls.ca.display();
    for (params, account) in [
        ("ssl-mode=REQUIRED".to_owned(), "required"),
        (format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"), "ca-verified"),
        (format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"), "verified"),
    ] {
        serves_over(&mariadb.url("game", &params), account).await;
    }

    let other = tls.other_ca.display();
    let url = mariadb.url("game", &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={other}"));
    let with_password = url.replace("root@", &format!("root:{PASSWORD}@"));
    let message = refused(&with_password).await;
    assert_says(
        &message,
        &["UnknownIssuer", "not signed by a CA", "`ssl-ca=`"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_without_tls_refuses_ssl_mode_required() {
    let Some(mariadb) = PrivateMariaDb::start(None).await else {
        return;
    };
    mariadb.create_database("game", "").await;
    let url = mariadb.url("game", "ssl-mode=REQUIRED");
    let message = refused(&url.replace("root@", &format!("root:{PASSWORD}@"))).await;
    assert_says(
        &message,
        &["server does not support TLS", "`ssl-mode=`", "ssl_cert"],
    );
}
