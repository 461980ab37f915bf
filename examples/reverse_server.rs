//! A multi-threaded string-reversal server: every line comes back reversed,
//! and `exit` (or `bye`) disconnects.
//!
//! ```text
//! cargo run --example reverse_server -- 127.0.0.1 5000
//! cargo run --bin client -- 127.0.0.1 5000
//! ```
//!
//! The whole program is a choice of two library pieces: the
//! [`ThreadPerClient`] model (one OS thread per connection, so a silent
//! client never holds up another) and the [`Reverse`] mode (what a line
//! means). The session underneath already answers `Hi` with `Hello`, `exit`
//! with `bye`, and enforces the line limit. Type `/quit` on the server's
//! console, or press Ctrl-C, to stop it.

use std::process::ExitCode;

use switchboard::address::Address;
use switchboard::mode::Reverse;
use switchboard::{net, serve, Error, Server, ThreadPerClient};

fn main() -> ExitCode {
    // A port typed alone is the port; a host in numeric shorthand is refused.
    let address = match Address::from_args(std::env::args().skip(1)) {
        Ok(address) => address,
        Err(why) => {
            eprintln!("reverse_server: {why}\nusage: reverse_server [HOST] [PORT]");
            return ExitCode::from(2);
        }
    };
    match run(&address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reverse_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(address: &Address) -> Result<(), Error> {
    let listener = net::bind(&address.resolve()?)?;
    let server = Server::new(Reverse);

    // Ctrl-C stops the server: every client is told, then `serve` returns.
    let stop = server.shutdown.clone();
    if let Err(e) = ctrlc::set_handler(move || stop.trigger()) {
        eprintln!("reverse_server: Ctrl-C will not stop the server gracefully: {e}");
    }
    // The operator's commands (`/quit`, `/list`, `@ID text`) come from stdin.
    let console = server.console();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            console.operator(&line);
        }
    });

    let addr = listener.local_addr().map_err(Error::io("local address"))?;
    println!("listening on {addr}");
    serve(&ThreadPerClient, listener, server)
}
