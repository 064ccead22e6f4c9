//! `lvsd lab` where the kernel has no IPVS: the same lab in a QEMU guest that runs Debian's
//! kernel, built and booted by the VM tier's script (`scripts/vm`, with the guest scenario
//! `tests/vm/lab.sh`). The package installs both under [`PACKAGE_DIR`]; a binary built in a
//! source tree finds the tree's own. The guest gets the arguments the host was given, spelt
//! out in full, so it checks the same claims; files go in and out through the script's
//! `--file` and `--out`.

use super::{Detect, Mode, Options, Scenario, Topology};
use std::path::{Path, PathBuf};

/// Where the package installs the guest builder (Cargo.toml, `[package.metadata.deb]`).
pub const PACKAGE_DIR: &str = "/usr/share/lvsd/vm";
/// The script and the scenario it needs, relative to a builder's directory.
pub const SCRIPT: &str = "scripts/vm";
pub const SCENARIO: &str = "tests/vm/lab.sh";
/// Where the packaged builder keeps its downloads and initramfs (it cannot write under
/// /usr/share); a source tree's builder uses its own target/vm-cache.
pub const PACKAGE_CACHE: &str = "/var/cache/lvsd/vm";
/// The name the guest writes the HTML report under, in the directory copied back.
pub const GUEST_REPORT: &str = "lab-report.html";

/// Directories that may hold the builder, in the order they are tried: `$LVSD_VM_DIR`; the
/// package's place relative to the executable's prefix (`/usr/sbin/lvsd` ->
/// `/usr/share/lvsd/vm`, also for another prefix such as /usr/local); [`PACKAGE_DIR`]; and
/// the source tree above a `target/<profile>/lvsd` that cargo built.
pub fn candidates(exe: &Path, env_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = env_dir {
        out.push(d.to_path_buf());
    }
    if let Some(prefix) = exe.parent().and_then(Path::parent) {
        out.push(prefix.join("share/lvsd/vm"));
    }
    out.push(PathBuf::from(PACKAGE_DIR));
    // target/debug/lvsd, target/release/lvsd, target/<triple>/<profile>/lvsd
    for up in exe.ancestors().skip(1) {
        if up.file_name().is_some_and(|n| n == "target") {
            if let Some(tree) = up.parent() {
                out.push(tree.to_path_buf());
            }
            break;
        }
    }
    out.dedup();
    out
}

/// The first candidate that holds both the script and the lab scenario.
pub fn find(candidates: &[PathBuf], exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    candidates.iter().find(|d| exists(&d.join(SCRIPT)) && exists(&d.join(SCENARIO))).cloned()
}

/// The cache directory to give the script: none for a source tree (it has target/).
pub fn cache_for(builder: &Path, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    if exists(&builder.join("Cargo.toml")) { None } else { Some(PathBuf::from(PACKAGE_CACHE)) }
}

fn value<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

/// The guest's `lvsd lab` arguments for the host's options: every option spelt out (the
/// defaults of both sides are then irrelevant), a policy named by the path `--file` puts it
/// at in the guest, and the HTML report written where `--out` copies it back from.
pub fn guest_args(o: &Options, report: bool) -> Vec<String> {
    let mut a = vec![
        "--mode".to_string(),
        value::<Mode>(&o.mode),
        "--reals".into(),
        o.reals.to_string(),
        "--requests".into(),
        o.requests.to_string(),
        "--scenario".into(),
        value::<Scenario>(&o.scenario),
    ];
    if o.topology == Topology::Ecmp {
        a.extend(["--topology".into(), value::<Topology>(&o.topology), "--directors".into(), o.directors.to_string()]);
        if let Some(s) = &o.scheduler {
            a.extend(["--scheduler".into(), s.clone()]);
        }
        // Under emulation the guest stalls for longer than BFD's detection time: unless asked
        // for, the router there detects by the hold timer.
        a.extend(["--detect".into(), value::<Detect>(&o.detect.unwrap_or(Detect::Hold))]);
    }
    if let Some(p) = &o.policy {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "policy.lua".into());
        a.extend(["--policy".into(), format!("/lvsd/files/{name}")]);
    }
    if o.json {
        a.push("--json".into());
    }
    if o.verify {
        a.push("--verify".into());
    }
    a.extend(["--long-lived".into(), o.long.long_lived.to_string()]);
    if o.long.no_sync {
        a.push("--no-sync".into());
    }
    if let Some(w) = o.long.preempt_sync_wait {
        a.extend(["--preempt-sync-wait".into(), w.to_string()]);
    }
    if report {
        a.extend(["--report".into(), format!("/out/{GUEST_REPORT}")]);
    }
    a
}

/// BIRD, which the ecmp topology runs in the guest (Debian's `bird2` on the host).
pub const BIRD: [&str; 2] = ["/usr/sbin/bird", "/usr/sbin/birdc"];

/// The programs the guest needs beyond lvsd's own (`scripts/vm --extra`).
pub fn extras(o: &Options) -> Vec<PathBuf> {
    if o.topology == Topology::Ecmp { BIRD.iter().map(PathBuf::from).collect() } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn opts() -> Options {
        Options {
            topology: Topology::Pair,
            directors: 3,
            scheduler: None,
            detect: None,
            mode: Mode::Nat,
            reals: 3,
            requests: 4000,
            scenario: Scenario::Kill,
            policy: None,
            json: false,
            verify: false,
            long: Default::default(),
        }
    }

    #[test]
    fn the_package_comes_before_a_source_tree() {
        let c = candidates(Path::new("/usr/sbin/lvsd"), None);
        assert_eq!(c, [PathBuf::from("/usr/share/lvsd/vm")]);
        let c = candidates(Path::new("/usr/local/sbin/lvsd"), Some(Path::new("/opt/vm")));
        assert_eq!(c, [PathBuf::from("/opt/vm"), PathBuf::from("/usr/local/share/lvsd/vm"), PathBuf::from("/usr/share/lvsd/vm")]);
        let c = candidates(Path::new("/src/lvsd/target/debug/lvsd"), None);
        assert_eq!(c.last().unwrap(), Path::new("/src/lvsd"));
        let c = candidates(Path::new("/src/lvsd/target/x86_64-unknown-linux-gnu/release/lvsd"), None);
        assert_eq!(c.last().unwrap(), Path::new("/src/lvsd"));
    }

    #[test]
    fn a_builder_needs_the_script_and_the_scenario() {
        let files: HashSet<PathBuf> =
            ["/usr/share/lvsd/vm/scripts/vm", "/src/lvsd/scripts/vm", "/src/lvsd/tests/vm/lab.sh", "/src/lvsd/Cargo.toml"]
                .iter()
                .map(PathBuf::from)
                .collect();
        let exists = |p: &Path| files.contains(p);
        // The package's copy lacks the scenario here: the tree's is used.
        let c = candidates(Path::new("/src/lvsd/target/debug/lvsd"), None);
        assert_eq!(find(&c, exists), Some(PathBuf::from("/src/lvsd")));
        assert_eq!(cache_for(Path::new("/src/lvsd"), exists), None);
        assert_eq!(find(&candidates(Path::new("/usr/sbin/lvsd"), None), exists), None);
        let mut files = files.clone();
        files.insert(PathBuf::from("/usr/share/lvsd/vm/tests/vm/lab.sh"));
        let exists = |p: &Path| files.contains(p);
        assert_eq!(find(&c, exists), Some(PathBuf::from("/usr/share/lvsd/vm")));
        assert_eq!(cache_for(Path::new("/usr/share/lvsd/vm"), exists), Some(PathBuf::from(PACKAGE_CACHE)));
    }

    #[test]
    fn the_guest_gets_every_option() {
        assert_eq!(guest_args(&opts(), false).join(" "), "--mode nat --reals 3 --requests 4000 --scenario kill --long-lived 16");
        let o = Options {
            policy: Some("/home/op/site.lua".into()),
            json: true,
            verify: true,
            mode: Mode::Dr,
            scenario: Scenario::All,
            ..opts()
        };
        assert_eq!(
            guest_args(&o, true).join(" "),
            "--mode dr --reals 3 --requests 4000 --scenario all --policy /lvsd/files/site.lua --json --verify --long-lived 16 --report /out/lab-report.html"
        );
        assert!(extras(&o).is_empty());
        let e = Options { topology: Topology::Ecmp, directors: 4, mode: Mode::Dr, ..opts() };
        assert_eq!(
            guest_args(&e, false).join(" "),
            "--mode dr --reals 3 --requests 4000 --scenario kill --topology ecmp --directors 4 --detect hold --long-lived 16"
        );
        let w = Options { scheduler: Some("wlc".into()), detect: Some(Detect::Bfd), ..e.clone() };
        assert!(guest_args(&w, false).join(" ").contains("--topology ecmp --directors 4 --scheduler wlc --detect bfd --long-lived"));
        assert_eq!(extras(&e), [PathBuf::from("/usr/sbin/bird"), PathBuf::from("/usr/sbin/birdc")]);
    }
}
