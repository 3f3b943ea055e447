//! Polling helper.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `f` every `poll` until it returns `true` or `timeout` has passed.
///
/// `f` is called once straight away, so a condition that already holds returns
/// `Some` with a near-zero duration. Returns the time elapsed when `f` first
/// returned `true`, or `None` if it never did within `timeout` (`f` is always
/// called once more at, or just after, the deadline).
pub fn wait_until(
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return None;
        }
        thread::sleep(poll.min(timeout - elapsed));
    }
}
