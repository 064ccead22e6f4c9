//! Reload guards (pure): a new policy that would tear most of the site down is more likely a
//! half-written or mistaken file than an intent, so it is refused unless the reload is forced
//! (`lvsd reload --force`).
//!
//! - A policy that declares no VRRP instance and no service, where the running one has some.
//! - A policy that removes more than `reload_guard` (a share, 0..1, default 0.5) of the
//!   running services. A service is its VIP (address, port and protocol, or firewall mark):
//!   what the IPVS table loses. The share used is the smaller of the running and the new
//!   policy's `reload_guard`, so a file cannot loosen the guard that judges it.

use crate::model::Model;
use std::collections::HashSet;

/// Why a reload is refused; the message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error(
        "the new policy declares no VRRP instance and no service, where the running one has {instances} instance(s) and {services} service(s): refusing to take the site down (an empty or half-written save?); `lvsd reload --force` applies it"
    )]
    Empty { instances: usize, services: usize },
    #[error(
        "the new policy removes {removed} of the {running} running services ({share:.0}% > reload_guard {guard:.0}%: {names}): refused; `lvsd reload --force` applies it, or raise lvsd.global {{ reload_guard }}"
    )]
    TooMany { removed: usize, running: usize, share: f64, guard: f64, names: String },
}

/// May `new` replace `running`? `force` skips every guard.
pub fn check(running: &Model, new: &Model, force: bool) -> Result<(), Refused> {
    if force {
        return Ok(());
    }
    let had = running.vrrp.len() + running.services.len();
    if had > 0 && new.vrrp.is_empty() && new.services.is_empty() {
        return Err(Refused::Empty { instances: running.vrrp.len(), services: running.services.len() });
    }
    if running.services.is_empty() {
        return Ok(());
    }
    let kept: HashSet<String> = new.services.iter().map(|s| format!("{:?}", s.vip)).collect();
    let removed: Vec<&str> = running.services.iter().filter(|s| !kept.contains(&format!("{:?}", s.vip))).map(|s| s.name.as_str()).collect();
    let share = removed.len() as f64 / running.services.len() as f64;
    let guard = running.global.reload_guard.min(new.global.reload_guard);
    if share > guard {
        let mut names = removed.iter().take(5).map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        if removed.len() > 5 {
            names.push_str(&format!(" and {} more", removed.len() - 5));
        }
        return Err(Refused::TooMany {
            removed: removed.len(),
            running: running.services.len(),
            share: share * 100.0,
            guard: guard * 100.0,
            names,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{LoadOptions, load_source};
    use std::path::Path;

    fn model(src: &str) -> Model {
        crate::policy::test_model(src, "n")
    }

    fn services(n: usize, guard: Option<f64>) -> Model {
        let mut src = String::new();
        if let Some(g) = guard {
            src.push_str(&format!("lvsd.global {{ reload_guard = {g} }}\n"));
        }
        for i in 0..n {
            src.push_str(&format!("lvsd.service \"s{i}\" {{ vip = \"192.0.2.{}:80\", reals = {{ \"198.51.100.1:80\" }} }}\n", i + 1));
        }
        model(&src)
    }

    #[test]
    fn an_empty_policy_is_refused_unless_forced() {
        let running = services(2, None);
        let empty = model("-- nothing yet\n");
        let e = check(&running, &empty, false).unwrap_err();
        assert_eq!(e, Refused::Empty { instances: 0, services: 2 });
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(check(&running, &empty, true), Ok(()));
        // Nothing running: nothing to protect.
        assert_eq!(check(&empty, &empty, false), Ok(()));
    }

    #[test]
    fn removing_more_than_the_share_is_refused() {
        let running = services(10, None);
        assert_eq!(check(&running, &services(5, None), false), Ok(()), "half may go at 0.5");
        let e = check(&running, &services(4, None), false).unwrap_err();
        assert!(matches!(e, Refused::TooMany { removed: 6, running: 10, .. }), "{e:?}");
        assert!(e.to_string().contains("'s4', 's5', 's6', 's7', 's8' and 1 more"), "{e}");
        assert_eq!(check(&running, &services(4, None), true), Ok(()));
        // The new file cannot loosen the guard; it can tighten it.
        assert!(check(&running, &services(4, Some(1.0)), false).is_err());
        assert!(check(&running, &services(9, Some(0.0)), false).is_err());
        assert_eq!(check(&services(10, Some(1.0)), &services(1, Some(1.0)), false), Ok(()));
        // Adding services never trips it.
        assert_eq!(check(&services(1, None), &services(10, None), false), Ok(()));
    }

    #[test]
    fn a_renamed_service_on_the_same_vip_is_kept() {
        let running = model("lvsd.service \"web\" { vip = \"192.0.2.1:80\", reals = { \"198.51.100.1:80\" } }");
        let renamed = model("lvsd.service \"www\" { vip = \"192.0.2.1:80\", reals = { \"198.51.100.2:80\" } }");
        assert_eq!(check(&running, &renamed, false), Ok(()));
    }

    #[test]
    fn reload_guard_is_validated() {
        let opts = LoadOptions { node: "n".into(), limits: Default::default() };
        let e = load_source("lvsd.global { reload_guard = 1.5 }", Path::new("p.lua"), Path::new("."), &opts).unwrap_err();
        assert!(e.to_string().contains("p.lua:1: global: reload_guard = 1.5 is out of range (0..1)"), "{e}");
    }
}
