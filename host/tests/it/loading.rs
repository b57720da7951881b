//! Loading the plugins directory: each kind of bad library is refused with its reason while
//! every good one loads and serves.

use crate::harness::{library, Dirs, TestHost, DEMO_MODULES};
use serde_json::json;
use std::path::PathBuf;

/// The demo modules, plus `extra` files written into the plugins folder.
fn demo_plus(extra: &[(&str, Vec<u8>)]) -> Dirs {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    for (name, bytes) in extra {
        std::fs::write(dirs.plugins().join(name), bytes).unwrap();
    }
    dirs
}

fn bytes_of(crate_name: &str) -> Vec<u8> {
    std::fs::read(library(crate_name)).unwrap()
}

/// The reason the scan gave for refusing `file_name`.
fn reason(host: &TestHost, file_name: &str) -> String {
    let refused: Vec<&(PathBuf, String)> = host
        .scan
        .refused
        .iter()
        .filter(|(f, _)| f.ends_with(file_name))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "{file_name} must be refused once: {:?}",
        host.scan
    );
    refused[0].1.clone()
}

fn assert_mentions(reason: &str, words: &[&str]) {
    for word in words {
        assert!(reason.contains(word), "`{word}` missing from: {reason}");
    }
}

async fn assert_demo_serves(host: &TestHost) {
    let (_, token) = host.login("still-here").await;
    host.ok(&token, "1001", json!({})).await;
    host.ok(&token, "1101", json!({})).await;
    host.ok(&token, "1203", json!({})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_libraries_are_refused_each_with_its_reason_while_the_rest_load() {
    let mall = bytes_of("mall");
    let (truncated, half) = (mall[..4096].to_vec(), mall[..mall.len() / 2].to_vec());
    let mid_segment = mall[..middle_of_largest_segment(&mall)].to_vec();
    let stripped_mid_segment = without_section_headers(mid_segment.clone());
    let dirs = demo_plus(&[
        (
            "libgarbage.so",
            b"this is not an ELF file at all".repeat(100),
        ),
        ("libtruncated.so", truncated),
        ("libhalf_written.so", half),
        ("libmid_segment.so", mid_segment),
        ("libstripped_mid_segment.so", stripped_mid_segment),
        (
            "libfixture_incompatible.so",
            bytes_of("fixture_incompatible"),
        ),
        ("libfixture_badprefix.so", bytes_of("fixture_badprefix")),
        ("libfixture_badnumber.so", bytes_of("fixture_badnumber")),
        ("libzz_clash.so", bytes_of("fixture_clash")),
        ("libnot_a_module.so", bytes_of_any_shared_object()),
        (
            "README.txt",
            b"not a library, and not named like one".to_vec(),
        ),
    ]);
    let host = TestHost::start_in(dirs, |_| {}).await;

    let mut loaded = host.scan.loaded.clone();
    loaded.sort();
    assert_eq!(loaded, ["activity", "mall", "player", "social"]);
    assert_eq!(host.scan.refused.len(), 10, "{:?}", host.scan.refused);

    assert_mentions(
        &reason(&host, "libgarbage.so"),
        &["libgarbage.so", "not a loadable library"],
    );
    assert_mentions(
        &reason(&host, "libtruncated.so"),
        &["libtruncated.so", "not a loadable library"],
    );
    assert_mentions(
        &reason(&host, "libhalf_written.so"),
        &["not a loadable library", "still being written"],
    );
    assert_mentions(
        &reason(&host, "libmid_segment.so"),
        &["not a loadable library", "still being written"],
    );
    // Without section headers only the segment check stands between this file and a SIGBUS.
    assert_mentions(
        &reason(&host, "libstripped_mid_segment.so"),
        &["truncated: a segment ends at byte", "still being written"],
    );
    assert_mentions(
        &reason(&host, "libfixture_incompatible.so"),
        &[
            "plugin-api 0.99.0",
            "plugin-api 0.4.0",
            "rebuild the module against plugin-api 0.4.0",
        ],
    );
    assert_mentions(
        &reason(&host, "libfixture_badprefix.so"),
        &["`1x`", "two digits"],
    );
    assert_mentions(
        &reason(&host, "libfixture_badnumber.so"),
        &["`9799`", "reply `9800`", "prefix 97", "9701 to 9797"],
    );
    assert_mentions(
        &reason(&host, "libzz_clash.so"),
        &["prefix 11", "`mall`", "another prefix"],
    );
    assert_mentions(
        &reason(&host, "libnot_a_module.so"),
        &["not a game module", "export_module!"],
    );

    assert_demo_serves(&host).await;
    let (_, token) = host.login("clash-check").await;
    let (_, body) = host.logic(&token, "1197", json!({})).await;
    assert_eq!(body["ret"], -1, "the refused clash serves nothing: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_library_by_file_name_wins_a_prefix() {
    let dirs = demo_plus(&[("libaa_clash.so", bytes_of("fixture_clash"))]);
    let host = TestHost::start_in(dirs, |_| {}).await;
    assert_mentions(&reason(&host, "libmall.so"), &["prefix 11", "`clash`"]);
    let (_, token) = host.login("first-wins").await;
    assert_eq!(
        host.ok(&token, "1197", json!({})).await,
        json!({ "from": "clash" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_libraries_with_one_module_name_load_once() {
    let dirs = demo_plus(&[("libmall_copy.so", bytes_of("mall"))]);
    let host = TestHost::start_in(dirs, |_| {}).await;
    // The copy sorts after libmall.so and has the same prefix: refused for the prefix.
    assert_mentions(&reason(&host, "libmall_copy.so"), &["prefix 11"]);
    assert_demo_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_init_that_fails_or_panics_refuses_the_library() {
    for (init, words) in [
        (
            "fail",
            &["`faulty`", "init refused on purpose by config"][..],
        ),
        ("panic", &["init panicked", "init panicked on purpose"][..]),
    ] {
        let dirs = demo_plus(&[("libfixture_faulty.so", bytes_of("fixture_faulty"))]);
        let host = TestHost::start_in(dirs, |config| {
            config
                .modules
                .insert("faulty".into(), json!({ "init": init }));
        })
        .await;
        assert_mentions(&reason(&host, "libfixture_faulty.so"), words);
        assert!(
            !host.scan.loaded.contains(&"faulty".to_owned()),
            "{:?}",
            host.scan
        );
        assert_demo_serves(&host).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_init_that_hangs_refuses_the_library_and_the_others_load() {
    let dirs = demo_plus(&[("libfixture_faulty.so", bytes_of("fixture_faulty"))]);
    let gate = dirs.data().join("release-the-init");
    let gate_text = gate.display().to_string();
    let host = TestHost::start_in(dirs, |config| {
        config.plugins.init_timeout_ms = 300;
        config.modules.insert(
            "faulty".into(),
            json!({ "init": "hang", "gate": gate_text }),
        );
    })
    .await;
    assert_mentions(
        &reason(&host, "libfixture_faulty.so"),
        &[
            "`faulty`",
            "did not return within 300 ms",
            "plugins.init_timeout_ms",
        ],
    );
    assert!(
        !host.scan.loaded.contains(&"faulty".to_owned()),
        "{:?}",
        host.scan
    );
    assert_demo_serves(&host).await;
    std::fs::write(&gate, b"").expect("the gate opens");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_gets_its_config_section() {
    let dirs = demo_plus(&[("libfixture_faulty.so", bytes_of("fixture_faulty"))]);
    let host = TestHost::start_in(dirs, |config| {
        config
            .modules
            .insert("faulty".into(), json!({ "init": "ok" }));
    })
    .await;
    assert!(
        host.scan.loaded.contains(&"faulty".to_owned()),
        "{:?}",
        host.scan
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_missing_plugins_directory_serves_no_modules() {
    let dirs = Dirs::new();
    std::fs::remove_dir_all(dirs.plugins()).unwrap();
    let host = TestHost::start_in(dirs, |_| {}).await;
    assert!(host.scan.loaded.is_empty() && host.scan.refused.is_empty());
    assert!(
        host.dirs.plugins().is_dir(),
        "the folder is created for the first module"
    );
    let (_, token) = host.login("lonely").await;
    assert_eq!(host.logic(&token, "1203", json!({})).await.1["ret"], -1);
}

/// A real shared object that is no game module: the C library itself.
fn bytes_of_any_shared_object() -> Vec<u8> {
    let candidates = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ];
    let path = candidates
        .iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("libm.so.6 on this machine");
    std::fs::read(path).unwrap()
}

/// The middle of the largest loadable segment: cut there, a file makes a bare `dlopen` map
/// whole pages past its end and die of SIGBUS on the first touch.
fn middle_of_largest_segment(image: &[u8]) -> usize {
    use object::{Object, ObjectSegment};
    let file = object::File::parse(image).unwrap();
    let (offset, size) = file
        .segments()
        .map(|s| s.file_range())
        .max_by_key(|&(_, size)| size)
        .unwrap();
    usize::try_from(offset + size / 2).unwrap()
}

/// The image with its section header table dropped from the ELF header (loaders ignore it).
fn without_section_headers(mut image: Vec<u8>) -> Vec<u8> {
    // ELF64 header: e_shoff at 0x28 (8 bytes), e_shnum at 0x3C, e_shstrndx at 0x3E (2 bytes each).
    image[0x28..0x30].fill(0);
    image[0x3C..0x40].fill(0);
    image
}
