//! `lvsd import` end to end: its output passes `lvsd check`, and the pair's `lvsd plan`
//! equals the single imports' plans.

mod import_support;
use import_support::fixture;

use std::path::Path;
use std::process::{Command, Output};

fn lvsd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsd")).args(args).env("LVSD_LOG", "error").output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn every_fixture_imports_to_a_policy_lvsd_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "lvs-nat-howto.conf",
        "dr-master.conf",
        "dr-backup.conf",
        "all-keywords.conf",
        "unsupported.conf",
        "defaults.conf",
        "normalized.conf",
        "include/main.conf",
    ] {
        let out = dir.path().join(f.replace('/', "_") + ".lua");
        let o = lvsd(&["import", s(&fixture(f)), "-o", s(&out)]);
        ok(&o, &format!("import {f}"));
        assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("wrote {}", out.display())));
        ok(&lvsd(&["check", s(&out), "--node", "lvs01"]), &format!("check of {f}"));
    }
    let out = dir.path().join("pp.lua");
    ok(&lvsd(&["import", s(&fixture("preprocess.conf")), "--config-id", "lvs01", "-o", s(&out)]), "import preprocess");
    ok(&lvsd(&["check", s(&out), "--node", "lvs01"]), "check preprocess");
}

#[test]
fn pair_plan_equals_single_plans() {
    let dir = tempfile::tempdir().unwrap();
    let pair = dir.path().join("pair.lua");
    let a = format!("lvs01={}", s(&fixture("dr-master.conf")));
    let b = format!("lvs02={}", s(&fixture("dr-backup.conf")));
    ok(&lvsd(&["import", "--pair", &a, &b, "-o", s(&pair)]), "import --pair");
    for (node, file) in [("lvs01", "dr-master.conf"), ("lvs02", "dr-backup.conf")] {
        let single = dir.path().join(format!("{node}.lua"));
        ok(&lvsd(&["import", s(&fixture(file)), "-o", s(&single)]), "import");
        for json in [false, true] {
            let mut args = vec!["plan", "--node", node];
            if json {
                args.push("--json");
            }
            let p = ok(&lvsd(&[&args[..], &[s(&pair)]].concat()), "plan pair");
            let q = ok(&lvsd(&[&args[..], &[s(&single)]].concat()), "plan single");
            assert_eq!(p, q, "node {node} json {json}");
        }
    }
}

#[test]
fn policy_goes_to_stdout_and_warnings_to_stderr() {
    let o = lvsd(&["import", s(&fixture("dr-master.conf"))]);
    let out = ok(&o, "import");
    assert!(out.contains("lvsd.vrrp \"VI_1\" {"));
    assert!(!out.contains("nb_get_retry is"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dr-master.conf:36: keyword 'nat_mask' is not supported by lvsd"), "{err}");
}

#[test]
fn malformed_input_exits_1_with_file_and_line() {
    let o = lvsd(&["import", s(&fixture("malformed/unbalanced.conf"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.trim_end().ends_with("malformed/unbalanced.conf:4: '}' without a matching '{'"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(lvsd(&["import"]).status.code(), Some(2));
    assert_eq!(lvsd(&["import", "--pair", "lvs01", "x"]).status.code(), Some(2));
    let f = fixture("dr-master.conf");
    let a = format!("lvs01={}", s(&f));
    assert_eq!(lvsd(&["import", s(&f), "--pair", &a, &a]).status.code(), Some(2));
}

#[test]
fn every_error_is_reported_with_exit_1() {
    let o = lvsd(&["import", s(&fixture("malformed/several-errors.conf"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    for (line, at) in lines.iter().zip([":5: ", ":9: ", ":10: ", ":19: "]) {
        assert!(line.contains(&format!("several-errors.conf{at}")), "{line} is not at {at}:\n{err}");
    }
}

/// Every `.conf` under the fixture directory, sub-directories included.
fn all_fixtures() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![fixture("")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "conf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_import_that_exits_0_passes_lvsd_check() {
    // The property over the whole fixture set, with and without a config-id: an import
    // either fails (exit 1, with file:line) or writes a policy `lvsd check` accepts.
    let dir = tempfile::tempdir().unwrap();
    let (mut passed, mut refused) = (0, 0);
    for f in all_fixtures() {
        for id in [None, Some("lvs01")] {
            let out = dir.path().join("policy.lua");
            let _ = std::fs::remove_file(&out);
            let mut args = vec!["import", s(&f), "-o", s(&out)];
            if let Some(id) = id {
                args.extend(["--config-id", id]);
            }
            let o = lvsd(&args);
            let what = format!("{} (config-id {id:?})", f.display());
            match o.status.code() {
                Some(0) => {
                    ok(&lvsd(&["check", s(&out), "--node", id.unwrap_or("lvs01")]), &format!("check of {what}"));
                    passed += 1;
                }
                Some(1) => {
                    assert!(!out.exists(), "{what}: a failed import writes nothing");
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(err.lines().all(|l| l.contains(".conf:") || l.contains("/dev/")), "{what}: every line has file:line:\n{err}");
                    refused += 1;
                }
                c => panic!("{what}: exit {c:?}\n{}", String::from_utf8_lossy(&o.stderr)),
            }
        }
    }
    eprintln!("{passed} imports passed lvsd check, {refused} refused");
    assert!(passed >= 20, "the fixture set imports: {passed} passed, {refused} refused");
}
