//! The wire protocol on one connection (SPEC section 4): the greeting, `bye`, framing
//! by line however the bytes arrive, and echo mode's byte-exact echo.

use std::time::Duration;

use super::{Ctx, REPLY};
use crate::outcome::Verdict;

/// The pause between pieces meant to travel as separate packets.
const GAP: Duration = Duration::from_millis(100);

const NO_GREETING: &str = "the server did not answer `Hi` as the protocol says: \
     `Hello` (server4: `Hi` echoed), one line ending in `\\n`";

/// `Hi` gets the greeting.
pub fn greeting(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.greeted("A", NO_GREETING).map(drop)
}

/// `bye` gets `bye`, then the connection is closed; the server keeps running.
pub fn bye(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    say_bye(&mut a)?;
    ctx.greeted_retrying(
        "B",
        REPLY,
        "after one client said bye the server stopped serving: keep accepting new clients",
    )?;
    ctx.alive("the server exited after a client said bye; only that connection should end")
}

/// Sends `bye` and expects `bye`, then the close.
fn say_bye(conn: &mut crate::conn::Conn) -> Result<(), Verdict> {
    conn.send(b"bye\n")?;
    conn.expect(
        b"bye",
        REPLY,
        false,
        "`bye` must be answered with the line `bye`",
    )?;
    conn.expect_closed(
        REPLY,
        "`bye` was answered but the connection was left open: close the client's socket \
         after sending `bye`",
    )
}

const SPLIT: &str = "a line that arrived in two packets was not answered as one line: the \
     server treats each recv() as a whole line; keep the bytes in a buffer and split on `\\n`";

/// `Hi\n` in two packets, then `bye\n` in two.
pub fn split(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.connect("A")?;
    a.send_pieces(&[b"H", b"i\n"], GAP)?;
    a.expect(ctx.greeting(), REPLY, ctx.echo(), SPLIT)?;
    a.send_pieces(&[b"by", b"e\n"], GAP)?;
    a.expect(b"bye", REPLY, false, SPLIT)
}

const SEVERAL: &str = "two lines that arrived in one packet were answered as one: the server \
     frames by recv() size; split on `\\n` instead, and answer every complete line";

/// `Hi\n` and `bye\n` (and, for echo, a line between) in one write.
pub fn several(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.connect("A")?;
    let echo = ctx.echo();
    let packet: &[u8] = if echo {
        b"Hi\nping\nbye\n"
    } else {
        b"Hi\nbye\n"
    };
    a.send(packet)?;
    a.expect(ctx.greeting(), REPLY, echo, SEVERAL)?;
    if echo {
        a.expect(b"ping", REPLY, true, SEVERAL)?;
    }
    // Whether the connection then closes is `bye`'s to grade, not this check's.
    a.expect(b"bye", REPLY, false, SEVERAL)
}

/// `Hi\n` one byte at a time.
pub fn dribble(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.connect("A")?;
    a.send_pieces(&[b"H", b"i", b"\n"], GAP)?;
    a.expect(
        ctx.greeting(),
        REPLY,
        ctx.echo(),
        "a line sent one byte at a time was not answered: keep partial lines until their \
         `\\n` arrives, however small each recv() is",
    )
}

/// Echo returns exactly the bytes it got: binary and invalid UTF-8, a long line,
/// many lines in one write.
pub fn echo_exact(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut a = ctx.greeted("A", NO_GREETING)?;
    let binary: &[u8] = b"\x00\x01 tab\t caf\xc3\xa9 \xff\xfe not utf-8 \x7f\r";
    a.send(&[binary, b"\n"].concat())?;
    a.expect(
        binary,
        REPLY,
        true,
        "the echo changed the bytes: return exactly what arrived (no decode, strip or \
         re-encode; a trailing `\\r` and invalid UTF-8 included)",
    )?;
    let long: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    a.send(&[&long[..], b"\n"].concat())?;
    a.expect(
        &long,
        REPLY,
        true,
        "a 20000-byte line came back cut or changed: the server assumes one recv() holds \
         a whole line; buffer until `\\n`",
    )?;
    let lines: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("line {i:03}").into_bytes())
        .collect();
    let burst: Vec<u8> = lines
        .iter()
        .flat_map(|l| [&l[..], b"\n"].concat())
        .collect();
    a.send(&burst)?;
    for line in &lines {
        a.expect(
            line,
            REPLY,
            true,
            "100 lines sent in one write came back missing or out of order: answer every \
             complete line in the buffer, in order",
        )?;
    }
    Ok(())
}
