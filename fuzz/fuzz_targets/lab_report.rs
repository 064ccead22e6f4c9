//! Fuzz target for the lab's HTML report (src/lab/report.rs, compiled alone), which
//! `lvsd lab --from-json` draws from a file: no JSON may panic it or make it unbounded, and
//! text from the report never opens a tag.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/lab/report.rs"]
#[allow(dead_code)]
mod report;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let page = report::html(&v);
    assert!(page.ends_with("</html>\n"));
    assert!(!page.contains("<script"), "a tag from the report's text");
    // Output grows with the input: points and rows, and a cell per real server per phase.
    let n = data.len();
    assert!(page.len() <= 40_000 + 400 * n + 4 * n * n, "{} bytes from {n}", page.len());
});
