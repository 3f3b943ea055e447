//! `redha`: the agent binary.

mod cli;
// Compiled once, in the library (src/lib.rs): the configuration, the control
// socket, the notify hooks and the keepalived.conf migrator.
use redha::{config, config_file, control, hooks, migrate};
mod coordinator;
mod durable;
mod metrics;
mod preflight;
mod run;
mod state;
mod statelog;
mod status;
mod sync_group;
mod transitions;
mod witness;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::config_file::ConfigFile;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { ref file }) => {
            check_config(file.as_ref().or(cli.config.as_ref()))
        }
        Some(Command::Status {
            ref name,
            json,
            ref socket,
        }) => show_status(&cli, name.as_deref(), json, socket.as_ref()),
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
    match ConfigFile::load(path) {
        Ok(file) if !file.named => {
            println!("{}: ok: {}", path.display(), summary(&file.instances[0]));
            ExitCode::SUCCESS
        }
        Ok(file) => {
            println!(
                "{}: ok: {} instance(s), {} sync group(s)",
                path.display(),
                file.instances.len(),
                file.sync_groups.len()
            );
            for config in &file.instances {
                let name = ConfigFile::name_of(config);
                let group = file
                    .group_of(&name)
                    .map_or(String::new(), |g| format!(" (sync group {g})"));
                println!("  {}{group}", summary(config));
            }
            for (group, members) in &file.sync_groups {
                println!("  sync group {group}: {}", members.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redha: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One instance in a line: its router, its transport, its Redis.
fn summary(config: &Config) -> String {
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
    format!(
        "instance {} on {}, {}, vrid {}, priority {}, advert_int {:?}, preempt {}, {} virtual address(es), {transport}; {redis}",
        i.name,
        i.interface,
        i.version,
        i.vrid,
        i.priority,
        i.advert_int,
        i.preempt,
        i.virtual_addresses.len(),
    )
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

fn show_status(cli: &Cli, name: Option<&str>, json: bool, socket: Option<&PathBuf>) -> ExitCode {
    let configured = match cli.config.as_ref().map(|p| ConfigFile::load(p)) {
        Some(Ok(file)) => Some(file.instances[0].control.socket.clone()),
        Some(Err(e)) => {
            eprintln!("redha: {e}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let path = control::socket_path(socket, configured.as_ref());
    let request = match name {
        Some(name) => format!("status {name}"),
        None => "status".to_string(),
    };
    match control::request(&path, &request) {
        Ok(doc) if doc["error"].is_string() => {
            eprintln!(
                "redha status: {}",
                doc["error"].as_str().unwrap_or_default()
            );
            ExitCode::from(2)
        }
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
    let config = match ConfigFile::load(path) {
        Ok(file) => file,
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
