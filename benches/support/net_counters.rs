//! The TCP counters of the reading process's network namespace (`/proc/net/snmp`,
//! `/proc/net/netstat`), for the health-check benchmarks: a half-open check never becomes a
//! connection a listener accepts, but its listener's kernel counts it.

/// A counter of `file` (`table` is its lines' prefix, e.g. "Tcp:"); 0 when absent.
fn counter(file: &str, table: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with(table));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if let Some(i) = names.split_whitespace().position(|n| n == name) {
            return values.split_whitespace().nth(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    0
}

/// Handshakes the namespace's listeners answered that then became a connection
/// (`PassiveOpens`) or were reset before it (`EmbryonicRsts`: a half-open check).
pub fn handshakes() -> u64 {
    counter("/proc/net/snmp", "Tcp:", "PassiveOpens") + counter("/proc/net/netstat", "TcpExt:", "EmbryonicRsts")
}
