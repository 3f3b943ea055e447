//! The top level of keepalived.conf: `global_defs`, the `vrrp_script`s and
//! `vrrp_instance`s, which instance is migrated, and notes on every block redha has
//! no equivalent for.

use super::model::{Garp, Out, Survey};
use super::tree::Stmt;
use super::{Mapper, MigrateError};

impl Mapper<'_> {
    /// Collects global_defs, the vrrp_scripts and the instances; notes the rest.
    pub(super) fn survey<'t>(&mut self, tree: &'t [Stmt]) -> Survey<'t> {
        let mut s = Survey {
            router_id: None,
            version: None,
            v3_checksum_as_v2: false,
            garp: Garp::default(),
            scripts: Vec::new(),
            instances: Vec::new(),
            groups: Vec::new(),
        };
        for st in tree {
            match st.key() {
                "global_defs" => self.global_defs(st, &mut s),
                "vrrp_script" => s.scripts.push(st),
                "vrrp_instance" => s.instances.push(st),
                "include" => self.include(st),
                "vrrp_sync_group" => s.groups.push(st),
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

    pub(super) fn include(&mut self, st: &Stmt) {
        self.note(
            st.line,
            format!(
                "include {}: not followed: redha reads one file; migrate the included file's settings too (or paste them in and run again)",
                st.rest()
            ),
        );
    }

    pub(super) fn global_defs(&mut self, st: &Stmt, s: &mut Survey<'_>) {
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
                "v3_checksum_as_v2" => s.v3_checksum_as_v2 = self.flag(it),
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
    pub(super) fn grouped_note(&mut self, keys: &[(String, usize)], why: &str) {
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
    pub(super) fn choose<'t>(
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
}

impl Mapper<'_> {
    /// An instance among named ones: its name made a table name (letters, digits,
    /// `_`, `-`), unique; its `[redis]` dropped when an earlier instance watches the
    /// same Redis.
    pub(super) fn named(&mut self, mut out: Out, earlier: &[Out]) -> Result<Out, MigrateError> {
        let mut name = table_name(&out.name);
        if name.is_empty() {
            name = format!("line{}", out.line);
        }
        if name != out.name {
            self.note(
                out.line,
                format!(
                    "vrrp_instance {:?} is instance {name} (a name is letters, digits, '_' or '-')",
                    out.name
                ),
            );
        }
        if earlier.iter().any(|o| o.name == name) {
            return Err(MigrateError::Unusable {
                line: out.line,
                message: format!("two vrrp_instances are named {name}"),
            });
        }
        out.name = name;
        let router = |o: &Out| {
            let v6 = o.vips.first().is_some_and(|v| v.contains(':'));
            (o.interface.clone(), v6, o.vrid)
        };
        if let Some(other) = earlier.iter().find(|o| router(o) == router(&out)) {
            return Err(MigrateError::Unusable {
                line: out.line,
                message: format!(
                    "vrrp_instance {} is virtual router {} on {} like vrrp_instance {} (line {}): one virtual router is one instance",
                    out.name, out.vrid, out.interface, other.name, other.line
                ),
            });
        }
        let address = |o: &Out| o.redis.as_ref().map(|r| (r.host.clone(), r.port));
        if let Some(other) = earlier
            .iter()
            .find(|o| o.redis_of.is_none() && address(o).is_some() && address(o) == address(&out))
        {
            // What the instance's own mapping said of its replication no longer
            // applies: the other instance moves it.
            self.notes
                .retain(|n| !(n.line == out.line && n.text.contains("[replication]")));
            self.note(
                out.line,
                format!(
                    "vrrp_instance {}: its check reaches the Redis of instance {}, which watches it; no [redis] or [replication] here (keep the two in a vrrp_sync_group)",
                    out.name, other.name
                ),
            );
            out.redis = None;
            out.peer = None;
            out.want_replication = false;
            out.redis_of = Some(other.name.clone());
        }
        Ok(out)
    }

    /// The `vrrp_sync_group`s over the migrated instances: `group { A B }` with two
    /// members or more, each instance in one group; what else a group holds (its
    /// notify scripts, tracking) is noted, not kept.
    pub(super) fn sync_groups(
        &mut self,
        survey: &Survey<'_>,
        outs: &[Out],
    ) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for st in &survey.groups {
            let raw = st.arg(0).unwrap_or("");
            let name = table_name(raw);
            let mut members = Vec::new();
            for item in st.items() {
                if item.key() != "group" {
                    self.note(
                        item.line,
                        format!(
                            "vrrp_sync_group {raw}: {}: no equivalent: a sync group moves its members through FAULT together, nothing more",
                            item.shown()
                        ),
                    );
                    continue;
                }
                for member in item.items() {
                    let wanted = member.key();
                    let found = outs.iter().find(|o| o.name == table_name(wanted));
                    match found {
                        Some(o) if groups.iter().any(|(_, m)| m.contains(&o.name)) => self.note(
                            member.line,
                            format!("vrrp_sync_group {raw}: {wanted} is in another group already: left out"),
                        ),
                        Some(o) if !members.contains(&o.name) => members.push(o.name.clone()),
                        Some(_) => {}
                        None => self.note(
                            member.line,
                            format!("vrrp_sync_group {raw}: no vrrp_instance {wanted}: left out"),
                        ),
                    }
                }
            }
            if name.is_empty() || members.len() < 2 || groups.iter().any(|(g, _)| *g == name) {
                self.note(
                    st.line,
                    format!("vrrp_sync_group {raw}: not migrated: a sync group needs a name of its own and two instances or more"),
                );
                continue;
            }
            groups.push((name, members));
        }
        groups
    }
}

/// A keepalived name as a redha instance or group name: letters, digits, `_` and `-`
/// (anything else becomes `_`), 64 characters at most.
fn table_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}
