//! redha's metrics page as a test reads it: fetched inside a host, one sample
//! looked up by its exact name and labels.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::Lab;

/// `GET /metrics` on 127.0.0.1:`port` inside host `i`: the whole response, or
/// `None` if nothing answers there with `200`.
pub fn scrape(lab: &Lab, i: usize, port: u16) -> Option<String> {
    lab.in_host(i, move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.starts_with("HTTP/1.1 200").then_some(text)
    })
}

/// Sends `request` as it is to the metrics listener on port `port` in host `i`
/// and reads until the agent closes: its answer and how long that took. `None`
/// when the connection failed or the agent kept it open for 5 s.
pub fn raw_request(lab: &Lab, i: usize, port: u16, request: Vec<u8>) -> Option<(String, Duration)> {
    lab.in_host(i, move || {
        let start = std::time::Instant::now();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(&request).ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok()?;
        Some((
            String::from_utf8_lossy(&answer).into_owned(),
            start.elapsed(),
        ))
    })
}

/// The value of one sample on a metrics page: `name` is the metric with its
/// labels exactly as printed (`redha_vrrp_state{instance="vrid-51",...}`).
pub fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
