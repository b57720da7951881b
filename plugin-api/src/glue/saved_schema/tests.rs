//! The saved-data schema through the glue's `handle`, as a library call would run it.

use super::super::test_services::{call, Services};
use super::super::{describe, migrate as migrate_entry, ModuleDef, Typed};
use super::{migrate, Steps};
use crate::abi::{CommandOutcome, HostServices_TO};
use crate::authoring::{Ctx, Reply};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RStr;
use serde::Deserialize;
use serde_json::{json, Value};

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
    tables: None,
    init: None,
    shutdown: None,
};

fn call_at_3(cmd: &str, module_data: &str) -> CommandOutcome {
    call(&AT_3, &Services::default(), cmd, "{}", module_data)
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
    let v1 = migrate(&AT_3, v3.clone(), 3, 1).unwrap();
    assert_eq!(Value::Object(v1.clone()), json!({ "count": 9 }));
    assert_eq!(migrate(&AT_3, v1, 1, 3).unwrap(), v3);
}

/// The root module's `migrate` of `stored` to schema `to`, as the host calls it.
fn migrate_at_3(stored: &str, to: u32) -> Result<Value, String> {
    let services = Services::default();
    let host = HostServices_TO::from_ptr(&services, TD_Opaque);
    migrate_entry(&AT_3, host, RStr::from_str(stored), to)
        .into_result()
        .map(|text| serde_json::from_str(&text).unwrap())
        .map_err(|e| e.into_string())
}

#[test]
fn the_migrate_entry_takes_stored_data_to_any_known_schema_stamped_as_stored() {
    let at_3 = migrate_at_3(r#"{"count":4}"#, 3).unwrap();
    assert_eq!(at_3, json!({ "total": 4, "bumps": 0, "$schema": 3 }));
    let at_2 = migrate_at_3(&at_3.to_string(), 2).unwrap();
    assert_eq!(at_2, json!({ "counts": { "total": 4 }, "$schema": 2 }));
    // Schema 1 is stored bare.
    assert_eq!(
        migrate_at_3(&at_2.to_string(), 1).unwrap(),
        json!({ "count": 4 })
    );
    assert_eq!(migrate_at_3("{}", 1).unwrap(), json!({}));
    assert_eq!(migrate_at_3("{}", 3).unwrap(), json!({}));
}

#[test]
fn the_migrate_entry_refuses_schemas_it_does_not_know_and_names_a_failing_step() {
    let newer = migrate_at_3(r#"{"total":1,"$schema":4}"#, 1).unwrap_err();
    assert!(
        newer.contains("of schema 4") && newer.contains("knows schemas 1 to 3"),
        "{newer}"
    );
    let target = migrate_at_3(r#"{"count":1}"#, 5).unwrap_err();
    assert!(target.contains("the target is of schema 5"), "{target}");
    let zero = migrate_at_3(r#"{"count":1}"#, 0).unwrap_err();
    assert!(zero.contains("schema 0"), "{zero}");
    let step = migrate_at_3(r#"{"counts":{"total":5000},"$schema":2}"#, 3).unwrap_err();
    assert!(step.contains("a total of 5000 is too large"), "{step}");
    let text = migrate_at_3("[1]", 2).unwrap_err();
    assert!(text.contains("not a JSON object"), "{text}");
}

fn panicking_up(_old: Value) -> Result<Value, String> {
    panic!("no way up")
}

static PANICS: ModuleDef = ModuleDef {
    name: "panics",
    prefix: "79",
    version: "2.0.0",
    commands: &[("7901", &Typed::new(peek))],
    refusals: &[],
    bad_request: crate::BAD_REQUEST,
    schema: 2,
    migrations: &[(1, &Steps::new(panicking_up, down_to_2))],
    tables: None,
    init: None,
    shutdown: None,
};

#[test]
fn a_panicking_step_is_an_error_of_the_migrate_entry_and_is_logged() {
    let _alone = super::super::test_services::one_panic_at_a_time();
    let services = Services::default();
    let host = HostServices_TO::from_ptr(&services, TD_Opaque);
    let result = migrate_entry(&PANICS, host, RStr::from_str(r#"{"a":1}"#), 2).into_result();
    let msg = result.unwrap_err().into_string();
    assert!(
        msg.contains("a migration step panicked") && msg.contains("no way up"),
        "{msg}"
    );
    let logs = services.logs.lock().unwrap();
    assert!(
        logs.iter().any(|(_, line)| line.contains("no way up")),
        "{logs:?}"
    );
}
