//! `CLIENT LIST`, parsed.
//!
//! Each line of the reply describes one connection as space-separated
//! `field=value` pairs (`id=7 addr=127.0.0.1:50312 laddr=... name=redha
//! flags=N ... cmd=client|list user=default ...`). The parser is strict about
//! what the agent relies on — every line has `id` (a number), `addr`, `name`,
//! `flags` and `cmd`, each field once, and nothing that is not `field=value`
//! — and tolerant of everything else: fields it does not know (Redis adds
//! some in most releases) are kept in [`ClientEntry::fields`].

use thiserror::Error;

/// One connection of a `CLIENT LIST` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEntry {
    /// `id`: the connection's unique id (`CLIENT KILL ID <id>`).
    pub id: u64,
    /// `addr`: the client's address, `ip:port` (or a Unix socket path).
    pub addr: String,
    /// `laddr`: the server-side address the client connected to (Redis ≥
    /// 6.2).
    pub laddr: Option<String>,
    /// `name`: set with `CLIENT SETNAME`; empty when none.
    pub name: String,
    /// `flags`: one letter a flag (`N` none, `S` replica, `M` master, `x`
    /// in MULTI, `P` pub/sub, ...).
    pub flags: String,
    /// `cmd`: the last command run (`client|list`, `set`, `NULL`, ...).
    pub cmd: String,
    /// `user`: the ACL user (Redis ≥ 6).
    pub user: Option<String>,
    /// Every field of the line, in order, the ones above included.
    pub fields: Vec<(String, String)>,
}

impl ClientEntry {
    /// The value of field `key`, if the line has it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Does `flags` contain `flag`?
    pub fn has_flag(&self, flag: char) -> bool {
        self.flags.contains(flag)
    }

    /// Is this a replica's replication link (flag `S`)? (Also a client in
    /// `MONITOR`, which Redis flags `O` as well.)
    pub fn is_replica(&self) -> bool {
        self.has_flag('S')
    }
}

/// Why a `CLIENT LIST` reply was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("CLIENT LIST line {line}: {reason}: {text:?}")]
pub struct ClientListError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
    /// The line as received.
    pub text: String,
}

/// Parses a `CLIENT LIST` reply: one [`ClientEntry`] a non-empty line.
pub fn parse_client_list(text: &str) -> Result<Vec<ClientEntry>, ClientListError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            parse_line(line.trim_end_matches('\r')).map_err(|reason| ClientListError {
                line: i + 1,
                reason,
                text: line.to_string(),
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Result<ClientEntry, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for pair in line.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not field=value"))?;
        if key.is_empty() {
            return Err(format!("{pair:?} has an empty field name"));
        }
        if fields.iter().any(|(k, _)| k == key) {
            return Err(format!("field {key} twice"));
        }
        fields.push((key.to_string(), value.to_string()));
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let required = |key: &str| get(key).ok_or_else(|| format!("no field {key}"));
    let id = required("id")?;
    let id = id
        .parse::<u64>()
        .map_err(|_| format!("id {id:?} is not a number"))?;
    let addr = required("addr")?;
    if addr.is_empty() {
        return Err("empty addr".into());
    }
    Ok(ClientEntry {
        id,
        addr,
        laddr: get("laddr"),
        name: required("name")?,
        flags: required("flags")?,
        cmd: required("cmd")?,
        user: get("user"),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Redis 7.0.15 writes it (two connections).
    const REDIS_7_0: &str = "id=9 addr=127.0.0.1:60426 laddr=127.0.0.1:7201 fd=7 name= age=0 \
idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 \
multi-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0 tot-mem=37658 events=r cmd=client|list \
user=default redir=-1 resp=2\n\
id=12 addr=127.0.0.1:60430 laddr=127.0.0.1:7201 fd=8 name=redha age=3 idle=3 flags=S db=0 \
sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 \
oll=0 omem=0 tot-mem=1800 events=r cmd=sync user=redha redir=-1 resp=2\n";

    #[test]
    fn redis_7_0_reply() {
        let list = parse_client_list(REDIS_7_0).unwrap();
        assert_eq!(list.len(), 2);
        let me = &list[0];
        assert_eq!(me.id, 9);
        assert_eq!(me.addr, "127.0.0.1:60426");
        assert_eq!(me.laddr.as_deref(), Some("127.0.0.1:7201"));
        assert_eq!(me.name, "");
        assert_eq!(me.flags, "N");
        assert_eq!(me.cmd, "client|list");
        assert_eq!(me.user.as_deref(), Some("default"));
        assert_eq!(me.field("resp"), Some("2"));
        assert!(!me.is_replica());
        let replica = &list[1];
        assert_eq!((replica.id, replica.name.as_str()), (12, "redha"));
        assert!(replica.is_replica() && replica.has_flag('S'));
        assert_eq!(replica.cmd, "sync");
    }

    #[test]
    fn unknown_and_missing_optional_fields_are_fine() {
        // Older: no laddr, no user; newer: lib-name and friends.
        let list =
            parse_client_list("id=3 addr=10.0.0.1:1 name=x flags=N cmd=get lib-name=redis-rs\r\n")
                .unwrap();
        assert_eq!(list[0].laddr, None);
        assert_eq!(list[0].user, None);
        assert_eq!(list[0].field("lib-name"), Some("redis-rs"));
        assert_eq!(parse_client_list("").unwrap(), vec![]);
    }

    #[test]
    fn broken_lines_are_refused() {
        for (text, reason) in [
            ("addr=1.2.3.4:5 name= flags=N cmd=get", "no field id"),
            (
                "id=x addr=1.2.3.4:5 name= flags=N cmd=get",
                "is not a number",
            ),
            ("id=1 name= flags=N cmd=get", "no field addr"),
            ("id=1 addr=1.2.3.4:5 flags=N cmd=get", "no field name"),
            ("id=1 addr=1.2.3.4:5 name= cmd=get", "no field flags"),
            ("id=1 addr=1.2.3.4:5 name= flags=N", "no field cmd"),
            (
                "id=1 addr=1.2.3.4:5 name= flags=N cmd=get junk",
                "not field=value",
            ),
            ("id=1 id=2 addr=1.2.3.4:5 name= flags=N cmd=get", "twice"),
            ("id=1 addr= name= flags=N cmd=get", "empty addr"),
        ] {
            let text = format!("id=1 addr=1:1 name= flags=N cmd=x\n{text}\n");
            let err = parse_client_list(&text).unwrap_err();
            assert_eq!(err.line, 2, "{err}");
            assert!(err.reason.contains(reason), "{err}");
        }
    }
}
