//! `server2 [HOST] [PORT]`: one OS thread per connected client.
use std::process::ExitCode;

use switchboard::{mode, strategy};

fn main() -> ExitCode {
    cli::server_main(
        "server2",
        "Thread-per-client server: one OS thread per connection",
        &strategy::thread_per_client::MODEL,
        &mode::chat::ENTRY,
    )
}
