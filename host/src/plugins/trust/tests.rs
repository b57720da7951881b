//! Trust on real files: modes set with chmod, owners with chown (as root), keys made by
//! keygen, signatures by sign. Cases that need root say so and are skipped without it.
//!
//! Length: one file per subject, a test per behaviour, sharing this file's helpers.

use super::permissions::{self, Ids, Problem};
use super::signature::{self, KeyError};
use super::*;
use std::os::unix::fs::{symlink, PermissionsExt};
use tempfile::TempDir;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn me() -> Ids {
    Ids::current().unwrap()
}

/// A private temporary folder (0700 under the sticky /tmp) with `plugins/` (0755) holding
/// `libm.so` (0644).
fn plugins() -> (TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o755);
    let file = dir.join("libm.so");
    std::fs::write(&file, b"module bytes").unwrap();
    chmod(&file, 0o644);
    (root, file)
}

fn flaw(file: &Path) -> permissions::Flaw {
    permissions::check_file(file, me()).expect_err("refused")
}

fn running_as_root(case: &str) -> bool {
    let root = me().uid == 0;
    if !root {
        eprintln!("skipped `{case}`: only root can give a file to another user or group");
    }
    root
}

#[test]
fn a_file_only_trusted_users_can_change_passes_and_names_its_inode() {
    let (_root, file) = plugins();
    let meta = permissions::check_file(&file, me()).unwrap();
    let opened = read(&file).unwrap();
    assert_eq!((meta.dev(), meta.ino()), opened.identity);
    // umask 002 on a machine with a group per user: writable by the host's own group is fine.
    chmod(&file, 0o664);
    chmod(file.parent().unwrap(), 0o2775);
    permissions::check_file(&file, me()).unwrap();
}

#[test]
fn a_world_writable_file_or_plugins_dir_is_refused_with_the_chmod_that_fixes_it() {
    let (_root, file) = plugins();
    chmod(&file, 0o666);
    let found = flaw(&file);
    assert_eq!(found.path, file);
    assert!(matches!(found.problem, Problem::WorldWritable { .. }));
    let message = found.to_string();
    assert!(
        message.contains(&format!("`chmod o-w {}`", file.display())),
        "{message}"
    );

    chmod(&file, 0o644);
    let dir = file.parent().unwrap();
    chmod(dir, 0o777);
    let found = flaw(&file);
    assert_eq!(found.path, dir);
    assert!(found
        .to_string()
        .contains(&format!("`chmod o-w {}`", dir.display())));
}

#[test]
fn a_sticky_shared_directory_may_be_above_the_plugins_dir_but_not_hold_it() {
    let (root, file) = plugins();
    chmod(root.path(), 0o1777);
    permissions::check_file(&file, me()).expect("a sticky directory above is fine");

    let shared = root.path().join("libm.so");
    std::fs::write(&shared, b"module bytes").unwrap();
    let found = flaw(&shared);
    assert_eq!(found.path, root.path());
    assert!(found.to_string().contains("shared directory"), "{}", found);

    // Without the sticky bit, anyone could rename the plugins directory away.
    chmod(root.path(), 0o777);
    assert_eq!(flaw(&file).path, root.path());
}

#[test]
fn a_directory_group_writable_by_another_group_is_refused() {
    if !running_as_root("group-writable by another group") {
        return;
    }
    let (_root, file) = plugins();
    std::os::unix::fs::chown(&file, None, Some(65534)).unwrap();
    chmod(&file, 0o664);
    let found = flaw(&file);
    assert_eq!(found.problem, Problem::GroupWritable { gid: 65534 });
    assert!(
        found
            .to_string()
            .contains(&format!("`chmod g-w {}`", file.display())),
        "{found}"
    );
    chmod(&file, 0o644);
    permissions::check_file(&file, me()).expect("readable by that group is fine");
}

#[test]
fn a_file_owned_by_another_user_is_refused_unless_it_is_in_the_hosts_group() {
    if !running_as_root("owned by another non-root user") {
        return;
    }
    let (_root, file) = plugins();
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    let found = flaw(&file);
    assert_eq!(
        found.problem,
        Problem::ForeignOwner {
            uid: 65534,
            gid: 65534
        }
    );
    let user = permissions::user_name(0);
    assert!(
        found
            .to_string()
            .contains(&format!("`chown {user}:{user} {}`", file.display())),
        "{found}"
    );
    // Given to the host's group: a member of it shipped the file.
    std::os::unix::fs::chown(&file, Some(65534), Some(me().gid)).unwrap();
    permissions::check_file(&file, me()).unwrap();
    // The plugins directory itself, owned by another user.
    let dir = file.parent().unwrap();
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    assert_eq!(flaw(&file).path, dir);
}

#[test]
fn symbolic_links_are_followed_and_their_targets_judged() {
    let (root, file) = plugins();
    let releases = root.path().join("releases");
    std::fs::create_dir(&releases).unwrap();
    chmod(&releases, 0o755);
    let target = releases.join("libm-2.so");
    std::fs::write(&target, b"release 2").unwrap();
    std::fs::remove_file(&file).unwrap();
    symlink("../releases/libm-2.so", &file).unwrap();
    let meta = permissions::check_file(&file, me()).unwrap();
    assert_eq!(meta.ino(), std::fs::metadata(&target).unwrap().ino());

    // The directory holding the link's target is judged like the plugins directory.
    chmod(&releases, 0o777);
    assert_eq!(flaw(&file).path, releases);
    chmod(&releases, 0o755);
    chmod(&target, 0o646);
    assert_eq!(flaw(&file).path, target);

    // A symlinked plugins directory: the real one is judged.
    let linked = root.path().join("linked");
    symlink(&releases, &linked).unwrap();
    chmod(&target, 0o644);
    permissions::check_file(&linked.join("libm-2.so"), me()).unwrap();
    chmod(&releases, 0o757);
    assert_eq!(flaw(&linked.join("libm-2.so")).path, releases);

    let looped = root.path().join("loop");
    symlink(&looped, &looped).unwrap();
    assert_eq!(flaw(&looped).problem, Problem::TooManyLinks);
    assert_eq!(
        flaw(&releases).problem,
        Problem::WrongKind { wanted: "file" }
    );
}

#[test]
fn a_world_writable_shadow_directory_refuses_every_load() {
    let (root, file) = plugins();
    let data = root.path().join("data");
    let shadow = data.join("shadow");
    std::fs::create_dir_all(&shadow).unwrap();
    chmod(&shadow, 0o700);
    let trust = Trust::from_config(&TrustConfig::default()).unwrap();
    trust.check_shadow_dir(&file, &shadow).unwrap();
    chmod(&data, 0o777);
    let refused = trust.check_shadow_dir(&file, &shadow).unwrap_err();
    assert!(matches!(&refused, Untrusted::ShadowDir { .. }), "{refused}");
    assert!(
        refused
            .to_string()
            .contains(&format!("`chmod o-w {}`", data.display())),
        "{refused}"
    );
    // Turned off, nothing is judged.
    let off = TrustConfig {
        check_permissions: false,
        ..TrustConfig::default()
    };
    Trust::from_config(&off)
        .unwrap()
        .check_shadow_dir(&file, &shadow)
        .unwrap();
}

#[test]
fn a_file_replaced_between_reading_and_judging_is_refused() {
    let (_root, file) = plugins();
    let opened = read(&file).unwrap();
    let other = file.with_file_name("other");
    std::fs::write(&other, b"other bytes").unwrap();
    std::fs::rename(&other, &file).unwrap();
    let trust = Trust::from_config(&TrustConfig::default()).unwrap();
    let refused = trust.admit(&file, &opened).unwrap_err();
    assert!(matches!(refused, Untrusted::Replaced { .. }), "{refused}");
}

/// A key pair made by keygen in `dir`: (private, public).
fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    let pem = signature::generate(&private, &public).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    (private, public)
}

fn signing(public_keys: &[&Path]) -> Trust {
    Trust::from_config(&TrustConfig {
        check_permissions: true,
        require_signature: true,
        public_keys: public_keys
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    })
    .unwrap()
}

#[test]
fn a_signed_file_is_admitted_and_a_tampered_unsigned_or_foreign_one_refused() {
    let (root, file) = plugins();
    let keys = root.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (private, public) = keypair(&keys, "ops");
    assert_eq!(
        std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let trust = signing(&[&public]);

    let unsigned = trust.admit(&file, &read(&file).unwrap()).unwrap_err();
    assert!(matches!(unsigned, Untrusted::Unsigned { .. }), "{unsigned}");
    assert!(
        unsigned.to_string().contains("game-host sign --key KEY"),
        "{unsigned}"
    );

    let sig = signature::sign_file(&private, &file).unwrap();
    assert_eq!(sig, file.with_file_name("libm.so.sig"));
    assert_eq!(std::fs::read(&sig).unwrap().len(), 64);
    let admitted = trust.admit(&file, &read(&file).unwrap()).unwrap();
    assert_eq!(admitted.signed_by, Some(public.display().to_string()));

    // One byte changed after signing.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let tampered = trust.admit(&file, &read(&file).unwrap()).unwrap_err();
    assert!(
        matches!(tampered, Untrusted::BadSignature { .. }),
        "{tampered}"
    );

    // Signed again, but with a key the host does not know.
    let (stranger, _) = keypair(&keys, "stranger");
    signature::sign_file(&stranger, &file).unwrap();
    let foreign = trust.admit(&file, &read(&file).unwrap()).unwrap_err();
    assert!(
        matches!(foreign, Untrusted::BadSignature { .. }),
        "{foreign}"
    );
    assert!(
        foreign.to_string().contains(&public.display().to_string()),
        "{foreign}"
    );

    // Either of two keys (a rotation); the PEM text inline works as well as its file.
    let inline = std::fs::read_to_string(keys.join("stranger.pub")).unwrap();
    let both = Trust::from_config(&TrustConfig {
        check_permissions: true,
        require_signature: true,
        public_keys: vec![public.display().to_string(), inline],
    })
    .unwrap();
    let admitted = both.admit(&file, &read(&file).unwrap()).unwrap();
    assert_eq!(admitted.signed_by.as_deref(), Some("trust.public_keys[1]"));

    std::fs::write(&sig, b"short").unwrap();
    let malformed = trust.admit(&file, &read(&file).unwrap()).unwrap_err();
    assert!(
        matches!(malformed, Untrusted::MalformedSignature { len: 5, .. }),
        "{malformed}"
    );
}

#[test]
fn keys_are_refused_when_others_could_read_or_replace_them() {
    let (root, file) = plugins();
    let (private, public) = keypair(root.path(), "ops");
    assert!(matches!(
        signature::generate(&private, &root.path().join("again.pub")),
        Err(KeyError::Exists { .. })
    ));

    chmod(&private, 0o644);
    let exposed = signature::sign_file(&private, &file).unwrap_err();
    assert!(matches!(exposed, KeyError::Exposed { .. }), "{exposed}");
    assert!(exposed.to_string().contains("chmod 600"), "{exposed}");

    chmod(&public, 0o666);
    let config = TrustConfig {
        check_permissions: true,
        require_signature: true,
        public_keys: vec![public.display().to_string()],
    };
    let replaceable = Trust::from_config(&config).unwrap_err();
    assert!(
        replaceable.to_string().contains("chmod o-w"),
        "{replaceable}"
    );

    let swapped = TrustConfig {
        public_keys: vec![private.display().to_string()],
        ..config
    };
    chmod(&private, 0o600);
    let private_given = Trust::from_config(&swapped).unwrap_err();
    assert!(
        matches!(private_given, Untrusted::Key(KeyError::PrivateGiven { .. })),
        "{private_given}"
    );
}

/// The files are what OpenSSL makes and reads: its signature verifies under our check, and
/// ours under its. Skipped without the `openssl` command.
#[test]
fn signatures_and_keys_interoperate_with_openssl() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no openssl command");
        return;
    }
    let (root, file) = plugins();
    let (private, public) = keypair(root.path(), "ops");
    let sig = signature::sign_file(&private, &file).unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let os = |p: &Path| p.as_os_str().to_owned();
    openssl(&[
        "pkeyutl".as_ref(),
        "-verify".as_ref(),
        "-rawin".as_ref(),
        "-pubin".as_ref(),
        "-inkey".as_ref(),
        &os(&public),
        "-in".as_ref(),
        &os(&file),
        "-sigfile".as_ref(),
        &os(&sig),
    ]);
    std::fs::remove_file(&sig).unwrap();
    openssl(&[
        "pkeyutl".as_ref(),
        "-sign".as_ref(),
        "-rawin".as_ref(),
        "-inkey".as_ref(),
        &os(&private),
        "-in".as_ref(),
        &os(&file),
        "-out".as_ref(),
        &os(&sig),
    ]);
    signing(&[&public])
        .admit(&file, &read(&file).unwrap())
        .expect("OpenSSL's signature verifies");
}
