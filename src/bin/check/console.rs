//! The server's console as `check` holds it: its stdin, written by a thread of our
//! own so that a server that never reads it cannot block a check, and its stdout,
//! kept apart from stderr so that a check can wait, with a deadline, for a client's
//! line to show up there.

use std::io::Write;
use std::process::ChildStdin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Bytes written to stdin at a time.
const PIECE: usize = 16 * 1024;
/// Bytes of stdout kept for searching (the most recent ones).
const STDOUT_KEPT: usize = 1024 * 1024;

/// The server's stdin: lines are queued and written by a thread, which may block for
/// as long as the server does not read; [`Stdin::written`] says how far it got.
pub struct Stdin {
    queue: Option<Sender<Vec<u8>>>,
    written: Arc<AtomicU64>,
    queued: u64,
}

impl Stdin {
    /// Takes over `pipe`; with no pipe, everything typed is lost (and never written).
    pub fn new(pipe: Option<ChildStdin>) -> Stdin {
        let written = Arc::new(AtomicU64::new(0));
        let queue = pipe.map(|mut pipe| {
            let (tx, rx) = mpsc::channel::<Vec<u8>>();
            let count = Arc::clone(&written);
            let _ = thread::Builder::new()
                .name("server stdin".into())
                .spawn(move || {
                    // Counted piece by piece, so a report can say how far a server
                    // that stopped reading got.
                    for piece in rx.iter().flat_map(|b: Vec<u8>| {
                        b.chunks(PIECE).map(<[u8]>::to_vec).collect::<Vec<_>>()
                    }) {
                        // The server exiting closes the pipe: stop there.
                        if pipe.write_all(&piece).and_then(|()| pipe.flush()).is_err() {
                            return;
                        }
                        count.fetch_add(piece.len() as u64, Ordering::Release);
                    }
                });
            tx
        });
        Stdin {
            queue,
            written,
            queued: 0,
        }
    }

    /// Queues `bytes` to be typed; never blocks.
    pub fn type_bytes(&mut self, bytes: Vec<u8>) {
        self.queued += bytes.len() as u64;
        if let Some(queue) = &self.queue {
            let _ = queue.send(bytes);
        }
    }

    /// Whether everything typed has gone into the pipe within `within` (the pipe
    /// itself holds the last few KiB until the server reads them).
    pub fn drained(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let (written, typed) = self.progress();
            if written >= typed {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Bytes gone into the pipe so far, and bytes typed: a server that stops
    /// reading its stdin leaves the pipe full and the rest waiting.
    pub fn progress(&self) -> (u64, u64) {
        (self.written.load(Ordering::Acquire), self.queued)
    }
}

/// What the server printed on stdout, with a way to wait for a piece of text.
#[derive(Clone, Default)]
pub struct Stdout {
    kept: Arc<(Mutex<Kept>, Condvar)>,
}

#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    /// Bytes dropped from the front so far: offsets stay valid as the buffer rolls.
    dropped: u64,
}

impl Stdout {
    /// Appends what the server printed.
    pub fn push(&self, chunk: &[u8]) {
        let (lock, changed) = &*self.kept;
        if let Ok(mut kept) = lock.lock() {
            kept.bytes.extend_from_slice(chunk);
            let excess = kept.bytes.len().saturating_sub(STDOUT_KEPT);
            if excess > 0 {
                kept.bytes.drain(..excess);
                kept.dropped += excess as u64;
            }
        }
        changed.notify_all();
    }

    /// How many bytes have been printed so far: a mark for [`Stdout::since`].
    pub fn mark(&self) -> u64 {
        let kept = self.kept.0.lock();
        kept.map(|k| k.dropped + k.bytes.len() as u64).unwrap_or(0)
    }

    /// What was printed since `mark` (as much as is kept).
    pub fn since(&self, mark: u64) -> String {
        let Ok(kept) = self.kept.0.lock() else {
            return String::new();
        };
        let start = mark.saturating_sub(kept.dropped) as usize;
        String::from_utf8_lossy(&kept.bytes[start.min(kept.bytes.len())..]).into_owned()
    }

    /// The first whole line printed since `mark` that contains `text`, waiting at most
    /// `within` for it.
    pub fn wait_for(&self, text: &str, mark: u64, within: Duration) -> Option<String> {
        let mut found = None;
        self.wait_until(mark, within, |printed| {
            found = printed
                .split_inclusive('\n')
                .find(|l| l.ends_with('\n') && l.contains(text))
                .map(|l| l.trim_end().to_string());
            found.is_some()
        });
        found
    }

    /// Waits at most `within` until what was printed since `mark` satisfies `done`;
    /// whether it did.
    pub fn wait_until(
        &self,
        mark: u64,
        within: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        let (lock, changed) = &*self.kept;
        let Ok(mut kept) = lock.lock() else {
            return false;
        };
        loop {
            let start = (mark.saturating_sub(kept.dropped) as usize).min(kept.bytes.len());
            if done(&String::from_utf8_lossy(&kept.bytes[start..])) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match changed.wait_timeout(kept, left) {
                Ok((guard, _)) => kept = guard,
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line is found once whole, only after the mark, and not after the deadline.
    #[test]
    fn waits_for_whole_lines_after_the_mark() {
        let out = Stdout::default();
        out.push(b"[1] old news\n");
        let mark = out.mark();
        assert_eq!(out.wait_for("old", mark, Duration::ZERO), None);
        out.push(b"[2] fresh ");
        assert_eq!(out.wait_for("fresh", mark, Duration::ZERO), None);
        let pusher = out.clone();
        let t = thread::spawn(move || pusher.push(b"news\r\n"));
        let line = out.wait_for("fresh", mark, Duration::from_secs(5));
        assert_eq!(line.as_deref(), Some("[2] fresh news"));
        t.join().unwrap();
        assert_eq!(out.since(mark), "[2] fresh news\r\n");
    }
}
