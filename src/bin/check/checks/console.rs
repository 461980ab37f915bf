//! The chat server's console (SPEC section 7), with its stdin and stdout held by
//! `check`: a client's line shows on stdout, a plain line typed there reaches the
//! client who spoke last, and operator lines for a client that never reads block
//! nobody. With `--console full`, also `@ID`, `@all`, `/list`, `/kick` and `/quit`.
//!
//! Every line a check says or types carries the server's port, so it is told apart
//! from anything else the server prints.

use std::time::{Duration, Instant};

use super::{Ctx, CONNECT, REPLY};
use crate::conn::{Conn, Reply};
use crate::outcome::{fail, Verdict};

const NO_GREETING: &str = "the server did not answer `Hi` with the greeting";

/// How long a client's line may take to show on stdout: longer than a reply, since
/// it passes through the server's stdout pipe and a thread of ours, and a line that
/// shows ends the wait at once.
const PRINTED: Duration = Duration::from_secs(5);

const NOT_PRINTED: &str = "a client's line never showed on the server's stdout: a chat \
     server prints each line it receives for its operator (for example `[ID] text`) and \
     flushes it (print(..., flush=True))";

const SENT_BACK: &str = "the server sent the client's line back to the client instead of to \
     the operator: in chat mode print it on stdout (the console), and send the client \
     what the operator types";

const NOT_TYPED: &str = "a line typed at the console did not reach the client who spoke \
     last: the server never reads its stdin, or reads it only between clients (a \
     blocking input() in the accept loop); read stdin on a thread of its own, or put it \
     in the select() set";

const NON_READER: &str = "operator lines for a client that does not read blocked the \
     server: it sendall()s them from its one loop; queue them per client, send when the \
     socket is writable, and drop a client whose queue passes a bound";

const CONSOLE_STUCK: &str = "the console stopped at a client that does not read: a \
     blocking sendall() to that client holds the thread that reads stdin; give each \
     client a queue (and a writer thread, or the select() loop) and drop a client whose \
     queue passes a bound";

/// A word unique to this start of the server, for lines said and typed.
fn tag(ctx: &Ctx, what: &str) -> String {
    format!("{what} {}", ctx.addr.port())
}

/// `conn` says `text`; the line the server printed for it, waited for at most
/// [`REPLY`]. A server that sends the line back instead is told so.
fn say(ctx: &Ctx, conn: &mut Conn, text: &str) -> Result<String, Verdict> {
    let mark = ctx.server.stdout.mark();
    conn.send(format!("{text}\n").as_bytes())?;
    ctx.log
        .note("stdout", format!("expect a line with {text:?}"));
    if let Some(line) = ctx.server.stdout.wait_for(text, mark, PRINTED) {
        ctx.log.note("stdout", format!("printed {line:?}"));
        return Ok(line);
    }
    ctx.log
        .note("stdout", format!("no such line within {PRINTED:?}"));
    let sent_back = matches!(conn.next(Duration::from_millis(200)),
        Reply::Line(l) if l.trim_ascii_end() == text.as_bytes());
    let cause = if sent_back { SENT_BACK } else { NOT_PRINTED };
    Err(fail(
        format!(
            "{} said {text:?}; the server's stdout did not show it within {PRINTED:?}",
            conn.name()
        ),
        cause,
    ))
}

/// Types `line` at the server's console.
fn type_line(ctx: &mut Ctx, line: &str) {
    ctx.log.note("stdin", format!("typed {line:?}"));
    ctx.server
        .stdin
        .type_bytes(format!("{line}\n").into_bytes());
}

/// A client's line shows on stdout, in any format that contains it.
pub fn line_in(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    say(ctx, &mut a, &tag(ctx, "hello operator from"))?;
    Ok(())
}

/// A plain line typed at the console reaches the one client connected, who spoke
/// last.
pub fn line_out(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    say(ctx, &mut a, &tag(ctx, "hello operator from"))?;
    let line = tag(ctx, "hello client, from the console of");
    type_line(ctx, &line);
    a.expect(line.as_bytes(), REPLY, false, NOT_TYPED)
}

/// Lines typed for a client that never reads (a few MB), then a new client: it is
/// greeted, its line shows, and the next line typed reaches it promptly.
pub fn non_reader(ctx: &mut Ctx) -> Result<(), Verdict> {
    const LINES: usize = 4000;
    const PROMPT: Duration = Duration::from_secs(5);
    let mut x = Conn::open_with(ctx.log, "X", ctx.addr, CONNECT, Some(4096))?;
    x.send(b"Hi\n")?;
    x.expect(ctx.greeting(), REPLY, false, NO_GREETING)?;
    say(ctx, &mut x, &tag(ctx, "X, who will stop reading, on"))?;
    let first = tag(ctx, "for X on");
    type_line(ctx, &first);
    x.expect(first.as_bytes(), REPLY, false, NOT_TYPED)?;
    let filler: Vec<u8> = (0..LINES)
        .flat_map(|i| format!("{i:06} {}\n", "x".repeat(992)).into_bytes())
        .collect();
    ctx.log.note(
        "stdin",
        format!(
            "typed {LINES} lines of 1000 bytes ({} bytes) for X, which reads none of them",
            filler.len()
        ),
    );
    ctx.server.stdin.type_bytes(filler);
    // Y speaks once the server has read (nearly) all of it: lines still unread then
    // go to Y, the last speaker, and would crowd it out.
    let read = ctx.server.stdin.drained(PROMPT);
    let (written, typed) = ctx.server.stdin.progress();
    ctx.log.note(
        "stdin",
        match read {
            true => format!("all {typed} bytes went into the server's stdin"),
            false => format!(
                "after {PROMPT:?}, {written} of {typed} bytes had gone into the server's stdin"
            ),
        },
    );
    let mut y = ctx.greeted("Y", NON_READER)?;
    say(ctx, &mut y, &tag(ctx, "Y, a new client, on")).map_err(|e| match e {
        Verdict::Fail { message, .. } => fail(message, NON_READER),
        other => other,
    })?;
    let next = tag(ctx, "for Y on");
    type_line(ctx, &next);
    // Lines for X still in the pipe when Y spoke go to Y, the last speaker now.
    ctx.log
        .note("Y", format!("expect {next:?}, skipping lines meant for X"));
    let deadline = Instant::now() + PROMPT;
    let mut skipped = 0usize;
    y.set_quiet(true);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match y.next(left) {
            Reply::Line(l) if l.trim_ascii_end() == next.as_bytes() => {
                ctx.log.note(
                    "Y",
                    format!("got {next:?} after {skipped} lines meant for X"),
                );
                return Ok(());
            }
            Reply::Line(_) => skipped += 1,
            other => {
                let seen = crate::conn::describe(&other, PROMPT);
                ctx.log
                    .note("Y", format!("(after {skipped} lines meant for X)"));
                return Err(fail(
                    format!("Y waited {PROMPT:?} for the line typed for it and {seen}"),
                    CONSOLE_STUCK,
                ));
            }
        }
    }
}

const NO_ID: &str = "the server's stdout does not show which client spoke: print each \
     line as `[ID] text`, so the operator can answer with `@ID text`";

/// Greeted clients that have each said a line, in order (so the last spoke last),
/// with the id the server printed before each: one for server1, two otherwise.
fn speakers<'a>(ctx: &Ctx<'a>) -> Result<Vec<(Conn<'a>, u32)>, Verdict> {
    let names: &[&str] = if ctx.role.single() {
        &["A"]
    } else {
        &["A", "B"]
    };
    let mut all = Vec::new();
    for name in names {
        let mut conn = ctx.greeted(name, NO_GREETING)?;
        let printed = say(ctx, &mut conn, &tag(ctx, &format!("{name} speaking on")))?;
        let Some(id) = bracketed_id(&printed) else {
            return Err(fail(
                format!("{name}'s line was printed as {printed:?}, with no [ID]"),
                NO_ID,
            ));
        };
        ctx.log.note(name, format!("is client {id}"));
        all.push((conn, id));
    }
    Ok(all)
}

/// The number in the first `[N]` of `line`.
fn bracketed_id(line: &str) -> Option<u32> {
    line.split('[')
        .skip(1)
        .find_map(|rest| rest.split_once(']')?.0.trim().parse().ok())
}

const AT_ID: &str = "`@ID text` did not send `text` (alone, as one line) to client ID: \
     parse the id after `@`, send the rest of the line to that client only";

/// `@ID text` reaches that client (not the one who spoke last), and only it.
pub fn at_id(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut clients = speakers(ctx)?;
    // A first, though B spoke last; then B, whose next line must be its own.
    for (conn, id) in &mut clients {
        let line = tag(ctx, &format!("for {} alone on", conn.name()));
        type_line(ctx, &format!("@{id} {line}"));
        conn.expect(line.as_bytes(), REPLY, false, AT_ID)?;
    }
    Ok(())
}

/// `@all text` reaches every client.
pub fn at_all(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut clients = speakers(ctx)?;
    let line = tag(ctx, "for everyone on");
    type_line(ctx, &format!("@all {line}"));
    for (conn, _) in &mut clients {
        conn.expect(
            line.as_bytes(),
            REPLY,
            false,
            "`@all text` did not reach every client: send `text` to each connected client",
        )?;
    }
    Ok(())
}

/// `/list` prints every client, by `[ID]` or by its port.
pub fn list(ctx: &mut Ctx) -> Result<(), Verdict> {
    let clients = speakers(ctx)?;
    let shown: Vec<(String, String)> = clients
        .iter()
        .map(|(conn, id)| {
            let port = conn.stream().local_addr().map(|a| a.port()).unwrap_or(0);
            (format!("[{id}]"), port.to_string())
        })
        .collect();
    let mark = ctx.server.stdout.mark();
    type_line(ctx, "/list");
    ctx.log.note(
        "stdout",
        format!("expect every client, as [ID] or its port: {shown:?}"),
    );
    let listed = ctx.server.stdout.wait_until(mark, REPLY, |text| {
        shown
            .iter()
            .all(|(id, port)| text.contains(id.as_str()) || text.contains(port.as_str()))
    });
    if listed {
        return Ok(());
    }
    let printed = ctx.server.stdout.since(mark);
    ctx.log.note("stdout", format!("printed {printed:?}"));
    Err(fail(
        format!("after /list the stdout showed {printed:?}"),
        "`/list` did not show the connected clients: print one line per client with its \
         `[ID]` (and its address)",
    ))
}

/// `/kick ID` closes that client (an `ERR` line first is fine); the others stay.
pub fn kick(ctx: &mut Ctx) -> Result<(), Verdict> {
    const KICK: &str = "`/kick ID` did not close that client: close its socket (after an \
         `ERR` line if you like) and forget it";
    let mut clients = speakers(ctx)?;
    let (first, id) = &mut clients[0];
    type_line(ctx, &format!("/kick {id}"));
    first.expect_closed_after_err(REPLY, KICK)?;
    if let Some((other, id)) = clients.get_mut(1) {
        let line = tag(ctx, "still here on");
        type_line(ctx, &format!("@{id} {line}"));
        other.expect(
            line.as_bytes(),
            REPLY,
            false,
            "`/kick` closed more than the one client",
        )?;
    } else {
        ctx.greeted_retrying("C", REPLY, "after /kick the next client was not served")?;
    }
    Ok(())
}

/// `/quit` tells each client (an `ERR` line, or a close) and ends the server.
pub fn quit(ctx: &mut Ctx) -> Result<(), Verdict> {
    const QUIT: &str = "`/quit` did not end the server: tell every client `ERR server \
         shutting down`, close them and the listener, and exit";
    let mut clients = speakers(ctx)?;
    type_line(ctx, "/quit");
    for (conn, _) in &mut clients {
        conn.expect_closed_after_err(REPLY, QUIT)?;
    }
    ctx.gone_within(Duration::from_secs(2), QUIT)
}
