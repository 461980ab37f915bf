//! The protocol every connection speaks, as a state machine without I/O.
//!
//! A strategy hands a [`Session`] the bytes it read and gets back the bytes to
//! write and whether to close. Everything the wire protocol says — framing,
//! `Hi`/`Hello`, `bye`/`exit`, the limits, the `ERR` lines — happens here,
//! once, for every concurrency model; the [`Mode`] decides what a line means.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::codec::{Halt, LineCodec, LineTooLong};
use crate::mode::{Mode, Operator, Speaker};
use crate::protocol::{ClientId, Goodbye, Limits};

/// Replies waiting for a client past which the session stops answering until
/// they are sent: a client that sends much and reads nothing cannot make the
/// server buffer without bound, whatever one line's reply weighs (one short
/// `calc` line can ask for a thousand digits).
pub const OUTPUT_LIMIT: usize = 256 * 1024;

/// How long one call may spend answering lines of a text mode before the
/// rest of the input waits its turn (as after [`OUTPUT_LIMIT`]): an event
/// loop then serves its other clients between this client's lines, however
/// many it sent at once. A raw mode (echo) needs no clock: its work is
/// copying, which the output limit already bounds. What no budget can split
/// is one line that itself takes long.
pub const TURN_BUDGET: Duration = Duration::from_millis(1);

/// What the strategy should do after feeding a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep the connection; write whatever was produced.
    Continue,
    /// Write whatever was produced, then close the connection.
    Close,
}

/// One client's protocol state: only what this client has said, so that an
/// idle connection costs little. What every client shares — the mode, the
/// registry, the limits — is the server's, handed in at each call.
pub struct Session {
    codec: LineCodec,
    lines: LineHandler,
}

/// The part of a session that sees whole lines (split from the codec so the
/// codec can lend out slices of its input while this part is borrowed).
struct LineHandler {
    id: ClientId,
    first_line: bool,
}

/// What a session needs of the server it runs in, handed in at each call:
/// the mode, the line limit, and the operator a mode may show lines to.
/// Nothing else of the server — its clients, its models, its stop signal —
/// is within a session's reach, so a session is built and tested alone.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    mode: &'a dyn Mode,
    operator: &'a dyn Operator,
    max_line: usize,
    /// Read once per call rather than once per line.
    raw: bool,
}

impl<'a> Context<'a> {
    /// Lines answered by `mode`, held to `limits.max_line`, with `operator`
    /// for a mode that shows lines to the operator (chat).
    pub fn new(mode: &'a dyn Mode, limits: &Limits, operator: &'a dyn Operator) -> Self {
        Context {
            mode,
            operator,
            max_line: limits.max_line,
            raw: mode.is_raw(),
        }
    }
}

impl Session {
    /// A new session for client `id`.
    pub fn new(id: ClientId) -> Self {
        Session {
            codec: LineCodec::new(),
            lines: LineHandler {
                id,
                first_line: true,
            },
        }
    }

    /// The client this session belongs to.
    pub fn id(&self) -> ClientId {
        self.lines.id
    }

    /// Handles bytes received from the client, appending replies to `out`:
    /// lines are answered by the context's mode and held to its line limit.
    ///
    /// Once `out` holds [`OUTPUT_LIMIT`] bytes, or text lines have taken
    /// [`TURN_BUDGET`], the rest of the input waits: send `out`, then call
    /// [`Session::resume`] while [`Session::has_backlog`], before reading
    /// from the client again.
    pub fn on_bytes(&mut self, context: &Context<'_>, input: &[u8], out: &mut Vec<u8>) -> Flow {
        if input.is_empty() && !self.has_backlog() {
            // Nothing new and nothing waiting: what a read passed through
            // whole leaves, once per read.
            return Flow::Continue;
        }
        let mut flow = Flow::Continue;
        // When this call began answering text lines (read at its first).
        let mut began = None;
        let framed = self.codec.decode(input, context.max_line, |line| {
            let step = self.lines.handle(context, line, true, out, &mut began);
            if step == ControlFlow::Break(Halt::Close) {
                flow = Flow::Close;
            }
            step
        });
        Self::refuse_if_too_long(framed, out, flow)
    }

    /// For a mode that answers each line with itself (echo): how much of the
    /// start of `input` is its own answer — whole lines within the limit,
    /// none of them `bye` or `exit`, with nothing held from earlier input.
    /// The caller sends `input[..n]` back as it is, without copying it, and
    /// hands only `input[n..]` to [`Session::on_bytes`]. 0 in other modes.
    pub fn passes_through(&mut self, context: &Context<'_>, input: &[u8]) -> usize {
        if !context.mode.echoes_lines() {
            return 0;
        }
        let max_line = context.max_line;
        let n = self
            .codec
            .whole_lines(input, max_line, |line| !is_goodbye(line));
        if n > 0 {
            self.lines.first_line = false;
        }
        n
    }

    /// Whether input is waiting because replies piled up (see [`OUTPUT_LIMIT`]).
    pub fn has_backlog(&self) -> bool {
        self.codec.has_backlog()
    }

    /// Answers input that waited for replies to be sent.
    pub fn resume(&mut self, context: &Context<'_>, out: &mut Vec<u8>) -> Flow {
        self.on_bytes(context, &[], out)
    }

    /// The client stopped sending (half-close or EOF): answers a last line
    /// that had no `\n`, and the connection is then closed.
    pub fn on_eof(&mut self, context: &Context<'_>, out: &mut Vec<u8>) -> Flow {
        let framed = self.codec.finish(context.max_line, |line| {
            self.lines.handle(context, line, false, out, &mut None)
        });
        Self::refuse_if_too_long(framed, out, Flow::Close)
    }

    fn refuse_if_too_long(framed: Result<(), LineTooLong>, out: &mut Vec<u8>, flow: Flow) -> Flow {
        match framed {
            Ok(()) => flow,
            Err(LineTooLong) => {
                out.extend_from_slice(Goodbye::LineTooLong.line().as_bytes());
                Flow::Close
            }
        }
    }
}

impl LineHandler {
    /// Answers one line; `ended` is false for a last line without `\n`.
    /// `began` is when this call began answering text lines (set at the
    /// first), for [`TURN_BUDGET`].
    fn handle(
        &mut self,
        context: &Context<'_>,
        line: &[u8],
        ended: bool,
        out: &mut Vec<u8>,
        began: &mut Option<Instant>,
    ) -> ControlFlow<Halt> {
        let first_line = std::mem::replace(&mut self.first_line, false);
        if is_goodbye(line) {
            out.extend_from_slice(b"bye\n");
            return ControlFlow::Break(Halt::Close);
        }
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        let from = Speaker {
            id: self.id,
            operator: context.operator,
        };
        if context.raw {
            answer(self.id, out, |out| {
                context.mode.on_raw_line(from, line, ended, out)
            })?;
        } else if let Ok(text) = std::str::from_utf8(text) {
            let began = *began.get_or_insert_with(Instant::now);
            if first_line && text.trim_ascii().eq_ignore_ascii_case("hi") {
                out.extend_from_slice(b"Hello\n");
            } else {
                answer(self.id, out, |out| context.mode.on_line(from, text, out))?;
            }
            if began.elapsed() >= TURN_BUDGET {
                return ControlFlow::Break(Halt::Pause);
            }
        } else {
            out.extend_from_slice(Goodbye::InvalidUtf8.line().as_bytes());
            return ControlFlow::Break(Halt::Close);
        }
        if out.len() >= OUTPUT_LIMIT {
            ControlFlow::Break(Halt::Pause)
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Runs a mode on one line. A fault in it (a panic: a bug) stays with this
/// conversation: whatever half-reply it left is taken back, the client gets
/// `ERR internal error` and is closed, the fault is logged once, and the
/// server and every other client go on. The fault is caught here, around
/// the one call that runs someone else's code, not around a model's loop:
/// every model gets the same containment without knowing of it.
fn answer(id: ClientId, out: &mut Vec<u8>, mode: impl FnOnce(&mut Vec<u8>)) -> ControlFlow<Halt> {
    let before = out.len();
    let run = std::panic::AssertUnwindSafe(|| mode(&mut *out));
    match std::panic::catch_unwind(run) {
        Ok(()) => ControlFlow::Continue(()),
        Err(fault) => {
            let why = fault
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| fault.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            tracing::error!(client = %id, "answering a line failed ({why}); client closed");
            out.truncate(before);
            out.extend_from_slice(Goodbye::Internal.line().as_bytes());
            ControlFlow::Break(Halt::Close)
        }
    }
}

/// `bye` or `exit`, in any case, spaces and a `\r` around it allowed: the
/// line that ends a session, in every mode.
#[inline]
fn is_goodbye(line: &[u8]) -> bool {
    let word = line.trim_ascii();
    word.eq_ignore_ascii_case(b"bye") || word.eq_ignore_ascii_case(b"exit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::{Echo, NoOperator, Reverse};

    /// A session with what it runs in: a mode, a line limit, no operator.
    struct Served {
        mode: Box<dyn Mode>,
        limits: Limits,
        session: Session,
    }

    impl Served {
        fn on_bytes(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
            let context = Context::new(&*self.mode, &self.limits, &NoOperator);
            self.session.on_bytes(&context, input, out)
        }
        fn on_eof(&mut self, out: &mut Vec<u8>) -> Flow {
            let context = Context::new(&*self.mode, &self.limits, &NoOperator);
            self.session.on_eof(&context, out)
        }
        fn resume(&mut self, out: &mut Vec<u8>) -> Flow {
            let context = Context::new(&*self.mode, &self.limits, &NoOperator);
            self.session.resume(&context, out)
        }
        fn has_backlog(&self) -> bool {
            self.session.has_backlog()
        }
    }

    fn session(mode: impl Mode + 'static, max_line: usize) -> Served {
        let limits = Limits {
            max_line,
            ..Limits::default()
        };
        let session = Session::new(ClientId(1));
        Served {
            mode: Box::new(mode),
            limits,
            session,
        }
    }

    fn feed(s: &mut Served, input: &[u8]) -> (String, Flow) {
        let mut out = Vec::new();
        let flow = s.on_bytes(input, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), flow)
    }

    /// A first `Hi` in any case gets `Hello`; later lines go to the mode.
    #[test]
    fn greeting_then_mode() {
        let mut s = session(Reverse, 100);
        assert_eq!(feed(&mut s, b"hI\r\nabc\nhi\n").0, "Hello\ncba\nih\n");
    }

    /// `bye` and `exit` in any case, with `\r\n`, end the session with `bye`.
    #[test]
    fn bye_and_exit_close() {
        for word in [&b"bye\n"[..], b"EXIT\r\n", b"  Bye \n"] {
            let mut s = session(Reverse, 100);
            assert_eq!(feed(&mut s, word), ("bye\n".into(), Flow::Close));
        }
    }

    /// Lines after `bye` in the same read are not answered.
    #[test]
    fn nothing_after_bye() {
        let mut s = session(Reverse, 100);
        assert_eq!(
            feed(&mut s, b"ab\nbye\ncd\n"),
            ("ba\nbye\n".into(), Flow::Close)
        );
    }

    /// Echo returns exact bytes (`\r`, invalid UTF-8, `Hi`) but still obeys `bye`.
    #[test]
    fn echo_is_byte_exact() {
        let mut s = session(Echo, 100);
        let input = b"Hi\r\n\xff\xfe\n\n";
        assert_eq!(
            feed(&mut s, input).0.as_bytes(),
            String::from_utf8_lossy(input).as_bytes()
        );
        let mut out = Vec::new();
        s.on_bytes(b"\xff\r\n", &mut out);
        assert_eq!(out, b"\xff\r\n");
        assert_eq!(feed(&mut s, b"bye\r\n"), ("bye\n".into(), Flow::Close));
    }

    /// A text mode answers invalid UTF-8 with `ERR invalid utf-8` and closes.
    #[test]
    fn invalid_utf8_refused() {
        let mut s = session(Reverse, 100);
        assert_eq!(
            feed(&mut s, b"ok\n\xc3\x28\n"),
            ("ko\nERR invalid utf-8\n".into(), Flow::Close)
        );
    }

    /// A line over the limit gets `ERR line too long`; one at the limit does not.
    #[test]
    fn line_limit() {
        let mut s = session(Echo, 4);
        assert_eq!(
            feed(&mut s, b"abcd\r\n"),
            ("abcd\r\n".into(), Flow::Continue)
        );
        assert_eq!(
            feed(&mut s, b"abcde\n"),
            ("ERR line too long\n".into(), Flow::Close)
        );
    }

    /// An empty line is a line: echo sends an empty line back.
    #[test]
    fn empty_line_is_answered() {
        let mut s = session(Echo, 4);
        assert_eq!(feed(&mut s, b"\n"), ("\n".into(), Flow::Continue));
    }

    /// At end of input a last unterminated line is still answered.
    #[test]
    fn eof_answers_last_line() {
        let mut s = session(Reverse, 100);
        assert_eq!(feed(&mut s, b"abc").0, "");
        let mut out = Vec::new();
        assert_eq!(s.on_eof(&mut out), Flow::Close);
        assert_eq!(out, b"cba\n");
    }

    /// Echo gives back the bytes it got: a last line without `\n` comes back
    /// without one, `\r` included. `bye` is a command, not echoed, so its
    /// answer is the usual line.
    #[test]
    fn echo_at_eof_is_byte_exact() {
        let mut s = session(Echo, 100);
        assert_eq!(feed(&mut s, b"one\ntwo\r").0, "one\n");
        let mut out = Vec::new();
        assert_eq!(s.on_eof(&mut out), Flow::Close);
        assert_eq!(out, b"two\r");

        let mut s = session(Echo, 100);
        assert_eq!(feed(&mut s, b"bye").0, "");
        let mut out = Vec::new();
        s.on_eof(&mut out);
        assert_eq!(out, b"bye\n");
    }

    /// A raw mode is told whether the line ended; one that answers with a
    /// line of its own keeps that line whole at the end of input.
    #[test]
    fn raw_modes_learn_whether_the_line_ended() {
        struct Length;
        impl Mode for Length {
            fn on_line(&self, _: Speaker<'_>, _: &str, _: &mut Vec<u8>) {}
            fn is_raw(&self) -> bool {
                true
            }
            fn on_raw_line(&self, _: Speaker<'_>, line: &[u8], ended: bool, out: &mut Vec<u8>) {
                out.extend_from_slice(format!("{} {ended}\n", line.len()).as_bytes());
            }
        }
        let mut s = session(Length, 100);
        assert_eq!(feed(&mut s, b"abc\nde").0, "3 true\n");
        let mut out = Vec::new();
        s.on_eof(&mut out);
        assert_eq!(out, b"2 false\n");
    }

    /// A mode that panics on a line ends that conversation with
    /// `ERR internal error`, its half-written reply taken back; the replies
    /// before it stand, and the session is closed.
    #[test]
    fn a_panicking_mode_closes_only_its_conversation() {
        struct Fragile;
        impl Mode for Fragile {
            fn on_line(&self, _: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
                out.extend_from_slice(b"half");
                assert_ne!(line, "boom", "a bug in the mode");
                out.extend_from_slice(b" done\n");
            }
        }
        let mut s = session(Fragile, 100);
        assert_eq!(
            feed(&mut s, b"ok\nboom\nnever\n"),
            ("half done\nERR internal error\n".into(), Flow::Close)
        );
    }

    /// Replies past the output limit pause the session; resuming answers the
    /// rest in order, so memory stays bounded and nothing is lost.
    #[test]
    fn output_limit_pauses_and_resume_continues() {
        let mut s = session(Echo, 100_000);
        let line = vec![b'x'; 50_000];
        let input: Vec<u8> = (0..20).flat_map(|_| [&line[..], b"\n"].concat()).collect();
        let mut out = Vec::new();
        let mut total = 0;
        assert_eq!(s.on_bytes(&input, &mut out), Flow::Continue);
        while s.has_backlog() {
            assert!(out.len() < OUTPUT_LIMIT + line.len() + 1);
            total += out.len();
            out.clear();
            s.resume(&mut out);
        }
        total += out.len();
        assert_eq!(total, input.len());
    }
}
