//! The server as a process (SPEC sections 3, 8 and 10.1): idle means idle once
//! clients have left, their descriptors are given back, SIGTERM and SIGINT end it
//! promptly, it restarts on the same port at once, and clients leaving rudely never
//! end it.

use std::time::{Duration, Instant};

use super::{Ctx, REPLY};
use crate::outcome::{fail, Verdict};

/// How long CPU use is watched once every client has left, in two halves.
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
    //
    // The window is watched in two halves, and the quieter half is judged: a
    // spin keeps the server busy in both, while the work of seeing the last
    // clients out, stretched by a loaded machine's run queue, falls in the
    // first.
    let measure = |ctx: &Ctx| ctx.server.runnable().or_else(|| ctx.server.cpu());
    ctx.log.note(
        "server",
        format!("no client connected; watching CPU for {IDLE_WINDOW:?}"),
    );
    let half = IDLE_WINDOW / 2;
    let busy_share = |ctx: &Ctx| {
        let before = measure(ctx);
        std::thread::sleep(half);
        let (before, after) = (before?, measure(ctx)?);
        Some(after.saturating_sub(before).as_secs_f64() / half.as_secs_f64())
    };
    let (Some(first), Some(second)) = (busy_share(ctx), busy_share(ctx)) else {
        return Err(Verdict::Skip(
            "the server's CPU time could not be read".into(),
        ));
    };
    let share = first.min(second);
    ctx.log.note(
        "server",
        format!(
            "busy (running or ready to run) {:.0}% of the first half, {:.0}% of the second",
            first * 100.0,
            second * 100.0
        ),
    );
    if share > SPIN_SHARE {
        return Err(fail(
            format!(
                "the server was busy at least {:.0}% of each half of {IDLE_WINDOW:?} with no client connected",
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
    a.close();
    ctx.greeted_retrying("B", REPLY, CAUSE)?.close();
    let mut c = ctx.greeted_retrying("C", REPLY, CAUSE)?;
    c.send(b"half a li")?;
    c.close();
    ctx.greeted_retrying("D", REPLY, CAUSE)?.reset();
    // The last is served and leaves; whether `bye` closes is `bye`'s to grade.
    let mut e = ctx.greeted_retrying("E", REPLY, CAUSE)?;
    e.send(b"bye\n")?;
    e.expect(b"bye", REPLY, false, CAUSE)
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

/// Clients that connect, are greeted and leave without `bye`, for `descriptors`.
const LEAVERS: usize = 200;
/// Descriptors the server may hold beyond those it held before them.
const FD_SLACK: usize = 20;

const LEAK: &str = "client sockets that leave without `bye` are never closed: when recv() \
     returns b'' (or fails), close that client's socket and forget it (remove it from your \
     client list too)";

/// 200 clients connect, say `Hi` and leave without `bye`; then the server's processes
/// hold at most 20 more descriptors than before (Linux, from `/proc`).
pub fn descriptors(ctx: &mut Ctx) -> Result<(), Verdict> {
    if !cfg!(target_os = "linux") {
        return Err(Verdict::Skip(
            "descriptors are counted in /proc, which only Linux has".into(),
        ));
    }
    let Some(before) = ctx.server.open_descriptors() else {
        return Err(Verdict::Skip(
            "the server's descriptors could not be read from /proc".into(),
        ));
    };
    ctx.log.note("server", format!("{before} descriptors open"));
    ctx.log.note(
        "1..200",
        format!("{LEAVERS} clients in turn: connect, Hi, close without bye"),
    );
    let quiet = crate::outcome::Log::new();
    for i in 1..=LEAVERS {
        let name = i.to_string();
        let served = ctx.after(LEAK, |ctx| {
            let quiet_ctx = Ctx {
                log: &quiet,
                server: &mut *ctx.server,
                ..*ctx
            };
            quiet_ctx
                .greeted_retrying(&name, REPLY, "a client was not served")
                .map(|c| c.close())
        });
        if let Err(Verdict::Fail { message, .. }) = served {
            return Err(fail(
                format!("client {i} of {LEAVERS}: {message}"),
                "the server stopped serving clients that left without `bye`: treat recv() \
                 returning nothing as that client leaving",
            ));
        }
    }
    let limit = before + FD_SLACK;
    let deadline = Instant::now() + REPLY;
    let mut now;
    loop {
        now = ctx.server.open_descriptors().unwrap_or(0);
        if now <= limit || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.log.note(
        "server",
        format!("{now} descriptors open after they left (at most {limit} allowed)"),
    );
    if now > limit {
        return Err(fail(
            format!(
                "the server held {now} descriptors {REPLY:?} after {LEAVERS} clients left \
                 without bye, {} more than the {before} before them",
                now - before
            ),
            LEAK,
        ));
    }
    Ok(())
}

/// Stopped with SIGTERM while a client is connected, the same command on the same port
/// is accepting again within the start timeout.
pub fn restart(ctx: &mut Ctx) -> Result<(), Verdict> {
    #[cfg(not(unix))]
    {
        let _ = ctx;
        Err(Verdict::Skip("signals are a unix feature".into()))
    }
    #[cfg(unix)]
    {
        let mut a = ctx.greeted("A", "the server did not answer `Hi` with the greeting")?;
        ctx.log.note("server", "kill -TERM to its process group");
        ctx.server
            .signal("TERM")
            .map_err(|e| Verdict::Skip(format!("could not send SIGTERM: {e}")))?;
        let deadline = Instant::now() + SIGNAL_LIMIT;
        while ctx.server.running() {
            if Instant::now() >= deadline {
                return Err(Verdict::Skip(
                    "the server did not end on SIGTERM (see the sigterm check)".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The server's end of A's connection was closed first, so it waits in
        // TIME_WAIT on the port: what a restart meets after a real session.
        let _ = a.next(Duration::from_millis(200));
        a.close();
        let port = ctx.addr.port();
        ctx.log.note(
            "server",
            format!("gone; start the same command on port {port} again"),
        );
        match crate::server::ServerProcess::start_at(ctx.command, port, ctx.start_timeout) {
            Ok(mut again) => {
                ctx.log
                    .note("server", format!("listening again on {}", again.addr));
                again.stop();
                Ok(())
            }
            Err(e) => {
                for line in e
                    .output
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .iter()
                    .rev()
                {
                    ctx.log.note("server", format!("printed {line:?}"));
                }
                Err(fail(
                    format!("restarted on the same port: {}", e.message),
                    "the port was still held by the last server's connections (TIME_WAIT), \
                     so bind() failed with \"Address already in use\": set SO_REUSEADDR on \
                     the listening socket before bind()",
                ))
            }
        }
    }
}
