//! The real servers' web server in the lab: answers every request with its own name, so the
//! client can count where each request went. `lvsd lab-http --name rs1 --port 80`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

pub fn serve(name: &str, port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("::", port)).or_else(|_| TcpListener::bind(("0.0.0.0", port)))?;
    let body = format!("{name}\n");
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let body = body.clone();
        std::thread::spawn(move || {
            // Long-lived clients (lab::longlived) ask for keep-alive and send a request every
            // 100 ms; a failover can hold one up for seconds, hence the long wait then.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 2048];
            loop {
                let mut got = 0;
                while got < buf.len() {
                    match s.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            got += n;
                            if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
                let keep = String::from_utf8_lossy(&buf[..got]).to_ascii_lowercase().contains("connection: keep-alive");
                let conn = if keep { "keep-alive" } else { "close" };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{body}",
                    body.len()
                );
                if s.write_all(resp.as_bytes()).is_err() || !keep {
                    return;
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
            }
        });
    }
    Ok(())
}
