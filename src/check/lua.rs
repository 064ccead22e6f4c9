//! Lua checks and weight functions, and the `lvsd.net` primitives they use.
//!
//! A Lua check's `run(rs)` runs as a coroutine driven by tokio: `lvsd.net.*` calls are async
//! Rust functions that yield to the runtime, so a slow server never blocks other checks. Every
//! call into Lua here is metered (see `crate::lua_limits`): an endless loop fails that check only.

use super::health::{CheckResult, Scalar};
use super::weight::clamp_weight;
use super::{dns, http};
use crate::lua_limits::{self as meter, Meter, Metered};
pub use crate::lua_limits::{call_sync, error_text};
use crate::model::HookRef;
use mlua::{Function, Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

/// What a Lua check or weight function is told about the real: the `rs` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RsInfo {
    /// The real's address.
    pub address: SocketAddr,
    /// The port the check probes (the real's, or the check's `port`).
    pub port: u16,
    pub service: String,
    /// The configured weight.
    pub weight: u32,
}

impl RsInfo {
    pub fn to_table(&self, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        t.set("ip", self.address.ip().to_string())?;
        t.set("port", self.port)?;
        t.set("address", self.address.to_string())?;
        t.set("service", self.service.as_str())?;
        t.set("weight", self.weight)?;
        Ok(t)
    }
}

/// A Lua check failed: the message says why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct LuaCheckError(pub String);

fn hook_fn(lua: &Lua, h: HookRef) -> mlua::Result<Function> {
    // The policy engine keeps hook functions in this registry table (policy::api::HOOKS).
    let hooks: Table = lua.named_registry_value("lvsd.hooks")?;
    hooks.raw_get(h.0)
}

/// Run a Lua check's `run(rs)` once as a metered coroutine. The caller bounds it in time.
pub async fn run_check(
    lua: &Lua,
    run: HookRef,
    rs: &RsInfo,
    instructions: u64,
    bind: Option<IpAddr>,
) -> Result<CheckResult, LuaCheckError> {
    let err = |e: mlua::Error| LuaCheckError(error_text(&e));
    let f = hook_fn(lua, run).map_err(err)?;
    let entry = meter::entry(lua).map_err(err)?;
    let rs_t = rs.to_table(lua).map_err(err)?;
    let thread = lua.create_thread(entry).map_err(err)?;
    if let Some(b) = bind {
        binds(lua).and_then(|t| t.set(&thread, b.to_string())).map_err(err)?;
    }
    let meter = Meter::new(instructions, true);
    let vals = Metered::new(thread.into_async::<MultiValue>((f, rs_t)), meter).await.map_err(err)?;
    Ok(check_result(vals))
}

fn scalar(v: &Value) -> Option<Scalar> {
    Some(match v {
        Value::Boolean(b) => Scalar::Bool(*b),
        Value::Integer(i) => Scalar::Int(*i),
        Value::Number(n) => Scalar::Num(*n),
        Value::String(s) => Scalar::Str(s.to_string_lossy()),
        _ => return None,
    })
}

/// What a check's return values mean: `true` = up; `false`/`nil` (and an optional message)
/// = down; a number = up with that weight; a table = `{ ok = true, weight = n, error = "..",
/// any = value ... }` with the other keys passed on to weight functions.
pub fn check_result(vals: MultiValue) -> CheckResult {
    let z = Duration::ZERO;
    let mut it = vals.into_iter();
    let first = it.next().unwrap_or(Value::Nil);
    let msg = match it.next() {
        Some(Value::String(s)) => Some(s.to_string_lossy()),
        _ => None,
    };
    match first {
        Value::Nil | Value::Boolean(false) => CheckResult::down(z, msg.unwrap_or_else(|| "check returned false".into())),
        Value::Integer(i) => CheckResult { weight: clamp_weight(i as f64), ..CheckResult::up(z) },
        Value::Number(n) => CheckResult { weight: clamp_weight(n), ..CheckResult::up(z) },
        Value::Table(t) => {
            let mut r = CheckResult::up(z);
            for (k, v) in t.pairs::<Value, Value>().filter_map(|p| p.ok()) {
                let Value::String(k) = k else { continue };
                let k = k.to_string_lossy();
                match k.as_str() {
                    "ok" => r.ok = !matches!(v, Value::Nil | Value::Boolean(false)),
                    "weight" => {
                        r.weight = scalar(&v).and_then(|s| match s {
                            Scalar::Int(i) => clamp_weight(i as f64),
                            Scalar::Num(n) => clamp_weight(n),
                            _ => None,
                        })
                    }
                    "error" => {
                        r.error = scalar(&v).map(|s| match s {
                            Scalar::Str(s) => s,
                            other => format!("{other:?}"),
                        })
                    }
                    _ => {
                        if let Some(s) = scalar(&v) {
                            r.values.insert(k, s);
                        }
                    }
                }
            }
            if !r.ok && r.error.is_none() {
                r.error = Some(msg.unwrap_or_else(|| "check returned ok = false".into()));
            }
            r
        }
        Value::String(s) => {
            let mut r = CheckResult::up(z);
            r.values.insert("value".into(), Scalar::Str(s.to_string_lossy()));
            r
        }
        _ => CheckResult::up(z),
    }
}

/// The `h` table of a weight function.
fn h_table(lua: &Lua, r: &CheckResult) -> mlua::Result<Table> {
    let h = lua.create_table()?;
    for (k, v) in &r.values {
        match v {
            Scalar::Bool(b) => h.set(k.as_str(), *b)?,
            Scalar::Int(i) => h.set(k.as_str(), *i)?,
            Scalar::Num(n) => h.set(k.as_str(), *n)?,
            Scalar::Str(s) => h.set(k.as_str(), s.as_str())?,
        }
    }
    h.set("ok", r.ok)?;
    h.set("latency_ms", r.latency_ms())?;
    h.set("status", r.status)?;
    h.set("body", r.body.as_deref())?;
    h.set("error", r.error.as_deref())?;
    h.set("weight", r.weight)?;
    Ok(h)
}

/// Call a weight function `weight(rs, h)` (synchronously, metered). An error or a value that
/// is not a number is returned as a message; the caller keeps the previous weight.
pub fn call_weight(lua: &Lua, f: HookRef, rs: &RsInfo, r: &CheckResult, instructions: u64) -> Result<u32, String> {
    let err = |e: mlua::Error| error_text(&e);
    let func = hook_fn(lua, f).map_err(err)?;
    let args = (rs.to_table(lua).map_err(err)?, h_table(lua, r).map_err(err)?);
    match call_sync(lua, func, args, instructions)? {
        Value::Integer(i) => Ok(clamp_weight(i as f64).unwrap_or(0)),
        Value::Number(n) => clamp_weight(n).ok_or_else(|| "weight function returned NaN".to_string()),
        other => Err(format!("weight function returned a {}, not a number", other.type_name())),
    }
}

// ------------------------------------------------------------------ lvsd.net

/// The registry table of the check coroutines that have a `bind` address: coroutine -> address,
/// with weak keys (an entry goes with its coroutine).
const BINDS: &str = "lvsd.check_binds";

fn binds(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(BINDS) {
        return Ok(t);
    }
    let t = lua.create_table()?;
    let mt = lua.create_table()?;
    mt.set("__mode", "k")?;
    t.set_metatable(Some(mt));
    lua.set_named_registry_value(BINDS, &t)?;
    Ok(t)
}

/// The `bind` address of the check whose coroutine is calling (`lvsd.net.*` connect from it,
/// as the built-in checks do). Read when the call is made, inside the coroutine.
fn check_bind(lua: &Lua) -> Option<IpAddr> {
    let t = lua.named_registry_value::<Table>(BINDS).ok()?;
    t.get::<Option<String>>(lua.current_thread()).ok()??.parse().ok()
}

fn ip_arg(ip: &str) -> mlua::Result<IpAddr> {
    ip.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| mlua::Error::runtime(format!("'{ip}' is not an IP address")))
}

type Conn = Arc<Mutex<Option<BufReader<TcpStream>>>>;

/// `lvsd.net.tcp(ip, port)`: a connected TCP stream.
struct LuaTcp(Conn);

fn take(c: &Conn) -> mlua::Result<BufReader<TcpStream>> {
    c.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| mlua::Error::runtime("connection is closed (or busy)"))
}

impl UserData for LuaTcp {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("write", |_, this, data: mlua::String| {
            let (c, data) = (this.0.clone(), data.as_bytes().to_vec());
            async move {
                let mut s = take(&c)?;
                let r = s.get_mut().write_all(&data).await;
                *c.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                r.map_err(|e| mlua::Error::runtime(format!("write: {e}")))?;
                Ok(true)
            }
        });
        m.add_async_method("read_line", |lua, this, ()| {
            let c = this.0.clone();
            async move {
                let mut s = take(&c)?;
                let mut line = Vec::new();
                let r = (&mut s).take(64 << 10).read_until(b'\n', &mut line).await;
                *c.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                let n = r.map_err(|e| mlua::Error::runtime(format!("read: {e}")))?;
                if n == 0 {
                    return Ok(Value::Nil);
                }
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                Ok(Value::String(lua.create_string(&line)?))
            }
        });
        m.add_async_method("read", |lua, this, n: Option<usize>| {
            let c = this.0.clone();
            async move {
                let mut s = take(&c)?;
                let mut buf = vec![0u8; n.unwrap_or(4096).clamp(1, 1 << 20)];
                let r = s.read(&mut buf).await;
                *c.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                let k = r.map_err(|e| mlua::Error::runtime(format!("read: {e}")))?;
                if k == 0 {
                    return Ok(Value::Nil);
                }
                Ok(Value::String(lua.create_string(&buf[..k])?))
            }
        });
        m.add_method("close", |_, this, ()| {
            this.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            Ok(())
        });
    }
}

/// `lvsd.net.udp(ip, port)`: a connected UDP socket.
struct LuaUdp(Arc<UdpSocket>);

impl UserData for LuaUdp {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("send", |_, this, data: mlua::String| {
            let (s, data) = (this.0.clone(), data.as_bytes().to_vec());
            async move {
                s.send(&data).await.map_err(|e| mlua::Error::runtime(format!("send: {e}")))?;
                Ok(true)
            }
        });
        m.add_async_method("recv", |lua, this, max: Option<usize>| {
            let s = this.0.clone();
            async move {
                let mut buf = vec![0u8; max.unwrap_or(65535).clamp(1, 65535)];
                let n = s.recv(&mut buf).await.map_err(|e| mlua::Error::runtime(format!("recv: {e}")))?;
                lua.create_string(&buf[..n])
            }
        });
        m.add_method("close", |_, _, ()| Ok(()));
    }
}

async fn net_http(lua: Lua, t: Table, bind: Option<IpAddr>) -> mlua::Result<Table> {
    let ip = ip_arg(&t.get::<String>("ip").map_err(|_| mlua::Error::runtime("lvsd.net.http needs ip = \"addr\""))?)?;
    let tls: bool = t.get::<Option<bool>>("tls")?.unwrap_or(false);
    let port: u16 = t.get::<Option<u16>>("port")?.unwrap_or(if tls { 443 } else { 80 });
    let target = SocketAddr::new(ip, port);
    let method = t.get::<Option<String>>("method")?.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
    let path = t.get::<Option<String>>("path")?.unwrap_or_else(|| "/".into());
    let host_opt = t.get::<Option<String>>("host")?;
    let host = http::host_header(host_opt.as_deref(), target, tls);
    let body = t.get::<Option<mlua::String>>("body")?.map(|b| b.as_bytes().to_vec()).unwrap_or_default();
    let mut headers = Vec::new();
    if let Some(h) = t.get::<Option<Table>>("headers")? {
        for p in h.pairs::<String, String>() {
            headers.push(p?);
        }
    }
    let tls = if tls {
        let name = t.get::<Option<String>>("sni")?.or(host_opt).unwrap_or_else(|| ip.to_string());
        let verify = t.get::<Option<bool>>("verify")?.unwrap_or(false);
        Some(http::Tls::new(&name, verify).map_err(|e| mlua::Error::runtime(e.to_string()))?)
    } else {
        None
    };
    let req = http::request(&method, &path, &host, &headers, &body);
    let resp = http::fetch(target, bind, tls.as_ref(), &req, method == "HEAD").await.map_err(|e| mlua::Error::runtime(e.to_string()))?;
    let out = lua.create_table()?;
    out.set("status", resp.status)?;
    out.set("body", lua.create_string(&resp.body)?)?;
    let hs = lua.create_table()?;
    for (k, v) in resp.headers {
        hs.set(k, v)?;
    }
    out.set("headers", hs)?;
    Ok(out)
}

async fn net_dns(lua: Lua, t: Table, bind: Option<IpAddr>) -> mlua::Result<Table> {
    let ip = ip_arg(&t.get::<String>("ip").map_err(|_| mlua::Error::runtime("lvsd.net.dns needs ip = \"addr\""))?)?;
    let port: u16 = t.get::<Option<u16>>("port")?.unwrap_or(53);
    let name = t.get::<Option<String>>("name")?.unwrap_or_else(|| ".".into());
    let qtype =
        dns::qtype(&t.get::<Option<String>>("type")?.unwrap_or_else(|| "SOA".into())).map_err(|e| mlua::Error::runtime(e.to_string()))?;
    let q = dns::query(fastrand::u16(..), &name, qtype).map_err(|e| mlua::Error::runtime(e.to_string()))?;
    let target = SocketAddr::new(ip, port);
    let s = super::runner::udp_socket(target, bind).await.map_err(|e| mlua::Error::runtime(format!("socket: {e}")))?;
    s.send(&q).await.map_err(|e| mlua::Error::runtime(format!("send to {target}: {e}")))?;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = s.recv(&mut buf).await.map_err(|e| mlua::Error::runtime(format!("{target}: {e}")))?;
        let res = dns::check_reply(&q, &buf[..n]);
        let h = match &res {
            Err(dns::DnsError::Id { .. }) => continue,
            Ok(r) => r.header,
            // The other errors are answers the script can look at (rcode, TC): the header
            // parsed, since the id was compared.
            Err(dns::DnsError::Truncated | dns::DnsError::Rcode(_)) => {
                dns::header(&buf[..n]).map_err(|e| mlua::Error::runtime(e.to_string()))?
            }
            Err(e) => return Err(mlua::Error::runtime(e.to_string())),
        };
        let out = lua.create_table()?;
        out.set("ok", res.is_ok())?;
        out.set("rcode", h.rcode)?;
        out.set("answers", h.ancount)?;
        if let Err(e) = res {
            out.set("error", e.to_string())?;
        }
        return Ok(out);
    }
}

/// Add `lvsd.net` (tcp, udp, http, dns) to a policy's Lua state. These are async: they work
/// inside Lua checks (coroutines driven by tokio), not in synchronous hooks.
pub fn install_net(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    let lvsd: Table = match g.get::<Value>("lvsd")? {
        Value::Table(t) => t,
        _ => {
            let t = lua.create_table()?;
            g.set("lvsd", &t)?;
            t
        }
    };
    let net = lua.create_table()?;
    net.set(
        "tcp",
        lua.create_async_function(|lua, (ip, port): (String, u16)| {
            let bind = check_bind(&lua);
            async move {
                let target = SocketAddr::new(ip_arg(&ip)?, port);
                let s =
                    super::runner::connect(target, bind).await.map_err(|e| mlua::Error::runtime(format!("connect to {target}: {e}")))?;
                Ok(LuaTcp(Arc::new(Mutex::new(Some(BufReader::new(s))))))
            }
        })?,
    )?;
    net.set(
        "udp",
        lua.create_async_function(|lua, (ip, port): (String, u16)| {
            let bind = check_bind(&lua);
            async move {
                let target = SocketAddr::new(ip_arg(&ip)?, port);
                let s = super::runner::udp_socket(target, bind).await.map_err(|e| mlua::Error::runtime(format!("udp {target}: {e}")))?;
                Ok(LuaUdp(Arc::new(s)))
            }
        })?,
    )?;
    net.set(
        "http",
        lua.create_async_function(|lua, t| {
            let bind = check_bind(&lua);
            net_http(lua, t, bind)
        })?,
    )?;
    net.set(
        "dns",
        lua.create_async_function(|lua, t| {
            let bind = check_bind(&lua);
            net_dns(lua, t, bind)
        })?,
    )?;
    lvsd.set("net", net)?;
    Ok(())
}
