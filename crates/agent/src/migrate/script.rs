//! Reading the scripts keepalived.conf names: the files on this host (or the test's
//! reader), and the command with the text files it names, as [`ScriptText`].

use std::fs;
use std::path::Path;

use super::Mapper;
use super::shell::{assignments, expand_vars, shell_words, strip_comment};

/// Reads a script named in the configuration from this host: regular files up to
/// 256 KiB (a binary, such as the program `redis-cli` itself, is ignored later).
pub fn read_script_file(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 256 * 1024 {
        return None;
    }
    fs::read(path).ok()
}

/// What a script is, from its command and the files it names.
pub(super) struct ScriptText {
    /// The command and the readable text files it names, with `$VAR`s expanded.
    pub(super) lines: Vec<String>,
    /// Absolute paths that could not be read (missing, unreadable).
    pub(super) unreadable: Vec<String>,
}

impl ScriptText {
    pub(super) fn mentions(&self, needle: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l.to_ascii_lowercase().contains(needle))
    }
}

impl Mapper<'_> {
    /// The command and the text files it names, with simple `$VAR`s expanded.
    pub(super) fn script_text(&mut self, command: &str) -> ScriptText {
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
