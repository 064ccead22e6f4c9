//! The `lvsd` binary: parse the command line, dispatch, map errors to exit codes.

use anyhow::Result;
use clap::{Parser, Subcommand};
use lvsd::policy::{self, Limits, LoadOptions, PolicyError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "lvsd", version, about = "Linux load-balancer director: VRRP + IPVS + health checks, driven by Lua policy files")]
struct Cli {
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
    /// Instruction limit for evaluating the policy and for each hook call.
    #[arg(long, default_value_t = 200_000_000)]
    instruction_limit: u64,
}

impl PolicyArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            node: self.node.clone().unwrap_or_else(policy::hostname),
            limits: Limits { memory: self.memory_limit << 20, instructions: self.instruction_limit },
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
}

/// Load a policy, printing every error; None when it is invalid.
fn load(file: &Path, args: &PolicyArgs) -> Result<Option<policy::Policy>> {
    match policy::load(file, &args.options()) {
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
            let Some(p) = load(&file, &policy)? else { return Ok(ExitCode::from(1)) };
            let m = &p.model;
            println!(
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
                println!("{}", serde_json::to_string_pretty(&lvsd::plan::json(&p.model, &table))?);
            } else {
                print!("{}", lvsd::plan::text(&p.model, &table));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LVSD_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // clap exits with 2 on usage errors, as the issue asks.
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lvsd: {e:#}");
            ExitCode::from(1)
        }
    }
}
