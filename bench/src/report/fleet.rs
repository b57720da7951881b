//! The fleet section: from `game-host publish` to every host serving the release, per
//! database server, with the targets, and each publish that never got there.

use super::table::{cell_text, Table};
use super::{verdict, Block};
use crate::fleet::{
    self, Convergence, FleetFigures, Outcome, CONVERGE_WITHIN, HOST_IDS, POLL_EVERY,
};
use std::time::Duration;

pub(super) fn section(figures: &FleetFigures) -> Vec<Block> {
    let mut table = Table::new(
        "lrrrrrl",
        [
            "database",
            "publishes",
            "not converged",
            "p50 ms",
            "p99 ms",
            "max ms",
            "target",
        ],
    );
    let mut not_converged = Vec::new();
    for row in &figures.databases {
        let name = row.database.name();
        match &row.outcome {
            Outcome::Measured(convergence) => {
                table.row(measured_row(name, convergence, fleet::target(row.database)));
                not_converged.extend(
                    convergence
                        .not_converged
                        .iter()
                        .map(|what| format!("{name}, {}", cell_text(what))),
                );
            }
            Outcome::Skipped(why) => table.note_row(name, format!("skipped: {}", cell_text(why))),
            Outcome::Failed(why) => table.note_row(name, format!("**FAILED**: {}", cell_text(why))),
        }
    }
    let poll = figures.poll_ms.map_or("`fleet.poll_ms`".to_owned(), |ms| {
        format!("{ms} ms (`fleet.poll_ms`)")
    });
    let mut blocks = vec![
        Block::Heading(format!(
            "Fleet: `game-host publish` → all {} hosts serving it ({} publishes per database)",
            HOST_IDS.len(),
            figures.publishes
        )),
        Block::Text(format!(
            "{} release-built hosts (profile prod, `plugins.source = \"database\"`, polling \
             every {poll}) on a scratch database of their own; the release builds of \
             `libmall.so` (with its tables) and `libfixture_mall_sale.so` published in turn \
             with the built `game-host publish`. Each host start and each publish comes after \
             a pseudo-random pause within one poll interval, so that the hosts poll out of \
             step and publishes meet their polls anywhere. Each time runs from the command's exit (its \
             transaction committed) until every host's `GET /admin/modules` shows that \
             library's sha256 for `mall`, each host asked every {} ms. A publish not served by \
             every host within {} s has not converged; a target is met only if every publish \
             converged and the p99 is under it.",
            HOST_IDS.len(),
            POLL_EVERY.as_millis(),
            CONVERGE_WITHIN.as_secs()
        )),
        Block::Table(table),
    ];
    if !not_converged.is_empty() {
        blocks.push(Block::Text(format!(
            "Not converged:  \n{}",
            not_converged.join("  \n")
        )));
    }
    blocks
}

/// A measured database's row: its publishes, their times and its target's verdict.
fn measured_row(name: &str, convergence: &Convergence, target: Duration) -> [String; 7] {
    let ms = |p: f64| {
        convergence
            .percentile(p)
            .map_or_else(String::new, |d| format!("{:.0}", d.as_secs_f64() * 1e3))
    };
    let target = format!(
        "p99 < {} s {}",
        target.as_secs_f64(),
        verdict(convergence.meets(target))
    );
    [
        name.to_owned(),
        convergence.publishes().to_string(),
        convergence.not_converged.len().to_string(),
        ms(0.5),
        ms(0.99),
        ms(1.0),
        target,
    ]
}
