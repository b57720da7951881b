//! The deploy-on-push hook, `config/deploy/git/post-receive`, with real git: pushes to a bare
//! repository build the module crates that changed, check them with the real
//! `game-host check`, and install the ones that pass atomically into a plugins folder.
//!
//! The pushed repository has the workspace's layout (plugins/<module>/Cargo.toml and src/),
//! and `cargo` is a stand-in: building a copy of the workspace would take minutes. It "builds"
//! a crate by copying the workspace's library for it with the crate's source appended (so a
//! change gives new bytes that still load), writes garbage for a source that says
//! `not-a-library`, and fails for one that says `compile_error`.
//!
//! The check runs in the prod profile, which loads only signed modules: the hook signs each
//! build with a key made by the real `game-host keygen` (its public half given to the check).

use crate::harness::{binary, library, target_dir, CONFIG_DIR, DEMO_MODULES};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const HOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/deploy/git/post-receive"
);

const FAKE_CARGO: &str = r#"#!/usr/bin/env bash
# Stands in for `cargo build --release --locked -p CRATE`, run in the deploy work tree.
set -euo pipefail
[ "$1 $2 $3" = "build --release --locked" ] || { echo "fake cargo: unexpected $*" >&2; exit 2; }
crate=""
while [ $# -gt 0 ]; do
    if [ "$1" = -p ]; then crate=$2; shift; fi
    shift
done
echo "$crate" >>"$FAKE_CARGO_LOG"
source=plugins/$crate/src/lib.rs
out=$CARGO_TARGET_DIR/release/lib${crate//-/_}.so
mkdir -p "${out%/*}"
case $(cat "$source") in
    *compile_error*) echo "error: could not compile \`$crate\`" >&2; exit 101 ;;
    *not-a-library*) echo garbage >"$out" ;;
    *) cat "$FAKE_LIBS/lib$crate.so" "$source" >"$out" ;;
esac
"#;

/// A bare repository with the hook, a clone to push from, a plugins folder.
struct Deploy {
    root: TempDir,
}

impl Deploy {
    fn new() -> Deploy {
        for module in DEMO_MODULES {
            library(module); // built, or a clear message
        }
        let deploy = Deploy {
            root: tempfile::tempdir().unwrap(),
        };
        let root = deploy.root.path();
        deploy.git(root, &["init", "-q", "--bare", "-b", "main", "origin.git"]);
        let hook = root.join("origin.git/hooks/post-receive");
        std::fs::copy(HOOK, &hook).unwrap();
        make_executable(&hook);
        std::fs::create_dir(root.join("bin")).unwrap();
        let keygen = Command::new(binary())
            .args(["keygen", "--key"])
            .arg(root.join("bin/modules.key"))
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{keygen:?}");
        std::fs::write(root.join("bin/cargo"), FAKE_CARGO).unwrap();
        make_executable(&root.join("bin/cargo"));

        deploy.git(root, &["init", "-q", "-b", "main", "work"]);
        deploy.write("Cargo.toml", "[workspace]\nmembers = [\"plugins/*\"]\n");
        deploy.write("README.md", "a game\n");
        for module in DEMO_MODULES {
            deploy.write(
                &format!("plugins/{module}/Cargo.toml"),
                &format!("[package]\nname = \"{module}\"\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n"),
            );
            deploy.write(&format!("plugins/{module}/src/lib.rs"), "// v1\n");
            // The module's data tables, as its crate has them.
            let tables = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../plugins")
                .join(module)
                .join("tables");
            for entry in std::fs::read_dir(&tables).into_iter().flatten() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                deploy.write(
                    &format!("plugins/{module}/tables/{name}"),
                    &std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
        // Not module crates: a library crate, and a file.
        deploy.write(
            "plugins/common/Cargo.toml",
            "[package]\nname = \"common\"\n",
        );
        deploy.write("plugins/common/src/lib.rs", "// shared code\n");
        deploy.write("plugins/README.md", "the modules\n");
        deploy.git(
            &deploy.work(),
            &["remote", "add", "origin", "../origin.git"],
        );
        deploy
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }
    fn work(&self) -> PathBuf {
        self.path("work")
    }
    fn plugins(&self) -> PathBuf {
        self.path("plugins")
    }

    /// Writes a file of the clone (not committed).
    fn write(&self, rel: &str, text: &str) {
        let path = self.work().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// git in `dir`, with no user or system config, and the hook's settings pointing here.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(dir);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("GAME_HOST") || name.starts_with("DEPLOY_") || name == "CARGO" {
                command.env_remove(name);
            }
        }
        command
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "designer")
            .env("GIT_AUTHOR_EMAIL", "designer@example.com")
            .env("GIT_COMMITTER_NAME", "designer")
            .env("GIT_COMMITTER_EMAIL", "designer@example.com")
            .env("DEPLOY_WORKTREE", self.path("deploy"))
            .env("PLUGINS_DIR", self.plugins())
            .env("GAME_HOST", binary())
            .env("DEPLOY_CONFIG_DIR", CONFIG_DIR)
            .env("DEPLOY_PROFILE", "prod")
            .env("DEPLOY_SIGNING_KEY", self.path("bin/modules.key"))
            .env(
                "GAME_HOST_TRUST_PUBLIC_KEYS",
                format!("[{:?}]", self.path("bin/modules.pub")),
            )
            .env("CARGO", self.path("bin/cargo"))
            .env("CARGO_TARGET_DIR", self.path("deploy-target"))
            .env("FAKE_LIBS", target_dir())
            .env("FAKE_CARGO_LOG", self.path("cargo.log"));
        command
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        let output = self.command("git", dir).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Commits everything in the clone; returns the commit.
    fn commit(&self, message: &str) -> String {
        self.git(&self.work(), &["add", "-A"]);
        self.git(&self.work(), &["commit", "-q", "-m", message]);
        let out = self.git(&self.work(), &["rev-parse", "HEAD"]);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Pushes `branch`; returns what the hook said (git prefixes it with "remote: ").
    fn push(&self, branch: &str) -> String {
        let output = self.git(&self.work(), &["push", "-q", "origin", branch]);
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Runs the hook by hand in the bare repository, as git would after a push.
    fn run_hook(&self, old: &str, new: &str) -> Output {
        let mut child = self
            .command(
                self.path("origin.git/hooks/post-receive"),
                &self.path("origin.git"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{old} {new} refs/heads/main").unwrap();
        child.wait_with_output().unwrap()
    }

    /// The crates the stand-in cargo built since the last call, sorted.
    fn built(&self) -> Vec<String> {
        let log = self.path("cargo.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let mut crates: Vec<String> = text.lines().map(str::to_owned).collect();
        crates.sort();
        crates
    }

    fn installed(&self, module: &str) -> Vec<u8> {
        std::fs::read(self.plugins().join(format!("lib{module}.so"))).unwrap()
    }

    /// What the stand-in cargo makes of `module` with source `source`.
    fn build_of(&self, module: &str, source: &str) -> Vec<u8> {
        let mut bytes = std::fs::read(library(module)).unwrap();
        bytes.extend_from_slice(source.as_bytes());
        bytes
    }

    /// The names in the plugins folder, sorted (no leftovers such as .tmp files).
    fn plugin_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.plugins())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn make_executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The demo modules' libraries and their signatures, and the tables folders of those that
/// have data tables, sorted.
fn demo_libraries() -> Vec<String> {
    let mut names: Vec<String> = DEMO_MODULES
        .iter()
        .flat_map(|m| [format!("lib{m}.so"), format!("lib{m}.so.sig")])
        .chain(["activity.tables".to_owned(), "mall.tables".to_owned()])
        .collect();
    names.sort();
    names
}

#[test]
fn a_push_installs_the_modules_that_changed_and_only_those() {
    let deploy = Deploy::new();

    // First push: every module crate, not the library crate.
    deploy.commit("first");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), DEMO_MODULES, "{said}");
    assert_eq!(deploy.plugin_files(), demo_libraries(), "{said}");
    for module in DEMO_MODULES {
        assert_eq!(deploy.installed(module), deploy.build_of(module, "// v1\n"));
        assert!(
            said.contains(&format!("remote: deploy: {module}: installed ")),
            "{said}"
        );
    }
    assert!(
        said.contains(&format!(
            "{} installed, 0 unchanged, 0 refused",
            DEMO_MODULES.len()
        )),
        "{said}"
    );

    // A change to the mall only: only the mall is built and installed again.
    deploy.write("plugins/mall/src/lib.rs", "// v2\n");
    deploy.commit("mall v2");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), ["mall"], "{said}");
    assert_eq!(deploy.installed("mall"), deploy.build_of("mall", "// v2\n"));
    for module in ["activity", "player"] {
        assert_eq!(deploy.installed(module), deploy.build_of(module, "// v1\n"));
    }
    assert!(
        said.contains("1 installed, 0 unchanged, 0 refused"),
        "{said}"
    );
    assert_eq!(deploy.plugin_files(), demo_libraries());

    // A designer's change to a table only: checked with the library, the tables installed,
    // the library left as it is.
    let goods = "id,name,price\npotion,Healing potion,45\nsword,Iron sword,300\n";
    deploy.write("plugins/mall/tables/goods.csv", goods);
    deploy.commit("cheaper potions");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), ["mall"], "{said}");
    assert!(
        said.contains("mall: installed its tables into ")
            && said.contains("0 installed, 1 unchanged, 0 refused"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(deploy.plugins().join("mall.tables/goods.csv")).unwrap(),
        goods
    );
    // A bad row: refused by the check, and neither the tables nor the library change.
    deploy.write(
        "plugins/mall/tables/goods.csv",
        "id,name,price\npotion,Healing potion,-1\n",
    );
    deploy.commit("a mistake");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), ["mall"], "{said}");
    assert!(
        said.contains("mall: REFUSED") && said.contains("mall.tables/goods.csv, line 2"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(deploy.plugins().join("mall.tables/goods.csv")).unwrap(),
        goods
    );
    // Back to what was deployed: nothing to do.
    deploy.write("plugins/mall/tables/goods.csv", goods);
    deploy.commit("fixed");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), Vec::<String>::new(), "{said}");
    assert!(said.contains("no module changed"), "{said}");

    // Nothing under plugins/: nothing built.
    deploy.write("README.md", "a better game\n");
    deploy.commit("docs");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), Vec::<String>::new(), "{said}");
    assert!(said.contains("no module changed"), "{said}");

    // Another branch does not deploy.
    deploy.git(&deploy.work(), &["checkout", "-q", "-b", "feature"]);
    deploy.write("plugins/player/src/lib.rs", "// feature\n");
    deploy.commit("feature");
    let said = deploy.push("feature");
    assert_eq!(deploy.built(), Vec::<String>::new(), "{said}");
    assert!(!said.contains("deploy:"), "{said}");
    assert_eq!(
        deploy.installed("player"),
        deploy.build_of("player", "// v1\n")
    );
    deploy.git(&deploy.work(), &["checkout", "-q", "main"]);

    // plugin-api changes every library: every module is built; same bytes are not copied.
    deploy.write("plugin-api/src/lib.rs", "// api v2\n");
    deploy.commit("plugin-api");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), DEMO_MODULES, "{said}");
    assert!(
        said.contains(&format!(
            "0 installed, {} unchanged, 0 refused",
            DEMO_MODULES.len()
        )),
        "{said}"
    );
}

#[test]
fn a_module_that_fails_its_build_or_check_is_refused_and_the_running_one_kept() {
    let deploy = Deploy::new();
    let first = deploy.commit("first");
    deploy.push("main");
    deploy.built();

    // The mall's library would be refused by the host, the player's does not build; the
    // activity is fine.
    deploy.write("plugins/mall/src/lib.rs", "// not-a-library\n");
    deploy.write("plugins/player/src/lib.rs", "compile_error!(\"oops\");\n");
    deploy.write("plugins/activity/src/lib.rs", "// v2\n");
    let broken = deploy.commit("broken");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), ["activity", "mall", "player"], "{said}");
    assert!(
        said.contains("deploy: mall: REFUSED") && said.contains("not a loadable library"),
        "{said}"
    );
    assert!(
        said.contains("deploy: player: REFUSED") && said.contains("the build failed"),
        "{said}"
    );
    assert!(said.contains("FAILED: mall player not deployed"), "{said}");
    assert_eq!(deploy.installed("mall"), deploy.build_of("mall", "// v1\n"));
    assert_eq!(
        deploy.installed("player"),
        deploy.build_of("player", "// v1\n")
    );
    assert_eq!(
        deploy.installed("activity"),
        deploy.build_of("activity", "// v2\n")
    );
    assert_eq!(deploy.plugin_files(), demo_libraries(), "no leftovers");

    // The hook's own exit status (a push succeeds whatever post-receive says).
    let output = deploy.run_hook(&first, &broken);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("deploy: mall: REFUSED"), "{said}");
    assert_eq!(deploy.installed("mall"), deploy.build_of("mall", "// v1\n"));
    deploy.built();

    // Fixed: since the last deploy that went through, mall, player and activity changed.
    deploy.write("plugins/mall/src/lib.rs", "// v3\n");
    deploy.write("plugins/player/src/lib.rs", "// v3\n");
    let fixed = deploy.commit("fixed");
    let said = deploy.push("main");
    assert_eq!(deploy.built(), ["activity", "mall", "player"], "{said}");
    assert!(
        said.contains("2 installed, 1 unchanged, 0 refused"),
        "{said}"
    );
    assert_eq!(deploy.installed("mall"), deploy.build_of("mall", "// v3\n"));
    assert_eq!(
        deploy.installed("player"),
        deploy.build_of("player", "// v3\n")
    );
    let output = deploy.run_hook(&broken, &fixed);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn in_prod_an_unsigned_build_is_refused_by_the_check_and_not_installed() {
    let deploy = Deploy::new();
    // Pushed with the hook out of the way, then the hook run by hand without a signing key.
    let hook = deploy.path("origin.git/hooks/post-receive");
    let aside = deploy.path("post-receive");
    std::fs::rename(&hook, &aside).unwrap();
    let head = deploy.commit("first");
    deploy.push("main");
    std::fs::rename(&aside, &hook).unwrap();
    let mut child = deploy
        .command(&hook, &deploy.path("origin.git"))
        .env_remove("DEPLOY_SIGNING_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let zero = "0".repeat(40);
    writeln!(child.stdin.take().unwrap(), "{zero} {head} refs/heads/main").unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("deploy: mall: REFUSED") && said.contains("is not signed"),
        "{said}"
    );
    assert!(deploy.plugin_files().is_empty(), "{said}");
}
