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

use std::process::ExitCode;
use std::sync::Arc;

use switchboard::mode::reply;
use switchboard::{ClientId, EventLoop, Mode};

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

fn main() -> ExitCode {
    // Parses `[HOST] [PORT]`, logs to stderr, then `switchboard::run`: binds,
    // prints `listening on`, reads `/quit` and friends from stdin, stops on
    // Ctrl-C — exactly what the server binaries do.
    cli::serve_main(
        "keyword_echo",
        "Echoes every line, and spots the word `monowar`",
        &EventLoop,
        Arc::new(KeywordEcho),
    )
}
