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
//! appends the reply lines for one line — and hand it to any model. Here
//! the select-style [`EventLoop`] serves every client from one thread.

use std::process::ExitCode;

use switchboard::address::Address;
use switchboard::mode::{reply, Speaker};
use switchboard::{net, serve, Error, EventLoop, Mode, Server};

/// The keyword echo: one line in, one reply line out.
struct KeywordEcho;

impl Mode for KeywordEcho {
    fn on_line(&self, _from: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        if line.trim().eq_ignore_ascii_case("monowar") {
            reply(out, "Special word received: Monowar detected!");
        } else {
            reply(out, &format!("Echo from server: {line}"));
        }
    }
}

fn main() -> ExitCode {
    // A port typed alone is the port; a host in numeric shorthand is refused.
    let address = match Address::from_args(std::env::args().skip(1)) {
        Ok(address) => address,
        Err(why) => {
            eprintln!("keyword_echo: {why}\nusage: keyword_echo [HOST] [PORT]");
            return ExitCode::from(2);
        }
    };
    match run(&address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyword_echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(address: &Address) -> Result<(), Error> {
    let listener = net::bind(&address.resolve()?)?;
    let server = Server::new(KeywordEcho);
    let stop = server.shutdown.clone();
    if let Err(e) = ctrlc::set_handler(move || stop.trigger()) {
        eprintln!("keyword_echo: Ctrl-C will not stop the server gracefully: {e}");
    }
    let addr = listener.local_addr().map_err(Error::io("local address"))?;
    println!("listening on {addr}");
    serve(&EventLoop, listener, server)
}
