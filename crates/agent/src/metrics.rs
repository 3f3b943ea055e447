//! Prometheus metrics, encoded by `prometheus-client` in the OpenMetrics text
//! format, on an optional HTTP listener (`[metrics] listen`, loopback by default).
//! Every series carries the instance's name as its `instance` label.

use std::io;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::debug;
use vrrp::{DropReason, InstanceConfig, InstanceHandle, State};

use crate::run::View;
use crate::state::Shared;

/// The content type of [`render`]'s page.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Longest request head the listener reads before it gives up on a client.
const MAX_REQUEST: usize = 8192;

/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A series' labels: `instance` first, then the metric's own.
type Labels = Vec<(&'static str, String)>;

/// A sample's value.
#[derive(Clone, Copy)]
enum Value {
    Gauge(i64),
    GaugeF64(f64),
    Counter(u64),
}

/// A metric family being filled: its name, its help and its samples.
struct Samples {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, Value)>,
}

/// One scrape's metrics, read from the agent's counters and state as they are
/// now: every instance adds its samples, then the families are registered in the
/// order they were first named.
#[derive(Default)]
struct Page {
    families: Vec<Samples>,
}

impl Page {
    fn add(&mut self, name: &'static str, help: &'static str, samples: Vec<(Labels, Value)>) {
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(family) => family.samples.extend(samples),
            None => self.families.push(Samples {
                name,
                help,
                samples,
            }),
        }
    }

    /// Gauge samples.
    fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, i64)>,
    ) {
        let samples = samples.into_iter().map(|(l, v)| (l, Value::Gauge(v)));
        self.add(name, help, samples.collect());
    }

    /// Gauge samples of fractional values.
    fn gauge_f64(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let samples = samples.into_iter().map(|(l, v)| (l, Value::GaugeF64(v)));
        self.add(name, help, samples.collect());
    }

    /// Counter samples; `name` without `_total`, which the encoding adds.
    fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        samples: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let samples = samples.into_iter().map(|(l, v)| (l, Value::Counter(v)));
        self.add(name, help, samples.collect());
    }

    fn encode(self) -> String {
        let mut registry = Registry::default();
        for Samples {
            name,
            help,
            samples,
        } in self.families
        {
            match samples.first().map(|(_, v)| *v) {
                // A family without samples (no check answered yet) is left out.
                None => {}
                Some(Value::Gauge(_)) => {
                    let family = Family::<Labels, Gauge>::default();
                    for (labels, value) in samples {
                        if let Value::Gauge(v) = value {
                            family.get_or_create(&labels).set(v);
                        }
                    }
                    registry.register(name, help, family);
                }
                Some(Value::GaugeF64(_)) => {
                    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
                    for (labels, value) in samples {
                        if let Value::GaugeF64(v) = value {
                            family.get_or_create(&labels).set(v);
                        }
                    }
                    registry.register(name, help, family);
                }
                Some(Value::Counter(_)) => {
                    let family = Family::<Labels, Counter>::default();
                    for (labels, value) in samples {
                        if let Value::Counter(v) = value {
                            family.get_or_create(&labels).inc_by(v);
                        }
                    }
                    registry.register(name, help, family);
                }
            }
        }
        let mut out = String::new();
        // Writing to a String fails only on a broken encoder; the page would be cut.
        if let Err(e) = encode(&mut out, &registry) {
            debug!(error = %e, "metrics: encoding failed");
        }
        out
    }
}

/// The metrics page of every instance.
pub fn render<'a>(views: impl IntoIterator<Item = &'a View>) -> String {
    let mut page = Page::default();
    for view in views {
        add_instance(&mut page, &view.instance, &view.handle, &view.shared);
    }
    page.encode()
}

/// One instance's samples.
fn add_instance(
    page: &mut Page,
    instance: &InstanceConfig,
    vrrp: &InstanceHandle,
    shared: &Shared,
) {
    let status = vrrp.status().borrow().clone();
    let stats = vrrp.stats().snapshot();
    let state = shared.lock();
    let name = instance.name.clone();
    let labels = |more: &[(&'static str, &str)]| -> Labels {
        let mut labels = vec![("instance", name.clone())];
        labels.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
        labels
    };
    page.gauge(
        "redha_vrrp_state",
        "1 for the instance's current VRRP state",
        [
            State::Initialize,
            State::Backup,
            State::Master,
            State::Fault,
        ]
        .map(|s| {
            let value = i64::from(status.state == s);
            (labels(&[("state", &s.to_string())]), value)
        }),
    );
    page.gauge(
        "redha_vrrp_priority",
        "Priority advertised now (0 outside BACKUP and MASTER)",
        [(labels(&[]), i64::from(status.effective_priority))],
    );
    page.counter(
        "redha_vrrp_transitions",
        "VRRP transitions by new state and reason",
        state
            .transitions
            .iter()
            .map(|((to, reason), n)| (labels(&[("to", to), ("reason", reason)]), *n)),
    );
    page.counter(
        "redha_vrrp_adverts_sent",
        "Adverts sent, priority 0 included",
        [(labels(&[]), stats.adverts_sent)],
    );
    page.counter(
        "redha_vrrp_adverts_received",
        "Valid adverts received",
        [(labels(&[]), stats.adverts_received)],
    );
    page.counter(
        "redha_vrrp_adverts_dropped",
        "Received packets dropped, by reason",
        DropReason::ALL.map(|r| (labels(&[("reason", r.name())]), stats.dropped(r))),
    );
    if let Some(h) = &state.health {
        page.gauge(
            "redha_redis_up",
            "1 when the local Redis is healthy (fall/rise)",
            [(labels(&[]), i64::from(h.health == "up"))],
        );
        page.gauge_f64(
            "redha_redis_check_latency_seconds",
            "Round trip of the last health check's PING",
            h.latency.map(|l| (labels(&[]), l.as_secs_f64())),
        );
        page.counter(
            "redha_redis_checks",
            "Health checks run (lost connections included)",
            [(labels(&[]), h.checks)],
        );
        page.counter(
            "redha_redis_check_failures",
            "Failed health checks",
            [(labels(&[]), h.failures)],
        );
    }
    if state.rule.is_some() {
        page.gauge(
            "redha_replication_lag_bytes",
            "How far the replica's offset is behind its master's",
            state
                .replication_lag()
                .map(|lag| (labels(&[]), i64::try_from(lag).unwrap_or(i64::MAX))),
        );
        page.gauge(
            "redha_replication_eligible",
            "1 when the planner lets this node hold the VIP",
            [(labels(&[]), i64::from(state.eligible == Some(true)))],
        );
        page.counter(
            "redha_redis_commands",
            "Redis commands sent by the planner, by command and result",
            state.redis_commands.iter().map(|((command, result), n)| {
                (labels(&[("command", command), ("result", result)]), *n)
            }),
        );
    }
    page.counter(
        "redha_config_reloads",
        "SIGHUP reloads by result",
        state
            .reloads
            .iter()
            .map(|(result, n)| (labels(&[("result", result)]), *n)),
    );
    page.counter(
        "redha_state_log_dropped",
        "State-log lines dropped because the writer could not keep up (a stalled disk)",
        [(labels(&[]), shared.statelog_dropped())],
    );
}

/// Serves `GET /metrics` on a bound listener until the task is aborted.
pub fn serve(
    listener: std::net::TcpListener,
    page: impl Fn() -> String + Send + Sync + 'static,
) -> io::Result<tokio::task::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let page = std::sync::Arc::new(page);
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut head = Vec::with_capacity(512);
                let mut buf = [0u8; 512];
                let read = tokio::time::timeout(READ_TIMEOUT, async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
                        let n = stream.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        head.extend_from_slice(&buf[..n]);
                    }
                    io::Result::Ok(())
                })
                .await;
                if !matches!(read, Ok(Ok(()))) {
                    return;
                }
                let complete = head.windows(4).any(|w| w == b"\r\n\r\n");
                let request = String::from_utf8_lossy(&head);
                let target = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body, kind) = if !complete {
                    if head.len() < MAX_REQUEST {
                        // The client closed before its request ended.
                        return;
                    }
                    (
                        "431 Request Header Fields Too Large",
                        format!("a request head is {MAX_REQUEST} bytes at most\n"),
                        "text/plain; charset=utf-8",
                    )
                } else if request.starts_with("GET ") && (target == "/metrics" || target == "/") {
                    ("200 OK", page(), CONTENT_TYPE)
                } else {
                    (
                        "404 Not Found",
                        "try /metrics\n".to_string(),
                        "text/plain; charset=utf-8",
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if let Err(e) = stream.write_all(response.as_bytes()).await {
                    debug!(error = %e, "metrics: write failed");
                }
                let _ = stream.shutdown().await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_openmetrics_with_escaped_labels_and_total_suffixes() {
        let mut page = Page::default();
        let labels = |reason: &str| {
            vec![
                ("instance", "cache".to_string()),
                ("reason", reason.to_string()),
            ]
        };
        page.counter(
            "redha_vrrp_transitions",
            "VRRP transitions",
            [(labels("said \"bye\"\nnow"), 3)],
        );
        page.gauge("redha_vrrp_priority", "Priority", [(labels("x"), 150)]);
        page.gauge_f64("redha_redis_check_latency_seconds", "Latency", []);
        let text = page.encode();
        assert!(
            text.contains("# TYPE redha_vrrp_transitions counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "redha_vrrp_transitions_total{instance=\"cache\",reason=\"said \\\"bye\\\"\\nnow\"} 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("redha_vrrp_priority{instance=\"cache\",reason=\"x\"} 150\n"),
            "{text}"
        );
        // A family without samples (no check answered yet) is left out.
        assert!(
            !text.contains("redha_redis_check_latency_seconds"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
