//! Helpers shared by the import tests: fixtures, importing, and planning through the real
//! policy engine (what `lvsd check` and `lvsd plan` do).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lvsd::import::{Import, ParseOptions, import_file, import_pair};
use lvsd::policy::{self, Limits, LoadOptions};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived").join(name)
}

pub fn import(name: &str) -> Import {
    import_file(&fixture(name), &ParseOptions::default()).unwrap_or_else(|e| panic!("import {name}: {e}"))
}

pub fn import_as(name: &str, config_id: &str) -> Import {
    let opts = ParseOptions { config_id: Some(config_id.into()) };
    import_file(&fixture(name), &opts).unwrap_or_else(|e| panic!("import {name}: {e}"))
}

pub fn pair(a: (&str, &str), b: (&str, &str)) -> Import {
    import_pair((a.0, &fixture(a.1)), (b.0, &fixture(b.1))).unwrap_or_else(|e| panic!("pair: {e}"))
}

pub fn load(lua: &str, node: &str) -> policy::Policy {
    let opts = LoadOptions { node: node.into(), limits: Limits { memory: 64 << 20, instructions: 200_000_000, ..Limits::default() } };
    policy::load_source(lua, Path::new("policy.lua"), Path::new("."), &opts)
        .unwrap_or_else(|e| panic!("the imported policy does not pass lvsd check:\n{e}\n--- policy:\n{lua}"))
}

/// The model `lvsd check --node NODE` builds from the policy.
pub fn model(lua: &str, node: &str) -> lvsd::model::Model {
    load(lua, node).model
}

/// `lvsd plan --node NODE` as text and as JSON.
pub fn plan(lua: &str, node: &str) -> (String, String) {
    let p = load(lua, node);
    let table = lvsd::desired::all_up(&p.model);
    let text = lvsd::plan::text(&p.model, &table);
    let json = serde_json::to_string_pretty(&lvsd::plan::json(&p.model, &table)).unwrap();
    (text, json)
}

/// The warnings as `file-name:line: message`, without the fixture directory.
pub fn warnings(imp: &Import) -> Vec<String> {
    let dir = fixture("").display().to_string();
    imp.warnings.iter().map(|w| w.to_string().replace(&dir, "")).collect()
}
