//! Bounded string patterns. A hook cannot interrupt one C call, and Lua's pattern matcher
//! backtracks: `string.find(("a"):rep(1e6), ".-.-b")` runs for hours inside one call. So
//! `string.find`, `match`, `gmatch` and `gsub` first estimate the worst case of the call from
//! the pattern's shape and the subject's length, and refuse it (an error naming the line)
//! when the estimate is over [`MAX_COST`]. Pure (no Lua here: `sandbox` installs the
//! wrappers), and fuzzed (fuzz/fuzz_targets/pattern_cost.rs).
//!
//! The estimate is a bound, not a guess: the q variable-length items (quantified with `*`,
//! `+`, `-`, `?`, balances `%b`, back-references `%1`) of one attempt can end at most at
//! C(n + q, q) combinations of positions of the subject, and each combination compares at
//! most every item: `starts * items * C(n + q, q)`, with one start when the pattern is
//! anchored (`^`, not for `gmatch`) and n + 1 otherwise. Without variable-length items a
//! step is a plain character comparison, counted as 1/8 (measured). Plain `find` (fourth
//! argument true) is `n * pattern length / 8`. It is pessimistic: a literal prefix usually
//! makes the real cost linear. What it allows within [`MAX_COST`]: a pattern without
//! quantifiers on any string the memory limit allows; an anchored pattern with one quantifier
//! on megabytes; an unanchored one on a few KiB (`".-b"`: 7 KiB); two quantifiers unanchored
//! on several hundred bytes. Past that, cut the subject (`s:sub(1, 4096)`), anchor the
//! pattern, or find a literal first (`s:find("\"status\":", 1, true)`).

/// The most steps one pattern call may take in the worst case. Measured here (debug build of
/// Lua 5.4.7's matcher, worst subjects): 1e8 steps of `.-b` (one quantifier) take about 0.8 s
/// (~0.25 s optimised); more quantifiers take less per step.
pub const MAX_COST: f64 = 1e8;

/// What the cost of a pattern depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Single-character items and other elements compared at each step.
    pub items: u32,
    /// Items that may match a variable length: quantified items, `%b`, back-references.
    pub quantifiers: u32,
    /// Starts with `^`.
    pub anchored: bool,
}

/// The shape of a Lua 5.4 pattern (lstrlib.c's grammar; a malformed pattern is left for
/// Lua to report, this only needs an upper bound).
pub fn shape(p: &[u8]) -> Shape {
    let mut s = Shape { anchored: p.first() == Some(&b'^'), ..Shape::default() };
    let mut i = usize::from(s.anchored);
    while i < p.len() {
        let start = i;
        match p[i] {
            b'(' | b')' => {
                i += 1;
                continue;
            }
            b'$' if i + 1 == p.len() => {
                i += 1;
                continue;
            }
            b'%' => match p.get(i + 1) {
                Some(b'b') => {
                    s.quantifiers += 1;
                    s.items += 1;
                    i += 4;
                    continue;
                }
                Some(b'f') => {
                    s.items += 1;
                    i = skip_set(p, i + 2);
                    continue;
                }
                Some(b'1'..=b'9') => {
                    s.quantifiers += 1;
                    s.items += 1;
                    i += 2;
                    continue;
                }
                _ => i += 2,
            },
            b'[' => i = skip_set(p, i),
            _ => i += 1,
        }
        debug_assert!(i > start);
        s.items += 1;
        if matches!(p.get(i), Some(b'*' | b'+' | b'-' | b'?')) {
            s.quantifiers += 1;
            i += 1;
        }
    }
    s
}

/// The index after a set `[...]` starting at `i` (the end of the pattern if unclosed).
fn skip_set(p: &[u8], i: usize) -> usize {
    if p.get(i) != Some(&b'[') {
        return i + 1;
    }
    let mut j = i + 1;
    if p.get(j) == Some(&b'^') {
        j += 1;
    }
    // A ']' right after '[' or '[^' is a member, not the end.
    if p.get(j) == Some(&b']') {
        j += 1;
    }
    while j < p.len() {
        match p[j] {
            b'%' => j += 2,
            b']' => return j + 1,
            _ => j += 1,
        }
    }
    p.len()
}

/// The worst-case steps of matching a pattern of `shape` against `n` bytes.
pub fn cost(shape: Shape, n: usize, anchor_counts: bool) -> f64 {
    let n = n as f64;
    let starts = if shape.anchored && anchor_counts { 1.0 } else { n + 1.0 };
    // C(n + q, q), as a product that stays finite in f64 (it saturates to inf at worst).
    let ends: f64 = (1..=shape.quantifiers.min(1000)).map(|i| (n + f64::from(i)) / f64::from(i)).product();
    let step = if shape.quantifiers == 0 { 1.0 / 8.0 } else { 1.0 };
    starts * f64::from(shape.items.max(1)) * ends * step
}

/// Why `function(subject, pattern, init, plain)` is refused, if it is.
pub fn refuse(function: &str, subject: &[u8], init: Option<i64>, pattern: &[u8], plain: bool) -> Option<String> {
    // Lua's init: 1-based, negative from the end.
    let len = subject.len() as i64;
    let from = match init.unwrap_or(1) {
        i if i > 0 => i - 1,
        0 => 0,
        i => (len + i).max(0),
    }
    .clamp(0, len);
    let n = (len - from) as usize;
    let c = if plain { n as f64 * pattern.len().max(1) as f64 / 8.0 } else { cost(shape(pattern), n, function != "gmatch") };
    if c <= MAX_COST {
        return None;
    }
    Some(format!(
        "string.{function}: this pattern may take too long on {n} bytes (up to {c:.0e} steps; the limit is {MAX_COST:.0e} because one pattern call cannot be interrupted): cut the subject (s:sub(1, 4096)), anchor the pattern with '^', or find a literal first (s:find(text, 1, true))"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let sh = |p: &str| shape(p.as_bytes());
        assert_eq!(sh("abc"), Shape { items: 3, quantifiers: 0, anchored: false });
        assert_eq!(sh("^HTTP/1%.%d (%d+)"), Shape { items: 10, quantifiers: 1, anchored: true });
        assert_eq!(sh(".-.-b"), Shape { items: 3, quantifiers: 2, anchored: false });
        assert_eq!(sh("[%]x]*%b()%1$"), Shape { items: 3, quantifiers: 3, anchored: false });
        assert_eq!(sh("[]]?[^]a]"), Shape { items: 2, quantifiers: 1, anchored: false });
        assert_eq!(sh("%f[%w]%w+"), Shape { items: 2, quantifiers: 1, anchored: false });
        assert_eq!(sh("[unclosed"), Shape { items: 1, quantifiers: 0, anchored: false });
        assert_eq!(sh("%"), Shape { items: 1, quantifiers: 0, anchored: false });
    }

    #[test]
    fn refusals() {
        let big = vec![b'a'; 1 << 20];
        assert!(refuse("find", &big, None, b"needle", false).is_none());
        assert!(refuse("find", &big, None, b"needle", true).is_none());
        assert!(refuse("match", &big, None, b"^(%d+)", false).is_none());
        assert!(refuse("find", &big, None, b".-b", false).is_some());
        assert!(refuse("find", &big, Some(-1000), b".-b", false).is_none());
        assert!(refuse("gmatch", &big, None, b"^.-b", false).is_some());
        let small = vec![b'a'; 100];
        assert!(refuse("find", &small, None, b".-.-.-b", false).is_none());
        assert!(refuse("find", &small, None, b".-.-.-.-.-b", false).is_some());
        let e = refuse("gsub", &big, None, b"(.-)x(.-)", false).unwrap();
        assert!(e.contains("string.gsub: this pattern may take too long on 1048576 bytes"), "{e}");
    }
}
