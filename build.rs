//! Build information for `lvsd --version`, `status` and the `lvsd_build_info` metric: the git
//! commit and the build date.
//!
//! A build from a tarball (a Debian source package, `cargo package`) has no `.git`: the commit
//! is then taken from LVSD_GIT_COMMIT, else "unknown". The date honours SOURCE_DATE_EPOCH
//! (reproducible builds, as dpkg-buildpackage sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LVSD_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    // Re-run when HEAD moves: HEAD itself (a branch switch) and the branch's ref (a commit):
    // its loose file, or while it is packed, packed-refs and the directory a loose file would
    // appear in. In a worktree HEAD lives in the worktree's git dir, refs in the common one.
    // Only existing paths are named: Cargo re-runs the script at every build for a missing one.
    let git_dir = git(&root, &["rev-parse", "--absolute-git-dir"]);
    let commit = match &git_dir {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let common = git(&root, &["rev-parse", "--git-common-dir"]).map(|c| root.join(c)).unwrap_or_else(|| dir.clone());
            let mut watch = vec![dir.join("HEAD")];
            if let Some(r) = git(&root, &["symbolic-ref", "-q", "HEAD"]) {
                let loose = common.join(&r);
                if loose.exists() {
                    watch.push(loose);
                } else {
                    watch.push(common.join("packed-refs"));
                    watch.extend(loose.parent().map(Path::to_path_buf));
                }
            }
            for p in watch.iter().filter(|p| p.exists()) {
                println!("cargo:rerun-if-changed={}", p.display());
            }
            git(&root, &["rev-parse", "--short=12", "HEAD"])
        }
        None => None,
    };
    let commit =
        commit.or_else(|| std::env::var("LVSD_GIT_COMMIT").ok().filter(|c| !c.is_empty())).unwrap_or_else(|| "unknown".to_string());

    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0));
    let (y, m, d) = civil(secs.div_euclid(86_400));
    println!("cargo:rustc-env=LVSD_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=LVSD_BUILD_DATE={y:04}-{m:02}-{d:02}");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=LVSD_LONG_VERSION={version} (commit {commit}, built {y:04}-{m:02}-{d:02})");
}
