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
        file: "libmall.so".into(),
        sha256: sha256.into(),
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
        );
    }
    let previous: Vec<String> = archive
        .previous("mall")
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(
        previous,
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
    archive.keep(&meta("v1", "sha1"), b"one");
    archive.keep(&meta("v2", "sha2"), b"two");
    let (path, sha) = archive.take_previous("mall", "sha2").unwrap();
    assert_eq!(
        (std::fs::read(path).unwrap(), sha.as_str()),
        (b"one".to_vec(), "sha1")
    );
    assert!(archive.previous("mall").is_empty());
    assert!(
        archive.take_previous("mall", "sha1").is_none(),
        "nothing before the first"
    );
    assert!(archive.take_previous("other", "x").is_none());
}

#[test]
fn keeping_the_same_bytes_again_moves_them_to_the_front() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().to_owned(), 3).unwrap();
    archive.keep(&meta("v1", "sha1"), b"one");
    archive.keep(&meta("v2", "sha2"), b"two");
    archive.keep(&meta("v1", "sha1"), b"one");
    let previous: Vec<String> = archive
        .previous("mall")
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(previous, ["v2"]);
}
