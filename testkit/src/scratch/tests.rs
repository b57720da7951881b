//! What a scratch database shows of its server's URL, and where the servers are taken to be.

use super::*;

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redacted("mysql://root:secret@127.0.0.1:3306/mysql"),
        "mysql://root:***@127.0.0.1:3306/mysql"
    );
    assert_eq!(
        redacted("postgres://postgres@127.0.0.1:5432/postgres"),
        "postgres://postgres@127.0.0.1:5432/postgres"
    );
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_named_without_its_password() {
    // Nothing listens on port 1.
    let admin = "postgres://game:s3cret@127.0.0.1:1/postgres";
    let error = match ScratchDatabase::create(admin, "game_scratch_never").await {
        Err(ScratchError::Unreachable(why)) => why,
        Err(other) => panic!("not taken as unreachable: {other}"),
        Ok(_) => panic!("a database was made on port 1"),
    };
    assert!(error.contains("game:***@127.0.0.1:1"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

#[test]
fn the_admin_url_is_the_variable_the_default_or_off() {
    let default = DatabaseServer::MySql.default_admin_url();
    let var = DatabaseServer::MySql.variable("GAME_TEST");
    assert_eq!(var, "GAME_TEST_MYSQL");
    let chosen = |value: Option<&str>| chosen(value.map(str::to_owned), &var, default);
    assert_eq!(chosen(None), Ok(default.to_owned()));
    assert_eq!(chosen(Some("")), Ok(default.to_owned()));
    assert_eq!(
        chosen(Some("mysql://u@db:3306/mysql")),
        Ok("mysql://u@db:3306/mysql".to_owned())
    );
    assert_eq!(chosen(Some("off")), Err("GAME_TEST_MYSQL=off".to_owned()));
}
