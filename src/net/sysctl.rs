//! Read and write kernel settings under `/proc/sys` (arp_ignore, arp_announce, ip_forward,
//! rp_filter, ...). Values are read in the network namespace of the calling thread.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

const ROOT: &str = "/proc/sys";

#[derive(Debug, Error)]
pub enum SysctlError {
    #[error("sysctl {key}: no such setting ({path} does not exist; wrong interface name or the kernel lacks it)")]
    NotFound { key: SysctlKey, path: PathBuf },
    #[error("sysctl {key}: permission denied writing {path} (needs root / CAP_NET_ADMIN)")]
    PermissionDenied { key: SysctlKey, path: PathBuf },
    #[error("sysctl {key}: {op} {path}: {source}")]
    Io {
        key: SysctlKey,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("sysctl {key}: value {value:?} is not an integer")]
    NotInteger { key: SysctlKey, value: String },
    #[error("sysctl key {0:?} is invalid (empty component or '..')")]
    InvalidKey(String),
}

/// A sysctl name as path components below `/proc/sys`, e.g. `net/ipv4/conf/lo/arp_ignore`.
/// Built from components so interface names containing dots (`eth0.100`) stay intact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SysctlKey(Vec<String>);

impl SysctlKey {
    /// Parse `net.ipv4.ip_forward` or `net/ipv4/ip_forward` (the slash form, as `sysctl`
    /// accepts, allows dots inside components).
    pub fn parse(s: &str) -> Result<Self, SysctlError> {
        let parts: Vec<String> = if s.contains('/') {
            s.trim_matches('/').split('/').map(str::to_owned).collect()
        } else {
            s.split('.').map(str::to_owned).collect()
        };
        Self::from_parts(parts, s)
    }

    fn from_parts(parts: Vec<String>, orig: &str) -> Result<Self, SysctlError> {
        if parts.is_empty() || parts.iter().any(|p| p.is_empty() || p == ".." || p == "." || p.contains('/')) {
            return Err(SysctlError::InvalidKey(orig.to_owned()));
        }
        Ok(SysctlKey(parts))
    }

    /// `net.ipv4.conf.<ifname>.<name>`; `ifname` may be `all` or `default`.
    pub fn ipv4_conf(ifname: &str, name: &str) -> Result<Self, SysctlError> {
        let parts = ["net", "ipv4", "conf", ifname, name].map(str::to_owned).to_vec();
        Self::from_parts(parts, &format!("net.ipv4.conf.{ifname}.{name}"))
    }

    /// `net.ipv6.conf.<ifname>.<name>`.
    pub fn ipv6_conf(ifname: &str, name: &str) -> Result<Self, SysctlError> {
        let parts = ["net", "ipv6", "conf", ifname, name].map(str::to_owned).to_vec();
        Self::from_parts(parts, &format!("net.ipv6.conf.{ifname}.{name}"))
    }

    /// `net.ipv4.conf.<ifname>.arp_ignore`
    pub fn arp_ignore(ifname: &str) -> Result<Self, SysctlError> {
        Self::ipv4_conf(ifname, "arp_ignore")
    }

    /// `net.ipv4.conf.<ifname>.arp_announce`
    pub fn arp_announce(ifname: &str) -> Result<Self, SysctlError> {
        Self::ipv4_conf(ifname, "arp_announce")
    }

    /// `net.ipv4.conf.<ifname>.rp_filter`
    pub fn rp_filter(ifname: &str) -> Result<Self, SysctlError> {
        Self::ipv4_conf(ifname, "rp_filter")
    }

    /// `net.ipv4.ip_forward`
    pub fn ip_forward() -> Self {
        SysctlKey(["net", "ipv4", "ip_forward"].map(str::to_owned).to_vec())
    }

    /// `net.ipv6.conf.all.forwarding`
    pub fn ipv6_forwarding() -> Self {
        SysctlKey(["net", "ipv6", "conf", "all", "forwarding"].map(str::to_owned).to_vec())
    }

    pub fn path(&self) -> PathBuf {
        let mut p = PathBuf::from(ROOT);
        p.extend(&self.0);
        p
    }
}

impl fmt::Display for SysctlKey {
    /// Dotted form when unambiguous, slash form when a component contains a dot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.0.iter().any(|p| p.contains('.')) { "/" } else { "." };
        f.write_str(&self.0.join(sep))
    }
}

fn map_err(key: &SysctlKey, op: &'static str, path: &Path, e: io::Error) -> SysctlError {
    match e.kind() {
        io::ErrorKind::NotFound => SysctlError::NotFound { key: key.clone(), path: path.into() },
        io::ErrorKind::PermissionDenied => SysctlError::PermissionDenied { key: key.clone(), path: path.into() },
        _ => SysctlError::Io { key: key.clone(), op, path: path.into(), source: e },
    }
}

/// Current value, trailing newline removed.
pub fn read(key: &SysctlKey) -> Result<String, SysctlError> {
    let path = key.path();
    let s = std::fs::read_to_string(&path).map_err(|e| map_err(key, "reading", &path, e))?;
    Ok(s.trim_end_matches('\n').to_owned())
}

/// Current value as an integer (most net sysctls are).
pub fn read_int(key: &SysctlKey) -> Result<i64, SysctlError> {
    let v = read(key)?;
    v.trim().parse().map_err(|_| SysctlError::NotInteger { key: key.clone(), value: v })
}

/// Write a value. The kernel validates it; an out-of-range value is reported as an I/O error
/// (EINVAL) naming the key.
pub fn write(key: &SysctlKey, value: &str) -> Result<(), SysctlError> {
    let path = key.path();
    // Open without create/truncate semantics surprises: the file always exists or it is an error.
    let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| map_err(key, "opening", &path, e))?;
    io::Write::write_all(&mut &f, value.as_bytes()).map_err(|e| map_err(key, "writing", &path, e))
}

/// Write a value and return the one it replaced (for restoring later).
pub fn replace(key: &SysctlKey, value: &str) -> Result<String, SysctlError> {
    let old = read(key)?;
    write(key, value)?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dotted_and_slash() {
        let k = SysctlKey::parse("net.ipv4.conf.lo.arp_ignore").unwrap();
        assert_eq!(k.path(), PathBuf::from("/proc/sys/net/ipv4/conf/lo/arp_ignore"));
        assert_eq!(k, SysctlKey::arp_ignore("lo").unwrap());
        let k = SysctlKey::parse("net/ipv4/conf/eth0.100/rp_filter").unwrap();
        assert_eq!(k.path(), PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter"));
        assert_eq!(k.to_string(), "net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(SysctlKey::ip_forward().to_string(), "net.ipv4.ip_forward");
    }

    #[test]
    fn rejects_escapes() {
        assert!(SysctlKey::parse("net/../../etc/passwd").is_err());
        assert!(SysctlKey::parse("net..ipv4").is_err());
        assert!(SysctlKey::ipv4_conf("a/b", "rp_filter").is_err());
        assert!(SysctlKey::ipv4_conf("..", "rp_filter").is_err());
    }

    #[test]
    fn missing_key_is_not_found() {
        let k = SysctlKey::parse("net.ipv4.conf.lvsd-no-such-if0.arp_ignore").unwrap();
        let e = read(&k).unwrap_err();
        assert!(matches!(e, SysctlError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("lvsd-no-such-if0"));
    }

    #[test]
    fn reads_loopback_value() {
        // Present on every Linux with IPv4.
        let v = read_int(&SysctlKey::arp_ignore("lo").unwrap()).unwrap();
        assert!((0..=8).contains(&v));
    }
}
