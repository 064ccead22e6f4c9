//! The kernel's connection table as `/proc/net/ip_vs_conn_sync` lists it, counted. Pure (its
//! own file so that the fuzz crate compiles it alone).

use serde::{Deserialize, Serialize};

/// The local IPVS connection table in figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnCounts {
    /// Entries, templates included.
    pub total: u64,
    /// Entries the backup daemon created from the master's messages (origin "Sync").
    pub synced: u64,
    /// TCP entries in ESTABLISHED.
    pub established: u64,
    /// Lines that could not be read (counted, never fatal).
    pub malformed: u64,
}

/// One entry of `/proc/net/ip_vs_conn_sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLine<'a> {
    pub protocol: &'a str,
    pub state: &'a str,
    pub synced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnLineError {
    #[error("{0} fields, expected 10 (Pro FromIP FPrt ToIP TPrt DestIP DPrt State Origin Expires)")]
    Fields(usize),
    #[error("unknown origin '{0}' (expected Local or Sync)")]
    Origin(String),
}

/// One line of `/proc/net/ip_vs_conn_sync`; None for the header. The kernel writes
/// (ip_vs_conn.c, ip_vs_conn_sync_seq_show) "%-3s %08X %04X %08X %04X %08X %04X %-11s %-6s
/// %7u" for IPv4 and the same columns with "%pI6" addresses for IPv6; the origin is
/// "LOCAL" or "SYNC" (ip_vs_origin_name).
pub fn parse_conn_line(line: &str) -> Result<Option<ConnLine<'_>>, ConnLineError> {
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    if f.first() == Some(&"Pro") {
        return Ok(None);
    }
    if f.len() != 10 {
        return Err(ConnLineError::Fields(f.len()));
    }
    let synced = if f[8].eq_ignore_ascii_case("sync") {
        true
    } else if f[8].eq_ignore_ascii_case("local") {
        false
    } else {
        return Err(ConnLineError::Origin(f[8].chars().take(16).collect()));
    };
    Ok(Some(ConnLine { protocol: f[0], state: f[7], synced }))
}

/// Count the entries of a whole `/proc/net/ip_vs_conn_sync` text.
pub fn count_conns(text: &str) -> ConnCounts {
    let mut c = ConnCounts::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_conn_line(line) {
            Ok(None) => {}
            Ok(Some(e)) => {
                c.total += 1;
                c.synced += u64::from(e.synced);
                c.established += u64::from(e.protocol == "TCP" && e.state == "ESTABLISHED");
            }
            Err(_) => c.malformed += 1,
        }
    }
    c
}
