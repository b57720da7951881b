use super::*;
use crate::abi::{HostServices, HostServices_TO, LogLevel};
use crate::authoring::{refuse, RefusalCode, Reply};
use abi_stable::sabi_trait::TD_Opaque;
use serde::Deserialize;
use serde_json::json;

/// Host services for these tests: a fixed clock, a config, and the lines logged.
#[derive(Default)]
struct Services {
    config: String,
    logs: std::sync::Mutex<Vec<(LogLevel, String)>>,
}

impl HostServices for Services {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        self.logs
            .lock()
            .unwrap()
            .push((level, message.as_str().to_owned()));
    }
    fn now_millis(&self) -> i64 {
        86_400_000 * 3 + 1
    }
    fn config_json(&self) -> RString {
        self.config.as_str().into()
    }
}

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
    init: Some(init_from_config),
    shutdown: None,
};

const PLAYER: &str =
    r#"{"player_id":"p","name":"n","head_img":"","gold":10,"diamond":0,"items":{}}"#;

fn call(services: &Services, cmd: &str, data: &str) -> CommandOutcome {
    let host = HostServices_TO::from_ptr(services, TD_Opaque);
    let call = CommandCall {
        cmd: RStr::from_str(cmd),
        data: RStr::from_str(data),
        player: RStr::from_str(PLAYER),
        module_data: RStr::from_str("{}"),
    };
    handle(&DEF, host, call)
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
        } => {
            assert_eq!(data.as_str(), r#"{"day":3,"gold":10}"#);
            assert!(player.is_none() && module_data.is_none());
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
    };
    assert!(matches!(
        handle(&DEF, host, call),
        CommandOutcome::Failed { .. }
    ));
}

#[test]
fn init_reads_config_and_reports_errors_and_panics() {
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

// Saved data across schemas: a module at schema 3 whose data was `{"count": n}` at schema 1,
// `{"counts": {"total": n}}` at 2, and is `{"total": n, "bumps": b}` at 3.

#[derive(Debug, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountV1 {
    count: u32,
}
#[derive(Debug, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountV2 {
    counts: Totals,
}
#[derive(Debug, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Totals {
    total: u32,
}
#[derive(Debug, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CountV3 {
    total: u32,
    bumps: u32,
}

fn up_from_1(old: CountV1) -> Result<CountV2, String> {
    Ok(CountV2 {
        counts: Totals { total: old.count },
    })
}
fn down_to_1(new: CountV2) -> Result<CountV1, String> {
    Ok(CountV1 {
        count: new.counts.total,
    })
}
/// A step on bare JSON: refuses totals over 1000, to show a step that fails.
fn up_from_2(old: Value) -> Result<Value, String> {
    let total = old["counts"]["total"].as_u64().unwrap_or(0);
    if total > 1000 {
        return Err(format!("a total of {total} is too large"));
    }
    Ok(json!({ "total": total, "bumps": 0 }))
}
fn down_to_2(new: Value) -> Result<Value, String> {
    Ok(json!({ "counts": { "total": new["total"] } }))
}
fn bump(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let mut saved: CountV3 = ctx.saved();
    saved.total += 1;
    saved.bumps += 1;
    ctx.save(&saved);
    Ok(json!({ "total": saved.total, "bumps": saved.bumps }))
}
fn peek(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    let saved: CountV3 = ctx.saved();
    Ok(json!({ "total": saved.total }))
}
fn save_a_schema_field(ctx: &mut Ctx<'_>, _data: Value) -> Reply {
    ctx.save(&json!({ "$schema": 1 }));
    Ok(json!({}))
}

static AT_3: ModuleDef = ModuleDef {
    name: "counter",
    prefix: "78",
    version: "3.0.0",
    commands: &[
        ("7801", &Typed::new(bump)),
        ("7803", &Typed::new(peek)),
        ("7805", &Typed::new(save_a_schema_field)),
    ],
    refusals: &[],
    bad_request: crate::BAD_REQUEST,
    schema: 3,
    migrations: &[
        (1, &Steps::new(up_from_1, down_to_1)),
        (2, &Steps::new(up_from_2, down_to_2)),
    ],
    init: None,
    shutdown: None,
};

fn call_at_3(cmd: &str, module_data: &str) -> CommandOutcome {
    let services = Services::default();
    let host = HostServices_TO::from_ptr(&services, TD_Opaque);
    let call = CommandCall {
        cmd: RStr::from_str(cmd),
        data: RStr::from_str("{}"),
        player: RStr::from_str(PLAYER),
        module_data: RStr::from_str(module_data),
    };
    handle(&AT_3, host, call)
}

/// The reply and the saved data written (`None`: nothing written) of a call that succeeded.
fn done(outcome: CommandOutcome) -> (Value, Option<Value>) {
    match outcome {
        CommandOutcome::Done {
            data, module_data, ..
        } => (
            serde_json::from_str(&data).unwrap(),
            module_data
                .into_option()
                .map(|text| serde_json::from_str(&text).unwrap()),
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn describe_lists_the_schema_and_the_migrations() {
    let info = describe(&AT_3);
    assert_eq!(info.schema, 3);
    assert_eq!(info.migrations.as_slice(), [1, 2]);
    assert_eq!(
        (describe(&DEF).schema, describe(&DEF).migrations.len()),
        (1, 0)
    );
}

#[test]
fn older_saved_data_is_upgraded_on_read_and_stored_at_the_new_schema_on_write() {
    // Unstamped data is of schema 1.
    let (reply, written) = done(call_at_3("7801", r#"{"count":7}"#));
    assert_eq!(reply, json!({ "total": 8, "bumps": 1 }));
    assert_eq!(
        written,
        Some(json!({ "total": 8, "bumps": 1, "$schema": 3 }))
    );
    let (reply, _) = done(call_at_3("7801", r#"{"counts":{"total":4},"$schema":2}"#));
    assert_eq!(reply, json!({ "total": 5, "bumps": 1 }));
    let (reply, _) = done(call_at_3("7801", r#"{"total":5,"bumps":1,"$schema":3}"#));
    assert_eq!(reply, json!({ "total": 6, "bumps": 2 }));
}

#[test]
fn a_read_only_command_reads_upgraded_data_and_writes_nothing() {
    let (reply, written) = done(call_at_3("7803", r#"{"count":7}"#));
    assert_eq!((reply, written), (json!({ "total": 7 }), None));
}

#[test]
fn nothing_saved_is_of_every_schema_and_needs_no_migration() {
    let (reply, written) = done(call_at_3("7801", "{}"));
    assert_eq!(reply, json!({ "total": 1, "bumps": 1 }));
    assert_eq!(
        written,
        Some(json!({ "total": 1, "bumps": 1, "$schema": 3 }))
    );
}

#[test]
fn a_module_at_schema_1_stores_its_data_unstamped() {
    let services = Services::default();
    let (_, written) = done(call(&services, "7703", "{}"));
    assert_eq!(written, Some(json!({ "earned": true })));
}

/// The message of a call that failed.
fn failure(outcome: CommandOutcome) -> String {
    match outcome {
        CommandOutcome::Failed { msg } => msg.into_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn data_a_migration_cannot_read_or_refuses_fails_the_command_saying_which_step() {
    let msg = failure(call_at_3("7801", r#"{"count":"seven"}"#));
    assert!(
        msg.contains("upgrading saved data from schema 1")
            && msg.contains("`count`: invalid type: string"),
        "{msg}"
    );
    let msg = failure(call_at_3(
        "7801",
        r#"{"counts":{"total":5000},"$schema":2}"#,
    ));
    assert!(
        msg.contains("from schema 2") && msg.contains("a total of 5000 is too large"),
        "{msg}"
    );
}

#[test]
fn data_of_a_newer_schema_fails_the_command_and_says_what_to_serve() {
    let msg = failure(call_at_3("7803", r#"{"total":1,"$schema":4}"#));
    assert!(
        msg.contains("schema 4") && msg.contains("newer version of module `counter`"),
        "{msg}"
    );
    let msg = failure(call_at_3("7803", r#"{"total":1,"$schema":"x"}"#));
    assert!(msg.contains("not a schema version"), "{msg}");
}

#[test]
fn a_handler_may_not_save_the_schema_key() {
    let msg = failure(call_at_3("7805", "{}"));
    assert!(msg.contains("`$schema`"), "{msg}");
}

#[test]
fn migrate_goes_down_as_well_as_up() {
    let v3 = json!({ "total": 9, "bumps": 0 });
    let Value::Object(v3) = v3 else {
        unreachable!()
    };
    let v1 = saved_schema::migrate(&AT_3, v3.clone(), 3, 1).unwrap();
    assert_eq!(Value::Object(v1.clone()), json!({ "count": 9 }));
    assert_eq!(saved_schema::migrate(&AT_3, v1, 1, 3).unwrap(), v3);
}
