//! Wiring: the configuration goes in; the VRRP instance, the coordinator, the control
//! socket and the metrics listener run; signals stop or reload them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
        running.instance = new_instance.clone();
        *running.view.lock().unwrap_or_else(|e| e.into_inner()) = new_instance;
        running.hooks.reconfigure(new.vrrp.hooks());
        running.stop_coordinator().await;
        running.update_servers(&new, shared).await;
        running.config = new;
        let in_fault = running.handle.status().borrow().state == vrrp::State::Fault;
        running.start_coordinator(shared.clone(), in_fault)?;
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
    /// The instance as the control socket and the metrics page show it: replaced on
    /// an in-place reload, so that listeners kept across it show the new one.
    view: Arc<Mutex<InstanceConfig>>,
    handle: InstanceHandle,
    task: JoinHandle<Result<(), vrrp::driver::DriverError>>,
    requests: Option<mpsc::Sender<Request>>,
    coordinator: Option<JoinHandle<()>>,
    control: Option<Server<PathBuf>>,
    metrics: Option<Server<SocketAddr>>,
    hooks: Arc<HookRunner>,
}

/// A listener task and where it listens.
struct Server<A> {
    at: A,
    task: JoinHandle<()>,
}

impl<A> Server<A> {
    /// Ends the task and waits until it has ended, so that its socket is closed
    /// (the address can be bound again) when this returns.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
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
            view: Arc::new(Mutex::new(instance.clone())),
            config,
            instance,
            handle,
            task,
            requests: None,
            coordinator: None,
            control: None,
            metrics: None,
            hooks: Arc::new(HookRunner::spawn(instance_name, hooks)),
        };
        running.start_coordinator(shared.clone(), in_fault)?;
        let socket = running.config.control.socket.clone();
        running.control = Some(running.open_control(&socket, &shared)?);
        if let Some(listen) = running.config.metrics.as_ref().map(|m| m.listen) {
            running.metrics = Some(running.open_metrics(listen, &shared)?);
        }
        Ok(running)
    }

    /// The coordinator: Redis health and replication, gating the VRRP instance.
    fn start_coordinator(&mut self, shared: Shared, in_fault: bool) -> Result<()> {
        let (tx, rx) = mpsc::channel(1);
        let coordinator = Coordinator::new(
            &self.config,
            self.handle.clone(),
            shared,
            self.hooks.clone(),
            in_fault,
        )?;
        self.coordinator = Some(tokio::spawn(coordinator.run(rx)));
        self.requests = Some(tx);
        Ok(())
    }

    /// Binds the control socket at `path` and serves `redha status` on it.
    fn open_control(&self, path: &Path, shared: &Shared) -> Result<Server<PathBuf>> {
        let (view, handle, state) = (self.view.clone(), self.handle.clone(), shared.clone());
        let task = control::serve(path, move |request| {
            let instance = view.lock().unwrap_or_else(|e| e.into_inner()).clone();
            (request == "status").then(|| status::document(&instance, &handle, &state))
        })
        .with_context(|| format!("opening the control socket {}", path.display()))?;
        info!(socket = %path.display(), "control socket ready (redha status)");
        Ok(Server {
            at: path.to_path_buf(),
            task,
        })
    }

    /// Binds the metrics listener on `listen` and serves `GET /metrics` on it.
    fn open_metrics(&self, listen: SocketAddr, shared: &Shared) -> Result<Server<SocketAddr>> {
        let (view, handle, state) = (self.view.clone(), self.handle.clone(), shared.clone());
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("opening the metrics listener on {listen}"))?;
        let task = metrics::serve(listener, move || {
            let instance = view.lock().unwrap_or_else(|e| e.into_inner()).clone();
            metrics::render(&instance, &handle, &state)
        })
        .with_context(|| format!("serving metrics on {listen}"))?;
        info!(listen = %listen, "metrics on http://{listen}/metrics");
        Ok(Server { at: listen, task })
    }

    /// An in-place reload: a listener whose address is unchanged is kept as it is
    /// (it shows the new configuration through `view`); a moved one is opened at
    /// its new address before the old one is closed, and if that fails the old one
    /// is closed first and the new address tried again. A listener that cannot be
    /// opened is an ERROR, never a reason to stop: the VIP matters more.
    async fn update_servers(&mut self, new: &Config, shared: &Shared) {
        let socket = &new.control.socket;
        if self.control.as_ref().is_none_or(|c| c.at != *socket) {
            match self.open_control(socket, shared) {
                Ok(server) => {
                    if let Some(old) = self.control.replace(server) {
                        let _ = std::fs::remove_file(&old.at);
                        info!(old = %old.at.display(), new = %socket.display(), "SIGHUP: control socket moved");
                        old.stop().await;
                    }
                }
                Err(e) => {
                    error!("SIGHUP: {e:#}; the control socket stays where it was");
                }
            }
        }
        let listen = new.metrics.as_ref().map(|m| m.listen);
        if self.metrics.as_ref().map(|m| m.at) == listen {
            return;
        }
        let Some(listen) = listen else {
            if let Some(old) = self.metrics.take() {
                info!(old = %old.at, "SIGHUP: metrics listener closed ([metrics] removed)");
                old.stop().await;
            }
            return;
        };
        let first = match self.open_metrics(listen, shared) {
            Ok(server) => Ok(server),
            // The new address may overlap the old one (same port, another
            // address): close the old listener and try again.
            Err(e) => match self.metrics.take() {
                Some(old) => {
                    let at = old.at;
                    old.stop().await;
                    let again = self.open_metrics(listen, shared);
                    if again.is_ok() {
                        info!(old = %at, new = %listen, "SIGHUP: metrics listener moved (the addresses overlap: the old one was closed first)");
                    }
                    again.map_err(|_| (e, Some(at)))
                }
                None => Err((e, None)),
            },
        };
        match first {
            Ok(server) => {
                if let Some(old) = self.metrics.replace(server) {
                    info!(old = %old.at, new = %listen, "SIGHUP: metrics listener moved");
                    old.stop().await;
                }
            }
            Err((e, old)) => {
                error!("SIGHUP: {e:#}; the metrics are not served at the new address");
                if let Some(at) = old {
                    match self.open_metrics(at, shared) {
                        Ok(server) => {
                            warn!(listen = %at, "SIGHUP: metrics stay on the old address");
                            self.metrics = Some(server);
                        }
                        Err(e) => error!("SIGHUP: {e:#}; metrics are off until the next reload"),
                    }
                }
            }
        }
    }

    /// Stops the coordinator without touching the VRRP instance.
    async fn stop_coordinator(&mut self) {
        self.requests = None;
        if let Some(c) = self.coordinator.take() {
            c.abort();
            let _ = c.await;
        }
    }

    /// Closes the control socket and the metrics listener, waiting until they are
    /// closed.
    async fn stop_servers(&mut self) {
        if let Some(control) = self.control.take() {
            let _ = std::fs::remove_file(&control.at);
            control.stop().await;
        }
        if let Some(metrics) = self.metrics.take() {
            metrics.stop().await;
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
        self.stop_servers().await;
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
