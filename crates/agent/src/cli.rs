//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// redha keeps a Redis pair highly available: it speaks VRRP (RFC 3768) with its peer
/// to decide which host holds the virtual IP, and replaces keepalived and its notify
/// scripts.
///
/// Run it on each host as `redha --config /etc/redha/redha.toml`. SIGTERM or SIGINT
/// steps down (priority 0, virtual addresses removed) and exits; SIGUSR1 logs the
/// counters (adverts sent, received, dropped by reason).
#[derive(Debug, Parser)]
#[command(name = "redha", version, about, long_about)]
pub struct Cli {
    /// The node's configuration file (TOML).
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
    Run,
    /// Check a configuration file without touching the network: prints what it would
    /// run, or the file, line and key of the first error, and exits non-zero.
    CheckConfig {
        /// The file to check (default: --config).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Write the redha configuration equivalent to a keepalived.conf of the classic
    /// Redis setup: vrrp_instance, authentication, unicast peers, the chk_redis
    /// vrrp_script (becomes [redis]), and the notify scripts (SLAVEOF scripts become
    /// [replication]; others stay hooks). The TOML goes to stdout (or --output), and
    /// what has no equivalent is said plainly on stderr, with its line.
    MigrateKeepalived {
        /// The keepalived.conf to read.
        #[arg(value_name = "KEEPALIVED_CONF")]
        file: PathBuf,
        /// Which vrrp_instance to migrate (default: the first; one per redha file).
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Write the TOML here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show what the running agent is doing: VRRP state, priority, who is master
    /// since when and why, the VIPs, the local and the peer's Redis (role, offsets,
    /// link), the replication rule in force and the last events.
    ///
    /// It asks the agent over its control socket: --socket, else `[control] socket`
    /// of --config, else /run/redha/redha.sock. Exits 3 when no agent answers.
    Status {
        /// Print the status document as JSON (for scripts) instead of a table.
        #[arg(long)]
        json: bool,
        /// The agent's control socket.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
}
