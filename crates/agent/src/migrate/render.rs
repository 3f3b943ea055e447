//! The TOML a migration writes: the chosen instance ([`super::model::Out`]) as a
//! commented redha configuration, with the notes at its end.

use super::model::Out;
use super::notes::Note;
use super::numbers::fmt_ms;

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

pub(super) fn render(o: &Out, source: &str, notes: &[Note]) -> String {
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
    tables(o, "", &mut s);
    render_notes_into(&mut s, source, notes);
    s
}

/// Several instances as named instances (`[instances.NAME.vrrp]`, ...), and the
/// sync groups among them.
pub(super) fn render_many(
    outs: &[Out],
    groups: &[(String, Vec<String>)],
    source: &str,
    notes: &[Note],
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# redha configuration generated from {} by `redha migrate-keepalived`.\n",
        clean(source)
    ));
    let names: Vec<String> = outs
        .iter()
        .map(|o| format!("{} (line {})", clean(&o.name), o.line))
        .collect();
    s.push_str(&format!(
        "# keepalived's vrrp_instances {}{}, as named instances of one agent.\n",
        names.join(", "),
        outs.first()
            .and_then(|o| o.router_id.as_ref())
            .map_or(String::new(), |r| format!(", router_id {}", clean(r)))
    ));
    s.push_str("# Read the notes at the end, then check it: redha check-config FILE\n");
    for o in outs {
        s.push('\n');
        tables(o, &format!("instances.{}.", o.name), &mut s);
    }
    if !groups.is_empty() {
        s.push_str(
            "\n[sync_groups]  # keepalived's vrrp_sync_groups: members go to FAULT together\n",
        );
        for (group, members) in groups {
            let members: Vec<String> = members.iter().map(|m| string(m)).collect();
            s.push_str(&format!("{group} = [{}]\n", members.join(", ")));
        }
    }
    render_notes_into(&mut s, source, notes);
    s
}

fn render_notes_into(s: &mut String, source: &str, notes: &[Note]) {
    if !notes.is_empty() {
        s.push_str(&format!(
            "\n# Notes: what {} had that redha does differently or not at all.\n",
            clean(source)
        ));
        for n in notes {
            s.push_str(&format!("# - {}\n", clean(&n.to_string())));
        }
    }
}

/// One instance's tables, named `[{prefix}vrrp]` and so on (`prefix` is empty in
/// the single-instance form, `instances.NAME.` in the named one, where the table
/// names the instance and `name` is left out).
fn tables(o: &Out, prefix: &str, s: &mut String) {
    let mut v = Section::default();
    v.raw(format!("[{prefix}vrrp]"), None);
    if !o.name.is_empty() && prefix.is_empty() {
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
    if o.version3 {
        v.kv(
            "version",
            "3".into(),
            Some("keepalived's vrrp_version 3 (RFC 5798)".into()),
        );
    }
    if let Some(ms) = o.advert_int_ms {
        v.kv("advert_int", string(&fmt_ms(ms)), o.advert_comment.clone());
    }
    if o.v3_checksum_as_v2 {
        v.kv(
            "v3_checksum_as_v2",
            "true".into(),
            Some("keepalived's v3_checksum_as_v2: checksums without the pseudo-header".into()),
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
    v.render(s);

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
        sec.raw(format!("[{prefix}redis]"), Some(header));
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
        sec.render(s);

        s.push('\n');
        let mut rep = Section::default();
        let active = o.want_replication && o.peer.is_some();
        let off = if active { "" } else { "# " };
        rep.raw(
            format!("{off}[{prefix}replication]"),
            Some(if o.want_replication {
                "replaces the notify scripts' SLAVEOF/REPLICAOF commands".into()
            } else {
                "optional: redha would also move replication".into()
            }),
        );
        match &o.peer {
            Some((peer, from)) => rep.kv(&format!("{off}peer"), string(peer), Some(from.clone())),
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
        rep.render(s);

        if o.want_replication {
            s.push('\n');
            let mut sl = Section::default();
            sl.raw(
                format!("# [{prefix}state_log]"),
                Some(match &o.state_log {
                    Some(p) => format!("like the notify scripts' log {p}"),
                    None => "one line per transition and Redis command".into(),
                }),
            );
            sl.raw("# path = \"/var/log/redha/state.log\"".into(), None);
            sl.render(s);
        }
    }

    if let Some(other) = &o.redis_of {
        s.push_str(&format!(
            "# Its Redis is instance {}'s, which watches it: keep the two in a sync group.\n",
            clean(other)
        ));
    }
    if o.redis.is_none() && o.redis_of.is_none() {
        s.push_str(
            "\n# No [redis] section: keepalived checked no Redis here, so redha runs as a plain\n# VRRP router (see config/reference.toml for [redis] and [replication]).\n",
        );
    }
}
