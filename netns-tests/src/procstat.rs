//! What processes cost, read from `/proc`: CPU time and resident memory, for the
//! benchmarks and for the tests that print what they measured.

use std::fs;

/// CPU seconds (user and system) that `pids` have used so far; a pid that is gone
/// counts nothing.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    pids.iter()
        .map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name (which may hold spaces): utime is the 14th field
            // of the line, stime the 15th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum::<f64>()
        / ticks
}

/// Resident memory (`VmRSS`) of `pids`, in MB; a pid that is gone counts nothing.
pub fn rss_mb(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum::<f64>()
        / 1024.0
}
