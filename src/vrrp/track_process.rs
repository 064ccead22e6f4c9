//! keepalived's `vrrp_track_process`: whether enough processes of a name are running, read
//! from /proc as keepalived reads it (core/track_process.c, read_procs and check_params).
//! Pure: the director reads /proc/PID/stat and /proc/PID/cmdline and hands the bytes over.

use serde::Serialize;

/// How a process's arguments are compared with the configured ones (keepalived's
/// `param_match`; `None`: not compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamMatch {
    None,
    /// The same arguments, no more.
    Exact,
    /// The configured arguments, the last one as a prefix of the process's, then anything.
    Initial,
    /// The configured arguments first, then anything.
    Partial,
}

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Compared with the process's name (`comm`, at most 15 bytes) or, with `full_command`,
    /// with its program as started (the command line's first argument).
    pub process: String,
    pub params: Option<Vec<String>>,
    pub param_match: ParamMatch,
    pub full_command: bool,
}

/// The name (`comm`) in /proc/PID/stat ("PID (NAME) STATE ..."), and whether the process is
/// a zombie, which keepalived does not count. None when the text is not that.
pub fn stat_comm(stat: &[u8]) -> Option<(&[u8], bool)> {
    // As keepalived: the first '(' from the third byte, the first ')' after it.
    let open = 2 + stat.get(2..)?.iter().position(|&b| b == b'(')?;
    let close = open + stat[open..].iter().position(|&b| b == b')')?;
    let zombie = stat.get(close + 2) == Some(&b'Z');
    Some((&stat[open + 1..close], zombie))
}

/// Whether a process with name `comm` and command line `cmdline` (its arguments, each ended
/// by a NUL, as /proc/PID/cmdline holds them) is one `spec` counts.
pub fn matches(spec: &ProcessSpec, comm: &[u8], cmdline: &[u8]) -> bool {
    let name = if spec.full_command {
        // The first argument, up to its NUL.
        &cmdline[..cmdline.iter().position(|&b| b == 0).unwrap_or(cmdline.len())]
    } else {
        // keepalived compares with strcmp: the name ends at a NUL if it has one.
        &comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())]
    };
    if name != spec.process.as_bytes() {
        return false;
    }
    if spec.param_match == ParamMatch::None {
        return true;
    }
    let rest = cmdline.get(name.len() + 1..).unwrap_or_default();
    check_params(spec, rest)
}

/// keepalived's check_params: `params` is the command line after the first argument's NUL.
fn check_params(spec: &ProcessSpec, params: &[u8]) -> bool {
    // The configured arguments as /proc has them: each ended by a NUL.
    let want: Option<Vec<u8>> = spec.params.as_ref().map(|p| p.iter().flat_map(|a| a.bytes().chain([0])).collect());
    match (&want, spec.param_match) {
        (None, ParamMatch::Exact) => params.is_empty(),
        (None, _) => true,
        (Some(w), _) if params.len() < w.len() => false,
        (Some(w), ParamMatch::Exact) => params == &w[..],
        (Some(w), ParamMatch::Partial) => params.starts_with(w),
        // The last argument without its NUL: a prefix of the process's.
        (Some(w), _) => w.len() == 1 || params.starts_with(&w[..w.len() - 1]),
    }
}

/// keepalived's quorum: up while the count is within `quorum..=quorum_max`.
pub fn quorum_met(count: u32, quorum: u32, quorum_max: u32) -> bool {
    (quorum..=quorum_max).contains(&count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(process: &str, params: Option<&[&str]>, param_match: ParamMatch, full_command: bool) -> ProcessSpec {
        ProcessSpec {
            process: process.into(),
            params: params.map(|p| p.iter().map(|s| s.to_string()).collect()),
            param_match,
            full_command,
        }
    }

    #[test]
    fn the_name_and_state_come_from_stat() {
        assert_eq!(stat_comm(b"1234 (haproxy) S 1 1234"), Some((&b"haproxy"[..], false)));
        assert_eq!(stat_comm(b"99 (a b) Z 1"), Some((&b"a b"[..], true)));
        // The first ')' ends the name, as keepalived reads it.
        assert_eq!(stat_comm(b"7 (x)y) R 1"), Some((&b"x"[..], false)));
        assert_eq!(stat_comm(b"7 x"), None);
        assert_eq!(stat_comm(b"("), None);
        assert_eq!(stat_comm(b""), None);
    }

    #[test]
    fn processes_match_as_keepalived_matches_them() {
        let cmd = b"/usr/sbin/haproxy\0-f\0/etc/haproxy/haproxy.cfg\0";
        // By name.
        assert!(matches(&spec("haproxy", None, ParamMatch::None, false), b"haproxy", cmd));
        assert!(!matches(&spec("/usr/sbin/haproxy", None, ParamMatch::None, false), b"haproxy", cmd));
        // By the program as started.
        assert!(matches(&spec("/usr/sbin/haproxy", None, ParamMatch::None, true), b"haproxy", cmd));
        // Arguments: exact, partial (the first ones), initial (the last one a prefix).
        let exact = spec("/usr/sbin/haproxy", Some(&["-f", "/etc/haproxy/haproxy.cfg"]), ParamMatch::Exact, true);
        assert!(matches(&exact, b"haproxy", cmd));
        assert!(!matches(&exact, b"haproxy", b"/usr/sbin/haproxy\0-f\0/etc/haproxy/haproxy.cfg\0-d\0"));
        let partial = spec("/usr/sbin/haproxy", Some(&["-f"]), ParamMatch::Partial, true);
        assert!(matches(&partial, b"haproxy", cmd));
        assert!(!matches(&partial, b"haproxy", b"/usr/sbin/haproxy\0-fx\0"));
        let initial = spec("/usr/sbin/haproxy", Some(&["-f", "/etc/hap"]), ParamMatch::Initial, true);
        assert!(matches(&initial, b"haproxy", cmd));
        assert!(!matches(&initial, b"haproxy", b"/usr/sbin/haproxy\0-f\0/etc/x\0"));
        // Exact without arguments: a process started with none.
        let bare = spec("/usr/sbin/haproxy", None, ParamMatch::Exact, true);
        assert!(matches(&bare, b"haproxy", b"/usr/sbin/haproxy\0"));
        assert!(!matches(&bare, b"haproxy", cmd));
        // An empty command line (a kernel thread) has no program.
        assert!(!matches(&spec("x", None, ParamMatch::None, true), b"x", b""));
    }

    #[test]
    fn the_quorum_is_a_range() {
        assert!(quorum_met(1, 1, u32::MAX));
        assert!(!quorum_met(0, 1, u32::MAX));
        assert!(quorum_met(2, 2, 3) && !quorum_met(4, 2, 3));
        assert!(quorum_met(0, 0, 0) && !quorum_met(1, 0, 0), "quorum_max 0: up while none runs");
    }
}
