//! Line framing over a byte stream: no I/O, no allocation per line.
//!
//! TCP delivers bytes, not messages: one `recv` may hold half a line or fifty
//! lines. [`LineCodec::decode`] takes whatever arrived, hands every complete
//! line to a callback as a slice of the input (copying nothing), and keeps only
//! the unfinished tail. A connection that has sent nothing, or only whole
//! lines, owns no buffer at all — which is what lets one thread hold ten
//! thousand idle clients cheaply.
//!
//! The callback may also ask to [`Halt::Pause`]: when replies pile up faster
//! than the client takes them, the rest of the input waits here (one read's
//! worth at most, since the caller stops reading) until [`LineCodec::resume`].

use std::ops::ControlFlow;

use memchr::memchr;
use wide::u8x16;

/// A tail kept between reads larger than this is freed once the line ends,
/// so one long line does not pin memory for the rest of the connection.
const KEEP_TAIL_CAPACITY: usize = 4096;

/// A line longer than the limit arrived (or is arriving).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Why a line callback stops the decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// Keep the remaining input for later: the consumer has enough for now.
    Pause,
    /// Drop the remaining input: the connection is ending.
    Close,
}

/// Splits a byte stream into `\n`-terminated lines of bounded length.
///
/// The bound is the caller's to give at each call (the server's
/// `--max-line`): the codec keeps only what the client sent, so that ten
/// thousand idle connections do not each store the same number.
#[derive(Debug, Default)]
pub struct LineCodec {
    /// Input not yet handed out: the start of a line whose `\n` has not
    /// arrived, or — after a pause — whole lines waiting their turn.
    pending: Vec<u8>,
    /// After a pause: where in `pending` the waiting input starts. Each
    /// resume moves only this offset, so lines that wait many turns are not
    /// copied again at each one.
    backlog: Option<usize>,
}

impl LineCodec {
    /// A codec holding nothing yet.
    pub fn new() -> Self {
        LineCodec::default()
    }

    /// Whether a pause left complete lines waiting for [`LineCodec::resume`].
    pub fn has_backlog(&self) -> bool {
        self.backlog.is_some()
    }

    /// Feeds `input` through: calls `on_line` with each complete line (without
    /// its `\n`; a `\r` before it is left for the caller, and not counted
    /// toward `max_line`) until it halts, and
    /// keeps what is left as [`Halt`] says. Lines a pause left waiting come
    /// first, then `input`'s; the caller normally [resumes](Self::resume)
    /// them before it reads more, so the backlog stays one read's worth.
    pub fn decode<F>(
        &mut self,
        input: &[u8],
        max_line: usize,
        mut on_line: F,
    ) -> Result<(), LineTooLong>
    where
        F: FnMut(&[u8]) -> ControlFlow<Halt>,
    {
        if let Some(from) = self.backlog.take() {
            return self.decode_backlog(from, input, max_line, &mut on_line);
        }
        let mut input = input;
        if !self.pending.is_empty() {
            // Finish the line an earlier read began; only it is copied.
            let Some(len) = memchr(b'\n', input) else {
                check_partial(self.pending.len() + input.len(), max_line)?;
                self.pending.extend_from_slice(input);
                return Ok(());
            };
            self.pending.extend_from_slice(&input[..len]);
            input = &input[len + 1..];
            let line = std::mem::take(&mut self.pending);
            check(&line, max_line)?;
            let flow = on_line(&line);
            if line.capacity() <= KEEP_TAIL_CAPACITY {
                self.pending = line; // reuse the allocation for the next tail
                self.pending.clear();
            }
            if let ControlFlow::Break(halt) = flow {
                return self.keep(input, max_line, Some(halt));
            }
        }
        // The fast path: lines are slices of `input`, nothing is copied.
        let (used, halt) = split(input, max_line, &mut on_line)?;
        self.keep(&input[used..], max_line, halt)
    }

    /// Hands out the lines a pause left waiting in `pending[from..]`, then
    /// `input`'s (normally none: the caller resumes before it reads more).
    fn decode_backlog<F>(
        &mut self,
        from: usize,
        input: &[u8],
        max_line: usize,
        on_line: &mut F,
    ) -> Result<(), LineTooLong>
    where
        F: FnMut(&[u8]) -> ControlFlow<Halt>,
    {
        let mut waiting = std::mem::take(&mut self.pending);
        waiting.extend_from_slice(input);
        let (used, halt) = split(&waiting[from..], max_line, on_line)?;
        let from = from + used;
        if halt == Some(Halt::Pause) && from < waiting.len() {
            self.backlog = Some(from);
            self.pending = waiting;
            return Ok(());
        }
        if halt == Some(Halt::Close) {
            return Ok(());
        }
        // What is left is the start of a line: moved to the front, once.
        waiting.drain(..from);
        waiting.shrink_to(KEEP_TAIL_CAPACITY);
        self.pending = waiting;
        check_partial(self.pending.len(), max_line)
    }

    /// With nothing held from earlier input, the length of the longest
    /// start of `input` made of complete lines (`\n` included) that are
    /// within the limit and that `take` accepts; the codec is left as it
    /// was, so those bytes are simply not fed to it. 0 if anything is held.
    pub fn whole_lines(
        &self,
        input: &[u8],
        max_line: usize,
        mut take: impl FnMut(&[u8]) -> bool,
    ) -> usize {
        if !self.pending.is_empty() || self.backlog.is_some() {
            return 0;
        }
        let mut used = 0;
        for end in Newlines::of(input) {
            let line = &input[used..end];
            if check(line, max_line).is_err() || !take(line) {
                break;
            }
            used = end + 1;
        }
        used
    }

    /// Carries on after a [`Halt::Pause`], with the lines left waiting.
    pub fn resume<F>(&mut self, max_line: usize, on_line: F) -> Result<(), LineTooLong>
    where
        F: FnMut(&[u8]) -> ControlFlow<Halt>,
    {
        self.decode(&[], max_line, on_line)
    }

    /// The peer finished sending: hands over a last line that had no `\n`.
    /// Call after the backlog is resumed.
    pub fn finish<F>(&mut self, max_line: usize, on_line: F) -> Result<(), LineTooLong>
    where
        F: FnOnce(&[u8]) -> ControlFlow<Halt>,
    {
        let line = std::mem::take(&mut self.pending);
        if !line.is_empty() {
            check(&line, max_line)?;
            let _ = on_line(&line);
        }
        Ok(())
    }

    /// Keeps `rest` of the input for later, as `halt` says: all of it after a
    /// pause, nothing once the connection is closing, and otherwise the
    /// start of a line (if not already over the limit).
    fn keep(
        &mut self,
        rest: &[u8],
        max_line: usize,
        halt: Option<Halt>,
    ) -> Result<(), LineTooLong> {
        if rest.is_empty() || halt == Some(Halt::Close) {
            return Ok(());
        }
        if halt.is_none() {
            check_partial(rest.len(), max_line)?;
        }
        if halt == Some(Halt::Pause) {
            self.backlog = Some(self.pending.len());
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }
}

/// Hands out the complete lines of `bytes`; returns how many bytes were
/// used and whether the callback halted.
fn split<F>(
    bytes: &[u8],
    max_line: usize,
    on_line: &mut F,
) -> Result<(usize, Option<Halt>), LineTooLong>
where
    F: FnMut(&[u8]) -> ControlFlow<Halt>,
{
    let mut used = 0;
    for end in Newlines::of(bytes) {
        let line = &bytes[used..end];
        check(line, max_line)?;
        used = end + 1;
        if let ControlFlow::Break(halt) = on_line(line) {
            return Ok((used, Some(halt)));
        }
    }
    Ok((used, None))
}

/// The position of every `\n` in a byte string, in order.
///
/// Short lines come many to a read (a pipelining client sends 32 in one
/// write), and a search per line would pay a vectorised search's setup per
/// line. Instead 64 bytes at a time are compared with `\n` in four 16-byte
/// vectors, giving one bit per byte, and each line's end is then a
/// `trailing_zeros`. A block with no `\n` in it is the middle of a long
/// line: `memchr` crosses the rest of it faster than blocks would.
struct Newlines<'a> {
    bytes: &'a [u8],
    /// Where the block `found` describes begins.
    base: usize,
    /// Bit `i` set: `bytes[base + i]` is a `\n` not handed out yet.
    found: u64,
    /// Where the next block begins.
    next: usize,
}

impl<'a> Newlines<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        Newlines {
            bytes,
            base: 0,
            found: 0,
            next: 0,
        }
    }

    /// The `\n`s among the 64 bytes from `at` (fewer at the end).
    fn block(&self, at: usize) -> u64 {
        let rest = &self.bytes[at..];
        if let Some(block) = rest.first_chunk::<64>() {
            return newline_bits(block);
        }
        match self.bytes.last_chunk::<64>() {
            // The last 64 bytes, less those already seen: nothing to copy.
            Some(last) => newline_bits(last) >> (64 - rest.len()),
            None => {
                let mut block = [0; 64];
                block[..rest.len()].copy_from_slice(rest);
                newline_bits(&block)
            }
        }
    }
}

impl Iterator for Newlines<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.found == 0 {
            let mut at = self.next;
            if at >= self.bytes.len() {
                return None;
            }
            let mut found = self.block(at);
            if found == 0 {
                // The next block starts at the `\n` found, so that lines of
                // one length keep their ends in view, a block apart.
                let after = (at + 64).min(self.bytes.len());
                at = after + memchr(b'\n', &self.bytes[after..])?;
                found = self.block(at);
            }
            (self.base, self.found, self.next) = (at, found, at + 64);
        }
        let bit = self.found.trailing_zeros() as usize;
        self.found &= self.found - 1;
        Some(self.base + bit)
    }
}

/// Bit `i` set where `block[i]` is `\n`: SSE2's compare and move-mask on
/// x86-64, NEON on ARM, plain code elsewhere (`wide` picks).
fn newline_bits(block: &[u8; 64]) -> u64 {
    let newline = u8x16::splat(b'\n');
    block
        .chunks_exact(16)
        .enumerate()
        .fold(0, |bits, (i, lane)| {
            // Always 16 bytes: `chunks_exact` says so, and the 0 is never used.
            let lane = <[u8; 16]>::try_from(lane).map_or(0, |lane| {
                u8x16::new(lane).cmp_eq(newline).move_mask() as u16
            });
            bits | u64::from(lane) << (16 * i)
        })
}

/// Never buffer more than one line's worth, whatever the peer sends
/// (`+ 1`: a `\r` may still be followed by its `\n`).
fn check_partial(len: usize, max_line: usize) -> Result<(), LineTooLong> {
    if len > max_line + 1 {
        Err(LineTooLong)
    } else {
        Ok(())
    }
}

fn check(line: &[u8], max_line: usize) -> Result<(), LineTooLong> {
    let len = match line.last() {
        Some(b'\r') => line.len() - 1,
        _ => line.len(),
    };
    if len > max_line {
        Err(LineTooLong)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(codec: &mut LineCodec, max: usize, input: &[u8]) -> Result<Vec<Vec<u8>>, LineTooLong> {
        let mut out = Vec::new();
        codec.decode(input, max, |line| {
            out.push(line.to_vec());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// The block scan finds exactly the `\n`s a plain search finds: at block
    /// edges, at the end, next to each other, after long stretches of none.
    #[test]
    fn newlines_are_found_where_they_are() {
        use proptest::prelude::*;
        let bytes = prop::collection::vec(
            prop_oneof![3 => Just(b'\n'), 1 => any::<u8>(), 8 => Just(b'x')],
            0..400,
        );
        let runs = (1usize..200, 0usize..5)
            .prop_map(|(len, count)| [vec![b'x'; len], b"\n".to_vec()].concat().repeat(count));
        proptest!(|(bytes in prop_oneof![bytes, runs])| {
            let plain: Vec<usize> = memchr::memchr_iter(b'\n', &bytes).collect();
            prop_assert_eq!(Newlines::of(&bytes).collect::<Vec<_>>(), plain);
        });
    }

    /// Many lines in one read come out one by one, and an empty line is a line.
    #[test]
    fn many_lines_in_one_read() {
        let (mut codec, max) = (LineCodec::new(), 100);
        let got = lines(&mut codec, max, b"a\n\nbc\r\n").unwrap();
        assert_eq!(got, vec![b"a".to_vec(), b"".to_vec(), b"bc\r".to_vec()]);
        assert_eq!(codec.pending.len(), 0);
    }

    /// A line split over many reads comes out once, whole, when its `\n` arrives.
    #[test]
    fn line_split_across_reads() {
        let (mut codec, max) = (LineCodec::new(), 100);
        for byte in b"hello wor" {
            assert!(lines(&mut codec, max, &[*byte]).unwrap().is_empty());
        }
        assert_eq!(
            lines(&mut codec, max, b"ld\nnext").unwrap(),
            vec![b"hello world".to_vec()]
        );
        assert_eq!(codec.pending.len(), 4);
    }

    /// A multi-byte UTF-8 character cut between two reads is rejoined intact.
    #[test]
    fn multibyte_character_split_across_reads() {
        let (mut codec, max) = (LineCodec::new(), 100);
        let text = "né\n".as_bytes();
        assert!(lines(&mut codec, max, &text[..2]).unwrap().is_empty());
        let got = lines(&mut codec, max, &text[2..]).unwrap();
        assert_eq!(std::str::from_utf8(&got[0]).unwrap(), "né");
    }

    /// A line exactly at the limit passes, with `\n` or `\r\n`; one byte more fails.
    #[test]
    fn limit_is_exact_and_excludes_line_ending() {
        let at = [b'x'; 8];
        for ending in [&b"\n"[..], b"\r\n"] {
            let (mut codec, max) = (LineCodec::new(), 8);
            let input = [&at[..], ending].concat();
            assert_eq!(lines(&mut codec, max, &input).unwrap().len(), 1);
        }
        let (mut codec, max) = (LineCodec::new(), 8);
        assert_eq!(lines(&mut codec, max, b"123456789\n"), Err(LineTooLong));
    }

    /// An overlong line is refused before its end arrives, so memory stays bounded.
    #[test]
    fn overlong_partial_line_fails_early() {
        let (mut codec, max) = (LineCodec::new(), 8);
        assert!(lines(&mut codec, max, b"12345678\r").unwrap().is_empty());
        assert_eq!(lines(&mut codec, max, b"9"), Err(LineTooLong));
        let (mut codec, max) = (LineCodec::new(), 8);
        assert_eq!(lines(&mut codec, max, &[b'x'; 1000]), Err(LineTooLong));
    }

    /// `Break` stops decoding at once: later lines are not delivered.
    #[test]
    fn break_stops_decoding() {
        let (mut codec, max) = (LineCodec::new(), 100);
        let mut seen = 0;
        codec
            .decode(b"a\nb\nc\n", max, |_| {
                seen += 1;
                ControlFlow::Break(Halt::Close)
            })
            .unwrap();
        assert_eq!(seen, 1);
    }

    /// At end of stream a last line without `\n` is still delivered.
    #[test]
    fn finish_delivers_unterminated_line() {
        let (mut codec, max) = (LineCodec::new(), 100);
        assert!(lines(&mut codec, max, b"2+3").unwrap().is_empty());
        let mut last = None;
        codec
            .finish(max, |line| {
                last = Some(line.to_vec());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(last.as_deref(), Some(&b"2+3"[..]));
    }

    /// A long line's buffer is released afterwards; a short one's is reused.
    #[test]
    fn long_line_buffer_is_released() {
        let (mut codec, max) = (LineCodec::new(), 100_000);
        lines(&mut codec, max, &[b'x'; 50_000]).unwrap();
        lines(&mut codec, max, b"\n").unwrap();
        assert_eq!(codec.pending.capacity(), 0);
    }

    /// A pause keeps the rest of the input, lines included, until resumed;
    /// nothing is lost or reordered.
    #[test]
    fn pause_keeps_lines_for_resume() {
        let (mut codec, max) = (LineCodec::new(), 100);
        let mut seen = Vec::new();
        codec
            .decode(b"a\nb\nc\npart", max, |line| {
                seen.push(line.to_vec());
                ControlFlow::Break(Halt::Pause)
            })
            .unwrap();
        assert_eq!(seen, [b"a".to_vec()]);
        assert!(codec.has_backlog());
        while codec.has_backlog() {
            codec
                .resume(max, |line| {
                    seen.push(line.to_vec());
                    ControlFlow::Break(Halt::Pause)
                })
                .unwrap();
        }
        assert_eq!(
            lines(&mut codec, max, b"ial\n").unwrap(),
            [b"partial".to_vec()]
        );
        assert_eq!(seen, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    /// Input that arrives while lines wait (a caller that reads before it
    /// resumes) joins the queue behind them: order is kept, and the line it
    /// finishes comes out whole.
    #[test]
    fn input_during_backlog_queues_behind_it() {
        let (mut codec, max) = (LineCodec::new(), 100);
        let mut seen = Vec::new();
        let mut one = |line: &[u8]| {
            seen.push(line.to_vec());
            ControlFlow::Break(Halt::Pause)
        };
        codec.decode(b"a\nb\nc", max, &mut one).unwrap();
        codec.decode(b"d\ne\n", max, &mut one).unwrap();
        while codec.has_backlog() {
            codec.resume(max, &mut one).unwrap();
        }
        assert_eq!(seen, [&b"a"[..], b"b", b"cd", b"e"]);
        assert!(codec.pending.is_empty());
    }
}
