//! The real-server side of LVS-DR and LVS-TUN (`lvsd realserver up|down|status`): what the
//! classic `realserver` start/stop script does, made idempotent and reversible.
//!
//! - DR: each VIP as /32 (/128) on `lo` (IPv4 label `lo:<last octet>`), so the server
//!   accepts packets addressed to the VIP; `arp_ignore=1` and `arp_announce=2` on `lo` and
//!   `all`, so it never answers ARP for the VIP nor uses it as an ARP source (only the
//!   director may own the VIP on the LAN).
//! - TUN: each IPv4 VIP on `tunl0` (the ipip fallback device, which decapsulates every
//!   IP-in-IP packet), the same ARP settings on `tunl0` and `all`, and `rp_filter=0` on
//!   `tunl0` and `all`: the decapsulated packet arrives on `tunl0` from a client whose route
//!   is via `eth0`, which strict reverse-path filtering would drop (the kernel uses the
//!   maximum of `all` and the device's value). IPv6 VIPs go on `ip6tnl0`.
//! - IPv6: no ARP, so no sysctls. Linux answers a neighbour solicitation only for addresses
//!   on the interface it arrived on (`ndisc_recv_ns` looks the target up strictly on that
//!   device), so a VIP on `lo` is never advertised on the LAN: the VIP on `lo` is enough.
//!
//! `up` saves every setting's value before changing it, once, in a root-only state file;
//! `down` restores exactly those values when the last VIP goes. Sysctls and addresses
//! belong to a network namespace and vanish at reboot, so the state file is per namespace
//! and lives under /run by default.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::net::addr::{self, AddrError, Vip};
use crate::net::link::{self, LinkError};
use crate::net::sysctl::{self, SysctlError, SysctlKey};

/// Where state files go unless `--state-dir` says otherwise (tmpfs: cleared at reboot, like
/// the settings it records). Not the director's /run/lvsd, which systemd removes when the
/// director's unit stops.
pub const DEFAULT_STATE_DIR: &str = "/run/lvsd-realserver";

#[derive(Debug, Error)]
pub enum RealServerError {
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("state file {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid ({detail}); remove it after checking the settings by hand")]
    StateCorrupt { path: PathBuf, detail: String },
    #[error("state directory {path} is unsafe: {why} (it must be a root-owned directory writable only by root)")]
    UnsafeStateDir { path: PathBuf, why: String },
    #[error(
        "{dev} is missing and could not be created ({detail}): this kernel has no {module} tunnel support; load it with `modprobe {module}` (or use a kernel built with it), or use --mode dr"
    )]
    TunnelUnavailable { dev: String, module: &'static str, detail: String },
    #[error("the VIPs here are up in {current} mode; run `lvsd realserver down` before switching to {wanted}")]
    ModeMismatch { current: Mode, wanted: Mode },
    #[error("no VIP given (use --vip ADDR)")]
    NoVip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Dr,
    Tun,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Dr => "dr",
            Mode::Tun => "tun",
        })
    }
}

/// The ipip fallback devices (they receive every tunnelled packet, whatever its outer source).
pub const TUNL_V4: &str = "tunl0";
pub const TUNL_V6: &str = "ip6tnl0";

/// What a set of VIPs needs in one mode. Pure: computed from the arguments only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub addresses: Vec<Vip>,
    /// (setting, value it must have), in the order to apply them.
    pub settings: Vec<(SysctlKey, &'static str)>,
    /// Tunnel devices that must exist and be up.
    pub devices: Vec<&'static str>,
}

fn key(k: Result<SysctlKey, SysctlError>) -> SysctlKey {
    k.expect("static sysctl key")
}

pub fn plan(vips: &[IpAddr], mode: Mode) -> Plan {
    let has_v4 = vips.iter().any(IpAddr::is_ipv4);
    let has_v6 = vips.iter().any(IpAddr::is_ipv6);
    let mut p = Plan { addresses: Vec::new(), settings: Vec::new(), devices: Vec::new() };
    for &vip in vips {
        let a = match (mode, vip) {
            // The classic script's label, so `ifconfig`/`ip addr` output looks familiar.
            (Mode::Dr, IpAddr::V4(v4)) => Vip::host(vip, "lo").with_label(&format!("lo:{}", v4.octets()[3])),
            (Mode::Dr, IpAddr::V6(_)) => Vip::host(vip, "lo"),
            (Mode::Tun, IpAddr::V4(_)) => Vip::host(vip, TUNL_V4),
            (Mode::Tun, IpAddr::V6(_)) => Vip::host(vip, TUNL_V6),
        };
        if !p.addresses.contains(&a) {
            p.addresses.push(a);
        }
    }
    if has_v4 {
        let dev = match mode {
            Mode::Dr => "lo",
            Mode::Tun => TUNL_V4,
        };
        for ifname in [dev, "all"] {
            p.settings.push((key(SysctlKey::arp_ignore(ifname)), "1"));
            p.settings.push((key(SysctlKey::arp_announce(ifname)), "2"));
        }
        if mode == Mode::Tun {
            p.settings.push((key(SysctlKey::rp_filter(TUNL_V4)), "0"));
            p.settings.push((key(SysctlKey::rp_filter("all")), "0"));
            p.devices.push(TUNL_V4);
        }
    }
    if has_v6 && mode == Mode::Tun {
        p.devices.push(TUNL_V6);
    }
    p
}

/// What `up` saved, so `down` can put it back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub mode: Option<Mode>,
    /// VIPs currently put in place by `up`.
    pub vips: Vec<IpAddr>,
    /// Sysctl (dotted or slash name) -> value before the first `up` changed it.
    pub saved: BTreeMap<String, String>,
    /// Tunnel devices that were down before `up` brought them up.
    pub brought_up: Vec<String>,
}

/// The root-only state file of this network namespace.
pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    /// Create (0700) or check the directory; the file name carries the network namespace's
    /// inode, because each namespace (real servers in `lvsd lab`) has its own settings.
    pub fn open(dir: &Path) -> Result<StateFile, RealServerError> {
        let io = |source| RealServerError::State { path: dir.to_owned(), source };
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        }
        let meta = std::fs::symlink_metadata(dir).map_err(io)?;
        let unsafe_dir = |why: String| RealServerError::UnsafeStateDir { path: dir.to_owned(), why };
        if !meta.is_dir() {
            return Err(unsafe_dir("not a directory (or a symlink)".into()));
        }
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid {
            return Err(unsafe_dir(format!("owned by uid {}, not {euid}", meta.uid())));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_dir(format!("mode {:o} lets others write", meta.mode() & 0o7777)));
        }
        let ns = std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino()).unwrap_or(0);
        Ok(StateFile { path: dir.join(format!("realserver-netns{ns}.json")) })
    }

    pub fn load(&self) -> Result<Option<State>, RealServerError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| RealServerError::StateCorrupt { path: self.path.clone(), detail: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RealServerError::State { path: self.path.clone(), source }),
        }
    }

    /// Write atomically (temp file, fsync, rename), mode 0600, never following a symlink.
    pub fn save(&self, state: &State) -> Result<(), RealServerError> {
        let io = |source| RealServerError::State { path: self.path.clone(), source };
        let tmp = self.path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp).map_err(io)?;
        let mut bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        bytes.push(b'\n');
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    pub fn remove(&self) -> Result<(), RealServerError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RealServerError::State { path: self.path.clone(), source: e }),
            _ => Ok(()),
        }
    }
}

/// What a command did or found, one line each, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub lines: Vec<String>,
    /// `status`: everything in place.
    pub ok: bool,
}

fn vip_text(a: &Vip) -> String {
    match &a.label {
        Some(l) => format!("{}/{} on {} ({l})", a.addr, a.prefix_len, a.ifname),
        None => format!("{}/{} on {}", a.addr, a.prefix_len, a.ifname),
    }
}

/// Make sure a tunnel fallback device exists. Creating it by name asks the kernel to load
/// the module (rtnl-link-<kind> auto-load); when the module creates the fallback device
/// itself the create fails with "File exists", which is fine.
fn ensure_tunnel(dev: &'static str) -> Result<(), RealServerError> {
    if link::ifindex(dev).is_ok() {
        return Ok(());
    }
    let (kind, module) = if dev == TUNL_V4 { ("ipip", "ipip") } else { ("ip6tnl", "ip6_tunnel") };
    let detail = match std::process::Command::new("ip").args(["link", "add", "name", dev, "type", kind]).output() {
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        Err(e) => format!("running `ip`: {e}"),
    };
    if link::ifindex(dev).is_ok() {
        return Ok(());
    }
    let detail = if detail.is_empty() { format!("`ip link add {dev} type {kind}` gave no device") } else { format!("ip: {detail}") };
    Err(RealServerError::TunnelUnavailable { dev: dev.to_owned(), module, detail })
}

/// Put the VIPs and settings in place. Saves original values (once) before changing them.
pub fn up(state_file: &StateFile, vips: &[IpAddr], mode: Mode) -> Result<Report, RealServerError> {
    if vips.is_empty() {
        return Err(RealServerError::NoVip);
    }
    let mut state = state_file.load()?.unwrap_or_default();
    if let Some(current) = state.mode.filter(|_| !state.vips.is_empty())
        && current != mode
    {
        return Err(RealServerError::ModeMismatch { current, wanted: mode });
    }
    state.mode = Some(mode);
    let p = plan(vips, mode);
    let mut report = Report { ok: true, ..Report::default() };
    for dev in &p.devices {
        ensure_tunnel(dev)?;
        if !link::link_by_name(dev)?.admin_up {
            if !state.brought_up.iter().any(|d| d == dev) {
                state.brought_up.push(dev.to_string());
            }
            // Record before changing, so a failure half-way can still be undone by `down`.
            state_file.save(&state)?;
            link::set_link_up(dev, true)?;
            report.lines.push(format!("brought {dev} up"));
        }
    }
    for (k, _) in &p.settings {
        if let std::collections::btree_map::Entry::Vacant(e) = state.saved.entry(k.to_string()) {
            e.insert(sysctl::read(k)?);
        }
    }
    state_file.save(&state)?;
    for (k, want) in &p.settings {
        let old = sysctl::replace(k, want)?;
        if old.trim() == *want {
            report.lines.push(format!("{k} = {want} (already)"));
        } else {
            report.lines.push(format!("{k} = {want} (was {old})"));
        }
    }
    for a in &p.addresses {
        let added = addr::add_address(a)?;
        report.lines.push(format!("{} {}", if added { "added" } else { "present" }, vip_text(a)));
        if !state.vips.contains(&a.addr) {
            state.vips.push(a.addr);
        }
        state_file.save(&state)?;
    }
    Ok(report)
}

/// Remove the VIPs (all that `up` put in place when `vips` is empty); when none remain,
/// restore every saved setting and delete the state file.
pub fn down(state_file: &StateFile, vips: &[IpAddr], mode: Mode) -> Result<Report, RealServerError> {
    let mut state = state_file.load()?.unwrap_or_default();
    let mode = state.mode.unwrap_or(mode);
    let vips: Vec<IpAddr> = if vips.is_empty() { state.vips.clone() } else { vips.to_vec() };
    let mut report = Report { ok: true, ..Report::default() };
    for a in plan(&vips, mode).addresses {
        let removed = match addr::del_address(&a) {
            Ok(r) => r,
            // The tunnel device is gone: so is the address.
            Err(AddrError::Link(LinkError::NoSuchLink(_))) => false,
            Err(e) => return Err(e.into()),
        };
        report.lines.push(format!("{} {}", if removed { "removed" } else { "absent" }, vip_text(&a)));
        state.vips.retain(|v| *v != a.addr);
    }
    if !state.vips.is_empty() {
        let rest: Vec<String> = state.vips.iter().map(ToString::to_string).collect();
        report.lines.push(format!("settings kept: still up for {}", rest.join(", ")));
        state_file.save(&state)?;
        return Ok(report);
    }
    if state.saved.is_empty() {
        report.lines.push("no saved settings to restore".into());
    }
    for (name, old) in &state.saved {
        let k = SysctlKey::parse(name)?;
        match sysctl::replace(&k, old) {
            Ok(cur) if cur.trim() == old.trim() => report.lines.push(format!("{k} = {old} (already)")),
            Ok(cur) => report.lines.push(format!("{k} = {old} (restored, was {cur})")),
            // A tunnel device that disappeared took its settings with it.
            Err(SysctlError::NotFound { .. }) => report.lines.push(format!("{k}: gone, nothing to restore")),
            Err(e) => return Err(e.into()),
        }
    }
    for dev in &state.brought_up {
        match link::set_link_up(dev, false) {
            Ok(()) => report.lines.push(format!("brought {dev} down (it was down before)")),
            Err(LinkError::NoSuchLink(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state_file.remove()?;
    Ok(report)
}

/// What is in place right now, gathered from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// (device, address) pairs present.
    pub addresses: Vec<(String, IpAddr)>,
    /// Current values of the plan's settings (None: the setting does not exist).
    pub settings: BTreeMap<String, Option<String>>,
    /// Tunnel devices present and administratively up.
    pub devices_up: Vec<String>,
}

pub fn gather(p: &Plan) -> Facts {
    let mut f = Facts::default();
    let mut devs: Vec<&str> = p.addresses.iter().map(|a| a.ifname.as_str()).collect();
    devs.dedup();
    for dev in devs {
        if let Ok(list) = addr::list_addresses(dev) {
            f.addresses.extend(list.into_iter().map(|a| (dev.to_owned(), a.addr)));
        }
    }
    for (k, _) in &p.settings {
        f.settings.insert(k.to_string(), sysctl::read(k).ok().map(|v| v.trim().to_owned()));
    }
    for dev in &p.devices {
        if link::link_by_name(dev).is_ok_and(|l| l.admin_up) {
            f.devices_up.push(dev.to_string());
        }
    }
    f
}

/// Compare what the plan needs with what is there. Pure.
pub fn evaluate(p: &Plan, f: &Facts) -> Report {
    let mut r = Report { ok: true, ..Report::default() };
    let mut line = |ok: bool, text: String| {
        r.ok &= ok;
        r.lines.push(format!("{} {text}", if ok { "ok     " } else { "MISSING" }));
    };
    for dev in &p.devices {
        line(f.devices_up.iter().any(|d| d == dev), format!("{dev} present and up"));
    }
    for a in &p.addresses {
        line(f.addresses.contains(&(a.ifname.clone(), a.addr)), vip_text(a));
    }
    for (k, want) in &p.settings {
        match f.settings.get(&k.to_string()).cloned().flatten() {
            Some(v) if v == *want => line(true, format!("{k} = {want}")),
            Some(v) => line(false, format!("{k} = {want} (is {v})")),
            None => line(false, format!("{k} = {want} (setting does not exist)")),
        }
    }
    r
}

/// `status`: the VIPs given, or those `up` recorded.
pub fn status(state_file: &StateFile, vips: &[IpAddr], mode: Mode) -> Result<Report, RealServerError> {
    let state = state_file.load()?;
    let (vips, mode) = match (&state, vips.is_empty()) {
        (_, false) => (vips.to_vec(), mode),
        (Some(s), true) if !s.vips.is_empty() => (s.vips.clone(), s.mode.unwrap_or(mode)),
        _ => return Err(RealServerError::NoVip),
    };
    let p = plan(&vips, mode);
    Ok(evaluate(&p, &gather(&p)))
}

/// `lvsd realserver ...` command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Put the VIPs in place (DR: on lo with ARP suppressed; TUN: on tunl0 with rp_filter off). Idempotent.
    Up(CommonArgs),
    /// Remove the VIPs (default: all that `up` added) and restore the settings `up` changed. Idempotent.
    Down(CommonArgs),
    /// Report what is and is not in place; exit 0 when everything is, 1 otherwise.
    Status(CommonArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// A virtual IP address (IPv4 or IPv6); repeat for several.
    #[arg(long = "vip", value_name = "ADDR")]
    pub vips: Vec<IpAddr>,
    /// Forwarding method the directors use for this server.
    #[arg(long, value_enum, default_value_t = Mode::Dr)]
    pub mode: Mode,
    /// Root-only directory for the state file (the values to restore on `down`).
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Run a `realserver` command, print its report; returns the exit code.
pub fn run_cli(args: &Args) -> Result<u8, RealServerError> {
    type Run = fn(&StateFile, &[IpAddr], Mode) -> Result<Report, RealServerError>;
    let (c, f): (&CommonArgs, Run) = match &args.action {
        Action::Up(c) => (c, up),
        Action::Down(c) => (c, down),
        Action::Status(c) => (c, status),
    };
    let sf = StateFile::open(&c.state_dir)?;
    let report = f(&sf, &c.vips, c.mode)?;
    for l in &report.lines {
        println!("{l}");
    }
    Ok(if report.ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(s: &[&str]) -> Vec<IpAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn dr_plan_labels_and_arp_settings() {
        let p = plan(&ips(&["192.0.2.10", "2001:db8::10"]), Mode::Dr);
        assert_eq!(p.addresses[0].label.as_deref(), Some("lo:10"));
        assert_eq!(p.addresses[0].prefix_len, 32);
        assert_eq!(p.addresses[1].prefix_len, 128);
        assert_eq!(p.addresses[1].label, None);
        let names: Vec<String> = p.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            names,
            [
                "net.ipv4.conf.lo.arp_ignore=1",
                "net.ipv4.conf.lo.arp_announce=2",
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2"
            ]
        );
        assert!(p.devices.is_empty());
    }

    #[test]
    fn ipv6_only_dr_needs_no_sysctls() {
        let p = plan(&ips(&["2001:db8::10"]), Mode::Dr);
        assert!(p.settings.is_empty());
        assert_eq!(p.addresses.len(), 1);
    }

    #[test]
    fn tun_plan_uses_tunl0_and_rp_filter() {
        let p = plan(&ips(&["192.0.2.10", "192.0.2.10"]), Mode::Tun);
        assert_eq!(p.addresses.len(), 1, "duplicates collapse");
        assert_eq!(p.addresses[0].ifname, "tunl0");
        assert_eq!(p.devices, ["tunl0"]);
        assert!(p.settings.iter().any(|(k, v)| k.to_string() == "net.ipv4.conf.all.rp_filter" && *v == "0"));
        assert!(p.settings.iter().any(|(k, v)| k.to_string() == "net.ipv4.conf.tunl0.arp_ignore" && *v == "1"));
        let p6 = plan(&ips(&["2001:db8::1"]), Mode::Tun);
        assert_eq!(p6.devices, ["ip6tnl0"]);
    }

    #[test]
    fn evaluate_reports_each_missing_piece() {
        let p = plan(&ips(&["192.0.2.10"]), Mode::Dr);
        let mut f = Facts::default();
        f.addresses.push(("lo".into(), "192.0.2.10".parse().unwrap()));
        for (k, v) in &p.settings {
            f.settings.insert(k.to_string(), Some(v.to_string()));
        }
        assert!(evaluate(&p, &f).ok);
        f.settings.insert("net.ipv4.conf.all.arp_ignore".into(), Some("0".into()));
        let r = evaluate(&p, &f);
        assert!(!r.ok);
        assert!(r.lines.iter().any(|l| l.starts_with("MISSING net.ipv4.conf.all.arp_ignore = 1 (is 0)")), "{r:?}");
        f.addresses.clear();
        assert!(evaluate(&p, &f).lines.iter().any(|l| l.starts_with("MISSING 192.0.2.10/32 on lo")));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = State { mode: Some(Mode::Dr), vips: ips(&["192.0.2.1"]), ..State::default() };
        s.saved.insert("net.ipv4.conf.lo.arp_ignore".into(), "2".into());
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
        assert!(j.contains("\"dr\""));
    }
}
