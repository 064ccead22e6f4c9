//! The virtual MAC interfaces of the running VRRP instances (`use_vmac`): made when an
//! instance starts, made again when one goes missing, removed when no instance uses it any
//! more (after its last advert left), with the base links' settings put back then.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::VrrpInstance;
use crate::net::{self, vmac};

/// The virtual MAC interface of `v` as the netlink adapter makes it.
pub fn vmac_of(v: &VrrpInstance) -> Option<vmac::Vmac> {
    let m = v.vmac.as_ref()?;
    Some(vmac::Vmac {
        name: m.name.clone(),
        base: v.interface.clone(),
        mac: vmac::virtual_mac(v.vrid, v.is_ipv6()),
        ipv6: v.held_vips().any(|a| a.addr.is_ipv6()),
    })
}

#[derive(Default)]
pub struct Vmacs {
    /// The interfaces made (or found and kept) for instances.
    made: Vec<String>,
    /// The ARP settings of the links under IPv4 virtual MACs, from before.
    bases: HashMap<String, vmac::BaseArp>,
    /// `net.ipv4.conf.all.rp_filter` from before, once it was looked at.
    rp_filter_all: Option<Option<String>>,
}

impl Vmacs {
    /// Make `v`'s interface ready for its VIPs and adverts. `primary` is the address adverts
    /// leave from: an IPv6 instance sending on the virtual MAC puts it there too, as
    /// keepalived does (the interface has no address of its own, RFC 5798 7.4).
    pub fn ensure(&mut self, v: &VrrpInstance, primary: IpAddr, notes: &mut Vec<(&'static str, String)>) -> Result<(), String> {
        let Some(vm) = vmac_of(v) else { return Ok(()) };
        if !v.is_ipv6() {
            if !self.bases.contains_key(&vm.base) {
                let old = vmac::prepare_base(&vm.base).map_err(|e| e.to_string())?;
                self.bases.insert(vm.base.clone(), old);
            }
            if self.rp_filter_all.is_none() {
                let old = vmac::relax_rp_filter().map_err(|e| e.to_string())?;
                if let Some(o) = &old {
                    notes.push(("vrrp", format!("net.ipv4.conf.all.rp_filter was {o}: moved onto each link, 0 for {}", vm.name)));
                }
                self.rp_filter_all = Some(old);
            }
        }
        match vmac::ensure(&vm).map_err(|e| format!("use_vmac {}: {e}", vm.name))? {
            vmac::Ensured::Created | vmac::Ensured::Reused => {}
            vmac::Ensured::Replaced => {
                notes.push(("vrrp", format!("{}: {} was another macvlan: made again on {}", v.name, vm.name, vm.base)))
            }
        }
        let sends_here = v.vmac.as_ref().is_some_and(|m| !m.xmit_base);
        if sends_here && primary.is_ipv6() {
            let ll = net::Vip::host(primary, &vm.name).with_prefix(64).with_scope(net::Scope::Link);
            net::addr::add_address(&ll).map_err(|e| format!("use_vmac {}: {e}", vm.name))?;
        }
        if !self.made.contains(&vm.name) {
            self.made.push(vm.name);
        }
        Ok(())
    }

    /// Make again the interfaces of `running` instances that are gone (deleted by hand);
    /// returns the names made again.
    pub fn restore(&mut self, running: &[(&VrrpInstance, IpAddr)], notes: &mut Vec<(&'static str, String)>) -> Vec<String> {
        let mut made = Vec::new();
        for (v, primary) in running {
            let Some(m) = &v.vmac else { continue };
            if net::ifindex(&m.name).is_ok() {
                continue;
            }
            match self.ensure(v, *primary, notes) {
                Ok(()) => {
                    notes.push(("vrrp", format!("{}: {} was missing: made again", v.name, m.name)));
                    made.push(m.name.clone());
                }
                Err(e) => tracing::debug!("{}: {e}", v.name),
            }
        }
        made
    }

    /// Remove what no instance of `running` uses any more; put the base links' and
    /// rp_filter's settings back when the last user of them went.
    pub fn tidy<'a>(&mut self, running: impl Iterator<Item = &'a VrrpInstance> + Clone, notes: &mut Vec<(&'static str, String)>) {
        let used = |name: &str| running.clone().any(|v| v.vmac.as_ref().is_some_and(|m| m.name == name));
        self.made.retain(|name| {
            if used(name) {
                return true;
            }
            if let Err(e) = vmac::remove(name) {
                notes.push(("vrrp_error", format!("removing {name}: {e}")));
            }
            false
        });
        let base_used = |base: &str| running.clone().any(|v| v.vmac.is_some() && !v.is_ipv6() && v.interface == base);
        self.bases.retain(|base, old| {
            if base_used(base) {
                return true;
            }
            if let Err(e) = vmac::restore_base(base, old) {
                tracing::debug!("{base}: {e}");
            }
            false
        });
        if self.bases.is_empty()
            && let Some(old) = self.rp_filter_all.take()
            && let Some(old) = old
            && let Err(e) = vmac::restore_rp_filter_all(&old)
        {
            tracing::debug!("rp_filter: {e}");
        }
    }
}
