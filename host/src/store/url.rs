//! Which database a host uses: the `store.url` setting, read, checked, and shown without its
//! password. ([`super::open`] opens it.)

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a `store.url` is refused; each message says what is accepted. None shows a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("sqlite:// needs a file path: sqlite://var/data/game.db")]
    NoSqlitePath,
    #[error("`{shown}` is not a URL ({reason})")]
    NotAUrl { shown: String, reason: String },
    #[error("unknown database `{0}://`: use sqlite://PATH, postgres://USER@HOST/DB or mysql://USER@HOST/DB")]
    UnknownScheme(String),
}

/// A parsed `store.url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative paths are to the working directory), or `""`: the embedded
    /// store in `<data_dir>/game.db`.
    Sqlite(PathBuf),
    /// `postgres://` or `postgresql://`.
    Postgres(url::Url),
    /// `mysql://` or `mariadb://`, for MariaDB and MySQL.
    MySql(url::Url),
}

impl DatabaseUrl {
    /// Reads `text`; `""` is SQLite in `data_dir`. The error says what is accepted.
    pub fn parse(text: &str, data_dir: &Path) -> Result<DatabaseUrl, UrlError> {
        if text.is_empty() {
            return Ok(DatabaseUrl::Sqlite(data_dir.join("game.db")));
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(UrlError::NoSqlitePath);
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        let not_a_url = |e: url::ParseError| UrlError::NotAUrl {
            shown: redact_text(text),
            reason: e.to_string(),
        };
        let parsed = url::Url::parse(text).map_err(not_a_url)?;
        match parsed.scheme() {
            "postgres" | "postgresql" => Ok(DatabaseUrl::Postgres(parsed)),
            "mysql" | "mariadb" => {
                let mut parsed = parsed;
                // sqlx knows MariaDB by MySQL's scheme; both speak the same protocol.
                let text = parsed.as_str().replacen("mariadb://", "mysql://", 1);
                parsed = url::Url::parse(&text).map_err(not_a_url)?;
                Ok(DatabaseUrl::MySql(parsed))
            }
            other => Err(UrlError::UnknownScheme(other.to_owned())),
        }
    }
}

/// Shown with its password replaced, so that it can go in logs, errors and `game-host config`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) | DatabaseUrl::MySql(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `url` with its password (in the user part or a `password=` parameter) replaced by `***`.
fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if shown.query_pairs().any(|(key, _)| key == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// A `store.url` setting as it may be shown: redacted if it parses, else only its scheme.
pub fn redact_text(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => redact(&url),
        Err(_) => match text.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "…".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DatabaseUrl, UrlError> {
        DatabaseUrl::parse(text, Path::new("var/data"))
    }

    #[test]
    fn empty_is_sqlite_in_the_data_dir() {
        assert_eq!(
            parse("").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("var/data/game.db"))
        );
        assert_eq!(
            parse("sqlite:///srv/game.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/srv/game.db"))
        );
    }

    #[test]
    fn passwords_are_never_shown() {
        for text in [
            "postgres://game:s3cret@db.internal:5432/game",
            "mysql://game:s3cret@db.internal/game",
            "mariadb://game:s3cret@db.internal/game",
            "postgres://game@db.internal/game?password=s3cret&sslmode=require",
        ] {
            let url = parse(text).unwrap();
            let shown = url.to_string();
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("db.internal"), "{shown}");
            assert!(!format!("{url:?}").contains("s3cret"));
            assert!(!redact_text(text).contains("s3cret"));
        }
        assert!(matches!(
            parse("mariadb://u@h/db").unwrap(),
            DatabaseUrl::MySql(url) if url.scheme() == "mysql"
        ));
    }

    #[test]
    fn tls_settings_are_kept_and_shown_without_the_password() {
        for (text, settings) in [
            (
                "postgres://game:s3cret@db.internal/game?sslmode=verify-full&sslrootcert=/etc/game/db-ca.pem",
                "sslmode=verify-full&sslrootcert=/etc/game/db-ca.pem",
            ),
            (
                "mariadb://game:s3cret@db.internal/game?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/game/db-ca.pem&password=s3cret",
                "ssl-mode=VERIFY_IDENTITY&ssl-ca=%2Fetc%2Fgame%2Fdb-ca.pem&password=***",
            ),
        ] {
            let url = parse(text).unwrap();
            // What sqlx is given keeps them as written.
            let (DatabaseUrl::Postgres(given) | DatabaseUrl::MySql(given)) = &url else {
                panic!("{text} is a server URL");
            };
            assert!(given.as_str().ends_with(text.split_once('?').unwrap().1), "{given}");
            let shown = url.to_string();
            assert!(shown.ends_with(settings), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn unknown_schemes_say_what_is_accepted() {
        let err = parse("redis://u:s3cret@h/0").unwrap_err().to_string();
        assert!(
            err.contains("postgres://") && err.contains("sqlite://"),
            "{err}"
        );
        let err = parse("not a url s3cret").unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
