//! What a check found: its status, the steps it took (with times), and for a failure
//! what went wrong and the usual cause. Serialised as is into `--json`.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Pass, fail or skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Behaved as the contract says.
    Pass,
    /// Did not; `message` and `cause` say how.
    Fail,
    /// Could not be checked here (`message` says why); counts neither way.
    Skip,
}

/// One thing a check did or saw, `at` seconds after the check began.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Seconds since the check began.
    pub at: f64,
    /// The connection (`A`, `B`, ...) or `server`.
    pub who: String,
    /// `connect`, `sent "Hi\n"`, `expect "Hello"`, `got "Hello"`, `nothing within 2s`, ...
    pub what: String,
}

/// A check's result.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Short name (`several-lines`), for `--only` and the reports.
    pub name: &'static str,
    /// What the check proves, in a few words.
    pub title: &'static str,
    /// Points in a Gradescope score.
    pub weight: u32,
    /// Pass, fail or skip.
    pub status: Status,
    /// What went wrong (fail) or why it was skipped.
    pub message: Option<String>,
    /// The usual cause of this failure, in one sentence.
    pub cause: Option<String>,
    /// Seconds the check took.
    pub seconds: f64,
    /// What was sent and received, with times.
    pub steps: Vec<Step>,
    /// The last lines the server printed, on a failure.
    pub server_output: Option<String>,
}

/// How a check ends when it does not pass.
#[derive(Debug)]
pub enum Verdict {
    /// The server broke the contract.
    Fail {
        /// What was seen, in one line.
        message: String,
        /// The usual cause, in one sentence.
        cause: String,
    },
    /// The check cannot run here.
    Skip(String),
}

/// A failure: what happened and its usual cause.
pub fn fail(message: impl Into<String>, cause: impl Into<String>) -> Verdict {
    Verdict::Fail {
        message: message.into(),
        cause: cause.into(),
    }
}

/// The steps of one check, shared by its connections.
pub struct Log {
    start: Instant,
    steps: RefCell<Vec<Step>>,
}

/// Steps kept per check: a check that opens a hundred clients logs a summary.
const MAX_STEPS: usize = 200;

impl Log {
    /// An empty log starting now.
    pub fn new() -> Log {
        Log {
            start: Instant::now(),
            steps: RefCell::new(Vec::new()),
        }
    }

    /// Records `what` done or seen by `who`.
    pub fn note(&self, who: &str, what: impl Into<String>) {
        let what = what.into();
        tracing::debug!("{who}: {what}");
        let mut steps = self.steps.borrow_mut();
        if steps.len() < MAX_STEPS {
            steps.push(Step {
                at: self.start.elapsed().as_secs_f64(),
                who: who.to_string(),
                what,
            });
        }
    }

    /// Time since the check began.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Every step so far.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.borrow().clone()
    }
}

/// Bytes as a short quoted string for a step or a message: escapes shown, long
/// runs cut in the middle.
pub fn quote(bytes: &[u8]) -> String {
    const SHOWN: usize = 60;
    let text = |b: &[u8]| b.escape_ascii().to_string();
    if bytes.len() <= SHOWN {
        format!("\"{}\"", text(bytes))
    } else {
        format!(
            "\"{}…\" ({} bytes) …\"{}\"",
            text(&bytes[..SHOWN / 2]),
            bytes.len(),
            text(&bytes[bytes.len() - 10..])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Control bytes are escaped and long runs cut, so a step stays one short line.
    #[test]
    fn quoting() {
        assert_eq!(quote(b"Hi\n"), "\"Hi\\n\"");
        assert_eq!(quote(b"\x00\xff"), "\"\\x00\\xff\"");
        let long = quote(&[b'x'; 1000]);
        assert!(long.contains("(1000 bytes)") && long.len() < 100, "{long}");
    }
}
