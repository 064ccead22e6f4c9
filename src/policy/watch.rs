//! Watching the policy file and the modules it required, so that a save reloads it, and
//! only a complete save.
//!
//! Editors often save by writing a temporary file and renaming it over the original, which
//! replaces the inode: watching the file itself would lose track after the first save. So
//! the directories are watched and events are filtered by file name.
//!
//! A save in two steps (truncate, then write; or a tool writing in pieces) passes through
//! states that are valid Lua and a disaster to apply: an empty file is a policy without a
//! service. So a change is reported only once the file's size and content (a hash) have not
//! moved for [`SETTLE`] after the last event, and an empty file is never reported: it is a
//! save still being written, and its next write is an event of its own. The decisions are
//! made by [`Settle`], a pure state machine; a thread per watcher feeds it events and reads.

use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a file must stay the same before its change is reported.
pub const SETTLE: Duration = Duration::from_millis(200);

pub struct PolicyWatcher {
    _watcher: notify::RecommendedWatcher,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    path: String,
    source: notify::Error,
}

/// One of the watched files changed and has settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    /// Always true now: only settled, non-empty saves are reported (kept for the receiver,
    /// which reloads at once on a complete change).
    pub complete: bool,
}

/// What a read of a watched file found: its size and a hash of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub len: u64,
    pub hash: u64,
}

impl Snapshot {
    pub fn of(bytes: &[u8]) -> Snapshot {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        Snapshot { len: bytes.len() as u64, hash: h.finish() }
    }
}

#[derive(Debug, Default)]
struct FileState {
    /// Waiting to settle: the last snapshot seen (None: not read yet, or unreadable) and
    /// since when it has not moved.
    pending: Option<(Option<Snapshot>, Instant)>,
    /// The last snapshot reported.
    reported: Option<Snapshot>,
}

/// The settle rule, without I/O: `touched` on every event, `observed` with each read of a
/// pending file; `observed` says when to report.
#[derive(Debug)]
pub struct Settle {
    interval: Duration,
    files: HashMap<PathBuf, FileState>,
}

impl Settle {
    pub fn new(interval: Duration) -> Settle {
        Settle { interval, files: HashMap::new() }
    }

    /// An event for `path`: it is being written; wait for it to settle.
    pub fn touched(&mut self, path: &Path, now: Instant) {
        self.files.entry(path.to_path_buf()).or_default().pending = Some((None, now));
    }

    /// The files waiting to settle (to be read).
    pub fn pending(&self) -> Vec<PathBuf> {
        self.files.iter().filter(|(_, f)| f.pending.is_some()).map(|(p, _)| p.clone()).collect()
    }

    /// A read of `path` found `snap` (None: missing or unreadable). True when the change is
    /// complete and should be reported.
    pub fn observed(&mut self, path: &Path, snap: Option<Snapshot>, now: Instant) -> bool {
        let interval = self.interval;
        let Some(f) = self.files.get_mut(path) else { return false };
        let Some((last, since)) = f.pending else { return false };
        if last != snap || last.is_none() {
            // Moved (or first read): start the wait again.
            f.pending = Some((snap, now));
            return false;
        }
        if now.duration_since(since) < interval {
            return false;
        }
        let snap = snap.expect("checked above");
        f.pending = None;
        if snap.len == 0 {
            // Still being written (or emptied by mistake): its next write is another event.
            return false;
        }
        if f.reported == Some(snap) {
            // Rewritten with the same content (e.g. truncated, then written back).
            return false;
        }
        f.reported = Some(snap);
        true
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn snapshot(path: &Path) -> Option<Snapshot> {
    super::sandbox::read_bounded(path).ok().map(|s| Snapshot::of(s.as_bytes()))
}

/// Watch `files`; every settled, non-empty change of one of them is sent on `tx`. The
/// watching stops when the returned watcher is dropped.
pub fn watch(files: &[PathBuf], tx: mpsc::UnboundedSender<Change>) -> Result<PolicyWatcher, WatchError> {
    watch_with(files, tx, SETTLE)
}

/// [`watch`] with another settle interval.
pub fn watch_with(files: &[PathBuf], tx: mpsc::UnboundedSender<Change>, interval: Duration) -> Result<PolicyWatcher, WatchError> {
    let wanted: HashSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let dirs: HashSet<PathBuf> = wanted.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
    let (raw_tx, raw_rx) = std::sync::mpsc::channel::<PathBuf>();
    let filter = wanted.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            // Opening or closing for reading changes nothing (and closes after a write are
            // followed by the read that settles them anyway).
            if !matches!(ev.kind, EventKind::Access(notify::event::AccessKind::Close(notify::event::AccessMode::Write))) {
                return;
            }
        }
        for path in ev.paths {
            if filter.contains(&path) {
                let _ = raw_tx.send(path);
            }
        }
    })
    .map_err(|source| WatchError { path: "-".into(), source })?;
    for d in dirs {
        watcher.watch(&d, RecursiveMode::NonRecursive).map_err(|source| WatchError { path: d.display().to_string(), source })?;
    }
    // Ends when the notify watcher (and with it `raw_tx`) is dropped, or the receiver is.
    let spawned = std::thread::Builder::new().name("lvsd-watch".into()).spawn(move || {
        let mut settle = Settle::new(interval);
        let tick = (interval / 4).max(Duration::from_millis(5));
        loop {
            let wait = if settle.pending().is_empty() { Duration::from_secs(3600) } else { tick };
            match raw_rx.recv_timeout(wait) {
                Ok(path) => settle.touched(&path, Instant::now()),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(path) = raw_rx.try_recv() {
                settle.touched(&path, Instant::now());
            }
            for path in settle.pending() {
                if settle.observed(&path, snapshot(&path), Instant::now()) && tx.send(Change { path, complete: true }).is_err() {
                    return;
                }
            }
        }
    });
    if let Err(e) = spawned {
        return Err(WatchError { path: "-".into(), source: notify::Error::io(e) });
    }
    Ok(PolicyWatcher { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_millis(200);

    fn snap(s: &str) -> Option<Snapshot> {
        Some(Snapshot::of(s.as_bytes()))
    }

    #[test]
    fn a_change_is_reported_once_it_has_settled() {
        let p = Path::new("/p.lua");
        let t0 = Instant::now();
        let mut s = Settle::new(I);
        s.touched(p, t0);
        assert!(!s.observed(p, snap("a"), t0), "first read starts the wait");
        assert!(!s.observed(p, snap("a"), t0 + I / 2));
        assert!(s.observed(p, snap("a"), t0 + I));
        assert!(s.pending().is_empty());
        // A later read without an event reports nothing.
        assert!(!s.observed(p, snap("a"), t0 + I * 3));
    }

    #[test]
    fn a_write_in_progress_restarts_the_wait() {
        let p = Path::new("/p.lua");
        let t0 = Instant::now();
        let mut s = Settle::new(I);
        s.touched(p, t0);
        assert!(!s.observed(p, snap("lvsd.ser"), t0));
        assert!(!s.observed(p, snap("lvsd.service"), t0 + I), "grew: not settled");
        assert!(!s.observed(p, snap("lvsd.service"), t0 + I + I / 2));
        assert!(s.observed(p, snap("lvsd.service"), t0 + I * 2));
    }

    #[test]
    fn an_empty_file_is_never_reported() {
        let p = Path::new("/p.lua");
        let t0 = Instant::now();
        let mut s = Settle::new(I);
        s.touched(p, t0);
        assert!(!s.observed(p, snap(""), t0));
        assert!(!s.observed(p, snap(""), t0 + I * 10));
        assert!(s.pending().is_empty(), "waits for the next write");
        // Then the content comes back: reported.
        s.touched(p, t0 + I * 11);
        assert!(!s.observed(p, snap("x"), t0 + I * 11));
        assert!(s.observed(p, snap("x"), t0 + I * 12));
    }

    #[test]
    fn truncate_and_rewrite_the_same_content_is_not_a_change() {
        let p = Path::new("/p.lua");
        let t0 = Instant::now();
        let mut s = Settle::new(I);
        s.touched(p, t0);
        s.observed(p, snap("v1"), t0);
        assert!(s.observed(p, snap("v1"), t0 + I));
        s.touched(p, t0 + I * 2);
        s.observed(p, snap(""), t0 + I * 2);
        s.touched(p, t0 + I * 2 + I / 2);
        assert!(!s.observed(p, snap("v1"), t0 + I * 3));
        assert!(!s.observed(p, snap("v1"), t0 + I * 4), "same content as reported");
        // A missing file (renamed away mid-save) waits too.
        s.touched(p, t0 + I * 5);
        assert!(!s.observed(p, None, t0 + I * 5));
        assert!(!s.observed(p, None, t0 + I * 7));
        assert!(!s.pending().is_empty());
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Change>) -> Option<Change> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.ok().flatten()
    }

    #[tokio::test]
    async fn saves_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.lua");
        std::fs::write(&file, "-- one").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = watch_with(std::slice::from_ref(&file), tx, Duration::from_millis(100)).unwrap();

        // Write a temporary file, rename it over the policy (what editors do).
        let tmp = dir.path().join(".policy.lua.tmp");
        std::fs::write(&tmp, "-- two").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let c = next(&mut rx).await.expect("a change");
        assert_eq!(c, Change { path: absolute(&file), complete: true });

        // Truncated: nothing. Then written: one change.
        std::fs::write(&file, "").unwrap();
        assert_eq!(tokio::time::timeout(Duration::from_millis(600), rx.recv()).await.ok().flatten(), None);
        std::fs::write(&file, "-- three").unwrap();
        let c = next(&mut rx).await.expect("a change");
        assert_eq!(c.path, absolute(&file));
        assert_eq!(tokio::time::timeout(Duration::from_millis(400), rx.recv()).await.ok().flatten(), None, "one change per save");
    }
}
