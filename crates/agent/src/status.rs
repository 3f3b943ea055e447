//! The status document that `redha status` shows: built by the agent from its shared
//! state and VRRP status, sent as JSON over the control socket, and rendered as a
//! table by the command line.

use std::fmt::Write as _;
use std::time::SystemTime;

use humantime_serde::re::humantime;
use serde_json::{Value, json};
use vrrp::{InstanceConfig, InstanceHandle};

use crate::state::{RedisView, Shared};

/// The status document.
pub fn document(instance: &InstanceConfig, vrrp: &InstanceHandle, shared: &Shared) -> Value {
    let status = vrrp.status().borrow().clone();
    let stats = vrrp.stats().snapshot();
    let state = shared.lock();
    let since = humantime::format_rfc3339_seconds(status.since).to_string();
    let for_secs = SystemTime::now()
        .duration_since(status.since)
        .map_or(0, |d| d.as_secs());
    let redis = |view: &Option<RedisView>| {
        view.as_ref().map(|v| {
            json!({
                "address": v.address, "reachable": v.reachable, "role": v.role, "replid": v.replid,
                "offset": v.offset, "link": v.link, "master": v.master, "keys": v.keys,
            })
        })
    };
    let events: Vec<Value> = state
        .events
        .iter()
        .rev()
        .map(|e| {
            let fields: serde_json::Map<String, Value> = e
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "time": humantime::format_rfc3339_millis(e.time).to_string(),
                "event": e.event,
                "fields": fields,
            })
        })
        .collect();
    json!({
        "instance": instance.name,
        "interface": instance.interface,
        "virtual_router_id": instance.vrid,
        "vrrp": {
            "state": status.state.to_string(),
            "since": since,
            "for_seconds": for_secs,
            "reason": status.reason,
            "priority": instance.priority,
            "effective_priority": status.effective_priority,
            "master": status.master.map(|(ip, prio)| json!({"address": ip.to_string(), "priority": prio})),
            "primary_address": status.primary_address.map(|a| a.to_string()),
            "virtual_addresses": instance.virtual_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "holds_virtual_addresses": status.state == vrrp::State::Master,
            "adverts_sent": stats.adverts_sent,
            "adverts_received": stats.adverts_received,
            "dropped": stats.dropped_total(),
        },
        "redis": state.health.as_ref().map(|h| json!({
            "health": h.health,
            "latency_ms": h.latency.map(|l| l.as_secs_f64() * 1000.0),
            "last_error": h.last_error,
            "local": redis(&state.local),
        })),
        "peer": redis(&state.peer),
        "replication": state.rule.as_ref().map(|rule| json!({
            "rule": rule,
            "eligible": state.eligible,
            "lag_bytes": state.replication_lag(),
        })),
        "events": events,
    })
}

/// The document as a readable table.
pub fn render(doc: &Value) -> String {
    if let Some(instances) = doc["instances"].as_array() {
        let tables: Vec<String> = instances.iter().map(render).collect();
        return tables.join("\n");
    }
    let s = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let v = &doc["vrrp"];
    let _ = writeln!(
        out,
        "instance      {} (interface {}, VRID {})",
        s(&doc["instance"]),
        s(&doc["interface"]),
        s(&doc["virtual_router_id"])
    );
    let _ = writeln!(
        out,
        "state         {} since {} ({} s): {}",
        s(&v["state"]),
        s(&v["since"]),
        s(&v["for_seconds"]),
        s(&v["reason"])
    );
    let _ = writeln!(
        out,
        "priority      {} (configured {})",
        s(&v["effective_priority"]),
        s(&v["priority"])
    );
    let master = match &v["master"] {
        Value::Null => "none heard".to_string(),
        m => format!("{} (priority {})", s(&m["address"]), s(&m["priority"])),
    };
    let _ = writeln!(out, "master        {master}");
    let vips: Vec<String> = v["virtual_addresses"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    let held = if v["holds_virtual_addresses"] == Value::Bool(true) {
        "held here"
    } else {
        "not held here"
    };
    let _ = writeln!(out, "VIPs          {} ({held})", vips.join(", "));
    let _ = writeln!(
        out,
        "adverts       {} sent, {} received, {} dropped",
        s(&v["adverts_sent"]),
        s(&v["adverts_received"]),
        s(&v["dropped"])
    );
    let redis_line = |r: &Value| {
        if r.is_null() {
            return "-".to_string();
        }
        if r["reachable"] != Value::Bool(true) {
            return format!("{} unreachable", s(&r["address"]));
        }
        let mut line = format!(
            "{} {} offset {} keys {}",
            s(&r["address"]),
            s(&r["role"]),
            s(&r["offset"]),
            s(&r["keys"])
        );
        if !r["master"].is_null() {
            let _ = write!(line, " (of {}, link {})", s(&r["master"]), s(&r["link"]));
        }
        line
    };
    if !doc["redis"].is_null() {
        let r = &doc["redis"];
        let mut health = s(&r["health"]);
        if let Some(ms) = r["latency_ms"].as_f64() {
            let _ = write!(health, ", PING {ms:.2} ms");
        }
        if !r["last_error"].is_null() {
            let _ = write!(health, ", last error: {}", s(&r["last_error"]));
        }
        let _ = writeln!(out, "local redis   {} ({health})", redis_line(&r["local"]));
    } else {
        let _ = writeln!(out, "local redis   not configured (plain VRRP)");
    }
    if !doc["peer"].is_null() {
        let _ = writeln!(out, "peer redis    {}", redis_line(&doc["peer"]));
    }
    if !doc["replication"].is_null() {
        let r = &doc["replication"];
        let _ = writeln!(out, "replication   {}", s(&r["rule"]));
        let _ = writeln!(
            out,
            "              eligible for the VIP: {}, lag: {} bytes",
            s(&r["eligible"]),
            s(&r["lag_bytes"])
        );
    }
    let _ = writeln!(out, "last events (newest first):");
    for e in doc["events"].as_array().into_iter().flatten() {
        let fields: Vec<String> = e["fields"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {:<10} {}",
            s(&e["time"]),
            s(&e["event"]),
            fields.join(" ")
        );
    }
    out
}
