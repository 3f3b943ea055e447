//! `redha migrate-keepalived`: turns a keepalived.conf written for a Redis pair into
//! the equivalent redha TOML, and says plainly what has no equivalent.
//!
//! Three steps, each small: a tokenizer that follows keepalived's lexical rules
//! (`#` and `!` comments, `"quoted strings"`, backslash escapes and line
//! continuations, braces with or without spaces around them), a tree of statements
//! and blocks (a block's `{` may be on the statement's line or on the next one), and
//! a mapping from that tree to a commented TOML file. The TOML is checked with
//! redha's own loader before it is returned, so the command never writes a file that
//! `redha check-config` would refuse.
//!
//! Choices worth knowing:
//! - **One instance per file.** redha runs one VRRP instance per configuration file
//!   and process, so the first `vrrp_instance` is migrated (or the one named with
//!   [`migrate_with`]) and every other one is named in a note.
//! - **Replication scripts are dropped, not kept.** A notify script that runs
//!   `SLAVEOF`/`REPLICAOF` (or, when it cannot be read, whose command names Redis) is
//!   written as a commented-out line with a note: `[replication]` does its work
//!   without the fixed sleeps, and running both would fight over the Redis roles.
//!   Other notify scripts become redha hooks with the same keys.
//! - **Script files are read when readable** (absolute paths named in `script` and
//!   `notify*` lines, text files only): to find `redis-cli -h/-p/-a` in a check script,
//!   and `SLAVEOF <peer> <port>` in a notify script to fill `[replication] peer`.

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The result of a migration: the TOML text and what did not carry over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The redha configuration, commented, accepted by redha's config loader.
    pub toml: String,
    /// What keepalived.conf had that redha does differently or not at all, in the
    /// order of the keepalived lines.
    pub notes: Vec<Note>,
}

/// One thing of the keepalived file that has no equivalent, or a different one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The keepalived.conf line (1-based) it is about.
    pub line: usize,
    /// What happened to it, in plain words.
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.text)
    }
}

/// Why no configuration could be produced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MigrateError {
    /// The file is not valid keepalived syntax (unbalanced braces).
    #[error("line {line}: {message}")]
    Syntax {
        /// The keepalived line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file has no `vrrp_instance` block.
    #[error("no vrrp_instance block: nothing to migrate")]
    NoInstance,
    /// The instance asked for is not in the file.
    #[error("no vrrp_instance named {name:?} (the file has: {})", available.join(", "))]
    UnknownInstance {
        /// The name asked for.
        name: String,
        /// The instances the file has.
        available: Vec<String>,
    },
    /// The instance lacks something redha cannot run without.
    #[error("line {line}: {message}")]
    Unusable {
        /// The keepalived line of the instance or of the bad value.
        line: usize,
        /// What is missing or wrong.
        message: String,
    },
    /// The generated TOML was refused by redha's loader: a bug of this migration.
    #[error("the generated configuration was refused (please report this): {0}")]
    Rejected(String),
}

/// Migrates keepalived.conf `text` (named `source_name` in the header and notes):
/// the `vrrp_instance` named `instance` (`None`: the first), reading the notify and
/// check scripts it names with `read_file` (bytes, or `None` when unreadable;
/// [`read_script_file`] reads this host's files).
pub fn migrate_with(
    text: &str,
    source_name: &str,
    instance: Option<&str>,
    read_file: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> Result<Migration, MigrateError> {
    let (tokens, notes) = tokenize(text);
    let tree = parse(tokens)?;
    let mut mapper = Mapper { notes, read_file };
    let survey = mapper.survey(&tree);
    let chosen = mapper.choose(&survey, instance)?;
    let out = mapper.instance(chosen, &survey)?;
    let mut notes = mapper.notes;
    notes.sort_by_key(|n| n.line);
    let toml = render(&out, source_name, &notes);
    crate::config::Config::parse(Path::new("migrated.toml"), &toml)
        .map_err(|e| MigrateError::Rejected(e.to_string()))?;
    Ok(Migration { toml, notes })
}

/// The notes as the CLI prints them on stderr: a heading, then one line each; empty
/// when there are none.
pub fn render_notes(notes: &[Note]) -> String {
    if notes.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "{} note{} (keepalived.conf line: what redha does instead):\n",
        notes.len(),
        if notes.len() == 1 { "" } else { "s" }
    );
    for n in notes {
        s.push_str(&format!("  {n}\n"));
    }
    s
}

/// Reads a script named in the configuration from this host: regular files up to
/// 256 KiB (a binary, such as the program `redis-cli` itself, is ignored later).
pub fn read_script_file(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 256 * 1024 {
        return None;
    }
    fs::read(path).ok()
}

// ---------------------------------------------------------------------------------
// Tokenizer

/// A word of the configuration: a bare word or a quoted string (quotes removed).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Word {
    text: String,
    quoted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Open,
    Close,
    /// The end of a (logical) line: a statement ends here.
    Eol,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits keepalived.conf text into words, braces and line ends, as keepalived reads
/// it: `#` and `!` start a comment anywhere outside quotes, a backslash escapes the
/// next character outside quotes and joins the next line when it ends one, `{` and
/// `}` are tokens of their own even when attached to a word.
fn tokenize(text: &str) -> (Vec<Token>, Vec<Note>) {
    struct Lexer {
        tokens: Vec<Token>,
        notes: Vec<Note>,
        word: Option<(Word, usize)>,
        line: usize,
    }
    impl Lexer {
        fn push_char(&mut self, c: char, quoted: bool) {
            let line = self.line;
            let (w, _) = self.word.get_or_insert_with(|| {
                (
                    Word {
                        text: String::new(),
                        quoted: false,
                    },
                    line,
                )
            });
            w.text.push(c);
            w.quoted |= quoted;
        }
        fn start_quote(&mut self) {
            let line = self.line;
            let (w, _) = self.word.get_or_insert_with(|| {
                (
                    Word {
                        text: String::new(),
                        quoted: true,
                    },
                    line,
                )
            });
            w.quoted = true;
        }
        fn flush(&mut self) {
            if let Some((w, line)) = self.word.take() {
                self.tokens.push(Token {
                    tok: Tok::Word(w),
                    line,
                });
            }
        }
        fn emit(&mut self, tok: Tok) {
            self.flush();
            self.tokens.push(Token {
                tok,
                line: self.line,
            });
        }
    }

    let mut lx = Lexer {
        tokens: Vec::new(),
        notes: Vec::new(),
        word: None,
        line: 1,
    };
    let mut chars = text.chars().peekable();
    let mut in_comment = false;
    let mut in_quote = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            if in_quote {
                lx.notes.push(Note {
                    line: lx.line,
                    text: "unterminated quoted string: read up to the end of the line".into(),
                });
                in_quote = false;
            }
            in_comment = false;
            lx.emit(Tok::Eol);
            lx.line += 1;
            continue;
        }
        if in_comment {
            continue;
        }
        if in_quote {
            match c {
                '"' => in_quote = false,
                '\\' => match chars.peek() {
                    Some(&n) if n == '"' || n == '\\' => {
                        chars.next();
                        lx.push_char(n, true);
                    }
                    Some('\n') => {
                        // A continuation inside a string: the string goes on.
                        chars.next();
                        lx.line += 1;
                        skip_indent(&mut chars);
                    }
                    _ => lx.push_char('\\', true),
                },
                _ => lx.push_char(c, true),
            }
            continue;
        }
        match c {
            '#' | '!' => {
                lx.flush();
                in_comment = true;
            }
            '"' => {
                lx.start_quote();
                in_quote = true;
            }
            '\\' => match chars.peek() {
                Some('\n') => {
                    // A line continuation: the statement goes on on the next line.
                    chars.next();
                    lx.flush();
                    lx.line += 1;
                    skip_indent(&mut chars);
                }
                Some(&n) => {
                    chars.next();
                    lx.push_char(n, false);
                }
                None => {}
            },
            '{' => lx.emit(Tok::Open),
            '}' => lx.emit(Tok::Close),
            c if c.is_whitespace() => lx.flush(),
            c => lx.push_char(c, false),
        }
    }
    if in_quote {
        lx.notes.push(Note {
            line: lx.line,
            text: "unterminated quoted string at the end of the file".into(),
        });
    }
    lx.emit(Tok::Eol);
    (lx.tokens, lx.notes)
}

/// Skips the indentation of a continued line (keepalived strips it too).
fn skip_indent(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
}

// ---------------------------------------------------------------------------------
// Tree

/// A statement: the words of one line, and the block that follows it if any.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stmt {
    line: usize,
    words: Vec<Word>,
    block: Option<Vec<Stmt>>,
}

impl Stmt {
    /// The keyword (first word), or "" for an anonymous block.
    fn key(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    /// The `i`th argument (0 is the first word after the keyword).
    fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i + 1).map(|w| w.text.as_str())
    }

    /// The arguments, joined with spaces.
    fn rest(&self) -> String {
        self.words
            .iter()
            .skip(1)
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The statement as it was written (quotes put back), for notes.
    fn shown(&self) -> String {
        let words: Vec<String> = self
            .words
            .iter()
            .map(|w| {
                if w.quoted {
                    format!("\"{}\"", w.text)
                } else {
                    w.text.clone()
                }
            })
            .collect();
        let mut s = words.join(" ");
        if self.block.is_some() {
            s.push_str(if s.is_empty() { "{ ... }" } else { " { ... }" });
        }
        s
    }

    fn items(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Builds the tree: a `{` opens the block of the statement on its line, or of the
/// statement just before it when it stands at the start of a line.
fn parse(tokens: Vec<Token>) -> Result<Vec<Stmt>, MigrateError> {
    let mut tokens = tokens.into_iter();
    parse_items(&mut tokens, None)
}

fn parse_items(
    tokens: &mut std::vec::IntoIter<Token>,
    opened_at: Option<usize>,
) -> Result<Vec<Stmt>, MigrateError> {
    let mut items: Vec<Stmt> = Vec::new();
    let mut current: Option<Stmt> = None;
    while let Some(Token { tok, line }) = tokens.next() {
        match tok {
            Tok::Word(w) => current
                .get_or_insert_with(|| Stmt {
                    line,
                    words: Vec::new(),
                    block: None,
                })
                .words
                .push(w),
            Tok::Eol => items.extend(current.take()),
            Tok::Open => {
                let mut owner = match current.take() {
                    Some(s) => s,
                    None => match items.pop() {
                        Some(prev) if prev.block.is_none() => prev,
                        other => {
                            items.extend(other);
                            Stmt {
                                line,
                                words: Vec::new(),
                                block: None,
                            }
                        }
                    },
                };
                owner.block = Some(parse_items(tokens, Some(line))?);
                items.push(owner);
            }
            Tok::Close => {
                items.extend(current.take());
                return match opened_at {
                    Some(_) => Ok(items),
                    None => Err(MigrateError::Syntax {
                        line,
                        message: "'}' closes no block".into(),
                    }),
                };
            }
        }
    }
    items.extend(current.take());
    match opened_at {
        Some(line) => Err(MigrateError::Syntax {
            line,
            message: "this '{' is never closed".into(),
        }),
        None => Ok(items),
    }
}

// ---------------------------------------------------------------------------------
// Mapping

/// Gratuitous ARP settings: `vrrp_garp_*` in global_defs, `garp_*` in an instance.
#[derive(Clone, Copy, Debug, Default)]
struct Garp {
    master_delay_ms: Option<u64>,
    master_repeat: Option<u32>,
    interval_ms: Option<u64>,
    master_refresh_ms: Option<u64>,
    master_refresh_repeat: Option<u32>,
}

/// What the top level of the file holds.
struct Survey<'t> {
    router_id: Option<String>,
    /// `vrrp_version` of global_defs, with its line.
    version: Option<(String, usize)>,
    garp: Garp,
    scripts: Vec<&'t Stmt>,
    instances: Vec<&'t Stmt>,
}

/// The local Redis as keepalived's check script reached it.
#[derive(Clone, Debug, Default)]
struct RedisCheck {
    script: String,
    line: usize,
    host: String,
    port: u16,
    /// Where the address came from, for its comment.
    address_from: String,
    password: Option<String>,
    username: Option<String>,
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    fall: Option<u32>,
    rise: Option<u32>,
}

/// A notify line of the instance.
#[derive(Clone, Debug)]
struct Hook {
    /// keepalived's key, which is redha's too.
    key: String,
    /// The command as keepalived had it (the quoted string, or the script path).
    command: String,
    /// `None`: kept as a redha hook; `Some(reason)`: written commented out.
    dropped: Option<String>,
}

/// What the chosen instance becomes.
#[derive(Clone, Debug, Default)]
struct Out {
    name: String,
    line: usize,
    router_id: Option<String>,
    interface: String,
    vrid: u8,
    priority: u8,
    priority_comment: Option<String>,
    advert_int_s: Option<u64>,
    advert_comment: Option<String>,
    preempt: Option<bool>,
    preempt_delay_ms: Option<u64>,
    vips: Vec<String>,
    unicast_peers: Vec<Ipv4Addr>,
    unicast_src_ip: Option<(Ipv4Addr, &'static str)>,
    auth_pass: Option<(String, bool)>,
    garp: Garp,
    hooks: Vec<Hook>,
    redis: Option<RedisCheck>,
    /// The Redis section was added without a keepalived check (for [replication]).
    redis_assumed: bool,
    /// `Some(peer)` with where it came from; `None` and `want_replication`: commented.
    peer: Option<(String, String)>,
    want_replication: bool,
    /// For a commented `[replication]`: the single unicast peer, as a hint.
    peer_hint: Option<String>,
    state_log: Option<String>,
}

/// What a script is, from its command and the files it names.
struct ScriptText {
    /// The command and the readable text files it names, with `$VAR`s expanded.
    lines: Vec<String>,
    /// Absolute paths that could not be read (missing, unreadable).
    unreadable: Vec<String>,
}

impl ScriptText {
    fn mentions(&self, needle: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l.to_ascii_lowercase().contains(needle))
    }
}

/// The mapping from the tree to [`Out`], collecting notes on the way.
struct Mapper<'a> {
    notes: Vec<Note>,
    read_file: &'a dyn Fn(&Path) -> Option<Vec<u8>>,
}

impl Mapper<'_> {
    fn note(&mut self, line: usize, text: impl Into<String>) {
        self.notes.push(Note {
            line,
            text: text.into(),
        });
    }

    /// Collects global_defs, the vrrp_scripts and the instances; notes the rest.
    fn survey<'t>(&mut self, tree: &'t [Stmt]) -> Survey<'t> {
        let mut s = Survey {
            router_id: None,
            version: None,
            garp: Garp::default(),
            scripts: Vec::new(),
            instances: Vec::new(),
        };
        for st in tree {
            match st.key() {
                "global_defs" => self.global_defs(st, &mut s),
                "vrrp_script" => s.scripts.push(st),
                "vrrp_instance" => s.instances.push(st),
                "include" => self.include(st),
                "vrrp_sync_group" => self.note(
                    st.line,
                    format!(
                        "vrrp_sync_group {}: no equivalent: redha runs one instance per process, so there is nothing to keep in step",
                        st.arg(0).unwrap_or("")
                    ),
                ),
                "virtual_server" | "virtual_server_group" => self.note(
                    st.line,
                    format!(
                        "{}: no equivalent: redha does not drive LVS/IPVS; keep keepalived's checker for it alone (`keepalived --check`) or another load balancer",
                        st.shown()
                    ),
                ),
                "static_ipaddress" | "static_routes" | "static_rules" => self.note(
                    st.line,
                    format!(
                        "{}: no equivalent: put these in the host's network configuration",
                        st.key()
                    ),
                ),
                "vrrp_track_process" | "vrrp_track_file" | "track_file" | "bfd_instance" => {
                    self.note(
                        st.line,
                        format!(
                            "{}: no equivalent: redha tracks only the local Redis",
                            st.shown()
                        ),
                    )
                }
                "" => self.note(st.line, "a block with no keyword: ignored"),
                key if key.starts_with('$') => self.note(
                    st.line,
                    format!(
                        "{}: keepalived parameter definitions are not expanded here: check the values that use it",
                        st.shown()
                    ),
                ),
                key if key.starts_with('@') => self.note(
                    st.line,
                    format!(
                        "{}: a line for some hosts only ({key}): not evaluated, ignored",
                        st.shown()
                    ),
                ),
                _ => self.note(
                    st.line,
                    format!("{}: not known to this migration: no equivalent", st.shown()),
                ),
            }
        }
        s
    }

    fn include(&mut self, st: &Stmt) {
        self.note(
            st.line,
            format!(
                "include {}: not followed: redha reads one file; migrate the included file's settings too (or paste them in and run again)",
                st.rest()
            ),
        );
    }

    fn global_defs(&mut self, st: &Stmt, s: &mut Survey<'_>) {
        // Keys that share one note: (what was written, line).
        let mut email: Vec<(String, usize)> = Vec::new();
        let mut security: Vec<(String, usize)> = Vec::new();
        for it in st.items() {
            let key = it.key();
            let arg = it.arg(0).unwrap_or("");
            match key {
                "router_id" => {
                    s.router_id = Some(arg.to_string());
                    self.note(
                        it.line,
                        format!("router_id {arg}: no equivalent: redha logs the instance name (kept in the header comment)"),
                    );
                }
                "vrrp_version" => {
                    s.version = Some((arg.to_string(), it.line));
                }
                "enable_script_security" | "script_user" => security.push((it.shown(), it.line)),
                "notification_email" | "notification_email_from" | "smtp_server"
                | "smtp_connect_timeout" | "smtp_helo_name" | "email_from" => {
                    email.push((key.to_string(), it.line))
                }
                "vrrp_garp_master_delay" => s.garp.master_delay_ms = self.secs(it),
                "vrrp_garp_master_repeat" => s.garp.master_repeat = self.count(it),
                "vrrp_garp_interval" => s.garp.interval_ms = self.decimal(it),
                "vrrp_garp_master_refresh" => s.garp.master_refresh_ms = self.secs(it),
                "vrrp_garp_master_refresh_repeat" => {
                    s.garp.master_refresh_repeat = self.count(it)
                }
                "vrrp_strict" => self.note(
                    it.line,
                    "vrrp_strict: no equivalent: redha always applies RFC 3768's receive checks, installs no firewall rules, and allows authentication",
                ),
                "vrrp_skip_check_adv_addr" => self.note(
                    it.line,
                    "vrrp_skip_check_adv_addr: no equivalent: redha always checks the address list of adverts from a new master",
                ),
                "vrrp_mcast_group4" | "vrrp_mcast_group6" => self.note(
                    it.line,
                    format!("{}: no equivalent: redha sends to 224.0.0.18 (or to unicast_peers)", it.shown()),
                ),
                "vrrp_gna_interval" | "vrrp_lower_prio_no_advert" | "vrrp_higher_prio_send_advert"
                | "vrrp_garp_lower_prio_delay" | "vrrp_garp_lower_prio_repeat" => self.note(
                    it.line,
                    format!("{}: no equivalent in redha", it.shown()),
                ),
                "include" => self.include(it),
                _ => self.note(
                    it.line,
                    format!(
                        "global_defs {}: no equivalent (keepalived process or LVS tuning)",
                        it.shown()
                    ),
                ),
            }
        }
        self.grouped_note(
            &email,
            "no equivalent: redha sends no email; use a notify hook or watch the state log",
        );
        self.grouped_note(
            &security,
            "no equivalent needed: redha runs no check script, and refuses a notify hook that a non-root user could change",
        );
    }

    /// One note for several keys: "a, b (lines 3, 4): why".
    fn grouped_note(&mut self, keys: &[(String, usize)], why: &str) {
        let Some(&(_, first)) = keys.first() else {
            return;
        };
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let text = if keys.len() == 1 {
            format!("{}: {why}", names[0])
        } else {
            let lines: Vec<String> = keys.iter().map(|(_, l)| l.to_string()).collect();
            format!("{} (lines {}): {why}", names.join(", "), lines.join(", "))
        };
        self.note(first, text);
    }

    /// The instance to migrate; every other one gets a note.
    fn choose<'t>(
        &mut self,
        survey: &Survey<'t>,
        wanted: Option<&str>,
    ) -> Result<&'t Stmt, MigrateError> {
        let name = |st: &Stmt| st.arg(0).unwrap_or("").to_string();
        let chosen = match wanted {
            None => *survey.instances.first().ok_or(MigrateError::NoInstance)?,
            Some(w) => *survey
                .instances
                .iter()
                .find(|st| name(st) == w)
                .ok_or_else(|| MigrateError::UnknownInstance {
                    name: w.to_string(),
                    available: survey.instances.iter().map(|st| name(st)).collect(),
                })?,
        };
        for other in &survey.instances {
            if !std::ptr::eq(*other, chosen) {
                self.note(
                    other.line,
                    format!(
                        "vrrp_instance {} not migrated: redha runs one VRRP instance per configuration file and process; migrate it on its own into a second file",
                        name(other)
                    ),
                );
            }
        }
        Ok(chosen)
    }

    /// Maps the chosen instance.
    fn instance(&mut self, inst: &Stmt, survey: &Survey<'_>) -> Result<Out, MigrateError> {
        let mut out = Out {
            name: inst.arg(0).unwrap_or("").to_string(),
            line: inst.line,
            router_id: survey.router_id.clone(),
            garp: survey.garp,
            ..Out::default()
        };
        let mut interface = None;
        let mut vrid = None;
        let mut priority: Option<(u8, usize)> = None;
        let mut state: Option<(String, usize)> = None;
        let mut version = survey.version.clone();
        let mut advert: Option<(String, usize)> = None;
        let mut vip_block = None;
        let mut tracked: Vec<&Stmt> = Vec::new();
        let mut auth = None;
        for it in inst.items() {
            let arg = it.arg(0).unwrap_or("");
            match it.key() {
                "state" => state = Some((arg.to_ascii_uppercase(), it.line)),
                "interface" => interface = Some(arg.to_string()).filter(|i| !i.is_empty()),
                "virtual_router_id" => match arg.parse::<u8>() {
                    Ok(v) if v >= 1 => vrid = Some(v),
                    _ => {
                        return Err(MigrateError::Unusable {
                            line: it.line,
                            message: format!("virtual_router_id {arg:?} is not 1 to 255"),
                        });
                    }
                },
                "priority" => match arg.parse::<u8>() {
                    Ok(p) if p >= 1 => priority = Some((p, it.line)),
                    _ => self.note(
                        it.line,
                        format!("priority {arg:?} is not 1 to 255: keepalived used 100, and so does this file"),
                    ),
                },
                "advert_int" => advert = Some((arg.to_string(), it.line)),
                "version" => version = Some((arg.to_string(), it.line)),
                "nopreempt" => out.preempt = Some(false),
                "preempt" => out.preempt = Some(true),
                "preempt_delay" => out.preempt_delay_ms = self.decimal(it),
                "virtual_ipaddress" => vip_block = Some(it),
                "virtual_ipaddress_excluded" => self.note(
                    it.line,
                    "virtual_ipaddress_excluded: no equivalent: redha only has addresses carried in the adverts; list them in virtual_ipaddresses (keepalived peers then need them in virtual_ipaddress too) or configure them on the host",
                ),
                "unicast_src_ip" => self.source_ip(it, &mut out, "keepalived's unicast_src_ip"),
                "mcast_src_ip" => self.source_ip(it, &mut out, "keepalived's mcast_src_ip"),
                "unicast_peer" => self.unicast_peers(it, &mut out),
                "authentication" => auth = Some(it),
                "track_script" => tracked.push(it),
                "track_interface" => self.note(
                    it.line,
                    "track_interface: no equivalent yet: redha does not watch the link state of other interfaces",
                ),
                "garp_master_delay" => out.garp.master_delay_ms = self.secs(it),
                "garp_master_repeat" => out.garp.master_repeat = self.count(it),
                "garp_interval" => out.garp.interval_ms = self.decimal(it),
                "garp_master_refresh" => out.garp.master_refresh_ms = self.secs(it),
                "garp_master_refresh_repeat" => out.garp.master_refresh_repeat = self.count(it),
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    // keepalived keeps the first of a repeated notify line and
                    // ignores the others ("script already specified - ignoring").
                    if out.hooks.iter().any(|h| h.key == it.key()) {
                        self.note(
                            it.line,
                            format!(
                                "{}: given again: ignored, as keepalived ignores it (the first one counts)",
                                it.key()
                            ),
                        );
                    } else {
                        let hook = self.hook(it, &mut out);
                        out.hooks.push(hook);
                    }
                }
                "smtp_alert" => self.note(
                    it.line,
                    "smtp_alert: no equivalent: redha sends no email; a notify hook can",
                ),
                "include" => self.include(it),
                "dont_track_primary" => self.note(
                    it.line,
                    "dont_track_primary: nothing to do: redha does not watch the interface's link state",
                ),
                "accept" | "no_accept" => self.note(
                    it.line,
                    format!("{}: no equivalent: redha adds the virtual addresses as ordinary addresses, so the host accepts traffic to them", it.key()),
                ),
                "track_process" | "track_file" | "track_bfd" => self.note(
                    it.line,
                    format!("{}: no equivalent: redha tracks only the local Redis", it.key()),
                ),
                "use_vmac" | "vmac_xmit_base" | "native_ipv6" | "strict_mode"
                | "check_unicast_src" | "unicast_ttl" | "unicast_fault_no_peer" | "debug"
                | "lvs_sync_daemon_interface" | "virtual_routes" | "virtual_rules"
                | "garp_lower_prio_delay" | "garp_lower_prio_repeat" | "lower_prio_no_advert"
                | "higher_prio_send_advert" | "notify_master_rx_lower_pri" | "notify_deleted"
                | "skip_check_adv_addr" | "promote_secondaries" | "mcast_dst_ip" => self.note(
                    it.line,
                    format!("{}: no equivalent in redha", it.shown()),
                ),
                _ => self.note(
                    it.line,
                    format!("{}: not known to this migration: no equivalent", it.shown()),
                ),
            }
        }

        out.interface = interface.ok_or_else(|| MigrateError::Unusable {
            line: inst.line,
            message: format!(
                "vrrp_instance {} has no interface: redha needs one",
                out.name
            ),
        })?;
        out.vrid = vrid.ok_or_else(|| MigrateError::Unusable {
            line: inst.line,
            message: format!("vrrp_instance {} has no virtual_router_id", out.name),
        })?;
        self.version(version.as_ref());
        self.state_and_priority(state.as_ref(), priority, &mut out);
        if let Some((text, line)) = &advert {
            self.advert_int(text, *line, &mut out);
        }
        if let Some(block) = vip_block {
            self.vips(block, &mut out);
        }
        if out.vips.is_empty() {
            return Err(MigrateError::Unusable {
                line: vip_block.map_or(inst.line, |b| b.line),
                message: format!(
                    "vrrp_instance {} has no IPv4 virtual address: redha needs at least one",
                    out.name
                ),
            });
        }
        if let Some(a) = auth {
            self.auth(a, &mut out);
        }
        self.garp_checks(&mut out, inst.line);
        self.drop_conflicts(&mut out, inst.line);
        for t in tracked {
            self.track_scripts(t, survey, &mut out);
        }
        self.untracked_scripts(survey, &out);
        self.replication(&mut out, inst.line);
        Ok(out)
    }

    fn version(&mut self, version: Option<&(String, usize)>) {
        match version {
            Some((v, line)) if v == "3" => self.note(
                *line,
                "vrrp_version 3: no equivalent yet: redha speaks VRRPv2 (RFC 3768); set vrrp_version 2 on keepalived peers that stay",
            ),
            Some((v, line)) if v != "2" => {
                self.note(*line, format!("vrrp_version {v}: not 2 or 3, ignored"))
            }
            _ => {}
        }
    }

    fn state_and_priority(
        &mut self,
        state: Option<&(String, usize)>,
        priority: Option<(u8, usize)>,
        out: &mut Out,
    ) {
        let master = matches!(state, Some((s, _)) if s == "MASTER");
        out.priority = match priority {
            Some((p, _)) => p,
            // keepalived derives a missing priority from the state.
            None if master => {
                out.priority_comment =
                    Some("keepalived's default for state MASTER: address owner".into());
                255
            }
            None => 100,
        };
        match state {
            Some((s, line)) if s == "MASTER" => {
                let owner = if out.priority == 255 {
                    "; with priority 255 it is the address owner and takes the addresses at once, as keepalived's MASTER did"
                } else {
                    ""
                };
                self.note(
                    *line,
                    format!(
                        "state MASTER: redha starts every node as backup and lets priority decide ({} here), so this host becomes master after Master_Down_Interval unless a higher priority is heard{owner}",
                        out.priority
                    ),
                );
            }
            Some((s, line)) if s != "BACKUP" => {
                self.note(*line, format!("state {s}: not MASTER or BACKUP, ignored"))
            }
            _ => {}
        }
        if out.priority == 255 && out.priority_comment.is_none() {
            out.priority_comment = Some("255: this host owns the addresses".into());
        }
    }

    fn advert_int(&mut self, text: &str, line: usize, out: &mut Out) {
        let Some(ms) = parse_decimal_ms(text) else {
            self.note(
                line,
                format!("advert_int {text:?} is not a number: ignored (default 1s)"),
            );
            return;
        };
        let secs = ((ms + 500) / 1000).clamp(1, 255);
        if secs * 1000 != ms {
            self.note(
                line,
                format!(
                    "advert_int {text}: redha speaks VRRPv2, whose interval is whole seconds from 1 to 255: {secs}s used; keepalived peers must use advert_int {secs} too"
                ),
            );
            out.advert_comment = Some(format!("keepalived had advert_int {text}"));
        }
        out.advert_int_s = Some(secs);
    }

    fn source_ip(&mut self, it: &Stmt, out: &mut Out, comment: &'static str) {
        let arg = it.arg(0).unwrap_or("");
        match arg.parse::<Ipv4Addr>() {
            Ok(ip) => out.unicast_src_ip = Some((ip, comment)),
            Err(_) => self.note(
                it.line,
                format!(
                    "{}: not an IPv4 address: dropped (redha uses the interface's primary address)",
                    it.shown()
                ),
            ),
        }
    }

    fn unicast_peers(&mut self, block: &Stmt, out: &mut Out) {
        for it in block.items() {
            let mut words = it.words.iter().map(|w| w.text.as_str()).peekable();
            while let Some(w) = words.next() {
                if let Ok(ip) = w.parse::<Ipv4Addr>() {
                    if !out.unicast_peers.contains(&ip) {
                        out.unicast_peers.push(ip);
                    }
                } else if matches!(w, "min_ttl" | "max_ttl") {
                    let v = words.next().unwrap_or("");
                    self.note(
                        it.line,
                        format!("unicast_peer option {w} {v}: no equivalent: redha requires TTL 255 as RFC 3768 says"),
                    );
                } else {
                    self.note(
                        it.line,
                        format!("unicast_peer {w}: not an IPv4 address: dropped"),
                    );
                }
            }
        }
        if out.unicast_peers.is_empty() {
            self.note(
                block.line,
                "unicast_peer lists no IPv4 peer: redha uses multicast",
            );
        }
    }

    fn vips(&mut self, block: &Stmt, out: &mut Out) {
        for it in block.items() {
            let words: Vec<&str> = it.words.iter().map(|w| w.text.as_str()).collect();
            let mut i = 0;
            while i < words.len() {
                let addr = words[i];
                i += 1;
                // Options up to the next address (one-line blocks may list several).
                let mut dropped: Vec<String> = Vec::new();
                while i < words.len() && !looks_like_address(words[i]) {
                    let opt = words[i];
                    let takes_value = matches!(
                        opt,
                        "dev"
                            | "label"
                            | "scope"
                            | "brd"
                            | "broadcast"
                            | "track_group"
                            | "preferred_lft"
                            | "valid_lft"
                            | "metric"
                    );
                    let value = if takes_value {
                        words.get(i + 1).copied()
                    } else {
                        None
                    };
                    i += if takes_value { 2 } else { 1 };
                    if opt == "dev" && value == Some(out.interface.as_str()) {
                        continue;
                    }
                    dropped.push(match value {
                        Some(v) => format!("{opt} {v}"),
                        None => opt.to_string(),
                    });
                }
                self.vip(addr, &dropped, it.line, out);
            }
        }
    }

    fn vip(&mut self, addr: &str, dropped: &[String], line: usize, out: &mut Out) {
        let (ip, len) = match addr.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (addr, None),
        };
        if ip.parse::<Ipv6Addr>().is_ok() {
            self.note(
                line,
                format!("virtual address {addr}: IPv6 has no equivalent yet (redha speaks VRRPv2, IPv4 only): dropped"),
            );
            return;
        }
        let text = match len {
            Some(_) => addr.to_string(),
            None => format!("{addr}/32"),
        };
        if let Err(e) = crate::config::parse_vip(&text) {
            self.note(line, format!("virtual address {addr}: {e}: dropped"));
            return;
        }
        if out.vips.iter().any(|v| v.split('/').next() == Some(ip)) {
            self.note(
                line,
                format!("virtual address {addr} is listed twice: kept once"),
            );
            return;
        }
        if len.is_none() {
            self.note(
                line,
                format!("virtual address {addr} has no prefix length: keepalived's default is /32, written as {text}; give the subnet's length (e.g. /24) if the address should have a subnet route"),
            );
        }
        if !dropped.is_empty() {
            self.note(
                line,
                format!(
                    "virtual address {addr}: {}: no equivalent: redha adds each address to interface {} with its prefix only",
                    dropped.join(", "),
                    out.interface
                ),
            );
        }
        if out.vips.len() == 255 {
            self.note(
                line,
                format!("virtual address {addr}: an advert carries at most 255 addresses: dropped"),
            );
            return;
        }
        out.vips.push(text);
    }

    fn auth(&mut self, block: &Stmt, out: &mut Out) {
        let mut kind = None;
        let mut pass = None;
        for it in block.items() {
            match it.key() {
                "auth_type" => kind = Some((it.arg(0).unwrap_or("").to_string(), it.line)),
                "auth_pass" => pass = Some((it.arg(0).unwrap_or("").to_string(), it.line)),
                _ => self.note(
                    it.line,
                    format!("authentication {}: not known: ignored", it.shown()),
                ),
            }
        }
        match (kind, pass) {
            (Some((k, _)), Some((p, line))) if k == "PASS" => {
                if p.is_empty() {
                    self.note(line, "auth_pass is empty: no authentication");
                    return;
                }
                let mut cut = p.len().min(8);
                while !p.is_char_boundary(cut) {
                    cut -= 1;
                }
                let truncated = cut < p.len();
                if truncated {
                    self.note(
                        line,
                        format!(
                            "auth_pass is {} bytes: keepalived sends only the first 8 (and says \"Truncating auth_pass to 8 characters\"), so redha gets those 8 ({:?}) and stays compatible",
                            p.len(),
                            &p[..cut]
                        ),
                    );
                }
                out.auth_pass = Some((p[..cut].to_string(), truncated));
            }
            (Some((k, line)), _) if k == "AH" => self.note(
                line,
                "auth_type AH: no equivalent (RFC 3768 removed it): redha sends no authentication; remove it from keepalived peers too",
            ),
            (Some((k, line)), _) if k != "PASS" => self.note(
                line,
                format!("auth_type {k}: not PASS or AH: no authentication"),
            ),
            (Some((_, line)), None) => self.note(
                line,
                "auth_type PASS without auth_pass: no authentication",
            ),
            (None, Some((_, line))) => self.note(
                line,
                "auth_pass without auth_type: keepalived sent no authentication, and neither does redha",
            ),
            _ => {}
        }
    }

    /// Values redha refuses where keepalived adjusted them itself.
    fn garp_checks(&mut self, out: &mut Out, line: usize) {
        for (name, v) in [
            ("garp_master_repeat", &mut out.garp.master_repeat),
            (
                "garp_master_refresh_repeat",
                &mut out.garp.master_refresh_repeat,
            ),
        ] {
            if *v == Some(0) {
                *v = Some(1);
                self.note(
                    line,
                    format!("{name} 0: keepalived uses 1, and so does this file"),
                );
            }
        }
    }

    /// redha refuses a unicast peer or source that is one of the virtual addresses.
    fn drop_conflicts(&mut self, out: &mut Out, line: usize) {
        let is_vip = |ip: &Ipv4Addr, vips: &[String]| {
            vips.iter()
                .any(|v| v.split('/').next() == Some(ip.to_string().as_str()))
        };
        let vips = out.vips.clone();
        out.unicast_peers.retain(|p| {
            let bad = is_vip(p, &vips);
            if bad {
                self.notes.push(Note {
                    line,
                    text: format!("unicast peer {p} is one of the virtual addresses: dropped"),
                });
            }
            !bad
        });
        if let Some((src, _)) = out.unicast_src_ip
            && is_vip(&src, &vips)
        {
            out.unicast_src_ip = None;
            self.note(
                line,
                format!("source address {src} is one of the virtual addresses: dropped"),
            );
        }
    }

    /// A `track_script` block: the first script that checks Redis becomes `[redis]`.
    fn track_scripts(&mut self, block: &Stmt, survey: &Survey<'_>, out: &mut Out) {
        for it in block.items() {
            let name = it.key();
            let weight_override = match (it.arg(0), it.arg(1)) {
                (Some("weight"), Some(w)) => Some(w.to_string()),
                _ => None,
            };
            let Some(script) = survey.scripts.iter().find(|s| s.arg(0) == Some(name)) else {
                self.note(
                    it.line,
                    format!("track_script {name}: no vrrp_script of that name: ignored"),
                );
                continue;
            };
            match self.redis_check(script) {
                Some(mut check) => {
                    check.line = script.line;
                    let weight = weight_override.or_else(|| {
                        script
                            .items()
                            .iter()
                            .find(|s| s.key() == "weight")
                            .and_then(|s| s.arg(0).map(str::to_string))
                    });
                    if let Some(w) = weight.filter(|w| w.parse::<i32>() != Ok(0)) {
                        self.note(
                            it.line,
                            format!(
                                "{name} weight {w}: keepalived changed the priority by {w} on the check's result; redha instead puts a node whose Redis is down in FAULT (priority 0, addresses released), so the peer always takes over"
                            ),
                        );
                    }
                    if out.redis.is_some() {
                        self.note(
                            it.line,
                            format!("track_script {name}: a second Redis check: [redis] already checks the local Redis, dropped"),
                        );
                    } else {
                        out.redis = Some(check);
                    }
                }
                None => self.note(
                    it.line,
                    format!(
                        "track_script {name}: no equivalent: redha checks Redis itself and runs no other check script ({})",
                        script_command(script).unwrap_or_default()
                    ),
                ),
            }
        }
    }

    /// A script no instance tracks: keepalived did not run it.
    fn untracked_scripts(&mut self, survey: &Survey<'_>, out: &Out) {
        let tracked: Vec<&str> = survey
            .instances
            .iter()
            .flat_map(|i| i.items())
            .filter(|s| s.key() == "track_script")
            .flat_map(|s| s.items().iter().map(Stmt::key))
            .collect();
        for s in &survey.scripts {
            let name = s.arg(0).unwrap_or("");
            if tracked.contains(&name) {
                continue;
            }
            let text = if out.redis.is_none() && self.is_redis_check(s) {
                format!(
                    "vrrp_script {name} checks Redis but no instance tracks it, so keepalived never ran it: no [redis] section written (add one if Redis should be checked)"
                )
            } else {
                format!("vrrp_script {name}: no instance tracks it: not migrated")
            };
            self.note(s.line, text);
        }
    }

    /// Whether `script` checks Redis (its notes are not kept).
    fn is_redis_check(&mut self, script: &Stmt) -> bool {
        let before = self.notes.len();
        let yes = self.redis_check(script).is_some();
        self.notes.truncate(before);
        yes
    }

    /// The `[redis]` section for a vrrp_script that checks Redis; `None` (no note) for
    /// any other script.
    fn redis_check(&mut self, script: &Stmt) -> Option<RedisCheck> {
        let name = script.arg(0).unwrap_or("").to_string();
        let command = script_command(script)?;
        // Notes about the command point at its `script` line.
        let line = script
            .items()
            .iter()
            .find(|s| s.key() == "script")
            .map_or(script.line, |s| s.line);
        let text = self.script_text(&command);
        let ping = text.lines.iter().find_map(|l| redis_cli_ping(l));
        let mentions_redis = text.mentions("redis") || name.to_ascii_lowercase().contains("redis");
        if ping.is_none() && !mentions_redis {
            return None;
        }
        let mut check = RedisCheck {
            script: name.clone(),
            host: "127.0.0.1".into(),
            port: 6379,
            ..RedisCheck::default()
        };
        match ping {
            Some(cli) => {
                check.address_from = format!("from `redis-cli{}`", cli.shown);
                if let Some(h) = cli.host {
                    if h.starts_with('$') {
                        self.note(line, format!("vrrp_script {name}: redis-cli -h {h}: a shell variable: 127.0.0.1 used, check [redis] address"));
                    } else if h.is_empty()
                        || h.contains(|c: char| c.is_whitespace() || "[]/".contains(c))
                    {
                        self.note(line, format!("vrrp_script {name}: redis-cli -h {h:?}: not a host: 127.0.0.1 used, check [redis] address"));
                    } else {
                        check.host = h;
                    }
                }
                if let Some(p) = cli.port {
                    match p.parse::<u16>() {
                        Ok(n) if n > 0 => check.port = n,
                        _ => self.note(line, format!("vrrp_script {name}: redis-cli -p {p}: not a port: 6379 used, check [redis] address")),
                    }
                }
                if cli.socket.is_some() {
                    self.note(line, format!("vrrp_script {name}: redis-cli -s (Unix socket): no equivalent: redha connects over TCP; {}:{} used, check [redis] address", check.host, check.port));
                }
                if cli.uri.is_some() {
                    self.note(line, format!("vrrp_script {name}: redis-cli -u URI: not read: {}:{} used, check [redis] address and password", check.host, check.port));
                }
                if cli.tls {
                    self.note(line, format!("vrrp_script {name}: redis-cli --tls: no equivalent: redha speaks plain TCP to Redis"));
                }
                if let Some(p) = cli.password.filter(|p| !p.is_empty()) {
                    if p.starts_with('$') {
                        self.note(line, format!("vrrp_script {name}: the Redis password comes from a shell variable ({p}): set [redis] password_file"));
                    } else {
                        self.note(line, format!("vrrp_script {name}: the Redis password of redis-cli -a is now [redis] password; password_file (a file only redha can read) is better than a password in the configuration"));
                        check.password = Some(p);
                    }
                }
                if let Some(u) = cli.user {
                    check.username = Some(u);
                    if check.password.is_none() {
                        check.username = None;
                        self.note(line, format!("vrrp_script {name}: redis-cli --user without a password: set [redis] username and password_file"));
                    }
                }
            }
            None => {
                let why = if text.unreadable.is_empty() {
                    format!("it mentions Redis but sends no redis-cli PING ({command})")
                } else {
                    format!(
                        "{} could not be read here; its name says it checks Redis",
                        text.unreadable.join(", ")
                    )
                };
                self.note(
                    line,
                    format!("vrrp_script {name}: {why}: taken as a check of the local Redis at 127.0.0.1:6379; check [redis] address"),
                );
                check.address_from = "assumed: the default address".into();
            }
        }
        let mut timeout_line = script.line;
        for it in script.items() {
            match it.key() {
                "script" | "weight" => {}
                // keepalived takes 0 as 1 second for both.
                "interval" => check.interval_ms = self.decimal(it).map(|ms| ms.max(1000)),
                "timeout" => {
                    check.timeout_ms = self.decimal(it).map(|ms| ms.max(1000));
                    timeout_line = it.line;
                }
                "fall" => {
                    check.fall = self.threshold(it);
                }
                "rise" => {
                    check.rise = self.threshold(it);
                }
                "user" => self.note(
                    it.line,
                    format!("vrrp_script {name} user: no equivalent: redha checks Redis itself, no script runs"),
                ),
                "init_fail" => self.note(
                    it.line,
                    "init_fail: redha always starts in FAULT until the Redis has been seen healthy",
                ),
                _ => self.note(
                    it.line,
                    format!("vrrp_script {name} {}: no equivalent", it.shown()),
                ),
            }
        }
        if let (Some(t), Some(i)) = (check.timeout_ms, check.interval_ms.or(Some(1000)))
            && t > i
        {
            self.note(
                timeout_line,
                format!("vrrp_script {name}: timeout {} is longer than interval {}: redha needs check_timeout <= check_interval, so check_timeout = {}", fmt_ms(t), fmt_ms(i), fmt_ms(i)),
            );
            check.timeout_ms = Some(i);
        }
        Some(check)
    }

    /// A notify line: kept as a hook, or dropped when it moves Redis replication.
    fn hook(&mut self, it: &Stmt, out: &mut Out) -> Hook {
        let key = it.key().to_string();
        let (command, extra) = match it.words.get(1) {
            Some(first) => (first.text.clone(), &it.words[2..]),
            None => (String::new(), &it.words[1..]),
        };
        if !extra.is_empty() {
            let extra: Vec<&str> = extra.iter().map(|w| w.text.as_str()).collect();
            self.note(
                it.line,
                format!(
                    "{key}: the words after the script ({}) are the user and group keepalived ran it as; redha runs hooks as its own user: dropped (quote the whole command if they were arguments)",
                    extra.join(" ")
                ),
            );
        }
        let text = self.script_text(&command);
        let targets: Vec<(String, u16)> = text
            .lines
            .iter()
            .flat_map(|l| replicaof_targets(l))
            .collect();
        let replication = text.mentions("slaveof") || text.mentions("replicaof");
        let redis = replication || text.mentions("redis");
        for (host, port) in &targets {
            if out.peer.is_none() {
                out.peer = Some((
                    format!("{host}:{port}"),
                    format!("from SLAVEOF {host} {port} in {key}"),
                ));
            } else if out.peer.as_ref().map(|p| p.0.as_str()) != Some(&format!("{host}:{port}")) {
                self.note(
                    it.line,
                    format!("{key}: SLAVEOF {host} {port} differs from the peer already found ({}): check [replication] peer", out.peer.as_ref().map_or("", |p| p.0.as_str())),
                );
            }
        }
        if out.state_log.is_none() {
            out.state_log = text.lines.iter().find_map(|l| log_path(l));
        }
        if !redis {
            let Some(refusal) = hook_refusal(&key, &command) else {
                return Hook {
                    key,
                    command,
                    dropped: None,
                };
            };
            let unread = if text.unreadable.is_empty() {
                ""
            } else {
                "; if it runs SLAVEOF/REPLICAOF, delete it instead ([replication] does that)"
            };
            self.note(
                it.line,
                format!("{key} {command:?}: written commented out: redha would refuse it on this host ({refusal}); uncomment it where the script is installed, owned by root and writable by root only{unread}"),
            );
            return Hook {
                key,
                command,
                dropped: Some("refused on this host: see the notes".into()),
            };
        }
        out.want_replication = true;
        let sleeps = if text.mentions("sleep") {
            " with fixed sleeps"
        } else {
            ""
        };
        let (reason, comment) = if replication {
            (
                format!(
                    "it runs SLAVEOF/REPLICAOF{sleeps}: [replication] replaces it, promoting on observed progress and comparing histories before any REPLICAOF; running both would fight over the Redis roles"
                ),
                "dropped: SLAVEOF/REPLICAOF, [replication] does it",
            )
        } else if !text.unreadable.is_empty() {
            (
                "it could not be read here, and its command names Redis: like the classic SLAVEOF scripts it is replaced by [replication]; if it does something else, make it a hook again".to_string(),
                "dropped: a Redis script, see the notes",
            )
        } else {
            (
                "it acts on Redis: [replication] and the state log replace the classic notify scripts; if it does something else, make it a hook again".to_string(),
                "dropped: a Redis script, see the notes",
            )
        };
        self.note(it.line, format!("{key} {command:?}: dropped: {reason}"));
        Hook {
            key,
            command,
            dropped: Some(comment.into()),
        }
    }

    /// The `[replication]` decision, once the hooks and the check are known.
    fn replication(&mut self, out: &mut Out, line: usize) {
        if out.peer.is_none() && out.want_replication {
            match out.unicast_peers.as_slice() {
                [one] => {
                    let port = out.redis.as_ref().map_or(6379, |r| r.port);
                    out.peer = Some((
                        format!("{one}:{port}"),
                        "the unicast peer, with our Redis port".into(),
                    ));
                }
                _ => self.note(
                    line,
                    "[replication] peer: the other host's Redis could not be inferred (no SLAVEOF <host> <port> in a readable notify script, and not exactly one unicast_peer): fill in the commented peer line and uncomment [replication]",
                ),
            }
        }
        if let Some((peer, _)) = &out.peer {
            let host = peer.rsplit_once(':').map_or("", |(h, _)| h);
            if out
                .unicast_src_ip
                .is_some_and(|(src, _)| src.to_string() == host)
            {
                self.note(
                    line,
                    format!("the notify scripts replicate from {host}, which is this host's own unicast_src_ip: check [replication] peer (the other host's Redis)"),
                );
            }
            if let Ok(ip) = host.parse::<Ipv4Addr>()
                && !out.unicast_peers.is_empty()
                && !out.unicast_peers.contains(&ip)
            {
                self.note(
                    line,
                    format!("the notify scripts replicate from {host}, which is not a unicast_peer: check [replication] peer"),
                );
            }
        }
        if out.want_replication && out.redis.is_none() {
            out.redis = Some(RedisCheck {
                script: String::new(),
                host: "127.0.0.1".into(),
                port: 6379,
                address_from: "assumed: the default address".into(),
                ..RedisCheck::default()
            });
            out.redis_assumed = true;
            self.note(
                line,
                "no tracked script checked Redis, but the notify scripts manage its replication: [redis] added with 127.0.0.1:6379 (check it), because [replication] needs it; this node now goes to FAULT when its Redis is down",
            );
        }
        if let (false, [one]) = (out.want_replication, out.unicast_peers.as_slice()) {
            let port = out.redis.as_ref().map_or(6379, |r| r.port);
            out.peer_hint = Some(format!("{one}:{port}"));
        }
        if out.redis.is_some() && !out.want_replication {
            self.note(
                line,
                "no notify script moved Redis replication, so [replication] is left commented out: uncomment it (with the peer's address) to have redha make the new master's Redis writable and the other its replica",
            );
        }
    }

    /// The command and the text files it names, with simple `$VAR`s expanded.
    fn script_text(&mut self, command: &str) -> ScriptText {
        let mut st = ScriptText {
            lines: vec![command.to_string()],
            unreadable: Vec::new(),
        };
        for word in shell_words(command) {
            if !word.starts_with('/') {
                continue;
            }
            match (self.read_file)(Path::new(&word)) {
                // A binary (the program itself, e.g. /usr/bin/redis-cli) tells nothing.
                Some(bytes) if bytes.contains(&0) => {}
                Some(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let vars = assignments(&text);
                    st.lines
                        .extend(text.lines().map(|l| expand_vars(strip_comment(l), &vars)));
                }
                None => {
                    let base = word.rsplit('/').next().unwrap_or("");
                    if !is_common_program(base) {
                        st.unreadable.push(word);
                    }
                }
            }
        }
        st
    }

    // Number readers: a bad value is noted and ignored, as keepalived does.

    fn secs(&mut self, it: &Stmt) -> Option<u64> {
        match it.arg(0).and_then(|a| a.parse::<u64>().ok()) {
            Some(s) if s <= u64::from(u32::MAX) => Some(s * 1000),
            _ => {
                self.bad_number(it);
                None
            }
        }
    }

    fn decimal(&mut self, it: &Stmt) -> Option<u64> {
        let v = it.arg(0).and_then(parse_decimal_ms);
        if v.is_none() {
            self.bad_number(it);
        }
        v
    }

    fn count(&mut self, it: &Stmt) -> Option<u32> {
        let v = it.arg(0).and_then(|a| a.parse::<u32>().ok());
        if v.is_none() {
            self.bad_number(it);
        }
        v
    }

    fn threshold(&mut self, it: &Stmt) -> Option<u32> {
        let v = self.count(it)?;
        let clamped = v.clamp(1, 100);
        if clamped != v {
            self.note(
                it.line,
                format!("{} {v}: redha takes 1 to 100: {clamped} used", it.key()),
            );
        }
        Some(clamped)
    }

    fn bad_number(&mut self, it: &Stmt) {
        self.note(
            it.line,
            format!(
                "{}: not a valid number: ignored (redha's default used)",
                it.shown()
            ),
        );
    }
}

/// Why redha's hook loader would refuse `command` as hook `key` on this host.
fn hook_refusal(key: &str, command: &str) -> Option<String> {
    let mut hooks = crate::hooks::HookConfig::default();
    let slot = match key {
        "notify_master" => &mut hooks.notify_master,
        "notify_backup" => &mut hooks.notify_backup,
        "notify_fault" => &mut hooks.notify_fault,
        "notify_stop" => &mut hooks.notify_stop,
        _ => &mut hooks.notify,
    };
    *slot = Some(command.to_string());
    hooks.check().err().map(|e| e.refusal.to_string())
}

/// The command of a vrrp_script: its `script` line's arguments.
fn script_command(script: &Stmt) -> Option<String> {
    script
        .items()
        .iter()
        .find(|s| s.key() == "script")
        .map(Stmt::rest)
        .filter(|s| !s.is_empty())
}

/// Programs that are binaries or shells, not scripts worth reporting as unreadable.
fn is_common_program(base: &str) -> bool {
    matches!(
        base,
        "redis-cli"
            | "killall"
            | "pidof"
            | "pgrep"
            | "systemctl"
            | "sh"
            | "bash"
            | "dash"
            | "zsh"
            | "env"
            | "nc"
            | "ncat"
            | "timeout"
            | "test"
            | "curl"
            | "logger"
            | "true"
            | "false"
    )
}

fn looks_like_address(w: &str) -> bool {
    let ip = w.split('/').next().unwrap_or("");
    ip.parse::<Ipv4Addr>().is_ok() || ip.parse::<Ipv6Addr>().is_ok()
}

/// keepalived's decimal seconds ("5", "0.5", "0.001") in milliseconds (rounded).
fn parse_decimal_ms(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    whole.checked_mul(1000)?.checked_add((micros + 500) / 1000)
}

/// A duration as redha writes it: "5s", "500ms".
fn fmt_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

// ---------------------------------------------------------------------------------
// Shell text: just enough to read redis-cli and SLAVEOF lines of scripts.

/// Splits shell text into words (quotes and backslashes honoured), stopping at the
/// first unquoted `|`, `;`, `&`, `<`, `>`, `)` or backquote.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        _ => w.push(q),
                    }
                }
            }
            '\\' => cur.get_or_insert_with(String::new).extend(chars.next()),
            '|' | ';' | '&' | '<' | '>' | ')' | '`' => break,
            c if c.is_whitespace() => words.extend(cur.take()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    words
}

/// A line without its shell comment (a `#` starting a word).
fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('#') {
        return "";
    }
    match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// `NAME=value` assignments of a shell script (last one wins).
fn assignments(text: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || name.as_bytes()[0].is_ascii_digit()
        {
            continue;
        }
        let value = shell_words(value).into_iter().next().unwrap_or_default();
        vars.retain(|(n, _)| n != name);
        vars.push((name.to_string(), value));
    }
    vars
}

/// Replaces `$NAME` and `${NAME}` of known variables.
fn expand_vars(line: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match vars.iter().find(|(n, _)| n == name) {
            Some((_, v)) if !name.is_empty() => {
                out.push_str(v);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The connection options of a `redis-cli ... PING` invocation.
#[derive(Debug, Default, PartialEq, Eq)]
struct RedisCli {
    host: Option<String>,
    port: Option<String>,
    password: Option<String>,
    user: Option<String>,
    socket: Option<String>,
    uri: Option<String>,
    tls: bool,
    /// The options and command as written (password hidden), for a comment.
    shown: String,
}

/// Reads `redis-cli [options] PING` on a line; `None` if the line has no such call.
fn redis_cli_ping(line: &str) -> Option<RedisCli> {
    let mut search = line;
    while let Some(i) = search.find("redis-cli") {
        let rest = &search[i + "redis-cli".len()..];
        search = rest;
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            continue;
        }
        let words = shell_words(rest);
        let mut cli = RedisCli::default();
        let mut command: Vec<&str> = Vec::new();
        let mut shown: Vec<String> = Vec::new();
        let mut it = words.iter();
        while let Some(w) = it.next() {
            let value_opt = matches!(
                w.as_str(),
                "-h" | "-p"
                    | "-a"
                    | "-s"
                    | "-u"
                    | "-n"
                    | "-r"
                    | "-i"
                    | "-d"
                    | "--user"
                    | "--pass"
                    | "--sni"
                    | "--cacert"
                    | "--cacertdir"
                    | "--cert"
                    | "--key"
            );
            if value_opt {
                let v = it.next().cloned().unwrap_or_default();
                let slot = match w.as_str() {
                    "-h" => Some(&mut cli.host),
                    "-p" => Some(&mut cli.port),
                    "-a" | "--pass" => Some(&mut cli.password),
                    "--user" => Some(&mut cli.user),
                    "-s" => Some(&mut cli.socket),
                    "-u" => Some(&mut cli.uri),
                    _ => None,
                };
                let hidden = matches!(w.as_str(), "-a" | "--pass");
                shown.push(format!("{w} {}", if hidden { "***" } else { v.as_str() }));
                if let Some(slot) = slot {
                    *slot = Some(v);
                }
            } else if w == "--tls" {
                cli.tls = true;
                shown.push(w.clone());
            } else if w.starts_with('-') && command.is_empty() {
                shown.push(w.clone());
            } else {
                command.push(w);
                shown.push(w.clone());
            }
        }
        if command
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case("ping"))
        {
            cli.shown = shown.iter().map(|s| format!(" {s}")).collect();
            return Some(cli);
        }
    }
    None
}

/// `SLAVEOF host port` / `REPLICAOF host port` on a line (not `NO ONE`).
fn replicaof_targets(line: &str) -> Vec<(String, u16)> {
    let words = shell_words(line);
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !(w.eq_ignore_ascii_case("slaveof") || w.eq_ignore_ascii_case("replicaof")) {
            continue;
        }
        let (Some(host), Some(port)) = (words.get(i + 1), words.get(i + 2)) else {
            continue;
        };
        if host.eq_ignore_ascii_case("no") || !is_host(host) {
            continue;
        }
        if let Ok(port) = port.parse::<u16>()
            && port > 0
        {
            found.push((host.clone(), port));
        }
    }
    found
}

fn is_host(h: &str) -> bool {
    h.parse::<Ipv4Addr>().is_ok()
        || (!h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && h.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// A log file a notify script appends to (a `/...log` word).
fn log_path(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>' || c == '=')
        .find(|w| w.starts_with('/') && w.ends_with(".log"))
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------
// Rendering

/// TOML lines of one section: `key = value` with an optional comment, aligned.
#[derive(Default)]
struct Section {
    lines: Vec<(String, Option<String>)>,
}

impl Section {
    fn kv(&mut self, key: &str, value: String, comment: Option<String>) {
        self.lines.push((format!("{key} = {value}"), comment));
    }

    fn raw(&mut self, text: String, comment: Option<String>) {
        self.lines.push((text, comment));
    }

    fn render(&self, out: &mut String) {
        let width = self
            .lines
            .iter()
            .filter(|(_, c)| c.is_some())
            .map(|(t, _)| t.chars().count())
            .filter(|&n| n <= 40)
            .max()
            .unwrap_or(0);
        for (text, comment) in &self.lines {
            match comment {
                Some(c) => {
                    let pad = width.saturating_sub(text.chars().count());
                    out.push_str(&format!("{text}{}  # {}\n", " ".repeat(pad), clean(c)));
                }
                None => {
                    out.push_str(text);
                    out.push('\n');
                }
            }
        }
    }
}

/// A TOML string value.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Text safe inside a TOML comment (no control characters).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

fn render(o: &Out, source: &str, notes: &[Note]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# redha configuration generated from {} by `redha migrate-keepalived`.\n",
        clean(source)
    ));
    s.push_str(&format!(
        "# It is keepalived's vrrp_instance {} (line {}){}.\n",
        clean(&o.name),
        o.line,
        o.router_id
            .as_ref()
            .map_or(String::new(), |r| format!(", router_id {}", clean(r)))
    ));
    s.push_str("# Read the notes at the end, then check it: redha check-config FILE\n\n");

    let mut v = Section::default();
    v.raw("[vrrp]".into(), None);
    if !o.name.is_empty() {
        v.kv(
            "name",
            string(&o.name),
            Some("keepalived's instance name, used in logs".into()),
        );
    }
    v.kv("interface", string(&o.interface), None);
    v.kv(
        "virtual_router_id",
        o.vrid.to_string(),
        Some("the same on both hosts".into()),
    );
    v.kv(
        "priority",
        o.priority.to_string(),
        Some(
            o.priority_comment
                .clone()
                .unwrap_or_else(|| "every node starts as backup; the higher priority wins".into()),
        ),
    );
    if let Some(a) = o.advert_int_s {
        v.kv(
            "advert_int",
            string(&format!("{a}s")),
            o.advert_comment.clone(),
        );
    }
    match o.preempt {
        Some(false) => v.kv(
            "preempt",
            "false".into(),
            Some("keepalived's nopreempt: a master stays until it fails".into()),
        ),
        Some(true) => v.kv("preempt", "true".into(), None),
        None => {}
    }
    if let Some(d) = o.preempt_delay_ms {
        v.kv(
            "preempt_delay",
            string(&fmt_ms(d)),
            Some("no preemption this long after start-up".into()),
        );
    }
    let vips: Vec<String> = o.vips.iter().map(|a| string(a)).collect();
    v.kv(
        "virtual_ipaddresses",
        format!("[{}]", vips.join(", ")),
        None,
    );
    if !o.unicast_peers.is_empty() {
        let peers: Vec<String> = o
            .unicast_peers
            .iter()
            .map(|p| string(&p.to_string()))
            .collect();
        v.kv(
            "unicast_peers",
            format!("[{}]", peers.join(", ")),
            Some("adverts go to these peers only, not to 224.0.0.18".into()),
        );
    }
    if let Some((ip, comment)) = &o.unicast_src_ip {
        v.kv(
            "unicast_src_ip",
            string(&ip.to_string()),
            Some((*comment).into()),
        );
    }
    if let Some((pass, truncated)) = &o.auth_pass {
        v.kv(
            "auth_pass",
            string(pass),
            Some(if *truncated {
                "auth_type PASS, cut to 8 characters as keepalived does".into()
            } else {
                "keepalived's auth_type PASS".into()
            }),
        );
    }
    let g = &o.garp;
    if let Some(ms) = g.master_delay_ms {
        v.kv("garp_master_delay", string(&fmt_ms(ms)), None);
    }
    if let Some(n) = g.master_repeat {
        v.kv("garp_master_repeat", n.to_string(), None);
    }
    if let Some(ms) = g.interval_ms {
        v.kv("garp_interval", string(&fmt_ms(ms)), None);
    }
    if let Some(ms) = g.master_refresh_ms {
        v.kv("garp_master_refresh", string(&fmt_ms(ms)), None);
    }
    if let Some(n) = g.master_refresh_repeat {
        v.kv("garp_master_refresh_repeat", n.to_string(), None);
    }
    for h in &o.hooks {
        match &h.dropped {
            None => v.kv(
                &h.key,
                string(&h.command),
                Some("run with keepalived's arguments, one at a time, with a timeout".into()),
            ),
            Some(why) => v.raw(
                format!("# {} = {}", h.key, clean(&string(&h.command))),
                Some(why.clone()),
            ),
        }
    }
    v.render(&mut s);

    if let Some(r) = &o.redis {
        s.push('\n');
        let mut sec = Section::default();
        let header = if o.redis_assumed {
            "needed by [replication]; keepalived did not check Redis".to_string()
        } else {
            format!(
                "replaces vrrp_script {} (line {}): PING and INFO every check_interval",
                r.script, r.line
            )
        };
        sec.raw("[redis]".into(), Some(header));
        let address = if r.host.contains(':') {
            format!("[{}]:{}", r.host, r.port)
        } else {
            format!("{}:{}", r.host, r.port)
        };
        sec.kv("address", string(&address), Some(r.address_from.clone()));
        if let Some(u) = &r.username {
            sec.kv("username", string(u), Some("from redis-cli --user".into()));
        }
        if let Some(p) = &r.password {
            sec.kv(
                "password",
                string(p),
                Some("from redis-cli -a; better: password_file, readable by redha only".into()),
            );
        }
        if let Some(ms) = r.interval_ms {
            sec.kv(
                "check_interval",
                string(&fmt_ms(ms)),
                Some("keepalived's interval".into()),
            );
        }
        if let Some(ms) = r.timeout_ms {
            sec.kv(
                "check_timeout",
                string(&fmt_ms(ms)),
                Some("keepalived's timeout".into()),
            );
        }
        match r.fall {
            Some(n) => sec.kv(
                "fall",
                n.to_string(),
                Some("failed checks in a row before down".into()),
            ),
            None if !o.redis_assumed => sec.raw(
                "# fall = 2".into(),
                Some("redha's default; keepalived's was 1 (one slow check failed over)".into()),
            ),
            None => {}
        }
        match r.rise {
            Some(n) => sec.kv(
                "rise",
                n.to_string(),
                Some("good checks in a row before up".into()),
            ),
            None if !o.redis_assumed => sec.raw(
                "# rise = 2".into(),
                Some("redha's default; keepalived's was 1".into()),
            ),
            None => {}
        }
        sec.render(&mut s);

        s.push('\n');
        let mut rep = Section::default();
        let active = o.want_replication && o.peer.is_some();
        let prefix = if active { "" } else { "# " };
        rep.raw(
            format!("{prefix}[replication]"),
            Some(if o.want_replication {
                "replaces the notify scripts' SLAVEOF/REPLICAOF commands".into()
            } else {
                "optional: redha would also move replication".into()
            }),
        );
        match &o.peer {
            Some((peer, from)) => {
                rep.kv(&format!("{prefix}peer"), string(peer), Some(from.clone()))
            }
            None => match &o.peer_hint {
                Some(hint) => rep.raw(
                    format!("# peer = {}", string(hint)),
                    Some("the unicast peer, with our Redis port".into()),
                ),
                None => rep.raw(
                    format!("# peer = \"OTHER_HOST:{}\"", r.port),
                    Some("the other host's Redis: fill in".into()),
                ),
            },
        }
        rep.render(&mut s);

        if o.want_replication {
            s.push('\n');
            let mut sl = Section::default();
            sl.raw(
                "# [state_log]".into(),
                Some(match &o.state_log {
                    Some(p) => format!("like the notify scripts' log {p}"),
                    None => "one line per transition and Redis command".into(),
                }),
            );
            sl.raw("# path = \"/var/log/redha/state.log\"".into(), None);
            sl.render(&mut s);
        }
    }

    if o.redis.is_none() {
        s.push_str(
            "\n# No [redis] section: keepalived checked no Redis here, so redha runs as a plain\n# VRRP router (see config/reference.toml for [redis] and [replication]).\n",
        );
    }

    if !notes.is_empty() {
        s.push_str(&format!(
            "\n# Notes: what {} had that redha does differently or not at all.\n",
            clean(source)
        ));
        for n in notes {
            s.push_str(&format!("# - {}\n", clean(&n.to_string())));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::PathBuf;
    use std::time::Duration;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived")
    }

    /// Migrates fixture `name` (instance `instance`), reading script files under the
    /// fixture directory `root` as if it were `/`, or none; checks the TOML against
    /// the loader and against `<golden>.toml` (`REDHA_BLESS=1` rewrites it).
    fn run_fixture(
        name: &str,
        instance: Option<&str>,
        root: Option<&str>,
        golden: &str,
    ) -> (Migration, Config) {
        let text = fs::read_to_string(fixtures().join(name)).unwrap();
        let root = root.map(|r| fixtures().join(r));
        let read = |p: &Path| {
            let root = root.as_ref()?;
            fs::read(root.join(p.strip_prefix("/").unwrap_or(p))).ok()
        };
        let m =
            migrate_with(&text, name, instance, &read).unwrap_or_else(|e| panic!("{name}: {e}"));
        let config = Config::parse(Path::new("x.toml"), &m.toml)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", m.toml));
        let golden = fixtures().join(format!("{golden}.toml"));
        if std::env::var_os("REDHA_BLESS").is_some() {
            fs::write(&golden, &m.toml).unwrap();
        }
        let expected = fs::read_to_string(&golden).unwrap_or_default();
        assert!(
            expected == m.toml,
            "{name}: the TOML differs from {} (REDHA_BLESS=1 rewrites it):\n{}",
            golden.display(),
            m.toml
        );
        (m, config)
    }

    /// Asserts a note on `line` contains every one of `needles`.
    #[track_caller]
    fn has_note(m: &Migration, line: usize, needles: &[&str]) {
        assert!(
            m.notes
                .iter()
                .any(|n| n.line == line && needles.iter().all(|w| n.text.contains(w))),
            "no note on line {line} with {needles:?}; notes:\n{}",
            render_notes(&m.notes)
        );
    }

    #[track_caller]
    fn no_note(m: &Migration, needle: &str) {
        assert!(
            !m.notes.iter().any(|n| n.text.contains(needle)),
            "unexpected note with {needle:?}:\n{}",
            render_notes(&m.notes)
        );
    }

    fn vips(c: &Config) -> Vec<String> {
        c.instance()
            .virtual_addresses
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn active_hooks(m: &Migration) -> Vec<&str> {
        m.toml.lines().filter(|l| l.starts_with("notify")).collect()
    }

    #[test]
    fn classic_pair_host_26() {
        let (m, c) = run_fixture("classic-26.conf", None, Some("root-26"), "classic-26");
        let i = c.instance();
        assert_eq!(i.name, "VI_1");
        assert_eq!(
            (i.interface.as_str(), i.vrid, i.priority),
            ("eth0", 51, 100)
        );
        assert_eq!(i.advert_int, secs(5));
        assert!(!i.preempt);
        assert_eq!(vips(&c), ["10.20.112.100/24"]);
        assert_eq!(c.vrrp.auth_pass.as_ref().unwrap().0, "redis");

        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.address.to_string(), "127.0.0.1:6379");
        assert_eq!((r.check_interval, r.check_timeout), (secs(2), secs(2)));
        assert_eq!((r.fall.0, r.rise.0), (3, 2));
        assert!(
            m.toml
                .contains("from `redis-cli -h 127.0.0.1 -p 6379 PING`")
        );

        let rep = c.replication.as_ref().unwrap();
        assert_eq!(rep.peer.to_string(), "10.20.112.27:6379");
        assert!(
            m.toml
                .contains("from SLAVEOF 10.20.112.27 6379 in notify_master")
        );

        // The SLAVEOF scripts are written commented out, never as hooks.
        assert!(active_hooks(&m).is_empty(), "{}", m.toml);
        for key in [
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
        ] {
            assert!(m.toml.contains(&format!("# {key} = ")), "{key}");
        }
        has_note(
            &m,
            42,
            &["notify_master", "dropped", "SLAVEOF", "[replication]"],
        );
        has_note(&m, 43, &["notify_backup", "dropped", "SLAVEOF"]);
        has_note(&m, 44, &["notify_fault", "dropped", "acts on Redis"]);
        has_note(
            &m,
            6,
            &[
                "notification_email, notification_email_from, smtp_server, smtp_connect_timeout (lines 6, 9, 10, 11)",
                "no equivalent",
            ],
        );
        has_note(&m, 12, &["router_id redis-26"]);
        has_note(
            &m,
            13,
            &["enable_script_security, script_user root (lines 13, 14)"],
        );
        assert!(m.toml.contains("# [state_log]"));
        assert!(m.toml.contains("/var/log/keepalived-redis-state.log"));
        assert!(m.toml.starts_with(
            "# redha configuration generated from classic-26.conf by `redha migrate-keepalived`."
        ));
    }

    #[test]
    fn classic_pair_host_27_checks_inline_and_points_back() {
        let (m, c) = run_fixture("classic-27.conf", None, Some("root-27"), "classic-27");
        let (_, c26) = run_fixture("classic-26.conf", None, Some("root-26"), "classic-26");
        // The two halves agree on everything VRRP compares.
        let (a, b) = (c.instance(), c26.instance());
        assert_eq!(
            (a.vrid, a.advert_int, a.preempt),
            (b.vrid, b.advert_int, b.preempt)
        );
        assert_eq!(a.auth, b.auth);
        assert_eq!(a.virtual_addresses, b.virtual_addresses);
        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.address.to_string(), "127.0.0.1:6379");
        assert!(
            m.toml
                .contains("from `redis-cli -h 127.0.0.1 -p 6379 ping`")
        );
        assert_eq!(c.replication.unwrap().peer.to_string(), "10.20.112.26:6379");
    }

    #[test]
    fn classic_pair_without_its_scripts_leaves_the_peer_to_fill_in() {
        let (m, c) = run_fixture("classic-26.conf", None, None, "classic-26-no-scripts");
        // The check script's name says Redis: the default address, with a note.
        assert_eq!(c.redis.unwrap().address.to_string(), "127.0.0.1:6379");
        has_note(
            &m,
            18,
            &["could not be read here", "checks Redis", "127.0.0.1:6379"],
        );
        // The notify scripts are Redis scripts by their names: dropped all the same.
        assert!(active_hooks(&m).is_empty());
        has_note(&m, 42, &["notify_master", "dropped", "could not be read"]);
        // No peer could be inferred: [replication] is commented out, with a note.
        assert!(c.replication.is_none());
        assert!(m.toml.contains("# [replication]"));
        assert!(m.toml.contains("# peer = \"OTHER_HOST:6379\""));
        has_note(&m, 25, &["[replication] peer", "could not be inferred"]);
    }

    #[test]
    fn unicast_with_pass_auth_and_inline_replicaof() {
        let (m, c) = run_fixture("unicast-auth.conf", None, None, "unicast-auth");
        let i = c.instance();
        assert_eq!(
            (i.interface.as_str(), i.vrid, i.priority),
            ("ens192", 60, 150)
        );
        assert_eq!(
            i.unicast_peers,
            ["192.168.50.12".parse::<Ipv4Addr>().unwrap()]
        );
        assert_eq!(i.unicast_src_ip, Some("192.168.50.11".parse().unwrap()));
        assert_eq!(c.vrrp.auth_pass.as_ref().unwrap().0, "rEd1s");
        assert_eq!(vips(&c), ["192.168.50.100/24"]);
        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.password.as_ref().unwrap().0, "Str0ng!Pass");
        assert_eq!(r.address.to_string(), "127.0.0.1:6379");
        assert_eq!((r.check_interval, r.check_timeout), (secs(1), secs(1)));
        // The comment shows the command, never the password.
        assert!(m.toml.contains("redis-cli -a *** --no-auth-warning ping"));
        assert_eq!(
            c.replication.unwrap().peer.to_string(),
            "192.168.50.12:6379"
        );
        has_note(&m, 11, &["password", "password_file"]);
        has_note(&m, 43, &["notify_master", "dropped", "SLAVEOF/REPLICAOF"]);
        has_note(&m, 44, &["notify_backup", "dropped"]);
        // `dev ens192` is the instance's interface: nothing lost, nothing said.
        no_note(&m, "dev ens192");
        assert!(active_hooks(&m).is_empty());
    }

    #[test]
    fn long_password_is_cut_to_8_like_keepalived() {
        let (m, c) = run_fixture("long-password.conf", None, None, "long-password");
        assert_eq!(c.vrrp.auth_pass.as_ref().unwrap().0, "redisHA2");
        has_note(&m, 22, &["auth_pass", "17 bytes", "first 8", "redisHA2"]);
        let i = c.instance();
        assert_eq!((i.vrid, i.priority, i.advert_int), (33, 90, secs(2)));
        assert_eq!(vips(&c), ["172.20.0.10/16"]);
        has_note(
            &m,
            25,
            &["brd 172.20.255.255", "label eth1:vip", "no equivalent"],
        );
        // `killall -0 redis-server` checks Redis, without PING: default address.
        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.address.to_string(), "127.0.0.1:6379");
        assert_eq!(r.check_interval, secs(3));
        has_note(
            &m,
            9,
            &["check_redis", "no redis-cli PING", "127.0.0.1:6379"],
        );
        has_note(&m, 28, &["weight 2", "FAULT"]);
        // The alert script is not a Redis script; it is missing here, so redha's
        // hook check would refuse it: written commented out, with a note.
        assert!(
            m.toml
                .contains("# notify = \"/usr/local/bin/keepalived-alert.sh\"")
        );
        has_note(
            &m,
            30,
            &["notify", "would refuse it on this host", "does not exist"],
        );
        has_note(&m, 31, &["smtp_alert", "no equivalent"]);
        has_note(
            &m,
            4,
            &["script_user keepalived_script, enable_script_security"],
        );
        // No replication scripts: [replication] is left commented out.
        assert!(c.replication.is_none());
        has_note(&m, 14, &["no notify script moved Redis replication"]);
    }

    #[test]
    fn master_with_weight_and_garp_tuning() {
        let (m, c) = run_fixture("weight-master.conf", None, None, "weight-master");
        let i = c.instance();
        assert_eq!((i.vrid, i.priority, i.advert_int), (77, 101, secs(1)));
        assert!(i.preempt);
        has_note(
            &m,
            17,
            &[
                "state MASTER",
                "starts every node as backup",
                "priority decide",
                "101",
            ],
        );
        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.address.to_string(), "127.0.0.1:6380");
        // keepalived's timeout 3 > interval 2: redha needs timeout <= interval.
        assert_eq!((r.check_interval, r.check_timeout), (secs(2), secs(2)));
        has_note(&m, 10, &["timeout 3s is longer than interval 2s"]);
        assert_eq!((r.fall.0, r.rise.0), (2, 1));
        has_note(&m, 29, &["chk_redis weight -2", "FAULT"]);
        assert_eq!(i.garp.master_delay, secs(1));
        assert_eq!(i.garp.master_repeat, 3);
        assert_eq!(i.garp.master_refresh, secs(60));
        has_note(&m, 25, &["track_interface", "no equivalent"]);
        assert!(c.replication.is_none());
        assert!(m.toml.contains("# peer = \"OTHER_HOST:6380\""));
    }

    #[test]
    fn backup_with_preempt_delay_and_a_weight_override() {
        let (m, c) = run_fixture("weight-backup.conf", None, None, "weight-backup");
        let i = c.instance();
        assert_eq!((i.vrid, i.priority), (77, 100));
        assert!(i.preempt);
        assert_eq!(i.preempt_delay, secs(30));
        // The track_script's own weight wins over the vrrp_script's.
        has_note(&m, 23, &["chk_redis weight -5", "FAULT"]);
        no_note(&m, "state");
        let (_, master) = run_fixture("weight-master.conf", None, None, "weight-master");
        assert_eq!(master.instance().vrid, i.vrid);
        assert_eq!(master.redis.unwrap().address, c.redis.unwrap().address);
    }

    #[test]
    fn braces_on_their_own_lines_and_bang_comments() {
        let (m, c) = run_fixture("braces-own-lines.conf", None, None, "braces-own-lines");
        let i = c.instance();
        assert_eq!(i.name, "redis_vip");
        assert_eq!(
            (i.interface.as_str(), i.vrid, i.priority),
            ("bond0", 121, 120)
        );
        assert_eq!(i.advert_int, secs(3));
        assert!(!i.preempt);
        assert_eq!(vips(&c), ["10.0.3.50/32", "10.0.3.51/24"]);
        has_note(&m, 31, &["10.0.3.50", "/32", "keepalived's default"]);
        has_note(&m, 32, &["scope global", "no equivalent"]);
        no_note(&m, "dev bond0");
        has_note(
            &m,
            5,
            &["include /etc/keepalived/conf.d/*.conf", "not followed"],
        );
        // Global garp defaults apply to the instance.
        assert_eq!(i.garp.master_refresh, secs(30));
        assert_eq!(i.garp.master_refresh_repeat, 2);
        // The script string continued on the next line with a backslash.
        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.address.to_string(), "10.0.3.21:6379");
        assert_eq!(r.check_interval, secs(1));
        // failover.sh is a Redis script by its path: dropped; replication commented.
        has_note(&m, 38, &["notify_master", "dropped", "could not be read"]);
        assert!(c.replication.is_none());
        assert!(m.toml.contains("# [replication]"));
        has_note(&m, 21, &["could not be inferred"]);
        // The paging script is missing here: commented; logger exists: a hook.
        has_note(&m, 40, &["notify_fault", "would refuse it on this host"]);
        if crate::migrate::hook_refusal("notify", "/usr/bin/logger -t keepalived-vip").is_none() {
            assert_eq!(
                active_hooks(&m),
                [
                    "notify = \"/usr/bin/logger -t keepalived-vip\"  # run with keepalived's arguments, one at a time, with a timeout"
                ]
            );
        }
    }

    #[test]
    fn two_instances_first_one_by_default_other_on_request() {
        let (m, c) = run_fixture("two-instances.conf", None, None, "two-instances");
        let i = c.instance();
        assert_eq!((i.name.as_str(), i.vrid, i.priority), ("VI_6379", 10, 150));
        assert_eq!(
            c.redis.as_ref().unwrap().address.to_string(),
            "127.0.0.1:6379"
        );
        assert_eq!(c.replication.unwrap().peer.to_string(), "10.9.0.12:6379");
        has_note(
            &m,
            34,
            &[
                "vrrp_instance VI_6380 not migrated",
                "one VRRP instance per configuration file",
            ],
        );
        has_note(&m, 5, &["vrrp_skip_check_adv_addr"]);
        // chk_redis_6380 belongs to the other instance: no "untracked" note.
        no_note(&m, "no instance tracks");

        let (m, c) = run_fixture(
            "two-instances.conf",
            Some("VI_6380"),
            None,
            "two-instances-VI_6380",
        );
        let i = c.instance();
        assert_eq!((i.name.as_str(), i.vrid, i.priority), ("VI_6380", 11, 100));
        assert_eq!(
            c.redis.as_ref().unwrap().address.to_string(),
            "127.0.0.1:6380"
        );
        assert_eq!(c.replication.unwrap().peer.to_string(), "10.9.0.12:6380");
        has_note(&m, 18, &["vrrp_instance VI_6379 not migrated"]);

        let text = fs::read_to_string(fixtures().join("two-instances.conf")).unwrap();
        let err = migrate_with(&text, "x", Some("VI_9"), &|_| None).unwrap_err();
        assert!(err.to_string().contains("VI_6379, VI_6380"), "{err}");
    }

    #[test]
    fn vrrp_version_3_is_noted_and_intervals_rounded() {
        let (m, c) = run_fixture("vrrp3.conf", None, None, "vrrp3");
        has_note(&m, 4, &["vrrp_version 3", "no equivalent yet", "VRRPv2"]);
        let i = c.instance();
        assert_eq!(i.advert_int, secs(1));
        has_note(&m, 22, &["advert_int 0.5", "whole seconds", "1s"]);
        assert_eq!(vips(&c), ["192.0.2.80/24"]);
        has_note(&m, 25, &["2001:db8::80/64", "IPv6", "dropped"]);
        has_note(&m, 27, &["virtual_ipaddress_excluded", "no equivalent"]);
        has_note(&m, 5, &["vrrp_strict"]);
        has_note(&m, 7, &["vrrp_gna_interval"]);
        assert_eq!(i.garp.interval, Duration::from_millis(1));
        let r = c.redis.as_ref().unwrap();
        assert_eq!(r.address.to_string(), "[::1]:6379");
        assert_eq!((r.fall.0, r.rise.0), (3, 3));
    }

    #[test]
    fn lvs_blocks_have_no_equivalent() {
        let (m, c) = run_fixture("lvs.conf", None, None, "lvs");
        has_note(
            &m,
            28,
            &["virtual_server 10.30.0.100 6379", "no equivalent", "LVS"],
        );
        has_note(&m, 7, &["vrrp_sync_group VG_1", "no equivalent"]);
        has_note(&m, 4, &["lvs_sync_daemon"]);
        has_note(&m, 20, &["auth_type AH", "no equivalent"]);
        has_note(&m, 14, &["state MASTER"]);
        has_note(&m, 24, &["10.30.0.100", "/32"]);
        let i = c.instance();
        assert_eq!((i.vrid, i.priority), (51, 150));
        assert_eq!(i.auth, vrrp::Auth::None);
        assert_eq!(vips(&c), ["10.30.0.100/32"]);
        assert!(c.redis.is_none() && c.replication.is_none());
        assert!(m.toml.contains("plain\n# VRRP router"));
    }

    // --- the pieces

    fn words(text: &str) -> Vec<Vec<String>> {
        let tree = parse(tokenize(text).0).unwrap();
        tree.iter()
            .map(|s| s.words.iter().map(|w| w.text.clone()).collect())
            .collect()
    }

    #[test]
    fn comments_quotes_and_escapes_follow_keepalived() {
        assert_eq!(
            words("a b # c\nd \"e # f\" ! g\nauth_pass ab#cd\nx\\ y\n"),
            [
                vec!["a", "b"],
                vec!["d", "e # f"],
                vec!["auth_pass", "ab"],
                vec!["x y"],
            ]
        );
        // Braces are tokens even when attached.
        let tree = parse(tokenize("vrrp_instance X{\n  state BACKUP}\n").0).unwrap();
        assert_eq!(tree[0].key(), "vrrp_instance");
        assert_eq!(tree[0].items()[0].rest(), "BACKUP");
        // One-line blocks; a continuation keeps the statement's first line.
        let tree = parse(tokenize("p { 10.0.0.2 10.0.0.3 }\nq a \\\n   b\nr\n").0).unwrap();
        assert_eq!(tree[0].items()[0].words.len(), 2);
        assert_eq!((tree[1].line, tree[1].rest()), (2, "a b".to_string()));
        assert_eq!(tree[2].line, 4);
    }

    #[test]
    fn a_brace_on_the_next_line_opens_the_previous_statement() {
        let tree = parse(tokenize("global_defs\n{\n router_id x\n}\n\n{\n}\n").0).unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].items()[0].rest(), "x");
        assert_eq!((tree[1].key(), tree[1].line), ("", 6));
    }

    #[test]
    fn unbalanced_braces_name_their_line() {
        let err = parse(tokenize("a {\n b {\n }\n").0).unwrap_err();
        assert_eq!(
            err,
            MigrateError::Syntax {
                line: 1,
                message: "this '{' is never closed".into()
            }
        );
        let err = parse(tokenize("a {\n}\n}\n").0).unwrap_err();
        assert!(matches!(err, MigrateError::Syntax { line: 3, .. }), "{err}");
    }

    const MINIMAL: &str = "vrrp_instance V {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  192.0.2.9/24\n }\n}\n";

    fn quick(text: &str) -> Result<Migration, MigrateError> {
        migrate_with(text, "k.conf", None, &|_| None)
    }

    #[test]
    fn a_minimal_instance_and_what_is_required() {
        let m = quick(MINIMAL).unwrap();
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        let c = Config::parse(Path::new("x.toml"), &m.toml).unwrap();
        assert_eq!((c.vrrp.priority.0, c.vrrp.preempt), (100, true));
        assert_eq!(quick("global_defs {\n}\n"), Err(MigrateError::NoInstance));
        let err = quick(&MINIMAL.replace(" interface eth0\n", "")).unwrap_err();
        assert!(
            matches!(err, MigrateError::Unusable { line: 1, .. }),
            "{err}"
        );
        let err = quick(&MINIMAL.replace("9\n", "300\n")).unwrap_err();
        assert!(
            matches!(err, MigrateError::Unusable { line: 3, .. }),
            "{err}"
        );
        let err = quick(&MINIMAL.replace("192.0.2.9/24", "fd00::9")).unwrap_err();
        assert!(err.to_string().contains("no IPv4 virtual address"), "{err}");
    }

    #[test]
    fn master_without_priority_is_the_address_owner() {
        let m = quick(&MINIMAL.replace("interface", "state MASTER\n interface")).unwrap();
        let c = Config::parse(Path::new("x.toml"), &m.toml).unwrap();
        assert_eq!(c.vrrp.priority.0, 255);
        has_note(&m, 2, &["state MASTER", "address owner"]);
    }

    #[test]
    fn replication_scripts_without_a_check_still_get_redis() {
        let text = MINIMAL.replace(
            " interface eth0\n",
            " interface eth0\n notify_backup \"/usr/bin/redis-cli slaveof 192.0.2.2 6379\"\n notify_master /etc/keepalived/master.sh root\n",
        );
        let m = quick(&text).unwrap();
        let c = Config::parse(Path::new("x.toml"), &m.toml).unwrap();
        assert_eq!(c.redis.unwrap().address.to_string(), "127.0.0.1:6379");
        assert_eq!(c.replication.unwrap().peer.to_string(), "192.0.2.2:6379");
        has_note(&m, 1, &["no tracked script checked Redis", "FAULT"]);
        // Unquoted words after the script are keepalived's user and group.
        has_note(&m, 4, &["notify_master", "(root)", "user and group"]);
    }

    #[test]
    fn a_track_script_without_its_vrrp_script_is_noted() {
        let text = MINIMAL.replace(
            " interface eth0\n",
            " interface eth0\n track_script {\n  chk_gone\n }\n",
        );
        let m = quick(&(text + "vrrp_script chk_other {\n script \"/bin/true\"\n}\n")).unwrap();
        has_note(&m, 4, &["track_script chk_gone", "no vrrp_script"]);
        has_note(&m, 11, &["vrrp_script chk_other", "no instance tracks it"]);
    }

    #[test]
    fn unknown_keys_are_noted_not_fatal() {
        let text = MINIMAL.replace(" interface eth0\n", " interface eth0\n frobnicate 3\n")
            + "foo_bar {\n}\n";
        let m = quick(&text).unwrap();
        has_note(&m, 3, &["frobnicate 3", "not known"]);
        has_note(&m, 9, &["foo_bar", "not known"]);
    }

    /// Mangled fixtures never panic and never yield a TOML the loader refuses. (Hook
    /// programs are renamed so that none exists here: whether the loader takes a hook
    /// is the hook check's business.)
    /// Found by fuzzing (fuzz/regressions/migrate): a repeated notify line was
    /// written twice, and the loader refused the duplicate key.
    #[test]
    fn a_repeated_notify_line_keeps_the_first_like_keepalived() {
        let text = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        192.0.2.100/24\n    }\n    notify \"/usr/bin/logger -t first\"\n    notify \"/usr/bin/logger -t second\"\n    notify_master /nonexistent/a.sh\n    notify_master /nonexistent/b.sh\n}\n";
        let m = migrate_with(text, "dup.conf", None, &|_: &Path| None)
            .unwrap_or_else(|e| panic!("{e}"));
        Config::parse(Path::new("x.toml"), &m.toml).unwrap();
        assert!(m.toml.contains("first"), "{}", m.toml);
        assert!(!m.toml.contains("second"), "{}", m.toml);
        assert!(!m.toml.contains("b.sh"), "{}", m.toml);
        has_note(&m, 8, &["notify", "given again", "ignored"]);
        has_note(&m, 10, &["notify_master", "given again"]);
    }

    #[test]
    fn mangled_files_never_yield_a_refused_config() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        let mut runs = 0;
        for entry in fs::read_dir(fixtures()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension() != Some("conf".as_ref()) {
                continue;
            }
            let text = fs::read_to_string(&path)
                .unwrap()
                .replace("/usr/bin/", "/nonexistent/");
            for _ in 0..300 {
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                for _ in 0..1 + next(3) {
                    if lines.is_empty() {
                        break;
                    }
                    let i = next(lines.len());
                    match next(5) {
                        0 => {
                            lines.remove(i);
                        }
                        1 => {
                            let j = next(lines.len());
                            lines.swap(i, j);
                        }
                        2 => {
                            let copy = lines[i].clone();
                            lines.insert(i, copy);
                        }
                        3 => {
                            let mut words: Vec<&str> = lines[i].split_whitespace().collect();
                            if !words.is_empty() {
                                words.remove(next(words.len()));
                            }
                            lines[i] = words.join(" ");
                        }
                        _ => {
                            let number = ["0", "1", "255", "256", "99999999999999999999"][next(5)];
                            if let Some(start) = lines[i].find(|c: char| c.is_ascii_digit()) {
                                let end = lines[i][start..]
                                    .find(|c: char| !c.is_ascii_digit())
                                    .map_or(lines[i].len(), |e| start + e);
                                lines[i].replace_range(start..end, number);
                            }
                        }
                    }
                }
                let mangled = lines.join("\n");
                if let Err(MigrateError::Rejected(e)) =
                    migrate_with(&mangled, "m.conf", None, &|_| None)
                {
                    panic!("{}: refused: {e}\n{mangled}", path.display());
                }
                runs += 1;
            }
        }
        assert!(runs >= 8 * 300);
    }

    #[test]
    fn shell_lines_of_scripts() {
        assert_eq!(
            shell_words("redis-cli -a 'a b' \"c\\\"d\" e\\ f | grep PONG"),
            ["redis-cli", "-a", "a b", "c\"d", "e f"]
        );
        let cli =
            redis_cli_ping("X=`/usr/bin/redis-cli -h 10.0.0.1 -p 7000 --pass s PING`").unwrap();
        assert_eq!(
            (
                cli.host.as_deref(),
                cli.port.as_deref(),
                cli.password.as_deref()
            ),
            (Some("10.0.0.1"), Some("7000"), Some("s"))
        );
        assert_eq!(cli.shown, " -h 10.0.0.1 -p 7000 --pass *** PING");
        assert!(redis_cli_ping("REDISCLI=\"/usr/bin/redis-cli\"").is_none());
        assert!(redis_cli_ping("redis-cli -p 6379 info replication").is_none());
        assert_eq!(
            replicaof_targets("$R slaveof 10.0.0.2 6380 >> /x.log"),
            [("10.0.0.2".to_string(), 6380)]
        );
        assert!(replicaof_targets("redis-cli SLAVEOF NO ONE").is_empty());
        assert!(replicaof_targets("echo Run SLAVEOF cmd ...").is_empty());
        let vars = assignments("MASTER_IP=10.0.0.7\nexport PORT=\"6379\"\n");
        assert_eq!(
            expand_vars("SLAVEOF $MASTER_IP ${PORT} $OTHER", &vars),
            "SLAVEOF 10.0.0.7 6379 $OTHER"
        );
    }

    #[test]
    fn decimal_seconds() {
        assert_eq!(parse_decimal_ms("5"), Some(5000));
        assert_eq!(parse_decimal_ms("0.5"), Some(500));
        assert_eq!(parse_decimal_ms("0.001"), Some(1));
        assert_eq!(parse_decimal_ms("1.25"), Some(1250));
        assert_eq!(parse_decimal_ms("x"), None);
        assert_eq!(parse_decimal_ms("."), None);
        assert_eq!(
            (fmt_ms(5000), fmt_ms(1250)),
            ("5s".to_string(), "1250ms".to_string())
        );
    }

    #[test]
    fn notes_render_one_per_line() {
        let notes = [
            Note {
                line: 3,
                text: "include x: not followed".into(),
            },
            Note {
                line: 9,
                text: "smtp_alert: no equivalent".into(),
            },
        ];
        assert_eq!(
            render_notes(&notes),
            "2 notes (keepalived.conf line: what redha does instead):\n  line 3: include x: not followed\n  line 9: smtp_alert: no equivalent\n"
        );
        assert_eq!(render_notes(&[]), "");
    }
}
