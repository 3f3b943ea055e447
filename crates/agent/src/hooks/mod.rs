//! Notify hooks, compatible with keepalived's `notify_master`, `notify_backup`,
//! `notify_fault`, `notify_stop` and `notify`.
//!
//! Configuration keys (in `[vrrp]`):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `notify_master` | none | command run on entering MASTER, without extra arguments |
//! | `notify_backup` | none | command run on entering BACKUP |
//! | `notify_fault` | none | command run on entering FAULT |
//! | `notify_stop` | none | command run when the instance stops |
//! | `notify` | none | command run on every change, after the specific one, with four more arguments: `INSTANCE`, the instance name, the state (`MASTER`, `BACKUP`, `FAULT`, `STOP`) and the priority |
//! | `notify_timeout` | `"10s"` | a hook still running after this is killed (SIGKILL, its whole process group) |
//!
//! A command is split like keepalived splits it: words separated by white space, the
//! first one the program's absolute path, the rest its arguments; double quotes
//! (`"two words"`, with `\"` and `\\` inside) and single quotes (`'literal'`) group,
//! and a backslash outside quotes escapes the next character. No shell is involved.
//!
//! Like keepalived's `enable_script_security`, a program that a non-root user could
//! change is refused: it and every directory above it must be owned by root and not
//! writable by group or others (a root-owned directory with the sticky bit, like
//! `/tmp`, is accepted, as keepalived does); the path must be absolute and name an
//! executable regular file. Symbolic links are followed and both the path as written
//! and the resolved one are checked. [`HookConfig::check`] does this at load time;
//! the runner checks again before every run, in case the file changed since.
//!
//! Hooks never block the state machine: [`HookRunner::notify`] queues the change and
//! returns; one task per instance runs the hooks in order, one at a time, each with
//! `notify_timeout`, logging every line of their output and their exit status.
//!
//! One concern a file: `config.rs` (the keys, which hooks run for a state), `check.rs`
//! (splitting a command, the script-security check), `runner.rs` (the queue and the
//! task that works it, one hook at a time), `exec.rs` (running one hook: its process
//! group, its output, its timeout).

mod check;
mod config;
mod exec;
mod runner;
#[cfg(test)]
mod test_support;

pub use check::{HookError, Refusal, check_command, check_program, split_command};
pub use config::{HookConfig, HookState};
pub use exec::{HookOutcome, Stream};
pub use runner::{HookEvent, HookRunner, QUEUE_CAPACITY};
