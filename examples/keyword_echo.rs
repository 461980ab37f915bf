//! An echo server with a keyword: each line comes back as
//! `Echo from server: LINE`, except the special word `monowar` (any case),
//! which gets `Special word received: Monowar detected!`. The client ends
//! its session locally when you type the quit word, `shishir` in the classic
//! version (`exit` also works, and tells the server).
//!
//! ```text
//! cargo run --example keyword_echo -- 127.0.0.1 5000
//! cargo run --bin client -- 127.0.0.1 5000 --quit-word shishir
//! ```
//!
//! This is how you add a behaviour: implement [`Mode`] — one method that
//! appends the reply lines for one line — and hand it to any strategy. Here
//! the select-style [`EventLoop`] serves every client from one thread.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard::mode::reply;
use switchboard::{ClientId, EventLoop, Mode, Server};

/// The keyword echo: one line in, one reply line out.
struct KeywordEcho;

impl Mode for KeywordEcho {
    fn on_line(&self, _from: ClientId, line: &str, out: &mut Vec<u8>) {
        if line.trim().eq_ignore_ascii_case("monowar") {
            reply(out, "Special word received: Monowar detected!");
        } else {
            reply(out, &format!("Echo from server: {line}"));
        }
    }
}

/// Echoes every line, and spots the word `monowar`.
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
    let server = Server::new(Arc::new(KeywordEcho));
    match switchboard::run(&EventLoop, &args.host, args.port, server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyword_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
