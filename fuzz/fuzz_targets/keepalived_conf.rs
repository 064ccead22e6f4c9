//! Fuzz target for the keepalived.conf importer: any bytes, read as a configuration by the
//! pure parser (no file access: `include` is reported, not followed), translated and
//! rendered, must give a policy or an error, never a panic, a stack overflow or unbounded
//! memory. The importer is compiled from the project's sources (std and thiserror only).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/import/mod.rs"]
#[allow(dead_code)]
mod import;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line may say which config-id applies, so `@id` lines are reached both ways.
    let opts = import::ParseOptions { config_id: text.starts_with('@').then(|| "lvs01".to_string()) };
    let Ok((nodes, mut warnings)) = import::parser::parse_text(Path::new("fuzz.conf"), text, &opts) else { return };
    if let Ok(doc) = import::translate::translate(&nodes, &mut warnings) {
        let lua = import::lua::render(&doc, "--", None);
        assert!(!lua.is_empty());
    }
});
