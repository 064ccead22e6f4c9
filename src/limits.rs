//! Process limits the director needs.

use std::io;

/// Raise the soft limit on open files to the hard one: every check in flight holds a socket
/// (a check of a blackholed real holds one until its timeout), and systemd's default soft
/// limit is 1024. keepalived raises its checker's limit for the same reason. Returns the soft
/// limit before and after.
pub fn raise_open_files() -> io::Result<(u64, u64)> {
    let mut l = open_files()?;
    let before = l.rlim_cur;
    if l.rlim_cur < l.rlim_max {
        l.rlim_cur = l.rlim_max;
        // SAFETY: setrlimit with a valid pointer to a local rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, l.rlim_cur))
}

/// The limits on open files (soft, hard).
fn open_files() -> io::Result<libc::rlimit> {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit with a valid pointer to a local rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(l)
}

/// The soft limit on open files now (1024, the usual default, if it cannot be read).
pub fn open_files_soft() -> u64 {
    open_files().map(|l| l.rlim_cur).unwrap_or(1024)
}
