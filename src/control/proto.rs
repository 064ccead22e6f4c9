//! The control protocol's messages and the one function that reads a request line: pure
//! (serde only, no I/O), so the fuzz target (fuzz/fuzz_targets/control_request.rs) compiles
//! this file alone.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted, newline included; the server never reads more than this
/// (plus one byte to notice) of a line, answers an error and closes the connection.
pub const MAX_REQUEST: usize = 1 << 20;

/// A real server named by its service and address ("web", "198.51.100.1:80").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealRef {
    pub service: String,
    pub real: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// The director's whole view (see `director::status`).
    Status {
        /// Only the ipvsadm-style text (`lvsd status`), not the whole document.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        text_only: bool,
        /// The document without its services, table and text: the director's own state
        /// (VRRP, BGP, sync daemon, reloads), for clients that poll it. The table is not read.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        brief: bool,
    },
    /// Reload the policy now; `force` applies it even when a reload guard refuses it (an
    /// empty policy, or one that removes too many services).
    Reload {
        #[serde(default)]
        force: bool,
    },
    /// Evaluate Lua in the inspection context.
    Eval {
        code: String,
    },
    /// Weight 0 until undrained: existing connections finish, new ones go elsewhere.
    Drain(RealRef),
    Undrain(RealRef),
    /// Force a weight until cleared.
    SetWeight {
        #[serde(flatten)]
        real: RealRef,
        weight: u32,
    },
    ClearWeight(RealRef),
    /// Run the real's checks now.
    CheckNow(RealRef),
    /// Give up mastership of an instance: send one priority-0 advert, as on a graceful stop.
    Yield {
        instance: String,
    },
    /// Undo `yield`: the instance's configured priority applies again.
    Unyield {
        instance: String,
    },
    /// Recent check results of a real.
    History(RealRef),
    /// Recent events (transitions, reloads, health changes).
    Events {
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Take the director out of service: withdraw every VIP announced over BGP; the
    /// progress (withdrawn, connections gone, done) is in the status (`bgp.drain`).
    DrainDirector {
        /// Seconds after which the drain is reported done anyway (default 300).
        #[serde(default)]
        timeout: Option<u64>,
    },
    /// Put the director back in service: the VIPs are announced again as their services allow.
    UndrainDirector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A result already written as JSON (the status document), sent as `result`: built
    /// straight from the director's data, never as a tree of `Value`s. Read back as `result`.
    #[serde(skip)]
    pub written: Option<Box<RawValue>>,
}

impl Response {
    pub fn ok(result: serde_json::Value) -> Response {
        Response { v: PROTOCOL_VERSION, ok: true, result: Some(result), error: None, written: None }
    }
    pub fn ok_written(result: Box<RawValue>) -> Response {
        Response { v: PROTOCOL_VERSION, ok: true, result: None, error: None, written: Some(result) }
    }
    pub fn err(msg: impl Into<String>) -> Response {
        Response { v: PROTOCOL_VERSION, ok: false, result: None, error: Some(msg.into()), written: None }
    }
}

/// A response as one line of JSON.
pub fn encode_response(r: &Response) -> Vec<u8> {
    #[derive(Serialize)]
    struct Written<'a> {
        v: u32,
        ok: bool,
        result: &'a RawValue,
    }
    let mut line = match &r.written {
        Some(result) => serde_json::to_vec(&Written { v: r.v, ok: r.ok, result }),
        None => serde_json::to_vec(r),
    }
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// Why a request line was refused; the text is what the client reads back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("request longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("protocol version {0} is not supported (this daemon speaks {PROTOCOL_VERSION})")]
    Version(u32),
}

/// Read one request line (the trailing newline, if any, included). serde_json bounds nesting
/// (128 levels), so no line can exhaust the stack.
pub fn parse_request(line: &[u8]) -> Result<Command, RequestError> {
    if line.len() > MAX_REQUEST {
        return Err(RequestError::TooLong);
    }
    let r: Request = serde_json::from_slice(line).map_err(|e| RequestError::Malformed(e.to_string()))?;
    if r.v != PROTOCOL_VERSION {
        return Err(RequestError::Version(r.v));
    }
    Ok(r.command)
}

/// The line a client sends for `command`, newline included.
pub fn encode_request(command: Command) -> Vec<u8> {
    // A Request is strings and integers only: serializing it cannot fail.
    let mut line = serde_json::to_vec(&Request { v: PROTOCOL_VERSION, command }).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_round_trip() {
        let c = parse_request(b"{\"v\":1,\"cmd\":\"set_weight\",\"service\":\"web\",\"real\":\"198.51.100.1:80\",\"weight\":7}\n").unwrap();
        assert_eq!(c, Command::SetWeight { real: RealRef { service: "web".into(), real: "198.51.100.1:80".into() }, weight: 7 });
        assert_eq!(parse_request(&encode_request(c.clone())), Ok(c));
        assert_eq!(parse_request(b"{\"v\":1,\"cmd\":\"events\"}"), Ok(Command::Events { limit: None }));
        // The whole document is asked for as it always was; only the text with a flag.
        assert_eq!(encode_request(Command::Status { text_only: false, brief: false }), b"{\"v\":1,\"cmd\":\"status\"}\n");
        let text = parse_request(b"{\"v\":1,\"cmd\":\"status\",\"text_only\":true}").unwrap();
        assert_eq!(text, Command::Status { text_only: true, brief: false });
        assert_eq!(parse_request(&encode_request(text.clone())), Ok(text));
        let brief = parse_request(b"{\"v\":1,\"cmd\":\"status\",\"brief\":true}").unwrap();
        assert_eq!(brief, Command::Status { text_only: false, brief: true });
        assert_eq!(parse_request(&encode_request(brief.clone())), Ok(brief));
    }

    #[test]
    fn a_written_result_reads_back_as_the_result() {
        let doc = serde_json::json!({ "services": [{ "name": "web", "reals": [1, 2] }], "text": "a \"quoted\"\nline" });
        let written = Response::ok_written(serde_json::value::to_raw_value(&doc).unwrap());
        let line = encode_response(&written);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: Response = serde_json::from_slice(&line).unwrap();
        assert!(back.ok && back.error.is_none());
        assert_eq!(back.result, Some(doc.clone()));
        assert_eq!(encode_response(&written), encode_response(&Response::ok(doc)), "the same line either way");
    }

    /// The fuzz target's property on stable, with fixed seeds: byte-mutated requests never
    /// panic the parser, and whatever it accepts encodes and parses back to itself.
    #[test]
    fn mutated_requests_parse_or_fail_cleanly() {
        let seeds: [&[u8]; 4] = [
            b"{\"v\":1,\"cmd\":\"set_weight\",\"service\":\"web\",\"real\":\"198.51.100.1:80\",\"weight\":7}",
            b"{\"v\":1,\"cmd\":\"events\",\"limit\":3}",
            b"{\"v\":1,\"cmd\":\"eval\",\"code\":\"return \\\"x\\\"\"}",
            b"{\"v\":1,\"cmd\":\"yield\",\"instance\":\"VI_1\"}",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for i in 0..20_000 {
            let mut m = seeds[i % seeds.len()].to_vec();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % m.len();
                match next() % 3 {
                    0 => m[at] = next() as u8,
                    1 => m.insert(at, b"{}[]\",:0-e\\"[(next() % 10) as usize]),
                    _ => {
                        m.remove(at);
                    }
                }
            }
            if let Ok(c) = parse_request(&m) {
                accepted += 1;
                assert_eq!(parse_request(&encode_request(c.clone())), Ok(c), "{}", String::from_utf8_lossy(&m));
            }
        }
        assert!(accepted > 0, "some mutations stay valid");
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        assert_eq!(parse_request(b"{\"v\":2,\"cmd\":\"status\"}"), Err(RequestError::Version(2)));
        assert!(matches!(parse_request(b"{not json"), Err(RequestError::Malformed(_))));
        assert!(matches!(parse_request(b"{\"v\":1,\"cmd\":\"format_disk\"}"), Err(RequestError::Malformed(_))));
        assert!(matches!(
            parse_request(b"{\"v\":1,\"cmd\":\"set_weight\",\"service\":\"a\",\"real\":\"b\",\"weight\":-1}"),
            Err(RequestError::Malformed(_))
        ));
        let deep = format!("{{\"v\":1,\"cmd\":\"eval\",\"code\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(parse_request(deep.as_bytes()), Err(RequestError::Malformed(_))));
        let mut long = vec![b' '; MAX_REQUEST];
        long.push(b'\n');
        assert_eq!(parse_request(&long), Err(RequestError::TooLong));
        assert_eq!(RequestError::TooLong.to_string(), format!("request longer than {MAX_REQUEST} bytes"));
    }
}
