//! Wiring: the configuration goes in; the VRRP instance, the coordinator, the control
//! socket and the metrics listener run; signals stop or reload them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};
use vrrp::{InstanceConfig, InstanceHandle};

use crate::config::Config;
use crate::coordinator::{Coordinator, Request};
use crate::hooks::{HookRunner, HookState};
use crate::preflight::{self, Verdict};
use crate::state::Shared;
use crate::statelog::StateLog;
use crate::{control, metrics, status};

/// Runs the agent until SIGTERM or SIGINT, then hands over, steps down and returns.
pub async fn run(path: PathBuf, config: Config) -> Result<()> {
    let statelog = match &config.state_log {
        Some(s) => StateLog::open(&s.path, s.format)
            .with_context(|| format!("opening the state log {}", s.path.display()))?,
        None => StateLog::default(),
    };
    let shared = Shared::new(statelog);
    let mut running = Running::start(config, shared.clone()).await?;

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;

    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: handing over and stepping down"); break; }
            _ = int.recv() => { info!("SIGINT: handing over and stepping down"); break; }
            _ = usr1.recv() => {
                info!(instance = %running.instance.name, counters = %running.handle.stats().snapshot(), "counters");
            }
            _ = hup.recv() => running = reload(running, &path, &shared).await?,
            result = &mut running.task => {
                let result = result.context("the VRRP task panicked")?;
                if let Err(e) = &result {
                    error!(instance = %running.instance.name, error = %e, "VRRP instance stopped");
                }
                flush_statelog(&shared).await;
                return result.with_context(|| format!("VRRP instance {}", running.instance.name));
            }
        }
    }
    running.stop().await;
    flush_statelog(&shared).await;
    Ok(())
}

/// On the way out: lets the state log's writer write what is queued, for at most a
/// second (a stalled disk does not hold the exit up), off the runtime's thread.
async fn flush_statelog(shared: &Shared) {
    let shared = shared.clone();
    let flushed =
        tokio::task::spawn_blocking(move || shared.flush_statelog(Duration::from_secs(1)))
            .await
            .unwrap_or(false);
    if !flushed {
        warn!("the state log could not be written out within 1 s; its last lines may be missing");
    }
}

/// SIGHUP: read the file again. A bad file is refused and the running configuration
/// kept; the same instance (interface and VRID) is reconfigured in place, keeping
/// its VIPs; another instance replaces this one.
async fn reload(mut running: Running, path: &Path, shared: &Shared) -> Result<Running> {
    let new = match Config::load(path) {
        Ok(new) => new,
        Err(e) => {
            error!("SIGHUP: REFUSED the new configuration, the running one stays: {e}");
            shared.event(
                "reload",
                &[("result", "refused".into()), ("error", e.to_string())],
            );
            *shared.lock().reloads.entry("refused".into()).or_default() += 1;
            return Ok(running);
        }
    };
    let new_instance = new.instance();
    let same = new_instance.interface == running.instance.interface
        && new_instance.vrid == running.instance.vrid;
    *shared.lock().reloads.entry("applied".into()).or_default() += 1;
    if same {
        info!("SIGHUP: applying the new configuration to the running instance (VIPs kept)");
        shared.event(
            "reload",
            &[("result", "applied".into()), ("how", "in place".into())],
        );
        running
            .handle
            .command(vrrp::Command::Reconfigure(Box::new(new_instance.clone())))
            .await;
        running.instance = new_instance;
        running.hooks.reconfigure(new.vrrp.hooks());
        running.stop_services().await;
        running.config = new;
        let in_fault = running.handle.status().borrow().state == vrrp::State::Fault;
        running.start_services(shared.clone(), in_fault)?;
        Ok(running)
    } else {
        warn!(
            "SIGHUP: interface or VRID changed ({} VRID {} -> {} VRID {}): replacing the instance",
            running.instance.interface,
            running.instance.vrid,
            new_instance.interface,
            new_instance.vrid
        );
        shared.event(
            "reload",
            &[("result", "applied".into()), ("how", "new instance".into())],
        );
        running.stop().await;
        Running::start(new, shared.clone()).await
    }
}

/// Everything that runs for one configuration.
struct Running {
    config: Config,
    instance: InstanceConfig,
    handle: InstanceHandle,
    task: JoinHandle<Result<(), vrrp::driver::DriverError>>,
    requests: Option<mpsc::Sender<Request>>,
    coordinator: Option<JoinHandle<()>>,
    servers: Vec<JoinHandle<()>>,
    hooks: Arc<HookRunner>,
}

impl Running {
    async fn start(config: Config, shared: Shared) -> Result<Running> {
        if let (Some(redis), Some(_)) = (&config.redis, &config.replication) {
            let target = config.redis_target(redis)?;
            if let Verdict::Refused(why) = preflight::check(&target, redis.check_timeout).await {
                anyhow::bail!("the local Redis cannot be used: {why}");
            }
        }
        let instance = config.instance();
        let (instance_name, hooks) = (instance.name.clone(), config.vrrp.hooks());
        // With a Redis to watch, the instance stays out of the election until that
        // Redis has been seen healthy.
        let start_in_fault = config.redis.as_ref().map(|r| {
            format!(
                "waiting for the local Redis at {} to be seen healthy",
                r.address
            )
        });
        let in_fault = start_in_fault.is_some();
        let (handle, task) = vrrp::driver::spawn(instance.clone(), start_in_fault)
            .await
            .with_context(|| format!("starting VRRP instance {}", instance.name))?;
        let mut running = Running {
            config,
            instance,
            handle,
            task,
            requests: None,
            coordinator: None,
            servers: Vec::new(),
            hooks: Arc::new(HookRunner::spawn(instance_name, hooks)),
        };
        running.start_services(shared, in_fault)?;
        Ok(running)
    }

    /// The coordinator, the control socket and the metrics listener.
    fn start_services(&mut self, shared: Shared, in_fault: bool) -> Result<()> {
        let (tx, rx) = mpsc::channel(1);
        let coordinator = Coordinator::new(
            &self.config,
            self.handle.clone(),
            shared.clone(),
            self.hooks.clone(),
            in_fault,
        )?;
        self.coordinator = Some(tokio::spawn(coordinator.run(rx)));
        self.requests = Some(tx);

        let socket = self.config.control.socket.clone();
        let (instance, handle, state) =
            (self.instance.clone(), self.handle.clone(), shared.clone());
        let server = control::serve(&socket, move |request| {
            (request == "status").then(|| status::document(&instance, &handle, &state))
        })
        .with_context(|| format!("opening the control socket {}", socket.display()))?;
        info!(socket = %socket.display(), "control socket ready (redha status)");
        self.servers.push(server);

        if let Some(m) = &self.config.metrics {
            let (instance, handle, state) = (self.instance.clone(), self.handle.clone(), shared);
            let listen = m.listen;
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("opening the metrics listener on {listen}"))?;
            let server = metrics::serve(listener, move || {
                metrics::render(&instance, &handle, &state)
            })
            .with_context(|| format!("serving metrics on {listen}"))?;
            info!(listen = %listen, "metrics on http://{listen}/metrics");
            self.servers.push(server);
        }
        Ok(())
    }

    /// Stops the coordinator without touching the VRRP instance.
    async fn stop_services(&mut self) {
        self.requests = None;
        if let Some(c) = self.coordinator.take() {
            c.abort();
            let _ = c.await;
        }
        for s in self.servers.drain(..) {
            s.abort();
        }
    }

    /// Hands over (with replication), steps down and waits for the instance to end.
    async fn stop(mut self) {
        if let Some(requests) = self.requests.take() {
            let (done, stopped) = oneshot::channel();
            if requests.send(Request::Stop(done)).await.is_ok() {
                let _ = stopped.await;
            }
        }
        if let Some(c) = self.coordinator.take() {
            let _ = c.await;
        }
        self.handle.shutdown().await;
        for s in self.servers.drain(..) {
            s.abort();
        }
        let _ = std::fs::remove_file(&self.config.control.socket);
        // notify_stop and `notify ... STOP`, then the queued hooks, bounded.
        let priority = self.config.vrrp.priority.0;
        self.hooks.notify(HookState::Stop, priority);
        let bound = self.config.vrrp.notify_timeout * 2 + Duration::from_secs(1);
        if let Ok(hooks) = Arc::try_unwrap(self.hooks)
            && tokio::time::timeout(bound, hooks.shutdown()).await.is_err()
        {
            warn!("notify hooks still running at exit; not waiting longer");
        }
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error!(instance = %self.instance.name, error = %e, "stepping down failed")
            }
            Err(e) => error!(instance = %self.instance.name, error = %e, "the VRRP task panicked"),
        }
        info!(instance = %self.instance.name, counters = %self.handle.stats().snapshot(), "stopped");
    }
}
