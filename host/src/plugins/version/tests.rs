use super::{metadata_problem, DeclaredRefusal, ModuleMeta};
use std::path::PathBuf;

fn module(prefix: &str, commands: &[&str]) -> ModuleMeta {
    ModuleMeta {
        name: "bank".into(),
        prefix: prefix.into(),
        version: "1.0.0".into(),
        commands: commands.iter().map(|c| c.to_string()).collect(),
        refusals: vec![refusal(1, "not_enough_gold"), refusal(99, "bad_request")],
        schema: 1,
        migrations: Vec::new(),
        tables: false,
        file: PathBuf::from("libbank.so"),
        sha256: String::new(),
    }
}

#[test]
fn commands_numbered_by_the_rule_are_accepted() {
    assert_eq!(
        metadata_problem(&module("13", &["1301", "1303", "1397"])),
        None
    );
    // An even command is allowed while its odd neighbour is not declared.
    assert_eq!(metadata_problem(&module("13", &["1302", "1398"])), None);
}

#[test]
fn a_command_whose_reply_leaves_the_prefix_is_refused_by_name() {
    let problem = metadata_problem(&module("13", &["1301", "1399"])).unwrap();
    assert!(problem.contains("`1399`"), "{problem}");
    assert!(problem.contains("`1400`"), "{problem}");
    assert!(problem.contains("1301 to 1397"), "{problem}");
    // 9999 is answered by 10000: five digits, outside every prefix.
    let problem = metadata_problem(&module("99", &["9999"])).unwrap();
    assert!(problem.contains("`10000`"), "{problem}");
}

#[test]
fn a_command_that_is_another_ones_reply_is_refused_by_name() {
    let problem = metadata_problem(&module("13", &["1301", "1302"])).unwrap();
    assert!(
        problem.contains("`1301` and `1302`") && problem.contains("odd numbers"),
        "{problem}"
    );
}

#[test]
fn a_command_declared_twice_is_refused() {
    let problem = metadata_problem(&module("13", &["1301", "1303", "1301"])).unwrap();
    assert!(problem.contains("`1301` twice"), "{problem}");
}

fn refusal(code: i32, name: &str) -> DeclaredRefusal {
    DeclaredRefusal {
        code,
        name: name.into(),
    }
}

#[test]
fn declared_refusals_need_positive_codes_and_names_of_their_own() {
    let cases = [
        (
            refusal(0, "zero"),
            "code 0: a refusal's code must be positive",
        ),
        (refusal(-5, "failed"), "code -5"),
        (refusal(3, "Not Enough"), "named `Not Enough`"),
        (refusal(3, ""), "named ``"),
        (refusal(1, "broke"), "`not_enough_gold` (1) and `broke` (1)"),
        (
            refusal(4, "bad_request"),
            "`bad_request` (99) and `bad_request` (4)",
        ),
    ];
    for (bad, words) in cases {
        let mut meta = module("13", &["1301"]);
        meta.refusals.push(bad.clone());
        let problem = metadata_problem(&meta).unwrap_or_default();
        assert!(problem.contains(words), "{bad:?}: {problem}");
    }
}

fn at_schema(schema: u32, migrations: &[u32]) -> ModuleMeta {
    ModuleMeta {
        schema,
        migrations: migrations.to_vec(),
        ..module("13", &["1301"])
    }
}

#[test]
fn a_schema_with_one_migration_from_each_older_schema_is_accepted() {
    assert_eq!(metadata_problem(&at_schema(1, &[])), None);
    assert_eq!(metadata_problem(&at_schema(3, &[2, 1])), None);
}

#[test]
fn a_schema_whose_migrations_do_not_cover_each_older_schema_once_is_refused() {
    for (schema, migrations, words) in [
        (0, &[][..], "schemas start at 1"),
        (1, &[1][..], "schema 1 needs none"),
        (3, &[1][..], "no migration from schema 2 to 3"),
        (
            2,
            &[1, 2][..],
            "a migration from schema 2, but its schema is 2",
        ),
        (2, &[0, 1][..], "a migration from schema 0"),
        (3, &[1, 1, 2][..], "two migrations from schema 1"),
    ] {
        let problem = metadata_problem(&at_schema(schema, migrations)).unwrap();
        assert!(
            problem.contains(words),
            "{schema} {migrations:?}: {problem}"
        );
    }
}
