//! The fleet's safety net: whether a watched release fails enough to be rolled back.
//!
//! A release is watched while it is a canary, and for `fleet.watch_secs` after a publish or a
//! promotion made it every player's. Its figures are summed over the last report of every host
//! that follows that very change (each version's calls and failures since it loaded there:
//! panics and deadline overruns), and so are those of the release it stands beside or replaced (a
//! host reports the figures of the version its last swap replaced). It is rolled back when it has
//! at least `fleet.rollback_min_calls` calls, and its failure rate is above both
//! `fleet.rollback_failure_rate` and the other release's rate: a module that fails as much as
//! the one before it is not the new release's fault.

use super::ModuleReport;
use crate::config::FleetConfig;
use crate::store::fleet::{Desired, HostReport};

/// A watched release to roll back, and why (for the audit log: the figures and the hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub release: String,
    pub reason: String,
}

/// Calls and failures of one release, summed over the hosts, and the hosts where it failed.
#[derive(Debug, Default)]
struct Figures {
    calls: u64,
    failures: u64,
    failed_on: Vec<String>,
}

impl Figures {
    /// `release`'s figures in `following`: each host's report of the module.
    fn of(release: &str, following: &[(&str, ModuleReport)]) -> Figures {
        let mut figures = Figures::default();
        for (host_id, module) in following {
            for count in module.counts.iter().filter(|c| c.release == release) {
                figures.calls += count.calls;
                figures.failures += count.failures;
                if count.failures > 0 && !figures.failed_on.iter().any(|h| h == host_id) {
                    figures.failed_on.push((*host_id).to_owned());
                }
            }
        }
        figures
    }

    fn rate(&self) -> f64 {
        match self.calls {
            0 => 0.0,
            calls => self.failures as f64 / calls as f64,
        }
    }
}

/// The verdict on `desired`'s watched release (its canary, else the release every player
/// runs) from every host's `reports`; `None` to keep it.
pub fn judge(desired: &Desired, reports: &[HostReport], config: &FleetConfig) -> Option<Verdict> {
    let (watched, other) = match &desired.canary_id {
        Some(canary) => (canary.as_str(), Some(desired.release_id.as_str())),
        None => (desired.release_id.as_str(), desired.previous_id.as_deref()),
    };
    // The module's report of each host that follows this very row (it had read it when it
    // reported): a host down since an earlier change, or reports of an earlier publish of the
    // same release, bring no figures of another time. Each report is read once.
    let following: Vec<(&str, ModuleReport)> = reports
        .iter()
        .flat_map(|report| {
            let modules: Vec<ModuleReport> =
                serde_json::from_str(&report.modules).unwrap_or_default();
            modules
                .into_iter()
                .filter(|m| m.module == desired.module && m.desired_at_ms == desired.changed_at_ms)
                .map(|m| (report.host_id.as_str(), m))
        })
        .collect();
    let new = Figures::of(watched, &following);
    let old = other.map(|release| Figures::of(release, &following));
    let old_rate = old.as_ref().map_or(0.0, Figures::rate);
    let fails = new.calls >= config.rollback_min_calls
        && new.rate() > config.rollback_failure_rate
        && new.rate() > old_rate;
    if !fails {
        return None;
    }
    let before = match (&old, other) {
        (Some(old), Some(other)) => format!(
            "; {other} failed {} of {} ({:.2} %)",
            old.failures,
            old.calls,
            old.rate() * 100.0
        ),
        _ => String::new(),
    };
    Some(Verdict {
        release: watched.to_owned(),
        reason: format!(
            "{watched} failed {} of {} calls ({:.2} %, over fleet.rollback_failure_rate {:.2} %) on {}{before}",
            new.failures,
            new.calls,
            new.rate() * 100.0,
            config.rollback_failure_rate * 100.0,
            new.failed_on.join(", "),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::ReleaseCounts;

    fn report(host: &str, counts: &[(&str, u64, u64)]) -> HostReport {
        let module = ModuleReport {
            module: "m".into(),
            counts: counts
                .iter()
                .map(|(release, calls, failures)| ReleaseCounts {
                    release: (*release).into(),
                    calls: *calls,
                    failures: *failures,
                })
                .collect(),
            ..ModuleReport::default()
        };
        HostReport {
            host_id: host.into(),
            address: String::new(),
            binary_version: String::new(),
            started_at_ms: 0,
            last_seen_ms: 0,
            modules: serde_json::to_string(&[module]).unwrap(),
            players_online: 0,
        }
    }

    fn canary() -> Desired {
        Desired {
            module: "m".into(),
            release_id: "old".into(),
            previous_id: None,
            canary_id: Some("new".into()),
            canary_percent: 30,
            watch_until_ms: 0,
            changed_at_ms: 0,
        }
    }

    #[test]
    fn a_canary_failing_over_the_threshold_and_the_old_release_is_rolled_back() {
        let config = FleetConfig::default(); // 100 calls, 1 %
        let reports = [
            report("a", &[("old", 500, 0), ("new", 60, 2)]),
            report("b", &[("old", 500, 1), ("new", 60, 0)]),
        ];
        let verdict = judge(&canary(), &reports, &config).expect("rolled back");
        assert_eq!(verdict.release, "new");
        assert!(
            verdict.reason.contains("failed 2 of 120 calls"),
            "{}",
            verdict.reason
        );
        assert!(
            verdict.reason.contains("on a;"),
            "only host a saw them: {}",
            verdict.reason
        );
    }

    #[test]
    fn too_few_calls_or_no_worse_than_before_keeps_the_release() {
        let config = FleetConfig::default();
        let few = [report("a", &[("old", 500, 0), ("new", 99, 50)])];
        assert_eq!(judge(&canary(), &few, &config), None);
        let as_before = [report("a", &[("old", 1000, 100), ("new", 200, 10)])];
        assert_eq!(judge(&canary(), &as_before, &config), None);
        let fine = [report("a", &[("old", 100, 0), ("new", 1000, 10)])];
        assert_eq!(
            judge(&canary(), &fine, &config),
            None,
            "exactly 1 % is allowed"
        );
    }

    #[test]
    fn only_hosts_that_follow_the_judged_change_count() {
        let config = FleetConfig::default();
        // A host that last reported under an earlier change of the row (down since, say).
        let mut stale = report("a", &[("old", 500, 0), ("new", 200, 100)]);
        stale.modules = stale
            .modules
            .replace("\"desired_at_ms\":0", "\"desired_at_ms\":-1");
        assert!(stale.modules.contains("-1"), "{}", stale.modules);
        assert_eq!(judge(&canary(), &[stale], &config), None);
    }

    #[test]
    fn after_a_promotion_the_release_is_judged_against_the_one_before() {
        let promoted = Desired {
            release_id: "new".into(),
            previous_id: Some("old".into()),
            canary_id: None,
            ..canary()
        };
        let reports = [report("a", &[("new", 300, 30)])];
        let verdict = judge(&promoted, &reports, &FleetConfig::default()).unwrap();
        assert_eq!(verdict.release, "new");
    }
}
