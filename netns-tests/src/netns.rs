//! Namespace naming, availability probe, stale cleanup, and running code
//! inside a namespace (ICMP echo, sysctls).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd;

/// Prefix of every namespace this harness creates.
///
/// Full scheme: `rh-<pid>-<counter>-<tag>-<role>` where `<pid>` is the creating
/// process, `<counter>` is unique within it, `<tag>` is `[a-z0-9]{1,8}` and
/// `<role>` is `br`, `h<N>` or `x` (the availability probe).
pub(crate) const PREFIX: &str = "rh-";

static COUNTER: AtomicU32 = AtomicU32::new(1);

/// Returns a fresh lab base name `rh-<pid>-<counter>-<tag>`.
pub(crate) fn fresh_base(tag: &str) -> String {
    let mut t: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(8)
        .collect();
    if t.is_empty() {
        t.push_str("lab");
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}-{t}", std::process::id())
}

/// If `name` follows our naming scheme, returns the pid embedded in it.
pub(crate) fn parse_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let parts: Vec<&str> = rest.split('-').collect();
    let [pid, counter, tag, role] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let tag_ok = !tag.is_empty()
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let role_ok = *role == "br" || *role == "x" || role.strip_prefix('h').is_some_and(digits);
    if digits(pid) && digits(counter) && tag_ok && role_ok {
        pid.parse().ok()
    } else {
        None
    }
}

/// Names of all named network namespaces (`ip netns list`).
pub(crate) fn list() -> Vec<String> {
    match cmd::ip(["netns", "list"]) {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Pids of processes whose network namespace is `ns` (`ip netns pids`).
pub(crate) fn pids(ns: &str) -> Vec<i32> {
    cmd::ip(["netns", "pids", ns])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILLs every process in `ns`, then deletes the namespace.
pub(crate) fn destroy(ns: &str) -> Result<(), String> {
    let me = std::process::id() as i32;
    for pid in pids(ns) {
        if pid != me && pid > 1 {
            // SAFETY: plain kill(2) on a pid found inside our own namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    cmd::ip(["netns", "del", ns]).map(|_| ())
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes namespaces of our scheme whose creating process is gone (or, with
/// `include_self`, that carry our own pid: only valid before this process
/// created any). Returns how many were removed.
pub(crate) fn cleanup(include_self: bool) -> usize {
    let me = std::process::id();
    let mut removed = 0;
    for ns in list() {
        let Some(pid) = parse_pid(&ns) else { continue };
        let stale = if pid == me {
            include_self
        } else {
            !pid_alive(pid)
        };
        if stale && destroy(&ns).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Result of the one-per-process availability probe; also performs the
/// initial stale cleanup.
pub(crate) fn available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(probe).clone()
}

fn probe() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(format!("not running as root (euid {euid})"));
    }
    cmd::ip(["-V"]).map_err(|e| format!("iproute2 `ip` unusable: {e}"))?;
    // Nothing of ours exists yet in this process, so anything carrying our pid
    // is left over from an earlier process that had the same pid.
    cleanup(true);
    let name = format!("{}-x", fresh_base("probe"));
    cmd::ip(["netns", "add", &name])
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let res = cmd::ip(["-n", &name, "link", "set", "lo", "up"])
        .map(|_| ())
        .map_err(|e| format!("cannot configure a network namespace: {e}"));
    let del = cmd::ip(["netns", "del", &name]);
    res?;
    del.map(|_| ())
        .map_err(|e| format!("cannot delete a network namespace: {e}"))
}

fn ns_path(ns: &str) -> PathBuf {
    let run = PathBuf::from("/run/netns").join(ns);
    if run.exists() {
        run
    } else {
        PathBuf::from("/var/run/netns").join(ns)
    }
}

/// Runs `f` on a short-lived thread that has joined network namespace `ns`.
pub(crate) fn in_netns<T: Send>(
    ns: &str,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let file = File::open(ns_path(ns))?;
    thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a valid netns fd; it only affects this thread,
            // which ends when `f` returns.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            drop(file);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Writes `value` to `/proc/sys/<key>` (e.g. `net/ipv6/conf/all/disable_ipv6`)
/// inside `ns`.
pub(crate) fn sysctl(ns: &str, key: &str, value: &str) -> io::Result<()> {
    in_netns(ns, || {
        std::fs::write(PathBuf::from("/proc/sys").join(key), value)
    })
}

/// Is `ip` inside 192.0.2.0/24 (the only range labs may use)?
pub(crate) fn in_lab_range(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    (a, b, c) == (192, 0, 2)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends one ICMP echo request to `dst` from inside `ns` and waits up to
/// `timeout` for the matching reply. Uses a raw socket (needs root), so no
/// `ping` binary is required.
pub(crate) fn ping(ns: &str, dst: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let ident = (std::process::id() as u16) ^ ((n >> 16) as u16).rotate_left(7);
    let seq = n as u16;
    in_netns(ns, move || {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMP,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };

        let mut pkt = [0u8; 8 + 16];
        pkt[0] = 8; // echo request
        pkt[4..6].copy_from_slice(&ident.to_be_bytes());
        pkt[6..8].copy_from_slice(&seq.to_be_bytes());
        pkt[8..].copy_from_slice(b"redha-netns-ping");
        let ck = checksum(&pkt);
        pkt[2..4].copy_from_slice(&ck.to_be_bytes());

        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: buffer and sockaddr are valid for the lengths given.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN | libc::EHOSTDOWN) => {
                    Ok(false)
                }
                _ => Err(e),
            };
        }

        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                continue;
            }
            // SAFETY: buf is valid for buf.len() bytes.
            let len = unsafe {
                libc::recv(
                    fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if len < 0 {
                let e = io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) {
                    continue;
                }
                return Err(e);
            }
            let pkt = &buf[..len as usize];
            if pkt.len() < 20 {
                continue;
            }
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            let Some(icmp) = pkt.get(ihl..ihl + 8) else {
                continue;
            };
            if src == dst
                && icmp[0] == 0
                && icmp[4..6] == ident.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                return Ok(true);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let base = fresh_base("Fail-Over_Test!");
        assert!(base.ends_with("-failover"), "{base}");
        assert_eq!(parse_pid(&format!("{base}-br")), Some(std::process::id()));
        assert_eq!(parse_pid(&format!("{base}-h12")), Some(std::process::id()));
        assert_eq!(parse_pid(&format!("{base}-x")), Some(std::process::id()));
        assert_eq!(fresh_base("").rsplit('-').next(), Some("lab"));
    }

    #[test]
    fn foreign_names_rejected() {
        for n in [
            "fx-h1",
            "rh-12-3-tag",
            "rh-12-3-tag-hx",
            "rh-12-3-tag-h",
            "rh-a-3-tag-br",
            "rh-12-3-Tag-br",
            "rh-12-3--br",
            "rh-12-3-tag-br-x",
            "rhx-12-3-tag-br",
        ] {
            assert_eq!(parse_pid(n), None, "{n}");
        }
        assert_eq!(parse_pid("rh-12-3-tag-br"), Some(12));
    }

    #[test]
    fn icmp_checksum() {
        // Echo request, id 0x1234, seq 1, no payload.
        let mut p = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&p), 0);
        assert_eq!(c, 0xe5ca);
    }

    #[test]
    fn lab_range() {
        assert!(in_lab_range(Ipv4Addr::new(192, 0, 2, 100)));
        assert!(!in_lab_range(Ipv4Addr::new(192, 0, 3, 1)));
        assert!(!in_lab_range(Ipv4Addr::new(8, 8, 8, 8)));
    }
}
