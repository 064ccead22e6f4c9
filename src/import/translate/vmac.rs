//! `use_vmac` and `vmac_xmit_base` of a vrrp_instance, read as keepalived's
//! vrrp_vmac_handler and vrrp_end_handler read them, named as its create_vmac_name names them.

use super::values::{get, set, take};
use super::*;

impl Tx<'_> {
    /// `use_vmac [NAME] [MAC]`: a name becomes `use_vmac = "NAME"`, none `use_vmac = true`
    /// (named at the end of the instance, when its VRID is known).
    pub(super) fn use_vmac(&mut self, n: &Node, body: &mut Vec<Entry>) {
        let mut name = None;
        for a in n.args.iter().take(2) {
            if a.contains(':') {
                // keepalived 2.2 takes any unicast MAC but RFC 5798's; lvsd always uses that one.
                self.unsupported_arg_of(n, "use_vmac", a, body);
            } else if valid_name(a) {
                name = Some(a.clone());
            } else {
                self.warn(&n.loc, format!("use_vmac: interface name '{}' is too long or invalid; keepalived ignores it", shown(a)));
            }
        }
        take(body, "use_vmac");
        body.push(field("use_vmac", name.map_or(Value::Bool(true), |x| s(&x)), &n.loc));
    }

    /// At the end of an instance: the name keepalived gives a macvlan left unnamed
    /// (`vrrp.VRID`, or when an earlier instance has it `vrrp1.VRID`, `vrrp2.VRID`, ... and
    /// for IPv6 `vrrp6.VRID` first), and `vmac_xmit_base` as keepalived settles it.
    pub(super) fn complete_vmac(&mut self, v: &Node, name: &str, ipv6: bool, body: &mut Vec<Entry>) {
        let Some(vmac) = get(body, "use_vmac").cloned() else {
            if let Some(f) = take(body, "vmac_xmit_base") {
                let loc = f.loc.clone().unwrap_or(v.loc.clone());
                self.warn(
                    &loc,
                    format!("vrrp_instance {name}: vmac_xmit_base is only valid with a vmac; keepalived ignores it: not translated"),
                );
                body.push(Entry::Comment("keepalived: vmac_xmit_base (not translated: no use_vmac)".into()));
            }
            return;
        };
        let chosen = match vmac {
            Value::Str(n) => n,
            _ => {
                let vrid = match get(body, "vrid") {
                    Some(Value::Int(id)) => *id,
                    _ => 0,
                };
                let candidates = std::iter::once(format!("vrrp.{vrid}")).chain(
                    if ipv6 { vec![6, 1, 2, 3, 4, 5] } else { vec![1, 2, 3, 4, 5, 6] }
                        .into_iter()
                        .chain(7..)
                        .map(move |k| format!("vrrp{k}.{vrid}")),
                );
                let first = format!("vrrp.{vrid}");
                let mut candidates = candidates;
                let pick = candidates.find(|c| !self.vmac_names.contains(c)).unwrap_or(first.clone());
                if pick != first {
                    set(body, "use_vmac", s(&pick));
                }
                pick
            }
        };
        self.vmac_names.push(chosen);
        let unicast = matches!(get(body, "unicast_peers"), Some(Value::List(l)) if !l.is_empty());
        if unicast && get(body, "vmac_xmit_base").is_none() {
            self.warn(&v.loc, format!("vrrp_instance {name}: unicast with use_vmac requires vmac_xmit_base; keepalived sets it: translated as vmac_xmit_base = true"));
            body.push(field("vmac_xmit_base", Value::Bool(true), &v.loc));
        }
    }
}

/// keepalived's dev_name_valid (the kernel's rule): 1..15 bytes, no '/', ':' or white space.
fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() < 16 && n != "." && n != ".." && !n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use crate::import::translate::tests::translate_text;

    #[test]
    fn use_vmac_is_named_as_keepalived_names_it() {
        let (doc, w) = translate_text(
            "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
             vrrp_instance B {\n interface eth1\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n 192.0.2.2\n }\n}\n\
             vrrp_instance C {\n interface eth0\n virtual_router_id 51\n use_vmac\n virtual_ipaddress {\n 2001:db8::1\n }\n}\n\
             vrrp_instance D {\n interface eth0\n virtual_router_id 52\n use_vmac vmac52 00:00:5e:00:01:99\n vmac_xmit_base\n unicast_peer {\n 192.0.2.9\n }\n virtual_ipaddress {\n 192.0.2.3\n }\n}\n",
        );
        let text = crate::import::lua::render(&doc, "", None);
        assert!(text.contains("use_vmac = true,"), "{text}");
        assert!(text.contains("use_vmac = \"vrrp1.51\","), "{text}");
        assert!(text.contains("use_vmac = \"vrrp6.51\","), "{text}");
        assert!(text.contains("use_vmac = \"vmac52\","), "{text}");
        assert_eq!(text.matches("vmac_xmit_base = true,").count(), 1, "{text}");
        assert!(w.iter().any(|w| w.message.contains("option '00:00:5e:00:01:99'")), "{w:?}");
    }

    #[test]
    fn unicast_with_use_vmac_sends_from_the_base() {
        let (doc, w) = translate_text(
            "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n use_vmac\n unicast_peer {\n 192.0.2.9\n }\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
             vrrp_instance B {\n interface eth0\n virtual_router_id 52\n vmac_xmit_base\n virtual_ipaddress {\n 192.0.2.2\n }\n}\n",
        );
        let text = crate::import::lua::render(&doc, "", None);
        assert_eq!(text.matches("vmac_xmit_base = true,").count(), 1, "{text}");
        assert!(w.iter().any(|w| w.message.contains("requires vmac_xmit_base")), "{w:?}");
        assert!(w.iter().any(|w| w.message.contains("only valid with a vmac")), "{w:?}");
    }
}
