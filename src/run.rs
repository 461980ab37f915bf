//! Running a model as a process, the way switchboard's binaries do.
//!
//! The library serves and leaves the process alone; this module owns what a
//! process must promise besides serving:
//!
//! - the first stdout line is `listening on IP:PORT`, printed only once the
//!   signal handler is in place, so a SIGTERM sent the moment a script sees
//!   it stops the server gracefully instead of killing it;
//! - Ctrl-C and SIGTERM fire the shutdown; a second one exits at once (130);
//! - once the shutdown fires, from any source, the process is gone within
//!   about a second, even if a graceful stop hangs (a write nobody reads);
//! - the operator's console reads stdin on its own thread (stdin cannot be
//!   polled portably), and the end of stdin only ends that thread;
//! - the soft limit on open files is raised to the hard one, since every
//!   client holds a descriptor.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use switchboard::console::{Console, Screen, BANNER, COMMANDS_BANNER};
use switchboard::strategy::Model;
use switchboard::{net, Error, Server, Shutdown};

use crate::Address;

/// After shutdown fires, how long a graceful stop may take before the
/// deadline ends the process, so it is gone within the promised second.
const GRACE: Duration = Duration::from_millis(800);
/// The exit status after a second Ctrl-C: 128 + SIGINT, as shells report it.
const INTERRUPTED: i32 = 130;

/// Under an address-space limit (`ulimit -v`, `prlimit --as`), glibc's
/// malloc reserves 64 MiB of it for each arena it adds — one per busy thread,
/// up to eight per core, and server2 under such a limit aborted when its next
/// allocation found no room (docs/measurements/figures-behind-the-code.md).
/// Two arenas are plenty for servers whose threads
/// allocate little (each thread still has its own cache of small blocks).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    let limited = rlimit::getrlimit(rlimit::Resource::AS);
    if matches!(limited, Ok((soft, _)) if soft != rlimit::INFINITY) {
        // SAFETY: mallopt only changes a tunable of the allocator, and runs
        // before the server starts its threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}

/// Binds `address` (IPv4 first for names like `localhost`) and serves
/// `model` on it until Ctrl-C, SIGTERM or `/quit`; returns once every client
/// has been told `ERR server shutting down`.
pub fn run(model: &Model, address: &Address, server: Server) -> Result<(), Error> {
    model.strategy.check()?;
    // Each client holds a descriptor: the soft limit (often 1024) would cap
    // a server far below its hard limit, so raise it, as most servers do.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files"),
        Err(e) => tracing::debug!("open files limit unchanged: {e}"),
    }
    bound_malloc_arenas();
    let listener = net::bind(&address.resolve()?)?;
    let local = listener
        .local_addr()
        .map_err(Error::io("reading the bound address"))?;
    handle_signals(server.shutdown.clone());
    let deadline = Deadline::arm_on(&server.shutdown);
    // Written here, not by the stdout thread: scripts take this line as
    // "ready", so it must be out before anything is served.
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "listening on {local}").and_then(|()| stdout.flush());
    drop(stdout);
    let banner = match server.mode.conversation() {
        Some(_) => BANNER,
        None => COMMANDS_BANNER,
    };
    let screen = server.screen.clone();
    read_console(server.console(), &screen, server.shutdown.clone(), banner);
    tracing::info!(model = model.name, "serving");
    let served = switchboard::serve(model.strategy, listener, server);
    // What the console still holds goes out, within the exit's one second.
    screen.flush(Duration::from_millis(500));
    deadline.disarm();
    served
}

/// Feeds the operator's stdin to `console` on a thread of its own, until
/// input ends (the server keeps serving) or the server stops.
fn read_console(console: Console, screen: &Screen, shutdown: Shutdown, banner: &str) {
    if io::stdin().is_terminal() {
        screen.print(format_args!("{banner}"));
    }
    let spawned = std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            for line in io::stdin().lock().lines() {
                match line {
                    Ok(line) => console.operator(&line),
                    Err(e) => {
                        tracing::warn!("console input: {e}");
                        break;
                    }
                }
                if shutdown.is_triggered() {
                    break;
                }
            }
            tracing::debug!("console input ended; still serving");
        });
    if let Err(e) = spawned {
        tracing::warn!("no operator console: {e}");
    }
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
/// It is not synchronisation: a graceful stop returns well before it.
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
