//! The state log: one line per event (transition, health change, rule, Redis command
//! with the offsets before and after), in text or JSON lines, appended to a file
//! besides the tracing output, so that an operator can replay what happened.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use humantime_serde::re::humantime;
use tracing::warn;

use crate::config::StateLogFormat;

/// Lines that may wait for the writer thread; past that they are dropped and counted.
pub const QUEUE: usize = 1024;

/// How often a dropped line or a failed write is warned about, at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// An open state log (or none: every call is then a no-op).
///
/// Lines are formatted by the caller and written by a thread of their own behind a
/// bounded queue ([`QUEUE`] lines), so that a stalled disk (or a pipe nobody reads)
/// never delays the runtime: when the queue is full a line is dropped, counted
/// ([`StateLog::dropped`]) and warned about at most every 10 s.
#[derive(Debug, Default)]
pub struct StateLog {
    writer: Option<Writer>,
    format: StateLogFormat,
}

#[derive(Debug)]
struct Writer {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
    last_warn: Mutex<Option<Instant>>,
}

#[derive(Debug)]
enum Message {
    Line(String),
    /// Write out everything queued before, then answer.
    Flush(mpsc::Sender<()>),
}

impl StateLog {
    /// Opens (creates, appends to) the file and starts its writer thread. The file is
    /// opened here, so that a wrong path is reported at start-up; non-blocking, so
    /// that even a FIFO without a reader cannot hang the caller (it fails instead).
    pub fn open(path: &Path, format: StateLogFormat) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        // Writes happen on the writer thread, which may block; a pipe must not
        // turn a full buffer into lost lines.
        set_blocking(&file)?;
        let (queue, lines) = mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("redha-statelog".into())
            .spawn(move || write_lines(file, &path, &lines))?;
        Ok(StateLog {
            writer: Some(Writer {
                queue,
                dropped,
                last_warn: Mutex::new(None),
            }),
            format,
        })
    }

    /// Appends one event with its fields, in order. Never blocks: the line is queued
    /// for the writer thread, or dropped and counted when the queue is full.
    pub fn record(&self, event: &str, fields: &[(&str, String)]) {
        let Some(writer) = &self.writer else {
            return;
        };
        let line = format_line(self.format, SystemTime::now(), event, fields);
        let why = match writer.queue.try_send(Message::Line(line)) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "the writer is behind (a stalled disk?)",
            Err(TrySendError::Disconnected(_)) => "the writer thread is gone",
        };
        let dropped = writer.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = writer.last_warn.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *last = Some(now);
            warn!(dropped, queue = QUEUE, "state log: line dropped: {why}");
        }
    }

    /// Lines dropped so far because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(0, |w| w.dropped.load(Ordering::Relaxed))
    }

    /// Waits until every line queued so far is written, at most `timeout`; false if
    /// that did not happen in time. Blocks the calling thread: for the exit path and
    /// tests.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(writer) = &self.writer else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let (ack, done) = mpsc::channel();
        let mut message = Message::Flush(ack);
        loop {
            match writer.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

fn set_blocking(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The writer thread: writes lines as they come, flushing whenever the queue is
/// empty; ends when the [`StateLog`] is dropped.
fn write_lines(file: File, path: &Path, lines: &Receiver<Message>) {
    let mut out = BufWriter::new(file);
    let mut last_warn: Option<Instant> = None;
    let mut failed = |e: std::io::Error| {
        let now = Instant::now();
        if last_warn.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            last_warn = Some(now);
            warn!(path = %path.display(), error = %e, "writing the state log failed");
        }
    };
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    if let Err(e) = out.write_all(line.as_bytes()) {
                        failed(e);
                    }
                }
                Message::Flush(ack) => {
                    if let Err(e) = out.flush() {
                        failed(e);
                    }
                    let _ = ack.send(());
                }
            }
            next = lines.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            failed(e);
        }
    }
}

/// One line, newline included.
pub fn format_line(
    format: StateLogFormat,
    at: SystemTime,
    event: &str,
    fields: &[(&str, String)],
) -> String {
    let time = humantime::format_rfc3339_millis(at).to_string();
    match format {
        StateLogFormat::Text => {
            let mut line = format!("{time} event={event}");
            for (key, value) in fields {
                if value.is_empty() || value.contains([' ', '"', '=']) {
                    line.push_str(&format!(" {key}={value:?}"));
                } else {
                    line.push_str(&format!(" {key}={value}"));
                }
            }
            line.push('\n');
            line
        }
        StateLogFormat::Json => {
            let mut line = format!(
                "{{\"time\":{},\"event\":{}",
                json_string(&time),
                json_string(event)
            );
            for (key, value) in fields {
                line.push_str(&format!(",{}:{}", json_string(key), json_string(value)));
            }
            line.push_str("}\n");
            line
        }
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A fresh directory of this test's own under the system's temporary directory.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("redha-statelog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_every_line_in_order() {
        let dir = scratch("order");
        let path = dir.join("state.log");
        let log = StateLog::open(&path, StateLogFormat::Text).unwrap();
        for i in 0..100 {
            log.record("test", &[("n", i.to_string())]);
        }
        assert!(log.flush(Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        let ns: Vec<String> = text
            .lines()
            .map(|l| l.rsplit_once("n=").unwrap().1.to_string())
            .collect();
        assert_eq!(ns, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(log.dropped(), 0);
        drop(log);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A state log on a pipe that nobody reads (a stalled disk, as far as the writer
    /// can tell) costs the caller nothing: lines past the queue are dropped and
    /// counted, and every line that was not dropped arrives once the pipe drains.
    #[test]
    fn a_stalled_file_does_not_delay_the_caller() {
        let dir = scratch("fifo");
        let fifo = dir.join("state.fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // A reader that exists but does not read (yet): the pipe fills at 64 KiB.
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let log = Arc::new(StateLog::open(&fifo, StateLogFormat::Text).unwrap());
        const LINES: u64 = 20_000;
        let (done, took) = mpsc::channel();
        let caller = log.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            for i in 0..LINES {
                caller.record("test", &[("n", i.to_string()), ("pad", "x".repeat(100))]);
            }
            let _ = done.send(start.elapsed());
        });
        let took = took.recv_timeout(Duration::from_secs(10)).expect(
            "recording 20000 lines on a stalled file did not finish in 10 s: the caller blocked",
        );
        assert!(took < Duration::from_secs(2), "recording took {took:?}");
        let dropped = log.dropped();
        eprintln!("{LINES} lines on a stalled pipe: {took:?}, {dropped} dropped");
        assert!(dropped > 0, "a full queue drops lines");
        assert!(
            dropped < LINES - QUEUE as u64,
            "only what did not fit was dropped"
        );

        // Now read: every line that was queued arrives, whole and in order.
        set_blocking(&reader).unwrap();
        let counter = std::thread::spawn(move || {
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            text
        });
        assert!(log.flush(Duration::from_secs(10)), "the writer catches up");
        drop(Arc::into_inner(log).expect("the caller thread is done"));
        let text = counter.join().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, LINES - dropped);
        assert!(lines.iter().all(|l| l.ends_with(&"x".repeat(100))));
        assert!(lines[0].contains(" n=0 "), "{}", lines[0]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_fifo_without_a_reader_fails_to_open_instead_of_hanging() {
        let dir = scratch("noreader");
        let fifo = dir.join("state.fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let e = StateLog::open(&fifo, StateLogFormat::Text).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENXIO));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_095_000_123)
    }

    #[test]
    fn text_lines_quote_what_needs_it() {
        let line = format_line(
            StateLogFormat::Text,
            at(),
            "command",
            &[
                ("target", "local".into()),
                ("command", "REPLICAOF NO ONE".into()),
            ],
        );
        assert_eq!(
            line,
            "2025-11-25T18:23:20.123Z event=command target=local command=\"REPLICAOF NO ONE\"\n"
        );
    }

    #[test]
    fn json_lines_escape() {
        let line = format_line(
            StateLogFormat::Json,
            at(),
            "rule",
            &[("why", "a \"quoted\"\nline".into())],
        );
        assert_eq!(
            line,
            "{\"time\":\"2025-11-25T18:23:20.123Z\",\"event\":\"rule\",\"why\":\"a \\\"quoted\\\"\\nline\"}\n"
        );
    }
}
