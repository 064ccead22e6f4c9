//! Bounded, deterministic fuzzing of the VRRP decoder without nightly: the cargo-fuzz
//! harness (fuzz/fuzz_targets/harness.rs) fed with mutated keepalived adverts and random
//! buffers from a fixed-seed PRNG. Must never panic; accepted adverts must round-trip.

mod common;
#[path = "../fuzz/fuzz_targets/harness.rs"]
mod harness;

use common::fuzz::{Rng, inputs, mutate};

fn seeds() -> Vec<Vec<u8>> {
    let out = inputs(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds"));
    assert!(out.len() >= 8);
    out
}

/// The advert's own edits: random bytes appended, the address count, or the first byte.
fn own(rng: &mut Rng, data: &mut Vec<u8>) {
    match rng.below(3) {
        0 => {
            for _ in 0..rng.below(20) {
                data.push(rng.next() as u8);
            }
        }
        // Count field and selector are where the interesting edges are.
        1 if data.len() > 4 => data[4] = rng.next() as u8,
        _ if !data.is_empty() => data[0] = rng.next() as u8,
        _ => {}
    }
}

#[test]
fn seeds_reach_the_accepting_path() {
    // The unmutated seeds are valid adverts under their selector: check() round-trips them.
    for s in seeds() {
        assert!(harness::check(&s), "seed {:02x?} rejected", &s[..4]);
    }
}

#[test]
fn mutated_adverts_never_panic() {
    let seeds = seeds();
    for seed in [0x5eed_0f1a_5d00_u64, 1, 2, 3] {
        let mut rng = Rng(seed);
        let mut accepted = 0usize;
        for _ in 0..30_000 {
            let mut d = seeds[rng.below(seeds.len())].clone();
            mutate(&mut rng, &mut d, own);
            accepted += usize::from(harness::check(&d));
        }
        // Some mutations (priority, selector bits) keep adverts valid: the Ok path runs.
        assert!(accepted > 500, "seed {seed}: only {accepted} accepted");
    }
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = Rng(0xdead_beef_cafe);
    for _ in 0..60_000 {
        let len = rng.below(80);
        let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Make many of them look like VRRP so the deeper checks run.
        if d.len() > 2 && rng.below(2) == 0 {
            d[1] = if rng.below(2) == 0 { 0x21 } else { 0x31 };
        }
        harness::check(&d);
    }
}
