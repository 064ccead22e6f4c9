//! Malformed configurations fail with file:line; pairs that cannot be one VRRP pair are refused.

mod import_support;
use import_support::*;

use lvsd::import::{ParseOptions, import_file, import_pair};

fn error(name: &str) -> String {
    let dir = fixture("").display().to_string();
    match import_file(&fixture(name), &ParseOptions::default()) {
        Ok(imp) => panic!("{name} imported:\n{}", imp.lua),
        Err(e) => e.to_string().replace(&dir, ""),
    }
}

#[test]
fn unbalanced_close_brace() {
    assert_eq!(error("malformed/unbalanced.conf"), "malformed/unbalanced.conf:4: '}' without a matching '{'");
}

#[test]
fn unclosed_block_names_where_it_opened() {
    assert_eq!(error("malformed/unclosed.conf"), "malformed/unclosed.conf:4: block opened here is never closed (missing '}')");
}

#[test]
fn unknown_block() {
    assert_eq!(
        error("malformed/unknown-block.conf"),
        "malformed/unknown-block.conf:4: unknown block 'virtual_servr' (not a keepalived top-level block)"
    );
}

#[test]
fn bad_number() {
    assert_eq!(error("malformed/bad-number.conf"), "malformed/bad-number.conf:4: virtual_router_id: 'high' is not a valid number");
}

#[test]
fn include_loop_shows_the_chain() {
    let e = error("malformed/include-loop-a.conf");
    assert_eq!(
        e,
        "malformed/include-loop-b.conf:2: include loop: malformed/include-loop-a.conf -> malformed/include-loop-b.conf -> malformed/include-loop-a.conf"
    );
}

#[test]
fn inline_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "vrrp_instance VI_1 {\n  virtual_router_id 256\n  virtual_ipaddress {\n    192.0.2.1\n  }\n}\n",
            "x.conf:2: virtual_router_id: '256' is not a valid number (range 1..255)",
        ),
        ("virtual_server 192.0.2.300 80 {\n}\n", "x.conf:1: virtual_server: '192.0.2.300' is not valid (an IPv4 or IPv6 address)"),
        ("global_defs {\n  router_id \"unterminated\n}\n", "x.conf:2: unterminated quoted string"),
        (
            "vrrp_instance VI_1 {\n  virtual_ipaddress {\n    192.0.2.1\n  }\n  bogus_block {\n  }\n}\n",
            "x.conf:5: unknown block 'bogus_block' (not a keepalived vrrp_instance block)",
        ),
        (
            "~SEQ(A, 1, 3) real_server 192.0.2.$A 80\n",
            "x.conf:1: '~SEQ' (sequence/list blocks) is not supported by lvsd import (expand it by hand)",
        ),
    ];
    for (text, want) in cases {
        let p = dir.path().join("x.conf");
        std::fs::write(&p, text).unwrap();
        let got = import_file(&p, &ParseOptions::default()).unwrap_err().to_string();
        assert_eq!(got.replace(&format!("{}/", dir.path().display()), ""), want, "for:\n{text}");
    }
}

/// The DR backup file with one line changed, written next to the fixtures' copy.
fn backup_with(dir: &tempfile::TempDir, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("dr-backup.conf")).unwrap();
    assert!(text.contains(from), "{from}");
    let p = dir.path().join("dr-backup.conf");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    p
}

#[test]
fn pair_refuses_what_a_vrrp_pair_must_agree_on() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "virtual_router_id 51",
            "virtual_router_id 52",
            "vrrp_instance VI_1: virtual_router_id: lvs01 (MASTER:19) = 51, lvs02 (BACKUP:19) = 52",
        ),
        (
            "auth_pass 1111",
            "auth_pass 2222",
            "vrrp_instance VI_1: authentication: lvs01 (MASTER:25) = \"1111\", lvs02 (BACKUP:25) = \"2222\"",
        ),
        (
            "      198.51.100.123\n",
            "      198.51.100.124\n",
            "vrrp_instance VI_1: virtual_ipaddress: lvs01 (MASTER:27) = { \"198.51.100.123\" }, lvs02 (BACKUP:27) = { \"198.51.100.124\" }",
        ),
        (
            "advert_int 1",
            "advert_int 2",
            "vrrp_instance VI_1: advert_int: lvs01 (MASTER:14) = 1 (keepalived's default), lvs02 (BACKUP:22) = 2",
        ),
        ("vrrp_instance VI_1", "vrrp_instance VI_2", "vrrp_instance VI_1: only on lvs01 (MASTER:14)"),
    ];
    let master = fixture("dr-master.conf");
    for (from, to, want) in cases {
        let backup = backup_with(&dir, from, to);
        let err = import_pair(("lvs01", &master), ("lvs02", &backup)).unwrap_err().to_string();
        let err = err.replace(&format!("{}:", master.display()), "MASTER:").replace(&format!("{}:", backup.display()), "BACKUP:");
        assert!(err.starts_with("refusing to merge lvs01 and lvs02 into one policy; they differ where a VRRP pair must agree:\n"), "{err}");
        assert!(err.lines().any(|l| l.trim() == want), "want {want:?} in:\n{err}");
    }
}

#[test]
fn pair_refusal_lists_every_difference() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("dr-backup.conf"))
        .unwrap()
        .replace("virtual_router_id 51", "virtual_router_id 52")
        .replace("auth_pass 1111", "auth_pass 2222");
    let p = dir.path().join("b.conf");
    std::fs::write(&p, text).unwrap();
    let err = import_pair(("lvs01", &fixture("dr-master.conf")), ("lvs02", &p)).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 3, "{err}");
}

#[test]
fn pair_needs_two_node_names() {
    let f = fixture("dr-master.conf");
    let err = import_pair(("lvs01", &f), ("lvs01", &f)).unwrap_err().to_string();
    assert_eq!(err, "node names must differ (both are 'lvs01')");
}

#[test]
fn every_error_and_warning_is_reported_in_one_run_in_file_order() {
    let dir = fixture("").display().to_string();
    let e = import_file(&fixture("malformed/several-errors.conf"), &ParseOptions::default()).unwrap_err();
    let lines: Vec<String> = e.report().iter().map(|l| l.replace(&dir, "")).collect();
    assert_eq!(
        lines,
        vec![
            "malformed/several-errors.conf:5: smtp_connect_timeout: 'soon' is not a valid number",
            "malformed/several-errors.conf:9: virtual_router_id: '300' is not a valid number (range 1..255)",
            "malformed/several-errors.conf:10: keyword 'bogus_keyword' is not supported by lvsd (not a keepalived 2.2 keyword here; keepalived ignores it too)",
            "malformed/several-errors.conf:19: real_server weight 'heavy' is not in 0..2147483647; keepalived ignores it",
        ]
    );
    // The error alone (Display) lists the errors, one per line.
    assert_eq!(e.to_string().lines().count(), 2);
}
