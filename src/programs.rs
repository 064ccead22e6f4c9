//! Starting the programs a policy names (exec checks and tracks, notify and quorum programs):
//! as the program's own user when the policy names one, else as the policy's `script_user`
//! when it has one, without a shell.

use crate::model::{Argv, RunAs};
use std::sync::RwLock;

/// The running policy's `script_user`, set by the director at start and at each reload.
static RUN_AS: RwLock<Option<RunAs>> = RwLock::new(None);

pub fn set_run_as(r: Option<RunAs>) {
    if let Ok(mut g) = RUN_AS.write() {
        *g = r;
    }
}

/// A command for `argv` (its first element is the program), to run as its own user or the
/// `script_user`. Started by root with a uid, the child also drops root's supplementary
/// groups (the standard library calls setgroups for it), so it keeps no access of root's.
pub fn command(argv: &Argv) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if let Some(r) = argv.run_as.or_else(|| RUN_AS.read().ok().and_then(|g| *g)) {
        cmd.uid(r.uid).gid(r.gid);
    }
    cmd
}
