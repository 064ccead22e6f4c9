//! Fuzz target for the Lua pattern cost bound (src/policy/patterns.rs): any pattern and
//! subject, never a panic, and a finite or saturated, never negative, cost. The first two
//! bytes choose the function and the split between subject and pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvsd::patterns;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Some((&cut, rest)) = rest.split_first() else { return };
    let cut = (cut as usize).min(rest.len());
    let (pattern, subject) = rest.split_at(cut);
    let function = ["find", "match", "gmatch", "gsub"][(sel & 3) as usize];
    let init = if sel & 4 != 0 { Some(i64::from(sel as i8) * 1000) } else { None };
    let plain = sel & 8 != 0;
    let shape = patterns::shape(pattern);
    assert!(shape.items as usize <= pattern.len().max(1));
    let c = patterns::cost(shape, subject.len(), true);
    assert!(c >= 0.0 && !c.is_nan());
    let _ = patterns::refuse(function, subject, init, pattern, plain);
});
