//! Real servers reachable from the director: a TCP connection to each real's port with a
//! short timeout (the seed's "can the director reach the RS" item).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::Finding;
use crate::ipvs::table::Protocol;
use crate::model::{Model, Vip};

const CHECK: &str = "reach";

/// One real server and how the connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub service: String,
    pub real: SocketAddr,
    /// None: not TCP, not tried.
    pub result: Option<Result<(), String>>,
}

/// Try every TCP real server once, in parallel (each with `timeout`).
pub fn gather(m: &Model, timeout: Duration) -> Vec<Attempt> {
    let mut todo = Vec::new();
    for s in &m.services {
        let tcp = matches!(s.vip, Vip::Addr { protocol: Protocol::Tcp, .. });
        for r in &s.reals {
            // Port 0 (fwmark services): the real's port is not known.
            let tryable = tcp && r.addr.port() != 0;
            todo.push((s.name.clone(), r.addr, tryable));
        }
    }
    std::thread::scope(|sc| {
        let handles: Vec<_> = todo
            .into_iter()
            .map(|(service, real, tryable)| {
                sc.spawn(move || {
                    let result = tryable.then(|| TcpStream::connect_timeout(&real, timeout).map(|_| ()).map_err(|e| e.to_string()));
                    Attempt { service, real, result }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("connect thread")).collect()
    })
}

/// Pure.
pub fn check(attempts: &[Attempt]) -> Vec<Finding> {
    if attempts.is_empty() {
        return vec![Finding::pass(CHECK, "no real servers in the policy")];
    }
    let mut out = Vec::new();
    let mut ok = 0;
    for a in attempts {
        match &a.result {
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => out.push(Finding::fail(
                CHECK,
                format!("real server {} of {} is not reachable from here: {e}", a.real, a.service),
                format!(
                    "check that the server is up and listening on port {}, that no firewall between blocks it, and (DR) that it is on the director's LAN",
                    a.real.port()
                ),
            )),
            None => {}
        }
    }
    if ok > 0 || out.is_empty() {
        let skipped = attempts.iter().filter(|a| a.result.is_none()).count();
        let mut msg = format!("{ok} real server(s) accept TCP connections");
        if skipped > 0 {
            msg.push_str(&format!(" ({skipped} not TCP or without a port: not tried)"));
        }
        if out.is_empty() {
            out.push(Finding::pass(CHECK, msg));
        } else {
            out.insert(0, Finding::pass(CHECK, msg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Level;

    fn a(real: &str, result: Option<Result<(), String>>) -> Attempt {
        Attempt { service: "web".into(), real: real.parse().unwrap(), result }
    }

    #[test]
    fn refused_fails_with_the_port() {
        let f = check(&[a("198.51.100.1:80", Some(Ok(()))), a("198.51.100.2:80", Some(Err("Connection refused".into())))]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].level, Level::Fail);
        assert!(f[1].message.contains("198.51.100.2:80") && f[1].message.contains("refused"));
        assert!(f[1].fix.as_ref().unwrap().contains("port 80"));
        let f = check(&[a("198.51.100.1:53", None)]);
        assert_eq!(f[0].level, Level::Pass);
        assert!(f[0].message.contains("not tried"));
    }
}
