//! The fixtures are real keepalived configurations: keepalived 2.2.7 itself (`keepalived -t`)
//! reads them, and every keyword it does not know is one the importer warns about, at the
//! same line. Needs the Debian keepalived package (scripts/test installs it).

mod import_support;
use import_support::*;

use std::process::Command;

fn keepalived_available() -> bool {
    let found = Command::new("keepalived").arg("--version").output().is_ok();
    if !found {
        assert!(std::env::var("LVSD_REQUIRE_PRIVILEGED").as_deref() != Ok("1"), "keepalived is not installed (apt-get install keepalived)");
        eprintln!("skipped: keepalived is not installed");
    }
    found
}

/// `(FILE: Line N) Unknown keyword 'x'` or `(Line N) Unknown keyword 'x'` -> (N, x)
fn unknown_keywords(stderr: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for l in stderr.lines() {
        let Some(kw) = l.split("Unknown keyword '").nth(1).and_then(|r| r.split('\'').next()) else { continue };
        let Some(line) = l.split("Line ").nth(1).and_then(|r| r.split(')').next()).and_then(|n| n.trim().parse().ok()) else { continue };
        out.push((line, kw.to_string()));
    }
    out.sort();
    out
}

#[test]
fn keepalived_reads_the_fixtures_and_we_warn_where_it_does() {
    if !keepalived_available() {
        return;
    }
    for (f, id) in [
        ("lvs-nat-howto.conf", None),
        ("dr-master.conf", None),
        ("dr-backup.conf", None),
        ("all-keywords.conf", None),
        ("unsupported.conf", None),
        ("defaults.conf", None),
        ("normalized.conf", None),
        ("preprocess.conf", Some("lvs01")),
        ("include/main.conf", None),
    ] {
        let mut cmd = Command::new("keepalived");
        cmd.args(["-t", "-l", "-f"]).arg(fixture(f));
        if let Some(id) = id {
            cmd.args(["-i", id]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // keepalived's own parse errors (as opposed to this host lacking eth1 etc.).
        for bad in ["Unknown configuration entry", "missing '}'", "Extra '}'", "Invalid", "Bad"] {
            assert!(!stderr.contains(bad), "keepalived rejects {f}:\n{stderr}");
        }
        let imp = match id {
            Some(id) => import_as(f, id),
            None => import(f),
        };
        for (line, kw) in unknown_keywords(&stderr) {
            let hit = imp.warnings.iter().any(|w| w.loc.line == line && w.message.contains(&format!("'{kw}'")));
            assert!(hit, "{f}:{line}: keepalived does not know '{kw}' and lvsd import says nothing:\n{:#?}", imp.warnings);
        }
    }
}

/// keepalived's own sample configurations (Debian ships them with the package): every one
/// imports, and the result passes `lvsd check`.
#[test]
fn keepalived_samples_import_and_pass_check() {
    if !keepalived_available() {
        return;
    }
    let dir = std::path::Path::new("/usr/share/doc/keepalived/samples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("keepalived.conf.") {
            continue;
        }
        let imp = lvsd::import::import_file(&path, &Default::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        n += 1;
        plan(&imp.lua, "n1");
        // Whatever keepalived itself does not know, we said something about.
        let out = Command::new("keepalived").args(["-t", "-l", "-f"]).arg(&path).output().unwrap();
        for (line, kw) in unknown_keywords(&String::from_utf8_lossy(&out.stderr)) {
            let hit = imp.warnings.iter().any(|w| w.loc.line == line && w.message.contains(&format!("'{kw}'")));
            assert!(hit, "{name}:{line}: keepalived does not know '{kw}' and lvsd import says nothing:\n{:#?}", imp.warnings);
        }
    }
    assert!(n >= 20, "only {n} samples found in {}", dir.display());
}
