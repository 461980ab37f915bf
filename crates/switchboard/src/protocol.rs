//! The words every layer shares, at the bottom of the crate: who a client
//! is ([`ClientId`]), why a connection is ended with an `ERR` line
//! ([`Goodbye`]), what reaches a client from outside its conversation
//! ([`Outbound`]), and the limits a connection is held to ([`Limits`]).
//!
//! This module imports nothing from the rest of the crate: the codec, the
//! session and the modes above it, and the server and the models above
//! those, all speak in these terms.

use std::fmt;
use std::time::Duration;

/// A connected client's number: 1, 2, 3, ... as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the server ends a connection with an `ERR` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goodbye {
    /// No room for this client; the text says why (`serving another client`).
    Busy(&'static str),
    /// A line went over `--max-line`.
    LineTooLong,
    /// A text mode received bytes that are not UTF-8.
    InvalidUtf8,
    /// The client was silent for `--idle-timeout`.
    IdleTimeout,
    /// The server is stopping.
    ShuttingDown,
    /// The operator closed this client with `/kick`.
    Kicked,
    /// The peer's address is not allowed (`--allow`, `--deny`).
    Forbidden,
    /// The client left more output unread than the output bound allows (it
    /// may never see this line: its buffers are full).
    Overflow,
    /// Answering this client's line failed inside the server (a panic in
    /// its mode): this conversation ends, and every other goes on.
    Internal,
}

impl Goodbye {
    /// The line sent to the client, `\n` included.
    pub fn line(self) -> String {
        format!("ERR {self}\n")
    }
}

impl fmt::Display for Goodbye {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Goodbye::Busy(why) => write!(f, "busy: {why}"),
            Goodbye::LineTooLong => f.write_str("line too long"),
            Goodbye::InvalidUtf8 => f.write_str("invalid utf-8"),
            Goodbye::IdleTimeout => f.write_str("idle timeout"),
            Goodbye::ShuttingDown => f.write_str("server shutting down"),
            Goodbye::Kicked => f.write_str("kicked by the operator"),
            Goodbye::Forbidden => f.write_str("forbidden"),
            Goodbye::Overflow => f.write_str("too much output left unread"),
            Goodbye::Internal => f.write_str("internal error"),
        }
    }
}

/// Something to deliver to one client from outside its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// One line of text (sent with a `\n` added).
    Line(String),
    /// Send the `ERR` line for this reason, then close the connection.
    Close(Goodbye),
}

/// Per-server limits (the `--max-clients`, `--idle-timeout` and
/// `--max-line` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more gets `ERR busy` and is closed.
    pub max_clients: usize,
    /// A client silent this long gets `ERR idle timeout` and is closed.
    pub idle_timeout: Option<Duration>,
    /// Longest line accepted, in bytes, without its `\n` or `\r\n`.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 1024,
            idle_timeout: None,
            max_line: 65536,
        }
    }
}
