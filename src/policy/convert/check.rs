//! `lvsd.check.*`: health check declarations.

use super::*;

/// "200", "200-299", "200,301-302", 200, { 200, "300-399" } -> ranges.
fn status_set(f: &mut Fields, v: Value) -> Option<StatusSet> {
    fn one(s: &str) -> Option<(u16, u16)> {
        let s = s.trim();
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
        ((100..=599).contains(&a) && (100..=599).contains(&b) && a <= b).then_some((a, b))
    }
    let mut parts: Vec<String> = Vec::new();
    match v {
        Value::Nil => return None,
        Value::Integer(i) => parts.push(i.to_string()),
        Value::String(s) => parts.extend(s.to_string_lossy().split(',').map(str::to_string)),
        Value::Table(t) => {
            for x in t.sequence_values::<Value>().filter_map(|x| x.ok()) {
                match x {
                    Value::Integer(i) => parts.push(i.to_string()),
                    Value::String(s) => parts.push(s.to_string_lossy()),
                    _ => parts.push("?".into()),
                }
            }
        }
        other => {
            f.error(format!("status must be a code, a list of codes or a \"200-299\" range, not a {}", other.type_name()));
            return None;
        }
    }
    let mut out = Vec::new();
    for p in parts {
        match one(&p) {
            Some(r) => out.push(r),
            None => f.error(format!("status '{p}' is not an HTTP status code or range (100..599)")),
        }
    }
    Some(out)
}

fn http_url(f: &mut Fields) -> HttpUrl {
    let path = f.string("path").unwrap_or_else(|| "/".into());
    let sv = f.value("status");
    let status = status_set(f, sv).unwrap_or_else(|| vec![(200, 299)]);
    let digest = f.string("digest");
    if let Some(d) = &digest
        && (d.len() != 32 || !d.chars().all(|c| c.is_ascii_hexdigit()))
    {
        f.error(format!("digest '{d}' is not an MD5 hex digest (32 hex digits, as genhash prints)"));
    }
    let regex = f.string("regex");
    HttpUrl { path, status, digest, regex }
}

pub fn check(kind: &str, f: &mut Fields, ctx: &dyn Ctx) -> Option<CheckSpec> {
    let d = CheckCommon::default();
    let common = CheckCommon {
        interval: f.number("interval", 0.01, 86_400.0).unwrap_or(d.interval),
        timeout: f.number("timeout", 0.001, 3600.0).unwrap_or(d.timeout),
        retries: f.integer("retries", 0, 1000).map(|v| v as u32).unwrap_or(d.retries),
        retry_delay: f.number("retry_delay", 0.0, 3600.0).unwrap_or(d.retry_delay),
        port: f.integer("port", 1, 65535).map(|v| v as u16),
        bind: ip_field(f, "bind"),
        warmup: f.number("warmup", 0.0, 86_400.0).unwrap_or(d.warmup),
        rise: f.integer("rise", 1, 1000).map(|v| v as u32).unwrap_or(d.rise),
        fall: f.integer("fall", 1, 1000).map(|v| v as u32).unwrap_or(d.fall),
    };
    let kind = match kind {
        "tcp" => CheckKind::Tcp { send: f.string("send"), expect: f.string("expect") },
        "http" | "https" => {
            let first = http_url(f);
            let mut urls = Vec::new();
            let urls_v = f.value("urls");
            let has_own = !matches!(urls_v, Value::Nil);
            if let Value::Table(t) = urls_v {
                for u in t.sequence_values::<Table>().filter_map(|x| x.ok()) {
                    let mut uf = f.nested(u, "url");
                    urls.push(http_url(&mut uf));
                    uf.finish();
                }
            }
            if !has_own {
                urls.push(first);
            }
            let method = f.string("method").unwrap_or_else(|| "GET".into());
            CheckKind::Http {
                tls: kind == "https",
                method,
                urls,
                virtualhost: f.string("virtualhost"),
                sni: f.string("sni"),
                verify: f.flag("verify"),
            }
        }
        "udp" => CheckKind::Udp { payload: f.string("payload"), expect: f.string("expect") },
        "dns" => CheckKind::Dns {
            name: f.string("name").unwrap_or_else(|| ".".into()),
            qtype: f.string("type").unwrap_or_else(|| "SOA".into()).to_ascii_uppercase(),
        },
        // keepalived's helo_name default is the host name: resolved here, so checks need no policy.
        "smtp" => CheckKind::Smtp { helo: f.string("helo").unwrap_or_else(crate::policy::hostname) },
        "ping" => CheckKind::Ping,
        "exec" => {
            let command = f.argv("command");
            let dynamic = f.flag("dynamic");
            match command {
                Some(command) => CheckKind::Exec { command, dynamic },
                None => {
                    f.error("command = { \"/path/to/program\", \"arg\", ... } is required");
                    return None;
                }
            }
        }
        _ => match f.function("run") {
            Some(run) => CheckKind::Lua { run: ctx.hook(run) },
            None => {
                f.error("run = function(rs) ... end is required");
                return None;
            }
        },
    };
    Some(CheckSpec { common, kind, origin: f.origin.clone() })
}
