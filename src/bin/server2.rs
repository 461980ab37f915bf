//! `server2 [HOST] [PORT]`: one OS thread per connected client.
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::server_main(
        "server2",
        "Thread-per-client server: one OS thread per connection",
        &switchboard::ThreadPerClient,
        cli::ModeName::Chat,
    )
}
