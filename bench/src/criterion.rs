//! The ABI figures, read from what `cargo bench -p bench --bench abi` (criterion) left in the
//! target folder: `criterion/<group>/<id>/new/estimates.json`, median point estimates in ns,
//! `criterion/<group>/boundary_paired.json`, the bench's paired measurement of the boundary,
//! and `criterion/routing/canary_paired.json`, its paired measurement of a canary's routing.

use std::path::Path;

/// The commands `benches/abi.rs` measures, as criterion groups.
pub const GROUPS: [&str; 2] = ["mall_1101", "mall_1103"];

/// One command's figures, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct AbiFigures {
    pub through_abi: f64,
    pub direct_rust: f64,
    pub handler_only: f64,
    pub json_only: f64,
    /// `through_abi` − `direct_rust` as the median of differences in alternating rounds, if
    /// the bench wrote it: steadier than the difference of the two medians.
    pub paired_boundary: Option<f64>,
}

impl AbiFigures {
    /// What the library boundary adds to a call.
    pub fn boundary(&self) -> f64 {
        self.paired_boundary
            .unwrap_or(self.through_abi - self.direct_rust)
    }
    /// The share of a direct call spent encoding and decoding JSON.
    pub fn json_share(&self) -> f64 {
        self.json_only / self.direct_rust
    }
}

/// A canary's routing (group `routing`: `Routes::route` for one command), in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct RoutingFigures {
    /// The module's version alone.
    pub plain: f64,
    /// The same version with a canary beside it.
    pub canaried: f64,
    /// `canaried` − `plain` as the median of differences in alternating rounds, if the bench
    /// wrote it.
    pub paired: Option<f64>,
}

impl RoutingFigures {
    /// What a canary adds to routing one command.
    pub fn canary_adds(&self) -> f64 {
        self.paired.unwrap_or(self.canaried - self.plain)
    }
}

/// Each group's figures, or `None` if the ABI bench has not run (or left no estimates).
pub fn read(target: &Path) -> Vec<(&'static str, Option<AbiFigures>)> {
    GROUPS
        .iter()
        .map(|&group| {
            let group_dir = target.join("criterion").join(group);
            let estimate = |id: &str| median_ns(&group_dir.join(id));
            let figures = (|| {
                Some(AbiFigures {
                    through_abi: estimate("through_abi")?,
                    direct_rust: estimate("direct_rust")?,
                    handler_only: estimate("handler_only")?,
                    json_only: estimate("json_only")?,
                    paired_boundary: paired_ns(&group_dir, "boundary_paired"),
                })
            })();
            (group, figures)
        })
        .collect()
}

/// The routing figures, or `None` if the ABI bench has not run its `routing` group.
pub fn read_routing(target: &Path) -> Option<RoutingFigures> {
    let group_dir = target.join("criterion").join("routing");
    Some(RoutingFigures {
        plain: median_ns(&group_dir.join("plain"))?,
        canaried: median_ns(&group_dir.join("canaried"))?,
        paired: paired_ns(&group_dir, "canary_paired"),
    })
}

fn median_ns(bench_dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(bench_dir.join("new/estimates.json")).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// The median of `criterion/<group>/<file>.json`, a paired measurement of the bench's.
fn paired_ns(group_dir: &Path, file: &str) -> Option<f64> {
    let text = std::fs::read_to_string(group_dir.join(format!("{file}.json"))).ok()?;
    let figures: serde_json::Value = serde_json::from_str(&text).ok()?;
    figures["median_ns"].as_f64()
}
