//! Bounded, deterministic fuzzing of the check response parsers without nightly: the
//! cargo-fuzz harnesses (fuzz/fuzz_targets/check_harness.rs) fed with mutations of their
//! starting inputs (fuzz/inputs/TARGET/) from a fixed-seed PRNG. Must never panic; pieces
//! and whole must agree (the harness asserts it).

#[path = "../fuzz/fuzz_targets/check_harness.rs"]
mod check_harness;

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
        (self.next() % n.max(1) as u64) as usize
    }
}

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/inputs").join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

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
                let t = TOKENS[rng.below(TOKENS.len())];
                let i = rng.below(data.len() + 1);
                data.splice(i..i, t.iter().copied());
            }
            4 if !data.is_empty() => {
                // a run of one byte, as a hostile server would send
                let i = rng.below(data.len());
                let run = vec![data[i]; rng.below(3000)];
                data.splice(i..i, run);
            }
            _ if !data.is_empty() => data[0] = rng.next() as u8,
            _ => {}
        }
    }
}

fn run(target: &str, case: fn(&[u8]), rounds: usize) {
    let seeds = inputs(target);
    let mut rng = Rng(0x5eed_0000 ^ target.len() as u64);
    for s in &seeds {
        case(s);
    }
    for _ in 0..rounds {
        let mut d = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut d);
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
