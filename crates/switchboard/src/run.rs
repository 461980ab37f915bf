//! Running a server the way switchboard's binaries do, in one call.

use crate::console::print;
use crate::error::Error;
use crate::net;
use crate::strategy::{ConnectionStrategy, Server};

/// Serves `strategy` on `host:port` until `server.shutdown` fires.
///
/// Binds (IPv4 first for names like `localhost`), makes Ctrl-C and SIGTERM
/// fire the shutdown, prints `listening on IP:PORT` on stdout — the line
/// scripts wait for — then reads operator commands from stdin (`/quit`,
/// `@ID text`, ...) and serves. Returns once every client has been told
/// `ERR server shutting down`.
pub fn run(
    strategy: &dyn ConnectionStrategy,
    host: &str,
    port: u16,
    server: Server,
) -> Result<(), Error> {
    let listener = net::bind(&net::resolve(host, port)?)?;
    let local = listener
        .local_addr()
        .map_err(Error::io("reading the bound address"))?;
    let stop = server.shutdown.clone();
    if let Err(e) = ctrlc::set_handler(move || stop.trigger()) {
        tracing::warn!("Ctrl-C will not stop the server gracefully: {e}");
    }
    // Only now: scripts take this line as "ready", and a SIGTERM sent the
    // moment it appears must find the handler installed, not kill us.
    print(format_args!("listening on {local}"));
    server.console.spawn_stdin(server.shutdown.clone());
    tracing::info!(strategy = strategy.name(), "serving");
    strategy.serve(listener, server)?;
    tracing::info!("stopped");
    Ok(())
}
