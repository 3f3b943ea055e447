//! Prometheus metrics in the text exposition format, on an optional HTTP listener
//! (`[metrics] listen`, loopback by default).

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::debug;
use vrrp::{DropReason, InstanceConfig, InstanceHandle, State};

use crate::state::Shared;

/// The metrics page.
pub fn render(instance: &InstanceConfig, vrrp: &InstanceHandle, shared: &Shared) -> String {
    let status = vrrp.status().borrow().clone();
    let stats = vrrp.stats().snapshot();
    let state = shared.lock();
    let name = escape(&instance.name);
    let mut out = String::new();
    let family = |out: &mut String, metric: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
    };

    family(
        &mut out,
        "redha_vrrp_state",
        "gauge",
        "1 for the instance's current VRRP state.",
    );
    for s in [
        State::Initialize,
        State::Backup,
        State::Master,
        State::Fault,
    ] {
        let v = u8::from(status.state == s);
        let _ = writeln!(
            out,
            "redha_vrrp_state{{instance=\"{name}\",state=\"{s}\"}} {v}"
        );
    }
    family(
        &mut out,
        "redha_vrrp_priority",
        "gauge",
        "Priority advertised now (0 outside BACKUP and MASTER).",
    );
    let _ = writeln!(
        out,
        "redha_vrrp_priority{{instance=\"{name}\"}} {}",
        status.effective_priority
    );
    family(
        &mut out,
        "redha_vrrp_transitions_total",
        "counter",
        "VRRP transitions by new state and reason.",
    );
    for ((to, reason), n) in &state.transitions {
        let _ = writeln!(
            out,
            "redha_vrrp_transitions_total{{instance=\"{name}\",to=\"{}\",reason=\"{}\"}} {n}",
            escape(to),
            escape(reason)
        );
    }
    family(
        &mut out,
        "redha_vrrp_adverts_sent_total",
        "counter",
        "Adverts sent, priority 0 included.",
    );
    let _ = writeln!(
        out,
        "redha_vrrp_adverts_sent_total{{instance=\"{name}\"}} {}",
        stats.adverts_sent
    );
    family(
        &mut out,
        "redha_vrrp_adverts_received_total",
        "counter",
        "Valid adverts received.",
    );
    let _ = writeln!(
        out,
        "redha_vrrp_adverts_received_total{{instance=\"{name}\"}} {}",
        stats.adverts_received
    );
    family(
        &mut out,
        "redha_vrrp_adverts_dropped_total",
        "counter",
        "Received packets dropped, by reason.",
    );
    for reason in DropReason::ALL {
        let _ = writeln!(
            out,
            "redha_vrrp_adverts_dropped_total{{instance=\"{name}\",reason=\"{reason}\"}} {}",
            stats.dropped(reason)
        );
    }
    if let Some(h) = &state.health {
        family(
            &mut out,
            "redha_redis_up",
            "gauge",
            "1 when the local Redis is healthy (fall/rise).",
        );
        let _ = writeln!(
            out,
            "redha_redis_up{{instance=\"{name}\"}} {}",
            u8::from(h.health == "up")
        );
        family(
            &mut out,
            "redha_redis_check_latency_seconds",
            "gauge",
            "Round trip of the last health check's PING.",
        );
        if let Some(l) = h.latency {
            let _ = writeln!(
                out,
                "redha_redis_check_latency_seconds{{instance=\"{name}\"}} {}",
                l.as_secs_f64()
            );
        }
        family(
            &mut out,
            "redha_redis_checks_total",
            "counter",
            "Health checks run (lost connections included).",
        );
        let _ = writeln!(
            out,
            "redha_redis_checks_total{{instance=\"{name}\"}} {}",
            h.checks
        );
        family(
            &mut out,
            "redha_redis_check_failures_total",
            "counter",
            "Failed health checks.",
        );
        let _ = writeln!(
            out,
            "redha_redis_check_failures_total{{instance=\"{name}\"}} {}",
            h.failures
        );
    }
    if state.rule.is_some() {
        family(
            &mut out,
            "redha_replication_lag_bytes",
            "gauge",
            "How far the replica's offset is behind its master's.",
        );
        if let Some(lag) = state.replication_lag() {
            let _ = writeln!(
                out,
                "redha_replication_lag_bytes{{instance=\"{name}\"}} {lag}"
            );
        }
        family(
            &mut out,
            "redha_replication_eligible",
            "gauge",
            "1 when the planner lets this node hold the VIP.",
        );
        let _ = writeln!(
            out,
            "redha_replication_eligible{{instance=\"{name}\"}} {}",
            u8::from(state.eligible == Some(true))
        );
        family(
            &mut out,
            "redha_redis_commands_total",
            "counter",
            "Redis commands sent by the planner, by command and result.",
        );
        for ((command, result), n) in &state.redis_commands {
            let _ = writeln!(
                out,
                "redha_redis_commands_total{{instance=\"{name}\",command=\"{}\",result=\"{}\"}} {n}",
                escape(command),
                escape(result)
            );
        }
    }
    family(
        &mut out,
        "redha_config_reloads_total",
        "counter",
        "SIGHUP reloads by result.",
    );
    for (result, n) in &state.reloads {
        let _ = writeln!(
            out,
            "redha_config_reloads_total{{instance=\"{name}\",result=\"{}\"}} {n}",
            escape(result)
        );
    }
    family(
        &mut out,
        "redha_state_log_dropped_total",
        "counter",
        "State-log lines dropped because the writer could not keep up (a stalled disk).",
    );
    let _ = writeln!(
        out,
        "redha_state_log_dropped_total{{instance=\"{name}\"}} {}",
        shared.statelog_dropped()
    );
    out
}

/// Escapes a label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
                let read = tokio::time::timeout(Duration::from_secs(2), async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
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
                let request = String::from_utf8_lossy(&head);
                let target = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body, kind) =
                    if request.starts_with("GET ") && (target == "/metrics" || target == "/") {
                        ("200 OK", page(), "text/plain; version=0.0.4; charset=utf-8")
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
