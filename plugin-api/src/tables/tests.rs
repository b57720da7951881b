//! Reading CSV and JSON tables, and what a designer is told when a file is wrong.

use super::*;
use serde::Deserialize;

#[derive(Debug, PartialEq, Deserialize)]
struct Good {
    id: String,
    price: i64,
}

fn shop<'a>(files: &[(&'a str, &'a str)]) -> Tables<'a> {
    Tables::for_test("shop", files)
}

#[test]
fn csv_rows_are_read_by_column_name_with_their_lines() {
    let tables = shop(&[("goods.csv", "price, id\n 100 ,sword\n\n250,shield\n")]);
    let rows: Vec<(u64, Good)> = tables.csv_lines("goods.csv").unwrap();
    let lines: Vec<u64> = rows.iter().map(|(line, _)| *line).collect();
    assert_eq!(
        lines,
        [2, 4],
        "blank lines are skipped but counted: {rows:?}"
    );
    assert_eq!(
        rows[1].1,
        Good {
            id: "shield".into(),
            price: 250
        }
    );
}

#[test]
fn a_csv_value_of_the_wrong_type_names_the_file_line_and_column() {
    let tables = shop(&[("goods.csv", "id,price\nsword,100\nshield,cheap\n")]);
    let refused = tables.csv::<Good>("goods.csv").unwrap_err();
    assert_eq!(
        (refused.file.as_str(), refused.line),
        ("goods.csv", Some(3))
    );
    let text = refused.to_string();
    assert!(
        text.starts_with("goods.csv, line 3: column `price`:"),
        "{text}"
    );
}

#[test]
fn a_missing_column_or_file_is_named() {
    let tables = shop(&[("goods.csv", "id\nsword\n")]);
    let refused = tables.csv::<Good>("goods.csv").unwrap_err();
    assert!(refused.to_string().contains("price"), "{refused}");
    let refused = tables.csv::<Good>("prices.csv").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "prices.csv: missing: the module needs this file in its tables folder"
    );
}

#[test]
fn json_tables_are_read_and_their_errors_name_the_line() {
    let tables = shop(&[
        ("reward.json", "{\n  \"gold\": 100\n}\n"),
        ("bad.json", "{\n  \"gold\": 1,\n  \"silver\" 2\n}"),
    ]);
    #[derive(Debug, Deserialize)]
    struct Reward {
        gold: i64,
    }
    assert_eq!(tables.json::<Reward>("reward.json").unwrap().gold, 100);
    let refused = tables.json::<Reward>("bad.json").unwrap_err();
    assert_eq!(refused.line, Some(3), "{refused}");
    assert!(
        refused
            .to_string()
            .starts_with("bad.json, line 3: expected `:`"),
        "{refused}"
    );
    assert_eq!(
        tables.names().collect::<Vec<_>>(),
        ["reward.json", "bad.json"]
    );
}
