//! keepalived's configuration language -> a tree of statements with file:line.
//!
//! keepalived reads its configuration line by line: `include` lines are expanded first,
//! then comments are cut, `@id` conditional lines are kept or skipped, `$NAME=value`
//! lines define parameters and `$NAME` / `${NAME}` are substituted. What remains is a
//! stream of words where `{` opens a block belonging to the statement before it.
//!
//! The input is foreign and may be hostile (an `include` of the wrong file, a parameter
//! bomb, a brace bomb), so everything is bounded: bytes per file and in total, only
//! regular files are read, logical lines and parameter expansion have a size and round
//! limit, blocks a depth limit, statements a count limit. Messages quote a keyword or a
//! name, never a whole line of the input (see `shown`).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
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
    #[error("{0}: parameter substitution does not terminate after {max} rounds (recursive definition?)", max = MAX_ROUNDS)]
    Recursion(Loc),
    #[error("{0}: parameter substitution grows the line past {max} bytes", max = MAX_LINE)]
    ExpansionTooLarge(Loc),
    #[error("{0}: line longer than {max} bytes", max = MAX_LINE)]
    LineTooLong(Loc),
    #[error("{0}: blocks nested deeper than {max} levels", max = MAX_DEPTH)]
    TooDeep(Loc),
    #[error("{0}: more than {max} statements", max = MAX_STATEMENTS)]
    TooManyStatements(Loc),
    #[error("{0}: include pattern expands to more than {max} paths", max = MAX_PATTERNS)]
    TooManyPatterns(Loc),
    #[error("{at}{1}: not a regular file (only regular files are read)", at = at(.0))]
    NotRegular(Option<Loc>, PathBuf),
    #[error("{at}{1}: larger than {2} bytes", at = at(.0))]
    TooLarge(Option<Loc>, PathBuf, u64),
    #[error("{at}{1}: the configuration read so far exceeds {max} bytes", at = at(.0), max = MAX_TOTAL)]
    TotalTooLarge(Option<Loc>, PathBuf),
    #[error("{0}: binary data (a NUL byte); not a keepalived configuration")]
    Binary(Loc),
}

/// "FILE:LINE: " of the include line that read the file, or nothing for the top file.
fn at(loc: &Option<Loc>) -> String {
    loc.as_ref().map(|l| format!("{l}: ")).unwrap_or_default()
}

/// Bytes of one file (keepalived configurations are kilobytes; this is a guard, not a budget).
pub const MAX_FILE: u64 = 4 << 20;
/// Bytes read in total, the top file and every include.
pub const MAX_TOTAL: u64 = 16 << 20;
/// Bytes of one logical line, also after parameter substitution.
pub const MAX_LINE: usize = 64 << 10;
/// Rounds of parameter substitution (a parameter may name another).
pub const MAX_ROUNDS: usize = 64;
/// Block nesting (keepalived's deepest is virtual_server > real_server > HTTP_GET > url).
pub const MAX_DEPTH: usize = 64;
/// Statements in the whole configuration.
pub const MAX_STATEMENTS: usize = 200_000;
/// Paths one include pattern's `{a,b}` alternatives may expand to.
pub const MAX_PATTERNS: usize = 256;
/// Characters of a source line kept on a statement for `-- keepalived:` comments.
const MAX_TEXT: usize = 512;
/// Preprocessor warnings kept (a file of 100,000 skipped `@id` lines says so once per line).
const MAX_WARNINGS: usize = 10_000;

/// A word from the input as it may appear in a message: keyword-like words as they are,
/// anything else (a line of a file that is not a keepalived configuration, a password
/// hash, ...) only by its length, so that no message echoes foreign data.
pub fn shown(word: &str) -> String {
    // An undefined `$NAME` left in place is worth seeing; `$6$salt$hash` is not.
    let param = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')).or_else(|| word.strip_prefix('$'));
    if param.is_some_and(|p| keyword_like(p) || p.starts_with('_') && keyword_like(&p[1..])) {
        return word.to_string();
    }
    let ok = !word.is_empty() && word.len() <= 64 && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:/@%+,=[]^~".contains(&b));
    if ok { word.to_string() } else { format!("<{} characters, not shown>", word.chars().count()) }
}

/// Whether a statement's first word looks like a keepalived keyword (top-level statements
/// must: anything else means the file is not a keepalived configuration).
pub fn keyword_like(word: &str) -> bool {
    let b = word.as_bytes();
    !b.is_empty() && b.len() <= 64 && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Read a configuration file: regular files only, at most `MAX_FILE` bytes and what is left
/// of `budget`, UTF-8 text. `from` is the include line, `None` for the top file.
pub fn read_bounded(path: &Path, from: Option<&Loc>, budget: &mut u64) -> Result<String, ParseError> {
    let io = |err| match from {
        Some(l) => ParseError::Read(l.clone(), path.to_path_buf(), err),
        None => ParseError::ReadTop { path: path.to_path_buf(), err },
    };
    // Looked at before opening: opening a FIFO would block until a writer comes.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(ParseError::NotRegular(from.cloned(), path.to_path_buf()));
    }
    let f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ParseError::NotRegular(from.cloned(), path.to_path_buf()));
    }
    if meta.len() > MAX_FILE {
        return Err(ParseError::TooLarge(from.cloned(), path.to_path_buf(), MAX_FILE));
    }
    // /proc files say 0 bytes whatever they hold: the read itself is bounded too.
    let limit = MAX_FILE.min(*budget);
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(if limit == MAX_FILE {
            ParseError::TooLarge(from.cloned(), path.to_path_buf(), MAX_FILE)
        } else {
            ParseError::TotalTooLarge(from.cloned(), path.to_path_buf())
        });
    }
    *budget -= buf.len() as u64;
    String::from_utf8(buf).map_err(|_| io(std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")))
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
    /// Warnings past MAX_WARNINGS, counted only.
    dropped: usize,
    /// Bytes that may still be read (MAX_TOTAL in all).
    budget: u64,
    /// Whether `include` reads files; without it the reader does no I/O at all.
    follow_includes: bool,
}

impl<'a> Reader<'a> {
    fn new(opts: &'a ParseOptions, follow_includes: bool) -> Self {
        Reader {
            opts,
            params: HashMap::new(),
            stack: Vec::new(),
            lines: Vec::new(),
            warnings: Vec::new(),
            dropped: 0,
            budget: MAX_TOTAL,
            follow_includes,
        }
    }

    fn finish(mut self) -> Result<(Vec<Node>, Vec<Warning>), ParseError> {
        let nodes = build_tree(&self.lines)?;
        if self.dropped > 0 {
            let loc = self.warnings.last().map(|w| w.loc.clone()).unwrap_or(Loc { file: String::new(), line: 0 });
            self.warnings.push(Warning::new(&loc, format!("{} more preprocessor warnings not shown", self.dropped)));
        }
        Ok((nodes, self.warnings))
    }

    fn warn(&mut self, loc: &Loc, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning::new(loc, msg));
        } else {
            self.dropped += 1;
        }
    }
}

/// Parse a keepalived configuration file and everything it includes.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> Result<(Vec<Node>, Vec<Warning>), ParseError> {
    let mut r = Reader::new(opts, true);
    let text = read_bounded(path, None, &mut r.budget)?;
    r.read(path, &text)?;
    r.finish()
}

/// Parse configuration text as if it were the file `name`; includes are read from disk
/// relative to `name` (used by tests).
pub fn parse_str(name: &Path, text: &str, opts: &ParseOptions) -> Result<(Vec<Node>, Vec<Warning>), ParseError> {
    let mut r = Reader::new(opts, true);
    r.read(name, text)?;
    r.finish()
}

/// Parse configuration text without any I/O: `include` lines are reported, not read.
/// The pure entry point (fuzzed by fuzz/fuzz_targets/keepalived_conf.rs).
pub fn parse_text(name: &Path, text: &str, opts: &ParseOptions) -> Result<(Vec<Node>, Vec<Warning>), ParseError> {
    let mut r = Reader::new(opts, false);
    r.read(name, text)?;
    r.finish()
}

impl Reader<'_> {
    fn read(&mut self, path: &Path, text: &str) -> Result<(), ParseError> {
        let canon = if self.follow_includes { path.canonicalize().unwrap_or_else(|_| path.to_path_buf()) } else { path.to_path_buf() };
        self.stack.push(canon);
        let file = path.display().to_string();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let raw: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < raw.len() {
            let loc = Loc { file: file.clone(), line: i + 1 };
            if raw[i].contains('\0') {
                return Err(ParseError::Binary(loc));
            }
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
                if line.len() > MAX_LINE {
                    return Err(ParseError::LineTooLong(loc));
                }
            }
            if line.len() > MAX_LINE {
                return Err(ParseError::LineTooLong(loc));
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
            let what = shown(body.split(['(', ' ', '\t']).next().unwrap_or("~"));
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
            if self.lines.len() >= MAX_STATEMENTS {
                return Err(ParseError::TooManyStatements(loc.clone()));
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
                    let id = shown(id);
                    self.warn(loc, format!("line for config-id '{id}' skipped (no config-id given: use --config-id or --pair)"));
                }
                negate
            }
        };
        keep.then(|| rest.trim_start().to_string())
    }

    fn include(&mut self, loc: &Loc, dir: &Path, pattern: &str) -> Result<(), ParseError> {
        let pattern = unquote(pattern);
        if !self.follow_includes {
            self.warn(loc, format!("include '{}' not read (no file access here)", shown(&pattern)));
            return Ok(());
        }
        let full = if Path::new(&pattern).is_absolute() { PathBuf::from(&pattern) } else { dir.join(&pattern) };
        let mut files = Vec::new();
        let mut patterns = Vec::new();
        expand_braces(&full.display().to_string(), &mut patterns).ok_or_else(|| ParseError::TooManyPatterns(loc.clone()))?;
        for p in patterns {
            files.extend(glob(&p));
        }
        if files.is_empty() {
            // keepalived's plain `include` does not fail on a missing file either; say so.
            // The pattern is written in the including file, not read from a foreign one.
            self.warn(loc, format!("include '{pattern}' matches no file"));
        }
        for f in files {
            let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
            if let Some(pos) = self.stack.iter().position(|p| *p == canon) {
                let chain: Vec<String> = self.stack[pos..].iter().chain(std::iter::once(&canon)).map(|p| p.display().to_string()).collect();
                return Err(ParseError::IncludeLoop(loc.clone(), chain.join(" -> ")));
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                return Err(ParseError::IncludeDepth(loc.clone(), MAX_INCLUDE_DEPTH));
            }
            let text = read_bounded(&f, Some(loc), &mut self.budget)?;
            self.read(&f, &text)?;
        }
        Ok(())
    }

    /// Replace `$NAME` (followed by whitespace or end) and `${NAME}`; undefined names stay.
    /// Bounded: at most MAX_ROUNDS rounds, and the line never grows past MAX_LINE bytes
    /// (a dozen parameters each naming the previous twice would otherwise need gigabytes).
    fn substitute(&self, loc: &Loc, dir: &Path, s: &str) -> Result<String, ParseError> {
        let mut cur = s.to_string();
        for _ in 0..MAX_ROUNDS {
            let next = self.substitute_once(dir, &cur).ok_or_else(|| ParseError::ExpansionTooLarge(loc.clone()))?;
            if next == cur {
                return Ok(cur);
            }
            cur = next;
        }
        Err(ParseError::Recursion(loc.clone()))
    }

    /// One round of substitution; `None` when the result would exceed MAX_LINE.
    fn substitute_once(&self, dir: &Path, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                if b.get(i + 1) == Some(&b'{') {
                    if let Some(end) = s[i + 2..].find('}') {
                        let name = &s[i + 2..i + 2 + end];
                        if let Some(v) = self.lookup(dir, name) {
                            if out.len() + v.len() > MAX_LINE {
                                return None;
                            }
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
                    if j > start
                        && ends_ok
                        && let Some(v) = self.lookup(dir, &s[start..j])
                    {
                        if out.len() + v.len() > MAX_LINE {
                            return None;
                        }
                        out.push_str(&v);
                        i = j;
                        continue;
                    }
                }
            }
            let Some(ch) = s[i..].chars().next() else { break };
            out.push(ch);
            i += ch.len_utf8();
        }
        (out.len() <= MAX_LINE).then_some(out)
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
        for (t, tok) in toks.into_iter().enumerate() {
            // keepalived also takes a block's `{` at the start of the next line (its parser's
            // "bob_needed"): the statement before, if it has no block yet, owns it.
            if t == 0 && matches!(tok, Tok::Open) {
                let level = &mut stack.last_mut().unwrap().0;
                if level.last().is_some_and(|n| n.block.is_none()) {
                    pending = level.pop();
                }
            }
            match tok {
                Tok::Word(w) => match &mut pending {
                    Some(n) => n.args.push(w),
                    None => {
                        pending = Some(Node { key: w, args: Vec::new(), block: None, loc: line.loc.clone(), text: clip(line.text.trim()) })
                    }
                },
                Tok::Open => {
                    let Some(owner) = pending.take() else {
                        return Err(ParseError::BareOpen(line.loc.clone()));
                    };
                    // Bounded, so that nothing walking the tree (or dropping it) recurses deeply.
                    if stack.len() > MAX_DEPTH {
                        return Err(ParseError::TooDeep(line.loc.clone()));
                    }
                    stack.push((Vec::new(), Some(owner)));
                }
                Tok::Close => {
                    if let Some(n) = pending.take() {
                        stack.last_mut().unwrap().0.push(n);
                    }
                    if stack.len() == 1 {
                        return Err(ParseError::UnexpectedClose(line.loc.clone()));
                    }
                    let Some((children, Some(mut owner))) = stack.pop() else {
                        return Err(ParseError::UnexpectedClose(line.loc.clone()));
                    };
                    owner.block = Some(children);
                    stack.last_mut().unwrap().0.push(owner);
                }
            }
        }
        if let Some(n) = pending.take() {
            stack.last_mut().unwrap().0.push(n);
        }
    }
    if stack.len() > 1
        && let Some((_, Some(owner))) = stack.pop()
    {
        return Err(ParseError::Unclosed(owner.loc));
    }
    Ok(stack.pop().map(|s| s.0).unwrap_or_default())
}

/// A source line kept for comments, cut to MAX_TEXT characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{} ...", &s[..i]),
        None => s.to_string(),
    }
}

/// Expand csh-style braces: `a{b,c}d` -> `abd`, `acd`. `None` past MAX_PATTERNS results
/// (each group multiplies them).
fn expand_braces(s: &str, out: &mut Vec<String>) -> Option<()> {
    let Some(open) = s.find('{') else {
        if out.len() >= MAX_PATTERNS {
            return None;
        }
        out.push(s.to_string());
        return Some(());
    };
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
    let Some(close) = close else {
        if out.len() >= MAX_PATTERNS {
            return None;
        }
        out.push(s.to_string());
        return Some(());
    };
    let (pre, post) = (&s[..open], &s[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    for w in bounds.windows(2) {
        let alt = &s[w[0] + 1..w[1]];
        // Each alternative removes one brace pair, so the recursion depth is bounded by
        // the number of pairs, and the count check stops it early.
        expand_braces(&format!("{pre}{alt}{post}"), out)?;
    }
    Some(())
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
            let mut names: Vec<String> = rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
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
    // Whatever exists: a match that is not a regular file is refused when it is read.
    found.into_iter().filter(|p| p.exists()).collect()
}

/// One pattern element: `?`, `[set]`, a literal byte, or `*`.
enum Pat<'a> {
    Any,
    Set(bool, &'a [u8]),
    Byte(u8),
    Star,
}

fn pattern(p: &[u8]) -> Vec<Pat<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => out.push(Pat::Star),
            b'?' => out.push(Pat::Any),
            b'[' => {
                if let Some(len) = p[i..].iter().position(|&x| x == b']') {
                    let set = &p[i + 1..i + len];
                    out.push(match set.first() {
                        Some(b'!' | b'^') => Pat::Set(true, &set[1..]),
                        _ => Pat::Set(false, set),
                    });
                    i += len + 1;
                    continue;
                }
                out.push(Pat::Byte(b'['));
            }
            b => out.push(Pat::Byte(b)),
        }
        i += 1;
    }
    out
}

fn one(p: &Pat, c: u8) -> bool {
    match p {
        Pat::Any => true,
        Pat::Byte(b) => *b == c,
        Pat::Set(neg, set) => {
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
            hit != *neg
        }
        Pat::Star => true,
    }
}

/// fnmatch(3) for one path component, without recursion: the classic greedy match that
/// backtracks only to the last `*` (time O(pattern x name), whatever the pattern).
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let p = pattern(p);
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(Pat::Star) => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(q) if one(q, s[si]) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|q| matches!(q, Pat::Star))
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
    fn a_block_may_open_on_the_next_line() {
        // keepalived's parser takes `{` at the start of the line after its keyword.
        let n = parse("vrrp_script chk\n{\n  script x\n}\nTCP_CHECK\n  {\n  connect_timeout 3 }\n");
        assert_eq!(n.len(), 2);
        assert_eq!((n[0].key.as_str(), n[0].children()[0].key.as_str()), ("vrrp_script", "script"));
        assert_eq!((n[1].key.as_str(), n[1].children()[0].args[0].as_str()), ("TCP_CHECK", "3"));
        // Not after a statement that has its block already, nor at the start.
        let bad = |t: &str| parse_str(Path::new("t.conf"), t, &ParseOptions::default()).unwrap_err().to_string();
        assert!(bad("a { b }\n{\n}\n").contains("'{' without a keyword before it"));
        assert!(bad("{\n}\n").contains("'{' without a keyword before it"));
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
        let mut v = Vec::new();
        expand_braces("x{a,b}y", &mut v).unwrap();
        assert_eq!(v, vec!["xay", "xby"]);
        assert!(wildcard(b"*a*b*", b"xxaxxbxx"));
        assert!(!wildcard(b"*a*b*c", b"xxaxxbxx"));
        assert!(wildcard(b"a[!0-9]c", b"abc") && !wildcard(b"a[!0-9]c", b"a1c"));
        let long: Vec<u8> = b"*a".repeat(2000);
        assert!(!wildcard(&long, &[b'a'; 200]));
    }

    #[test]
    fn bombs_are_errors_not_crashes() {
        let deep = "a {\n".repeat(150_000);
        let e = parse_text(Path::new("t.conf"), &deep, &ParseOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), format!("t.conf:{}: blocks nested deeper than 64 levels", MAX_DEPTH + 1));
        let braces = "{".repeat(150_000);
        assert!(parse_text(Path::new("t.conf"), &format!("a {braces}"), &ParseOptions::default()).is_err());
        let mut bomb = String::from("$A0=xxxxxxxx xxxxxxxx\n");
        for i in 1..13 {
            bomb.push_str(&format!("$A{i}=$A{} $A{}\n", i - 1, i - 1));
        }
        bomb.push_str("x $A12\n");
        let e = parse_text(Path::new("t.conf"), &bomb, &ParseOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), format!("t.conf:14: parameter substitution grows the line past {MAX_LINE} bytes"));
        let mut v = Vec::new();
        assert!(expand_braces(&"{a,b}".repeat(40), &mut v).is_none());
    }
}
