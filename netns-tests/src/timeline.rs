//! A timeline of what a test saw, and the wall-clock times that tie it to the
//! logs of the processes under test.
//!
//! A test samples what it watches (VIP holders, Redis roles, a neighbour
//! entry, ...) while it waits, with [`Timeline::set`]; only changes are kept.
//! Each event carries the time since the timeline started and the UTC wall
//! clock, written like redha's log timestamps, so that
//! [`log_window`] can cut the matching lines out of a log.
//!
//! ```
//! use netns_tests::timeline::Timeline;
//!
//! let mut t = Timeline::new();
//! t.set("vip", "[1]");
//! t.set("vip", "[1]"); // unchanged: not recorded
//! t.note("host 1 cut off");
//! t.set("vip", "[2]");
//! assert_eq!(t.events().len(), 3);
//! assert!(t.render().contains("vip = [2]"));
//! ```

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One thing seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Since the timeline started.
    pub at: Duration,
    /// The wall clock then.
    pub wall: SystemTime,
    /// What was watched (`""` for a note).
    pub key: String,
    /// Its new value, or the note.
    pub value: String,
}

/// Changes of watched values, and notes, in the order they were seen.
#[derive(Clone, Debug)]
pub struct Timeline {
    started: Instant,
    started_wall: SystemTime,
    last: BTreeMap<String, String>,
    events: Vec<Event>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    /// An empty timeline starting now.
    pub fn new() -> Self {
        Timeline {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            last: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// When the timeline started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The wall clock at `at` (an [`Instant`] after the start).
    pub fn wall(&self, at: Instant) -> SystemTime {
        self.started_wall + at.saturating_duration_since(self.started)
    }

    /// Records `key = value` if `value` differs from the last one recorded for
    /// `key` (or is the first); returns whether it was recorded.
    pub fn set(&mut self, key: &str, value: impl Display) -> bool {
        let value = value.to_string();
        if self.last.get(key) == Some(&value) {
            return false;
        }
        self.last.insert(key.to_owned(), value.clone());
        self.push(key, value);
        true
    }

    /// Records a note (an action of the test: "host 1 cut off").
    pub fn note(&mut self, what: impl Display) {
        self.push("", what.to_string());
    }

    fn push(&mut self, key: &str, value: String) {
        let now = Instant::now();
        self.events.push(Event {
            at: now - self.started,
            wall: self.wall(now),
            key: key.to_owned(),
            value,
        });
    }

    /// The last value recorded for `key`.
    pub fn last(&self, key: &str) -> Option<&str> {
        self.last.get(key).map(String::as_str)
    }

    /// Everything recorded, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The first event at or after `since` (from the start) for which `f`
    /// holds.
    pub fn find(&self, since: Duration, f: impl Fn(&Event) -> bool) -> Option<&Event> {
        self.events.iter().find(|e| e.at >= since && f(e))
    }

    /// One line per event: `+3.521s 2026-12-02T12:46:42.126Z  vip = [2]`, or
    /// `... ** note` for a note; times relative to `zero` (from the start) when
    /// given, so that an event of the test can be `+0`.
    pub fn render_from(&self, zero: Duration) -> String {
        let mut out = String::new();
        for e in &self.events {
            let rel = e.at.as_secs_f64() - zero.as_secs_f64();
            let _ = write!(out, "{rel:+8.3}s {}  ", utc(e.wall));
            if e.key.is_empty() {
                let _ = writeln!(out, "** {}", e.value);
            } else {
                let _ = writeln!(out, "{} = {}", e.key, e.value);
            }
        }
        out
    }

    /// [`render_from`](Self::render_from) the start.
    pub fn render(&self) -> String {
        self.render_from(Duration::ZERO)
    }
}

/// `t` in UTC as `2026-12-02T12:46:42.126Z` (milliseconds; the format of
/// redha's state log, and comparable with its tracing output).
pub fn utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time a log line starts with (`2026-12-02T12:46:42.126320Z ...`, any
/// number of fraction digits, `Z` only), or `None`.
pub fn line_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.splitn(3, '-');
    let y: i64 = ymd.next()?.parse().ok()?;
    let m: u32 = ymd.next()?.parse().ok()?;
    let d: u32 = ymd.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut hms = hms.splitn(3, ':');
    let h: u64 = hms.next()?.parse().ok()?;
    let min: u64 = hms.next()?.parse().ok()?;
    let s: u64 = hms.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let days = u64::try_from(days_from_civil(y, m, d)).ok()?;
    Some(UNIX_EPOCH + Duration::new(days * 86_400 + h * 3600 + min * 60 + s, nanos))
}

/// The lines of `log` stamped within `[from, to]`, plus the unstamped lines
/// that follow one of them (continuations).
pub fn log_window(log: &str, from: SystemTime, to: SystemTime) -> Vec<&str> {
    let mut inside = false;
    log.lines()
        .filter(|l| {
            if let Some(t) = line_time(l) {
                inside = t >= from && t <= to;
            }
            inside
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_round_trips_through_line_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_215_602_126);
        assert_eq!(utc(t), "2026-12-02T12:46:42.126Z");
        assert_eq!(line_time("2026-12-02T12:46:42.126Z event=x"), Some(t));
        assert_eq!(
            line_time("2026-12-02T12:46:42.126320Z  INFO x"),
            Some(t + Duration::from_micros(320))
        );
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            line_time("2000-02-29T23:59:59Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_799))
        );
        for bad in [
            "",
            "=== host 2",
            "2026-12-02 12:46:42",
            "2026-13-02T00:00:00Z",
        ] {
            assert_eq!(line_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn window_keeps_stamped_lines_and_their_continuations() {
        let log = "2026-12-02T12:00:00.000Z a\n2026-12-02T12:00:01.000Z b\n  more b\n\
                   2026-12-02T12:00:02.500Z c\n";
        let at = |s: &str| line_time(s).unwrap();
        let w = log_window(
            log,
            at("2026-12-02T12:00:00.500Z"),
            at("2026-12-02T12:00:02Z"),
        );
        assert_eq!(w, ["2026-12-02T12:00:01.000Z b", "  more b"]);
    }

    #[test]
    fn only_changes_are_kept() {
        let mut t = Timeline::new();
        assert!(t.set("a", 1));
        assert!(!t.set("a", 1));
        assert!(t.set("b", 1));
        assert!(t.set("a", 2));
        assert_eq!(t.last("a"), Some("2"));
        assert_eq!(t.events().len(), 3);
        assert!(t.find(Duration::ZERO, |e| e.value == "2").is_some());
    }
}
