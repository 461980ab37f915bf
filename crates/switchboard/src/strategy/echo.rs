//! Echo: the select-style event loop in its best case.
//!
//! Server4 is the coursework's echo server. It is the [`EventLoop`] running
//! the `echo` mode, and it shows why the event loop scales: a line arrives in
//! the shared read buffer, the codec hands the mode a slice of it, and the mode
//! appends those same bytes to the connection's output — no UTF-8 check, no
//! `String`, one copy from the read buffer to the output. What it costs per
//! message is, almost entirely, the system calls the kernel needs anyway: on
//! Linux one `epoll_wait`, one `read` and one `write`.
//!
//! **Cost and limits:** those of [`EventLoop`]; an echo server never thinks
//! long about a line, so one thread goes a long way.

use std::net::TcpListener;

use super::{ConnectionStrategy, EventLoop, Server};
use crate::error::Error;

/// The event loop as an echo server (its binary defaults to `--mode echo`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoServer;

impl ConnectionStrategy for EchoServer {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn serve(&self, listener: TcpListener, server: Server) -> Result<(), Error> {
        EventLoop.serve(listener, server)
    }
}
