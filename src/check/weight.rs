//! Pure weight rules: clamping, keepalived's misc_dynamic exit codes, and which weight wins.

/// IPVS weights are 0..=65535 (ipvsadm(8)).
pub const MAX_WEIGHT: u32 = 65535;

/// A number from a policy (weight function, Lua check) as an IPVS weight: rounded down,
/// clamped to 0..=65535. NaN is not a weight.
pub fn clamp_weight(x: f64) -> Option<u32> {
    if x.is_nan() {
        return None;
    }
    Some(x.floor().clamp(0.0, MAX_WEIGHT as f64) as u32)
}

/// What an exec check's exit status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitVerdict {
    pub ok: bool,
    /// Weight set by the program (misc_dynamic 2..=255).
    pub weight: Option<u32>,
}

/// keepalived MISC_CHECK: 0 = up, anything else = down. With `misc_dynamic`: 0 = up with
/// the weight unchanged, 1 = down, 2..=255 = up with weight `code - 2`. `None` (killed by
/// a signal) is down.
pub fn exit_verdict(code: Option<i32>, dynamic: bool) -> ExitVerdict {
    match code {
        Some(0) => ExitVerdict { ok: true, weight: None },
        Some(c @ 2..=255) if dynamic => ExitVerdict { ok: true, weight: Some(c as u32 - 2) },
        _ => ExitVerdict { ok: false, weight: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping() {
        assert_eq!(clamp_weight(-5.0), Some(0));
        assert_eq!(clamp_weight(7.9), Some(7));
        assert_eq!(clamp_weight(1e9), Some(65535));
        assert_eq!(clamp_weight(f64::INFINITY), Some(65535));
        assert_eq!(clamp_weight(f64::NAN), None);
    }

    #[test]
    fn misc_dynamic_mapping() {
        assert_eq!(exit_verdict(Some(0), false), ExitVerdict { ok: true, weight: None });
        assert_eq!(exit_verdict(Some(1), false), ExitVerdict { ok: false, weight: None });
        assert_eq!(exit_verdict(Some(7), false), ExitVerdict { ok: false, weight: None });
        assert_eq!(exit_verdict(None, false).ok, false);
        assert_eq!(exit_verdict(Some(0), true), ExitVerdict { ok: true, weight: None });
        assert_eq!(exit_verdict(Some(1), true), ExitVerdict { ok: false, weight: None });
        assert_eq!(exit_verdict(Some(2), true), ExitVerdict { ok: true, weight: Some(0) });
        assert_eq!(exit_verdict(Some(7), true), ExitVerdict { ok: true, weight: Some(5) });
        assert_eq!(exit_verdict(Some(255), true), ExitVerdict { ok: true, weight: Some(253) });
        assert_eq!(exit_verdict(None, true).ok, false);
    }
}
