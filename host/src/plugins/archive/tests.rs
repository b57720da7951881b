use super::*;

fn meta(version: &str, sha256: &str) -> ModuleMeta {
    ModuleMeta {
        name: "mall".into(),
        prefix: "11".into(),
        version: version.into(),
        commands: vec!["1101".into()],
        refusals: Vec::new(),
        schema: 1,
        migrations: Vec::new(),
        tables: false,
        file: "libmall.so".into(),
        sha256: sha256.into(),
    }
}

fn versions(archive: &Archive) -> Vec<String> {
    archive
        .previous("mall")
        .into_iter()
        .map(|k| k.version)
        .collect()
}

fn tables(text: &str) -> TableSet {
    TableSet {
        files: vec![("goods.csv".into(), text.into())],
        sha256: format!("t-{text}"),
    }
}

#[test]
fn keeps_the_newest_versions_and_deletes_older_libraries() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().to_owned(), 2).unwrap();
    for n in 1..=4 {
        archive.keep(
            &meta(&format!("v{n}"), &format!("sha{n}")),
            format!("bytes {n}").as_bytes(),
            None,
        );
    }
    assert_eq!(
        versions(&archive),
        ["v3", "v2"],
        "newest first, the serving v4 not included"
    );
    assert!(
        !dir.path().join("mall/sha1.so").exists(),
        "beyond keep + 1 the library goes"
    );
    assert_eq!(
        std::fs::read(dir.path().join("mall/sha2.so")).unwrap(),
        b"bytes 2"
    );
}

#[test]
fn rollback_steps_back_one_version_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().to_owned(), 3).unwrap();
    archive.keep(&meta("v1", "sha1"), b"one", None);
    archive.keep(&meta("v2", "sha2"), b"two", None);
    let previous = archive.previous_of("mall", "sha2").unwrap();
    assert_eq!(
        (
            std::fs::read(&previous.library).unwrap(),
            previous.sha256.as_str()
        ),
        (b"one".to_vec(), "sha1")
    );
    assert_eq!(versions(&archive), ["v1"], "previous_of changes nothing");
    archive.forget("mall", "sha2");
    assert!(archive.previous("mall").is_empty());
    assert!(!dir.path().join("mall/sha2.so").exists());
    assert!(
        archive.previous_of("mall", "sha1").is_none(),
        "nothing before the first"
    );
    assert!(archive.previous_of("other", "x").is_none());
}

#[test]
fn keeping_the_same_bytes_again_moves_them_to_the_front() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().to_owned(), 3).unwrap();
    archive.keep(&meta("v1", "sha1"), b"one", None);
    archive.keep(&meta("v2", "sha2"), b"two", None);
    archive.keep(&meta("v1", "sha1"), b"one", None);
    assert_eq!(versions(&archive), ["v2"]);
}

#[test]
fn a_tables_change_is_a_version_of_its_own_that_shares_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().to_owned(), 3).unwrap();
    archive.keep(&meta("v1", "sha1"), b"one", Some(&tables("cheap")));
    archive.keep(&meta("v1", "sha1"), b"one", Some(&tables("dear")));
    let serving = identity("sha1", Some("t-dear"));
    let previous = archive.previous_of("mall", &serving).unwrap();
    assert_eq!(previous.identity, identity("sha1", Some("t-cheap")));
    let folder = previous.tables.clone().unwrap();
    assert_eq!(
        std::fs::read_to_string(folder.join("goods.csv")).unwrap(),
        "cheap"
    );
    // Rolled back: the dear tables go, the library both used stays.
    archive.forget("mall", &serving);
    assert!(!dir.path().join("mall/t-dear.tables").exists());
    assert!(previous.library.exists() && folder.exists());
}
