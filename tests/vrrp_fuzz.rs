//! Bounded, deterministic fuzzing of the VRRP decoder without nightly: the cargo-fuzz
//! harness (fuzz/fuzz_targets/harness.rs) fed with mutated keepalived adverts and random
//! buffers from a fixed-seed PRNG. Must never panic; accepted adverts must round-trip.

#[path = "../fuzz/fuzz_targets/harness.rs"]
mod harness;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut out: Vec<Vec<u8>> =
        std::fs::read_dir(&dir).expect("fuzz/seeds exists").map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    out.sort();
    assert!(out.len() >= 8);
    out
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let n = rng.below(data.len() + 1);
                data.truncate(n);
            }
            3 => {
                for _ in 0..rng.below(20) {
                    data.push(rng.next() as u8);
                }
            }
            // Count field and selector are where the interesting edges are.
            4 if data.len() > 4 => data[4] = rng.next() as u8,
            _ if !data.is_empty() => data[0] = rng.next() as u8,
            _ => {}
        }
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
            mutate(&mut rng, &mut d);
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
