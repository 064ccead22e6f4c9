//! `lvsd import`: the command line side, kept here so that `main` only dispatches.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Import, ImportError, ParseOptions, import_file, import_pair};

/// What `lvsd import` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// The keepalived.conf to translate (single form).
    pub file: Option<PathBuf>,
    /// `NODE=FILE` twice (pair form).
    pub pair: Vec<String>,
    /// Where to write the policy; stdout when absent.
    pub output: Option<PathBuf>,
    /// keepalived's config-id for `@id` lines (single form).
    pub config_id: Option<String>,
}

/// Run the import: the policy goes to `--output` or stdout, warnings to stderr.
/// Returns the exit code: 0 done (even with warnings), 1 the configuration is wrong, 2 usage.
pub fn run(args: &Args) -> i32 {
    let result = match (&args.file, args.pair.as_slice()) {
        (Some(f), []) => import_file(f, &ParseOptions { config_id: args.config_id.clone() }),
        (None, [a, b]) => {
            let (Some(a), Some(b)) = (split_pair(a), split_pair(b)) else {
                eprintln!("lvsd import: --pair takes NODE=FILE NODE=FILE");
                return 2;
            };
            if args.config_id.is_some() {
                eprintln!("lvsd import: --config-id does not apply to --pair (each file is read with its node name)");
                return 2;
            }
            import_pair((a.0, a.1), (b.0, b.1))
        }
        _ => {
            eprintln!("lvsd import: give either FILE or --pair NODE=FILE NODE=FILE");
            return 2;
        }
    };
    match result {
        Ok(imp) => write(&imp, args.output.as_deref()),
        Err(e) => {
            report(&e);
            1
        }
    }
}

fn split_pair(s: &str) -> Option<(&str, &Path)> {
    let (node, file) = s.split_once('=')?;
    (!node.is_empty() && !file.is_empty()).then(|| (node, Path::new(file)))
}

fn report(e: &ImportError) {
    for line in e.report() {
        eprintln!("{line}");
    }
}

fn write(imp: &Import, output: Option<&Path>) -> i32 {
    for w in &imp.warnings {
        eprintln!("{w}");
    }
    let res = match output {
        Some(p) => std::fs::write(p, &imp.lua),
        None => std::io::stdout().write_all(imp.lua.as_bytes()),
    };
    if let Err(e) = res {
        eprintln!("lvsd import: cannot write {}: {e}", output.map(|p| p.display().to_string()).unwrap_or("stdout".into()));
        return 1;
    }
    if let Some(p) = output {
        let n = imp.warnings.len();
        eprintln!("wrote {} ({n} warning{}); check it with `lvsd check {}`", p.display(), if n == 1 { "" } else { "s" }, p.display());
    }
    0
}
