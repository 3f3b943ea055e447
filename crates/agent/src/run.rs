//! Wiring: the configuration file goes in; for each of its instances the VRRP
//! instance, the relay of its transitions (hooks, counters) and the coordinator run,
//! beside one control socket and one metrics listener for them all; signals stop or
//! reload them.
//!
//! Every task is supervised: one that ends without being asked to (it panicked, it
//! returned, or, for the control socket, its path was taken by another file) is
//! logged at ERROR, the agent steps down (priority 0, VIPs removed, for a VRRP loop
//! that is gone too) and `run` returns an error, so that the process exits non-zero
//! and the service manager restarts it. A control socket whose path was deleted is
//! created again instead.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::future::{join_all, select_all};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};
use tracing::{error, info, warn};
use vrrp::{InstanceConfig, InstanceHandle};

use crate::config::{Config, ControlConfig, MetricsConfig};
use crate::config_file::ConfigFile;
use crate::coordinator::{Coordinator, Request};
use crate::hooks::{HookRunner, HookState};
use crate::preflight::{self, Verdict};
use crate::state::Shared;
use crate::statelog::StateLog;
use crate::{control, metrics, status, sync_group, transitions};

/// How often the control socket's path is looked at.
const CONTROL_CHECK: Duration = Duration::from_secs(1);

/// How long a live VRRP loop gets to step down before it is stepped down for.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// How long the transition relay gets, once the VRRP loop has ended, to relay the
/// last transitions (it only queues hooks and records events: never near this).
const RELAY_BOUND: Duration = Duration::from_secs(1);

/// Debug builds only: the environment variable naming a task (`vrrp`,
/// `transitions`, `coordinator`, `control`, `metrics`) that SIGUSR2 cancels, so that
/// tests can see what supervision does with a task that nothing real ends.
pub const DEBUG_ABORT_ENV: &str = "REDHA_DEBUG_ABORT_ON_USR2";

/// Runs the agent until SIGTERM or SIGINT, then hands over, steps down and returns.
/// A task that ends unexpectedly makes it step down and return an error.
pub async fn run(path: PathBuf, file: ConfigFile) -> Result<()> {
    let mut agent = Agent::start(file).await?;

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut debug_abort = debug_abort_hook()?;

    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: handing over and stepping down"); break; }
            _ = int.recv() => { info!("SIGINT: handing over and stepping down"); break; }
            _ = usr1.recv() => {
                for running in agent.instances.values() {
                    info!(instance = %running.instance.name, counters = %running.handle.stats().snapshot(), "counters");
                }
            }
            _ = hup.recv() => agent.reload(&path).await,
            task = next_debug_abort(&mut debug_abort) => agent.abort_task(task),
            ended = agent.ended() => {
                if ended.task == Task::Control && ended.path_gone {
                    let path = agent.control_config.socket.clone();
                    warn!(socket = %path.display(), "the control socket was deleted: creating it again");
                    match agent.open_control(&path) {
                        Ok(server) => {
                            agent.control = Some(server);
                            continue;
                        }
                        Err(e) => {
                            let why = format!("{e:#}");
                            return agent.fail(Ended { task: Task::Control, instance: None, why, path_gone: false }).await;
                        }
                    }
                }
                return agent.fail(ended).await;
            }
        }
    }
    agent.stop().await;
    Ok(())
}

/// `notify_stop` and `notify ... STOP`, then the queued hooks, bounded.
async fn notify_stop(hooks: Arc<HookRunner>, config: &Config) {
    hooks.notify(HookState::Stop, config.vrrp.priority.0);
    let bound = config.vrrp.notify_timeout * 2 + Duration::from_secs(1);
    if let Ok(hooks) = Arc::try_unwrap(hooks)
        && tokio::time::timeout(bound, hooks.shutdown()).await.is_err()
    {
        warn!("notify hooks still running at exit; not waiting longer");
    }
}

/// A task of the agent, as supervision names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    Vrrp,
    Transitions,
    Coordinator,
    Control,
    Metrics,
    SyncGroup,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Vrrp => "VRRP instance",
            Task::Transitions => "transition relay (notify hooks, transition counters)",
            Task::Coordinator => "coordinator (Redis health monitor and replication)",
            Task::Control => "control socket",
            Task::Metrics => "metrics listener",
            Task::SyncGroup => "sync group",
        }
    }

    fn parse(text: &str) -> Option<Task> {
        match text {
            "vrrp" => Some(Task::Vrrp),
            "transitions" => Some(Task::Transitions),
            "coordinator" => Some(Task::Coordinator),
            "control" => Some(Task::Control),
            "metrics" => Some(Task::Metrics),
            "sync_group" => Some(Task::SyncGroup),
            _ => None,
        }
    }
}

/// A task that ended without being asked to, and why.
#[derive(Debug)]
struct Ended {
    task: Task,
    /// The instance whose task it was (`None`: the agent's listeners).
    instance: Option<String>,
    why: String,
    /// The control socket's path is gone (deleted): it is created again.
    path_gone: bool,
}

/// Why a listener task ended.
#[derive(Debug)]
enum ServerEnd {
    /// Its socket's path no longer exists.
    PathGone,
    /// Anything else, in words.
    Other(String),
}

fn join_outcome<T>(result: Result<T, JoinError>, returned: &str) -> String {
    match result {
        Ok(_) => returned.to_string(),
        Err(e) if e.is_panic() => "it panicked (see the panic message above)".into(),
        Err(_) => "it was cancelled".into(),
    }
}

/// Aborts a task when dropped (a dropped `JoinHandle` lets its task run on).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The SIGUSR2 hook of [`DEBUG_ABORT_ENV`]; `None` unless set, and always in
/// release builds.
fn debug_abort_hook() -> Result<Option<(Signal, Task)>> {
    if !cfg!(debug_assertions) {
        return Ok(None);
    }
    let Some(name) = std::env::var_os(DEBUG_ABORT_ENV) else {
        return Ok(None);
    };
    let name = name.to_string_lossy();
    let task = Task::parse(&name).with_context(|| {
        format!("{DEBUG_ABORT_ENV}={name}: name vrrp, transitions, coordinator, control, metrics or sync_group")
    })?;
    warn!(
        task = task.name(),
        "debug build: SIGUSR2 will cancel this task ({DEBUG_ABORT_ENV})"
    );
    let usr2 = signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?;
    Ok(Some((usr2, task)))
}

async fn next_debug_abort(hook: &mut Option<(Signal, Task)>) -> Task {
    match hook {
        Some((usr2, task)) => {
            usr2.recv().await;
            warn!(
                task = task.name(),
                "SIGUSR2 ({DEBUG_ABORT_ENV}): cancelling the task"
            );
            *task
        }
        None => std::future::pending().await,
    }
}

/// On the way out: lets the state log's writer write what is queued, for at most a
/// second (a stalled disk does not hold the exit up), off the runtime's thread.
async fn flush_statelog(shared: Shared) {
    let flushed =
        tokio::task::spawn_blocking(move || shared.flush_statelog(Duration::from_secs(1)))
            .await
            .unwrap_or(false);
    if !flushed {
        warn!("the state log could not be written out within 1 s; its last lines may be missing");
    }
}

/// What the control socket and the metrics page show of one instance.
#[derive(Clone)]
pub struct View {
    /// Its configuration, as the vrrp crate takes it.
    pub instance: InstanceConfig,
    /// Its VRRP instance.
    pub handle: InstanceHandle,
    /// What its coordinator and relay know.
    pub shared: Shared,
}

/// Every instance's [`View`], by name: replaced as reloads change instances, so
/// that listeners kept across a reload show what runs now.
type Views = Arc<Mutex<BTreeMap<String, View>>>;

/// Reads the views, whatever a panicking writer left.
fn read_views(views: &Views) -> BTreeMap<String, View> {
    views.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The agent: its instances, their sync groups and the listeners they share.
struct Agent {
    instances: BTreeMap<String, Running>,
    /// Sync groups by name, as the file has them.
    groups: BTreeMap<String, Vec<String>>,
    /// A task per sync group ([`sync_group::run`]), by group name.
    group_tasks: Vec<(String, JoinHandle<()>)>,
    views: Views,
    control_config: ControlConfig,
    metrics_config: Option<MetricsConfig>,
    control: Option<Server<PathBuf>>,
    metrics: Option<Server<SocketAddr>>,
}

impl Agent {
    /// Starts every instance, then the listeners. If any of it fails, what was
    /// started steps down and the error is returned.
    async fn start(file: ConfigFile) -> Result<Agent> {
        let first = file
            .instances
            .first()
            .context("the file names no instance")?;
        let mut agent = Agent {
            instances: BTreeMap::new(),
            groups: file.sync_groups.clone(),
            group_tasks: Vec::new(),
            views: Views::default(),
            control_config: first.control.clone(),
            metrics_config: first.metrics.clone(),
            control: None,
            metrics: None,
        };
        let mut started = Ok(());
        for config in file.instances {
            let name = config.instance().name;
            match Running::start(config).await {
                Ok(running) => agent.insert(name, running),
                Err(e) => {
                    started = Err(e.context(format!("starting instance {name}")));
                    break;
                }
            }
        }
        if started.is_ok() {
            agent.start_groups();
            started = agent.open_servers();
        }
        match started {
            Ok(()) => Ok(agent),
            Err(e) => {
                // What runs already steps down before we give up.
                agent.step_down().await;
                Err(e)
            }
        }
    }

    fn open_servers(&mut self) -> Result<()> {
        let socket = self.control_config.socket.clone();
        self.control = Some(self.open_control(&socket)?);
        if let Some(listen) = self.metrics_config.as_ref().map(|m| m.listen) {
            self.metrics = Some(self.open_metrics(listen)?);
        }
        Ok(())
    }

    /// (Re)starts a task per sync group over the members as they run now.
    fn start_groups(&mut self) {
        self.stop_groups();
        for (group, names) in &self.groups {
            let members: Vec<(String, InstanceHandle)> = names
                .iter()
                .filter_map(|n| Some((n.clone(), self.instances.get(n)?.handle.clone())))
                .collect();
            let task = tokio::spawn(sync_group::run(group.clone(), members));
            self.group_tasks.push((group.clone(), task));
        }
    }

    fn stop_groups(&mut self) {
        for (_, task) in self.group_tasks.drain(..) {
            task.abort();
        }
    }

    /// Adds a running instance and its view.
    fn insert(&mut self, name: String, running: Running) {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), running.view());
        self.instances.insert(name, running);
    }

    /// Takes an instance out, with its view.
    fn remove(&mut self, name: &str) -> Option<Running> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.instances.remove(name)
    }

    /// The first task that ended without being asked to. Cancel-safe.
    async fn ended(&mut self) -> Ended {
        async fn wait_server<A>(server: &mut Option<Server<A>>) -> Result<ServerEnd, JoinError> {
            match server {
                Some(s) => (&mut s.task).await,
                None => std::future::pending().await,
            }
        }
        let server_ended = |task, result: Result<ServerEnd, JoinError>| match result {
            Ok(ServerEnd::PathGone) => Ended {
                task,
                instance: None,
                why: "its path was deleted".into(),
                path_gone: true,
            },
            Ok(ServerEnd::Other(why)) => Ended {
                task,
                instance: None,
                why,
                path_gone: false,
            },
            Err(e) => Ended {
                task,
                instance: None,
                why: join_outcome(Err::<(), _>(e), ""),
                path_gone: false,
            },
        };
        let instances = async {
            if self.instances.is_empty() {
                return std::future::pending().await;
            }
            let waits = self
                .instances
                .values_mut()
                .map(|running| Box::pin(running.ended()));
            select_all(waits).await.0
        };
        let groups = async {
            if self.group_tasks.is_empty() {
                return std::future::pending().await;
            }
            let waits = self.group_tasks.iter_mut().map(|(_, t)| t);
            let (result, i, _) = select_all(waits).await;
            let (group, _) = self.group_tasks.remove(i);
            Ended {
                task: Task::SyncGroup,
                instance: Some(group),
                why: join_outcome(result, "it returned (a member's instance ended)"),
                path_gone: false,
            }
        };
        tokio::select! {
            ended = instances => ended,
            ended = groups => ended,
            r = wait_server(&mut self.control) => {
                self.control = None;
                server_ended(Task::Control, r)
            }
            r = wait_server(&mut self.metrics) => {
                self.metrics = None;
                server_ended(Task::Metrics, r)
            }
        }
    }

    /// Debug builds: cancels one task, of every instance for an instance's task
    /// (see [`DEBUG_ABORT_ENV`]).
    fn abort_task(&self, task: Task) {
        match task {
            Task::Control => self.control.as_ref().map(|s| s.task.abort()),
            Task::Metrics => self.metrics.as_ref().map(|s| s.task.abort()),
            Task::SyncGroup => {
                for (_, task) in &self.group_tasks {
                    task.abort();
                }
                None
            }
            _ => {
                for running in self.instances.values() {
                    running.abort_task(task);
                }
                None
            }
        };
    }

    /// A task ended unexpectedly: say so loudly, step down, and return the error
    /// that makes the process exit non-zero.
    async fn fail(self, ended: Ended) -> Result<()> {
        let task = ended.task.name();
        let instance = ended.instance.clone().unwrap_or_else(|| "-".into());
        error!(
            task, instance = %instance, why = %ended.why,
            "a task of the agent ENDED unexpectedly: stepping down (priority 0, VIPs removed) and exiting non-zero, so that the service manager restarts the agent"
        );
        for running in self.instances.values() {
            running.shared.event(
                "supervision",
                &[
                    ("task", task.to_string()),
                    ("instance", instance.clone()),
                    ("why", ended.why.clone()),
                    ("action", "step down and exit".into()),
                ],
            );
        }
        self.step_down().await;
        anyhow::bail!("the {task} ({instance}) ended unexpectedly: {}", ended.why)
    }

    /// Every instance steps down at once (see [`Running::step_down`]), then the
    /// listeners close and the state logs are written out.
    async fn step_down(self) {
        self.end(false).await;
    }

    /// Every instance hands over and steps down at once (see [`Running::stop`]),
    /// then the listeners close and the state logs are written out.
    async fn stop(self) {
        self.end(true).await;
    }

    async fn end(mut self, hand_over: bool) {
        self.stop_groups();
        let instances = std::mem::take(&mut self.instances);
        let shared: Vec<Shared> = instances.values().map(|r| r.shared.clone()).collect();
        join_all(instances.into_values().map(|running| async move {
            match hand_over {
                true => running.stop().await,
                false => running.step_down().await,
            }
        }))
        .await;
        self.stop_servers().await;
        join_all(shared.into_iter().map(flush_statelog)).await;
    }

    /// SIGHUP: read the file again. A bad file is refused and every instance runs
    /// on as it was. Otherwise, by name: an instance no longer in the file hands
    /// over and steps down; a new one starts (if it cannot, it is left out and
    /// said so); an unchanged one is not touched at all; a changed one is
    /// reloaded (see [`Running::reload`]). Then the listeners follow `[control]`
    /// and `[metrics]`.
    async fn reload(&mut self, path: &Path) {
        let file = match ConfigFile::load(path) {
            Ok(file) => file,
            Err(e) => {
                error!("SIGHUP: REFUSED the new configuration, the running one stays: {e}");
                for running in self.instances.values() {
                    running.refused(e.to_string());
                }
                return;
            }
        };
        let (control, metrics) = (
            file.instances[0].control.clone(),
            file.instances[0].metrics.clone(),
        );
        let groups = file.sync_groups.clone();
        let mut configs: BTreeMap<String, Config> = file
            .instances
            .into_iter()
            .map(|c| (c.instance().name, c))
            .collect();
        // One instance before and after is the same instance, whatever its name
        // (a single-instance file names it after its VRID).
        let single = match (self.instances.len(), configs.len()) {
            (1, 1) => self.instances.pop_first().zip(configs.pop_first()),
            _ => None,
        };
        match single {
            Some(((old, running), (_, config))) => {
                self.remove(&old);
                self.apply(running, config).await;
            }
            None => self.reload_by_name(configs).await,
        }
        self.groups = groups;
        self.start_groups();
        self.control_config = control;
        self.metrics_config = metrics;
        self.update_servers().await;
    }

    /// A reload of several instances, by name: an instance no longer in the file
    /// hands over and steps down; a new one starts (if it cannot, it is left out
    /// and said so); the others are applied (see [`Agent::apply`]).
    async fn reload_by_name(&mut self, mut configs: BTreeMap<String, Config>) {
        let gone: Vec<String> = self
            .instances
            .keys()
            .filter(|name| !configs.contains_key(*name))
            .cloned()
            .collect();
        let mut leaving = Vec::new();
        for name in gone {
            if let Some(running) = self.remove(&name) {
                warn!(instance = %name, "SIGHUP: instance removed from the file: it hands over and steps down");
                leaving.push(running);
            }
        }
        join_all(leaving.into_iter().map(Running::stop)).await;
        for (name, config) in std::mem::take(&mut configs) {
            match self.remove(&name) {
                Some(running) => self.apply(running, config).await,
                None => match Running::start(config).await {
                    Ok(running) => {
                        info!(instance = %name, "SIGHUP: instance added and started");
                        running.applied("new instance");
                        self.insert(name, running);
                    }
                    Err(e) => {
                        error!(instance = %name, "SIGHUP: the new instance could not be started, it is left out: {e:#}");
                    }
                },
            }
        }
    }

    /// A running instance and its configuration in the new file: untouched when
    /// unchanged (no advert gap, no transition), else reloaded (see
    /// [`Running::reload`]); then back among the instances, under its name.
    async fn apply(&mut self, running: Running, config: Config) {
        let running = if !running.config.same_instance(&config) {
            running.reload(config).await
        } else {
            running
        };
        self.insert(running.instance.name.clone(), running);
    }

    /// Binds the control socket at `path` and serves `redha status [NAME]` on it.
    /// The task also looks at the path every [`CONTROL_CHECK`]: it ends when the
    /// path is gone ([`ServerEnd::PathGone`]: created again) or holds another file
    /// (a second agent with the same configuration took it: supervision steps
    /// down).
    fn open_control(&self, path: &Path) -> Result<Server<PathBuf>> {
        let views = self.views.clone();
        let serving = control::serve(path, move |request| {
            let mut words = request.split_whitespace();
            let (what, name) = (words.next(), words.next());
            if what != Some("status") || words.next().is_some() {
                return None;
            }
            let views = read_views(&views);
            Some(match name {
                Some(name) => match views.get(name) {
                    Some(v) => status::document(&v.instance, &v.handle, &v.shared),
                    None => serde_json::json!({
                        "error": format!(
                            "no instance {name:?}; the instances are: {}",
                            views.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    }),
                },
                None if views.len() == 1 => {
                    let v = views.values().next().expect("one view");
                    status::document(&v.instance, &v.handle, &v.shared)
                }
                None => serde_json::json!({
                    "instances": views
                        .values()
                        .map(|v| status::document(&v.instance, &v.handle, &v.shared))
                        .collect::<Vec<_>>()
                }),
            })
        })
        .with_context(|| format!("opening the control socket {}", path.display()))?;
        let serving = AbortOnDrop(serving);
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("looking at the control socket {}", path.display()))?;
        let file = (meta.dev(), meta.ino());
        let watched = path.to_path_buf();
        let task = tokio::spawn(async move {
            let mut serving = serving;
            let mut tick = tokio::time::interval(CONTROL_CHECK);
            loop {
                tokio::select! {
                    r = &mut serving.0 => return ServerEnd::Other(join_outcome(r, "its loop returned")),
                    _ = tick.tick() => match std::fs::symlink_metadata(&watched) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ServerEnd::PathGone,
                        Ok(m) if (m.dev(), m.ino()) != file => {
                            return ServerEnd::Other(format!(
                                "{} is another file now (a second agent with the same configuration?)",
                                watched.display()
                            ));
                        }
                        _ => {}
                    },
                }
            }
        });
        info!(socket = %path.display(), "control socket ready (redha status)");
        Ok(Server {
            at: path.to_path_buf(),
            task,
            file: Some((path.to_path_buf(), file)),
        })
    }

    /// Binds the metrics listener on `listen` and serves `GET /metrics` on it.
    fn open_metrics(&self, listen: SocketAddr) -> Result<Server<SocketAddr>> {
        let views = self.views.clone();
        let listener = std::net::TcpListener::bind(listen)
            .with_context(|| format!("opening the metrics listener on {listen}"))?;
        let serving = metrics::serve(listener, move || {
            let views = read_views(&views);
            metrics::render(views.values())
        })
        .with_context(|| format!("serving metrics on {listen}"))?;
        let mut serving = AbortOnDrop(serving);
        let task = tokio::spawn(async move {
            ServerEnd::Other(join_outcome((&mut serving.0).await, "its loop returned"))
        });
        info!(listen = %listen, "metrics on http://{listen}/metrics");
        Ok(Server {
            at: listen,
            task,
            file: None,
        })
    }

    /// After a reload: a listener whose address is unchanged is kept as it is (it
    /// shows what runs now through the views); a moved one is opened at its new
    /// address before the old one is closed, and if that fails the old one is
    /// closed first and the new address tried again. A listener that cannot be
    /// opened is an ERROR, never a reason to stop: the VIPs matter more.
    async fn update_servers(&mut self) {
        let socket = self.control_config.socket.clone();
        if self.control.as_ref().is_none_or(|c| c.at != socket) {
            match self.open_control(&socket) {
                Ok(server) => {
                    if let Some(old) = self.control.replace(server) {
                        info!(old = %old.at.display(), new = %socket.display(), "SIGHUP: control socket moved");
                        old.stop().await;
                    }
                }
                Err(e) => {
                    error!("SIGHUP: {e:#}; the control socket stays where it was");
                }
            }
        }
        let listen = self.metrics_config.as_ref().map(|m| m.listen);
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
        let first = match self.open_metrics(listen) {
            Ok(server) => Ok(server),
            // The new address may overlap the old one (same port, another
            // address): close the old listener and try again.
            Err(e) => match self.metrics.take() {
                Some(old) => {
                    let at = old.at;
                    old.stop().await;
                    let again = self.open_metrics(listen);
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
                    match self.open_metrics(at) {
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

    /// Closes the control socket and the metrics listener, waiting until they are
    /// closed.
    async fn stop_servers(&mut self) {
        if let Some(control) = self.control.take() {
            control.stop().await;
        }
        if let Some(metrics) = self.metrics.take() {
            metrics.stop().await;
        }
    }
}

/// A VRRP instance started for a configuration, before anything else of it runs.
struct Launched {
    config: Config,
    instance: InstanceConfig,
    spawned: vrrp::Spawned,
    /// It was started in Fault (with `[redis]`), until the coordinator says otherwise.
    in_fault: bool,
}

impl Launched {
    /// The local Redis's preflight (with `[replication]`), then the VRRP instance,
    /// which leaves the addresses in `held` alone (see [`vrrp::driver::spawn`]).
    /// Nothing runs when this fails.
    async fn start(config: Config, held: &[IpAddr]) -> Result<Launched> {
        if let (Some(redis), Some(_)) = (&config.redis, &config.replication) {
            let target = config.redis_target(redis)?;
            if let Verdict::Refused(why) = preflight::check(&target, redis.check_timeout).await {
                anyhow::bail!("the local Redis cannot be used: {why}");
            }
        }
        let instance = config.instance();
        // With a Redis to watch, the instance stays out of the election until that
        // Redis has been seen healthy.
        let start_in_fault = config.redis.as_ref().map(|r| {
            format!(
                "waiting for the local Redis at {} to be seen healthy",
                r.address
            )
        });
        let in_fault = start_in_fault.is_some();
        let spawned = vrrp::driver::spawn(instance.clone(), start_in_fault, held)
            .await
            .with_context(|| format!("starting VRRP instance {}", instance.name))?;
        Ok(Launched {
            config,
            instance,
            spawned,
            in_fault,
        })
    }
}

/// Everything that runs for one instance.
struct Running {
    config: Config,
    instance: InstanceConfig,
    handle: InstanceHandle,
    /// What the coordinator and the relay know; the instance's state log.
    shared: Shared,
    /// The VRRP loop; `None` once it has ended.
    task: Option<JoinHandle<Result<(), vrrp::driver::DriverError>>>,
    /// The relay of every transition to the hooks, the state log and the counters
    /// ([`transitions::relay`]); it ends after the VRRP loop has; `None` once ended.
    relay: Option<JoinHandle<()>>,
    requests: Option<mpsc::Sender<Request>>,
    coordinator: Option<JoinHandle<()>>,
    /// The coordinator could not be started (on a reload): supervision takes it
    /// as a coordinator that ended.
    failed: Option<String>,
    hooks: Arc<HookRunner>,
}

/// A listener task and where it listens.
struct Server<A> {
    at: A,
    task: JoinHandle<ServerEnd>,
    /// For a Unix socket: its file, device and inode, to tell it from a file that
    /// replaced it.
    file: Option<(PathBuf, (u64, u64))>,
}

impl<A> Server<A> {
    /// Ends the task and waits until it has ended, so that its socket is closed
    /// (the address can be bound again) when this returns. A Unix socket's file is
    /// removed if it is still ours (not one that replaced it).
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Some((path, id)) = self.file
            && std::fs::symlink_metadata(&path).is_ok_and(|m| (m.dev(), m.ino()) == id)
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl Running {
    /// Opens the instance's state log, starts its VRRP instance, the relay of its
    /// transitions and its coordinator. What started steps down if the rest fails.
    async fn start(config: Config) -> Result<Running> {
        let statelog = match &config.state_log {
            Some(s) => StateLog::open(&s.path, s.format)
                .with_context(|| format!("opening the state log {}", s.path.display()))?,
            None => StateLog::default(),
        };
        let shared = Shared::new(statelog);
        let launched = Launched::start(config, &[]).await?;
        let (mut running, in_fault) = Running::assemble(launched, shared);
        match running.start_coordinator(in_fault) {
            Ok(()) => Ok(running),
            Err(e) => {
                // The instance runs already: it steps down before we give up.
                running.step_down().await;
                Err(e)
            }
        }
    }

    /// A started instance with its hooks and the relay of its transitions (which
    /// may have waited in their channel); nothing else yet. Also says whether the
    /// instance was started in Fault.
    fn assemble(launched: Launched, shared: Shared) -> (Running, bool) {
        let Launched {
            config,
            instance,
            spawned,
            in_fault,
        } = launched;
        let hooks = Arc::new(HookRunner::spawn(
            instance.name.clone(),
            config.vrrp.hooks(),
        ));
        let relay = tokio::spawn(transitions::relay(
            spawned.transitions,
            hooks.clone(),
            shared.clone(),
        ));
        let running = Running {
            config,
            instance,
            handle: spawned.handle,
            shared,
            task: Some(spawned.task),
            relay: Some(relay),
            requests: None,
            coordinator: None,
            failed: None,
            hooks,
        };
        (running, in_fault)
    }

    /// What the listeners show of it.
    fn view(&self) -> View {
        View {
            instance: self.instance.clone(),
            handle: self.handle.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Counts and records a refused reload.
    fn refused(&self, why: String) {
        self.shared
            .event("reload", &[("result", "refused".into()), ("error", why)]);
        *self
            .shared
            .lock()
            .reloads
            .entry("refused".into())
            .or_default() += 1;
    }

    /// Counts and records an applied reload.
    fn applied(&self, how: &str) {
        *self
            .shared
            .lock()
            .reloads
            .entry("applied".into())
            .or_default() += 1;
        self.shared.event(
            "reload",
            &[("result", "applied".into()), ("how", how.into())],
        );
    }

    /// A changed configuration for this instance. The same virtual router
    /// (interface and VRID) is reconfigured in place, keeping its VIPs; another
    /// one replaces this instance, started before the old one lets anything go:
    /// if the new one cannot start (its interface is missing, its Redis is
    /// refused, a socket cannot be opened) the reload is refused and the old one
    /// runs on untouched.
    async fn reload(mut self, new: Config) -> Running {
        let new_instance = new.instance();
        let name = new_instance.name.clone();
        let same = new_instance.interface == self.instance.interface
            && new_instance.vrid == self.instance.vrid;
        if same {
            self.applied("in place");
            info!(instance = %name, "SIGHUP: applying the new configuration to the running instance (VIPs kept)");
            self.handle
                .command(vrrp::Command::Reconfigure(Box::new(new_instance.clone())))
                .await;
            self.instance = new_instance;
            self.hooks.reconfigure(new.vrrp.hooks());
            self.stop_coordinator().await;
            self.config = new;
            let in_fault = self.handle.status().borrow().state == vrrp::State::Fault;
            if let Err(e) = self.start_coordinator(in_fault) {
                // Without a coordinator Redis health no longer gates the VIP:
                // supervision steps down at once.
                self.failed = Some(format!("it could not be started again: {e:#}"));
            }
            return self;
        }
        let change = format!(
            "{} VRID {} -> {} VRID {}",
            self.instance.interface, self.instance.vrid, new_instance.interface, new_instance.vrid
        );
        warn!(
            instance = %name,
            "SIGHUP: interface or VRID changed ({change}): starting the new instance before the old one steps down"
        );
        // The running instance's addresses on the same interface are its own,
        // live: the new instance must not clean them up as left behind. (The old
        // instance still removes them when it steps down; a new instance that is
        // already master by then, an address owner at priority 255, adds them
        // again at its next advert, one advert interval later.)
        let held: Vec<IpAddr> = if new_instance.interface == self.instance.interface {
            self.instance.addresses()
        } else {
            Vec::new()
        };
        let launched = match Launched::start(new, &held).await {
            Ok(launched) => launched,
            Err(e) => {
                error!(
                    instance = %name,
                    "SIGHUP: REFUSED the new configuration ({change}): {e:#}; the running instance stays as it was"
                );
                self.refused(format!("{change}: {e:#}"));
                return self;
            }
        };
        self.applied("new instance");
        info!(instance = %name, "SIGHUP: the new instance runs ({change}): the old one hands over and steps down");
        // The old one's hooks and coordinator go first. The new instance's
        // transitions wait in their channel meanwhile, so that its hooks run after
        // the old one's STOP.
        let shared = self.shared.clone();
        self.stop().await;
        let (mut running, in_fault) = Running::assemble(launched, shared);
        if let Err(e) = running.start_coordinator(in_fault) {
            running.failed = Some(format!(
                "it could not be started for the new instance: {e:#}"
            ));
        }
        running
    }

    /// The first task that ended without being asked to. Cancel-safe: a task that
    /// has not ended is waited for again next time.
    async fn ended(&mut self) -> Ended {
        let instance = Some(self.instance.name.clone());
        if let Some(why) = self.failed.take() {
            return Ended {
                task: Task::Coordinator,
                instance,
                why,
                path_gone: false,
            };
        }
        async fn wait<T>(handle: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
            match handle {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            // The relay ends when the VRRP loop has: name the loop first if both have.
            biased;
            r = wait(&mut self.task) => {
                self.task = None;
                let why = match r {
                    Ok(Err(e)) => format!("it failed: {e}"),
                    r => join_outcome(r, "its loop returned"),
                };
                Ended { task: Task::Vrrp, instance, why, path_gone: false }
            }
            r = wait(&mut self.relay) => {
                self.relay = None;
                let why = join_outcome(r, "it returned (the VRRP instance's transition channel closed)");
                Ended { task: Task::Transitions, instance, why, path_gone: false }
            }
            r = wait(&mut self.coordinator) => {
                self.coordinator = None;
                let why = join_outcome(r, "it returned (its Redis health monitor ended, or the VRRP instance's status channel closed)");
                Ended { task: Task::Coordinator, instance, why, path_gone: false }
            }
        }
    }

    /// Debug builds: cancels one of its tasks (see [`DEBUG_ABORT_ENV`]).
    fn abort_task(&self, task: Task) {
        match task {
            Task::Vrrp => self.task.as_ref().map(JoinHandle::abort),
            Task::Transitions => self.relay.as_ref().map(JoinHandle::abort),
            Task::Coordinator => self.coordinator.as_ref().map(JoinHandle::abort),
            Task::Control | Task::Metrics | Task::SyncGroup => None,
        };
    }

    /// Steps down after a task ended: the coordinator is stopped first (nothing
    /// may act on Redis or on the instance meanwhile); a live VRRP loop steps down
    /// (priority 0 if master, VIPs removed), and one that is gone, or does not
    /// within [`SHUTDOWN_BOUND`], is stepped down for ([`vrrp::driver::release`]).
    /// Then `notify_stop` runs.
    async fn step_down(mut self) {
        self.requests = None;
        if let Some(c) = self.coordinator.take() {
            c.abort();
            let _ = c.await;
        }
        let stepped_down = match self.task.take() {
            Some(mut task) => {
                let done = tokio::time::timeout(SHUTDOWN_BOUND, async {
                    self.handle.shutdown().await;
                    (&mut task).await
                })
                .await;
                match done {
                    Ok(Ok(Ok(()))) => true,
                    Ok(Ok(Err(e))) => {
                        error!(instance = %self.instance.name, error = %e, "stepping down failed");
                        false
                    }
                    Ok(Err(e)) => {
                        error!(instance = %self.instance.name, why = %join_outcome(Err::<(), _>(e), ""), "the VRRP task ended while stepping down");
                        false
                    }
                    Err(_) => {
                        error!(instance = %self.instance.name, "the VRRP instance did not step down within {SHUTDOWN_BOUND:?}");
                        task.abort();
                        let _ = task.await;
                        false
                    }
                }
            }
            None => false,
        };
        if !stepped_down {
            let was_master = self.handle.status().borrow().state == vrrp::State::Master;
            info!(instance = %self.instance.name, was_master, "stepping down for the VRRP instance: removing its addresses{}", if was_master { " and sending priority 0" } else { "" });
            if let Err(e) = vrrp::driver::release(&self.instance, was_master).await {
                error!(instance = %self.instance.name, error = %e, "stepping down for the VRRP instance failed");
            }
        }
        self.drain_relay().await;
        notify_stop(self.hooks, &self.config).await;
        info!(instance = %self.instance.name, counters = %self.handle.stats().snapshot(), "stopped");
    }

    /// Once the VRRP loop has ended (its channel closes then): waits until the
    /// relay has passed the last transitions on, so that their hooks are queued
    /// before STOP and the relay's hold on the hook runner is gone.
    async fn drain_relay(&mut self) {
        let Some(mut relay) = self.relay.take() else {
            return;
        };
        if tokio::time::timeout(RELAY_BOUND, &mut relay).await.is_err() {
            error!(instance = %self.instance.name, "the transition relay did not end within {RELAY_BOUND:?}; its last transitions may be missing");
            relay.abort();
            let _ = relay.await;
        }
    }

    /// The coordinator: Redis health and replication, gating the VRRP instance.
    fn start_coordinator(&mut self, in_fault: bool) -> Result<()> {
        let (tx, rx) = mpsc::channel(1);
        let coordinator = Coordinator::new(
            &self.config,
            self.handle.clone(),
            self.shared.clone(),
            in_fault,
        )?;
        self.coordinator = Some(tokio::spawn(coordinator.run(rx)));
        self.requests = Some(tx);
        Ok(())
    }

    /// Stops the coordinator without touching the VRRP instance.
    async fn stop_coordinator(&mut self) {
        self.requests = None;
        if let Some(c) = self.coordinator.take() {
            c.abort();
            let _ = c.await;
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
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    error!(instance = %self.instance.name, error = %e, "stepping down failed")
                }
                Err(e) => {
                    error!(instance = %self.instance.name, error = %e, "the VRRP task panicked")
                }
            }
        }
        self.drain_relay().await;
        notify_stop(self.hooks, &self.config).await;
        info!(instance = %self.instance.name, counters = %self.handle.stats().snapshot(), "stopped");
    }
}
