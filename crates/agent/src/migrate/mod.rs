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
//! - **Every instance, or the one asked for.** A file of several `vrrp_instance`s
//!   becomes named instances of one agent (`[instances.NAME.vrrp]`, ...) with its
//!   `vrrp_sync_group`s as `[sync_groups]`; an instance whose check script reaches
//!   the Redis of an earlier one (an IPv6 VIP beside an IPv4 one) has no `[redis]` of
//!   its own. With [`migrate_with`]'s `instance`, that one alone, in the
//!   single-instance form.
//! - **Replication scripts are dropped, not kept.** A notify script that runs
//!   `SLAVEOF`/`REPLICAOF` (or, when it cannot be read, whose command names Redis) is
//!   written as a commented-out line with a note: `[replication]` does its work
//!   without the fixed sleeps, and running both would fight over the Redis roles.
//!   Other notify scripts become redha hooks with the same keys.
//! - **Script files are read when readable** (absolute paths named in `script` and
//!   `notify*` lines, text files only): to find `redis-cli -h/-p/-a` in a check script,
//!   and `SLAVEOF <peer> <port>` in a notify script to fill `[replication] peer`.
//!
//! One concern a file: `lexer.rs` and `tree.rs` read keepalived.conf, `model.rs` holds
//! what was found; `survey.rs` (the top level), `instance.rs` (a vrrp_instance's own
//! keys), `check.rs` (the check script: `[redis]`) and `notify.rs` (the notify
//! scripts: hooks and `[replication]`) convert it, reading scripts with `script.rs`
//! and `shell.rs` and numbers with `numbers.rs`; `render.rs` writes the TOML and
//! `notes.rs` the report. The end-to-end tests are in `tests.rs`.

use std::path::Path;

mod check;
mod instance;
mod lexer;
mod model;
mod notes;
mod notify;
mod numbers;
mod render;
mod script;
mod shell;
mod survey;
#[cfg(test)]
mod tests;
mod tree;

pub use notes::{Note, render_notes};
pub use script::read_script_file;

use lexer::tokenize;
use render::{render, render_many};
use tree::parse;

/// The result of a migration: the TOML text and what did not carry over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The redha configuration, commented, accepted by redha's config loader.
    pub toml: String,
    /// What keepalived.conf had that redha does differently or not at all, in the
    /// order of the keepalived lines.
    pub notes: Vec<Note>,
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
    let toml = if instance.is_none() && survey.instances.len() > 1 {
        let mut outs = Vec::new();
        for st in &survey.instances {
            let out = mapper.instance(st, &survey)?;
            outs.push(mapper.named(out, &outs)?);
        }
        let groups = mapper.sync_groups(&survey, &outs);
        let mut notes = std::mem::take(&mut mapper.notes);
        notes.sort_by_key(|n| n.line);
        let toml = render_many(&outs, &groups, source_name, &notes);
        mapper.notes = notes;
        toml
    } else {
        let why = if survey.instances.len() > 1 {
            "only one instance is migrated (migrate without --instance to keep them together)"
        } else {
            "the file has one vrrp_instance, nothing to keep in step"
        };
        for group in &survey.groups {
            mapper.note(
                group.line,
                format!(
                    "vrrp_sync_group {}: not migrated: {why}",
                    group.arg(0).unwrap_or("")
                ),
            );
        }
        let chosen = mapper.choose(&survey, instance)?;
        let out = mapper.instance(chosen, &survey)?;
        mapper.notes.sort_by_key(|n| n.line);
        render(&out, source_name, &mapper.notes)
    };
    crate::config_file::ConfigFile::parse(Path::new("migrated.toml"), &toml)
        .map_err(|e| MigrateError::Rejected(e.to_string()))?;
    Ok(Migration {
        toml,
        notes: mapper.notes,
    })
}

/// The mapping from the tree to [`Out`](model::Out), collecting notes on the way; its
/// methods are in the files of their concern.
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
}
