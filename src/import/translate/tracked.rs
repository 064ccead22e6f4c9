//! track_file / vrrp_track_file (-> `lvsd.track.file`), vrrp_track_process (->
//! `lvsd.track.process`), and an instance's `track_file` and `track_process` blocks, as
//! keepalived 2.2.7 reads them (trackers/track_file.c, vrrp/vrrp_track.c).

use super::*;
use crate::import::lua::{self, s};

/// A tracked file or process as defined at the top level.
pub(super) struct TrackDef {
    /// The Lua local (and lvsd track name) it is written as.
    local: String,
    body: Vec<Entry>,
    weight: i64,
    reverse: bool,
}

/// What an instance's tracking block names.
#[derive(Clone, Copy)]
pub(super) enum Tracked {
    File,
    Process,
}

impl Tracked {
    /// keepalived's weight when none is given: 1 for a file, 0 for a process.
    fn default_weight(self) -> i64 {
        match self {
            Tracked::File => 1,
            Tracked::Process => 0,
        }
    }
}

/// A track's weight (unless the default) and `reverse`, as fields.
fn push_weight(body: &mut Vec<Entry>, weight: i64, default: i64, reverse: bool, loc: &Loc) {
    if weight != default {
        body.push(field("weight", Value::Int(weight), loc));
    }
    if reverse {
        body.push(field("reverse", Value::Bool(true), loc));
    }
}

impl Tx<'_> {
    /// `track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }`.
    pub(super) fn track_file(&mut self, n: &Node) -> R<Item> {
        let name = arg(n, 0)?.to_string();
        if n.key == "vrrp_track_file" {
            self.warn(&n.loc, "keyword 'vrrp_track_file' is deprecated (keepalived 2.x: 'track_file'); translated as lvsd.track.file");
        }
        // A vrrp_script of the same name keeps it: lvsd names an instance's tracks apart.
        let local = if self.scripts.contains_key(&name) { format!("{name}_file") } else { name.clone() };
        let mut body = vec![field("name", s(&local), &n.loc)];
        let (mut path, mut weight, mut reverse) = (None::<String>, 1, false);
        for c in n.children() {
            let r = (|| -> R<()> {
                match c.key.as_str() {
                    // "File already set for track file NAME - ignoring".
                    "file" if path.is_some() => {
                        self.warn(&c.loc, format!("track_file {name}: file already set; keepalived ignores this one"))
                    }
                    "file" => {
                        let p = arg(c, 0)?;
                        // keepalived runs in / (it daemonizes): a relative path is from there.
                        let abs = if p.starts_with('/') { p.to_string() } else { format!("/{p}") };
                        if abs != p {
                            self.warn(
                                &c.loc,
                                format!("track_file {name}: relative path '{p}' is read from / by keepalived: translated as \"{abs}\""),
                            );
                        }
                        body.push(field("path", s(&abs), &c.loc));
                        path = Some(abs);
                    }
                    // "Weight already set for track file NAME - ignoring" (only a weight other
                    // than the default 1 counts as set).
                    "weight" if weight != 1 => {
                        self.warn(&c.loc, format!("track_file {name}: weight already set; keepalived ignores this one"))
                    }
                    "weight" => {
                        weight = match int(c, arg(c, 0)?, -254, 254) {
                            Ok(w) => w,
                            Err(_) => {
                                self.warn(
                                    &c.loc,
                                    format!("track_file {name}: weight '{}' is not in -254..254; keepalived uses 1", shown(&c.args[0])),
                                );
                                1
                            }
                        };
                        match c.args.get(1).map(String::as_str) {
                            None => {}
                            Some("reverse") => reverse = true,
                            Some(other) => self.warn(
                                &c.loc,
                                format!("track_file {name}: unknown weight option '{}'; keepalived ignores it", shown(other)),
                            ),
                        }
                    }
                    "init_file" => self.init_file(c, &name, &mut body),
                    _ => self.other(c, "track_file", &[], &mut body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        if path.is_none() {
            // "No file set for track_file NAME - ignoring".
            let mut note = Vec::new();
            self.unsupported(n, "no file line: keepalived ignores it too", &mut note);
            return Ok(Item { kind: Kind::Note, name, loc: n.loc.clone(), pre: vec![], body: note, only_on: None });
        }
        self.define(Tracked::File, n, name, TrackDef { local, body, weight, reverse })
    }

    /// Record a defined track (a name defined twice is an error) and write it out.
    fn define(&mut self, of: Tracked, n: &Node, name: String, mut def: TrackDef) -> R<Item> {
        push_weight(&mut def.body, def.weight, of.default_weight(), def.reverse, &n.loc);
        let (defs, kind) = match of {
            Tracked::File => (&mut self.track_files, Kind::TrackFile),
            Tracked::Process => (&mut self.track_processes, Kind::TrackProcess),
        };
        if defs.contains_key(&name) {
            return Err(TranslateError::Duplicate(n.loc.clone(), n.key.clone(), shown(&name), n.loc.clone()));
        }
        let item = Item { kind, name: def.local.clone(), loc: n.loc.clone(), pre: vec![], body: def.body.clone(), only_on: None };
        defs.insert(name, def);
        Ok(item)
    }

    /// `vrrp_track_process NAME { process PROG [ARGS...]; param_match [initial|partial];
    /// full_command; quorum N; quorum_max N; weight N [reverse] }` (vrrp_parser.c,
    /// vrrp_tprocess_*_handler).
    pub(super) fn track_process(&mut self, n: &Node) -> R<Item> {
        let name = arg(n, 0)?.to_string();
        // Apart from the scripts' and files' names (an instance's tracks are named apart).
        let taken = |x: &str| self.scripts.contains_key(x) || self.track_files.values().any(|t| t.local == x);
        let local = if taken(&name) { format!("{name}_process") } else { name.clone() };
        let mut body = vec![field("name", s(&local), &n.loc)];
        let (mut have_process, mut weight, mut reverse) = (false, 0, false);
        let (mut quorum, mut quorum_max) = (1i64, None::<i64>);
        let (mut terminate, mut fork) = (None, None);
        for c in n.children() {
            let r = (|| -> R<()> {
                let k = c.key.as_str();
                match k {
                    "process" if have_process => {
                        self.warn(&c.loc, format!("vrrp_track_process {name}: process already set; keepalived ignores this one"))
                    }
                    "process" => {
                        have_process = true;
                        body.push(field("process", s(arg(c, 0)?), &c.loc));
                        if c.args.len() > 1 {
                            body.push(field("params", Value::List(c.args[1..].iter().map(|a| s(a)).collect()), &c.loc));
                        }
                    }
                    "param_match" => match c.args.first().map(String::as_str) {
                        None => body.push(field("param_match", s("exact"), &c.loc)),
                        Some(m @ ("initial" | "partial")) => body.push(field("param_match", s(m), &c.loc)),
                        Some(other) => self.warn(
                            &c.loc,
                            format!("vrrp_track_process {name}: param_match '{}' is not valid; keepalived ignores it", shown(other)),
                        ),
                    },
                    "full_command" => body.push(field("full_command", Value::Bool(true), &c.loc)),
                    "quorum" => match int(c, arg(c, 0)?, 1, 65535) {
                        Ok(q) if quorum_max.is_none_or(|m| q <= m) => quorum = q,
                        _ => self.warn(
                            &c.loc,
                            format!("vrrp_track_process {name}: quorum '{}' is not valid; keepalived ignores it", shown(&c.args[0])),
                        ),
                    },
                    "quorum_max" => match int(c, arg(c, 0)?, 0, 65535) {
                        // quorum_max 0 (with no quorum given) tracks that none runs.
                        Ok(0) if quorum <= 1 => {
                            quorum_max = Some(0);
                            quorum = 0;
                        }
                        Ok(m) if m >= quorum => quorum_max = Some(m),
                        _ => self.warn(
                            &c.loc,
                            format!("vrrp_track_process {name}: quorum_max '{}' is not valid; keepalived ignores it", shown(&c.args[0])),
                        ),
                    },
                    "weight" if weight != 0 => {
                        self.warn(&c.loc, format!("vrrp_track_process {name}: weight already set; keepalived ignores this one"))
                    }
                    "weight" => match int(c, arg(c, 0)?, -254, 254) {
                        Ok(w) => {
                            weight = w;
                            reverse = c.args.get(1).map(String::as_str) == Some("reverse");
                        }
                        Err(_) => self.warn(
                            &c.loc,
                            format!("vrrp_track_process {name}: weight '{}' is not in -254..254; keepalived ignores it", shown(&c.args[0])),
                        ),
                    },
                    // keepalived hears of each process start and end at once and waits this
                    // long before counting it (`delay` sets both); lvsd counts each second, its
                    // fall and rise do the waiting (below).
                    "delay" | "fork_delay" | "terminate_delay" => match arg(c, 0)?.parse::<f64>() {
                        Ok(d) if (0.000_001..=3600.0).contains(&d) => {
                            if k != "fork_delay" {
                                terminate = Some((d, c.loc.clone()));
                            }
                            if k != "terminate_delay" {
                                fork = Some((d, c.loc.clone()));
                            }
                        }
                        _ => self.warn(
                            &c.loc,
                            format!(
                                "vrrp_track_process {name}: {k} '{}' is not 0.000001..3600 seconds; keepalived ignores it",
                                shown(&c.args[0])
                            ),
                        ),
                    },
                    _ => self.other(c, "vrrp_track_process", &[], &mut body)?,
                }
                Ok(())
            })();
            self.keep(r);
        }
        if !have_process {
            // "track process 'NAME' process name not specified".
            let mut note = Vec::new();
            self.unsupported(n, "no process line: keepalived ignores it too", &mut note);
            return Ok(Item { kind: Kind::Note, name, loc: n.loc.clone(), pre: vec![], body: note, only_on: None });
        }
        if quorum != 1 {
            body.push(field("quorum", Value::Int(quorum), &n.loc));
        }
        if let Some(m) = quorum_max {
            body.push(field("quorum_max", Value::Int(m), &n.loc));
        }
        // Counted once a second (the track's interval): a change seen then that lasts `fall`
        // (`rise`) counts in all is taken, which is about the delay later.
        for (key, delay) in [("fall", terminate), ("rise", fork)] {
            if let Some((d, loc)) = delay {
                let times = (1.0 + d.ceil()).min(1000.0) as i64;
                let what = if key == "fall" { "terminate_delay" } else { "fork_delay" };
                body.push(note_field(key, Value::Int(times), &loc, &format!("keepalived's {what} {d} s, counted each second")));
            }
        }
        self.define(Tracked::Process, n, name, TrackDef { local, body, weight, reverse })
    }

    /// `init_file [VALUE] [overwrite]`: keepalived writes VALUE (0) into the file when it is
    /// missing (always, with overwrite). A missing file already reads as 0, so creating it
    /// with 0 changes nothing; anything else lvsd does not do.
    fn init_file(&mut self, c: &Node, name: &str, body: &mut Vec<Entry>) {
        let value: i64 = c.args.iter().find_map(|a| a.parse().ok()).unwrap_or(0);
        if value == 0 && !c.args.iter().any(|a| a == "overwrite") {
            body.push(Entry::Comment(format!("keepalived: {} (a missing file reads as 0 in lvsd too)", c.text)));
        } else {
            self.unsupported(c, &format!("lvsd does not write track_file {name}'s file"), body);
        }
    }

    /// An instance's `track_file` or `track_process` block (`NAME [weight N
    /// [reverse|noreverse]]` each): each into the instance's `track` list, a copy of the
    /// defined track where the weight differs.
    pub(super) fn instance_tracks(&mut self, n: &Node, instance: &str, of: Tracked, seen: &mut Vec<String>) -> Vec<Value> {
        let (keyword, label, ctor) = match of {
            Tracked::File => ("track_file", "track file", "lvsd.track.file"),
            Tracked::Process => ("track_process", "track process", "lvsd.track.process"),
        };
        let mut list = Vec::new();
        for a in n.children() {
            let name = a.key.as_str();
            let defs = match of {
                Tracked::File => &self.track_files,
                Tracked::Process => &self.track_processes,
            };
            let Some(tf) = defs.get(name) else {
                self.warn(&a.loc, format!("vrrp_instance {instance}: {label} {} not found; keepalived ignores it", shown(name)));
                continue;
            };
            let (local, mut body, defined) = (tf.local.clone(), tf.body.clone(), (tf.weight, tf.reverse));
            let (mut weight, mut reverse) = defined;
            if seen.iter().any(|x| *x == format!("{keyword} {name}")) {
                self.warn(&a.loc, format!("vrrp_instance {instance}: duplicate {keyword} {}; keepalived ignores it", shown(name)));
                continue;
            }
            let ignored = |tx: &mut Self, why: &str| {
                tx.warn(&a.loc, format!("vrrp_instance {instance}: {keyword} {}: {why}; keepalived ignores it", shown(name)))
            };
            match (a.args.first().map(String::as_str), a.args.get(1), a.args.get(2).map(String::as_str)) {
                (None, ..) => {}
                (Some("weight"), None, _) => {
                    ignored(self, "weight without a value");
                    continue;
                }
                (Some("weight"), Some(w), opt) => {
                    match int(a, w, -254, 254) {
                        Ok(w) => weight = w,
                        Err(_) => self.warn(
                            &a.loc,
                            format!(
                                "vrrp_instance {instance}: {keyword} {}: weight '{}' is not in -254..254; keepalived uses the defined one",
                                shown(name),
                                shown(w)
                            ),
                        ),
                    }
                    match opt {
                        None => {}
                        Some("reverse") => reverse = true,
                        Some("noreverse") => reverse = false,
                        Some(other) => {
                            ignored(self, &format!("unknown weight option '{}'", shown(other)));
                            continue;
                        }
                    }
                }
                (Some(other), ..) => {
                    ignored(self, &format!("unknown option '{}'", shown(other)));
                    continue;
                }
            }
            seen.push(format!("{keyword} {name}"));
            if (weight, reverse) == defined {
                list.push(Value::Ident(lua::ident(&local)));
            } else {
                body.retain(|e| !matches!(e, Entry::Field(f) if f.key == "weight" || f.key == "reverse"));
                push_weight(&mut body, weight, of.default_weight(), reverse, &a.loc);
                list.push(Value::Call(ctor.into(), body));
            }
        }
        list
    }
}
