//! The generated documentation the package ships: a man page for every subcommand, every
//! subcommand in each shell's completions, lvsd-policy(5) carrying every key of the README's
//! policy reference, and `--version` with the commit and build date.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn lvsd(args: &[&str]) -> String {
    let out = Command::new(common::lvsd_bin()).args(args).output().unwrap();
    assert!(out.status.success(), "lvsd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `lvsd --help` lists (the visible ones), read from its "Commands:" block.
fn subcommands(help: &str) -> Vec<String> {
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 10, "too few subcommands in --help:\n{help}");
    names
}

/// A man page's text with roff's escapes for '-' undone, for searching.
fn page(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).replace("\\-", "-")
}

#[test]
fn every_subcommand_has_a_man_page_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let comp = dir.path().join("completions");
    lvsd(&["generate", "man", man.to_str().unwrap()]);
    lvsd(&["generate", "completions", comp.to_str().unwrap()]);

    let subs = subcommands(&lvsd(&["--help"]));
    let root = page(&man.join("lvsd.8"));
    assert!(root.contains(".TH LVSD 8"), "{root}");
    for s in &subs {
        let p = page(&man.join(format!("lvsd-{s}.8")));
        assert!(p.contains(&format!(".TH LVSD-{} 8", s.to_uppercase())), "lvsd-{s}.8:\n{p}");
        assert!(p.contains(&format!("lvsd {s}")), "lvsd-{s}.8 has no synopsis:\n{p}");
        assert!(root.contains(&format!("lvsd-{s}(8)")), "lvsd.8 does not refer to lvsd-{s}(8)");
    }
    // Nested subcommands get pages too.
    for s in ["up", "down", "status"] {
        assert!(man.join(format!("lvsd-realserver-{s}.8")).exists(), "no lvsd-realserver-{s}.8");
    }
    // Hidden commands are not documented.
    assert!(!man.join("lvsd-generate.8").exists());

    let bash = std::fs::read_to_string(comp.join("lvsd")).unwrap();
    let zsh = std::fs::read_to_string(comp.join("_lvsd")).unwrap();
    let fish = std::fs::read_to_string(comp.join("lvsd.fish")).unwrap();
    assert!(zsh.starts_with("#compdef lvsd"), "{zsh}");
    for s in &subs {
        assert!(bash.contains(&format!("lvsd,{s})")), "bash completion lacks {s}");
        assert!(zsh.contains(&format!("({s})")), "zsh completion lacks {s}");
        assert!(fish.contains(&format!("-a \"{s}\"")), "fish completion lacks {s}");
    }
}

/// The README's policy reference, read independently of the generator: the keys in the first
/// column of each table in "Writing a policy" and "Policy API reference", and the headings.
fn readme_reference() -> (BTreeSet<String>, Vec<String>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut keys = BTreeSet::new();
    let mut headings = Vec::new();
    let mut inside = false;
    for l in readme.lines() {
        if let Some(h) = l.strip_prefix("## ") {
            inside = h == "Writing a policy" || h == "Policy API reference";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(h) = l.strip_prefix("### ") {
            headings.push(h.replace('`', ""));
        }
        if let Some(cell) = l.strip_prefix("| `").and_then(|r| r.split('`').next()) {
            keys.insert(cell.to_string());
        }
    }
    (keys, headings)
}

#[test]
fn the_policy_man_page_carries_the_readme_reference() {
    let dir = tempfile::tempdir().unwrap();
    lvsd(&["generate", "man", dir.path().to_str().unwrap()]);
    let p = page(&dir.path().join("lvsd-policy.5"));
    assert!(p.contains(".TH LVSD-POLICY 5"), "{p}");
    let (keys, headings) = readme_reference();
    assert!(keys.len() > 50, "the README's tables were not found: {keys:?}");
    for k in &keys {
        // Each key is the tag of a tagged paragraph, in bold.
        assert!(p.contains(&format!(".TP\n\\fB{k}\\fR")), "lvsd-policy.5 lacks the key {k}");
    }
    for h in &headings {
        let plain = p.replace("\\fB", "").replace("\\fR", "").replace("\\(aq", "'").replace("\\*(Aq", "'");
        // The part before an em dash (written as \[u2014] in the page).
        let first = h.split(" \u{2014} ").next().unwrap().trim();
        assert!(plain.contains(first), "lvsd-policy.5 lacks the section {h:?}");
    }
}

#[test]
fn man_pages_are_clean_roff() {
    if Command::new("groff").arg("--version").output().is_err() {
        eprintln!("skipping the roff warnings check: no groff");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    lvsd(&["generate", "man", dir.path().to_str().unwrap()]);
    let mut n = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        let out = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(&path).output().unwrap();
        assert!(out.stderr.is_empty(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        n += 1;
    }
    assert!(n > 15, "only {n} pages");
}

#[test]
fn version_names_the_commit_and_build_date() {
    for flag in ["--version", "-V"] {
        let v = lvsd(&[flag]);
        let v = v.trim();
        let rest = v.strip_prefix(&format!("lvsd {} (commit ", env!("CARGO_PKG_VERSION"))).unwrap_or_else(|| panic!("{v}"));
        let (commit, date) = rest.strip_suffix(')').and_then(|r| r.split_once(", built ")).unwrap_or_else(|| panic!("{v}"));
        assert!(commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{v}");
        let d: Vec<&str> = date.split('-').collect();
        assert!(d.len() == 3 && d[0].len() == 4 && d.iter().all(|p| p.parse::<u32>().is_ok()), "{v}");
    }
    // In a git checkout the commit is HEAD's.
    let head = Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"]).output();
    if let Some(h) = head.ok().filter(|h| h.status.success()) {
        let head = String::from_utf8_lossy(&h.stdout).trim().to_string();
        assert!(lvsd(&["--version"]).contains(&format!("commit {head}")), "not HEAD's commit {head}");
    }
}

#[test]
fn status_and_metrics_carry_the_build() {
    let d = common::Daemon::start("lvsd.service \"web\" { vip = \"192.0.2.10:80\", reals = { \"198.51.100.11:80\" } }", "lvs01", &[]);
    let st = d.status();
    // The document's own format version stays where it was.
    assert_eq!(st["version"], 1);
    let b = &st["build"];
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
    let v = lvsd(&["--version"]);
    let (commit, date) = (b["commit"].as_str().unwrap(), b["date"].as_str().unwrap());
    assert!(v.contains(&format!("(commit {commit}, built {date})")), "{v} vs {b}");
    let page = lvsd::control::metrics_page::render(&lvsd::control::metrics_page::view(st.clone()).unwrap());
    let line = format!("lvsd_build_info{{version=\"{}\",commit=\"{commit}\",date=\"{date}\"}} 1", env!("CARGO_PKG_VERSION"));
    assert!(page.lines().any(|l| l == line), "no {line} in\n{page}");
    assert!(page.contains("# TYPE lvsd_build_info gauge"), "{page}");
}
