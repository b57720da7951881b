//! Tables through the glue's root-module entries, as the host calls them: read once, kept by
//! id, handed to each command, freed.

use super::super::test_services::{Services, PLAYER};
use super::super::{drop_tables, handle, load_tables, ModuleDef, Reader, Typed};
use crate::abi::{CommandCall, CommandOutcome, HostServices_TO, TableFile};
use crate::authoring::{Ctx, Reply};
use crate::tables::{TableError, Tables};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RSlice, RStr};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Good {
    id: String,
    price: i64,
}

struct Catalogue(Vec<Good>);

fn read_catalogue(tables: &Tables<'_>) -> Result<Catalogue, TableError> {
    let goods: Vec<(u64, Good)> = tables.csv_lines("goods.csv")?;
    for (line, good) in &goods {
        if good.price <= 0 {
            return Err(TableError::at(
                "goods.csv",
                *line,
                "a price must be above 0",
            ));
        }
        if good.id == "boom" {
            panic!("a reader that panics");
        }
    }
    Ok(Catalogue(goods.into_iter().map(|(_, good)| good).collect()))
}

fn price(ctx: &mut Ctx<'_>, _request: Value) -> Reply {
    let catalogue: &Catalogue = ctx.tables();
    Ok(json!({ "first": catalogue.0[0].id, "price": catalogue.0[0].price }))
}

static SHOP: ModuleDef = ModuleDef {
    name: "shop",
    prefix: "76",
    version: "1.0.0",
    commands: &[("7601", &Typed::new(price))],
    refusals: &[],
    bad_request: crate::BAD_REQUEST,
    schema: 1,
    migrations: &[],
    tables: Some(&Reader::new(read_catalogue)),
    init: None,
    shutdown: None,
};

fn load(services: &Services, goods: &str) -> Result<u64, (String, u64, String)> {
    let host = HostServices_TO::from_ptr(services, TD_Opaque);
    let files = [TableFile {
        name: RStr::from_str("goods.csv"),
        text: RStr::from_str(goods),
    }];
    load_tables(&SHOP, host, RSlice::from_slice(&files))
        .into_result()
        .map_err(|r| (r.file.into_string(), r.line, r.reason.into_string()))
}

fn call_with(services: &Services, tables: u64) -> CommandOutcome {
    let host = HostServices_TO::from_ptr(services, TD_Opaque);
    let call = CommandCall {
        cmd: RStr::from_str("7601"),
        data: RStr::from_str("{}"),
        player: RStr::from_str(PLAYER),
        module_data: RStr::from_str("{}"),
        tables,
        account: RStr::from_str("tester"),
    };
    handle(&SHOP, host, call)
}

#[test]
fn tables_read_once_serve_every_command_until_freed() {
    // A command given no tables panics in `ctx.tables()`.
    let _alone = super::super::test_services::one_panic_at_a_time();
    let services = Services::default();
    let cheap = load(&services, "id,price\nsword,10\n").unwrap();
    let dear = load(&services, "id,price\nsword,12\n").unwrap();
    assert_ne!(cheap, dear);
    for (id, expected) in [(cheap, 10), (dear, 12), (cheap, 10)] {
        match call_with(&services, id) {
            CommandOutcome::Done { data, .. } => {
                let reply: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(reply["price"], expected, "{reply}");
            }
            other => panic!("{other:?}"),
        }
    }
    let host = HostServices_TO::from_ptr(&services, TD_Opaque);
    drop_tables(&SHOP, host, cheap);
    // Freed: a command given that id fails, saying so.
    match call_with(&services, cheap) {
        CommandOutcome::Failed { msg } => {
            assert!(
                msg.contains("does not hold (never read, or freed)"),
                "{msg}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Given none, a command that reads tables fails, naming the missing declaration.
    match call_with(&services, 0) {
        CommandOutcome::Failed { msg } => assert!(msg.contains("no data tables"), "{msg}"),
        other => panic!("{other:?}"),
    }
    drop_tables(&SHOP, HostServices_TO::from_ptr(&services, TD_Opaque), dear);
}

#[test]
fn a_bad_row_a_bad_file_and_a_panicking_reader_are_refusals() {
    let _alone = super::super::test_services::one_panic_at_a_time();
    let services = Services::default();
    assert_eq!(
        load(&services, "id,price\nsword,10\nshield,0\n").unwrap_err(),
        ("goods.csv".into(), 3, "a price must be above 0".into())
    );
    let (file, line, reason) = load(&services, "id,price\nsword,ten\n").unwrap_err();
    assert_eq!((file.as_str(), line), ("goods.csv", 2));
    assert!(reason.contains("column `price`"), "{reason}");
    let (_, line, reason) = load(&services, "id,price\nboom,1\n").unwrap_err();
    assert_eq!(line, 0);
    assert!(
        reason.contains("the table reader panicked: a reader that panics"),
        "{reason}"
    );
}
