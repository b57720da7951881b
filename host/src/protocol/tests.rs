use super::*;

fn ret(result: Result<impl std::fmt::Debug, ApiError>) -> i32 {
    result.expect_err("must be refused").ret()
}

#[test]
fn cmd_accepts_exactly_four_digits() {
    assert_eq!(
        Cmd::parse("1201").map(|c| c.prefix().to_owned()),
        Some("12".into())
    );
    for bad in ["", "120", "12011", "12a1", "١٢٠١", " 120", "+120"] {
        assert_eq!(Cmd::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn reply_cmd_is_the_command_plus_one() {
    assert_eq!(Cmd::parse("1201").unwrap().reply(), "1202");
    assert_eq!(Cmd::parse("0009").unwrap().reply(), "0010");
    assert_eq!(Cmd::parse("1099").unwrap().reply(), "1100");
}

#[test]
fn logic_envelope() {
    let ok = LogicRequest::parse(br#"{"cmd":"1103","data":{"id":"sword","count":1}}"#).unwrap();
    assert_eq!(ok.cmd.as_str(), "1103");
    assert_eq!(ok.data["id"], "sword");
    assert!(LogicRequest::parse(br#"{"cmd":"1203"}"#)
        .unwrap()
        .data
        .is_empty());
    for bad in [
        &br#"{"cmd":1203}"#[..],
        br#"{"cmd":"123"}"#,
        br#"{"data":{}}"#,
        br#"{"cmd":"1203","data":[]}"#,
        br#"{"cmd":"1203","data":"x"}"#,
        br#"{"cmd":"1203","data":null}"#,
        br#"["cmd"]"#,
        b"\xff\xfe",
        b"",
        b"{",
    ] {
        assert_eq!(
            ret(LogicRequest::parse(bad)),
            -2,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!(
        r#"{{"cmd":"1203","data":{{"x":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(ret(LogicRequest::parse(deep.as_bytes())), -2);
}

#[test]
fn login_envelope() {
    let ok = LoginRequest::parse(
        br#"{"account":"a.b-c_9","name":"Alice","head_img":"https://x/y.png"}"#,
    )
    .unwrap();
    assert_eq!(ok.account, "a.b-c_9");
    assert_eq!(ok.name.as_deref(), Some("Alice"));
    assert_eq!(
        LoginRequest::parse(br#"{"account":"bob"}"#).unwrap().name,
        None
    );
    let too_long = format!(r#"{{"account":"{}"}}"#, "a".repeat(MAX_ACCOUNT_CHARS + 1));
    for bad in [
        r#"{"account":""}"#,
        r#"{"account":"has space"}"#,
        r#"{"account":"ümlaut"}"#,
        r#"{"account":7}"#,
        r#"{"name":"x"}"#,
        r#"{"account":"ok","name":5}"#,
        r#"{"account":"ok","head_img":{}}"#,
        too_long.as_str(),
    ] {
        assert_eq!(ret(LoginRequest::parse(bad.as_bytes())), -2, "{bad}");
    }
}
