//! # switchboard
//!
//! The classic socket-programming assignment done properly: one line protocol,
//! written once without I/O, served by concurrency models you can compare.
//!
//! ## Layout
//!
//! From the bottom up. The protocol, without I/O — none of it imports
//! anything from the server above it:
//!
//! - [`protocol`] — the words every layer shares: [`ClientId`], [`Goodbye`]
//!   (the `ERR` lines), [`Outbound`], [`Limits`].
//! - [`codec`] — line framing over a byte buffer: partial reads, pipelining,
//!   the line-length limit.
//! - [`mode`] — what a line means ([`MODES`](mode::MODES): chat, calc, echo,
//!   reverse), or your own [`Mode`]; a mode reaches nothing but its reply
//!   and the [`Operator`](mode::Operator).
//! - [`session`] — the protocol state machine: `Hi`/`Hello`, `bye`, `ERR`
//!   lines. Bytes in, reply bytes out, given a [`Context`](session::Context)
//!   (the mode, the line limit, the operator); it knows nothing of sockets.
//!
//! The server around it:
//!
//! - [`clients`] — the registry of connected clients: admission
//!   (`--max-clients`), sending to a client, presence.
//! - [`access`] — who may connect (`--allow`, `--deny`).
//! - [`address`] — `[HOST] [PORT]` as typed: a port alone is the port, and a
//!   host in numeric shorthand is refused before any lookup.
//! - [`console`] — the operator's commands (`@ID text`, `/list`, `/kick`,
//!   `/quit`) and the [`Screen`](console::Screen) they and chat write to.
//! - [`Server`] and [`serve()`] — what a model serves, and the call that
//!   serves it until the caller's [`Shutdown`] fires.
//! - [`strategy`] — the [`ConnectionStrategy`] trait and one file per model,
//!   listed once in [`MODELS`](strategy::MODELS).
//! - [`shutdown`], [`net`], [`Error`] — the stop signal, binding, and what
//!   can stop a server as a whole.
//!
//! The library leaves the process alone: no signal handlers, no `exit`, no
//! stdin, no thread of its own for stdout. switchboard's binaries add those,
//! and hand the server a [`Screen::start`](console::Screen::start)ed screen.
//!
//! ## The models
//!
//! In the order a student meets them; `N` is `--workers`.
//!
//! | model | threads | waits in | per idle client | breaks down when |
//! |---|---|---|---|---|
//! | [`SingleClient`] | 1 | `read`, watching the door between reads | nothing: others are turned away | a second client wants service |
//! | [`ThreadPerClient`] | 1 + one per client | `read`, per thread | a thread and its stack | thousands of clients; a context switch per message |
//! | [`ThreadPool`] | 1 + N | `read`, per worker | a place in the queue | more clients than workers: the rest wait unanswered |
//! | [`EventLoop`] | 1 | `poll`, once for all | a few hundred bytes | one line is slow (everyone waits), or one core is not enough |
//! | [`EventLoopWorkers`] | 1 + N | `poll`; workers in a queue | as the event loop | every worker busy with slow lines; the loop's core |
//! | [`MultiReactor`] | N + 1 | `poll`, one per loop | as the event loop | load lands unevenly on loops; a slow line stalls its loop |
//! | [`AsyncTasks`] | N + 1 | `.await`, per task | a task and its mailbox; reads and replies use the worker thread's buffers | a slow line blocks a runtime thread; the runtime's costs are not yours |
//! | [`IoUring`] | 1 | the completion ring | one armed multishot receive; buffers are the ring's, taken as data arrives | one line is slow; Linux only, often forbidden in sandboxes |
//!
//! (Each server also has a console thread, and one more for signals.)
//!
//! ## Serving
//!
//! ```no_run
//! use std::net::TcpListener;
//! use switchboard::{mode::Reverse, serve, Server, ThreadPerClient};
//!
//! let listener = TcpListener::bind("127.0.0.1:5000")?;
//! let server = Server::new(Reverse);
//! let stop = server.shutdown.clone(); // `stop.trigger()` from anywhere ends `serve`
//! serve(&ThreadPerClient, listener, server)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
// Only the io_uring model lends buffers to the kernel; its `kernel.rs`
// allows unsafe code for that, with a SAFETY note at every use.
#![deny(unsafe_code)]

pub mod protocol;

pub mod codec;
pub mod mode;
pub mod session;

pub mod access;
pub mod address;
pub mod clients;
pub mod console;
mod error;
pub mod net;
mod server;
pub mod shutdown;
pub mod strategy;

pub use error::Error;
pub use mode::Mode;
pub use protocol::{ClientId, Goodbye, Limits, Outbound};
pub use server::{default_workers, serve, Server};
pub use session::Session;
pub use shutdown::Shutdown;
pub use strategy::{
    AsyncTasks, ConnectionStrategy, EventLoop, EventLoopWorkers, IoUring, MultiReactor,
    SingleClient, ThreadPerClient, ThreadPool,
};
