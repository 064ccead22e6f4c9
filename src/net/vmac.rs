//! VRRP virtual MAC interfaces (keepalived's `use_vmac`): a private-mode macvlan on the
//! instance's link whose address is the virtual router MAC of RFC 5798 7.3, so that the
//! VIPs move between directors without the LAN learning a new MAC. Created as keepalived
//! creates it (vrrp_vmac.c netlink_link_add_vmac) with the kernel settings it makes
//! (vrrp_if_config.c): this module only applies them; the director decides when.

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifla, RtAddrFamily, Rtm};
use neli::rtnl::{Ifinfomsg, IfinfomsgBuilder, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};
use thiserror::Error;

use super::link::{self, LinkError};
use super::rtnl::{self, RtnlError};
use super::rtnl_msg::{IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_MACVLAN_MODE};
use super::sysctl::{self, SysctlError, SysctlKey};
use crate::ipvs::attrs::Writer;

/// IFLA_MACVLAN_MODE private: the macvlan receives only frames for its own MAC (and
/// multicast), never those of its siblings.
pub const MACVLAN_MODE_PRIVATE: u32 = 1;
const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
const IN6_ADDR_GEN_MODE_NONE: u8 = 1;

#[derive(Debug, Error)]
pub enum VmacError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("{name} exists and is not a macvlan ({kind}): name another interface in use_vmac")]
    NotMacvlan { name: String, kind: String },
    #[error("{op} {name}: {source}")]
    Rtnl {
        op: &'static str,
        name: String,
        #[source]
        source: RtnlError,
    },
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
}

/// RFC 5798 7.3: the virtual router MAC, 00-00-5E-00-01-{VRID} for IPv4 and
/// 00-00-5E-00-02-{VRID} for IPv6.
pub fn virtual_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

/// One virtual MAC interface as an instance wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    pub name: String,
    /// The instance's own link, the macvlan's lower device.
    pub base: String,
    pub mac: [u8; 6],
    /// IPv6 stays enabled on it (an IPv6 instance, or IPv6 addresses among an IPv4
    /// instance's excluded VIPs); otherwise it is disabled, as keepalived does.
    pub ipv6: bool,
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// A macvlan of that name on the right link with the right MAC was there (an earlier run).
    Reused,
    /// A macvlan of that name with another link, MAC or mode was removed and made again.
    Replaced,
}

fn rtnl_err(op: &'static str, name: &str) -> impl Fn(RtnlError) -> VmacError {
    let name = name.to_owned();
    move |source| VmacError::Rtnl { op, name: name.clone(), source }
}

fn attr(ty: Ifla, payload: Vec<u8>) -> Result<neli::rtnl::Rtattr<Ifla, Buffer>, RtnlError> {
    RtattrBuilder::default()
        .rta_type(ty)
        .rta_payload(Buffer::from(payload))
        .build()
        .map_err(|e| RtnlError::Malformed { op: "build link", detail: e.to_string() })
}

fn ifinfo(index: u32, attrs: Vec<neli::rtnl::Rtattr<Ifla, Buffer>>, up: bool) -> Result<Ifinfomsg, RtnlError> {
    let b = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_index(index as i32)
        .rtattrs(attrs.into_iter().collect::<RtBuffer<Ifla, Buffer>>());
    let b = if up { b.up() } else { b };
    b.build().map_err(|e| RtnlError::Malformed { op: "build link", detail: e.to_string() })
}

/// The RTM_NEWLINK request that makes `v` (`ip link add NAME link BASE address MAC type
/// macvlan mode private`).
fn create_message(v: &Vmac, base_index: u32) -> Result<Ifinfomsg, RtnlError> {
    let mut name = v.name.as_bytes().to_vec();
    name.push(0);
    let mut info = Writer::new();
    info.string(IFLA_INFO_KIND, "macvlan");
    info.nested(IFLA_INFO_DATA, |w| w.u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_PRIVATE));
    let attrs = vec![
        attr(Ifla::Ifname, name)?,
        attr(Ifla::Link, base_index.to_ne_bytes().to_vec())?,
        attr(Ifla::Address, v.mac.to_vec())?,
        attr(Ifla::Linkinfo, info.buf)?,
    ];
    ifinfo(0, attrs, false)
}

/// Make sure `v` exists as asked and is up, with the settings keepalived gives it: no
/// automatic IPv6 link-local address (RFC 5798 7.4 wants none on the virtual MAC), and for
/// IPv4 arp_ignore 1, accept_local 1, rp_filter 0 and promote_secondaries 1. The base
/// link's own settings are [`prepare_base`]'s.
pub fn ensure(v: &Vmac) -> Result<Ensured, VmacError> {
    let base_index = link::ifindex(&v.base)?;
    let mut outcome = Ensured::Created;
    match link::link_by_name(&v.name) {
        Ok(l) if l.kind.as_deref() != Some("macvlan") => {
            return Err(VmacError::NotMacvlan { name: v.name.clone(), kind: l.kind.unwrap_or_else(|| "a physical link".into()) });
        }
        Ok(l) if l.lower == Some(base_index) && l.mac == v.mac && l.macvlan_mode == Some(MACVLAN_MODE_PRIVATE) => {
            outcome = Ensured::Reused;
        }
        Ok(l) => {
            let del = ifinfo(l.ifindex, Vec::new(), false).map_err(rtnl_err("build dellink", &v.name))?;
            rtnl::request("dellink", Rtm::Dellink, NlmF::empty(), del).map_err(rtnl_err("removing the old", &v.name))?;
            outcome = Ensured::Replaced;
        }
        Err(LinkError::NoSuchLink(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if outcome != Ensured::Reused {
        let msg = create_message(v, base_index).map_err(rtnl_err("build newlink", &v.name))?;
        rtnl::request("newlink", Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, msg).map_err(rtnl_err("creating", &v.name))?;
    }
    let index = link::ifindex(&v.name)?;
    // Set before the link comes up, or the kernel has already made the address. A kernel
    // without IPv6 refuses it, and then there is no address to make either.
    let mut addr_gen = Writer::new();
    addr_gen.nested(libc::AF_INET6 as u16, |w| w.u8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE));
    let spec = ifinfo(index, vec![attr(Ifla::AfSpec, addr_gen.buf).map_err(rtnl_err("build setlink", &v.name))?], false)
        .map_err(rtnl_err("build setlink", &v.name))?;
    if let Err(e) = rtnl::request("setlink", Rtm::Newlink, NlmF::empty(), spec) {
        tracing::debug!("{}: addr_gen_mode none: {e}", v.name);
    }
    let ipv6_off = SysctlKey::ipv6_conf(&v.name, "disable_ipv6")?;
    if let Err(e) = sysctl::write(&ipv6_off, if v.ipv6 { "0" } else { "1" }) {
        tracing::debug!("{}: {e}", v.name);
    }
    if v.mac[4] == 0x01 {
        for (name, value) in [("arp_ignore", "1"), ("accept_local", "1"), ("rp_filter", "0"), ("promote_secondaries", "1")] {
            sysctl::write(&SysctlKey::ipv4_conf(&v.name, name)?, value)?;
        }
    }
    let up = ifinfo(index, Vec::new(), true).map_err(rtnl_err("build setlink", &v.name))?;
    rtnl::request("setlink", Rtm::Newlink, NlmF::empty(), up).map_err(rtnl_err("setting up", &v.name))?;
    Ok(outcome)
}

/// Remove the macvlan called `name`; `false` if there is none. Any other kind of link of
/// that name is left alone.
pub fn remove(name: &str) -> Result<bool, VmacError> {
    let l = match link::link_by_name(name) {
        Ok(l) => l,
        Err(LinkError::NoSuchLink(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if l.kind.as_deref() != Some("macvlan") {
        return Ok(false);
    }
    let del = ifinfo(l.ifindex, Vec::new(), false).map_err(rtnl_err("build dellink", name))?;
    match rtnl::request("dellink", Rtm::Dellink, NlmF::empty(), del) {
        Ok(_) => Ok(true),
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(rtnl_err("removing", name)(e)),
    }
}

/// The base link's ARP settings before [`prepare_base`] changed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseArp {
    pub arp_ignore: String,
    pub arp_filter: String,
}

/// keepalived's settings of the link under an IPv4 virtual MAC: arp_ignore 1 (it must not
/// answer for the VIPs on the macvlan) and arp_filter 1 (nor for its own address on the
/// macvlan's behalf). Returns what was there, for [`restore_base`].
pub fn prepare_base(base: &str) -> Result<BaseArp, VmacError> {
    let arp_ignore = sysctl::replace(&SysctlKey::ipv4_conf(base, "arp_ignore")?, "1")?;
    let arp_filter = sysctl::replace(&SysctlKey::ipv4_conf(base, "arp_filter")?, "1")?;
    Ok(BaseArp { arp_ignore, arp_filter })
}

/// Put back what [`prepare_base`] found.
pub fn restore_base(base: &str, old: &BaseArp) -> Result<(), VmacError> {
    sysctl::write(&SysctlKey::ipv4_conf(base, "arp_ignore")?, &old.arp_ignore)?;
    sysctl::write(&SysctlKey::ipv4_conf(base, "arp_filter")?, &old.arp_filter)?;
    Ok(())
}

/// A macvlan with no IPv4 address hears adverts only when the effective rp_filter (the
/// larger of `all` and its own) is 0. When `all` is not, it is moved onto every link that
/// had less and onto `default`, and `all` is set to 0: every other link filters as before
/// (keepalived's set_interface_parameters does the same). Returns the old `all`, if changed.
pub fn relax_rp_filter() -> Result<Option<String>, VmacError> {
    let all_key = SysctlKey::ipv4_conf("all", "rp_filter")?;
    let all = sysctl::read_int(&all_key)?;
    if all == 0 {
        return Ok(None);
    }
    let raise = |key: SysctlKey| -> Result<(), VmacError> {
        if sysctl::read_int(&key)? < all {
            sysctl::write(&key, &all.to_string())?;
        }
        Ok(())
    };
    raise(SysctlKey::ipv4_conf("default", "rp_filter")?)?;
    for l in link::list_links()? {
        raise(SysctlKey::ipv4_conf(&l.name, "rp_filter")?)?;
    }
    Ok(Some(sysctl::replace(&all_key, "0")?))
}

/// Put back the `all` value [`relax_rp_filter`] replaced (the links keep the value they
/// were given, which is what they filtered with).
pub fn restore_rp_filter_all(old: &str) -> Result<(), VmacError> {
    Ok(sysctl::write(&SysctlKey::ipv4_conf("all", "rp_filter")?, old)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::rtnl_msg::LinkInfo;

    #[test]
    fn virtual_macs_are_rfc5798s() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(255, true), [0, 0, 0x5e, 0, 2, 255]);
    }

    #[test]
    fn the_create_request_reads_back_as_a_private_macvlan() {
        let v = Vmac { name: "vrrp.51".into(), base: "eth0".into(), mac: virtual_mac(51, false), ipv6: false };
        let msg = create_message(&v, 7).unwrap();
        let mut bytes = std::io::Cursor::new(Vec::new());
        neli::ToBytes::to_bytes(&msg, &mut bytes).unwrap();
        let l = LinkInfo::read(bytes.get_ref()).unwrap();
        assert_eq!(l.name, "vrrp.51");
        assert_eq!(l.lower, Some(7));
        assert_eq!(l.mac, v.mac);
        assert_eq!(l.kind.as_deref(), Some("macvlan"));
        assert_eq!(l.macvlan_mode, Some(MACVLAN_MODE_PRIVATE));
    }
}
