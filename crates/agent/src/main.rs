//! `redha`: the agent binary.

mod cli;
// Compiled once, in the library (src/lib.rs): the configuration, the control
// socket, the notify hooks and the keepalived.conf migrator.
use redha::{config, control, hooks, migrate};
mod coordinator;
mod durable;
mod metrics;
mod preflight;
mod run;
mod state;
mod statelog;
mod status;
mod transitions;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { ref file }) => {
            check_config(file.as_ref().or(cli.config.as_ref()))
        }
        Some(Command::Status { json, ref socket }) => show_status(&cli, json, socket.as_ref()),
        Some(Command::MigrateKeepalived {
            ref file,
            ref instance,
            ref output,
        }) => migrate_keepalived(file, instance.as_deref(), output.as_ref()),
        None | Some(Command::Run) => run(&cli),
    }
}

fn check_config(file: Option<&PathBuf>) -> ExitCode {
    let Some(path) = file else {
        eprintln!("redha check-config: name a file (redha check-config FILE)");
        return ExitCode::from(2);
    };
    match Config::load(path) {
        Ok(config) => {
            let i = config.instance();
            let transport = if i.unicast_peers.is_empty() {
                "multicast".to_string()
            } else {
                format!("unicast to {:?}", i.unicast_peers)
            };
            let redis = match (&config.redis, &config.replication) {
                (None, _) => "no Redis (plain VRRP)".to_string(),
                (Some(r), None) => {
                    format!("Redis {} checked every {:?}", r.address, r.check_interval)
                }
                (Some(r), Some(rep)) => format!(
                    "Redis {} checked every {:?}, replicating with peer {}",
                    r.address, r.check_interval, rep.peer
                ),
            };
            println!(
                "{}: ok: instance {} on {}, {}, vrid {}, priority {}, advert_int {:?}, preempt {}, {} virtual address(es), {transport}; {redis}",
                path.display(),
                i.name,
                i.interface,
                i.version,
                i.vrid,
                i.priority,
                i.advert_int,
                i.preempt,
                i.virtual_addresses.len(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redha: {e}");
            ExitCode::FAILURE
        }
    }
}

fn migrate_keepalived(
    file: &PathBuf,
    instance: Option<&str>,
    output: Option<&PathBuf>,
) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("redha migrate-keepalived: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let name = file.display().to_string();
    let result = migrate::migrate_with(&text, &name, instance, &migrate::read_script_file);
    let migration = match result {
        Ok(m) => m,
        Err(e) => {
            eprintln!("redha migrate-keepalived: {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &migration.toml) {
                eprintln!("redha migrate-keepalived: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", migration.toml),
    }
    eprint!("{}", migrate::render_notes(&migration.notes));
    ExitCode::SUCCESS
}

fn show_status(cli: &Cli, json: bool, socket: Option<&PathBuf>) -> ExitCode {
    let configured = match cli.config.as_ref().map(|p| Config::load(p)) {
        Some(Ok(config)) => Some(config.control.socket),
        Some(Err(e)) => {
            eprintln!("redha: {e}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let path = control::socket_path(socket, configured.as_ref());
    match control::request(&path, "status") {
        Ok(doc) if json => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Ok(doc) => {
            print!("{}", status::render(&doc));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redha status: {e}");
            ExitCode::from(3)
        }
    }
}

fn run(cli: &Cli) -> ExitCode {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let Some(path) = cli.config.as_ref() else {
        eprintln!("redha: no configuration: run as `redha --config FILE` (see --help)");
        return ExitCode::from(2);
    };
    // A bad configuration is refused before anything touches the network.
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("redha: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("redha: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run(path.clone(), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("redha: {e:#}");
            ExitCode::FAILURE
        }
    }
}
