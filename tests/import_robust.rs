//! The importer never panics: mangled configurations import or fail with an error.

mod import_support;
use import_support::fixture;

use lvsd::import::parser::{ParseOptions, parse_str};
use lvsd::import::translate::translate;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "\"",
    "'",
    "\\",
    "\n",
    " ",
    "$X=1\n",
    "$X",
    "${X}",
    "@lvs01 ",
    "@^x ",
    "!",
    "#",
    "-",
    "/",
    "::",
    "0",
    "999999999999999999999",
    "include *.conf\n",
    "real_server",
    "virtual_server",
    "vrrp_instance",
    "fwmark",
    "group",
    "TCP_CHECK {",
    "~SEQ(",
    "é",
];

#[test]
fn mangled_fixtures_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let sources: Vec<String> = ["all-keywords.conf", "lvs-nat-howto.conf", "normalized.conf", "preprocess.conf", "unsupported.conf"]
        .iter()
        .map(|f| std::fs::read_to_string(fixture(f)).unwrap())
        .collect();
    let name = fixture("mangled.conf");
    for round in 0..1000 {
        let src = &sources[round % sources.len()];
        let mut text: Vec<char> = src.chars().collect();
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(text.len());
            match rng.below(3) {
                0 => {
                    let end = (at + 1 + rng.below(20)).min(text.len());
                    text.drain(at..end);
                }
                1 => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    for (i, c) in piece.chars().enumerate() {
                        text.insert(at + i, c);
                    }
                }
                _ => {
                    // Swap two characters.
                    let last = text.len().saturating_sub(1);
                    let other = rng.below(text.len());
                    text.swap(at.min(last), other.min(last));
                }
            }
        }
        let text: String = text.into_iter().collect();
        let id = if round % 2 == 0 { Some("lvs01".to_string()) } else { None };
        let result = std::panic::catch_unwind(|| {
            let opts = ParseOptions { config_id: id.clone() };
            if let Ok((nodes, mut w)) = parse_str(&name, &text, &opts)
                && let Ok(doc) = translate(&nodes, &mut w)
            {
                lvsd::import::lua::render(&doc, "--", None);
            }
        });
        assert!(result.is_ok(), "round {round} panicked on:\n{text}");
    }
}
