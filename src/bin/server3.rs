//! `server3 [HOST] [PORT]`: one thread, one `mio::Poll` loop for every socket.
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::server_main(
        "server3",
        "Select-style server: one thread, one mio::Poll event loop for every socket",
        &switchboard::EventLoop,
        cli::ModeName::Chat,
    )
}
