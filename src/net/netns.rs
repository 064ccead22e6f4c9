//! Network namespaces for tests and `lvsd lab`: create/delete namespaces, veth pairs and
//! bridges by running `ip`, and run code inside a namespace.
//!
//! Running code inside a namespace: [`Netns::run`] runs a closure on a fresh thread that has
//! entered the namespace with `setns(2)` (network namespaces can be entered per thread, even
//! in a multi-threaded process). Sockets created inside the closure stay in that namespace
//! for their whole life, so a test can create a socket in the closure and use it from its
//! tokio runtime afterwards. `/sys` is not remounted (unlike `ip netns exec`), so code run
//! this way must use netlink or `/proc/sys`, not `/sys/class/net`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetnsError {
    #[error("running `{cmd}`: {source} (is iproute2 installed?)")]
    Spawn {
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed { cmd: String, status: String, stderr: String },
    #[error("entering namespace {name}: {source}")]
    Enter {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// A namespace name unique to this process: `<prefix>-<pid>-<n>`, short enough that
/// interface names derived from it still fit.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn run_cmd(program: &str, args: &[&str]) -> Result<Output, NetnsError> {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program).args(args).output().map_err(|source| NetnsError::Spawn { cmd: cmd.clone(), source })?;
    if !out.status.success() {
        return Err(NetnsError::Failed {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}

/// Run `ip ARGS...` in the current namespace, returning stdout.
pub fn ip(args: &[&str]) -> Result<String, NetnsError> {
    Ok(String::from_utf8_lossy(&run_cmd("ip", args)?.stdout).into_owned())
}

/// A named network namespace (`ip netns add`), deleted when dropped, also when a test
/// fails or panics.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create the namespace and bring its loopback up.
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        ip(&["netns", "add", name])?;
        let ns = Netns { name: name.to_owned() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`, returning stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetnsError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// `ip netns exec NAME PROGRAM ARGS...` (a program that needs `/sys` of the namespace).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, NetnsError> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run_cmd("ip", &full)
    }

    /// Run `f` on a thread that has entered this namespace and wait for its result.
    /// A panic in `f` is propagated to the caller.
    pub fn run<F, R>(&self, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let path = format!("/run/netns/{}", self.name);
        let enter_err = |source| NetnsError::Enter { name: self.name.clone(), source };
        let file = File::open(&path).map_err(enter_err)?;
        std::thread::scope(|s| {
            let handle = s.spawn(move || {
                // SAFETY: file is an open namespace fd; setns only affects this thread.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(f())
            });
            match handle.join() {
                Ok(r) => r.map_err(enter_err),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Like [`run`](Self::run), with the caller's tokio runtime entered on the namespace
    /// thread, so `f` can create tokio-registered sockets (`VrrpSocket::open`,
    /// `LinkWatcher::new`). Panics if called outside a tokio runtime.
    pub fn run_in_runtime<F, R>(&self, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let handle = tokio::runtime::Handle::current();
        self.run(move || {
            let _guard = handle.enter();
            f()
        })
    }

    /// Write a sysctl inside this namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let key = super::sysctl::SysctlKey::parse(key)?;
        self.run(|| super::sysctl::write(&key, value))??;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// Create a veth pair `a_if` (in `a`) <-> `b_if` (in `b`), both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<(), NetnsError> {
    a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// Create a bridge in `ns`, up, with multicast snooping off so that VRRP multicast and
/// neighbour discovery are flooded like on a plain switch.
pub fn bridge(ns: &Netns, name: &str) -> Result<(), NetnsError> {
    ns.ip(&["link", "add", name, "type", "bridge", "mcast_snooping", "0"])?;
    ns.ip(&["link", "set", name, "up"])?;
    Ok(())
}

/// Enslave `ifname` to `bridge` (both in `ns`).
pub fn attach(ns: &Netns, ifname: &str, bridge: &str) -> Result<(), NetnsError> {
    ns.ip(&["link", "set", ifname, "master", bridge])?;
    Ok(())
}

/// Whether privileged (root + netns) tests can run here. When they cannot, print why and
/// return `false` so the test returns early — unless `LVSD_REQUIRE_PRIVILEGED=1`, in which
/// case a test that cannot run is a failure (panics).
pub fn privileged_or_skip(test: &str) -> bool {
    match missing_privilege() {
        None => true,
        Some(why) => cannot_run(test, &why),
    }
}

/// Whether a privileged tier that cannot run must fail (`LVSD_REQUIRE_PRIVILEGED=1`, as CI
/// sets it) rather than skip.
pub fn privileged_required() -> bool {
    std::env::var("LVSD_REQUIRE_PRIVILEGED").as_deref() == Ok("1")
}

/// A test that cannot run here for `why`: print it and return `false` (the test returns
/// early), or panic when `LVSD_REQUIRE_PRIVILEGED=1`. The one place that rule lives.
pub fn cannot_run(test: &str, why: &str) -> bool {
    match skip_decision(test, Some(why.to_string()), privileged_required()) {
        Ok(run) => run,
        Err(msg) => panic!("{msg}"),
    }
}

/// Why privileged tests cannot run here, if they cannot.
fn missing_privilege() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".to_owned());
    }
    match Command::new("ip").arg("-V").output() {
        Err(e) => Some(format!("cannot run `ip` (iproute2): {e}")),
        Ok(o) if !o.status.success() => Some("`ip -V` failed".to_owned()),
        Ok(_) if !std::path::Path::new("/proc/self/ns/net").exists() => Some("kernel without network namespaces".to_owned()),
        Ok(_) => None,
    }
}

/// `Ok(true)`: run; `Ok(false)`: skip (reason printed); `Err`: must fail.
fn skip_decision(test: &str, missing: Option<String>, require: bool) -> Result<bool, String> {
    match missing {
        None => Ok(true),
        Some(why) if require => Err(format!("{test}: privileged test cannot run: {why} (LVSD_REQUIRE_PRIVILEGED=1 makes this a failure)")),
        Some(why) => {
            eprintln!("SKIP {test}: {why} (set LVSD_REQUIRE_PRIVILEGED=1 to make this a failure)");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_or_fail() {
        assert_eq!(skip_decision("t", None, true), Ok(true));
        assert_eq!(skip_decision("t", None, false), Ok(true));
        assert_eq!(skip_decision("t", Some("not root".into()), false), Ok(false));
        let e = skip_decision("t", Some("not root".into()), true).unwrap_err();
        assert!(e.contains("not root") && e.contains("LVSD_REQUIRE_PRIVILEGED"), "{e}");
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("x"), unique_name("x"));
        assert!(unique_name("lvsd").len() <= 32);
    }
}
