//! `server4 [HOST] [PORT]`: the event loop as an echo server.
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::server_main(
        "server4",
        "Echo server: the select-style event loop replying with the bytes received",
        &switchboard::EchoServer,
        cli::ModeName::Echo,
    )
}
