//! `server1 [HOST] [PORT]`: serves one client at a time; others get `ERR busy`.
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::server_main(
        "server1",
        "Single-client server: one conversation at a time, blocking I/O",
        &switchboard::SingleClient,
        cli::ModeName::Chat,
    )
}
