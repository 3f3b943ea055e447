//! Wiring: the configuration goes in, the VRRP instance and the coordinator run,
//! signals stop them.

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::coordinator::{Coordinator, Request};
use crate::statelog::StateLog;

/// Runs the agent until SIGTERM or SIGINT, then hands over, steps down and returns.
pub async fn run(config: Config) -> Result<()> {
    let statelog = match &config.state_log {
        Some(s) => StateLog::open(&s.path, s.format)
            .with_context(|| format!("opening the state log {}", s.path.display()))?,
        None => StateLog::default(),
    };
    let instance = config.instance();
    let name = instance.name.clone();
    // With a Redis to watch, the instance stays out of the election until that Redis
    // has been seen healthy.
    let start_in_fault = config.redis.as_ref().map(|r| {
        format!(
            "waiting for the local Redis at {} to be seen healthy",
            r.address
        )
    });
    let (handle, mut task) = vrrp::driver::spawn(instance, start_in_fault)
        .await
        .with_context(|| format!("starting VRRP instance {name}"))?;

    let (requests, coordinator) = match &config.redis {
        Some(redis) => {
            let (tx, rx) = mpsc::channel(1);
            let coordinator = Coordinator::new(&config, redis, handle.clone(), statelog)?;
            (Some(tx), Some(tokio::spawn(coordinator.run(rx))))
        }
        None => (None, None),
    };

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;

    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: handing over and stepping down"); break; }
            _ = int.recv() => { info!("SIGINT: handing over and stepping down"); break; }
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
    match requests {
        Some(requests) => {
            let (done, stopped) = oneshot::channel();
            if requests.send(Request::Stop(done)).await.is_ok() {
                let _ = stopped.await;
            }
            if let Some(coordinator) = coordinator {
                let _ = coordinator.await;
            }
        }
        None => handle.shutdown().await,
    }
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(instance = %name, error = %e, "stepping down failed"),
        Err(e) => error!(instance = %name, error = %e, "the VRRP task panicked"),
    }
    info!(instance = %name, counters = %handle.stats().snapshot(), "stopped");
    Ok(())
}
