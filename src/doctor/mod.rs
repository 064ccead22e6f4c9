//! `lvsd doctor`: the classic LVS troubleshooting checklist (seed section 10), automated.
//!
//! Each check gathers facts (I/O, in the check's `gather` function) and then decides
//! PASS/WARN/FAIL from them in a pure function that unit tests drive with plain values.
//! Every finding that is not a PASS says how to fix it.

pub mod bgp;
pub mod events;
pub mod firewall;
pub mod forward;
pub mod ipvs;
pub mod peers;
pub mod proc_ipvs;
pub mod reach;
pub mod realserver;
pub mod ruleset;
pub mod sync;
pub mod sync_peer;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;
use thiserror::Error;

use crate::model::Model;
use crate::policy::{self, LoadOptions, PolicyError};

/// The exit codes, for `--help`.
pub const EXIT_CODES: &str = "Exit status: 0 when every check passes, 1 when any check fails, 2 when there are only warnings.";

#[derive(Debug, Error)]
pub enum DoctorError {
    #[error("{0}")]
    Policy(String),
    #[error("writing the report: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Not a result: a check that does not apply here, and why (counts as passing).
    Info,
    Pass,
    Warn,
    Fail,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Info => "INFO",
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One checklist item's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn pass(check: &'static str, message: impl Into<String>) -> Finding {
        Finding { check, level: Level::Pass, message: message.into(), fix: None }
    }
    pub fn info(check: &'static str, message: impl Into<String>) -> Finding {
        Finding { check, level: Level::Info, message: message.into(), fix: None }
    }
    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { check, level: Level::Warn, message: message.into(), fix: Some(fix.into()) }
    }
    pub fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { check, level: Level::Fail, message: message.into(), fix: Some(fix.into()) }
    }
}

/// 0 all PASS, 1 any FAIL, 2 only WARNs (besides PASSes).
pub fn exit_code(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Fail) => 1,
        Some(Level::Warn) => 2,
        _ => 0,
    }
}

pub fn text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!("{}  {:<10} {}\n", f.level, f.check, f.message));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("      {:<10} fix: {fix}\n", ""));
        }
    }
    let count = |l| findings.iter().filter(|f| f.level == l).count();
    out.push_str(&format!("{} passed, {} warnings, {} failed\n", count(Level::Pass), count(Level::Warn), count(Level::Fail)));
    out
}

/// `lvsd doctor` command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The director's policy; without it, the real-server checks run.
    #[arg(short = 'p', long = "policy")]
    pub policy: Option<PathBuf>,
    /// The node name the policy sees as `lvsd.node` (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// The control socket of a running lvsd, for its recent errors.
    #[arg(long = "control", default_value = crate::control::DEFAULT_PATH)]
    pub control: PathBuf,
    /// Seconds to listen for VRRP adverts on each instance's interface, and (at most 3) for
    /// the peer's connection sync messages (0: skip).
    #[arg(long, default_value_t = 3.0)]
    pub listen: f64,
    /// Run the real-server checks (the default without a policy).
    #[arg(long)]
    pub realserver: bool,
    /// A VIP this real server serves (default: those `lvsd realserver up` recorded).
    #[arg(long = "vip", value_name = "ADDR")]
    pub vips: Vec<IpAddr>,
    /// Forwarding method of this real server.
    #[arg(long, value_enum, default_value_t = crate::realserver::Mode::Dr)]
    pub mode: crate::realserver::Mode,
    /// State directory of `lvsd realserver` (to find its VIPs).
    #[arg(long, default_value = crate::realserver::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Seconds to wait for each TCP connection to a real server.
    #[arg(long, default_value_t = 1.0)]
    pub connect_timeout: f64,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

fn load_policy(args: &Args, path: &std::path::Path) -> Result<Model, DoctorError> {
    let opts = LoadOptions { node: args.node.clone().unwrap_or_else(policy::hostname), limits: policy::Limits::default() };
    match policy::load(path, &opts) {
        Ok(p) => Ok(p.model),
        Err(PolicyError::Invalid(errs)) => Err(DoctorError::Policy(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))),
        Err(e) => Err(DoctorError::Policy(e.to_string())),
    }
}

/// The real server's VIPs: given, or recorded by `lvsd realserver up`.
fn realserver_vips(args: &Args) -> Vec<IpAddr> {
    if !args.vips.is_empty() {
        return args.vips.clone();
    }
    // Only read: the doctor must not create the directory as a side effect.
    if !args.state_dir.is_dir() {
        return Vec::new();
    }
    crate::realserver::StateFile::open(&args.state_dir).ok().and_then(|sf| sf.load().ok().flatten()).map(|s| s.vips).unwrap_or_default()
}

/// Run every check that applies and return the findings.
pub fn run(args: &Args) -> Result<Vec<Finding>, DoctorError> {
    let model = args.policy.as_deref().map(|p| load_policy(args, p)).transpose()?;
    let mut out = Vec::new();
    let is_realserver = model.is_none() || args.realserver;
    let rs_vips = if is_realserver { realserver_vips(args) } else { Vec::new() };

    let probes = firewall::probes(model.as_ref(), &rs_vips);
    out.extend(firewall::check(&probes, &firewall::gather()));
    if let Some(m) = &model {
        out.extend(forward::check(m, &forward::gather()));
        out.extend(reach::check(&reach::gather(m, std::time::Duration::from_secs_f64(args.connect_timeout.max(0.01)))));
        out.extend(ipvs::check(m, &ipvs::gather()));
        if let Some(f) = sync::gather(m) {
            out.extend(sync::check(m, &f));
            // Bounded: at most sync_peer::MAX_LISTEN, less when a message arrives (NaN: none).
            let window = if args.listen > 0.0 {
                sync_peer::MAX_LISTEN.min(std::time::Duration::from_secs_f64(args.listen.min(3.0)))
            } else {
                Default::default()
            };
            if let Some(p) = sync_peer::gather(m, &events::vrrp_states(&args.control), &f.daemons, window) {
                out.extend(sync_peer::check(m, &p));
            }
        }
        if args.listen > 0.0 && !m.vrrp.is_empty() {
            // Bounded: at most ten minutes of listening.
            let heard = peers::gather(m, std::time::Duration::from_secs_f64(args.listen.min(600.0)));
            out.extend(peers::check(m, &heard, &events::vrrp_states(&args.control)));
        }
        if m.bgp.is_some() {
            out.extend(bgp::check(m, &bgp::gather(m, &args.control)));
        }
        out.extend(events::check(&events::gather(&args.control)));
    }
    if is_realserver {
        out.extend(realserver::check(&rs_vips, args.mode, &realserver::gather(&rs_vips, args.mode)));
    }
    Ok(out)
}

/// `lvsd doctor`: print the report, return the exit code.
pub fn run_cli(args: &Args) -> Result<u8, DoctorError> {
    let findings = run(args)?;
    if args.json {
        let doc = serde_json::json!({ "findings": findings, "exit": exit_code(&findings) });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", text(&findings));
    }
    Ok(exit_code(&findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[Finding::pass("a", "ok")]), 0);
        assert_eq!(exit_code(&[Finding::info("a", "skipped")]), 0);
        assert_eq!(exit_code(&[Finding::pass("a", "ok"), Finding::warn("b", "hm", "x")]), 2);
        assert_eq!(exit_code(&[Finding::fail("a", "no", "x"), Finding::warn("b", "hm", "x")]), 1);
    }

    #[test]
    fn text_shows_fix_and_summary() {
        let t = text(&[Finding::fail("forward", "ip_forward is 0", "sysctl -w net.ipv4.ip_forward=1")]);
        assert!(t.contains("FAIL  forward"), "{t}");
        assert!(t.contains("fix: sysctl -w net.ipv4.ip_forward=1"), "{t}");
        assert!(t.ends_with("0 passed, 0 warnings, 1 failed\n"), "{t}");
    }
}
