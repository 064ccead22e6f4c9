//! VRRP track functions (keepalived's vrrp_script as Lua or exec, its track_file and
//! vrrp_track_process): run or read each on its interval, apply rise/fall (or the file's
//! number), and tell the instance when one changes.

use crate::check::{CheckResult, Health};
use crate::model::{Model, Track, TrackKind};
use crate::policy::Policy;
use crate::vrrp::{track_file, track_process};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub struct TrackRun {
    pub instance: String,
    pub track: Track,
    health: Health,
    /// A file track's last number (None until it is first read).
    value: Option<i64>,
    /// Whether the instance has been told this track's state yet.
    reported: bool,
    next: Instant,
    /// An exec run is under way (its result arrives on the channel).
    busy: bool,
}

/// An exec, process or file track's result, from its task.
pub struct TrackDone {
    pub index: usize,
    pub generation: u64,
    pub outcome: Outcome,
}

pub enum Outcome {
    /// A program ran, or the processes were counted.
    Ran(CheckResult),
    /// A file was read: its number, or None when it is to be ignored (keepalived's "Invalid
    /// number ... - ignoring", or a read that did not finish in time): the last one stands,
    /// 0 before any.
    Read(Option<i64>),
}

impl TrackRun {
    /// (up, weight) as the instance takes it.
    fn state(&self) -> (bool, i32) {
        match &self.track.kind {
            TrackKind::File { .. } => track_file::status(self.value.unwrap_or(0), self.track.weight, self.track.reverse),
            _ => self.track.as_reported(self.health.is_up()),
        }
    }

    fn change(&self) -> TrackChange {
        let (up, weight) = self.state();
        (self.instance.clone(), self.track.name.clone(), up, weight)
    }
}

/// Run one exec, process or file track as a task of its own and send its outcome back. A
/// task that panicked (a bug) still sends one, `on_panic`'s, so that the track is not left
/// busy, never to run again, with its last state standing.
fn spawn_run(
    tx: mpsc::UnboundedSender<TrackDone>,
    index: usize,
    generation: u64,
    on_panic: fn(String) -> Outcome,
    run: impl std::future::Future<Output = Outcome> + 'static,
) {
    tokio::task::spawn_local(async move {
        let outcome = crate::check::supervise::CatchUnwind::new(run).await.unwrap_or_else(on_panic);
        let _ = tx.send(TrackDone { index, generation, outcome });
    });
}

/// A program or process count that failed: down, saying why.
fn ran_down(panic: String) -> Outcome {
    Outcome::Ran(CheckResult::down(Duration::ZERO, format!("the track's task failed: {panic}")))
}

/// A file read that failed: ignored, as a read that did not finish in time (the last value stands).
fn not_read(panic: String) -> Outcome {
    tracing::warn!("track file: the read failed ({panic}); the last value stands");
    Outcome::Read(None)
}

pub struct Tracks {
    runs: Vec<TrackRun>,
    /// Bumped when the policy changes, so that results of old runs are ignored.
    generation: u64,
    tx: mpsc::UnboundedSender<TrackDone>,
}

/// What the director must tell a VRRP instance: (instance, track name, up, weight).
pub type TrackChange = (String, String, bool, i32);

impl Tracks {
    pub fn new(tx: mpsc::UnboundedSender<TrackDone>) -> Tracks {
        Tracks { runs: Vec::new(), generation: 0, tx }
    }

    /// Track functions of a (new) model; history of unchanged tracks is kept. Returns what the
    /// instances must be told so that they agree with it: the state of every track known
    /// (with its weight as the model now says), and removed tracks as neutral (up, weight 0).
    pub fn set(&mut self, m: &Model, now: Instant) -> Vec<TrackChange> {
        let mut old = std::mem::take(&mut self.runs);
        self.generation += 1;
        for v in &m.vrrp {
            for t in &v.tracks {
                let kept = old.iter().position(|r| r.instance == v.name && r.track.name == t.name && r.track.kind == t.kind);
                let run = match kept {
                    Some(i) => {
                        let mut r = old.swap_remove(i);
                        r.health.set_thresholds(t.rise, t.fall);
                        r.track = t.clone();
                        r.busy = false;
                        r
                    }
                    None => TrackRun {
                        instance: v.name.clone(),
                        track: t.clone(),
                        // init_fail: down until `rise` successes (Health's "alpha" start).
                        health: Health::new(t.rise, t.fall, t.init_fail),
                        value: None,
                        reported: false,
                        next: now,
                        busy: false,
                    },
                };
                self.runs.push(run);
            }
        }
        let removed = old.into_iter().filter(|r| r.reported).map(|r| (r.instance, r.track.name, true, 0));
        let mut known = self.known();
        known.extend(removed);
        known
    }

    /// The state of every track that has reported, for instances started again.
    pub fn known(&self) -> Vec<TrackChange> {
        self.runs.iter().filter(|r| r.reported).map(TrackRun::change).collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.runs.iter().filter(|r| !r.busy).map(|r| r.next).min()
    }

    fn timeout(t: &Track) -> Duration {
        Duration::from_secs_f64(if t.timeout > 0.0 { t.timeout } else { t.interval })
    }

    /// Start every track that is due. Lua tracks run here (under the instruction limit);
    /// exec tracks run as tasks whose results come back through `on_done`.
    pub fn run_due(&mut self, policy: &Policy, now: Instant) -> Vec<TrackChange> {
        let mut out = Vec::new();
        for i in 0..self.runs.len() {
            let r = &mut self.runs[i];
            if r.busy || r.next > now {
                continue;
            }
            r.next = now + Duration::from_secs_f64(r.track.interval);
            match &r.track.kind {
                TrackKind::Lua { run } => {
                    let t0 = Instant::now();
                    let result = match policy.call_hook::<_, mlua::Value>(*run, ()) {
                        Ok(mlua::Value::Nil | mlua::Value::Boolean(false)) => CheckResult::down(t0.elapsed(), "returned false"),
                        Ok(_) => CheckResult::up(t0.elapsed()),
                        Err(e) => CheckResult::down(t0.elapsed(), e),
                    };
                    out.extend(self.record(i, Outcome::Ran(result)));
                }
                TrackKind::Exec { command } => {
                    r.busy = true;
                    let (argv, timeout, tx, generation) = (command.clone(), Self::timeout(&r.track), self.tx.clone(), self.generation);
                    spawn_run(
                        tx,
                        i,
                        generation,
                        ran_down,
                        async move { Outcome::Ran(crate::check::runner::exec(&argv, false, timeout).await) },
                    );
                }
                TrackKind::Process { process, params, param_match, full_command, quorum, quorum_max } => {
                    r.busy = true;
                    let spec = track_process::ProcessSpec {
                        process: process.clone(),
                        params: params.clone(),
                        param_match: *param_match,
                        full_command: *full_command,
                    };
                    let (range, timeout, tx, generation) =
                        ((*quorum, *quorum_max), Self::timeout(&r.track), self.tx.clone(), self.generation);
                    spawn_run(tx, i, generation, ran_down, async move {
                        let t0 = Instant::now();
                        // Off this thread and bounded, as a file's read.
                        let count = tokio::task::spawn_blocking(move || count_processes(&spec));
                        let result = match tokio::time::timeout(timeout, count).await {
                            Ok(Ok(n)) if track_process::quorum_met(n, range.0, range.1) => CheckResult::up(t0.elapsed()),
                            Ok(Ok(n)) => {
                                CheckResult::down(t0.elapsed(), format!("{n} processes running, quorum {}..={}", range.0, range.1))
                            }
                            _ => CheckResult::down(t0.elapsed(), "/proc was not read in time"),
                        };
                        Outcome::Ran(result)
                    });
                }
                TrackKind::File { path, .. } => {
                    r.busy = true;
                    let (path, timeout, tx, generation) = (path.clone(), Self::timeout(&r.track), self.tx.clone(), self.generation);
                    spawn_run(tx, i, generation, not_read, async move {
                        // A blocking read, off this thread and bounded: a file on a hung mount
                        // holds one blocking thread, not the director.
                        let read = tokio::task::spawn_blocking(move || read_track_file(&path));
                        let value = match tokio::time::timeout(timeout, read).await {
                            Ok(Ok(v)) => v,
                            _ => {
                                tracing::warn!("track file: no read within {timeout:?}; the last value stands");
                                None
                            }
                        };
                        Outcome::Read(value)
                    });
                }
            }
        }
        out
    }

    pub fn on_done(&mut self, d: TrackDone) -> Option<TrackChange> {
        if d.generation != self.generation || d.index >= self.runs.len() {
            return None;
        }
        self.runs[d.index].busy = false;
        self.record(d.index, d.outcome)
    }

    fn record(&mut self, i: usize, outcome: Outcome) -> Option<TrackChange> {
        let r = &mut self.runs[i];
        let before = r.state();
        let changed = match outcome {
            Outcome::Ran(result) => r.health.record(result).is_some(),
            Outcome::Read(v) => {
                // Ignored, the last number stands; before any, 0 (keepalived's initial status).
                r.value = v.or(r.value).or(Some(0));
                r.state() != before
            }
        };
        if changed || !r.reported {
            r.reported = true;
            return Some(r.change());
        }
        None
    }
}

/// How many running processes `spec` counts, from /proc as keepalived reads it (zombies not
/// counted; a process that ends while it is read is not either).
fn count_processes(spec: &track_process::ProcessSpec) -> u32 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut n = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let stat = read_head(&format!("/proc/{pid}/stat"), 512);
        let Some((comm, zombie)) = track_process::stat_comm(&stat) else { continue };
        if zombie {
            continue;
        }
        let cmdline = if spec.full_command { read_head(&format!("/proc/{pid}/cmdline"), 4096) } else { Vec::new() };
        n += track_process::matches(spec, comm, &cmdline) as u32;
    }
    n
}

/// At most the first `max` bytes of a file (none when it cannot be read).
fn read_head(path: &str, max: u64) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(max).read_to_end(&mut buf);
    }
    buf
}

/// A tracked file's number, read as keepalived reads it: the first 127 bytes, without waiting
/// (O_NONBLOCK: a FIFO does not block); a file that cannot be opened or read is 0.
fn read_track_file(path: &std::path::Path) -> Option<i64> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut buf = [0u8; 127];
    let n =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).and_then(|mut f| f.read(&mut buf)).unwrap_or(0);
    let v = track_file::value(&buf[..n]);
    if v.is_none() {
        tracing::warn!("track file {}: not a number keepalived would take; the last value stands", path.display());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracks(src: &str) -> Tracks {
        let m = crate::policy::test_model(src, "n");
        let mut t = Tracks::new(mpsc::unbounded_channel().0);
        assert!(t.set(&m, Instant::now()).is_empty(), "nothing reported yet");
        t
    }

    fn ran(t: &mut Tracks, i: usize, ok: bool) -> Option<(bool, i32)> {
        let r = if ok { CheckResult::up(Duration::ZERO) } else { CheckResult::down(Duration::ZERO, "no") };
        t.record(i, Outcome::Ran(r)).map(|(_, _, up, w)| (up, w))
    }

    /// A track's task that panicked still reports: the program's run as down (saying why),
    /// the file's read as not done; so the track is free to run again.
    #[test]
    fn a_track_task_that_panics_still_reports() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        local.block_on(&rt, async {
            spawn_run(tx.clone(), 3, 7, ran_down, async { panic!("boom") });
            spawn_run(tx, 4, 7, not_read, async { panic!("bang") });
            let ran = rx.recv().await.unwrap();
            assert_eq!((ran.index, ran.generation), (3, 7));
            let Outcome::Ran(r) = ran.outcome else { panic!("not a run") };
            assert!(!r.ok && r.error.as_deref() == Some("the track's task failed: boom"), "{:?}", r.error);
            let read = rx.recv().await.unwrap();
            assert_eq!(read.index, 4);
            assert!(matches!(read.outcome, Outcome::Read(None)));
        });
    }

    #[test]
    fn a_reversed_track_changes_the_priority_the_other_way() {
        let mut t = tracks(
            r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, vips = { "192.0.2.1" }, track = {
  lvsd.track.exec { name = "plus", command = { "/bin/true" }, weight = 20, reverse = true },
  lvsd.track.exec { name = "minus", command = { "/bin/true" }, weight = -20, reverse = true },
  lvsd.track.exec { name = "zero", command = { "/bin/true" }, reverse = true },
  lvsd.track.exec { name = "plain", command = { "/bin/true" }, weight = 20 } } }"#,
        );
        // weight 20 reversed: -20 while up (down with -20, as the state machine takes it).
        assert_eq!(ran(&mut t, 0, true), Some((false, -20)));
        assert_eq!(ran(&mut t, 0, false), Some((true, -20)));
        // weight -20 reversed: +20 while down.
        assert_eq!(ran(&mut t, 1, true), Some((false, 20)));
        assert_eq!(ran(&mut t, 1, false), Some((true, 20)));
        // weight 0 reversed: success is Fault.
        assert_eq!(ran(&mut t, 2, true), Some((false, 0)));
        assert_eq!(ran(&mut t, 2, false), Some((true, 0)));
        assert_eq!(ran(&mut t, 3, true), Some((true, 20)));
        assert_eq!(ran(&mut t, 3, true), None, "no change, nothing to tell");
    }

    #[test]
    fn a_file_track_tells_its_number_once_read() {
        let mut t = tracks(
            r#"lvsd.vrrp "A" { interface = "eth0", vrid = 1, vips = { "192.0.2.1" }, track = {
  lvsd.track.file { name = "f", path = "/nonexistent/lvsd-track", weight = -3 } } }"#,
        );
        let read = |t: &mut Tracks, v: Option<i64>| t.record(0, Outcome::Read(v)).map(|(_, _, up, w)| (up, w));
        // An ignored first read counts as 0: told as neutral.
        assert_eq!(read(&mut t, None), Some((true, 0)));
        assert_eq!(read(&mut t, Some(5)), Some((false, -15)));
        assert_eq!(read(&mut t, None), None, "the last number stands");
        assert_eq!(read(&mut t, Some(5)), None);
        assert_eq!(read(&mut t, Some(-100)), Some((true, 253)));
    }
}
