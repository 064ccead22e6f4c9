//! What was built: the crate version, the git commit and the build date (set by build.rs),
//! for `lvsd --version`, the status document and the `lvsd_build_info` metric.

/// The crate version, e.g. "0.1.0".
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The abbreviated commit, or "unknown" for a build without git (a source tarball).
pub const COMMIT: &str = env!("LVSD_GIT_COMMIT");
/// The build date, YYYY-MM-DD (SOURCE_DATE_EPOCH when set).
pub const DATE: &str = env!("LVSD_BUILD_DATE");
/// What `lvsd --version` prints after the name: "0.1.0 (commit 0123abcd4567, built 2026-12-03)".
pub const LONG_VERSION: &str = env!("LVSD_LONG_VERSION");

/// The `build` object of the status document.
pub fn json() -> serde_json::Value {
    serde_json::json!({ "version": VERSION, "commit": COMMIT, "date": DATE })
}
