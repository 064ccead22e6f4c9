//! Running guest scenarios (tests/vm/NAME.sh) in the VM tier from a test.

use std::process::Command;

/// Boot the VM once for `scenarios`. Skips (returns) when the VM tier cannot run here,
/// unless LVSD_REQUIRE_PRIVILEGED=1, which makes that a failure (and lets scripts/vm
/// install what it needs).
pub fn run_scenarios(what: &str, scenarios: &[&str]) {
    run_scenarios_with(what, &[], scenarios)
}

/// As [`run_scenarios`], with more programs (and the libraries they link) in the guest.
pub fn run_scenarios_with(what: &str, extras: &[&str], scenarios: &[&str]) {
    let required = lvsd::net::netns::privileged_required();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/vm");
    let mut cmd = Command::new(script);
    cmd.arg("--lvsd").arg(env!("CARGO_BIN_EXE_lvsd"));
    if required {
        cmd.arg("--install");
    }
    for e in extras {
        cmd.arg("--extra").arg(e);
    }
    let status = cmd.args(scenarios).status().expect("run scripts/vm");
    match status.code() {
        Some(0) => {}
        Some(77) => {
            lvsd::net::netns::cannot_run(what, "the VM tier cannot run here");
        }
        other => panic!("{what}: scripts/vm exited with {other:?} (console log above)\n{}", failed_claims()),
    }
}

/// The guest's FAIL lines and scenario ends, so that the reason is in the panic message even
/// when only the tail of a long run's output is kept.
fn failed_claims() -> String {
    let cache = std::env::var("LVSD_VM_CACHE").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/vm-cache").into());
    let log = std::fs::read_to_string(format!("{cache}/console.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("FAIL") || l.contains(" broken: ") || l.contains("SCENARIO-END")).collect();
    lines.join("\n")
}
