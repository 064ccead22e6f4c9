//! Prometheus text exposition on an opt-in address. Each scrape asks the director for its
//! status (the same document `lvsd status --json` prints) and renders it, so the numbers are
//! always the director's own.

use super::server::Call;
use super::Command;
use serde_json::Value;
use std::fmt::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", esc(v))).collect();
        if l.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Render a status document as Prometheus text.
pub fn render(st: &Value) -> String {
    let mut o = Out(String::new());
    o.family("lvsd_build_info", "gauge", "Always 1; the labels say which lvsd runs.");
    let b = |k: &str| st["build"][k].as_str().unwrap_or("unknown").to_string();
    o.sample("lvsd_build_info", &[("version", &b("version")), ("commit", &b("commit")), ("date", &b("date"))], 1);
    o.family("lvsd_policy_generation", "gauge", "Generation of the policy that runs (1 = as started).");
    o.sample("lvsd_policy_generation", &[], num(&st["generation"]));
    o.family("lvsd_reloads_total", "counter", "Policy reloads by result.");
    o.sample("lvsd_reloads_total", &[("result", "ok")], num(&st["reloads"]["ok"]));
    o.sample("lvsd_reloads_total", &[("result", "failed")], num(&st["reloads"]["failed"]));
    o.family("lvsd_last_reload_ok", "gauge", "1 when the last reload succeeded.");
    o.sample("lvsd_last_reload_ok", &[], if st["last_reload"]["ok"] == true { 1 } else { 0 });
    o.family("lvsd_ipvs_writes_total", "counter", "IPVS write operations sent to the backend.");
    o.sample("lvsd_ipvs_writes_total", &[], num(&st["ipvs_writes"]));

    let vrrp = st["vrrp"].as_array().cloned().unwrap_or_default();
    o.family("lvsd_vrrp_state", "gauge", "1 for the state each VRRP instance is in.");
    for v in &vrrp {
        let name = v["name"].as_str().unwrap_or("");
        for s in ["initialize", "backup", "master", "fault"] {
            o.sample("lvsd_vrrp_state", &[("instance", name), ("state", s)], if v["state"] == s { 1 } else { 0 });
        }
    }
    o.family("lvsd_vrrp_priority", "gauge", "Priority each instance advertises (after weights).");
    for v in &vrrp {
        o.sample("lvsd_vrrp_priority", &[("instance", v["name"].as_str().unwrap_or(""))], num(&v["priority"]));
    }
    o.family("lvsd_vrrp_transitions_total", "counter", "State transitions per instance.");
    for v in &vrrp {
        o.sample("lvsd_vrrp_transitions_total", &[("instance", v["name"].as_str().unwrap_or(""))], num(&v["transitions"]));
    }
    o.family("lvsd_vrrp_adverts_total", "counter", "Adverts sent, received (accepted) and dropped by reason.");
    for v in &vrrp {
        let n = v["name"].as_str().unwrap_or("");
        o.sample("lvsd_vrrp_adverts_total", &[("instance", n), ("result", "sent")], num(&v["adverts_sent"]));
        o.sample("lvsd_vrrp_adverts_total", &[("instance", n), ("result", "received")], num(&v["adverts_received"]));
        for (reason, c) in v["dropped"].as_object().into_iter().flatten() {
            o.sample("lvsd_vrrp_adverts_total", &[("instance", n), ("result", "dropped"), ("reason", reason)], num(c));
        }
    }

    let services = st["services"].as_array().cloned().unwrap_or_default();
    o.family("lvsd_real_up", "gauge", "1 when the real server is healthy.");
    for s in &services {
        for r in s["reals"].as_array().into_iter().flatten() {
            let labels = [("service", s["name"].as_str().unwrap_or("")), ("real", r["address"].as_str().unwrap_or(""))];
            o.sample("lvsd_real_up", &labels, if r["health"] == "up" { 1 } else { 0 });
        }
    }
    o.family("lvsd_real_weight", "gauge", "Weight of the real server in the IPVS table (absent: not in the table).");
    for s in &services {
        for r in s["reals"].as_array().into_iter().flatten() {
            if let Some(w) = r["weight"].as_u64() {
                let labels = [("service", s["name"].as_str().unwrap_or("")), ("real", r["address"].as_str().unwrap_or(""))];
                o.sample("lvsd_real_weight", &labels, w);
            }
        }
    }

    // IPVS counters straight from the table (the kernel's, with the kernel backend).
    let counters = [
        ("connections", "conns", "Connections scheduled"),
        ("packets_in", "inpkts", "Incoming packets"),
        ("packets_out", "outpkts", "Outgoing packets"),
        ("bytes_in", "inbytes", "Incoming bytes"),
        ("bytes_out", "outbytes", "Outgoing bytes"),
    ];
    let table = st["ipvs"]["services"].as_array().cloned().unwrap_or_default();
    let svc_name = |s: &Value| match s["fwmark"].as_u64() {
        Some(m) => format!("FWM {m}"),
        None => format!("{} {}:{}", s["protocol"].as_str().unwrap_or(""), s["address"].as_str().unwrap_or(""), s["port"]),
    };
    for (metric, key, help) in counters {
        let name = format!("lvsd_ipvs_service_{metric}_total");
        o.family(&name, "counter", &format!("{help} per virtual service."));
        for s in &table {
            o.sample(&name, &[("vip", &svc_name(s))], num(&s["stats"][key]));
        }
        let name = format!("lvsd_ipvs_real_{metric}_total");
        o.family(&name, "counter", &format!("{help} per real server."));
        for s in &table {
            for r in s["reals"].as_array().into_iter().flatten() {
                let real = format!("{}:{}", r["address"].as_str().unwrap_or(""), r["port"]);
                o.sample(&name, &[("vip", &svc_name(s)), ("real", &real)], num(&r["stats"][key]));
            }
        }
    }
    o.family("lvsd_ipvs_real_connections", "gauge", "Connections to each real server now, by state.");
    for s in &table {
        for r in s["reals"].as_array().into_iter().flatten() {
            let real = format!("{}:{}", r["address"].as_str().unwrap_or(""), r["port"]);
            o.sample("lvsd_ipvs_real_connections", &[("vip", &svc_name(s)), ("real", &real), ("state", "active")], num(&r["stats"]["active_conns"]));
            o.sample("lvsd_ipvs_real_connections", &[("vip", &svc_name(s)), ("real", &real), ("state", "inactive")], num(&r["stats"]["inact_conns"]));
        }
    }
    if let Some(extra) = st["metrics_extra"].as_str() {
        o.0.push_str(extra);
    }
    o.0
}

/// Serve `GET /metrics` (any path answers the same) until the listener fails.
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Call>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let tx = tx.clone();
        tokio::task::spawn_local(async move {
            // Read the request head (bounded); the content does not matter.
            let mut buf = vec![0u8; 4096];
            let mut got = 0;
            while got < buf.len() {
                match tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf[got..])).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        got += n;
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let (otx, orx) = oneshot::channel();
            let body = if tx.send((Command::Status, otx)).await.is_ok() {
                match orx.await {
                    Ok(r) if r.ok => {
                        let doc = r.result.unwrap_or_default();
                        tokio::task::spawn_blocking(move || render(&doc)).await.unwrap_or_default()
                    }
                    _ => String::new(),
                }
            } else {
                String::new()
            };
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
