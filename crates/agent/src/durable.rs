//! The state file: what the agent must still know after both hosts lost power. It
//! holds the replication history of our Redis as last seen (role, ids, offset), so
//! that a Redis that comes back from an append-only file without its ids can still
//! be placed (see [`replication::vouch`]).
//!
//! Written atomically: a temporary file beside it, fsync, rename, fsync of the
//! directory; on a blocking thread, so that a stalled disk never delays adverts.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use replication::Vouched;
use serde::{Deserialize, Serialize};

/// A state-file error; it names the file.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this agent writes.
    #[error("{}: not a redha state file: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The file's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Content {
    /// `1`.
    version: u32,
    /// The Redis's process (`run_id`) when recorded.
    run_id: String,
    /// `master` or `replica`.
    role: String,
    master_replid: String,
    master_replid2: String,
    second_repl_offset: i64,
    offset: u64,
}

/// What the state file records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The Redis process it was recorded from.
    pub run_id: String,
    /// The history of its data.
    pub history: Vouched,
}

/// The state file of one agent.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// `<dir>/state.json`.
    pub fn in_dir(dir: &Path) -> Self {
        StateFile {
            path: dir.join("state.json"),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<Recorded>, DurableError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DurableError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let invalid = |message: String| DurableError::Invalid {
            path: self.path.clone(),
            message,
        };
        let c: Content = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if c.version != 1 {
            return Err(invalid(format!(
                "version {} (this agent writes 1)",
                c.version
            )));
        }
        let was_master = match c.role.as_str() {
            "master" => true,
            "replica" => false,
            other => return Err(invalid(format!("role {other:?}"))),
        };
        Ok(Some(Recorded {
            run_id: c.run_id,
            history: Vouched {
                was_master,
                replid: c.master_replid,
                offset: c.offset,
                replid2: c.master_replid2,
                second_repl_offset: c.second_repl_offset,
            },
        }))
    }

    /// Writes `recorded` atomically and durably, on a blocking thread.
    pub async fn store(&self, recorded: &Recorded) -> Result<(), DurableError> {
        let (this, recorded) = (self.clone(), recorded.clone());
        tokio::task::spawn_blocking(move || this.store_blocking(&recorded))
            .await
            .unwrap_or_else(|e| {
                Err(DurableError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other(e),
                })
            })
    }

    fn store_blocking(&self, recorded: &Recorded) -> Result<(), DurableError> {
        let h = &recorded.history;
        let content = Content {
            version: 1,
            run_id: recorded.run_id.clone(),
            role: if h.was_master { "master" } else { "replica" }.into(),
            master_replid: h.replid.clone(),
            master_replid2: h.replid2.clone(),
            second_repl_offset: h.second_repl_offset,
            offset: h.offset,
        };
        let mut text = serde_json::to_string_pretty(&content).expect("serializable");
        text.push('\n');
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DurableError::Io { path, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(text.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> Recorded {
        Recorded {
            run_id: "r".repeat(40),
            history: Vouched {
                was_master: true,
                replid: "a".repeat(40),
                offset: 1234,
                replid2: "0".repeat(40),
                second_repl_offset: -1,
            },
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("redha-durable-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn round_trips_and_replaces_atomically() {
        let d = dir("trip");
        let file = StateFile::in_dir(&d);
        assert_eq!(file.load().unwrap(), None);
        file.store(&recorded()).await.unwrap();
        assert_eq!(file.load().unwrap(), Some(recorded()));
        let mut newer = recorded();
        newer.history.offset = 9999;
        newer.history.was_master = false;
        file.store(&newer).await.unwrap();
        assert_eq!(file.load().unwrap(), Some(newer));
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"], "no temporary file left behind");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_foreign_file_is_refused_with_its_path() {
        let d = dir("bad");
        fs::create_dir_all(&d).unwrap();
        let file = StateFile::in_dir(&d);
        fs::write(file.path(), "{\"version\": 1}").unwrap();
        let e = file.load().unwrap_err().to_string();
        assert!(
            e.contains("state.json") && e.contains("not a redha state file"),
            "{e}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
