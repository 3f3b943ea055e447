//! The check script: the tracked `vrrp_script` that checks Redis becomes `[redis]`
//! (address, password, interval, fall and rise); other scripts are noted.

use super::Mapper;
use super::model::{Out, RedisCheck, Survey};
use super::numbers::fmt_ms;
use super::shell::redis_cli_ping;
use super::tree::Stmt;

impl Mapper<'_> {
    /// A `track_script` block: the first script that checks Redis becomes `[redis]`.
    pub(super) fn track_scripts(&mut self, block: &Stmt, survey: &Survey<'_>, out: &mut Out) {
        for it in block.items() {
            let name = it.key();
            let weight_override = match (it.arg(0), it.arg(1)) {
                (Some("weight"), Some(w)) => Some(w.to_string()),
                _ => None,
            };
            let Some(script) = survey.scripts.iter().find(|s| s.arg(0) == Some(name)) else {
                self.note(
                    it.line,
                    format!("track_script {name}: no vrrp_script of that name: ignored"),
                );
                continue;
            };
            match self.redis_check(script) {
                Some(mut check) => {
                    check.line = script.line;
                    let weight = weight_override.or_else(|| {
                        script
                            .items()
                            .iter()
                            .find(|s| s.key() == "weight")
                            .and_then(|s| s.arg(0).map(str::to_string))
                    });
                    if let Some(w) = weight.filter(|w| w.parse::<i32>() != Ok(0)) {
                        self.note(
                            it.line,
                            format!(
                                "{name} weight {w}: keepalived changed the priority by {w} on the check's result; redha instead puts a node whose Redis is down in FAULT (priority 0, addresses released), so the peer always takes over"
                            ),
                        );
                    }
                    if out.redis.is_some() {
                        self.note(
                            it.line,
                            format!("track_script {name}: a second Redis check: [redis] already checks the local Redis, dropped"),
                        );
                    } else {
                        out.redis = Some(check);
                    }
                }
                None => self.note(
                    it.line,
                    format!(
                        "track_script {name}: no equivalent: redha checks Redis itself and runs no other check script ({})",
                        script_command(script).unwrap_or_default()
                    ),
                ),
            }
        }
    }

    /// A script no instance tracks: keepalived did not run it.
    pub(super) fn untracked_scripts(&mut self, survey: &Survey<'_>, out: &Out) {
        let tracked: Vec<&str> = survey
            .instances
            .iter()
            .flat_map(|i| i.items())
            .filter(|s| s.key() == "track_script")
            .flat_map(|s| s.items().iter().map(Stmt::key))
            .collect();
        for s in &survey.scripts {
            let name = s.arg(0).unwrap_or("");
            if tracked.contains(&name) {
                continue;
            }
            let text = if out.redis.is_none() && self.is_redis_check(s) {
                format!(
                    "vrrp_script {name} checks Redis but no instance tracks it, so keepalived never ran it: no [redis] section written (add one if Redis should be checked)"
                )
            } else {
                format!("vrrp_script {name}: no instance tracks it: not migrated")
            };
            self.note(s.line, text);
        }
    }

    /// Whether `script` checks Redis (its notes are not kept).
    fn is_redis_check(&mut self, script: &Stmt) -> bool {
        let before = self.notes.len();
        let yes = self.redis_check(script).is_some();
        self.notes.truncate(before);
        yes
    }

    /// The `[redis]` section for a vrrp_script that checks Redis; `None` (no note) for
    /// any other script.
    fn redis_check(&mut self, script: &Stmt) -> Option<RedisCheck> {
        let name = script.arg(0).unwrap_or("").to_string();
        let command = script_command(script)?;
        // Notes about the command point at its `script` line.
        let line = script
            .items()
            .iter()
            .find(|s| s.key() == "script")
            .map_or(script.line, |s| s.line);
        let text = self.script_text(&command);
        let ping = text.lines.iter().find_map(|l| redis_cli_ping(l));
        let mentions_redis = text.mentions("redis") || name.to_ascii_lowercase().contains("redis");
        if ping.is_none() && !mentions_redis {
            return None;
        }
        let mut check = RedisCheck {
            script: name.clone(),
            host: "127.0.0.1".into(),
            port: 6379,
            ..RedisCheck::default()
        };
        match ping {
            Some(cli) => {
                check.address_from = format!("from `redis-cli{}`", cli.shown);
                if let Some(h) = cli.host {
                    if h.starts_with('$') {
                        self.note(line, format!("vrrp_script {name}: redis-cli -h {h}: a shell variable: 127.0.0.1 used, check [redis] address"));
                    } else if h.is_empty()
                        || h.contains(|c: char| c.is_whitespace() || "[]/".contains(c))
                    {
                        self.note(line, format!("vrrp_script {name}: redis-cli -h {h:?}: not a host: 127.0.0.1 used, check [redis] address"));
                    } else {
                        check.host = h;
                    }
                }
                if let Some(p) = cli.port {
                    match p.parse::<u16>() {
                        Ok(n) if n > 0 => check.port = n,
                        _ => self.note(line, format!("vrrp_script {name}: redis-cli -p {p}: not a port: 6379 used, check [redis] address")),
                    }
                }
                if cli.socket.is_some() {
                    self.note(line, format!("vrrp_script {name}: redis-cli -s (Unix socket): no equivalent: redha connects over TCP; {}:{} used, check [redis] address", check.host, check.port));
                }
                if cli.uri.is_some() {
                    self.note(line, format!("vrrp_script {name}: redis-cli -u URI: not read: {}:{} used, check [redis] address and password", check.host, check.port));
                }
                if cli.tls {
                    self.note(line, format!("vrrp_script {name}: redis-cli --tls: no equivalent: redha speaks plain TCP to Redis"));
                }
                if let Some(p) = cli.password.filter(|p| !p.is_empty()) {
                    if p.starts_with('$') {
                        self.note(line, format!("vrrp_script {name}: the Redis password comes from a shell variable ({p}): set [redis] password_file"));
                    } else {
                        self.note(line, format!("vrrp_script {name}: the Redis password of redis-cli -a is now [redis] password; password_file (a file only redha can read) is better than a password in the configuration"));
                        check.password = Some(p);
                    }
                }
                if let Some(u) = cli.user {
                    check.username = Some(u);
                    if check.password.is_none() {
                        check.username = None;
                        self.note(line, format!("vrrp_script {name}: redis-cli --user without a password: set [redis] username and password_file"));
                    }
                }
            }
            None => {
                let why = if text.unreadable.is_empty() {
                    format!("it mentions Redis but sends no redis-cli PING ({command})")
                } else {
                    format!(
                        "{} could not be read here; its name says it checks Redis",
                        text.unreadable.join(", ")
                    )
                };
                self.note(
                    line,
                    format!("vrrp_script {name}: {why}: taken as a check of the local Redis at 127.0.0.1:6379; check [redis] address"),
                );
                check.address_from = "assumed: the default address".into();
            }
        }
        let mut timeout_line = script.line;
        for it in script.items() {
            match it.key() {
                "script" | "weight" => {}
                // keepalived takes 0 as 1 second for both.
                "interval" => check.interval_ms = self.decimal(it).map(|ms| ms.max(1000)),
                "timeout" => {
                    check.timeout_ms = self.decimal(it).map(|ms| ms.max(1000));
                    timeout_line = it.line;
                }
                "fall" => {
                    check.fall = self.threshold(it);
                }
                "rise" => {
                    check.rise = self.threshold(it);
                }
                "user" => self.note(
                    it.line,
                    format!("vrrp_script {name} user: no equivalent: redha checks Redis itself, no script runs"),
                ),
                "init_fail" => self.note(
                    it.line,
                    "init_fail: redha always starts in FAULT until the Redis has been seen healthy",
                ),
                _ => self.note(
                    it.line,
                    format!("vrrp_script {name} {}: no equivalent", it.shown()),
                ),
            }
        }
        if let (Some(t), Some(i)) = (check.timeout_ms, check.interval_ms.or(Some(1000)))
            && t > i
        {
            self.note(
                timeout_line,
                format!("vrrp_script {name}: timeout {} is longer than interval {}: redha needs check_timeout <= check_interval, so check_timeout = {}", fmt_ms(t), fmt_ms(i), fmt_ms(i)),
            );
            check.timeout_ms = Some(i);
        }
        Some(check)
    }
}

/// The command of a vrrp_script: its `script` line's arguments.
fn script_command(script: &Stmt) -> Option<String> {
    script
        .items()
        .iter()
        .find(|s| s.key() == "script")
        .map(Stmt::rest)
        .filter(|s| !s.is_empty())
}
