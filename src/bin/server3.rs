//! `server3 [HOST] [PORT]`: one thread, one `mio::Poll` loop for every client.
use std::process::ExitCode;

use switchboard::{mode, strategy};

fn main() -> ExitCode {
    cli::server_main(
        "server3",
        "Select-style server: one thread, one mio::Poll event loop for every socket",
        &strategy::event_loop::MODEL,
        &mode::chat::ENTRY,
    )
}
