//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps a Redis pair highly available: VRRP for the virtual IP, replication moved by
/// observed progress.
///
/// Run one agent on each of the two Redis hosts (`redha --config FILE`). The agents
/// speak VRRP (RFC 3768, keepalived's protocol) to decide which host holds the virtual
/// IP; with `[redis]` each checks its local Redis and stays out of the election while
/// it is down, and with `[replication]` it moves replication so that the virtual IP
/// always points at a writable Redis holding the newest data: no fixed sleeps, no
/// start-up ritual, never a good copy wiped by an empty one.
///
/// Signals: SIGTERM/SIGINT hand over and step down; SIGHUP reloads the file; SIGUSR1
/// logs the counters. See `redha help run`.
#[derive(Debug, Parser)]
#[command(name = "redha", version, about, long_about)]
pub struct Cli {
    /// The node's configuration file (TOML; see config/reference.toml).
    #[arg(short, long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Log filter, as RUST_LOG takes it (`info`, `debug`, `vrrp=debug,info`);
    /// RUST_LOG wins when set.
    #[arg(long, value_name = "FILTER", default_value = "info", global = true)]
    pub log_level: String,

    /// What to do; without a command, run the agent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent (the default).
    ///
    /// Reads --config (a bad file is refused before anything touches the network,
    /// naming the file, the line and the key), then runs the VRRP instance, the Redis
    /// checks and the replication planner, the control socket for `redha status`,
    /// and, with [metrics], the Prometheus listener. Needs CAP_NET_RAW and
    /// CAP_NET_ADMIN.
    ///
    /// Signals:
    ///   SIGTERM, SIGINT  hand over (pause writes until the peer's replica has them),
    ///                    step down (priority 0, virtual IPs removed), run the stop
    ///                    hooks, exit 0
    ///   SIGHUP           reload the file: an invalid one is refused and the running
    ///                    configuration kept; the same instance (interface, VRID) is
    ///                    reconfigured in place, keeping its virtual IPs
    ///   SIGUSR1          log the counters (adverts sent, received, dropped by reason)
    ///
    /// Every transition, Redis command and decision is logged with its reason, the
    /// replication ids and the offsets; [state_log] writes the same to a file.
    #[command(verbatim_doc_comment)]
    Run,
    /// Check a configuration file without touching the network.
    ///
    /// Prints a one-line summary of what it would run and exits 0, or prints the
    /// file, the line and the key of the first error and exits 1. Notify hook
    /// programs are checked too (absolute path, executable, not changeable by a
    /// non-root user).
    CheckConfig {
        /// The file to check (default: --config).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Convert a keepalived.conf of the classic Redis setup to a redha configuration.
    ///
    /// Reads every vrrp_instance (as named instances, with the vrrp_sync_groups as
    /// sync groups; --instance: that one alone) with its authentication,
    /// unicast peers and garp settings; a vrrp_script that checks Redis (chk_redis)
    /// becomes [redis]; notify scripts that run SLAVEOF/REPLICAOF are replaced by
    /// [replication] (the peer is taken from them when they are readable here);
    /// other notify scripts stay hooks. The TOML goes to stdout (or --output) and is
    /// accepted by `redha check-config`; what has no equivalent is said plainly on
    /// stderr, with its keepalived.conf line, and repeated as comments in the TOML.
    MigrateKeepalived {
        /// The keepalived.conf to read.
        #[arg(value_name = "KEEPALIVED_CONF")]
        file: PathBuf,
        /// Migrate this vrrp_instance alone (default: every one, as named instances).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Write the TOML here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show what the running agent is doing.
    ///
    /// VRRP state, effective priority, who is master since when and why, the virtual
    /// IPs held, the local and the peer's Redis (role, offsets, link), the
    /// replication rule in force and the last events: a table, or JSON with --json.
    /// It asks the agent over its control socket: --socket, else `[control] socket`
    /// of --config, else /run/redha/redha.sock. Exits 3 when no agent answers, 2
    /// when it runs no instance of that name.
    Status {
        /// One instance by name (every instance without it).
        name: Option<String>,
        /// Print the status document as JSON (for scripts) instead of a table.
        #[arg(long)]
        json: bool,
        /// The agent's control socket.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
}
