//! Link state over rtnetlink: query one link, list links, and watch RTNLGRP_LINK for
//! changes so that an interface going down is seen at once.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Iff, Ifla, RtAddrFamily, Rtm};
use neli::nl::NlPayload;
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder};
use thiserror::Error;

use super::rtnl::{self, Datagram, RtnlError, Subscription};

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

/// RFC 2863 operational state as the kernel reports it (IFLA_OPERSTATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl OperState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            _ => OperState::Unknown,
        }
    }
}

/// One link as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    /// IFF_UP: administratively up (`ip link set up`).
    pub admin_up: bool,
    /// IFF_LOWER_UP: carrier present.
    pub carrier: bool,
    /// IFF_RUNNING: the kernel considers the link operational.
    pub running: bool,
    pub oper_state: OperState,
    /// Hardware address (6 bytes on Ethernet; empty on loopback-like links without one).
    pub mac: Vec<u8>,
    pub mtu: Option<u32>,
}

impl LinkInfo {
    /// Usable for traffic: administratively up and operational (carrier present).
    /// This is the "up" that link events report.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.running
    }

    fn from_msg(msg: &Ifinfomsg) -> Self {
        let flags = *msg.ifi_flags();
        let mut info = LinkInfo {
            ifindex: *msg.ifi_index() as u32,
            name: String::new(),
            admin_up: flags.contains(Iff::UP),
            carrier: flags.contains(Iff::LOWERUP),
            running: flags.contains(Iff::RUNNING),
            oper_state: OperState::Unknown,
            mac: Vec::new(),
            mtu: None,
        };
        for attr in msg.rtattrs().iter() {
            let p: &[u8] = attr.rta_payload().as_ref();
            match *attr.rta_type() {
                Ifla::Ifname => {
                    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
                    info.name = String::from_utf8_lossy(&p[..end]).into_owned();
                }
                Ifla::Operstate if !p.is_empty() => info.oper_state = OperState::from_u8(p[0]),
                Ifla::Address => info.mac = p.to_vec(),
                Ifla::Mtu if p.len() >= 4 => info.mtu = Some(u32::from_ne_bytes([p[0], p[1], p[2], p[3]])),
                _ => {}
            }
        }
        info
    }
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
    let first = replies.first().ok_or_else(|| LinkError::NoSuchLink(format!("ifindex {index}")))?;
    Ok(LinkInfo::from_msg(&rtnl::decode::<Ifinfomsg>("getlink", first)?))
}

/// The link called `name`.
pub fn link_by_name(name: &str) -> Result<LinkInfo, LinkError> {
    link_by_index(ifindex(name)?)
}

/// Every link in the calling thread's namespace.
pub fn list_links() -> Result<Vec<LinkInfo>, LinkError> {
    let req = getlink_request(0)?;
    let replies = rtnl::request("getlink dump", Rtm::Getlink, NlmF::DUMP, req)?;
    replies.iter().map(|p| Ok(LinkInfo::from_msg(&rtnl::decode::<Ifinfomsg>("getlink dump", p)?))).collect()
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
            let msgs = match self.sub.next("link watch").await? {
                Datagram::Messages(bytes) => rtnl::parse_datagram("link watch", bytes)?,
                Datagram::Overrun => {
                    // Kernel dropped notifications: resynchronise from a fresh dump.
                    tracing::warn!("link watcher overrun, re-reading link state");
                    self.resync()?;
                    continue;
                }
            };
            for m in msgs {
                let ty = Rtm::from(*m.nl_type());
                if ty != Rtm::Newlink && ty != Rtm::Dellink {
                    continue;
                }
                let NlPayload::Payload(p) = m.nl_payload() else {
                    continue;
                };
                let info = LinkInfo::from_msg(&rtnl::decode::<Ifinfomsg>("link watch", p)?);
                if ty == Rtm::Dellink {
                    self.removed(info.ifindex, info.name);
                } else {
                    self.update(info);
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
