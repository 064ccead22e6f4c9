//! The bounded, deterministic fuzzing the `*_fuzz` tests share: a fixed-seed PRNG, the
//! byte mutations every target uses, and the starting inputs of a directory.
#![allow(dead_code)]

use std::path::Path;

/// xorshift64*: small, deterministic, good enough to pick mutations.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to five edits of `data`: a bit flipped, a byte overwritten, the end cut off, or
/// (half the time) an edit of the target's own, `own`, which knows where its format breaks.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, own: impl Fn(&mut Rng, &mut Vec<u8>)) {
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
            _ => own(rng, data),
        }
    }
}

/// Every file in `dir`, sorted by content (so the order does not depend on the file system).
pub fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}
