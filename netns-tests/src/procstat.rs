//! What processes cost, read from `/proc`: CPU time and resident memory, for the
//! benchmarks and for the tests that print what they measured.

use std::fs;

/// CPU seconds (user and system) that `pids` have used so far; a pid that is gone
/// counts nothing.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    let (user, system) = cpu_split(pids);
    user + system
}

/// CPU seconds that `pids` have used so far, in user space and in the kernel
/// (system calls, and the softirq work done on their behalf, such as a sent
/// packet's way through a veth and a bridge); a pid that is gone counts nothing.
pub fn cpu_split(pids: &[u32]) -> (f64, f64) {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (user, system) = pids
        .iter()
        .map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command name (which may hold spaces): utime is the 14th field
            // of the line, stime the 15th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let mut fields = rest
                .split_whitespace()
                .skip(11)
                .map(|f| f.parse::<f64>().unwrap_or(0.0));
            (fields.next().unwrap_or(0.0), fields.next().unwrap_or(0.0))
        })
        .fold((0.0, 0.0), |(u, s), (pu, ps)| (u + pu, s + ps));
    (user / ticks, system / ticks)
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
