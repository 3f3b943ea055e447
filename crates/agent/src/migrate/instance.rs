//! A `vrrp_instance` block's own keys: interface, VRID, state and priority, interval,
//! sources and peers, virtual addresses, authentication, gratuitous ARP.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::model::{Out, Survey};
use super::notes::Note;
use super::numbers::{fmt_ms, parse_decimal_ms};
use super::tree::Stmt;
use super::{Mapper, MigrateError};

impl Mapper<'_> {
    /// Maps the chosen instance.
    pub(super) fn instance(
        &mut self,
        inst: &Stmt,
        survey: &Survey<'_>,
    ) -> Result<Out, MigrateError> {
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
        out.v3_checksum_as_v2 = survey.v3_checksum_as_v2;
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
                "v3_checksum_as_v2" => out.v3_checksum_as_v2 = self.flag(it),
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
        self.version(version.as_ref(), &mut out);
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
                    "vrrp_instance {} has no usable virtual address: redha needs at least one",
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

    fn version(&mut self, version: Option<&(String, usize)>, out: &mut Out) {
        match version {
            Some((v, _)) if v == "3" => out.version3 = true,
            Some((v, line)) if v != "2" => {
                self.note(*line, format!("vrrp_version {v}: not 2 or 3, ignored"))
            }
            _ => {}
        }
        if out.v3_checksum_as_v2 && !out.version3 {
            // keepalived ignores it with VRRPv2; redha refuses it there.
            out.v3_checksum_as_v2 = false;
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
        let (used, why) = if out.version3 {
            let centis = ((ms + 5) / 10).clamp(1, 4095);
            (
                centis * 10,
                "VRRPv3 carries centiseconds, from 10ms to 40950ms".to_string(),
            )
        } else {
            let secs = ((ms + 500) / 1000).clamp(1, 255);
            (
                secs * 1000,
                "VRRPv2 carries whole seconds from 1 to 255 (sub-second adverts need vrrp_version 3 on both sides)".to_string(),
            )
        };
        if used != ms {
            let shown = fmt_ms(used);
            let peers = if out.version3 {
                "VRRPv3 peers need not match (a backup learns the master's interval)"
            } else {
                "keepalived peers must use the same"
            };
            self.note(
                line,
                format!("advert_int {text}: {why}: {shown} used; {peers}"),
            );
            out.advert_comment = Some(format!("keepalived had advert_int {text}"));
        }
        out.advert_int_ms = Some(used);
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
                    let why = match w.parse::<Ipv6Addr>() {
                        Ok(_) => {
                            "IPv6 unicast peers are not converted yet (list it in unicast_peers by hand)"
                        }
                        Err(_) => "not an IPv4 address",
                    };
                    self.note(it.line, format!("unicast_peer {w}: {why}: dropped"));
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
        let addr = addr.trim();
        let (ip, len) = match addr.split_once('/') {
            Some((a, l)) => (a.trim(), Some(l)),
            None => (addr, None),
        };
        let v6 = ip.parse::<Ipv6Addr>().is_ok();
        if v6 && !out.version3 {
            self.note(
                line,
                format!("virtual address {addr}: IPv6 needs VRRPv3 (vrrp_version 3): dropped"),
            );
            return;
        }
        let first_v6 = out.vips.first().map(|v| v.contains(':'));
        if first_v6.is_some_and(|first| first != v6) {
            self.note(
                line,
                format!("virtual address {addr}: redha runs one address family per instance, and this one's first address is {}: dropped (give the {} addresses a redha instance of their own)", if v6 { "IPv4" } else { "IPv6" }, if v6 { "IPv6" } else { "IPv4" }),
            );
            return;
        }
        let full = if v6 { 128 } else { 32 };
        let text = match len {
            Some(_) => addr.to_string(),
            None => format!("{addr}/{full}"),
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
                format!("virtual address {addr} has no prefix length: keepalived's default is /{full}, written as {text}; give the subnet's length (e.g. /{}) if the address should have a subnet route", if v6 { 64 } else { 24 }),
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
        if out.version3 {
            self.note(
                block.line,
                "authentication: VRRPv3 has none (keepalived ignores the block with vrrp_version 3): left out",
            );
            return;
        }
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

    /// redha refuses a unicast peer or source that is one of the virtual addresses,
    /// or of another family than they are (keepalived's IPv4 unicast settings
    /// beside IPv6 virtual addresses).
    fn drop_conflicts(&mut self, out: &mut Out, line: usize) {
        if out.vips.first().is_some_and(|v| v.contains(':')) {
            for p in std::mem::take(&mut out.unicast_peers) {
                self.note(
                    line,
                    format!("unicast peer {p} is IPv4 and this instance's virtual addresses are IPv6: dropped (give its IPv6 peers in unicast_peers)"),
                );
            }
            if let Some((src, _)) = out.unicast_src_ip.take() {
                self.note(
                    line,
                    format!("source address {src} is IPv4 and this instance's virtual addresses are IPv6: dropped (redha sends from the interface's link-local address)"),
                );
            }
        }
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
}

fn looks_like_address(w: &str) -> bool {
    let ip = w.split('/').next().unwrap_or("");
    ip.parse::<Ipv4Addr>().is_ok() || ip.parse::<Ipv6Addr>().is_ok()
}
