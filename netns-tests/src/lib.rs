//! Network-namespace test harness for redha.
//!
//! A [`Lab`] is a throwaway Ethernet segment: a bridge namespace and N host
//! namespaces, each host with `eth0` at `192.0.2.(10+i)/24`. Tests start
//! programs inside hosts ([`Lab::spawn`] → [`Proc`]), inspect addresses,
//! neighbour tables and reachability, cut hosts off the segment
//! ([`Lab::detach`]) or cut the switch in two ([`Lab::split`]), links keeping
//! their carrier either way. Everything is torn down on drop, panics included.
//!
//! Rules the harness keeps: it only creates namespaces named
//! `rh-<pid>-<n>-<tag>-<role>`, only uses 192.0.2.0/24, and never sends
//! traffic outside its own namespaces.
//!
//! ```no_run
//! use netns_tests::{Lab, require_netns};
//!
//! if !require_netns("example") {
//!     return;
//! }
//! let lab = Lab::new("example", 2);
//! assert!(lab.ping(1, lab.addr(2)));
//! ```

#![warn(missing_docs)]

pub mod classic;
mod cmd;
pub mod holder_watch;
pub mod keepalived;
mod lab;
pub mod measure;
pub mod metrics_page;
mod netns;
pub mod pair;
mod process;
pub mod procstat;
pub mod redha;
pub mod redis;
pub mod saved;
pub mod sentinel;
pub mod soak;
pub mod timeline;
mod wait;
pub mod writer;

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use lab::{BRIDGE, HOST_IF, Lab, MAX_HOSTS, SPLIT_BRIDGE};
pub use process::{Proc, is_alive};
pub use wait::wait_until;

/// Environment variable that turns a skip into a failure when set to `1`.
pub const REQUIRE_ENV: &str = "REDHA_REQUIRE_NETNS";

/// Returns `true` if network namespaces can be used here (we are root, `ip`
/// works and a namespace can be created and deleted; checked once per
/// process, which also runs [`cleanup_stale`]).
///
/// Otherwise: if `REDHA_REQUIRE_NETNS=1`, panics saying why; else prints
/// `skipped: <test>: <reason>` straight to stderr (not captured by the test
/// runner) and returns `false`. Use as
/// `if !require_netns("my_test") { return; }`.
pub fn require_netns(test: &str) -> bool {
    match netns::available() {
        Ok(()) => true,
        Err(reason) => {
            if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") {
                panic!("{REQUIRE_ENV}=1 but network namespaces are unusable for {test}: {reason}");
            }
            let _ = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
            false
        }
    }
}

/// Deletes namespaces left behind by earlier runs that crashed: those named
/// by this harness's scheme whose creating process no longer exists. Any
/// process still running inside them is SIGKILLed first. Returns how many
/// were deleted. Other namespaces, and this process's own, are untouched.
pub fn cleanup_stale() -> usize {
    netns::cleanup(false)
}

/// Path of the `redha` binary under test.
///
/// `$REDHA_BIN` if set; otherwise `redha` in the cargo profile directory this
/// test executable was built in (the parent of `deps/`, e.g.
/// `target/debug/redha`). Panics if the file does not exist.
pub fn redha_bin() -> PathBuf {
    let path = match std::env::var_os("REDHA_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("netns-tests: current_exe");
            profile_dir(&exe).join(format!("redha{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if !path.is_file() {
        panic!(
            "redha binary not found at {}; run `cargo build -p redha` (or set REDHA_BIN)",
            path.display()
        );
    }
    path
}

/// The cargo profile directory (`target/<profile>`) of an executable built
/// there or in its `deps/` subdirectory.
fn profile_dir(exe: &Path) -> &Path {
    let dir = exe.parent().unwrap_or(exe);
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_of_test_and_bin() {
        assert_eq!(
            profile_dir(Path::new("/w/target/debug/deps/harness-0123abcd")),
            Path::new("/w/target/debug")
        );
        assert_eq!(
            profile_dir(Path::new("/w/target/release/redha")),
            Path::new("/w/target/release")
        );
    }
}
