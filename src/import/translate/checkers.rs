//! The health checkers of a real_server (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK, DNS_CHECK,
//! UDP_CHECK, PING_CHECK, MISC_CHECK) -> `lvsd.check.*`, with keepalived's per-checker
//! defaults and the settings inherited from the virtual_server and real_server.

use super::*;
use crate::import::lua::s;

impl Tx<'_> {
    pub(super) fn check(&mut self, c: &Node, rs_port: u16, inherited: &CheckDefaults, body: &mut Vec<Entry>) -> R<Value> {
        let kind = c.key.as_str();
        let func = match kind {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            "SMTP_CHECK" => "smtp",
            "DNS_CHECK" => "dns",
            "UDP_CHECK" => "udp",
            "PING_CHECK" => "ping",
            _ => "exec",
        };
        let mut d = inherited.clone();
        let mut out = Vec::new();
        let mut specific = Vec::new();
        let mut urls: Vec<Vec<Entry>> = Vec::new();
        let mut sni_enabled = false;
        let mut user: Option<(Node, Vec<String>)> = None;
        let mut ignored_nb: Option<(i64, Node)> = None;
        for n in c.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                let k = n.key.as_str();
                match k {
                    "delay_loop" | "connect_timeout" | "delay_before_retry" | "warmup" => set_default(&mut d, k, timer(n, arg(n, 0)?)?),
                    "retry" => d.retry = Some((int(n, arg(n, 0)?, 0, 1_000_000)?, n.loc.clone())),
                    // keepalived 2.2.7 reads nb_get_retry only in HTTP_GET/SSL_GET
                    // (http_get_retry_handler, check_http.c: "nb_get_retry is deprecated");
                    // elsewhere it is an unknown keyword, ignored: the retry count stays the
                    // inherited `retry` or the checker's default (check_data.c).
                    "nb_get_retry" => {
                        let v = int(n, arg(n, 0)?, 0, 1_000_000)?;
                        if func == "http" || func == "https" {
                            self.warn(&n.loc, "keyword 'nb_get_retry' is deprecated (keepalived 2.x: 'retry'); translated as retries");
                            d.retry = Some((v, n.loc.clone()));
                        } else {
                            ignored_nb = Some((v, n.clone()));
                        }
                    }
                    "connect_port" => {
                        let p = int(n, arg(n, 0)?, 1, 65535)?;
                        if p != rs_port as i64 {
                            specific.push(field("port", Value::Int(p), &n.loc));
                        }
                    }
                    "bindto" => specific.push(field("bind", s(arg(n, 0)?), &n.loc)),
                    "virtualhost" => d.virtualhost = Some(arg(n, 0)?.to_string()),
                    "url" if func == "http" || func == "https" => urls.push(self.url(n, body)?),
                    "sni_name" if func == "https" => specific.push(field("sni", s(arg(n, 0)?), &n.loc)),
                    "enable_sni" if func == "https" => sni_enabled = true,
                    "helo_name" if func == "smtp" => specific.push(field("helo", s(&n.args.join(" ")), &n.loc)),
                    "type" if func == "dns" => {
                        let t = arg(n, 0)?.to_ascii_uppercase();
                        if t != "SOA" {
                            specific.push(field("type", s(&t), &n.loc));
                        }
                    }
                    "name" if func == "dns" => {
                        let v = arg(n, 0)?;
                        if v != "." {
                            specific.push(field("name", s(v), &n.loc));
                        }
                    }
                    "payload" if func == "udp" => specific.push(field("payload", s(&n.args.join(" ")), &n.loc)),
                    "require_reply" if func == "udp" => {
                        if n.args.is_empty() {
                            self.unsupported(n, "a reply without content check; lvsd's udp check takes 'expect'", body);
                        } else {
                            specific.push(field("expect", s(&n.args.join(" ")), &n.loc));
                        }
                    }
                    "misc_path" if func == "exec" => {
                        let cmd = self.command(n, &n.args.join(" "));
                        specific.push(field("command", cmd, &n.loc))
                    }
                    "misc_timeout" if func == "exec" => specific.push(field("timeout", timer(n, arg(n, 0)?)?, &n.loc)),
                    "misc_dynamic" if func == "exec" => specific.push(field("dynamic", Value::Bool(true), &n.loc)),
                    "user" if func == "exec" => user = Some((n.clone(), n.args.clone())),
                    "host" if func == "smtp" => {
                        self.unsupported(n, "extra hosts in one SMTP_CHECK; an lvsd check probes its real server", body)
                    }
                    _ => self.other(n, kind, CHECK_KNOWN, body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        if let Some((n, words)) = user
            && let Some(mut cmd) = get(&specific, "command").cloned()
        {
            self.run_as(&n, &mut cmd, &words);
            set(&mut specific, "command", cmd);
        }
        if sni_enabled && !specific.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "sni")) {
            // keepalived sends the virtualhost as SNI when no sni_name is given.
            if let Some(vh) = &d.virtualhost {
                specific.push(field("sni", s(vh), &c.loc));
            }
        }

        // Common settings, omitted where they equal the lvsd defaults.
        if let Some(v) = &d.delay_loop
            && num_text(v) != "60"
        {
            out.push(field("interval", v.clone(), &c.loc));
        }
        if func != "exec" {
            if let Some(v) = &d.connect_timeout
                && num_text(v) != "5"
            {
                out.push(field("timeout", v.clone(), &c.loc));
            }
        } else if !specific.iter().any(|e| matches!(e, Entry::Field(f) if f.key == "timeout")) {
            // keepalived's misc_timeout defaults to the virtual_server's delay_loop, lvsd's exec timeout to 5 s.
            let t = d.vs_delay_loop.clone().unwrap_or(Value::Int(60));
            if num_text(&t) != "5" {
                out.push(field("timeout", t, &c.loc));
            }
        }
        let retries = match (&d.retry, func) {
            (Some((r, _)), _) => *r,
            (None, "dns") => 3,
            (None, "exec") => 0,
            (None, _) => 1,
        };
        if retries != 1 {
            out.push(field("retries", Value::Int(retries), &c.loc));
        }
        if let Some((v, n)) = ignored_nb {
            self.warn(&n.loc, format!("keyword 'nb_get_retry' is not read in {kind} by keepalived 2.2 (only HTTP_GET and SSL_GET take it), so keepalived retries {retries} time(s), not {v}: translated as retries = {retries}"));
            body.push(Entry::Comment(format!("keepalived: nb_get_retry {v} (ignored by keepalived 2.2 in {kind}: retries = {retries})")));
        }
        let retry_delay = match (&d.delay_before_retry, func) {
            (Some(v), _) => v.clone(),
            (None, "http" | "https") => Value::Int(3),
            (None, "dns") => d.delay_loop.clone().unwrap_or(Value::Int(60)),
            (None, _) => Value::Int(1),
        };
        if num_text(&retry_delay) != "1" {
            out.push(field("retry_delay", retry_delay, &c.loc));
        }
        if let Some(v) = &d.warmup {
            out.push(field("warmup", v.clone(), &c.loc));
        }
        out.extend(specific);
        if func == "http" || func == "https" {
            if let Some(vh) = &d.virtualhost {
                out.push(field("virtualhost", s(vh), &c.loc));
            }
            match urls.len() {
                0 => {}
                1 => out.extend(urls.pop().unwrap()),
                _ => out.push(field("urls", Value::List(urls.into_iter().map(Value::Table).collect()), &c.loc)),
            }
        }
        Ok(Value::Call(format!("lvsd.check.{func}"), out))
    }

    pub(super) fn url(&mut self, u: &Node, body: &mut Vec<Entry>) -> R<Vec<Entry>> {
        let mut out = Vec::new();
        for n in u.children() {
            // An error in one statement is recorded; the others are still translated.
            let r = (|| -> R<()> {
                match n.key.as_str() {
                    "path" => out.push(field("path", s(arg(n, 0)?), &n.loc)),
                    "digest" => out.push(field("digest", s(arg(n, 0)?), &n.loc)),
                    "regex" => out.push(field("regex", s(arg(n, 0)?), &n.loc)),
                    "virtualhost" => self.unsupported(n, "a virtualhost per url; lvsd has one per check", body),
                    "status_code" => {
                        let mut codes = Vec::new();
                        for a in &n.args {
                            if let Some((lo, hi)) = a.split_once('-') {
                                int(n, lo, 100, 999)?;
                                int(n, hi, 100, 999)?;
                                codes.push(s(a));
                            } else {
                                codes.push(Value::Int(int(n, a, 100, 999)?));
                            }
                        }
                        match codes.len() {
                            0 => return Err(TranslateError::MissingArg(n.loc.clone(), "status_code".into(), "a code or range".into())),
                            1 if codes[0] == s("200-299") => {}
                            1 => out.push(field("status", codes.pop().unwrap(), &n.loc)),
                            _ => out.push(field("status", Value::List(codes), &n.loc)),
                        }
                    }
                    _ => self.other(
                        n,
                        "url",
                        &["regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset", "tls_compliant"],
                        body,
                    )?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        Ok(out)
    }
}
