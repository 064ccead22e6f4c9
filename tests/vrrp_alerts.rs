//! E-mail alerts on VRRP transitions (keepalived's smtp_alert), received by an SMTP sink of
//! the test's own in the director's namespace.

mod common;
use common::Daemon;
use common::lan::Lan;
use lvsd::net::netns::privileged_or_skip;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Accept SMTP sessions; send each message (headers + body) on `tx`.
fn smtp_sink(listener: TcpListener, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = s.write_all(b"220 sink ESMTP\r\n");
            let mut msg = String::new();
            let mut in_data = false;
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        let _ = s.write_all(b"250 queued\r\n");
                        let _ = tx.send(std::mem::take(&mut msg));
                    } else {
                        msg.push_str(&line);
                    }
                } else if line.starts_with("DATA") {
                    in_data = true;
                    let _ = s.write_all(b"354 go ahead\r\n");
                } else if line.starts_with("QUIT") {
                    let _ = s.write_all(b"221 bye\r\n");
                    break;
                } else {
                    msg.push_str(&line);
                    let _ = s.write_all(b"250 ok\r\n");
                }
                line.clear();
            }
        }
    });
}

#[test]
fn transitions_are_mailed() {
    if !privileged_or_skip("transitions_are_mailed") {
        return;
    }
    let lan = Lan::new("lva", 1).unwrap();
    let host = lan.host(0);
    host.ip(&["link", "set", "lo", "up"]).unwrap();
    host.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]).unwrap();
    let listener = host.run(|| TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    smtp_sink(listener, tx);
    let src = format!(
        r#"
lvsd.global {{ router_id = "LVS_T", smtp_server = "127.0.0.1:{port}", notification_email = {{ "ops@example.org", "noc@example.org" }},
  notification_email_from = "lvs@example.org" }}
lvsd.vrrp "VI_1" {{ interface = "eth0", vrid = 51, version = 3, advert_int = 0.1, vips = {{ "192.0.2.100/24" }}, smtp_alert = true }}
"#
    );
    let d = Daemon::start_in(Some(host.name()), &src, "lvs01", &[]);
    d.wait_for(|d| d.vrrp_state("VI_1") == "master", "master");
    let mut mails = Vec::new();
    while let Ok(m) = rx.recv_timeout(Duration::from_secs(5)) {
        let done = m.contains("Entering MASTER");
        mails.push(m);
        if done {
            break;
        }
    }
    let master = mails.iter().find(|m| m.contains("Subject: [LVS_T] VRRP Instance VI_1 - Entering MASTER state"));
    let m = master.unwrap_or_else(|| panic!("no MASTER alert among {mails:#?}\n{}", d.log()));
    assert!(m.contains("MAIL FROM:<lvs@example.org>"), "{m}");
    assert!(m.contains("RCPT TO:<ops@example.org>") && m.contains("RCPT TO:<noc@example.org>"), "{m}");
    assert!(m.contains("To: ops@example.org, noc@example.org"), "{m}");
    assert!(mails.iter().any(|m| m.contains("Entering BACKUP state")), "the startup transition to BACKUP is mailed too: {mails:#?}");
}
