//! Watching the policy file and the modules it required, so that a save reloads it.
//!
//! Editors often save by writing a temporary file and renaming it over the original, which
//! replaces the inode: watching the file itself would lose track after the first save. So
//! the directories are watched and events are filtered by file name.

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

pub struct PolicyWatcher {
    _watcher: notify::RecommendedWatcher,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    path: String,
    source: notify::Error,
}

/// One of the watched files changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    /// The writer is done with it: renamed into place (an atomic save) or closed after
    /// writing. Other events (a write in progress) are worth a short wait for more.
    pub complete: bool,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Watch `files`; every change to one of them is sent on `tx`. The receiver debounces.
pub fn watch(files: &[PathBuf], tx: mpsc::UnboundedSender<Change>) -> Result<PolicyWatcher, WatchError> {
    let wanted: HashSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let dirs: HashSet<PathBuf> = wanted.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
    let filter = wanted.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        let complete = matches!(
            ev.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) | EventKind::Access(AccessKind::Close(AccessMode::Write))
        );
        if matches!(ev.kind, EventKind::Access(_)) && !complete {
            return;
        }
        for path in ev.paths {
            if filter.contains(&path) {
                let _ = tx.send(Change { path, complete });
            }
        }
    })
    .map_err(|source| WatchError { path: "-".into(), source })?;
    for d in dirs {
        watcher
            .watch(&d, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError { path: d.display().to_string(), source })?;
    }
    Ok(PolicyWatcher { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next(rx: &mut mpsc::UnboundedReceiver<Change>) -> Change {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("an event within 5 s").expect("channel open")
    }

    #[tokio::test]
    async fn an_atomic_save_and_a_closed_write_are_complete() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.lua");
        std::fs::write(&file, "-- one").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = watch(std::slice::from_ref(&file), tx).unwrap();

        // Write a temporary file, rename it over the policy (what editors do).
        let tmp = dir.path().join(".policy.lua.tmp");
        std::fs::write(&tmp, "-- two").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let c = next(&mut rx).await;
        assert_eq!(c.path, absolute(&file));
        assert!(c.complete, "{c:?}");
        while tokio::time::timeout(Duration::from_millis(100), rx.recv()).await.is_ok() {}

        // Write in place: modify events first (not complete), then the close (complete).
        std::fs::write(&file, "-- three").unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(c)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            seen.push(c.complete);
        }
        assert_eq!(seen.last(), Some(&true), "{seen:?}");
        assert!(seen.contains(&false), "{seen:?}");
    }
}
