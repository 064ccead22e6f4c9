//! `lvs_timeouts`: the kernel's IPVS connection timeouts brought to what the policy says, at
//! start, at each reload and at each resync (someone ran `ipvsadm --set`), read first so that
//! a table already right costs no write.

use super::Director;
use crate::ipvs::backend::reconcile_timeouts;
use crate::ipvs::cli::timeouts_from_model;
use crate::ipvs::memory::set_timeouts;

impl Director {
    pub(super) fn lvs_timeouts_reconcile(&mut self) {
        let Some(want) = timeouts_from_model(&self.policy.model) else { return };
        match reconcile_timeouts(self.backend.as_mut(), &want) {
            Ok(None) => self.timeouts_error = None,
            Ok(Some(was)) => {
                self.timeouts_error = None;
                let now = set_timeouts(was, &want);
                self.events.push(
                    "ipvs",
                    format!(
                        "connection timeouts (tcp tcpfin udp) {} {} {}, were {} {} {}",
                        now.tcp, now.tcp_fin, now.udp, was.tcp, was.tcp_fin, was.udp
                    ),
                );
            }
            Err(e) => {
                let e = format!("lvs_timeouts: {e}");
                // Once per distinct error: the next resync tries again.
                if self.timeouts_error.as_deref() != Some(e.as_str()) {
                    tracing::error!("{e}");
                    self.events.push("ipvs_error", e.clone());
                }
                self.timeouts_error = Some(e);
            }
        }
    }
}
