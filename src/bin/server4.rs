//! `server4 [HOST] [PORT]`: the event loop in echo mode.
use std::process::ExitCode;

use switchboard::{mode, strategy};

fn main() -> ExitCode {
    cli::server_main(
        "server4",
        "Echo server: the select-style event loop replying with the bytes received",
        &strategy::event_loop::MODEL,
        &mode::echo::ENTRY,
    )
}
