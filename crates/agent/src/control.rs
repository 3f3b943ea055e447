//! The control socket: a Unix socket on which the agent answers `status` with the
//! status document (JSON, one line), and the client side that `redha status` uses.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

/// Where the socket is when the configuration does not say.
pub const DEFAULT_SOCKET: &str = "/run/redha/redha.sock";

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds the socket (replacing a stale one left by a dead agent) and serves
/// requests with `answer` until the task is dropped.
pub fn serve(
    path: &Path,
    answer: impl Fn(&str) -> Option<Value> + Send + Sync + 'static,
) -> io::Result<tokio::task::JoinHandle<()>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => debug!(socket = %path.display(), "removed a stale control socket"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    let answer = std::sync::Arc::new(answer);
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, &*answer).await {
                    debug!(error = %e, "control socket: client error");
                }
            });
        }
    }))
}

async fn handle(
    stream: UnixStream,
    answer: &(dyn Fn(&str) -> Option<Value> + Send + Sync),
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(1024));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request"))??;
    let reply = match answer(line.trim()) {
        Some(doc) => doc.to_string(),
        None => serde_json::json!({"error": format!("unknown request {:?}; try \"status\"", line.trim())}).to_string(),
    };
    write.write_all(reply.as_bytes()).await?;
    write.write_all(b"\n").await?;
    write.shutdown().await
}

/// Asks a running agent; the error says plainly when none runs.
pub fn request(path: &Path, what: &str) -> Result<Value, String> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => format!(
            "no redha agent is running (nothing listens on {}: {e})",
            path.display()
        ),
        _ => format!("cannot reach the agent at {}: {e}", path.display()),
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    writeln!(stream, "{what}").map_err(|e| format!("sending to {}: {e}", path.display()))?;
    let mut line = String::new();
    io::BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading from {}: {e}", path.display()))?;
    serde_json::from_str(&line)
        .map_err(|e| format!("the agent at {} answered strangely: {e}", path.display()))
}

/// The socket path: `--socket`, else the configuration's `[control] socket`, else
/// the default.
pub fn socket_path(explicit: Option<&PathBuf>, configured: Option<&PathBuf>) -> PathBuf {
    explicit
        .or(configured)
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_status_and_refuses_the_unknown() {
        let dir = std::env::temp_dir().join(format!("redha-control-{}", std::process::id()));
        let path = dir.join("redha.sock");
        // A stale socket file is replaced.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, b"stale").unwrap();
        let server = serve(&path, |req| {
            (req == "status").then(|| serde_json::json!({"ok": true}))
        })
        .unwrap();
        let p = path.clone();
        let status = tokio::task::spawn_blocking(move || request(&p, "status"))
            .await
            .unwrap();
        assert_eq!(status.unwrap()["ok"], true);
        let p = path.clone();
        let other = tokio::task::spawn_blocking(move || request(&p, "bogus"))
            .await
            .unwrap();
        assert!(
            other.unwrap()["error"]
                .as_str()
                .unwrap()
                .contains("unknown request")
        );
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn says_plainly_when_no_agent_runs() {
        let err = request(Path::new("/nonexistent/redha.sock"), "status").unwrap_err();
        assert!(err.contains("no redha agent is running"), "{err}");
    }
}
