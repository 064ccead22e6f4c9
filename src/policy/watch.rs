//! Watching the policy file and the modules it required, so that a save reloads it.
//!
//! Editors often save by writing a temporary file and renaming it over the original, which
//! replaces the inode: watching the file itself would lose track after the first save. So
//! the directories are watched and events are filtered by file name.

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

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Watch `files`; every change to one of them sends its path on `tx`. The receiver debounces.
pub fn watch(files: &[PathBuf], tx: mpsc::UnboundedSender<PathBuf>) -> Result<PolicyWatcher, WatchError> {
    let wanted: HashSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let dirs: HashSet<PathBuf> = wanted.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
    let filter = wanted.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        for p in ev.paths {
            if filter.contains(&p) {
                let _ = tx.send(p);
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
