//! What the figures were measured on: printed with every run, because figures from a 2-core
//! VM and from a workstation are not comparable.

use std::process::Command;

/// The machine, the code and the moment of a run.
#[derive(Debug)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub commit: String,
    pub date: String,
    pub rustc: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let commit = match output("git", &["rev-parse", "--short", "HEAD"]) {
            Some(commit) => {
                let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{commit} with uncommitted changes")
                } else {
                    commit
                }
            }
            None => "unknown commit (not a git checkout)".into(),
        };
        Machine {
            cpu,
            cores,
            commit,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            rustc: output("rustc", &["--version"]).unwrap_or_else(|| "rustc unknown".into()),
        }
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
