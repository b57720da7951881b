use super::test_services::{self, Services};
use super::*;
use crate::abi::{HostServices_TO, LogLevel};
use crate::authoring::{refuse, RefusalCode, Reply};
use abi_stable::sabi_trait::TD_Opaque;
use serde::Deserialize;
use serde_json::json;

fn read_only(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    Ok(json!({ "gold": ctx.player.gold, "day": ctx.host.today() }))
}
fn earn(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    ctx.player.gold += data["amount"].as_i64().unwrap_or(0);
    ctx.save(&json!({ "earned": true }));
    Ok(json!({}))
}
const SAID_NO: RefusalCode = RefusalCode::new(4, "said_no");
const DOES_NOT_FIT: RefusalCode = RefusalCode::new(5, "does_not_fit");

fn refuse_after_change(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    ctx.player.gold = 0;
    refuse(SAID_NO, "no")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pay {
    amount: u32,
    to: Option<String>,
}

fn pay(ctx: &mut Ctx<'_>, request: Pay) -> Reply {
    ctx.player.gold -= i64::from(request.amount);
    Ok(json!({ "to": request.to }))
}
fn explode(_ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    panic!("exploded with {}", 42)
}
fn init_from_config(host: Host<'_>) -> Result<(), String> {
    let config: Value = host.config()?;
    match config["init"].as_str() {
        Some("fail") => Err("configured to fail".into()),
        Some("panic") => panic!("configured to panic"),
        _ => Ok(()),
    }
}

static DEF: ModuleDef = ModuleDef {
    name: "test",
    prefix: "77",
    version: "1.2.3",
    commands: &[
        ("7701", &Typed::new(read_only)),
        ("7703", &Typed::new(earn)),
        ("7705", &Typed::new(refuse_after_change)),
        ("7707", &Typed::new(explode)),
        ("7709", &Typed::new(pay)),
    ],
    refusals: &[SAID_NO],
    bad_request: DOES_NOT_FIT,
    schema: 1,
    migrations: &[],
    tables: None,
    init: Some(init_from_config),
    shutdown: None,
};

fn call(services: &Services, cmd: &str, data: &str) -> CommandOutcome {
    test_services::call(&DEF, services, cmd, data, "{}")
}

#[test]
fn describe_lists_the_declaration() {
    let info = describe(&DEF);
    assert_eq!(
        (
            info.name.as_str(),
            info.prefix.as_str(),
            info.version.as_str()
        ),
        ("test", "77", "1.2.3")
    );
    let commands: Vec<&str> = info.commands.iter().map(|c| c.as_str()).collect();
    assert_eq!(commands, ["7701", "7703", "7705", "7707", "7709"]);
    let refusals: Vec<(i32, &str)> = info
        .refusals
        .iter()
        .map(|r| (r.code, r.name.as_str()))
        .collect();
    // `bad_request` is listed because a handler (`pay`) takes a typed request.
    assert_eq!(refusals, [(4, "said_no"), (5, "does_not_fit")]);
    assert_eq!((info.schema, info.migrations.len()), (1, 0));
}

#[test]
fn a_module_whose_handlers_take_any_json_lists_no_bad_request() {
    static UNTYPED: ModuleDef = ModuleDef {
        name: "untyped",
        prefix: "78",
        version: "1",
        commands: &[("7801", &Typed::new(read_only))],
        refusals: &[],
        bad_request: crate::BAD_REQUEST,
        schema: 1,
        migrations: &[],
        tables: None,
        init: None,
        shutdown: None,
    };
    assert!(describe(&UNTYPED).refusals.is_empty());
}

#[test]
fn a_bad_request_code_of_the_modules_own_is_listed_even_with_no_typed_handler() {
    // Its handlers may refuse with it themselves (the bank of docs/modules.md does).
    static OWN: ModuleDef = ModuleDef {
        name: "own",
        prefix: "79",
        version: "1",
        commands: &[("7901", &Typed::new(read_only))],
        refusals: &[],
        bad_request: DOES_NOT_FIT,
        schema: 1,
        migrations: &[],
        tables: None,
        init: None,
        shutdown: None,
    };
    let refusals: Vec<(i32, String)> = describe(&OWN)
        .refusals
        .iter()
        .map(|r| (r.code, r.name.to_string()))
        .collect();
    assert_eq!(refusals, [(5, "does_not_fit".to_string())]);
}

#[test]
fn a_typed_request_reaches_its_handler() {
    let services = Services::default();
    match call(&services, "7709", r#"{"amount":3,"to":"bob"}"#) {
        CommandOutcome::Done { data, player, .. } => {
            assert_eq!(data.as_str(), r#"{"to":"bob"}"#);
            assert!(player.unwrap().as_str().contains(r#""gold":7"#));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_request_that_does_not_fit_is_refused_naming_the_field() {
    let services = Services::default();
    for (request, words) in [
        (
            r#"{"amount":"3"}"#,
            "`amount`: invalid type: string \"3\", expected u32",
        ),
        (r#"{"to":"bob"}"#, "missing field `amount`"),
        (r#"{"amount":-1}"#, "`amount`: invalid value"),
        (r#"{"amount":1,"tip":2}"#, "unknown field `tip`"),
        (
            r#""pay""#,
            "invalid type: string \"pay\", expected struct Pay",
        ),
    ] {
        match call(&services, "7709", request) {
            CommandOutcome::Refused { code, msg } => {
                assert_eq!(code, 5, "{request}: {msg}");
                assert!(
                    msg.starts_with("the request does not fit command 7709: ")
                        && msg.contains(words),
                    "{request}: {msg}"
                );
            }
            other => panic!("{request}: {other:?}"),
        }
    }
}

#[test]
fn a_read_only_command_reports_nothing_changed() {
    let services = Services::default();
    match call(&services, "7701", "{}") {
        CommandOutcome::Done {
            data,
            player,
            module_data,
            effects,
        } => {
            assert_eq!(data.as_str(), r#"{"day":3,"gold":10}"#);
            assert!(player.is_none() && module_data.is_none() && effects.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn changes_come_back_as_new_state() {
    let services = Services::default();
    match call(&services, "7703", r#"{"amount":5}"#) {
        CommandOutcome::Done {
            player,
            module_data,
            ..
        } => {
            let player: Player = serde_json::from_str(player.unwrap().as_str()).unwrap();
            assert_eq!(player.gold, 15);
            assert_eq!(module_data.unwrap().as_str(), r#"{"earned":true}"#);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refusal_carries_code_and_message() {
    match call(&Services::default(), "7705", "{}") {
        CommandOutcome::Refused { code, msg } => assert_eq!((code, msg.as_str()), (4, "no")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_command_is_reported() {
    assert!(matches!(
        call(&Services::default(), "7799", "{}"),
        CommandOutcome::UnknownCommand
    ));
}

#[test]
fn a_panic_becomes_a_failure_with_message_and_location_and_is_logged() {
    let _alone = test_services::one_panic_at_a_time();
    let services = Services::default();
    install_panic_hook();
    match call(&services, "7707", "{}") {
        CommandOutcome::Failed { msg } => {
            assert!(msg.as_str().contains("exploded with 42"), "{msg}");
            assert!(msg.as_str().contains("glue/tests.rs"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let logs = services.logs.lock().unwrap();
    assert!(
        logs.iter()
            .any(|(level, line)| *level == LogLevel::Error && line.contains("exploded with 42")),
        "{logs:?}"
    );
}

#[test]
fn unreadable_input_is_a_failure_not_a_panic() {
    let services = Services::default();
    let host = HostServices_TO::from_ptr(&services, TD_Opaque);
    let call = CommandCall {
        cmd: RStr::from_str("7701"),
        data: RStr::from_str("{}"),
        player: RStr::from_str("{\"gold\": \"lots\"}"),
        module_data: RStr::from_str("{}"),
        tables: 0,
        account: RStr::from_str("tester"),
    };
    assert!(matches!(
        handle(&DEF, host, call),
        CommandOutcome::Failed { .. }
    ));
}

#[test]
fn init_reads_config_and_reports_errors_and_panics() {
    let _alone = test_services::one_panic_at_a_time();
    let with = |config: &str| Services {
        config: config.into(),
        ..Services::default()
    };
    let run = |services: &Services| {
        init(&DEF, HostServices_TO::from_ptr(services, TD_Opaque)).into_result()
    };
    assert!(run(&with("{}")).is_ok());
    assert_eq!(
        run(&with(r#"{"init":"fail"}"#)).unwrap_err().as_str(),
        "configured to fail"
    );
    let panicked = run(&with(r#"{"init":"panic"}"#)).unwrap_err();
    assert!(
        panicked
            .as_str()
            .starts_with("init panicked: configured to panic"),
        "{panicked}"
    );
}

#[test]
fn the_library_header_has_the_name_abi_stables_loader_looks_up() {
    // export_module! writes the name as a literal: an attribute takes nothing else.
    let source = include_str!("../lib.rs");
    let literal = format!(
        "#[export_name = \"{}\"]",
        abi_stable::library::ROOT_MODULE_LOADER_NAME
    );
    assert!(source.contains(&literal), "lib.rs has no {literal}");
}

#[test]
fn a_module_at_schema_1_stores_its_data_unstamped() {
    let services = Services::default();
    match call(&services, "7703", "{}") {
        CommandOutcome::Done { module_data, .. } => {
            assert_eq!(module_data.unwrap().as_str(), r#"{"earned":true}"#);
        }
        other => panic!("{other:?}"),
    }
}

fn greet(ctx: &mut Ctx<'_>, data: Value) -> Reply {
    let to = data["to"].as_str().unwrap_or_default().to_owned();
    ctx.push(
        crate::PushTo::account(to).or_refuse(SAID_NO.because("nobody")),
        "hello",
        &json!({ "from": ctx.account() }),
    );
    ctx.join("room");
    if data["refuse"] == json!(true) {
        return refuse(SAID_NO, "changed my mind");
    }
    Ok(json!({}))
}

#[test]
fn pushes_and_group_changes_come_back_only_with_a_success() {
    static PUSHY: ModuleDef = ModuleDef {
        name: "pushy",
        prefix: "76",
        version: "1",
        commands: &[("7601", &Typed::new(greet))],
        refusals: &[SAID_NO],
        bad_request: crate::BAD_REQUEST,
        schema: 1,
        migrations: &[],
        tables: None,
        init: None,
        shutdown: None,
    };
    let services = Services::default();
    let outcome = test_services::call(&PUSHY, &services, "7601", r#"{"to":"bob"}"#, "{}");
    let CommandOutcome::Done { effects, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let effects: crate::effects::Effects =
        serde_json::from_str(effects.into_option().expect("effects").as_str()).unwrap();
    assert_eq!(effects.join, ["room"]);
    let push = &effects.pushes[0];
    // The account the host names in the call reaches the handler.
    assert_eq!(push.data, json!({ "from": "tester" }));
    assert_eq!(
        push.to,
        crate::PushTo::account("bob").or_refuse(SAID_NO.because("nobody"))
    );
    assert!(push.persistent);
    let refused = test_services::call(
        &PUSHY,
        &services,
        "7601",
        r#"{"to":"bob","refuse":true}"#,
        "{}",
    );
    assert!(
        matches!(refused, CommandOutcome::Refused { code: 4, .. }),
        "{refused:?}"
    );
}
