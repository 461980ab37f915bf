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

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard::mode::Reverse;
use switchboard::{Server, ThreadPerClient};

/// Reverses every line it receives; `exit` disconnects.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks any free port.
    #[arg(default_value_t = 5000)]
    port: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    // Binds, prints `listening on`, reads `/quit` and friends from stdin,
    // stops on Ctrl-C: the same `run` the server binaries use.
    let server = Server::new(Arc::new(Reverse));
    match switchboard::run(&ThreadPerClient, &args.host, args.port, server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reverse_server: {e}");
            ExitCode::FAILURE
        }
    }
}
