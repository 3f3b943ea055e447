//! The state log: one line per event (transition, health change, rule, Redis command
//! with the offsets before and after), in text or JSON lines, appended to a file
//! besides the tracing output, so that an operator can replay what happened.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use humantime_serde::re::humantime;
use tracing::warn;

use crate::config::StateLogFormat;

/// An open state log (or none: every call is then a no-op).
#[derive(Debug, Default)]
pub struct StateLog {
    file: Option<File>,
    format: StateLogFormat,
}

impl StateLog {
    /// Opens (creates, appends to) the file.
    pub fn open(path: &Path, format: StateLogFormat) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(StateLog {
            file: Some(file),
            format,
        })
    }

    /// Appends one event with its fields, in order.
    pub fn record(&mut self, event: &str, fields: &[(&str, String)]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let line = format_line(self.format, SystemTime::now(), event, fields);
        if let Err(e) = file.write_all(line.as_bytes()) {
            warn!(error = %e, "writing the state log failed");
        }
    }
}

/// One line, newline included.
pub fn format_line(
    format: StateLogFormat,
    at: SystemTime,
    event: &str,
    fields: &[(&str, String)],
) -> String {
    let time = humantime::format_rfc3339_millis(at).to_string();
    match format {
        StateLogFormat::Text => {
            let mut line = format!("{time} event={event}");
            for (key, value) in fields {
                if value.is_empty() || value.contains([' ', '"', '=']) {
                    line.push_str(&format!(" {key}={value:?}"));
                } else {
                    line.push_str(&format!(" {key}={value}"));
                }
            }
            line.push('\n');
            line
        }
        StateLogFormat::Json => {
            let mut line = format!(
                "{{\"time\":{},\"event\":{}",
                json_string(&time),
                json_string(event)
            );
            for (key, value) in fields {
                line.push_str(&format!(",{}:{}", json_string(key), json_string(value)));
            }
            line.push_str("}\n");
            line
        }
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_095_000_123)
    }

    #[test]
    fn text_lines_quote_what_needs_it() {
        let line = format_line(
            StateLogFormat::Text,
            at(),
            "command",
            &[
                ("target", "local".into()),
                ("command", "REPLICAOF NO ONE".into()),
            ],
        );
        assert_eq!(
            line,
            "2025-11-25T18:23:20.123Z event=command target=local command=\"REPLICAOF NO ONE\"\n"
        );
    }

    #[test]
    fn json_lines_escape() {
        let line = format_line(
            StateLogFormat::Json,
            at(),
            "rule",
            &[("why", "a \"quoted\"\nline".into())],
        );
        assert_eq!(
            line,
            "{\"time\":\"2025-11-25T18:23:20.123Z\",\"event\":\"rule\",\"why\":\"a \\\"quoted\\\"\\nline\"}\n"
        );
    }
}
