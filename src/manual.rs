//! Manual pages and shell completions, generated rather than written: the command pages and
//! the completions from the clap definitions (`lvsd generate man|completions DIR`), and
//! lvsd-policy(5) from the README's "Writing a policy" and "Policy API reference" sections.
//!
//! The README is the single source of the policy reference: its tables are rendered into the
//! man page here, so the two cannot drift. The README is compiled in (it is ours, not outside
//! input); a README without those sections is an error, caught by the man page test.

use clap::Command;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use roff::{Inline, Roff, bold, italic, roman};
use std::path::{Path, PathBuf};

/// The README sections that make up lvsd-policy(5), in order.
pub const POLICY_SECTIONS: [&str; 2] = ["Writing a policy", "Policy API reference"];

/// The section of the command pages: lvsd is installed in /usr/sbin, a system administration
/// command (man-pages(7), Debian policy 12.1).
pub const SECTION: &str = "8";

#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("{path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the README has no \"## {0}\" section for lvsd-policy(5)")]
    MissingSection(&'static str),
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<PathBuf, ManualError> {
    std::fs::write(&path, bytes).map_err(|source| ManualError::Write { path: path.clone(), source })?;
    Ok(path)
}

fn create_dir(dir: &Path) -> Result<(), ManualError> {
    std::fs::create_dir_all(dir).map_err(|source| ManualError::Write { path: dir.to_path_buf(), source })
}

/// Write lvsd.8, one lvsd-SUB.8 per visible subcommand (nested ones as lvsd-SUB-SUB.8) and
/// lvsd-policy.5 into `dir`; the files written.
pub fn man_pages(cmd: &Command, dir: &Path) -> Result<Vec<PathBuf>, ManualError> {
    create_dir(dir)?;
    let mut cmd = cmd.clone();
    // Building gives subcommands their display names ("lvsd-check") and propagated flags.
    cmd.build();
    let mut written = Vec::new();
    command_pages(&cmd, dir, &mut written)?;
    written.push(write(dir.join("lvsd-policy.5"), policy_page()?.as_bytes())?);
    Ok(written)
}

fn command_pages(cmd: &Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), ManualError> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section(SECTION)
        .date(crate::build_info::DATE)
        .source(format!("lvsd {}", crate::build_info::VERSION))
        .manual("lvsd manual");
    let mut buf = Vec::new();
    man.render(&mut buf).map_err(|source| ManualError::Write { path: dir.join(&name), source })?;
    let page = ascii_roff(&String::from_utf8_lossy(&buf));
    written.push(write(dir.join(format!("{name}.{SECTION}")), page.as_bytes())?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        command_pages(sub, dir, written)?;
    }
    Ok(())
}

/// The shells completions are written for, and each one's file name (as the Debian packages
/// of bash-completion, zsh and fish look them up).
pub const SHELLS: [(clap_complete::Shell, &str); 3] =
    [(clap_complete::Shell::Bash, "lvsd"), (clap_complete::Shell::Zsh, "_lvsd"), (clap_complete::Shell::Fish, "lvsd.fish")];

/// Write the bash, zsh and fish completions into `dir`; the files written.
pub fn completions(cmd: &Command, dir: &Path) -> Result<Vec<PathBuf>, ManualError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for (shell, file) in SHELLS {
        let mut cmd = cmd.clone();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "lvsd", &mut buf);
        written.push(write(dir.join(file), &buf)?);
    }
    Ok(written)
}

/// The README's `## NAME` section (up to the next `## ` heading), without its heading line.
pub fn readme_section(readme: &str, name: &'static str) -> Result<String, ManualError> {
    let heading = format!("## {name}");
    let mut lines = readme.lines().skip_while(|l| l.trim_end() != heading);
    if lines.next().is_none() {
        return Err(ManualError::MissingSection(name));
    }
    let mut out = String::new();
    let mut fenced = false;
    for l in lines {
        if l.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && l.starts_with("## ") {
            break;
        }
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// lvsd-policy(5) as roff.
pub fn policy_page() -> Result<String, ManualError> {
    policy_page_from(include_str!("../README.md"))
}

pub fn policy_page_from(readme: &str) -> Result<String, ManualError> {
    let mut r = Roff::new();
    r.control("TH", ["LVSD-POLICY", "5", crate::build_info::DATE, &format!("lvsd {}", crate::build_info::VERSION), "lvsd manual"]);
    r.control("SH", ["NAME"]);
    r.text([roman("lvsd-policy - the Lua policy file of lvsd: VRRP instances, virtual and real servers, checks, hooks")]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([bold("/etc/lvsd/policy.lua")]);
    r.control("PP", []);
    r.text([bold("lvsd check"), roman(" "), italic("policy.lua")]);
    for name in POLICY_SECTIONS {
        r.control("SH", []);
        r.text([roman(name.to_uppercase())]);
        markdown(&mut r, &readme_section(readme, name)?);
    }
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([bold("/etc/lvsd/policy.lua")]);
    r.text([roman("The policy the packaged lvsd.service runs; a commented example is installed there.")]);
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("lvsd"),
        roman("(8), "),
        bold("lvsd-check"),
        roman("(8), "),
        bold("lvsd-run"),
        roman("(8), "),
        bold("keepalived.conf"),
        roman("(5)"),
    ]);
    Ok(ascii_roff(&r.render()))
}

/// Non-ASCII characters as groff's `\[uXXXX]` escapes: the page then reads the same whatever
/// input encoding man(1) assumes, and troff does not warn about it.
pub fn ascii_roff(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", c as u32));
        }
    }
    out
}

/// A table being collected: the header cells, then each row's cells.
#[derive(Default)]
struct TableRows {
    head: Vec<String>,
    rows: Vec<Vec<Vec<Inline>>>,
    in_head: bool,
}

/// Render CommonMark (with tables) as man(7) requests. Tables become tagged paragraphs, the
/// first column the tag, which reads better in a terminal than a tbl(1) grid of long cells.
fn markdown(r: &mut Roff, text: &str) {
    let mut inl: Vec<Inline> = Vec::new();
    let mut style: Vec<fn(String) -> Inline> = Vec::new();
    let mut table: Option<TableRows> = None;
    let mut code_block: Option<String> = None;
    for ev in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Heading { .. }) | Event::Start(Tag::Paragraph) | Event::Start(Tag::TableCell) => inl.clear(),
            Event::End(TagEnd::Heading(level)) => {
                r.control(if level == HeadingLevel::H2 { "SH" } else { "SS" }, []);
                r.text(std::mem::take(&mut inl));
            }
            Event::End(TagEnd::Paragraph) => {
                r.control("PP", []);
                r.text(std::mem::take(&mut inl));
            }
            Event::Start(Tag::Item) => {
                inl.clear();
            }
            Event::End(TagEnd::Item) => {
                r.control("IP", ["\\(bu", "2"]);
                r.text(std::mem::take(&mut inl));
            }
            Event::Start(Tag::CodeBlock(_)) => code_block = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => {
                let code = code_block.take().unwrap_or_default();
                r.control("PP", []);
                r.control("RS", ["4"]);
                r.control("nf", []);
                r.text([roman(code.trim_end())]);
                r.control("fi", []);
                r.control("RE", []);
            }
            Event::Start(Tag::Table(_)) => table = Some(TableRows::default()),
            Event::Start(Tag::TableHead) => {
                if let Some(t) = table.as_mut() {
                    t.in_head = true;
                }
            }
            Event::End(TagEnd::TableHead) => {
                if let Some(t) = table.as_mut() {
                    t.in_head = false;
                }
            }
            Event::Start(Tag::TableRow) => {
                if let Some(t) = table.as_mut() {
                    t.rows.push(Vec::new());
                }
            }
            Event::End(TagEnd::TableCell) => {
                let cell = std::mem::take(&mut inl);
                if let Some(t) = table.as_mut() {
                    if t.in_head {
                        t.head.push(plain(&cell));
                    } else if let Some(row) = t.rows.last_mut() {
                        row.push(cell);
                    }
                }
            }
            Event::End(TagEnd::Table) => {
                if let Some(t) = table.take() {
                    table_roff(r, t);
                }
            }
            Event::Start(Tag::Emphasis) => style.push(Inline::Italic),
            Event::Start(Tag::Strong) => style.push(Inline::Bold),
            Event::End(TagEnd::Emphasis) | Event::End(TagEnd::Strong) => {
                style.pop();
            }
            Event::Text(t) => match code_block.as_mut() {
                Some(code) => code.push_str(&t),
                None => inl.push(style.last().map_or_else(|| roman(t.to_string()), |f| f(t.to_string()))),
            },
            Event::Code(t) => inl.push(bold(t.to_string())),
            Event::SoftBreak | Event::HardBreak => inl.push(roman(" ")),
            _ => {}
        }
    }
}

fn plain(cell: &[Inline]) -> String {
    cell.iter()
        .map(|i| match i {
            Inline::Roman(s) | Inline::Bold(s) | Inline::Italic(s) => s.as_str(),
            Inline::LineBreak => " ",
        })
        .collect()
}

/// `| key | default | meaning |` rows as `.TP` entries: "key (default: D)" then the meaning;
/// a last column other than "meaning" keeps its header ("keepalived: delay_loop").
fn table_roff(r: &mut Roff, t: TableRows) {
    r.control("PP", []);
    let n = t.head.len();
    for mut row in t.rows {
        if row.is_empty() {
            continue;
        }
        row.resize(n.max(1), Vec::new());
        let mut tag = row[0].clone();
        for (i, cell) in row.iter().enumerate().take(n.saturating_sub(1)).skip(1) {
            tag.push(roman(format!(" ({}: ", t.head[i])));
            tag.extend(cell.iter().cloned());
            tag.push(roman(")"));
        }
        r.control("TP", []);
        r.text(tag);
        if n > 1 {
            let mut body = Vec::new();
            let last = &t.head[n - 1];
            if last != "meaning" {
                body.push(roman(format!("{last}: ")));
            }
            body.extend(row[n - 1].iter().cloned());
            r.text(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_tagged_paragraphs() {
        let md = "## Policy API reference\n### `lvsd.x { ... }`\n| key | default | meaning |\n|---|---|---|\n| `vrid` | required | 1..255 |\n\n## Next\n";
        let s = readme_section(md, "Policy API reference").unwrap();
        let mut r = Roff::new();
        markdown(&mut r, &s);
        let out = r.render();
        assert!(out.contains(".SS\n\\fBlvsd.x { ... }\\fR\n"), "{out}");
        assert!(out.contains(".TP\n\\fBvrid\\fR (default: required)\n1..255\n"), "{out}");
        assert!(!out.contains("Next"), "{out}");
    }

    #[test]
    fn a_missing_section_is_an_error() {
        assert!(matches!(policy_page_from("# lvsd\n"), Err(ManualError::MissingSection("Writing a policy"))));
    }

    #[test]
    fn code_blocks_keep_their_lines_and_hash_lines_do_not_end_a_section() {
        let md = "## Writing a policy\n```lua\n-- x\n## not a heading\n.dot\n```\n";
        let s = readme_section(md, "Writing a policy").unwrap();
        assert!(s.contains("## not a heading"));
        let mut r = Roff::new();
        markdown(&mut r, &s);
        let out = r.render();
        assert!(out.contains(".nf\n\\-\\- x\n## not a heading\n\\&.dot\n.fi\n"), "{out}");
    }
}
