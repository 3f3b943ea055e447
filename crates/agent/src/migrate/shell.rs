//! Shell text: just enough to read the `redis-cli ... PING` and `SLAVEOF host port`
//! lines of scripts (words, comments, `NAME=value` assignments and `$NAME`s).

use std::net::Ipv4Addr;

/// Splits shell text into words (quotes and backslashes honoured), stopping at the
/// first unquoted `|`, `;`, `&`, `<`, `>`, `)` or backquote.
pub(super) fn shell_words(text: &str) -> Vec<String> {
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
pub(super) fn strip_comment(line: &str) -> &str {
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
pub(super) fn assignments(text: &str) -> Vec<(String, String)> {
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
pub(super) fn expand_vars(line: &str, vars: &[(String, String)]) -> String {
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
pub(super) struct RedisCli {
    pub(super) host: Option<String>,
    pub(super) port: Option<String>,
    pub(super) password: Option<String>,
    pub(super) user: Option<String>,
    pub(super) socket: Option<String>,
    pub(super) uri: Option<String>,
    pub(super) tls: bool,
    /// The options and command as written (password hidden), for a comment.
    pub(super) shown: String,
}

/// Reads `redis-cli [options] PING` on a line; `None` if the line has no such call.
pub(super) fn redis_cli_ping(line: &str) -> Option<RedisCli> {
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
pub(super) fn replicaof_targets(line: &str) -> Vec<(String, u16)> {
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
pub(super) fn log_path(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>' || c == '=')
        .find(|w| w.starts_with('/') && w.ends_with(".log"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
