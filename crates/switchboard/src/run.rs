//! Running a server the way switchboard's binaries do, in one call.
//!
//! Besides binding and serving, [`run`] owns the process-level promises of
//! SPEC section 3 that a strategy cannot keep by itself: a second Ctrl-C ends
//! the process at once, and once shutdown fires the process ends within about
//! a second even if a graceful stop hangs (say, on a write nobody reads).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::console::print;
use crate::error::Error;
use crate::net;
use crate::shutdown::Shutdown;
use crate::strategy::{ConnectionStrategy, Server};

/// After shutdown fires, how long a graceful stop may take before the
/// deadline ends the process, so it is gone within SPEC's one second.
const GRACE: Duration = Duration::from_millis(800);
/// The exit status after a second Ctrl-C: 128 + SIGINT, as shells report it.
const INTERRUPTED: i32 = 130;

/// Serves `strategy` on `host:port` until `server.shutdown` fires.
///
/// Binds (IPv4 first for names like `localhost`), makes Ctrl-C and SIGTERM
/// fire the shutdown, prints `listening on IP:PORT` on stdout — the line
/// scripts wait for — then reads operator commands from stdin (`/quit`,
/// `@ID text`, ...) and serves. Returns once every client has been told
/// `ERR server shutting down`.
///
/// `run` is meant to be the body of a server's `main`, and treats the
/// process as its own:
///
/// - it installs the process's Ctrl-C / SIGTERM handler: the first signal
///   fires the shutdown, a second one exits at once with status 130;
/// - once the shutdown fires (from any source), a deadline is armed: if `run`
///   has not returned 800 ms later, it exits the process with status 0.
///   This is a backstop, not synchronisation — a graceful stop returns well
///   before it, and returning disarms it, so code after `run` is never cut
///   short.
///
/// To serve without either, call [`ConnectionStrategy::serve`] yourself.
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
    handle_signals(server.shutdown.clone());
    let deadline = Deadline::arm_on(&server.shutdown);
    // Only now: scripts take this line as "ready", and a SIGTERM sent the
    // moment it appears must find the handler installed, not kill us.
    print(format_args!("listening on {local}"));
    server.console.spawn_stdin(server.shutdown.clone());
    tracing::info!(strategy = strategy.name(), "serving");
    let served = strategy.serve(listener, server);
    deadline.disarm();
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C (and SIGTERM) fire `stop` the first time; the next one exits at
/// once, for when a graceful stop is not stopping.
fn handle_signals(stop: Shutdown) {
    let signalled = AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            std::process::exit(INTERRUPTED);
        }
        stop.trigger();
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will not stop the server gracefully: {e}");
    }
}

/// The "exit within one second" backstop: a thread started when shutdown
/// fires that ends the process unless [`Deadline::disarm`] comes first.
struct Deadline {
    /// Whether `run` has returned. The watchdog holds this lock from the
    /// moment it decides to exit, so `disarm` cannot return in between.
    disarmed: Mutex<bool>,
    changed: Condvar,
}

impl Deadline {
    fn arm_on(shutdown: &Shutdown) -> Arc<Deadline> {
        let deadline = Arc::new(Deadline {
            disarmed: Mutex::new(false),
            changed: Condvar::new(),
        });
        let watched = Arc::clone(&deadline);
        shutdown.on_trigger(move || {
            let watched = Arc::clone(&watched);
            let started = std::thread::Builder::new()
                .name("shutdown-deadline".into())
                .spawn(move || watched.enforce());
            if let Err(e) = started {
                tracing::warn!("no shutdown deadline: {e}");
            }
        });
        deadline
    }

    fn enforce(&self) {
        let disarmed = self.disarmed.lock().unwrap_or_else(PoisonError::into_inner);
        let (disarmed, _) = self
            .changed
            .wait_timeout_while(disarmed, GRACE, |disarmed| !*disarmed)
            .unwrap_or_else(PoisonError::into_inner);
        if !*disarmed {
            tracing::warn!("graceful shutdown took too long; exiting");
            std::process::exit(0);
        }
    }

    fn disarm(&self) {
        *self.disarmed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }
}
