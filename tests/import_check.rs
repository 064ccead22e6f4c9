//! Every imported fixture must be a valid policy for `lvsd check`.

use std::path::{Path, PathBuf};

use lvsd::import::{ParseOptions, import_file, import_pair};
use lvsd::policy::{self, Limits, LoadOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived").join(name)
}

fn opts(node: &str) -> LoadOptions {
    LoadOptions { node: node.into(), limits: Limits { memory: 64 << 20, instructions: 200_000_000 } }
}

fn plan(lua: &str, node: &str) -> Result<String, String> {
    let p = policy::load_source(lua, Path::new("imported.lua"), Path::new("."), &opts(node)).map_err(|e| format!("{e}\n---\n{lua}"))?;
    Ok(lvsd::plan::text(&p.model, &lvsd::desired::all_up(&p.model)))
}

#[test]
fn print_checks() {
    for f in ["lvs-nat-howto.conf", "dr-master.conf", "dr-backup.conf", "all-keywords.conf", "unsupported.conf", "include/main.conf"] {
        let imp = import_file(&fixture(f), &ParseOptions::default()).unwrap();
        match plan(&imp.lua, "lvs01") { Ok(p) => println!("== {f}\n{p}"), Err(e) => println!("== {f} FAILED\n{e}") }
    }
    let imp = import_pair(("lvs01", &fixture("dr-master.conf")), ("lvs02", &fixture("dr-backup.conf"))).unwrap();
    println!("{:?}", plan(&imp.lua, "lvs01"));
}
