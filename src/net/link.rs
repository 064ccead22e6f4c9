//! Link state over rtnetlink: query one link, list links, and watch RTNLGRP_LINK for
//! changes so that an interface going down is seen at once.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder};
use thiserror::Error;

use super::rtnl::{self, Datagram, RtnlError, Subscription};
use super::rtnl_msg::{self, Change};
pub use super::rtnl_msg::{LinkInfo, OperState};

#[derive(Debug, Error)]
pub enum LinkError {
    #[error("no such interface {0:?}")]
    NoSuchLink(String),
    #[error("interface name {0:?} is invalid")]
    InvalidName(String),
    #[error(transparent)]
    Rtnl(#[from] RtnlError),
    #[error("setting {ifname} {state}: {source}")]
    Set {
        ifname: String,
        state: &'static str,
        #[source]
        source: RtnlError,
    },
}

/// Interface index of `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> Result<u32, LinkError> {
    let c = CString::new(name).map_err(|_| LinkError::InvalidName(name.to_owned()))?;
    // SAFETY: c is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(LinkError::NoSuchLink(name.to_owned()));
    }
    Ok(idx)
}

fn getlink_request(index: i32) -> Result<Ifinfomsg, RtnlError> {
    IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_index(index)
        .build()
        .map_err(|e| RtnlError::Malformed { op: "getlink", detail: e.to_string() })
}

/// The link with this index.
pub fn link_by_index(index: u32) -> Result<LinkInfo, LinkError> {
    let req = getlink_request(index as i32)?;
    let replies = match rtnl::request("getlink", Rtm::Getlink, NlmF::empty(), req) {
        Err(e) if e.errno() == Some(libc::ENODEV) => {
            return Err(LinkError::NoSuchLink(format!("ifindex {index}")));
        }
        r => r?,
    };
    let first = replies.get(..1).ok_or_else(|| LinkError::NoSuchLink(format!("ifindex {index}")))?;
    let mut links = rtnl_msg::links("getlink", first).map_err(RtnlError::from)?;
    Ok(links.remove(0))
}

/// The link called `name`.
pub fn link_by_name(name: &str) -> Result<LinkInfo, LinkError> {
    link_by_index(ifindex(name)?)
}

/// Every link in the calling thread's namespace.
pub fn list_links() -> Result<Vec<LinkInfo>, LinkError> {
    let req = getlink_request(0)?;
    let replies = rtnl::request("getlink dump", Rtm::Getlink, NlmF::DUMP, req)?;
    Ok(rtnl_msg::links("getlink dump", &replies).map_err(RtnlError::from)?)
}

/// Set a link administratively up or down (`ip link set dev NAME up|down`), e.g. the
/// `tunl0` device of an LVS-TUN real server.
pub fn set_link_up(name: &str, up: bool) -> Result<(), LinkError> {
    let index = ifindex(name)?;
    let state = if up { "up" } else { "down" };
    let err = |source| LinkError::Set { ifname: name.to_owned(), state, source };
    let b = IfinfomsgBuilder::default().ifi_family(RtAddrFamily::Unspecified).ifi_index(index as i32);
    let msg = if up { b.up() } else { b.down() }.build().map_err(|e| err(RtnlError::Malformed { op: "setlink", detail: e.to_string() }))?;
    rtnl::request("setlink", Rtm::Newlink, NlmF::empty(), msg).map_err(err)?;
    Ok(())
}

/// A change of a link's usability (see [`LinkInfo::is_up`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    pub name: String,
    pub up: bool,
    /// The full state behind the event; `None` when the link was deleted.
    pub info: Option<LinkInfo>,
}

/// Watches RTNLGRP_LINK. Yields an event whenever a link's `up` value changes, a link
/// appears, or a link is deleted (reported as down). The state at creation time is
/// available from [`LinkWatcher::initial`] so the caller never misses the starting point.
pub struct LinkWatcher {
    sub: Subscription,
    known: HashMap<u32, bool>,
    initial: Vec<LinkInfo>,
    pending: VecDeque<LinkEvent>,
}

impl LinkWatcher {
    /// Subscribe first, then dump, so no change between the two is lost. Must be called
    /// inside a tokio runtime; the socket belongs to the calling thread's namespace.
    pub fn new() -> Result<Self, LinkError> {
        let sub = Subscription::new(&[libc::RTNLGRP_LINK])?;
        let initial = list_links()?;
        let known = initial.iter().map(|l| (l.ifindex, l.is_up())).collect();
        Ok(LinkWatcher { sub, known, initial, pending: VecDeque::new() })
    }

    /// The links as they were when the watcher started.
    pub fn initial(&self) -> &[LinkInfo] {
        &self.initial
    }

    /// Wait for the next change. Errors are fatal for this watcher.
    pub async fn next(&mut self) -> Result<LinkEvent, LinkError> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(ev);
            }
            let changes = match self.sub.next("link watch").await? {
                Datagram::Messages(bytes) => rtnl_msg::link_changes(bytes).map_err(RtnlError::from)?,
                Datagram::Overrun => {
                    // Kernel dropped notifications: resynchronise from a fresh dump.
                    tracing::warn!("link watcher overrun, re-reading link state");
                    self.resync()?;
                    continue;
                }
            };
            for Change { present, info } in changes {
                if present {
                    self.update(info);
                } else {
                    self.removed(info.ifindex, info.name);
                }
            }
        }
    }

    fn resync(&mut self) -> Result<(), LinkError> {
        let links = list_links()?;
        let gone: Vec<u32> = self.known.keys().copied().filter(|i| !links.iter().any(|l| l.ifindex == *i)).collect();
        for i in gone {
            self.removed(i, String::new());
        }
        for l in links {
            self.update(l);
        }
        Ok(())
    }

    fn update(&mut self, info: LinkInfo) {
        let up = info.is_up();
        if self.known.insert(info.ifindex, up) != Some(up) {
            self.pending.push_back(LinkEvent { ifindex: info.ifindex, name: info.name.clone(), up, info: Some(info) });
        }
    }

    fn removed(&mut self, ifindex: u32, name: String) {
        self.known.remove(&ifindex);
        self.pending.push_back(LinkEvent { ifindex, name, up: false, info: None });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found() {
        let lo = link_by_name("lo").unwrap();
        assert_eq!(lo.ifindex, ifindex("lo").unwrap());
        assert_eq!(lo.name, "lo");
        assert!(list_links().unwrap().iter().any(|l| l.name == "lo"));
    }

    #[test]
    fn unknown_link_is_an_error() {
        assert!(matches!(ifindex("lvsd-nope0"), Err(LinkError::NoSuchLink(_))));
        assert!(matches!(link_by_index(0x7fff_fff0), Err(LinkError::NoSuchLink(_))));
    }
}
