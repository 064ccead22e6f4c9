//! `lvsd repl`: Lua against the running director over the control socket.
//!
//! On a terminal: line editing, history in ~/.lvsd_history, completion of the API and of
//! instance/service/real names, multi-line input. Otherwise: one statement per line (a
//! statement may span lines until it is complete), results printed, for scripts and tests.

use crate::control::client::Client;
use crate::control::{Command, ControlError};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};

const HELP: &str = "\
lvsd repl: Lua evaluated inside the running director (a sandbox with read access to its state).
  lvsd.state.node, .generation, .last_reload        the policy that runs
  lvsd.state.vrrp                                    VRRP instances
  lvsd.state.services[i].reals                       real servers: health, weight, drain state
  lvsd.state.events                                  recent events
  lvsd.state.bgp                                     BIRD, BGP sessions, each VIP announced or not
  lvsd.drain(service, real)  lvsd.undrain(service, real)
  lvsd.weight(service, real, w)  lvsd.weight(service, real)   force / clear a weight
  lvsd.check_now(service, real)  lvsd.yield(instance)  lvsd.reload()
  lvsd.drain_director([timeout])  lvsd.undrain_director()   withdraw / re-announce every VIP
An expression prints its value; a statement runs. :help this text, :quit leaves.";

const API: &[&str] = &[
    "lvsd.state",
    "lvsd.state.vrrp",
    "lvsd.state.services",
    "lvsd.state.events",
    "lvsd.state.bgp",
    "lvsd.state.generation",
    "lvsd.state.last_reload",
    "lvsd.drain(",
    "lvsd.undrain(",
    "lvsd.weight(",
    "lvsd.check_now(",
    "lvsd.yield(",
    "lvsd.reload()",
    "lvsd.drain_director(",
    "lvsd.undrain_director()",
    "lvsd.node",
    ":help",
    ":quit",
];

#[derive(Helper, Highlighter, Hinter, Validator)]
struct Complete {
    words: Vec<String>,
}

impl Completer for Complete {
    type Candidate = Pair;
    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos].rfind([' ', '(', ',', '"', '\'']).map(|i| i + 1).unwrap_or(0);
        let word = &line[start..pos];
        let pairs =
            self.words.iter().filter(|w| w.starts_with(word)).map(|w| Pair { display: w.clone(), replacement: w.clone() }).collect();
        Ok((start, pairs))
    }
}

/// Is this chunk unfinished Lua (an open block or string)? Checked with a local Lua parser.
fn incomplete(code: &str) -> bool {
    let lua = mlua::Lua::new();
    let compiles = |src: &str| lua.load(src).into_function().is_ok();
    if compiles(code) || compiles(&format!("return {code}")) {
        return false;
    }
    matches!(lua.load(code).into_function(), Err(mlua::Error::SyntaxError { incomplete_input: true, .. }))
}

/// Render a result: tables of records as aligned columns, records as key = value lines.
pub fn pretty(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if !items.is_empty() && items.iter().all(|i| i.is_object()) => {
            let mut cols: Vec<String> = Vec::new();
            for i in items {
                for (k, val) in i.as_object().unwrap() {
                    if !val.is_object() && !val.is_array() && !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            let cell = |i: &Value, c: &str| match i.get(c) {
                None | Some(Value::Null) => "-".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(x) => x.to_string(),
            };
            let widths: Vec<usize> = cols.iter().map(|c| items.iter().map(|i| cell(i, c).len()).max().unwrap_or(0).max(c.len())).collect();
            let mut out = String::new();
            let row = |vals: Vec<String>| {
                vals.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
            };
            out.push_str(&row(cols.clone()));
            for i in items {
                out.push('\n');
                out.push_str(&row(cols.iter().map(|c| cell(i, c)).collect()));
            }
            out
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) | Value::Array(_) => format!("{k} = {}", v),
                Value::String(s) => format!("{k} = {s:?}"),
                other => format!("{k} = {other}"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn names(client: &mut Client) -> Vec<String> {
    let mut words: Vec<String> = API.iter().map(|s| s.to_string()).collect();
    if let Ok(r) = client.call(Command::Status { text_only: false, brief: false })
        && let Some(st) = r.result
    {
        for v in st["vrrp"].as_array().into_iter().flatten() {
            words.extend(v["name"].as_str().map(str::to_string));
        }
        for s in st["services"].as_array().into_iter().flatten() {
            words.extend(s["name"].as_str().map(str::to_string));
            for r in s["reals"].as_array().into_iter().flatten() {
                words.extend(r["address"].as_str().map(str::to_string));
            }
        }
    }
    words
}

/// Evaluate one chunk and print its result or error. Returns false on a transport error.
fn run_chunk(client: &mut Client, code: &str, out: &mut impl Write) -> Result<bool, ControlError> {
    let code = code.trim();
    match code {
        "" => return Ok(true),
        ":help" | ":h" => {
            let _ = writeln!(out, "{HELP}");
            return Ok(true);
        }
        _ => {}
    }
    let r = client.call(Command::Eval { code: code.to_string() })?;
    if r.ok {
        let v = r.result.unwrap_or(Value::Null);
        if !v.is_null() {
            let _ = writeln!(out, "{}", pretty(&v));
        }
        Ok(true)
    } else {
        let _ = writeln!(out, "error: {}", r.error.unwrap_or_default());
        Ok(false)
    }
}

/// Run the REPL; the exit code is 1 when a piped script had an error.
pub fn run(path: &std::path::Path) -> Result<i32, ControlError> {
    let mut client = Client::connect(path)?;
    let stdout = std::io::stdout();
    if !std::io::stdin().is_terminal() {
        let mut failed = false;
        let mut buf = String::new();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|source| ControlError::Io { path: "stdin".into(), source })?;
            if line.trim() == ":quit" {
                break;
            }
            buf.push_str(&line);
            buf.push('\n');
            if incomplete(&buf) {
                continue;
            }
            failed |= !run_chunk(&mut client, &buf, &mut stdout.lock())?;
            buf.clear();
        }
        if !buf.trim().is_empty() {
            failed |= !run_chunk(&mut client, &buf, &mut stdout.lock())?;
        }
        return Ok(if failed { 1 } else { 0 });
    }
    let words = names(&mut client);
    let mut rl: Editor<Complete, rustyline::history::DefaultHistory> = Editor::new().map_err(|e| ControlError::Protocol(e.to_string()))?;
    rl.set_helper(Some(Complete { words }));
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".lvsd_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("lvsd repl ({}): :help for help, Ctrl-D to leave", path.display());
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() { "lvsd> " } else { "  ... " };
        match rl.readline(prompt) {
            Ok(line) => {
                if buf.is_empty() && line.trim() == ":quit" {
                    break;
                }
                buf.push_str(&line);
                buf.push('\n');
                if incomplete(&buf) {
                    continue;
                }
                let _ = rl.add_history_entry(buf.trim_end());
                run_chunk(&mut client, &buf, &mut stdout.lock())?;
                buf.clear();
            }
            Err(ReadlineError::Interrupted) => buf.clear(),
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_chunks_continue() {
        assert!(incomplete("for i = 1, 3 do"));
        assert!(incomplete("x = {"));
        assert!(incomplete("for i = 1, 2 do\n  x = i\n"));
        assert!(!incomplete("for i = 1, 2 do\n  x = i\nend\n"));
        assert!(!incomplete("lvsd.state.node"));
        assert!(!incomplete("x = 1"));
        assert!(!incomplete("x = = 1"), "a plain syntax error is complete: it is reported");
    }

    #[test]
    fn records_print_as_columns() {
        let v = serde_json::json!([{ "name": "a", "w": 1 }, { "name": "bbb", "w": 20 }]);
        assert_eq!(pretty(&v), "name  w\na     1\nbbb   20");
    }
}
