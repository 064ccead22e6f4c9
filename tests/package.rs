//! The Debian package: built with cargo-deb, installed with dpkg on a clean Debian 12 root made
//! by debootstrap, then `lvsd --version`, `lvsd check` on the shipped policy and
//! `systemd-analyze verify` on the installed units, and `lvsd lab` finding the packaged guest
//! builder (/usr/share/lvsd/vm) on this kernel without IPVS (tests/package/run.sh does the work and
//! prints a PASS/FAIL line per check). Root only; fails instead of skipping under
//! LVSD_REQUIRE_PRIVILEGED=1.
//!
//! The first run installs cargo-deb (into Cargo's bin directory) and debootstraps the root
//! (cached under target/package/); later runs take under a minute.

mod common;

use std::process::Command;

#[test]
fn debian_package_installs_and_verifies_on_a_clean_root() {
    if !common::need_root("the Debian package test") {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/package/run.sh");
    // Bounded: a first run builds cargo-deb and debootstraps (measured here on a busy machine:
    // 19 and 8 minutes); later runs take under a minute.
    let out = Command::new("timeout").args(["--kill-after=10", "1800", "bash", script, "--binary", common::lvsd_bin()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tests/package/run.sh failed ({}):\n{stdout}", out.status);
    assert!(stdout.contains("package test: all checks passed"), "{stdout}");
    assert!(!stdout.contains("\nFAIL"), "{stdout}");
}
