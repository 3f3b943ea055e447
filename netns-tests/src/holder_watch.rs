//! Who holds an address, sampled on a thread of its own while a test does
//! something else (a reload, a restart): every sample whose holders are not the
//! expected ones is kept, with its time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Lab;

/// Samples whose holders were not the expected ones: when (from the start of the
/// watch), and who held the address.
pub type BadSamples = Vec<(Duration, Vec<usize>)>;

/// A running watch; [`HolderWatch::finish`] stops it.
pub struct HolderWatch {
    stop: Arc<AtomicBool>,
    bad: Arc<Mutex<BadSamples>>,
    samples: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl HolderWatch {
    /// Looks at the holders of `ip` every `poll` (see [`Lab::holders`]) and keeps
    /// every sample in which they are not exactly `want`.
    pub fn start(lab: &Arc<Lab>, ip: &str, want: Vec<usize>, poll: Duration) -> HolderWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0));
        let (lab, ip) = (lab.clone(), ip.to_owned());
        let (s, b, n) = (stop.clone(), bad.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let holders = lab.holders(&ip);
                *n.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                if holders != want {
                    b.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((start.elapsed(), holders));
                }
                std::thread::sleep(poll);
            }
        });
        HolderWatch {
            stop,
            bad,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops the watch; returns the number of samples and the bad ones.
    pub fn finish(mut self) -> (u64, BadSamples) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let samples = *self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let bad = self.bad.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (samples, bad)
    }
}

impl Drop for HolderWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
