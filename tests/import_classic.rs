//! The seed's classic keepalived configurations, imported.

use std::path::{Path, PathBuf};

use lvsd::import::{ParseOptions, import_file, import_pair};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived").join(name)
}

#[test]
fn print_all() {
    for f in ["lvs-nat-howto.conf", "dr-master.conf", "dr-backup.conf"] {
        let imp = import_file(&fixture(f), &ParseOptions::default()).unwrap();
        println!("===== {f}\n{}", imp.lua);
        for w in imp.warnings { println!("WARN {w}"); }
    }
    let imp = import_pair(("lvs01", &fixture("dr-master.conf")), ("lvs02", &fixture("dr-backup.conf"))).unwrap();
    println!("===== pair\n{}", imp.lua);
}

#[test]
fn print_all_keywords() {
    let imp = import_file(&fixture("all-keywords.conf"), &ParseOptions::default()).unwrap();
    println!("{}", imp.lua);
    for w in imp.warnings { println!("WARN {w}"); }
}

#[test]
fn print_preprocess() {
    let imp = import_pair(("lvs01", &fixture("preprocess.conf")), ("lvs02", &fixture("preprocess.conf"))).unwrap();
    println!("{}", imp.lua);
    let imp = import_file(&fixture("include/main.conf"), &ParseOptions::default()).unwrap();
    println!("{}", imp.lua);
    for w in imp.warnings { println!("WARN {w}"); }
    let imp = import_file(&fixture("unsupported.conf"), &ParseOptions::default()).unwrap();
    println!("{}", imp.lua);
    for w in imp.warnings { println!("WARN {w}"); }
    for f in ["unbalanced", "unclosed", "unknown-block", "bad-number", "include-loop-a"] {
        println!("ERR {}", import_file(&fixture(&format!("malformed/{f}.conf")), &ParseOptions::default()).unwrap_err());
    }
}
