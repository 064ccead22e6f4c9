//! A small document model of the policy file the importer writes, and its renderer.
//!
//! Translation builds this model rather than text so that the pair merge can compare
//! two directors field by field and the output stays consistently formatted.

use super::Loc;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Global,
    /// `local NAME = lvsd.track.exec { ... }`, shared by the VRRP instances that track it.
    Track,
    /// `local NAME = lvsd.track.file { ... }`, the same for a tracked file.
    TrackFile,
    /// `local NAME = lvsd.track.process { ... }`, and for a tracked process.
    TrackProcess,
    Vrrp,
    SyncGroup,
    /// `lvsd.sync_daemon { ... }` (the IPVS connection sync daemon).
    SyncDaemon,
    Service,
    /// Only comments (an untranslated top-level block).
    Note,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    pub loc: Loc,
    /// Comment lines written above the item.
    pub pre: Vec<String>,
    pub body: Vec<Entry>,
    /// Pair form: the item exists only on this node.
    pub only_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Field(Field),
    /// A `--` comment line in place (e.g. `keepalived: ... (not translated: ...)`).
    Comment(String),
}

#[derive(Debug, Clone)]
pub struct Field {
    pub key: String,
    pub value: Value,
    /// Where the keepalived keyword was; not part of equality.
    pub loc: Option<Loc>,
    /// A short trailing comment.
    pub note: Option<String>,
}

impl PartialEq for Field {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key && self.value == o.value && self.note == o.note
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    /// A number kept as written (fractions such as `0.5`).
    Num(String),
    Bool(bool),
    List(Vec<Value>),
    Table(Vec<Entry>),
    /// `lvsd.check.tcp { ... }`
    Call(String, Vec<Entry>),
    /// A Lua identifier (a `local` defined earlier).
    Ident(String),
    /// Pair form: a value that differs per node, `node == "a" and X or Y`.
    PerNode(Vec<(String, Value)>),
    /// `key = value` among a list's items: `{ "/bin/check", user = "nobody" }`.
    Named(String, Box<Value>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Doc {
    pub items: Vec<Item>,
}

pub fn field(key: &str, value: Value, loc: &Loc) -> Entry {
    Entry::Field(Field { key: key.to_string(), value, loc: Some(loc.clone()), note: None })
}

pub fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

/// Render the document as a policy file. `pair` adds `local node = lvsd.node`.
pub fn render(doc: &Doc, header: &str, pair: Option<()>) -> String {
    let mut out = String::new();
    out.push_str(header);
    out.push('\n');
    out.push_str("-- Settings equal to keepalived's defaults are omitted.\n");
    if pair.is_some() {
        out.push_str("\nlocal node = lvsd.node\n");
    }
    let mut last_kind: Option<&Kind> = None;
    for item in &doc.items {
        // A blank line between items, a section comment when the kind changes.
        out.push('\n');
        if last_kind != Some(&item.kind)
            && let Some(title) = section_title(&item.kind)
        {
            out.push_str(&format!("-- {title}\n"));
        }
        last_kind = Some(&item.kind);
        let mut ind = 0;
        if let Some(n) = &item.only_on {
            // A `local` inside the `if` would be out of scope for the instances using it.
            if matches!(item.kind, Kind::Track | Kind::TrackFile | Kind::TrackProcess) {
                out.push_str(&format!("local {}\n", ident(&item.name)));
            }
            out.push_str(&format!("if node == {} then\n", quote(n)));
            ind = 1;
        }
        for c in &item.pre {
            out.push_str(&format!("{}-- {}\n", pad(ind), c));
        }
        let head = match item.kind {
            Kind::Global => Some("lvsd.global ".to_string()),
            Kind::Track if item.only_on.is_some() => Some(format!("{} = lvsd.track.exec ", ident(&item.name))),
            Kind::Track => Some(format!("local {} = lvsd.track.exec ", ident(&item.name))),
            Kind::TrackFile if item.only_on.is_some() => Some(format!("{} = lvsd.track.file ", ident(&item.name))),
            Kind::TrackFile => Some(format!("local {} = lvsd.track.file ", ident(&item.name))),
            Kind::TrackProcess if item.only_on.is_some() => Some(format!("{} = lvsd.track.process ", ident(&item.name))),
            Kind::TrackProcess => Some(format!("local {} = lvsd.track.process ", ident(&item.name))),
            Kind::Vrrp => Some(format!("lvsd.vrrp {} ", quote(&item.name))),
            Kind::SyncGroup => Some(format!("lvsd.sync_group {} ", quote(&item.name))),
            Kind::SyncDaemon => Some("lvsd.sync_daemon ".to_string()),
            Kind::Service => Some(format!("lvsd.service {} ", quote(&item.name))),
            Kind::Note => None,
        };
        if let Some(head) = head {
            out.push_str(&pad(ind));
            out.push_str(&head);
            out.push_str(&table(&item.body, ind, true));
            out.push('\n');
        } else {
            for e in &item.body {
                if let Entry::Comment(c) = e {
                    out.push_str(&format!("{}-- {}\n", pad(ind), c));
                }
            }
        }
        if item.only_on.is_some() {
            out.push_str("end\n");
        }
    }
    out
}

fn section_title(k: &Kind) -> Option<&'static str> {
    match k {
        Kind::Global => Some("Global settings (keepalived global_defs)"),
        Kind::Track => Some("Tracking scripts (keepalived vrrp_script)"),
        Kind::TrackFile => Some("Tracked files (keepalived track_file)"),
        Kind::TrackProcess => Some("Tracked processes (keepalived vrrp_track_process)"),
        Kind::Vrrp => Some("VRRP instances"),
        Kind::SyncGroup => Some("Sync groups"),
        Kind::SyncDaemon => Some("IPVS connection sync daemon"),
        Kind::Service => Some("Virtual services (keepalived virtual_server)"),
        Kind::Note => None,
    }
}

fn pad(n: usize) -> String {
    "  ".repeat(n)
}

/// A Lua identifier for a keepalived name (script names may contain '-' or '.').
pub fn ident(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if s.is_empty() || s.as_bytes()[0].is_ascii_digit() || LUA_KEYWORDS.contains(&s.as_str()) {
        s.insert(0, '_');
    }
    s
}

const LUA_KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
    "return", "then", "true", "until", "while",
];

pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key(k: &str) -> String {
    let ok = !k.is_empty()
        && !k.as_bytes()[0].is_ascii_digit()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !LUA_KEYWORDS.contains(&k);
    if ok { k.to_string() } else { format!("[{}]", quote(k)) }
}

/// Render a table body. Short tables without comments stay on one line.
fn table(entries: &[Entry], ind: usize, top: bool) -> String {
    let has_comment = entries.iter().any(|e| matches!(e, Entry::Comment(_)) || matches!(e, Entry::Field(f) if f.note.is_some()));
    if !top && !has_comment {
        let parts: Vec<String> = entries
            .iter()
            .map(|e| match e {
                Entry::Field(f) => format!("{} = {}", key(&f.key), value(&f.value, ind + 1)),
                Entry::Comment(_) => unreachable!(),
            })
            .collect();
        let one = if parts.is_empty() { "{}".to_string() } else { format!("{{ {} }}", parts.join(", ")) };
        if !one.contains('\n') && one.len() + ind * 2 < 90 {
            return one;
        }
    }
    let mut out = String::from("{\n");
    for e in entries {
        match e {
            Entry::Field(f) => {
                out.push_str(&format!("{}{} = {},", pad(ind + 1), key(&f.key), value(&f.value, ind + 1)));
                if let Some(n) = &f.note {
                    out.push_str(&format!(" -- {n}"));
                }
                out.push('\n');
            }
            Entry::Comment(c) => out.push_str(&format!("{}-- {}\n", pad(ind + 1), c)),
        }
    }
    out.push_str(&pad(ind));
    out.push('}');
    out
}

fn value(v: &Value, ind: usize) -> String {
    match v {
        Value::Str(s) => quote(s),
        Value::Int(i) => i.to_string(),
        Value::Num(n) => n.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Ident(i) => i.clone(),
        Value::Named(k, v) => format!("{k} = {}", value(v, ind)),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(|x| value(x, ind + 1)).collect();
            let one = if parts.is_empty() { "{}".to_string() } else { format!("{{ {} }}", parts.join(", ")) };
            if !one.contains('\n') && one.len() + ind * 2 < 90 {
                return one;
            }
            let mut out = String::from("{\n");
            for p in parts {
                out.push_str(&format!("{}{},\n", pad(ind + 1), p));
            }
            out.push_str(&pad(ind));
            out.push('}');
            out
        }
        Value::Table(entries) => table(entries, ind, false),
        Value::Call(f, entries) => format!("{} {}", f, table(entries, ind, false)),
        Value::PerNode(choices) => {
            // Booleans cannot go through `and/or` (false would fall through): compare instead.
            if choices.len() == 2
                && let (Value::Bool(a), Value::Bool(_)) = (&choices[0].1, &choices[1].1)
            {
                let op = if *a { "==" } else { "~=" };
                return format!("node {} {}", op, quote(&choices[0].0));
            }
            let mut out = String::new();
            for (i, (n, x)) in choices.iter().enumerate() {
                if i + 1 == choices.len() {
                    out.push_str(&value(x, ind));
                } else {
                    out.push_str(&format!("node == {} and {} or ", quote(n), value(x, ind)));
                }
            }
            out
        }
    }
}
