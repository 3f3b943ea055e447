//! Wiring: the configuration goes in, the VRRP instance runs, signals stop it.

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::config::Config;

/// Runs the agent until SIGTERM or SIGINT, then steps down and returns.
pub async fn run(config: Config) -> Result<()> {
    let instance = config.instance();
    let name = instance.name.clone();
    let (handle, mut task) = vrrp::driver::spawn(instance, None)
        .await
        .with_context(|| format!("starting VRRP instance {name}"))?;

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;

    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: stepping down"); break; }
            _ = int.recv() => { info!("SIGINT: stepping down"); break; }
            _ = usr1.recv() => {
                info!(instance = %name, counters = %handle.stats().snapshot(), "counters");
            }
            _ = hup.recv() => {
                warn!("SIGHUP: configuration reload is not supported yet; the running configuration stays");
            }
            result = &mut task => {
                let result = result.context("the VRRP task panicked")?;
                if let Err(e) = &result {
                    error!(instance = %name, error = %e, "VRRP instance stopped");
                }
                return result.with_context(|| format!("VRRP instance {name}"));
            }
        }
    }
    handle.shutdown().await;
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(instance = %name, error = %e, "stepping down failed"),
        Err(e) => error!(instance = %name, error = %e, "the VRRP task panicked"),
    }
    info!(instance = %name, counters = %handle.stats().snapshot(), "stopped");
    Ok(())
}
