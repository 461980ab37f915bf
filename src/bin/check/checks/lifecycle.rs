//! The server as a process (SPEC sections 3 and 8): idle means idle once clients have
//! left, SIGTERM and SIGINT end it promptly, and clients leaving rudely never end it.

use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

use super::{Ctx, REPLY};
use crate::outcome::{fail, Verdict};

/// How long CPU use is watched once every client has left.
const IDLE_WINDOW: Duration = Duration::from_secs(1);
/// More CPU than this share of the window, with no client connected, is a spin.
const SPIN_SHARE: f64 = 0.10;
/// How long a signalled server may take to be gone.
#[cfg(unix)]
const SIGNAL_LIMIT: Duration = Duration::from_secs(2);

/// Clients leave every way a client can (bye, a plain close, a close mid-line, a
/// reset); then the server's process group must use (almost) no CPU for a second.
pub fn no_spin(ctx: &mut Ctx) -> Result<(), Verdict> {
    if !cfg!(target_os = "linux") {
        return Err(Verdict::Skip(
            "CPU time is read from /proc, which only Linux has".into(),
        ));
    }
    leave_every_way(ctx)?;
    // Time running or ready to run is a spin's measure on a busy machine,
    // where a spinning server gets only its share of CPU time; CPU time is
    // the fallback where the kernel keeps no scheduler statistics.
    let measure = |ctx: &Ctx| ctx.server.runnable().or_else(|| ctx.server.cpu());
    let before = measure(ctx);
    ctx.log.note(
        "server",
        format!("no client connected; watching CPU for {IDLE_WINDOW:?}"),
    );
    std::thread::sleep(IDLE_WINDOW);
    let (Some(before), Some(after)) = (before, measure(ctx)) else {
        return Err(Verdict::Skip(
            "the server's CPU time could not be read".into(),
        ));
    };
    let share = (after.saturating_sub(before)).as_secs_f64() / IDLE_WINDOW.as_secs_f64();
    ctx.log.note(
        "server",
        format!(
            "busy (running or ready to run) {:.0}% of the time",
            share * 100.0
        ),
    );
    if share > SPIN_SHARE {
        return Err(fail(
            format!(
                "the server was busy {:.0}% of {IDLE_WINDOW:?} with no client connected",
                share * 100.0
            ),
            "the server spins once a client has gone: a select() loop that keeps a closed \
             socket (recv() returned nothing) in its read set wakes at once, forever; \
             remove that socket and close it",
        ));
    }
    Ok(())
}

/// A bye, a plain close, a close mid-line and a reset, one after the other; then a
/// client served, so the server has seen every one of them go.
fn leave_every_way(ctx: &mut Ctx) -> Result<(), Verdict> {
    const CAUSE: &str = "after a client left the server stopped serving";
    let mut a = ctx.greeted_retrying("A", REPLY, CAUSE)?;
    a.send(b"bye\n")?;
    a.expect(
        b"bye",
        REPLY,
        false,
        "`bye` must be answered with the line `bye`",
    )?;
    ctx.greeted_retrying("B", REPLY, CAUSE)?.close();
    let mut c = ctx.greeted_retrying("C", REPLY, CAUSE)?;
    c.send(b"half a li")?;
    c.close();
    ctx.greeted_retrying("D", REPLY, CAUSE)?.reset();
    let mut e = ctx.greeted_retrying("E", REPLY, CAUSE)?;
    e.send(b"bye\n")?;
    e.expect(b"bye", REPLY, false, CAUSE)?;
    e.expect_closed(REPLY, "`bye` was answered but the connection was left open")
}

/// SIGTERM to the process group, a client connected: gone within 2 s.
pub fn sigterm(ctx: &mut Ctx) -> Result<(), Verdict> {
    signalled(
        ctx,
        "TERM",
        "the server ignores or catches SIGTERM without exiting (or waits for its clients \
         first): on SIGTERM close the listener and the clients, and exit",
    )
}

/// SIGINT (Ctrl-C) to the process group, a client connected: gone within 2 s.
pub fn sigint(ctx: &mut Ctx) -> Result<(), Verdict> {
    signalled(
        ctx,
        "INT",
        "Ctrl-C did not end the server: KeyboardInterrupt is caught and ignored, or the \
         process waits for client threads that are not daemon threads",
    )
}

fn signalled(ctx: &mut Ctx, signal: &str, cause: &str) -> Result<(), Verdict> {
    #[cfg(not(unix))]
    {
        let _ = (ctx, signal, cause);
        Err(Verdict::Skip("signals are a unix feature".into()))
    }
    #[cfg(unix)]
    {
        let _a = ctx.greeted("A", "the server did not answer `Hi` with the greeting")?;
        ctx.log
            .note("server", format!("kill -{signal} to its process group"));
        ctx.server
            .signal(signal)
            .map_err(|e| Verdict::Skip(format!("could not send SIG{signal}: {e}")))?;
        let deadline = Instant::now() + SIGNAL_LIMIT;
        while ctx.server.running() {
            if Instant::now() >= deadline {
                ctx.log
                    .note("server", format!("still running after {SIGNAL_LIMIT:?}"));
                return Err(fail(
                    format!("the server was still running {SIGNAL_LIMIT:?} after SIG{signal}"),
                    cause,
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        ctx.log.note("server", "gone");
        Ok(())
    }
}

/// Clients that leave without `bye` (silent, greeted, mid-line) never end the
/// server: a new client is served after them, and the process is alive.
pub fn still_serving(ctx: &mut Ctx) -> Result<(), Verdict> {
    const CAUSE: &str = "the server stopped serving after clients left without saying bye: \
         treat recv() returning nothing as that client leaving, close its socket, and \
         carry on accepting";
    ctx.after(CAUSE, |ctx| {
        ctx.connect("A")?.close();
        ctx.greeted_retrying("B", REPLY, CAUSE)?.close();
        let mut c = ctx.greeted_retrying("C", REPLY, CAUSE)?;
        c.send(b"unfinished")?;
        c.close();
        let mut d = ctx.greeted_retrying("D", REPLY, CAUSE)?;
        d.send(b"bye\n")?;
        d.expect(b"bye", REPLY, false, CAUSE)?;
        ctx.alive(CAUSE)
    })
}
