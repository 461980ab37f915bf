//! A multi-threaded string-reversal server: every line comes back reversed,
//! and `exit` (or `bye`) disconnects.
//!
//! ```text
//! cargo run --example reverse_server -- 127.0.0.1 5000
//! cargo run --bin client -- 127.0.0.1 5000
//! ```
//!
//! The whole program is a choice of two library pieces: the
//! [`ThreadPerClient`] strategy (one OS thread per connection, so a silent
//! client never holds up another) and the [`Reverse`] mode (what a line
//! means). The session underneath already answers `Hi` with `Hello`, `exit`
//! with `bye`, and enforces the line limit. Type `/quit` on the server's
//! console, or press Ctrl-C, to stop it.

use std::process::ExitCode;
use std::sync::Arc;

use switchboard::mode::Reverse;
use switchboard::ThreadPerClient;

fn main() -> ExitCode {
    // Parses `[HOST] [PORT]`, logs to stderr, then `switchboard::run`: binds,
    // prints `listening on`, reads `/quit` and friends from stdin, stops on
    // Ctrl-C — exactly what the server binaries do.
    cli::serve_main(
        "reverse_server",
        "Reverses every line it receives; `exit` disconnects",
        &ThreadPerClient,
        Arc::new(Reverse),
    )
}
