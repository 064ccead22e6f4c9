//! `enable_script_security`: keepalived's check that a program the configuration names is
//! safe to run as root. keepalived (lib/notify.c, `check_script_secure`) stats the program
//! and every directory on its path (`/`, `/usr`, `/usr/bin`, ...) and calls it insecure when
//! one of them "is not owned by root", or, for a file or a directory without the sticky bit,
//! "is writable by a group other than root or by everyone". lvsd runs programs as root, so
//! every program needs this protection; where keepalived disables an insecure script, a
//! policy naming one is refused (a policy is checked before it is applied).

use crate::model::{Argv, Model, ModelError, Origin};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The parts of a `stat` the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub is_file: bool,
}

/// keepalived's rule for one path component (pure).
pub fn insecure(st: &Stat) -> bool {
    const S_ISVTX: u32 = 0o1000;
    const S_IWGRP: u32 = 0o020;
    const S_IWOTH: u32 = 0o002;
    st.uid != 0 || ((st.mode & S_ISVTX == 0 || st.is_file) && ((st.gid != 0 && st.mode & S_IWGRP != 0) || st.mode & S_IWOTH != 0))
}

fn stat(p: &Path) -> std::io::Result<Stat> {
    // stat, not lstat: keepalived follows links too (the target is what runs).
    let m = std::fs::metadata(p)?;
    Ok(Stat { uid: m.uid(), gid: m.gid(), mode: m.mode(), is_file: m.is_file() })
}

/// Where a bare program name is found: the first executable regular file on `PATH`, as
/// `execvp` (and keepalived's path search) does.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| stat(p).is_ok_and(|s| s.is_file && s.mode & 0o111 != 0))
}

/// Check one program: Ok, or why it is refused.
pub fn check_program(program: &str) -> Result<(), String> {
    let path = if program.contains('/') {
        PathBuf::from(program)
    } else {
        match find_in_path(program) {
            Some(p) => p,
            None => return Ok(()),
        }
    };
    if !path.is_absolute() {
        return Err(format!("'{program}' is a relative path; give the full path"));
    }
    // "/", then each prefix, then the program itself.
    let mut cur = PathBuf::from("/");
    let mut components = vec![cur.clone()];
    for c in path.components().skip(1) {
        cur.push(c);
        components.push(cur.clone());
    }
    for c in &components {
        let st = match stat(c) {
            Ok(st) => st,
            // A program not on this machine (a policy checked elsewhere than where it runs)
            // cannot be judged here; running it fails, and is reported, where it is missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("'{}': {e}", c.display())),
        };
        if insecure(&st) {
            let what = if c == &path { "the program" } else { "a directory on its path" };
            return Err(format!(
                "'{}' ({what}) is owned by uid {} with mode {:o}: only root may be able to change what runs as root",
                c.display(),
                st.uid,
                st.mode & 0o7777
            ));
        }
    }
    Ok(())
}

/// Every program the model names, with where it is named.
pub fn programs(m: &Model) -> Vec<(&Argv, &Origin, String)> {
    let mut out = Vec::new();
    for v in &m.vrrp {
        for (k, a) in [
            ("master", &v.notify.master),
            ("backup", &v.notify.backup),
            ("fault", &v.notify.fault),
            ("stop", &v.notify.stop),
            ("any", &v.notify.any),
        ] {
            if let Some(a) = a {
                out.push((a, &v.origin, format!("vrrp '{}' notify.{k}", v.name)));
            }
        }
        for t in &v.tracks {
            if let crate::model::TrackKind::Exec { command } = &t.kind {
                out.push((command, &t.origin, format!("track '{}'", t.name)));
            }
        }
    }
    for g in &m.sync_groups {
        for (k, a) in [
            ("master", &g.notify.master),
            ("backup", &g.notify.backup),
            ("fault", &g.notify.fault),
            ("stop", &g.notify.stop),
            ("any", &g.notify.any),
        ] {
            if let Some(a) = a {
                out.push((a, &g.origin, format!("sync_group '{}' notify.{k}", g.name)));
            }
        }
    }
    for s in &m.services {
        for (k, a) in [("quorum_up", &s.quorum_up), ("quorum_down", &s.quorum_down)] {
            if let Some(a) = a {
                out.push((a, &s.origin, format!("service '{}' {k}", s.name)));
            }
        }
        for r in &s.reals {
            for (k, a) in [("notify_up", &r.notify_up), ("notify_down", &r.notify_down)] {
                if let Some(a) = a {
                    out.push((a, &*r.origin, format!("service '{}' real {} {k}", s.name, r.addr)));
                }
            }
            for c in r.checks.iter() {
                if let crate::model::CheckKind::Exec { command, .. } = &c.kind {
                    out.push((command, &c.origin, format!("service '{}' real {} check.exec", s.name, r.addr)));
                }
            }
        }
    }
    out
}

/// The errors of `enable_script_security` for a model (each program checked once).
pub fn check_model(m: &Model) -> Vec<ModelError> {
    let mut seen = std::collections::HashMap::new();
    let mut errs = Vec::new();
    for (argv, origin, what) in programs(m) {
        let Some(prog) = argv.first() else { continue };
        let verdict = seen.entry(prog.clone()).or_insert_with(|| check_program(prog)).clone();
        if let Err(why) = verdict {
            errs.push(ModelError::new(origin, format!("{what}: enable_script_security: {why}")));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn st(uid: u32, gid: u32, mode: u32, is_file: bool) -> Stat {
        Stat { uid, gid, mode, is_file }
    }

    #[test]
    fn keepalived_rule() {
        assert!(!insecure(&st(0, 0, 0o755, true)));
        assert!(!insecure(&st(0, 0, 0o775, true)), "group root may write");
        assert!(insecure(&st(0, 100, 0o775, true)), "another group may write");
        assert!(insecure(&st(0, 0, 0o757, true)), "everyone may write");
        assert!(insecure(&st(1000, 0, 0o755, true)), "not owned by root");
        assert!(!insecure(&st(0, 0, 0o1777, false)), "a sticky directory such as /tmp");
        assert!(insecure(&st(0, 0, 0o777, false)), "a world-writable directory");
        assert!(insecure(&st(0, 0, 0o1757, true)), "the sticky bit does not protect a file");
    }

    #[test]
    fn programs_on_disk() {
        assert_eq!(check_program("/bin/sh"), Ok(()));
        assert_eq!(check_program("sh"), Ok(()));
        // A program missing here cannot be judged (the policy may be checked elsewhere).
        assert_eq!(check_program("no-such-program-here"), Ok(()));
        assert_eq!(check_program("/nonexistent/prog"), Ok(()));
        assert!(check_program("./x").unwrap_err().contains("relative"));
        // Only meaningful as root (files made by another user are not owned by root).
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("notify.sh");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_program(prog.to_str().unwrap()), Ok(()));
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(check_program(prog.to_str().unwrap()).unwrap_err().contains("(the program)"));
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_program(prog.to_str().unwrap()).unwrap_err().contains("a directory on its path"));
    }
}
