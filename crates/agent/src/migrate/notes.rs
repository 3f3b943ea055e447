//! The report of a migration: a [`Note`] for each thing of keepalived.conf that has
//! no equivalent, or a different one, and how the CLI prints them.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
