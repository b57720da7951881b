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

/// The envelope's rules for any input, not only the examples above. Seed-stable: the same
/// cases run every time (`PROPTEST_CASES` changes how many), and a failure is not saved to a
/// file.
mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{FailurePersistence, RngSeed};
    use serde_json::json;

    fn config() -> ProptestConfig {
        let defaults = ProptestConfig::default();
        ProptestConfig {
            cases: std::env::var_os("PROPTEST_CASES").map_or(256, |_| defaults.cases),
            rng_seed: RngSeed::Fixed(0x6a6d_6873_7431),
            failure_persistence: None::<Box<dyn FailurePersistence>>,
            ..defaults
        }
    }

    /// Any JSON value, nested up to four levels, with the envelope's keys among the object
    /// keys so that near-misses are common.
    fn json_value() -> impl Strategy<Value = Value> {
        let float = any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from);
        nested(prop_oneof![scalar(), float].boxed())
    }

    /// JSON values whose text reads back as the same value: no floats, which serde_json
    /// parses to the nearest double only with its `float_roundtrip` feature.
    fn exact_json_value() -> impl Strategy<Value = Value> {
        nested(scalar().boxed())
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[0-9]{3,5}".prop_map(Value::from),
            "[A-Za-z0-9_. ü-]{0,66}".prop_map(Value::from),
        ]
    }

    fn nested(leaf: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("cmd".to_owned()),
            Just("data".to_owned()),
            Just("account".to_owned()),
            Just("name".to_owned()),
            Just("head_img".to_owned()),
            any::<String>(),
        ]
    }

    /// A JSON object that reads back as itself: what a command's `data` may be.
    fn exact_json_object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::vec((key(), exact_json_value()), 0..6)
            .prop_map(|pairs| pairs.into_iter().collect())
    }

    /// Strings that are almost a command: wrong length, a non-ASCII digit, a sign, spaces.
    fn not_a_cmd() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{0,3}",
            "[0-9]{5,8}",
            "[0-9]{0,3}[^0-9][0-9]{0,3}",
            "[٠-٩０-９]{4}",
            "[ +-][0-9]{3,4}",
            "[0-9]{4}[ \n\t]",
            any::<String>(),
        ]
        .prop_filter("not four ASCII digits", |s| !is_cmd(s))
    }

    /// PROTOCOL.md's definition, written independently of `Cmd::parse`.
    fn is_cmd(text: &str) -> bool {
        text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit())
    }

    /// PROTOCOL.md's `account`: 1 to 64 characters of `[A-Za-z0-9_.-]`.
    fn is_account(value: &Value) -> bool {
        value.as_str().is_some_and(|a| {
            (1..=64).contains(&a.chars().count())
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
    }

    fn optional_string(object: &Map<String, Value>, key: &str, max_chars: usize) -> bool {
        object
            .get(key)
            .is_none_or(|v| v.as_str().is_some_and(|s| s.chars().count() <= max_chars))
    }

    fn assert_bad_request(error: ApiError) -> Result<(), TestCaseError> {
        prop_assert_eq!(error.ret(), -2);
        prop_assert_eq!(error.status(), 400);
        prop_assert!(!error.to_string().is_empty());
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_four_digits_are_a_command_whose_reply_is_plus_one(n in 0u32..=9999) {
            let text = format!("{n:04}");
            let cmd = Cmd::parse(&text).expect("four digits parse");
            prop_assert_eq!(cmd.as_str(), text.as_str());
            prop_assert_eq!(cmd.prefix(), &text[..2]);
            let reply = cmd.reply();
            prop_assert_eq!(reply.parse::<u32>().unwrap(), n + 1);
            if n < 9999 {
                prop_assert_eq!(Cmd::parse(&reply).map(|r| r.to_string()), Some(reply.clone()));
            }
            let body = json!({ "cmd": text }).to_string();
            prop_assert_eq!(LogicRequest::parse(body.as_bytes()).unwrap().cmd, cmd);
        }

        #[test]
        fn a_cmd_that_is_not_four_ascii_digits_is_refused(text in not_a_cmd()) {
            prop_assert_eq!(Cmd::parse(&text), None);
            let body = json!({ "cmd": text, "data": {} }).to_string();
            let error = LogicRequest::parse(body.as_bytes()).unwrap_err();
            prop_assert!(error.to_string().contains("`cmd`"), "{}", error);
            assert_bad_request(error)?;
        }

        #[test]
        fn a_cmd_that_is_not_a_string_is_refused(
            value in json_value().prop_filter("not a string", |v| !v.is_string()),
        ) {
            let body = json!({ "cmd": value }).to_string();
            let error = LogicRequest::parse(body.as_bytes()).unwrap_err();
            prop_assert!(error.to_string().contains("`cmd`"), "{}", error);
            assert_bad_request(error)?;
        }

        #[test]
        fn data_that_is_not_an_object_is_refused(
            cmd in "[0-9]{4}",
            data in json_value().prop_filter("not an object", |v| !v.is_object()),
        ) {
            let body = json!({ "cmd": cmd, "data": data }).to_string();
            let error = LogicRequest::parse(body.as_bytes()).unwrap_err();
            prop_assert!(error.to_string().contains("`data`"), "{}", error);
            assert_bad_request(error)?;
        }

        #[test]
        fn logic_requests_round_trip(
            cmd in "[0-9]{4}",
            data in exact_json_object(),
            extra in prop::collection::vec(("[a-z_]{1,8}", exact_json_value()), 0..3),
        ) {
            let mut body: Map<String, Value> = extra.into_iter().collect();
            body.insert("cmd".into(), json!(cmd));
            body.insert("data".into(), Value::Object(data.clone()));
            let parsed = LogicRequest::parse(Value::Object(body).to_string().as_bytes()).unwrap();
            prop_assert_eq!(parsed.cmd.as_str(), cmd.as_str());
            prop_assert_eq!(parsed.data, data);
        }

        #[test]
        fn login_requests_round_trip(
            account in "[A-Za-z0-9_.-]{1,64}",
            name in prop::option::of(prop::collection::vec(any::<char>(), 0..=MAX_NAME_CHARS)),
            head_img in prop::option::of(
                prop::collection::vec(any::<char>(), 0..=MAX_HEAD_IMG_CHARS)
            ),
        ) {
            let name = name.map(String::from_iter);
            let head_img = head_img.map(String::from_iter);
            let mut body = json!({ "account": account });
            if let Some(name) = &name {
                body["name"] = json!(name);
            }
            if let Some(head_img) = &head_img {
                body["head_img"] = json!(head_img);
            }
            let parsed = LoginRequest::parse(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(parsed, LoginRequest { account, name, head_img });
        }

        #[test]
        fn an_account_is_accepted_exactly_when_protocol_md_allows_it(
            account in "[A-Za-z0-9_.\\- +/:@ü٣]{0,70}",
        ) {
            let body = json!({ "account": account }).to_string();
            match LoginRequest::parse(body.as_bytes()) {
                Ok(login) => {
                    prop_assert!(is_account(&json!(account)), "accepted {:?}", account);
                    prop_assert_eq!(login.account, account);
                }
                Err(error) => {
                    prop_assert!(!is_account(&json!(account)), "refused {:?}", account);
                    assert_bad_request(error)?;
                }
            }
        }

        #[test]
        fn too_long_login_fields_are_refused(
            c in any::<char>(),
            over in 1..=16usize,
        ) {
            let account = c.to_string().repeat(MAX_ACCOUNT_CHARS + over);
            let name = c.to_string().repeat(MAX_NAME_CHARS + over);
            let head_img = c.to_string().repeat(MAX_HEAD_IMG_CHARS + over);
            for body in [
                json!({ "account": account }),
                json!({ "account": "ok", "name": name }),
                json!({ "account": "ok", "head_img": head_img }),
            ] {
                assert_bad_request(LoginRequest::parse(body.to_string().as_bytes()).unwrap_err())?;
            }
        }

        /// Any JSON value is accepted exactly when PROTOCOL.md's rules say so, and refused
        /// with -2 otherwise; never a panic.
        #[test]
        fn any_json_is_parsed_by_the_protocol_rules(value in json_value()) {
            let body = value.to_string();
            let object = value.as_object();
            let logic_ok = object.is_some_and(|o| {
                o.get("cmd").and_then(Value::as_str).is_some_and(is_cmd)
                    && o.get("data").is_none_or(Value::is_object)
            });
            match LogicRequest::parse(body.as_bytes()) {
                Ok(request) => {
                    prop_assert!(logic_ok, "accepted {}", body);
                    let want = object.and_then(|o| o.get("data")).cloned().unwrap_or(json!({}));
                    prop_assert_eq!(Value::Object(request.data), want);
                }
                Err(error) => {
                    prop_assert!(!logic_ok, "refused {}: {}", body, error);
                    assert_bad_request(error)?;
                }
            }
            let login_ok = object.is_some_and(|o| {
                o.get("account").is_some_and(is_account)
                    && optional_string(o, "name", MAX_NAME_CHARS)
                    && optional_string(o, "head_img", MAX_HEAD_IMG_CHARS)
            });
            match LoginRequest::parse(body.as_bytes()) {
                Ok(_) => prop_assert!(login_ok, "accepted {}", body),
                Err(error) => {
                    prop_assert!(!login_ok, "refused {}: {}", body, error);
                    assert_bad_request(error)?;
                }
            }
        }

        /// Bytes, and valid bodies with bytes changed, never panic either parser: each is a
        /// request or -2.
        #[test]
        fn any_bytes_are_a_request_or_refused(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let mut edited = br#"{"cmd":"1103","data":{"id":"sword","count":2},"account":"a"}"#.to_vec();
            for (at, byte) in edits {
                let at = at.index(edited.len());
                edited[at] = byte;
            }
            for body in [&bytes, &edited] {
                if let Err(error) = LogicRequest::parse(body) {
                    assert_bad_request(error)?;
                }
                if let Err(error) = LoginRequest::parse(body) {
                    assert_bad_request(error)?;
                }
            }
        }
    }
}
