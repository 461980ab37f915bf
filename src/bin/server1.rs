//! `server1 [HOST] [PORT]`: serves one client at a time; others get `ERR busy`.
use std::process::ExitCode;

use switchboard::{mode, strategy};

fn main() -> ExitCode {
    cli::server_main(
        "server1",
        "Single-client server: one conversation at a time, blocking I/O",
        &strategy::single_client::MODEL,
        &mode::chat::ENTRY,
    )
}
