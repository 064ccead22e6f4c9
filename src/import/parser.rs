//! keepalived's configuration language -> a tree of statements with file:line.
//!
//! keepalived reads its configuration line by line: `include` lines are expanded first,
//! then comments are cut, `@id` conditional lines are kept or skipped, `$NAME=value`
//! lines define parameters and `$NAME` / `${NAME}` are substituted. What remains is a
//! stream of words where `{` opens a block belonging to the statement before it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{Loc, Warning};

/// One statement: a keyword, its arguments, and its block when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub key: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Node>>,
    pub loc: Loc,
    /// The source line as written (after comment removal), for `-- keepalived:` comments.
    pub text: String,
}

impl Node {
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, Error)]
pub enum ParseError {
    #[error("{0}: cannot read {1}: {2}")]
    Read(Loc, PathBuf, std::io::Error),
    #[error("{path}: cannot read: {err}")]
    ReadTop { path: PathBuf, err: std::io::Error },
    #[error("{0}: include loop: {1}")]
    IncludeLoop(Loc, String),
    #[error("{0}: includes nested deeper than {1} levels")]
    IncludeDepth(Loc, usize),
    #[error("{0}: '}}' without a matching '{{'")]
    UnexpectedClose(Loc),
    #[error("{0}: block opened here is never closed (missing '}}')")]
    Unclosed(Loc),
    #[error("{0}: '{{' without a keyword before it")]
    BareOpen(Loc),
    #[error("{0}: unterminated quoted string")]
    Unterminated(Loc),
    #[error("{0}: {1} is not supported by lvsd import (expand it by hand)")]
    Unsupported(Loc, String),
    #[error("{0}: parameter substitution does not terminate (recursive definition of ${1}?)")]
    Recursion(Loc, String),
}

/// How to read a configuration: which `@id` lines apply.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// keepalived's config-id (`-i`); `None` keeps only `@^id` lines and warns about the others.
    pub config_id: Option<String>,
}

const MAX_INCLUDE_DEPTH: usize = 32;

/// A logical line after preprocessing.
struct Line {
    loc: Loc,
    text: String,
}

struct Reader<'a> {
    opts: &'a ParseOptions,
    params: HashMap<String, String>,
    stack: Vec<PathBuf>,
    lines: Vec<Line>,
    warnings: Vec<Warning>,
}

/// Parse a keepalived configuration file and everything it includes.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> Result<(Vec<Node>, Vec<Warning>), ParseError> {
    let mut r = Reader { opts, params: HashMap::new(), stack: Vec::new(), lines: Vec::new(), warnings: Vec::new() };
    let text = std::fs::read_to_string(path).map_err(|err| ParseError::ReadTop { path: path.to_path_buf(), err })?;
    r.read(path, &text)?;
    let nodes = build_tree(&r.lines)?;
    Ok((nodes, r.warnings))
}

/// Parse configuration text as if it were the file `name` (used by tests).
pub fn parse_str(name: &Path, text: &str, opts: &ParseOptions) -> Result<(Vec<Node>, Vec<Warning>), ParseError> {
    let mut r = Reader { opts, params: HashMap::new(), stack: Vec::new(), lines: Vec::new(), warnings: Vec::new() };
    r.read(name, text)?;
    let nodes = build_tree(&r.lines)?;
    Ok((nodes, r.warnings))
}

impl Reader<'_> {
    fn read(&mut self, path: &Path, text: &str) -> Result<(), ParseError> {
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.stack.push(canon);
        let file = path.display().to_string();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let raw: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < raw.len() {
            let loc = Loc { file: file.clone(), line: i + 1 };
            let mut line = strip_comment(raw[i]);
            i += 1;
            // keepalived continues lines only in `$NAME=` definitions (trailing backslash);
            // the line breaks are kept, because the value usually holds several statements.
            let is_def = is_definition(&line);
            while is_def && line.trim_end().ends_with('\\') && i < raw.len() {
                let t = line.trim_end();
                line = t[..t.len() - 1].to_string();
                line.push('\n');
                line.push_str(&strip_comment(raw[i]));
                i += 1;
            }
            self.line(&loc, &dir, line)?;
        }
        self.stack.pop();
        Ok(())
    }

    fn line(&mut self, loc: &Loc, dir: &Path, line: String) -> Result<(), ParseError> {
        let mut body = line.trim_start().to_string();
        if body.trim().is_empty() {
            return Ok(());
        }
        let Some(rest) = self.conditional(loc, &body) else { return Ok(()) };
        body = rest;
        if body.starts_with('~') {
            let what = body.split('(').next().unwrap_or("~").to_string();
            return Err(ParseError::Unsupported(loc.clone(), format!("'{what}' (sequence/list blocks)")));
        }
        // `$NAME=value` defines a parameter; no space is allowed before '='.
        if is_definition(&body) {
            let eq = body.find('=').unwrap();
            let name = body[1..eq].to_string();
            let value = body[eq + 1..].trim().to_string();
            self.params.insert(name, value);
            return Ok(());
        }
        let body = self.substitute(loc, dir, &body)?;
        // Substitution may yield several lines (multi-line definitions).
        for part in body.split('\n') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            // A parameter may expand to a conditional line (`$IF_MAIN=@main`).
            let Some(part) = self.conditional(loc, part) else { continue };
            let part = part.as_str();
            if is_definition(part) {
                let eq = part.find('=').unwrap();
                self.params.insert(part[1..eq].to_string(), part[eq + 1..].trim().to_string());
                continue;
            }
            let (word, rest) = split_word(part);
            if matches!(word, "include" | "includer" | "includem" | "includew" | "includeb" | "includea") {
                self.include(loc, dir, rest.trim())?;
                continue;
            }
            self.lines.push(Line { loc: loc.clone(), text: part.to_string() });
        }
        Ok(())
    }

    /// `@id rest` keeps `rest` only on the node whose config-id is `id`; `@^id` is the
    /// negation. Lines without `@` are kept as they are.
    fn conditional(&mut self, loc: &Loc, line: &str) -> Option<String> {
        let Some(cond) = line.strip_prefix('@') else { return Some(line.to_string()) };
        let (word, rest) = split_word(cond);
        let (negate, id) = match word.strip_prefix('^') {
            Some(id) => (true, id),
            None => (false, word),
        };
        let keep = match &self.opts.config_id {
            Some(cid) => (cid == id) != negate,
            None => {
                if !negate {
                    self.warnings.push(Warning::new(
                        loc,
                        format!("line for config-id '{id}' skipped (no config-id given: use --config-id or --pair)"),
                    ));
                }
                negate
            }
        };
        keep.then(|| rest.trim_start().to_string())
    }

    fn include(&mut self, loc: &Loc, dir: &Path, pattern: &str) -> Result<(), ParseError> {
        let pattern = unquote(pattern);
        let full = if Path::new(&pattern).is_absolute() { PathBuf::from(&pattern) } else { dir.join(&pattern) };
        let mut files = Vec::new();
        for p in expand_braces(&full.display().to_string()) {
            files.extend(glob(&p));
        }
        if files.is_empty() {
            // keepalived's plain `include` does not fail on a missing file either; say so.
            self.warnings.push(Warning::new(loc, format!("include '{pattern}' matches no file")));
        }
        for f in files {
            let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
            if let Some(pos) = self.stack.iter().position(|p| *p == canon) {
                let chain: Vec<String> =
                    self.stack[pos..].iter().chain(std::iter::once(&canon)).map(|p| p.display().to_string()).collect();
                return Err(ParseError::IncludeLoop(loc.clone(), chain.join(" -> ")));
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                return Err(ParseError::IncludeDepth(loc.clone(), MAX_INCLUDE_DEPTH));
            }
            let text = std::fs::read_to_string(&f).map_err(|e| ParseError::Read(loc.clone(), f.clone(), e))?;
            self.read(&f, &text)?;
        }
        Ok(())
    }

    /// Replace `$NAME` (followed by whitespace or end) and `${NAME}`; undefined names stay.
    fn substitute(&self, loc: &Loc, dir: &Path, s: &str) -> Result<String, ParseError> {
        let mut cur = s.to_string();
        for _ in 0..64 {
            let next = self.substitute_once(dir, &cur);
            if next == cur {
                return Ok(cur);
            }
            cur = next;
        }
        Err(ParseError::Recursion(loc.clone(), s.to_string()))
    }

    fn substitute_once(&self, dir: &Path, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                if b.get(i + 1) == Some(&b'{') {
                    if let Some(end) = s[i + 2..].find('}') {
                        let name = &s[i + 2..i + 2 + end];
                        if let Some(v) = self.lookup(dir, name) {
                            out.push_str(&v);
                            i += end + 3;
                            continue;
                        }
                    }
                } else {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    let ends_ok = j == b.len() || b[j].is_ascii_whitespace();
                    if j > start && ends_ok
                        && let Some(v) = self.lookup(dir, &s[start..j]) {
                            out.push_str(&v);
                            i = j;
                            continue;
                        }
                }
            }
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    fn lookup(&self, dir: &Path, name: &str) -> Option<String> {
        match name {
            "_PWD" => Some(dir.display().to_string()),
            "_INSTANCE" => self.opts.config_id.clone(),
            "_HASH" => Some("#".into()),
            "_BANG" => Some("!".into()),
            _ => self.params.get(name).cloned(),
        }
    }
}

fn is_definition(line: &str) -> bool {
    let t = line.trim_start();
    let Some(rest) = t.strip_prefix('$') else { return false };
    let name_len = rest.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
    name_len > 0 && !rest.as_bytes()[0].is_ascii_digit() && rest.as_bytes().get(name_len) == Some(&b'=')
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(p) => (&s[..p], &s[p..]),
        None => (s, ""),
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && (s.starts_with('"') && s.ends_with('"') || s.starts_with('\'') && s.ends_with('\'')) {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// Cut a `#` or `!` comment that is not inside quotes.
fn strip_comment(line: &str) -> String {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#' | '!') => return line[..i].to_string(),
            _ => {}
        }
    }
    line.to_string()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

/// Split a line into words: whitespace separates, quotes group (and are removed),
/// `{` and `}` outside quotes are tokens of their own.
fn tokenize(loc: &Loc, line: &str) -> Result<Vec<Tok>, ParseError> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                let q = c;
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == q {
                        closed = true;
                        break;
                    }
                    if d == '\\' {
                        match chars.next() {
                            Some('n') => cur.push('\n'),
                            Some('t') => cur.push('\t'),
                            Some(e) => {
                                // Keep the backslash inside single-quoted script arguments;
                                // the command splitter handles them.
                                if q == '\'' {
                                    cur.push('\\');
                                }
                                cur.push(e)
                            }
                            None => {}
                        }
                        continue;
                    }
                    cur.push(d);
                }
                if !closed {
                    return Err(ParseError::Unterminated(loc.clone()));
                }
            }
            '{' | '}' => {
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
                toks.push(if c == '{' { Tok::Open } else { Tok::Close });
            }
            c if c.is_whitespace() => {
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        toks.push(Tok::Word(cur));
    }
    Ok(toks)
}

/// Build the statement tree. A statement starts at the beginning of a line or after a
/// brace and runs to the end of the line or the next brace; `{` attaches a block to it.
fn build_tree(lines: &[Line]) -> Result<Vec<Node>, ParseError> {
    // (statements of this level, the statement that owns the block, where it opened)
    let mut stack: Vec<(Vec<Node>, Option<Node>)> = vec![(Vec::new(), None)];
    for line in lines {
        let toks = tokenize(&line.loc, &line.text)?;
        let mut pending: Option<Node> = None;
        for tok in toks {
            match tok {
                Tok::Word(w) => match &mut pending {
                    Some(n) => n.args.push(w),
                    None => {
                        pending = Some(Node {
                            key: w,
                            args: Vec::new(),
                            block: None,
                            loc: line.loc.clone(),
                            text: line.text.trim().to_string(),
                        })
                    }
                },
                Tok::Open => {
                    let Some(owner) = pending.take() else {
                        return Err(ParseError::BareOpen(line.loc.clone()));
                    };
                    stack.push((Vec::new(), Some(owner)));
                }
                Tok::Close => {
                    if let Some(n) = pending.take() {
                        stack.last_mut().unwrap().0.push(n);
                    }
                    if stack.len() == 1 {
                        return Err(ParseError::UnexpectedClose(line.loc.clone()));
                    }
                    let (children, owner) = stack.pop().unwrap();
                    let mut owner = owner.unwrap();
                    owner.block = Some(children);
                    stack.last_mut().unwrap().0.push(owner);
                }
            }
        }
        if let Some(n) = pending.take() {
            stack.last_mut().unwrap().0.push(n);
        }
    }
    if stack.len() > 1 {
        let owner = stack.pop().unwrap().1.unwrap();
        return Err(ParseError::Unclosed(owner.loc));
    }
    Ok(stack.pop().unwrap().0)
}

/// Expand csh-style braces: `a{b,c}d` -> `abd`, `acd`.
fn expand_braces(s: &str) -> Vec<String> {
    let Some(open) = s.find('{') else { return vec![s.to_string()] };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else { return vec![s.to_string()] };
    let (pre, post) = (&s[..open], &s[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = &s[w[0] + 1..w[1]];
        out.extend(expand_braces(&format!("{pre}{alt}{post}")));
    }
    out
}

/// Match a path pattern with `*`, `?` and `[...]` in any component; sorted like glob(3).
fn glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let mut found = vec![PathBuf::new()];
    for comp in path.components() {
        let part = comp.as_os_str().to_string_lossy().to_string();
        let mut next = Vec::new();
        for base in &found {
            if !part.contains(['*', '?', '[']) {
                next.push(base.join(&part));
                continue;
            }
            let dir = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base.clone() };
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            let mut names: Vec<String> =
                rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
            names.sort();
            for n in names {
                if n.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if wildcard(part.as_bytes(), n.as_bytes()) {
                    next.push(base.join(n));
                }
            }
        }
        found = next;
    }
    found.into_iter().filter(|p| p.is_file()).collect()
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(b'['), Some(&c)) => {
            let Some(end) = p.iter().position(|&x| x == b']') else { return false };
            let set = &p[1..end];
            let (neg, set) = match set.first() {
                Some(b'!' | b'^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != neg && wildcard(&p[end + 1..], &s[1..])
        }
        (Some(a), Some(b)) => a == b && wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Node> {
        parse_str(Path::new("t.conf"), text, &ParseOptions::default()).unwrap().0
    }

    #[test]
    fn blocks_comments_and_quotes() {
        let n = parse("a { # c\n  b \"x y\" 'z' ! more\n  c { d }\n}\n");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].key, "a");
        let ch = n[0].children();
        assert_eq!(ch[0].args, vec!["x y", "z"]);
        assert_eq!(ch[0].loc.line, 2);
        assert_eq!(ch[1].children()[0].key, "d");
    }

    #[test]
    fn params_and_conditionals() {
        let opts = ParseOptions { config_id: Some("main".into()) };
        let text = "$P=240\n@main priority $P\n@backup priority 1\n@^backup x ${P}0\n";
        let (n, _) = parse_str(Path::new("t.conf"), text, &opts).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].args, vec!["240"]);
        assert_eq!(n[1].args, vec!["2400"]);
    }

    #[test]
    fn a_parameter_can_hold_a_condition() {
        let opts = ParseOptions { config_id: Some("main".into()) };
        let text = "$IF_MAIN=@main\n$IF_MAIN priority 240\n$IF_BACKUP=@backup\n$IF_BACKUP priority 100\n";
        let (n, _) = parse_str(Path::new("t.conf"), text, &opts).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].key.as_str(), n[0].args[0].as_str()), ("priority", "240"));
    }

    #[test]
    fn wildcards_and_braces() {
        assert!(wildcard(b"*.conf", b"a.conf"));
        assert!(!wildcard(b"*.conf", b"a.cfg"));
        assert!(wildcard(b"[ab]?.c*", b"bx.conf"));
        assert_eq!(expand_braces("x{a,b}y"), vec!["xay", "xby"]);
    }
}
