//! A configuration file as a whole: today's single-instance form (`[vrrp]`,
//! `[redis]`, ...: one instance) or named instances (`[instances.NAME.vrrp]`, ...)
//! with `[sync_groups]`, beside the shared `[control]` and `[metrics]`. Each
//! instance is checked as a [`Config`] of its own, errors naming its tables
//! (`instances.cache.vrrp.priority`); then what instances must not share.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use vrrp::netlink::Family;

use crate::config::{
    Config, ConfigError, ControlConfig, MetricsConfig, RedisConfig, ReplicationConfig,
    StateLogConfig, VrrpConfig, line_of_key, locate,
};

/// The longest instance or sync group name.
const MAX_NAME: usize = 64;

/// A configuration file: its instances, in the order of their names, and the sync
/// groups among them.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigFile {
    /// Every instance, each with the file's `[control]` and `[metrics]`.
    pub instances: Vec<Config>,
    /// Sync groups by name: instances that change state together.
    pub sync_groups: BTreeMap<String, Vec<String>>,
    /// Whether the file names its instances (`[instances.NAME...]`).
    pub named: bool,
}

/// The named form as TOML has it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedFile {
    #[serde(default)]
    control: ControlConfig,
    #[serde(default)]
    metrics: Option<MetricsConfig>,
    instances: BTreeMap<String, InstanceTables>,
    #[serde(default)]
    sync_groups: BTreeMap<String, Vec<String>>,
}

/// One named instance's tables: the same keys as the single-instance form's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceTables {
    vrrp: VrrpConfig,
    #[serde(default)]
    redis: Option<RedisConfig>,
    #[serde(default)]
    replication: Option<ReplicationConfig>,
    #[serde(default)]
    state_log: Option<StateLogConfig>,
}

impl ConfigFile {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Parses and checks configuration text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        let invalid = |line: usize, key: String, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        };
        let toml_error = |e: toml::de::Error| {
            let (line, key) = locate(text, e.span().map_or(0, |s| s.start));
            invalid(line, key, e.message().trim().to_string())
        };
        let table: toml::Table = toml::from_str(text).map_err(toml_error)?;
        if !table.contains_key("instances") {
            if table.contains_key("sync_groups") {
                return Err(invalid(
                    line_of_key(text, "sync_groups", ""),
                    "sync_groups".into(),
                    "sync groups join named instances: write them as [instances.NAME.vrrp], ..."
                        .into(),
                ));
            }
            return Ok(ConfigFile {
                instances: vec![Config::parse(path, text)?],
                sync_groups: BTreeMap::new(),
                named: false,
            });
        }
        if let Some(single) = ["vrrp", "redis", "replication", "state_log"]
            .into_iter()
            .find(|t| table.contains_key(*t))
        {
            return Err(invalid(
                line_of_key(text, single, ""),
                single.into(),
                format!(
                    "[{single}] beside [instances...]: with named instances every instance has its own tables ([instances.NAME.{single}])"
                ),
            ));
        }
        let file: NamedFile = toml::from_str(text).map_err(toml_error)?;
        if file.instances.is_empty() {
            return Err(invalid(
                line_of_key(text, "instances", ""),
                "instances".into(),
                "names no instance".into(),
            ));
        }
        let mut instances = Vec::with_capacity(file.instances.len());
        for (name, tables) in file.instances {
            let prefix = format!("instances.{name}.");
            let header = format!("{prefix}vrrp");
            if let Some(why) = name_refusal(&name) {
                return Err(invalid(line_of_key(text, &header, ""), header, why));
            }
            if tables.vrrp.name.as_ref().is_some_and(|n| *n != name) {
                return Err(invalid(
                    line_of_key(text, &header, "name"),
                    format!("{header}.name"),
                    format!("the instance is named {name:?} by its table: leave name out"),
                ));
            }
            let config = Config {
                vrrp: VrrpConfig {
                    name: Some(name.clone()),
                    ..tables.vrrp
                },
                redis: tables.redis,
                replication: tables.replication,
                state_log: tables.state_log,
                control: file.control.clone(),
                metrics: file.metrics.clone(),
            };
            config.check(path, text, &prefix)?;
            instances.push(config);
        }
        let parsed = ConfigFile {
            instances,
            sync_groups: file.sync_groups,
            named: true,
        };
        parsed.check_shared(path, text)?;
        parsed.check_groups(path, text)?;
        Ok(parsed)
    }

    /// The instance's name, as logs, metrics and hooks give it.
    pub fn name_of(config: &Config) -> String {
        config.instance().name
    }

    /// The sync group `instance` belongs to, if any.
    pub fn group_of(&self, instance: &str) -> Option<&str> {
        self.sync_groups
            .iter()
            .find(|(_, members)| members.iter().any(|m| m == instance))
            .map(|(group, _)| group.as_str())
    }

    /// What two instances must not share: a virtual router (interface, address
    /// family and VRID), a Redis, a state log.
    fn check_shared(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let fail = |config: &Config, table: &str, key: &str, message: String| {
            let table = format!("instances.{}.{table}", Self::name_of(config));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, &table, key),
                key: format!("{table}.{key}"),
                message,
            }
        };
        for (i, config) in self.instances.iter().enumerate() {
            let earlier = &self.instances[..i];
            let router = |c: &Config| {
                let family = Family::of(&c.vrrp.virtual_ipaddresses.0[0].address);
                (c.vrrp.interface.clone(), family, c.vrrp.virtual_router_id.0)
            };
            if let Some(other) = earlier.iter().find(|o| router(o) == router(config)) {
                let (interface, family, vrid) = router(config);
                return Err(fail(
                    config,
                    "vrrp",
                    "virtual_router_id",
                    format!(
                        "instance {} already is virtual router {vrid} for {family} on {interface}",
                        Self::name_of(other)
                    ),
                ));
            }
            if let Some(redis) = &config.redis
                && let Some(other) = earlier.iter().find(|o| {
                    o.redis
                        .as_ref()
                        .is_some_and(|r| r.address.to_string() == redis.address.to_string())
                })
            {
                return Err(fail(
                    config,
                    "redis",
                    "address",
                    format!(
                        "instance {} already watches the Redis at {}: a Redis has one instance (put a second VIP for it in a sync group with that instance)",
                        Self::name_of(other),
                        redis.address
                    ),
                ));
            }
            if let Some(log) = &config.state_log
                && let Some(other) = earlier
                    .iter()
                    .find(|o| o.state_log.as_ref().is_some_and(|l| l.path == log.path))
            {
                return Err(fail(
                    config,
                    "state_log",
                    "path",
                    format!(
                        "instance {} already writes its state log to {}",
                        Self::name_of(other),
                        log.path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Sync groups name instances of the file, each instance in one group at
    /// most, two members or more.
    fn check_groups(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let mut grouped: BTreeMap<&str, &str> = BTreeMap::new();
        for (group, members) in &self.sync_groups {
            let fail = |message: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, "sync_groups", group),
                key: format!("sync_groups.{group}"),
                message,
            };
            if let Some(why) = name_refusal(group) {
                return Err(fail(why));
            }
            if members.len() < 2 {
                return Err(fail("a sync group joins two instances or more".to_string()));
            }
            for (i, member) in members.iter().enumerate() {
                if members[..i].contains(member) {
                    return Err(fail(format!("names {member:?} twice")));
                }
                if !self.instances.iter().any(|c| Self::name_of(c) == *member) {
                    return Err(fail(format!(
                        "{member:?} is not an instance of this file ([instances.{member}.vrrp])"
                    )));
                }
                if let Some(other) = grouped.insert(member, group) {
                    return Err(fail(format!(
                        "{member:?} is in sync group {other:?} already: an instance is in one group at most"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Why `name` cannot name an instance or a sync group: names stand in dotted
/// keys, logs, metric labels and hook arguments.
fn name_refusal(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!ok).then(|| format!("{name:?}: a name is 1 to {MAX_NAME} letters, digits, '_' or '-'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The issue's example: a dual-stack Redis (IPv4 with Redis, IPv6 without) in a
    /// sync group, and a second Redis.
    const NAMED: &str = r#"[control]
socket = "/run/redha/redha.sock"

[instances.cache.vrrp]
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = "1s"
virtual_ipaddresses = ["10.20.112.100/24"]
[instances.cache.redis]
address = "127.0.0.1:6379"
[instances.cache.replication]
peer = "10.20.112.27:6379"

[instances.cache6.vrrp]
interface = "eth0"
virtual_router_id = 51
version = 3
advert_int = "1s"
virtual_ipaddresses = ["2001:db8::100/64"]

[instances.sessions.vrrp]
interface = "eth0"
virtual_router_id = 52
virtual_ipaddresses = ["10.20.112.101/24"]
[instances.sessions.redis]
address = "127.0.0.1:6380"
[instances.sessions.replication]
peer = "10.20.112.27:6380"

[sync_groups]
cache = ["cache", "cache6"]
"#;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("x.toml"), text)
    }

    /// (line, key, message) of a refused file.
    fn error(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// `NAMED` with `from` replaced by `to` (which must be there).
    fn named_with(from: &str, to: &str) -> String {
        assert!(NAMED.contains(from), "{from}");
        NAMED.replacen(from, to, 1)
    }

    #[test]
    fn the_single_instance_form_is_one_instance() {
        let text = "[vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddresses = [\"10.20.112.100/24\"]\n";
        let file = parse(text).unwrap();
        assert!(!file.named);
        assert_eq!(
            file.instances,
            [Config::parse(Path::new("x.toml"), text).unwrap()]
        );
        assert_eq!(ConfigFile::name_of(&file.instances[0]), "vrid-51");
    }

    #[test]
    fn reads_named_instances_and_sync_groups() {
        let file = parse(NAMED).unwrap();
        assert!(file.named);
        let names: Vec<String> = file.instances.iter().map(ConfigFile::name_of).collect();
        assert_eq!(names, ["cache", "cache6", "sessions"]);
        // The shared sections reach every instance.
        assert!(
            file.instances
                .iter()
                .all(|c| c.control.socket == Path::new("/run/redha/redha.sock"))
        );
        let cache6 = &file.instances[1];
        assert!(cache6.redis.is_none() && cache6.replication.is_none());
        assert_eq!(cache6.vrrp.version.0, vrrp::Version::V3);
        assert_eq!(file.group_of("cache6"), Some("cache"));
        assert_eq!(file.group_of("sessions"), None);
        let config = &file.instances[0];
        assert_eq!(ConfigFile::name_of(config), "cache");
    }

    #[test]
    fn errors_name_the_instance_tables_line_and_key() {
        // A bad value, located by TOML.
        let (line, key, message) = error(&named_with("priority = 100", "priority = 300"));
        assert_eq!((line, key.as_str()), (7, "instances.cache.vrrp.priority"));
        assert!(message.contains("priority"), "{message}");
        // An unknown key.
        let (line, key, _) = error(&named_with("priority = 100", "prio = 100"));
        assert_eq!((line, key.as_str()), (7, "instances.cache.vrrp.prio"));
        // A check across keys of one instance.
        let (line, key, message) = error(&named_with(
            "[instances.sessions.redis]\naddress = \"127.0.0.1:6380\"\n",
            "",
        ));
        assert_eq!(
            (line, key.as_str()),
            (27, "instances.sessions.replication.peer")
        );
        assert!(message.contains("needs a [redis] section"), "{message}");
        // The table names the instance; a `name` of its own must agree.
        let (line, key, _) = error(&named_with(
            "virtual_router_id = 52\n",
            "virtual_router_id = 52\nname = \"other\"\n",
        ));
        assert_eq!((line, key.as_str()), (25, "instances.sessions.vrrp.name"));
    }

    #[test]
    fn instances_share_no_router_redis_or_state_log() {
        // The same VRID on the same interface and family.
        let (line, key, message) = error(&named_with(
            "virtual_router_id = 52",
            "virtual_router_id = 51",
        ));
        assert_eq!(
            (line, key.as_str()),
            (24, "instances.sessions.vrrp.virtual_router_id")
        );
        assert!(
            message.contains("instance cache already is virtual router 51 for IPv4 on eth0"),
            "{message}"
        );
        // ... is fine on another interface (cache and cache6 share VRID 51 across
        // families already).
        parse(&named_with(
            "virtual_router_id = 52\nvirtual_ipaddresses = [\"10.20.112.101/24\"]",
            "virtual_router_id = 51\nvirtual_ipaddresses = [\"10.20.112.101/24\"]",
        ))
        .unwrap_err();
        let other_if = named_with(
            "interface = \"eth0\"\nvirtual_router_id = 52",
            "interface = \"eth1\"\nvirtual_router_id = 51",
        );
        parse(&other_if).unwrap();
        // The same Redis.
        let (line, key, message) = error(&named_with("127.0.0.1:6380", "127.0.0.1:6379"));
        assert_eq!(
            (line, key.as_str()),
            (27, "instances.sessions.redis.address")
        );
        assert!(
            message.contains("instance cache already watches"),
            "{message}"
        );
        // The same state log.
        let logs = named_with(
            "[instances.cache.replication]",
            "[instances.cache.state_log]\npath = \"/var/log/redha.log\"\n[instances.cache.replication]",
        )
        .replacen(
            "[instances.sessions.replication]",
            "[instances.sessions.state_log]\npath = \"/var/log/redha.log\"\n[instances.sessions.replication]",
            1,
        );
        let (_, key, _) = error(&logs);
        assert_eq!(key, "instances.sessions.state_log.path");
    }

    #[test]
    fn sync_groups_name_instances_of_the_file_once() {
        let group = "cache = [\"cache\", \"cache6\"]";
        let (line, key, message) = error(&named_with(group, "cache = [\"cache\", \"cach6\"]"));
        assert_eq!((line, key.as_str()), (32, "sync_groups.cache"));
        assert!(
            message.contains("\"cach6\" is not an instance"),
            "{message}"
        );
        let (_, _, message) = error(&named_with(group, "cache = [\"cache\"]"));
        assert!(message.contains("two instances or more"), "{message}");
        let (_, _, message) = error(&named_with(group, "cache = [\"cache\", \"cache\"]"));
        assert!(message.contains("names \"cache\" twice"), "{message}");
        let (_, key, message) = error(&named_with(
            group,
            "a = [\"cache\", \"cache6\"]\nb = [\"sessions\", \"cache\"]",
        ));
        assert_eq!(key, "sync_groups.b");
        assert!(message.contains("in sync group \"a\" already"), "{message}");
        // Sync groups need named instances; the two forms do not mix.
        let single = "[vrrp]\ninterface = \"eth0\"\nvirtual_router_id = 51\nvirtual_ipaddresses = [\"10.20.112.100/24\"]\n[sync_groups]\ng = [\"a\", \"b\"]\n";
        let (line, key, _) = error(single);
        assert_eq!((line, key.as_str()), (5, "sync_groups"));
        let mixed = format!("[vrrp]\ninterface = \"eth0\"\n{NAMED}");
        let (line, key, message) = error(&mixed);
        assert_eq!((line, key.as_str()), (1, "vrrp"));
        assert!(message.contains("[instances.NAME.vrrp]"), "{message}");
        // Names stand in dotted keys, labels and hook arguments.
        let (_, _, message) = error(&NAMED.replace("instances.cache6.", "instances.\"cache 6\"."));
        assert!(
            message.contains("\"cache 6\": a name is 1 to 64"),
            "{message}"
        );
    }
}
