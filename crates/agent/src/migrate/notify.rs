//! The notify scripts: kept as redha hooks with the same keys, or dropped when they
//! move Redis replication, which `[replication]` then does (its peer found in their
//! `SLAVEOF` lines, or the single unicast peer).

use std::net::Ipv4Addr;

use super::Mapper;
use super::model::{Hook, Out, RedisCheck};
use super::shell::{log_path, replicaof_targets};
use super::tree::Stmt;

impl Mapper<'_> {
    /// A notify line: kept as a hook, or dropped when it moves Redis replication.
    pub(super) fn hook(&mut self, it: &Stmt, out: &mut Out) -> Hook {
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
    pub(super) fn replication(&mut self, out: &mut Out, line: usize) {
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
        if out.want_replication && out.vips.first().is_some_and(|v| v.contains(':')) {
            // An IPv6 instance needs `announce` too (its adverts' source is
            // link-local), which keepalived's scripts do not say: commented out.
            if let Some((peer, _)) = out.peer.take() {
                out.peer_hint = Some(peer);
            }
            self.note(
                line,
                "IPv6 virtual addresses: [replication] also needs announce (the address the peer's Redis reaches ours at, e.g. \"[2001:db8::26]:6379\"), which keepalived's scripts do not give: left commented out; uncomment it with peer and announce",
            );
        }
        if out.redis.is_some() && !out.want_replication {
            self.note(
                line,
                "no notify script moved Redis replication, so [replication] is left commented out: uncomment it (with the peer's address) to have redha make the new master's Redis writable and the other its replica",
            );
        }
    }
}

/// Why redha's hook loader would refuse `command` as hook `key` on this host.
pub(super) fn hook_refusal(key: &str, command: &str) -> Option<String> {
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
