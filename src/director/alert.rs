//! E-mail alerts on VRRP transitions, as keepalived's `notification_email` + `smtp_alert`.
//! A plain SMTP client: banner, HELO, MAIL FROM, RCPT TO, DATA, QUIT, each with a timeout.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("SMTP server {0}: {1}")]
    Io(String, std::io::Error),
    #[error("SMTP server {0} said: {1}")]
    Refused(String, String),
    #[error("SMTP server {0}: no answer within {1:?}")]
    Timeout(String, Duration),
}

pub struct Mail {
    pub server: String,
    pub timeout: Duration,
    pub helo: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// "192.0.2.25", "192.0.2.25:2525", "[2001:db8::25]:25", "mail.example.org 25" (keepalived
/// writes the port after a space).
fn server_addr(s: &str) -> String {
    let s = s.trim();
    if let Some((host, port)) = s.split_once(char::is_whitespace) {
        return if host.contains(':') { format!("[{host}]:{}", port.trim()) } else { format!("{host}:{}", port.trim()) };
    }
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return s.to_string();
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return format!("[{s}]:25");
    }
    if s.contains(':') { s.to_string() } else { format!("{s}:25") }
}

pub async fn send(mail: &Mail) -> Result<(), AlertError> {
    let addr = server_addr(&mail.server);
    let t = mail.timeout;
    let io = |e| AlertError::Io(addr.clone(), e);
    let stream = tokio::time::timeout(t, TcpStream::connect(&addr)).await.map_err(|_| AlertError::Timeout(addr.clone(), t))?.map_err(io)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    // Read one (possibly multi-line) reply and check its code class.
    async fn reply(rd: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, addr: &str, t: Duration, want: char) -> Result<(), AlertError> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(t, rd.read_line(&mut line))
                .await
                .map_err(|_| AlertError::Timeout(addr.to_string(), t))?
                .map_err(|e| AlertError::Io(addr.to_string(), e))?;
            if n == 0 {
                return Err(AlertError::Refused(addr.to_string(), "connection closed".into()));
            }
            if line.len() >= 4 && line.as_bytes()[3] == b'-' {
                continue;
            }
            return if line.starts_with(want) { Ok(()) } else { Err(AlertError::Refused(addr.to_string(), line.trim().to_string())) };
        }
    }
    reply(&mut rd, &addr, t, '2').await?;
    let mut steps: Vec<(String, char)> = vec![(format!("HELO {}\r\n", mail.helo), '2'), (format!("MAIL FROM:<{}>\r\n", mail.from), '2')];
    for r in &mail.to {
        steps.push((format!("RCPT TO:<{r}>\r\n"), '2'));
    }
    steps.push(("DATA\r\n".into(), '3'));
    for (cmd, want) in steps {
        wr.write_all(cmd.as_bytes()).await.map_err(io)?;
        reply(&mut rd, &addr, t, want).await?;
    }
    let date = chrono_like_date();
    // Dot-stuffing (RFC 5321 4.5.2): a line starting with '.' gets another.
    let body: String = mail.body.lines().map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();
    let msg = format!(
        "Date: {date}\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nX-Mailer: lvsd\r\n\r\n{body}.\r\n",
        mail.from,
        mail.to.join(", "),
        mail.subject
    );
    wr.write_all(msg.as_bytes()).await.map_err(io)?;
    reply(&mut rd, &addr, t, '2').await?;
    let _ = wr.write_all(b"QUIT\r\n").await;
    Ok(())
}

/// An RFC 5322 date in UTC, without pulling in a date crate.
fn chrono_like_date() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} +0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(server_addr("192.0.2.25"), "192.0.2.25:25");
        assert_eq!(server_addr("192.0.2.25:2525"), "192.0.2.25:2525");
        assert_eq!(server_addr("192.0.2.25 2525"), "192.0.2.25:2525");
        assert_eq!(server_addr("2001:db8::25"), "[2001:db8::25]:25");
        assert_eq!(server_addr("2001:db8::25 587"), "[2001:db8::25]:587");
        assert_eq!(server_addr("mail.example.org"), "mail.example.org:25");
    }

    #[test]
    fn date_format() {
        let d = chrono_like_date();
        assert!(d.ends_with(" +0000") && d.len() == 31, "{d}");
    }
}
