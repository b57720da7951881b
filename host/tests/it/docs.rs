//! The docs a newcomer reads resolve inside a clone of the repository: every relative link of
//! README.md, ARCHITECTURE.md and docs/*.md names a file that exists, and every `#anchor` into
//! a Markdown file names one of its headings (as GitHub makes them: lowercase, punctuation
//! dropped, spaces to hyphens).

use regex::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn docs() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    in_docs.sort();
    files.extend(in_docs);
    files
}

/// The text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut in_code = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

fn anchors(markdown: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(markdown).unwrap();
    let heading = Regex::new(r"^#+\s+(.*)$").unwrap();
    prose(&text)
        .lines()
        .filter_map(|line| heading.captures(line))
        .map(|c| {
            c[1].trim()
                .to_lowercase()
                .chars()
                .filter(|ch| ch.is_alphanumeric() || matches!(ch, '-' | '_' | ' '))
                .map(|ch| if ch == ' ' { '-' } else { ch })
                .collect()
        })
        .collect()
}

#[test]
fn every_relative_link_of_the_docs_resolves() {
    let link = Regex::new(r"\[[^\]]*\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in docs() {
        let text = prose(&std::fs::read_to_string(&file).unwrap());
        for target in link.captures_iter(&text).map(|c| c[1].to_owned()) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
            } else if !anchor.is_empty()
                && resolved.extension().is_some_and(|ext| ext == "md")
                && !anchors(&resolved).contains(anchor)
            {
                broken.push(format!("{}: {target} (no such heading)", file.display()));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the pattern right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn nothing_links_outside_the_repository() {
    for file in docs() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("../shared/") && !text.contains("shared/research"),
            "{} points outside the repository (a clone has no shared/)",
            file.display()
        );
    }
}
