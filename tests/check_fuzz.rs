//! Bounded, deterministic fuzzing of the check response parsers without nightly: the
//! cargo-fuzz harnesses (fuzz/fuzz_targets/check_harness.rs) fed with mutations of their
//! starting inputs (fuzz/inputs/TARGET/) from a fixed-seed PRNG. Must never panic; pieces
//! and whole must agree (the harness asserts it).

#[path = "../fuzz/fuzz_targets/check_harness.rs"]
mod check_harness;
mod common;

use common::fuzz::{Rng, inputs, mutate};

/// Tokens that make parsers take their other paths.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"HTTP/1.1 ",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: ",
    b"ffffffffffffffff",
    b"0\r\n",
    b";",
    b"-",
    b" ",
    b"250",
    b"\xc0",
];

/// The target's own edits: a token of the formats spliced in, a long run of one byte (as a
/// hostile server would send), or the first byte changed.
fn own(rng: &mut Rng, data: &mut Vec<u8>) {
    match rng.below(3) {
        0 => {
            let t = TOKENS[rng.below(TOKENS.len())];
            let i = rng.below(data.len() + 1);
            data.splice(i..i, t.iter().copied());
        }
        1 if !data.is_empty() => {
            let i = rng.below(data.len());
            let run = vec![data[i]; rng.below(3000)];
            data.splice(i..i, run);
        }
        _ if !data.is_empty() => data[0] = rng.next() as u8,
        _ => {}
    }
}

fn run(target: &str, case: fn(&[u8]), rounds: usize) {
    let seeds = inputs(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/inputs").join(target));
    assert!(!seeds.is_empty());
    let mut rng = Rng(0x5eed_0000 ^ target.len() as u64);
    for s in &seeds {
        case(s);
    }
    for _ in 0..rounds {
        let mut d = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut d, own);
        case(&d);
        // and some noise of its own
        let noise: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        case(&noise);
    }
}

#[test]
fn http_responses() {
    run("http_response", check_harness::http, 5_000);
}

#[test]
fn dns_replies() {
    run("dns_reply", check_harness::dns, 5_000);
}

#[test]
fn smtp_replies() {
    run("smtp_reply", check_harness::smtp, 5_000);
}

#[test]
fn icmp_replies() {
    run("icmp_reply", check_harness::icmp, 5_000);
}

#[test]
fn track_files() {
    run("track_file", check_harness::track_file, 5_000);
}

#[test]
fn proc_entries() {
    run("proc_entry", check_harness::proc_entry, 5_000);
}
