//! The `lvsd` binary: parse the command line, dispatch, map errors to exit codes.

use anyhow::Result;
use clap::{Parser, Subcommand};
use lvsd::policy::{self, Limits, LoadOptions, PolicyError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `print!`, except that a reader gone away (`lvsd status | head -1`) ends the command
/// quietly: Rust ignores SIGPIPE, so the write fails with EPIPE and `print!` would panic.
macro_rules! out {
    ($($t:tt)*) => { emit(format_args!($($t)*)) };
}
macro_rules! outln {
    ($($t:tt)*) => { emit(format_args!("{}\n", format_args!($($t)*))) };
}

fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(&e.to_string(), e.kind() == std::io::ErrorKind::BrokenPipe);
    }
}

/// Exit 0 without a word when stdout's reader went away (as ripgrep does), 1 on any other
/// write error.
fn stdout_failed(e: &str, broken_pipe: bool) -> ! {
    if !broken_pipe {
        eprintln!("lvsd: writing to stdout: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

/// The modules that print for a command (import, lab, doctor, realserver, repl) use `print!`:
/// its broken-pipe panic ends the command quietly too. Not for the daemon, whose stdout is
/// not its output.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("");
        // std's message: "failed printing to stdout: Broken pipe (os error 32)".
        if msg.starts_with("failed printing to stdout") && msg.contains(&format!("(os error {})", libc::EPIPE)) {
            stdout_failed(msg, true);
        }
        default(info)
    }));
}

#[derive(Parser)]
#[command(name = "lvsd", version = lvsd::build_info::LONG_VERSION, about = "Linux load-balancer director: VRRP + IPVS + health checks, driven by Lua policy files")]
struct Cli {
    /// Log format on stderr: "text" (default) or "json" (one object per line, for journald/collectors).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

/// Options every command that reads a policy shares.
#[derive(clap::Args, Clone)]
struct PolicyArgs {
    /// The node name the policy sees as `lvsd.node` (default: the host name).
    #[arg(long)]
    node: Option<String>,
    /// Memory limit of the policy's Lua state, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_limit: usize,
    /// Instruction limit for evaluating the policy (hooks, weight functions and tracks get at
    /// most 10,000,000 each call, and 100 ms).
    #[arg(long, default_value_t = 200_000_000)]
    instruction_limit: u64,
    /// Wall-clock limit for evaluating the policy, in seconds (a large policy on a slow or
    /// emulated machine may need more).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = load_time_secs)]
    load_time_limit: f64,
}

/// A load-time limit: a positive number of seconds, at most a day.
fn load_time_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

impl PolicyArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            node: self.node.clone().unwrap_or_else(policy::hostname),
            limits: Limits {
                memory: self.memory_limit << 20,
                instructions: self.instruction_limit,
                load_time: std::time::Duration::from_secs_f64(self.load_time_limit),
                ..Limits::default()
            },
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Validate a policy: exit 0 and a summary when valid, exit 1 with FILE:LINE: message for every error.
    Check {
        file: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Print the IPVS table (ipvsadm -L -n format) and VRRP instances a policy yields.
    Plan {
        file: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Print a stable JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Translate a keepalived configuration into a policy file (warnings on stderr).
    Import {
        /// The keepalived.conf to translate.
        #[arg(required_unless_present = "pair", conflicts_with = "pair")]
        file: Option<PathBuf>,
        /// Merge two directors' configurations into one policy: --pair lvs01=a.conf lvs02=b.conf
        #[arg(long, num_args = 2, value_names = ["NODE=FILE", "NODE=FILE"])]
        pair: Vec<String>,
        /// Write the policy here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// keepalived's config-id (-i): which `@id` lines apply.
        #[arg(long)]
        config_id: Option<String>,
    },
    /// Run the director: VRRP, IPVS, checks, control socket; reload on change, SIGHUP or `lvsd reload`.
    Run {
        /// The policy file.
        #[arg(short = 'p', long = "policy")]
        policy_file: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Program IPVS in memory instead of the kernel (for hosts without IPVS, and rehearsals).
        #[arg(long)]
        dry_run: bool,
        /// Apply the policy's IPVS table once (all reals up) and exit.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        control: ControlArgs,
        /// Seconds between comparisons of the IPVS table with the policy (drift repair).
        #[arg(long, default_value_t = 10)]
        resync: u64,
        /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9815 (off by default).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
        /// The same numbers under other exporters' names too, for their dashboards and alerts:
        /// node_ipvs (node_exporter's node_ipvs_*), keepalived (the keepalived exporter's
        /// keepalived_*), both comma-separated, or none.
        #[arg(long, value_name = "SETS", default_value = "node_ipvs,keepalived")]
        metrics_compat: lvsd::control::metrics_page::Compat,
    },
    /// The running director's view: VRRP, services, real servers, health, weights.
    /// With --kernel: the kernel's IPVS table exactly as `ipvsadm -L -n` prints it.
    Status {
        #[command(flatten)]
        control: ControlArgs,
        /// The stable JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Read the kernel's IPVS table directly (no daemon needed).
        #[arg(long)]
        kernel: bool,
        /// With --kernel: counters, as `ipvsadm -L -n --stats`.
        #[arg(long, requires = "kernel", conflicts_with = "rate")]
        stats: bool,
        /// With --kernel: rates, as `ipvsadm -L -n --rate`.
        #[arg(long, requires = "kernel")]
        rate: bool,
    },
    /// Ask the running director to reload its policy.
    Reload {
        #[command(flatten)]
        control: ControlArgs,
        /// Apply the policy even when a reload guard refuses it (no instance and no service
        /// left, or more than `reload_guard` of the services removed).
        #[arg(long)]
        force: bool,
    },
    /// Put a real server at weight 0 in the running director (existing connections finish).
    Drain {
        #[command(flatten)]
        control: ControlArgs,
        service: String,
        /// ADDR or ADDR:PORT (the port defaults to the service's).
        real: String,
    },
    /// Give a drained real server its weight back.
    Undrain {
        #[command(flatten)]
        control: ControlArgs,
        service: String,
        real: String,
    },
    /// Force a real server's weight (0..65535), or `clear` the override.
    Weight {
        #[command(flatten)]
        control: ControlArgs,
        service: String,
        real: String,
        weight: String,
    },
    /// Hand mastership of a VRRP instance to the backup (priority 0 once, then held at 1).
    Yield {
        #[command(flatten)]
        control: ControlArgs,
        instance: String,
    },
    /// Give a yielded instance its priority back.
    Unyield {
        #[command(flatten)]
        control: ControlArgs,
        instance: String,
    },
    /// Take the running director out of service (scale-out): withdraw every VIP announced
    /// over BGP, wait until no new connection arrives and the local ones finished (or the
    /// timeout passed), then report done.
    DrainDirector {
        #[command(flatten)]
        control: ControlArgs,
        /// Seconds after which the drain is reported done anyway.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Return once the withdrawal is asked for, without waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Put a drained director back in service: its VIPs are announced again.
    UndrainDirector {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Recent events of the running director: transitions, reloads, health changes.
    Events {
        #[command(flatten)]
        control: ControlArgs,
        /// How many (newest last).
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: usize,
    },
    /// Interactive Lua against the running director.
    Repl {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// The real-server side: VIPs on lo (DR) or tunl0 (TUN), ARP suppression, rp_filter.
    Realserver(lvsd::realserver::Args),
    /// The troubleshooting checklist, automated: each item PASS/WARN/FAIL with the fix.
    #[command(after_help = lvsd::doctor::EXIT_CODES)]
    Doctor(lvsd::doctor::Args),
    /// The production setup rehearsed on this machine: two directors, real servers and a
    /// client in network namespaces, a bounded load, failures played out, timings measured.
    Lab {
        /// pair: two directors and VRRP; ecmp: N active directors behind a BIRD router's
        /// ECMP route, announcing the VIP over BGP (needs bird2).
        #[arg(long, value_enum, default_value = "pair")]
        topology: lvsd::lab::Topology,
        /// Directors of the ecmp topology.
        #[arg(long, default_value_t = 3)]
        directors: usize,
        /// The ecmp topology's scheduler (default mh, the consistent hash; wlc to see what it saves).
        #[arg(long, value_parser = ["mh", "sh", "wlc", "rr"])]
        scheduler: Option<String>,
        /// How the ecmp topology's router detects a dead director (default bfd; the hold timer
        /// in the emulated guest, which stalls for longer than BFD allows).
        #[arg(long, value_enum)]
        detect: Option<lvsd::lab::Detect>,
        #[arg(long, value_enum, default_value = "dr")]
        mode: lvsd::lab::Mode,
        /// Number of real servers.
        #[arg(long, default_value_t = 2)]
        reals: usize,
        /// Upper bound on client requests for the whole run.
        #[arg(long, default_value_t = 5000)]
        requests: usize,
        #[arg(long, value_enum, default_value = "all")]
        scenario: lvsd::lab::Scenario,
        /// A policy of your own instead of the seed (its addresses must fit the lab's).
        #[arg(short = 'p', long = "policy")]
        policy: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Check the rehearsal's claims and exit 1 if one does not hold.
        #[arg(long)]
        verify: bool,
        /// Also write the report as a self-contained HTML page with a timeline chart.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// Run nothing: write --report from a report saved with --json.
        #[arg(long, value_name = "FILE.json", requires = "report")]
        from_json: Option<PathBuf>,
        #[command(flatten)]
        long: lvsd::lab::longlived::Args,
    },
    /// Write the manual pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generate,
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
    /// The lab's web server for real servers (answers with its name).
    #[command(hide = true)]
    LabHttp {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 80)]
        port: u16,
    },
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum Generate {
    /// lvsd.8, lvsd-SUBCOMMAND.8 and lvsd-policy.5.
    Man,
    /// bash (lvsd), zsh (_lvsd) and fish (lvsd.fish).
    Completions,
}

#[derive(clap::Args, Clone)]
struct ControlArgs {
    /// The control socket.
    #[arg(long = "control", default_value = lvsd::control::DEFAULT_PATH)]
    path: PathBuf,
}

fn control_call(c: &ControlArgs, cmd: lvsd::control::Command) -> Result<lvsd::control::Response> {
    let mut client = lvsd::control::client::Client::connect(&c.path)?;
    Ok(client.call(cmd)?)
}

// One argument per command-line option of `lvsd run`.
#[allow(clippy::too_many_arguments)]
fn run_director(
    file: PathBuf,
    policy: PolicyArgs,
    dry_run: bool,
    once: bool,
    control: ControlArgs,
    resync: u64,
    metrics: Option<std::net::SocketAddr>,
    metrics_compat: lvsd::control::metrics_page::Compat,
) -> Result<ExitCode> {
    use lvsd::director::{Director, Options};
    use lvsd::ipvs::backend::Backend;
    if once {
        // Apply the table once, every real up, and the sync daemon if the policy has one.
        let Some(p) = load(&file, &policy)? else { return Ok(ExitCode::from(1)) };
        let table = lvsd::desired::all_up(&p.model);
        let remove = p.model.global.foreign == lvsd::model::Foreign::Remove;
        let report = if dry_run {
            lvsd::ipvs::cli::apply_dry_run(&table, remove)
        } else {
            let timeouts = lvsd::ipvs::cli::timeouts_from_model(&p.model);
            lvsd::ipvs::cli::apply_once(&table, remove, lvsd::ipvs::cli::daemon_from_model(&p.model).as_ref(), timeouts.as_ref())?
        };
        lvsd::ipvs::cli::log_report(&report, remove);
        outln!("{}", lvsd::ipvs::cli::summary(&report));
        return Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    match lvsd::limits::raise_open_files() {
        Ok((before, after)) if after > before => tracing::info!("open files limit raised from {before} to {after}"),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let backend: Box<dyn Backend> =
        if dry_run { Box::new(lvsd::ipvs::memory::MemoryBackend::new()) } else { Box::new(lvsd::ipvs::kernel::Kernel::open()?) };
    let opts = Options {
        policy: file.clone(),
        load: policy.options(),
        control: Some(control.path),
        resync_interval: std::time::Duration::from_secs(resync.max(1)),
        // Editors finish an atomic save within milliseconds; a short quiet time keeps reloads quick.
        debounce: std::time::Duration::from_millis(25),
        backend_name: if dry_run { "memory" } else { "kernel" },
        metrics,
        metrics_compat,
    };
    let director = match Director::new(opts, backend) {
        Ok(d) => d,
        Err(lvsd::director::DirectorError::Policy(PolicyError::Invalid(errs))) => {
            for e in &errs {
                eprintln!("{e}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    // The director runs as a task of its own: the future given to `block_on` is polled
    // whenever any local task wakes (a probe, say), and polling the director's loop means
    // polling every branch of its select.
    let task = local.spawn_local(director.run());
    let result = local.block_on(&rt, task);
    // Threads still busy (an abandoned policy load) must not hold the exit.
    drop(local);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result??;
    Ok(ExitCode::SUCCESS)
}

/// Send one action to the running director: its result as JSON on stdout, exit 0; or the
/// error on stderr, exit 1.
fn control_action(control: &ControlArgs, cmd: lvsd::control::Command) -> Result<ExitCode> {
    let r = control_call(control, cmd)?;
    if r.ok {
        outln!("{}", r.result.unwrap_or_default());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}", r.error.unwrap_or_default());
        Ok(ExitCode::from(1))
    }
}

/// `lvsd drain-director`: ask, then follow `bgp.drain` in the status until it is done.
fn drain_director(control: &ControlArgs, timeout: u64, no_wait: bool) -> Result<ExitCode> {
    let r = control_call(control, lvsd::control::Command::DrainDirector { timeout: Some(timeout) })?;
    if !r.ok {
        eprintln!("{}", r.error.unwrap_or_default());
        return Ok(ExitCode::from(1));
    }
    if no_wait {
        outln!("{}", r.result.unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    // The director reports done at its timeout; a little more here for a director that stopped answering.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(timeout + 10);
    let mut shown = String::new();
    while std::time::Instant::now() < until {
        let st = control_call(control, lvsd::control::Command::Status { text_only: false, brief: true })?;
        let d = st.result.as_ref().map(|v| v["bgp"]["drain"].clone()).unwrap_or_default();
        let state = d["state"].as_str().unwrap_or("").to_string();
        if state != shown {
            match state.as_str() {
                "withdrawing" => outln!("withdrawing every VIP..."),
                "waiting" => outln!("withdrawn after {} ms; waiting for the connections to finish...", d["withdrawn_after_ms"]),
                _ => {}
            }
            shown = state.clone();
        }
        if state == "done" {
            outln!("drained: {}", d["note"].as_str().unwrap_or(""));
            return Ok(ExitCode::SUCCESS);
        }
        if d.is_null() {
            eprintln!("the director is no longer draining (undrained or restarted)");
            return Ok(ExitCode::from(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!("the director did not report the drain done in time");
    Ok(ExitCode::from(1))
}

/// Load a policy, printing every error; None when it is invalid.
fn load(file: &Path, args: &PolicyArgs) -> Result<Option<policy::Policy>> {
    report(file, policy::load(file, &args.options()))
}

/// Print a load's errors; None when it failed.
fn report(file: &Path, result: Result<policy::Policy, PolicyError>) -> Result<Option<policy::Policy>> {
    match result {
        Ok(p) => Ok(Some(p)),
        Err(PolicyError::Invalid(errs)) => {
            for e in &errs {
                eprintln!("{e}");
            }
            eprintln!("{}: {} error{}", file.display(), errs.len(), if errs.len() == 1 { "" } else { "s" });
            Ok(None)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(None)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check { file, policy } => {
            // Abandoned past its deadline (a C call or a read that never ends): a CI job
            // checking policies must not hang.
            let opts = policy.options();
            let deadline = opts.limits.load_time + std::time::Duration::from_secs(2);
            let Some(p) = report(&file, policy::load_with_deadline(&file, &opts, deadline))? else { return Ok(ExitCode::from(1)) };
            let m = &p.model;
            for w in lvsd::model::warnings(m) {
                eprintln!("{w}");
            }
            outln!(
                "{}: ok: {} service{}, {} real server{}, {} VRRP instance{} (node {})",
                file.display(),
                m.services.len(),
                if m.services.len() == 1 { "" } else { "s" },
                m.real_count(),
                if m.real_count() == 1 { "" } else { "s" },
                m.vrrp.len(),
                if m.vrrp.len() == 1 { "" } else { "s" },
                m.node
            );
            // Not dropped: closing a Lua state runs what is left to finalize, and there is
            // nothing to free at exit.
            std::mem::forget(p);
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { file, pair, output, config_id } => {
            let args = lvsd::import::cli::Args { file, pair, output, config_id };
            Ok(ExitCode::from(lvsd::import::cli::run(&args) as u8))
        }
        Command::Plan { file, policy, json } => {
            let Some(p) = load(&file, &policy)? else { return Ok(ExitCode::from(1)) };
            let table = lvsd::desired::all_up(&p.model);
            if json {
                outln!("{}", serde_json::to_string_pretty(&lvsd::plan::json(&p.model, &table))?);
            } else {
                out!("{}", lvsd::plan::text(&p.model, &table));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { policy_file, policy, dry_run, once, control, resync, metrics, metrics_compat } => {
            run_director(policy_file, policy, dry_run, once, control, resync, metrics, metrics_compat)
        }
        Command::Status { kernel: true, stats, rate, json, .. } => {
            use lvsd::ipvs::format::Format;
            let fmt = if stats {
                Format::Stats
            } else if rate {
                Format::Rate
            } else {
                Format::List
            };
            out!("{}", lvsd::ipvs::cli::status_kernel(fmt, json)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { control, json, .. } => {
            let r = lvsd::control::client::Client::connect(&control.path)?
                .call_written(lvsd::control::Command::Status { text_only: !json, brief: false })?;
            let Some(doc) = r.written.filter(|_| r.ok) else { anyhow::bail!("{}", r.error.unwrap_or_default()) };
            if json {
                // Indented as it is read, never held as a tree (a big policy's status is tens of MB).
                let mut pretty = Vec::with_capacity(doc.get().len() * 2);
                serde_transcode::transcode(
                    &mut serde_json::Deserializer::from_str(doc.get()),
                    &mut serde_json::Serializer::pretty(&mut pretty),
                )?;
                outln!("{}", String::from_utf8_lossy(&pretty));
            } else {
                #[derive(serde::Deserialize)]
                struct Text {
                    text: String,
                }
                out!("{}", serde_json::from_str::<Text>(doc.get())?.text);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { control, force } => {
            let r = control_call(&control, lvsd::control::Command::Reload { force })?;
            if r.ok {
                outln!("reloaded: generation {}", r.result.unwrap_or_default()["generation"]);
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}", r.error.unwrap_or_default());
                Ok(ExitCode::from(1))
            }
        }
        Command::Drain { control, service, real } => {
            control_action(&control, lvsd::control::Command::Drain(lvsd::control::RealRef { service, real }))
        }
        Command::Undrain { control, service, real } => {
            control_action(&control, lvsd::control::Command::Undrain(lvsd::control::RealRef { service, real }))
        }
        Command::Weight { control, service, real, weight } => {
            let real = lvsd::control::RealRef { service, real };
            let cmd = match weight.as_str() {
                "clear" => lvsd::control::Command::ClearWeight(real),
                w => match w.parse::<u32>() {
                    Ok(weight) => lvsd::control::Command::SetWeight { real, weight },
                    Err(_) => {
                        eprintln!("weight must be a number 0..65535 or `clear`, not '{w}'");
                        return Ok(ExitCode::from(2));
                    }
                },
            };
            control_action(&control, cmd)
        }
        Command::Yield { control, instance } => control_action(&control, lvsd::control::Command::Yield { instance }),
        Command::Unyield { control, instance } => control_action(&control, lvsd::control::Command::Unyield { instance }),
        Command::DrainDirector { control, timeout, no_wait } => drain_director(&control, timeout, no_wait),
        Command::UndrainDirector { control } => control_action(&control, lvsd::control::Command::UndrainDirector),
        Command::Events { control, limit } => {
            let r = control_call(&control, lvsd::control::Command::Events { limit: Some(limit) })?;
            if !r.ok {
                eprintln!("{}", r.error.unwrap_or_default());
                return Ok(ExitCode::from(1));
            }
            for e in r.result.unwrap_or_default().as_array().into_iter().flatten() {
                outln!(
                    "{:.3}  {:<12} {}",
                    e["at"].as_f64().unwrap_or(0.0),
                    e["kind"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Repl { control } => Ok(ExitCode::from(lvsd::repl::run(&control.path)? as u8)),
        Command::Realserver(args) => Ok(ExitCode::from(lvsd::realserver::run_cli(&args)?)),
        Command::Doctor(args) => Ok(ExitCode::from(lvsd::doctor::run_cli(&args)?)),
        Command::Lab {
            topology,
            directors,
            scheduler,
            detect,
            mode,
            reals,
            requests,
            scenario,
            policy,
            json,
            verify,
            report,
            from_json,
            long,
        } => {
            if let (Some(from), Some(to)) = (from_json, &report) {
                let text = std::fs::read_to_string(&from).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?;
                let saved: serde_json::Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", from.display()))?;
                std::fs::write(to, lvsd::lab::report::html(&saved)).map_err(|e| anyhow::anyhow!("{}: {e}", to.display()))?;
                return Ok(ExitCode::SUCCESS);
            }
            if topology == lvsd::lab::Topology::Ecmp && report.is_some() {
                anyhow::bail!("--report draws the pair lab's timeline; with --topology ecmp use --json");
            }
            if topology != lvsd::lab::Topology::Ecmp && scheduler.is_some() {
                anyhow::bail!("--scheduler is for --topology ecmp (the pair lab's policy names its own)");
            }
            if topology != lvsd::lab::Topology::Ecmp && detect.is_some() {
                anyhow::bail!("--detect is for --topology ecmp (the pair detects by VRRP)");
            }
            let opts = lvsd::lab::Options {
                topology,
                directors,
                scheduler,
                detect,
                mode,
                reals: reals.max(1),
                requests,
                scenario,
                policy,
                json,
                verify,
                long,
            };
            run_lab(opts, report)
        }
        Command::Generate { what, dir } => {
            use clap::CommandFactory;
            let files = match what {
                Generate::Man => lvsd::manual::man_pages(&Cli::command(), &dir)?,
                Generate::Completions => lvsd::manual::completions(&Cli::command(), &dir)?,
            };
            for f in files {
                println!("{}", f.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::LabHttp { name, port } => {
            lvsd::lab::http::serve(&name, port)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where the kernel has no IPVS, the lab runs inside a QEMU guest (lvsd::lab::vm) with the
/// same options, its console shown live; the HTML report is copied back out.
fn run_lab_in_vm(opts: &lvsd::lab::Options, report: Option<&std::path::Path>) -> Result<ExitCode> {
    use lvsd::lab::vm;
    let exe = std::env::current_exe()?;
    let env_dir = std::env::var_os("LVSD_VM_DIR").map(PathBuf::from);
    let candidates = vm::candidates(&exe, env_dir.as_deref());
    let Some(dir) = vm::find(&candidates, |p| p.exists()) else {
        let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        eprintln!(
            "lvsd lab: this kernel has no IPVS, and the guest builder ({} and {}) is in none of: {} (install the lvsd package, or set LVSD_VM_DIR)",
            vm::SCRIPT,
            vm::SCENARIO,
            tried.join(", ")
        );
        return Ok(ExitCode::from(1));
    };
    let script = dir.join(vm::SCRIPT);
    eprintln!("lvsd lab: this kernel has no IPVS; running the lab in a QEMU guest with Debian's kernel ({})", script.display());
    let out = tempfile_dir()?;
    let mut cmd = std::process::Command::new(&script);
    cmd.args(["--install", "--verbose", "--lvsd"]).arg(&exe).arg("--out").arg(&out);
    if let Some(p) = &opts.policy {
        cmd.arg("--file").arg(p);
    }
    for x in vm::extras(opts) {
        if !x.exists() {
            eprintln!(
                "lvsd lab: the {:?} topology runs BIRD in the guest: {} is missing (apt-get install bird2)",
                opts.topology,
                x.display()
            );
            return Ok(ExitCode::from(1));
        }
        cmd.arg("--extra").arg(x);
    }
    if std::env::var_os("LVSD_VM_CACHE").is_none()
        && let Some(cache) = vm::cache_for(&dir, |p| p.exists())
    {
        std::fs::create_dir_all(&cache).map_err(|e| anyhow::anyhow!("{}: {e}", cache.display()))?;
        cmd.env("LVSD_VM_CACHE", cache);
    }
    let status = cmd
        .arg("lab")
        .env("LVSD_LAB_ARGS", vm::guest_args(opts, report.is_some()).join(" "))
        .status()
        .map_err(|e| anyhow::anyhow!("{}: {e}", script.display()));
    let copied = match report {
        Some(to) => std::fs::copy(out.join(vm::GUEST_REPORT), to).map(|_| ()).map_err(|e| format!("the guest's report: {e}")),
        None => Ok(()),
    };
    let _ = std::fs::remove_dir_all(&out);
    let code = status?.code().unwrap_or(1).clamp(0, 255) as u8;
    if let Err(e) = copied {
        eprintln!("lvsd lab: {e}");
        return Ok(ExitCode::from(code.max(1)));
    }
    Ok(ExitCode::from(code))
}

/// A fresh private directory for what the guest copies back.
fn tempfile_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let d = std::env::temp_dir().join(format!("lvsd-lab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::DirBuilder::new().mode(0o700).create(&d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?;
    Ok(d)
}

fn kernel_has_ipvs() -> bool {
    std::path::Path::new("/proc/net/ip_vs").exists()
        || std::process::Command::new("modprobe").arg("ip_vs").status().is_ok_and(|s| s.success())
}

fn run_lab(opts: lvsd::lab::Options, html: Option<PathBuf>) -> Result<ExitCode> {
    if !kernel_has_ipvs() {
        return run_lab_in_vm(&opts, html.as_deref());
    }
    let (json, verify) = (opts.json, opts.verify);
    let mut report = match lvsd::lab::run(opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lvsd lab: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let left = lvsd::lab::leftovers(std::process::id());
    let verdicts = if verify { lvsd::lab::verify(&report) } else { Vec::new() };
    if verify {
        // In the JSON and the HTML page too.
        let v = verdicts.iter().map(|(pass, line)| serde_json::json!({ "pass": pass, "line": line })).collect();
        report["verdicts"] = serde_json::Value::Array(v);
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        lvsd::lab::print(&report);
    }
    let mut ok = left.is_empty();
    if !left.is_empty() {
        eprintln!("FAIL namespaces left behind: {}", left.join(", "));
    }
    if verify {
        out!("\n");
        for (pass, line) in &verdicts {
            outln!("{} {line}", if *pass { "PASS" } else { "FAIL" });
            ok &= pass;
        }
        outln!("{} no namespace left behind", if left.is_empty() { "PASS" } else { "FAIL" });
    }
    if let Some(path) = html
        && let Err(e) = std::fs::write(&path, lvsd::lab::report::html(&report))
    {
        eprintln!("lvsd lab: {}: {e}", path.display());
        ok = false;
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn main() -> ExitCode {
    // clap exits with 2 on usage errors.
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LVSD_LOG").unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        use std::io::IsTerminal;
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    if !matches!(cli.command, Command::Run { .. }) {
        quiet_broken_pipe();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lvsd: {e}");
            ExitCode::from(1)
        }
    }
}
