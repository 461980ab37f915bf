//! What the model promises about other clients (SPEC sections 5 and 8): server1 turns
//! a second client away at once and serves the next; the others serve it meanwhile, and
//! a hundred at once; a reset or a client that never reads harms nobody else.

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use super::{Ctx, REPLY};
use crate::cli::Mode;
use crate::conn::{describe, Conn, Reply};
use crate::outcome::{fail, Verdict};

const NO_GREETING: &str = "the server did not answer `Hi` with the greeting";

/// server1: while A is in session, B gets an `ERR` line, a close or a reset at once.
pub fn turned_away(ctx: &mut Ctx) -> Result<(), Verdict> {
    let _a = ctx.greeted("A", NO_GREETING)?;
    let mut b = ctx.connect("B")?;
    b.send(b"Hi\n")?;
    ctx.log.note("B", "expect an ERR line, a close or a reset");
    match b.next(REPLY) {
        Reply::Line(line) if line.starts_with(b"ERR") => Ok(()),
        Reply::Closed(_) | Reply::Reset => Ok(()),
        Reply::Silent(_) => Err(fail(
            format!("B got nothing within {REPLY:?} while A was in session"),
            "the second client was left hanging in the listen backlog: a single-client \
             server must accept it and answer `ERR busy` (or close it) at once",
        )),
        other => Err(fail(
            format!("B {} while A was in session", describe(&other, REPLY)),
            "a single-client server served a second client at once: turn it away with \
             `ERR busy` while the first is in session",
        )),
    }
}

/// server1: once A has said bye (and gone), the next client is served.
pub fn next_client(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    a.send(b"bye\n")?;
    // How `bye` is answered is `bye`'s to grade: here A just leaves.
    let _ = a.next(REPLY);
    a.close();
    ctx.greeted_retrying(
        "B",
        REPLY,
        "after the first client left, the next one was not served: free the seat when \
         a session ends (bye, or recv() returning nothing), close the finished client's \
         socket and go back to accept()",
    )
    .map(drop)
}

const SERIAL: &str = "the second client waited while the first sat silent: the server serves \
     one client at a time (a blocking recv() in the accept loop, or a thread joined at \
     once); give each client its own thread, or use select()";

/// server2–4: A connects and says nothing; B is served meanwhile, then A too.
pub fn served_meanwhile(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.connect("A")?;
    ctx.greeted("B", SERIAL)?;
    a.send(b"Hi\n")?;
    a.expect(ctx.greeting(), REPLY, ctx.echo(), NO_GREETING)
}

/// Clients opened at once by `many`.
const MANY: usize = 100;

/// server2–4: 100 clients connect, then all say Hi, then all say bye.
pub fn many(ctx: &mut Ctx) -> Result<(), Verdict> {
    const CAUSE: &str = "not every one of 100 simultaneous clients was served: a small \
         listen() backlog, a fixed-size client table, or a limit on threads";
    let quiet = crate::outcome::Log::new();
    let mut conns = Vec::with_capacity(MANY);
    ctx.log
        .note("1..100", "connect 100 clients, then each sends Hi");
    for i in 0..MANY {
        let mut conn = Conn::open(&quiet, &format!("{}", i + 1), ctx.addr, super::CONNECT)
            .map_err(|_| {
                fail(
                    format!("client {} of {MANY} could not connect", i + 1),
                    CAUSE,
                )
            })?;
        conn.send(b"Hi\n")
            .map_err(|_| fail(format!("client {} of {MANY} could not send", i + 1), CAUSE))?;
        conns.push(conn);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for conn in &mut conns {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(REPLY);
        match conn.next(left) {
            Reply::Line(line) if line.trim_ascii_end() == ctx.greeting() => {}
            other => {
                let seen = describe(&other, left);
                ctx.log.note(conn.name(), seen.clone());
                return Err(fail(
                    format!("client {} of {MANY} said Hi and {seen}", conn.name()),
                    CAUSE,
                ));
            }
        }
    }
    ctx.log.note("1..100", "all greeted; each sends bye");
    for conn in &mut conns {
        conn.send(b"bye\n")
            .map_err(|_| fail(format!("client {} could not send bye", conn.name()), CAUSE))?;
    }
    for conn in &mut conns {
        if !matches!(conn.next(REPLY), Reply::Line(l) if l.trim_ascii_end() == b"bye") {
            ctx.log.note(conn.name(), "no bye");
            return Err(fail(format!("client {} got no `bye`", conn.name()), CAUSE));
        }
    }
    ctx.log.note("1..100", "all said bye and got bye");
    Ok(())
}

const RESET: &str = "after a client reset its connection mid-line the server stopped serving \
     the others: an error on one client's socket (ConnectionResetError) must drop that \
     client alone, never end the server";

/// A client resets after half a line; the others (one already connected, where the
/// model allows it, and a new one) are still served.
pub fn reset(ctx: &mut Ctx) -> Result<(), Verdict> {
    let waiting = match ctx.role.single() {
        true => None,
        false => Some(ctx.connect("A")?),
    };
    let mut b = ctx.greeted_retrying("B", REPLY, NO_GREETING)?;
    b.send(b"half a li")?;
    b.reset();
    ctx.after(RESET, |ctx| {
        if let Some(mut a) = waiting {
            a.send(b"Hi\n")?;
            a.expect(ctx.greeting(), REPLY, ctx.echo(), RESET)?;
            a.close();
        }
        ctx.greeted_retrying("C", REPLY, RESET)?;
        ctx.alive(RESET)
    })
}

/// How much a non-reading client pushes at most, and for how long. A server that
/// answers every line must be pushed until its replies back up; a chat server sends
/// no replies to lines after the greeting (they go to its operator), so a little is
/// enough there.
const FLOOD_BYTES: usize = 48 * 1024 * 1024;
const FLOOD_BYTES_CHAT: usize = 256 * 1024;
const FLOOD_TIME: Duration = Duration::from_secs(4);
/// A flood stops once writes have been refused this long: the server stopped reading.
const STALLED: Duration = Duration::from_millis(300);

const STALL: &str = "one client that does not read its replies stalled the others: the \
     server blocks in send()/sendall() to it; use non-blocking sends with a per-client \
     output buffer, and stop reading from a client whose buffer is full";

/// server2–4: X (a small receive buffer) sends lines without reading any reply until
/// the server stops taking them; Y must still be served.
pub fn slow_reader(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut x = Conn::open_with(ctx.log, "X", ctx.addr, super::CONNECT, Some(4096))?;
    x.send(b"Hi\n")?;
    let line = [[b'x'; 1023].as_slice(), b"\n"].concat();
    let limit = match ctx.grading.mode {
        Mode::Chat => FLOOD_BYTES_CHAT,
        _ => FLOOD_BYTES,
    };
    let sent = flood(x.stream(), &line, limit);
    ctx.log.note(
        "X",
        format!("sent {sent} bytes of 1 KiB lines without reading any reply"),
    );
    ctx.greeted("Y", STALL)?;
    ctx.alive(STALL)
}

/// Writes `line` over and over without blocking until the server stops taking it (or
/// the limits are reached); the bytes written.
fn flood(stream: &std::net::TcpStream, line: &[u8], limit: usize) -> usize {
    if stream.set_nonblocking(true).is_err() {
        return 0;
    }
    let (start, mut refused_since, mut sent) = (Instant::now(), None::<Instant>, 0);
    let mut out = stream;
    while sent < limit && start.elapsed() < FLOOD_TIME {
        match out.write(line) {
            Ok(n) => {
                sent += n;
                refused_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *refused_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STALLED {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    sent
}

const NOT_UTF8: &str = "the thread (or loop) that read those bytes died: decode with \
     errors='replace' or catch UnicodeDecodeError, then answer `ERR invalid utf-8` or carry \
     on; never leave the client in silence";

/// Bytes that are not UTF-8: the client gets a line, an `ERR` line or a close (a chat
/// server need not answer), its `bye` is answered or finds the connection closed, and
/// the next client is served.
pub fn not_utf8(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted_retrying("A", REPLY, NO_GREETING)?;
    let mark = ctx.server.stdout.mark();
    if a.send(b"caf\xe9 \xff\xfe not utf-8\n").is_err() {
        return next_served(ctx);
    }
    if ctx.grading.mode == Mode::Chat {
        // No answer is due; `bye` waits until the line has been handled (it shows
        // on stdout, in whatever form), so the two never arrive as one packet.
        ctx.log
            .note("stdout", "expect a line ending in \"not utf-8\"");
        match ctx.server.stdout.wait_for("not utf-8", mark, REPLY) {
            Some(line) => ctx.log.note("stdout", format!("printed {line:?}")),
            None => ctx
                .log
                .note("stdout", format!("no such line within {REPLY:?}")),
        }
    } else {
        ctx.log.note("A", "expect a line, an ERR line or a close");
        match a.next(REPLY) {
            Reply::Line(_) => {}
            Reply::Closed(_) | Reply::Reset => return next_served(ctx),
            Reply::Silent(_) => {
                return Err(fail(
                    format!("A sent bytes that are not UTF-8 and got nothing within {REPLY:?}"),
                    NOT_UTF8,
                ))
            }
        }
    }
    if a.send(b"bye\n").is_err() {
        return next_served(ctx);
    }
    ctx.log
        .note("A", "expect `bye` (lines before it allowed) or a close");
    let deadline = Instant::now() + REPLY;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match a.next(left) {
            Reply::Line(line) if line.trim_ascii_end() == b"bye" => break,
            Reply::Line(_) => {}
            Reply::Closed(_) | Reply::Reset => break,
            Reply::Silent(_) => {
                return Err(fail(
                    format!(
                        "after bytes that are not UTF-8, A said bye and got nothing within \
                         {REPLY:?}"
                    ),
                    NOT_UTF8,
                ))
            }
        }
    }
    a.close();
    next_served(ctx)
}

/// The next client is served (the server did not die of the last one).
fn next_served(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.after(NOT_UTF8, |ctx| {
        ctx.greeted_retrying("B", REPLY, NOT_UTF8)?;
        ctx.alive(NOT_UTF8)
    })
}
