//! # switchboard
//!
//! The classic socket-programming assignment done properly: one line protocol,
//! written once without I/O, served by four concurrency models you can compare.
//!
//! ## Layout
//!
//! - [`codec`] — line framing over a byte buffer: partial reads, pipelining,
//!   the line-length limit.
//! - [`session`] — the protocol state machine: `Hi`/`Hello`, `bye`, `ERR` lines.
//!   Bytes in, reply bytes out; it knows nothing of sockets.
//! - [`mode`] — what a line means: [`Chat`](mode::Chat), [`Calc`](mode::Calc),
//!   [`Echo`](mode::Echo), [`Reverse`](mode::Reverse), or your own [`Mode`].
//! - [`console`] — the connected clients and the operator's commands.
//! - [`strategy`] — the [`ConnectionStrategy`] trait and the four models.
//! - [`shutdown`] — the stop signal every strategy honours.
//! - [`net`] — resolving and binding, the same for every strategy.
//! - [`run()`] — all of the above in one call, as the binaries use it.
//!
//! ## The strategies
//!
//! | strategy | threads | blocks in | per idle client | breaks down when |
//! |---|---|---|---|---|
//! | [`SingleClient`] | 2 | `read` | nothing: others are turned away | a second client wants service |
//! | [`ThreadPerClient`] | 1 + one per client | `read`, per thread | a thread and its stack | thousands of clients; context switches |
//! | [`EventLoop`] | 1 (+ console) | `poll`, once for all | a few hundred bytes | one core is not enough, or one line is slow |
//! | [`EchoServer`] | as [`EventLoop`] | as [`EventLoop`] | as [`EventLoop`] | as [`EventLoop`] |
//!
//! ## Serving
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchboard::{mode::Reverse, Server, ThreadPerClient};
//!
//! // Prints `listening on 127.0.0.1:5000`, serves until Ctrl-C or `/quit`.
//! switchboard::run(&ThreadPerClient, "127.0.0.1", 5000, Server::new(Arc::new(Reverse)))?;
//! # Ok::<(), switchboard::Error>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod codec;
pub mod console;
mod error;
pub mod mode;
pub mod net;
mod run;
pub mod session;
pub mod shutdown;
pub mod strategy;

pub use error::Error;
pub use mode::Mode;
pub use run::run;
pub use session::{ClientId, Session};
pub use shutdown::Shutdown;
pub use strategy::{
    ConnectionStrategy, EchoServer, EventLoop, Limits, Server, SingleClient, ThreadPerClient,
};
