//! `drain_timeout`: what leaves the table (a real removed from the policy or failing
//! without `inhibit_on_failure`, a service removed from the policy) is first kept at
//! weight 0, so that its connections finish, and removed once the grace period is over.
//! A timeout of 0 removes at once, as keepalived does. Pure: the caller passes the clock.

use crate::ipvs::table::{DestKey, Service, ServiceKey};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct Drain {
    /// Services no longer wanted, kept (every real at weight 0) until the deadline.
    services: HashMap<ServiceKey, Instant>,
    /// Reals no longer wanted in a wanted service, kept at weight 0 until the deadline.
    dests: HashMap<(ServiceKey, DestKey), Instant>,
}

impl Drain {
    /// What to install for `key`: `want` (None = not wanted) plus whatever of `prev` (what
    /// was installed last time) is still within its grace period, at weight 0.
    pub fn apply(
        &mut self,
        key: ServiceKey,
        prev: Option<&Service>,
        want: Option<Service>,
        now: Instant,
        timeout: Duration,
    ) -> Option<Service> {
        if timeout.is_zero() {
            self.forget(key);
            return want;
        }
        match (want, prev) {
            (Some(mut want), prev) => {
                // Nothing draining is the usual case: no lookup per real then.
                if !self.services.is_empty() {
                    self.services.remove(&key);
                }
                for (dk, d) in prev.map(|p| &p.dests).into_iter().flatten() {
                    if want.dests.contains_key(dk) {
                        if !self.dests.is_empty() {
                            self.dests.remove(&(key, *dk));
                        }
                        continue;
                    }
                    let deadline = *self.dests.entry((key, *dk)).or_insert(now + timeout);
                    if now < deadline {
                        let mut d = d.clone();
                        d.weight = 0;
                        want.dests.insert(*dk, d);
                    } else {
                        self.dests.remove(&(key, *dk));
                    }
                }
                Some(want)
            }
            (None, Some(prev)) => {
                let deadline = *self.services.entry(key).or_insert(now + timeout);
                if now < deadline {
                    let mut keep = prev.clone();
                    keep.dests.values_mut().for_each(|d| d.weight = 0);
                    Some(keep)
                } else {
                    self.forget(key);
                    None
                }
            }
            (None, None) => {
                self.forget(key);
                None
            }
        }
    }

    /// The same as `apply(key, Some(svc), Some(svc.clone()), ..)`, which returns `svc` as it
    /// is, without the copy: a service wanted exactly as installed drains nothing, and a
    /// drain of it or of its reals is over.
    pub fn keep(&mut self, key: ServiceKey, svc: &Service, timeout: Duration) {
        if timeout.is_zero() {
            self.forget(key);
            return;
        }
        if !self.services.is_empty() {
            self.services.remove(&key);
        }
        if !self.dests.is_empty() {
            for dk in svc.dests.keys() {
                self.dests.remove(&(key, *dk));
            }
        }
    }

    fn forget(&mut self, key: ServiceKey) {
        // Called for every service of every pass when drains are off: no hashing then.
        if !self.services.is_empty() {
            self.services.remove(&key);
        }
        if !self.dests.is_empty() {
            self.dests.retain(|(k, _), _| *k != key);
        }
    }

    /// When the next grace period ends (the director syncs then).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.services.values().chain(self.dests.values()).min().copied()
    }

    /// Is this real (or its whole service) draining, and until when?
    pub fn until(&self, key: &ServiceKey, dest: &DestKey) -> Option<Instant> {
        self.dests.get(&(*key, *dest)).or_else(|| self.services.get(key)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::table::{Dest, Family, Forward, Protocol, ServiceConf};

    fn key() -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: "192.0.2.1:80".parse().unwrap() }
    }
    fn dk(n: u8) -> DestKey {
        DestKey(format!("198.51.100.{n}:80").parse().unwrap())
    }
    fn svc(reals: &[u8]) -> Service {
        let mut s = Service::new(ServiceConf::new("wlc", Family::Inet));
        for &n in reals {
            s.dests.insert(dk(n), Dest::new(Forward::Dr, 5));
        }
        s
    }
    const T: Duration = Duration::from_secs(30);

    #[test]
    fn zero_timeout_removes_at_once() {
        let mut d = Drain::default();
        let now = Instant::now();
        let out = d.apply(key(), Some(&svc(&[1, 2])), Some(svc(&[1])), now, Duration::ZERO).unwrap();
        assert_eq!(out.dests.len(), 1);
        assert_eq!(d.apply(key(), Some(&out), None, now, Duration::ZERO), None);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_leaving_real_stays_at_weight_0_until_the_timeout() {
        let mut d = Drain::default();
        let t0 = Instant::now();
        let first = d.apply(key(), Some(&svc(&[1, 2])), Some(svc(&[1])), t0, T).unwrap();
        assert_eq!(first.dests[&dk(2)].weight, 0);
        assert_eq!(first.dests[&dk(1)].weight, 5);
        assert_eq!(d.next_deadline(), Some(t0 + T));
        // Later syncs keep the first deadline.
        let mid = d.apply(key(), Some(&first), Some(svc(&[1])), t0 + T / 2, T).unwrap();
        assert_eq!(mid.dests[&dk(2)].weight, 0);
        assert_eq!(d.until(&key(), &dk(2)), Some(t0 + T));
        let end = d.apply(key(), Some(&mid), Some(svc(&[1])), t0 + T, T).unwrap();
        assert!(!end.dests.contains_key(&dk(2)));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_real_that_comes_back_gets_its_weight_and_no_deadline() {
        let mut d = Drain::default();
        let t0 = Instant::now();
        let first = d.apply(key(), Some(&svc(&[1, 2])), Some(svc(&[1])), t0, T).unwrap();
        let back = d.apply(key(), Some(&first), Some(svc(&[1, 2])), t0 + T / 3, T).unwrap();
        assert_eq!(back.dests[&dk(2)].weight, 5);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn a_removed_service_drains_whole_then_goes() {
        let mut d = Drain::default();
        let t0 = Instant::now();
        let kept = d.apply(key(), Some(&svc(&[1, 2])), None, t0, T).unwrap();
        assert!(kept.dests.values().all(|x| x.weight == 0));
        assert_eq!(kept.dests.len(), 2);
        assert_eq!(d.until(&key(), &dk(1)), Some(t0 + T));
        assert_eq!(d.apply(key(), Some(&kept), None, t0 + T, T), None);
        assert_eq!(d.next_deadline(), None);
    }
}
