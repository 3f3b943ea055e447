//! The parts of the `redha` agent that work on text alone and that other crates of
//! the workspace use: the configuration loader ([`config::Config::parse`]) and the
//! keepalived.conf migrator ([`migrate::migrate_with`]), with the two modules they
//! need (`control` for the default socket path, `hooks` for the notify hooks' keys).
//! The fuzz targets (`fuzz/`) call them through here; the binary (`main.rs`) uses
//! them from here too, so that each is compiled once. Everything else of the agent
//! (the runtime wiring, the coordinator) stays in the binary.

#![warn(missing_docs)]

pub mod config;
pub mod config_file;
pub mod control;
pub mod hooks;
pub mod migrate;
