//! Load generator and statistics for comparing switchboard's concurrency models.
//!
//! `compare` (and the tests) drive a server with [`run`]: a few `mio` threads open the
//! clients a [`Plan`] asks for, play one [`Workload`] against the server, and hand back a
//! [`Report`] — messages completed in the measured window, latency percentiles, how many
//! clients were served, rejected (`ERR busy`) or failed. While it runs, the caller is told
//! when the measured window opens and closes ([`Mark`]), so it can read the *server's*
//! CPU time exactly around that window with [`procstat`].
//!
//! # Layout
//!
//! - [`workload`]: what to send — the [`Plan`], the four [`Workload`]s and the
//!   [`Exchange`] (one request line and the exact reply it must get back).
//! - [`driver`]: the `mio` client engine behind [`run`]. It is kept cheaper per message
//!   than the servers it measures (one `read` + one `write` per reply, no per-message
//!   allocation), so that the servers, not the generator, saturate first.
//! - [`stats`]: an HDR histogram of latencies and its [`Summary`] (p50 / p99 / p99.9 / max).
//! - [`procstat`]: CPU user/system time, threads and memory of a process (or a process
//!   group) from `/proc` — Linux only; elsewhere every call returns
//!   [`Error::Unsupported`].
//! - [`baseline`]: the yardstick — the smallest correct single-threaded `mio` echo loop,
//!   without line framing, that every strategy is measured against; and
//!   [`baseline::threads`], the smallest thread-per-client echo server, which shows what
//!   that model costs before any server code runs.
//!
//! Every loop here is bounded in time: connects, replies and phases all have deadlines,
//! so a dead, slow or misbehaving server shows up as errors in the report, never as a hang.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod baseline;
pub mod driver;
pub mod procstat;
pub mod stats;
pub mod workload;

pub use driver::{run, Mark, Report};
pub use stats::{Latency, Summary};
pub use workload::{load_line, Exchange, Plan, Workload};

/// Everything that can stop a load run or a measurement from happening at all.
///
/// Failures of single connections (refused, reset, wrong reply, timeout) are not errors of
/// the run: they are counted in [`Report::errors`] so one bad client cannot hide the rest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plan asks for something impossible (zero threads, an empty request, ...).
    #[error("invalid load plan: {0}")]
    Plan(String),
    /// An operating-system call needed by the generator itself failed.
    #[error("{context}: {source}")]
    Io {
        /// What the generator was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `/proc` file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Proc {
        /// The file that was read.
        path: String,
        /// Why it could not be used.
        reason: String,
    },
    /// Process statistics are only available on Linux.
    #[error("process statistics are only available on Linux")]
    Unsupported,
    /// A generator thread stopped answering or panicked.
    #[error("load generator thread failed: {0}")]
    Worker(String),
}

impl Error {
    /// Wraps an I/O error with what the generator was doing when it happened.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
