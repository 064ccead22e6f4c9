//! `lvsd import`: keepalived.conf -> policy.lua.
//!
//! ```text
//! lvsd import /etc/keepalived/keepalived.conf -o policy.lua
//! lvsd import --config-id lvs01 keepalived.conf          # which `@lvs01` lines apply
//! lvsd import --pair lvs01=master.conf lvs02=backup.conf -o policy.lua
//! ```
//!
//! What it promises:
//! - The policy builds the IPVS table keepalived 2.2 builds from the same file: keepalived's
//!   defaults that differ from lvsd's are written out (no `lb_kind` is NAT, no `protocol`
//!   is UDP, HTTP retry delay 3 s, ...), and the corrections keepalived makes while
//!   validating (ports, quorum, duplicate reals, VRRP priority/state, ...) are made too.
//! - Nothing is dropped silently: every keyword without a home in lvsd is a warning
//!   `FILE:LINE: ...` on stderr and a `-- keepalived: <line> (not translated: why)` comment
//!   where it would have gone. keepalived 1.x's `lvs_id`, and `lvs_sync_daemon_inteface` (a
//!   misspelling from keepalived's documentation, which no keepalived parser read), are
//!   translated with a warning that keepalived 2.2 ignores them; `nb_get_retry` counts only
//!   in HTTP_GET/SSL_GET, as in keepalived 2.2.
//! - Repeated keywords, values keepalived ignores with a warning, `vrrp_strict`, AH
//!   authentication: read as keepalived 2.2.7 reads them, each change said in a warning.
//! - Malformed input (unbalanced braces, unknown blocks, bad numbers, include loops) is an
//!   error naming file and line; the exit code is 1. Every error of a run is listed, with
//!   the warnings, in file order. An import that succeeds passes `lvsd check`.
//! - The input is untrusted: sizes, nesting and parameter expansion are bounded, only
//!   regular files are read, and messages quote keywords, never foreign lines (`parser`).
//! - `--pair` reads each file with its node name as keepalived's config-id, translates both,
//!   and writes one policy: values that differ become `node == "lvs01" and X or Y`, items
//!   on one director only are wrapped in `if node == ... then ... end`. It refuses, listing
//!   every difference, when the VRRP instances disagree on what both routers of a pair must
//!   share: instance set, virtual_router_id, authentication, VIP addresses, advert_int, version.
//!
//! `parser` reads keepalived's configuration language into a statement tree,
//! `translate` maps the tree onto the lvsd policy API as a small Lua document model
//! (`lua`), `pair` merges the documents of two directors, `cli` is the command.

pub mod cli;
pub mod lua;
pub mod pair;
pub mod parser;
pub mod translate;

use std::fmt;
use std::path::Path;

use thiserror::Error;

pub use parser::ParseOptions;

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Something the operator must know about: a keyword not translated, a keyword renamed.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub loc: Loc,
    pub message: String,
}

impl Warning {
    pub fn new(loc: &Loc, message: impl Into<String>) -> Self {
        Warning { loc: loc.clone(), message: message.into() }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// The result of an import: the policy text and what could not be carried over.
#[derive(Debug, Clone)]
pub struct Import {
    pub lua: String,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error(transparent)]
    Parse(#[from] parser::ParseError),
    #[error(transparent)]
    Translate(#[from] translate::TranslateError),
    /// The configuration's errors (all of them), with the warnings found in the same run.
    #[error("{error}")]
    Invalid { error: translate::TranslateError, warnings: Vec<Warning> },
    #[error(transparent)]
    Pair(#[from] pair::PairError),
}

impl ImportError {
    /// Every line to print for this failure: errors and warnings in file order, each
    /// `FILE:LINE: message` (as `keepalived -t` lists them).
    pub fn report(&self) -> Vec<String> {
        let ImportError::Invalid { error, warnings } = self else { return vec![self.to_string()] };
        let mut lines: Vec<(Option<&Loc>, String)> = warnings.iter().map(|w| (Some(&w.loc), w.to_string())).collect();
        let errors = error.all();
        // Merge: warnings are in file order already, so are the errors; keep each file's order.
        let mut out = Vec::new();
        let mut wi = lines.drain(..).peekable();
        for e in errors {
            let eloc = e.loc();
            while let Some((wloc, _)) = wi.peek() {
                let before = match (wloc, eloc) {
                    (Some(w), Some(e)) => w.file == e.file && w.line <= e.line,
                    _ => false,
                };
                if !before {
                    break;
                }
                out.push(wi.next().map(|x| x.1).unwrap_or_default());
            }
            out.push(e.to_string());
        }
        out.extend(wi.map(|x| x.1));
        out
    }
}

/// Translate one keepalived configuration file.
// The error carries every warning found before it: reporting them all at once is the point.
#[allow(clippy::result_large_err)]
pub fn import_file(path: &Path, opts: &ParseOptions) -> Result<Import, ImportError> {
    let (nodes, mut warnings) = parser::parse_file(path, opts)?;
    let doc = translate::translate(&nodes, &mut warnings).map_err(|error| ImportError::Invalid { error, warnings: warnings.clone() })?;
    let header = format!("-- Imported from {} by `lvsd import`.", path.display());
    Ok(Import { lua: lua::render(&doc, &header, None), warnings })
}

/// Translate the configurations of two directors into one policy for both.
/// Each file is read with its node name as keepalived's config-id, so `@lvs01` lines apply.
#[allow(clippy::result_large_err)]
pub fn import_pair(a: (&str, &Path), b: (&str, &Path)) -> Result<Import, ImportError> {
    let mut warnings = Vec::new();
    let mut docs = Vec::new();
    for (node, path) in [a, b] {
        let opts = ParseOptions { config_id: Some(node.to_string()) };
        let (nodes, mut w) = parser::parse_file(path, &opts)?;
        let doc = translate::translate(&nodes, &mut w).map_err(|error| ImportError::Invalid { error, warnings: w.clone() })?;
        warnings.extend(w);
        docs.push(doc);
    }
    let merged = pair::merge((a.0, &docs[0]), (b.0, &docs[1]))?;
    // The same warning from both files (identical lines) is said once per file; keep both.
    let header = format!("-- Imported from {} ({}) and {} ({}) by `lvsd import --pair`.", a.1.display(), a.0, b.1.display(), b.0);
    Ok(Import { lua: lua::render(&merged, &header, Some(())), warnings })
}
