//! Line framing over a byte stream: no I/O, no allocation per line.
//!
//! TCP delivers bytes, not messages: one `recv` may hold half a line or fifty
//! lines. [`LineCodec::decode`] takes whatever arrived, hands every complete
//! line to a callback as a slice of the input (copying nothing), and keeps only
//! the unfinished tail. A connection that has sent nothing, or only whole
//! lines, owns no buffer at all — which is what lets one thread hold ten
//! thousand idle clients cheaply.

use std::ops::ControlFlow;

use memchr::memchr;

/// A tail kept between reads larger than this is freed once the line ends,
/// so one long line does not pin memory for the rest of the connection.
const KEEP_CAPACITY: usize = 4096;

/// A line longer than the limit arrived (or is arriving).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Splits a byte stream into `\n`-terminated lines of bounded length.
#[derive(Debug)]
pub struct LineCodec {
    /// The start of a line whose `\n` has not arrived yet.
    partial: Vec<u8>,
    max_line: usize,
}

impl LineCodec {
    /// A codec accepting lines of at most `max_line` bytes, not counting the
    /// `\n` or `\r\n` that ends them.
    pub fn new(max_line: usize) -> Self {
        LineCodec {
            partial: Vec::new(),
            max_line,
        }
    }

    /// Bytes held for an unfinished line.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds `input` through: calls `on_line` with each complete line (without
    /// its `\n`; a `\r` before it is left for the caller) until it returns
    /// `Break`, and keeps the unfinished rest. After `Break` the remaining input
    /// is dropped: the caller is ending the connection.
    pub fn decode<F>(&mut self, input: &[u8], mut on_line: F) -> Result<(), LineTooLong>
    where
        F: FnMut(&[u8]) -> ControlFlow<()>,
    {
        let mut rest = input;
        if !self.partial.is_empty() {
            let Some(end) = memchr(b'\n', rest) else {
                return self.keep(rest);
            };
            self.partial.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.partial);
            let flow = self.check(&line).map(|()| on_line(&line));
            self.recycle(line);
            if flow? == ControlFlow::Break(()) {
                return Ok(());
            }
        }
        while let Some(end) = memchr(b'\n', rest) {
            let line = &rest[..end];
            self.check(line)?;
            if on_line(line) == ControlFlow::Break(()) {
                return Ok(());
            }
            rest = &rest[end + 1..];
        }
        self.keep(rest)
    }

    /// The peer finished sending: hands over a last line that had no `\n`.
    pub fn finish<F>(&mut self, on_line: F) -> Result<(), LineTooLong>
    where
        F: FnOnce(&[u8]) -> ControlFlow<()>,
    {
        let line = std::mem::take(&mut self.partial);
        if !line.is_empty() {
            self.check(&line)?;
            let _ = on_line(&line);
        }
        Ok(())
    }

    fn keep(&mut self, tail: &[u8]) -> Result<(), LineTooLong> {
        if tail.is_empty() {
            return Ok(());
        }
        // Never buffer more than one line's worth, whatever the peer sends.
        if self.partial.len() + tail.len() > self.max_line + 1 {
            return Err(LineTooLong);
        }
        self.partial.extend_from_slice(tail);
        Ok(())
    }

    fn check(&self, line: &[u8]) -> Result<(), LineTooLong> {
        let len = match line.last() {
            Some(b'\r') => line.len() - 1,
            _ => line.len(),
        };
        if len > self.max_line {
            Err(LineTooLong)
        } else {
            Ok(())
        }
    }

    fn recycle(&mut self, mut line: Vec<u8>) {
        if line.capacity() <= KEEP_CAPACITY {
            line.clear();
            self.partial = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(codec: &mut LineCodec, input: &[u8]) -> Result<Vec<Vec<u8>>, LineTooLong> {
        let mut out = Vec::new();
        codec.decode(input, |line| {
            out.push(line.to_vec());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Many lines in one read come out one by one, and an empty line is a line.
    #[test]
    fn many_lines_in_one_read() {
        let mut codec = LineCodec::new(100);
        let got = lines(&mut codec, b"a\n\nbc\r\n").unwrap();
        assert_eq!(got, vec![b"a".to_vec(), b"".to_vec(), b"bc\r".to_vec()]);
        assert_eq!(codec.buffered(), 0);
    }

    /// A line split over many reads comes out once, whole, when its `\n` arrives.
    #[test]
    fn line_split_across_reads() {
        let mut codec = LineCodec::new(100);
        for byte in b"hello wor" {
            assert!(lines(&mut codec, &[*byte]).unwrap().is_empty());
        }
        assert_eq!(
            lines(&mut codec, b"ld\nnext").unwrap(),
            vec![b"hello world".to_vec()]
        );
        assert_eq!(codec.buffered(), 4);
    }

    /// A multi-byte UTF-8 character cut between two reads is rejoined intact.
    #[test]
    fn multibyte_character_split_across_reads() {
        let mut codec = LineCodec::new(100);
        let text = "né\n".as_bytes();
        assert!(lines(&mut codec, &text[..2]).unwrap().is_empty());
        let got = lines(&mut codec, &text[2..]).unwrap();
        assert_eq!(std::str::from_utf8(&got[0]).unwrap(), "né");
    }

    /// A line exactly at the limit passes, with `\n` or `\r\n`; one byte more fails.
    #[test]
    fn limit_is_exact_and_excludes_line_ending() {
        let at = [b'x'; 8];
        for ending in [&b"\n"[..], b"\r\n"] {
            let mut codec = LineCodec::new(8);
            let input = [&at[..], ending].concat();
            assert_eq!(lines(&mut codec, &input).unwrap().len(), 1);
        }
        let mut codec = LineCodec::new(8);
        assert_eq!(lines(&mut codec, b"123456789\n"), Err(LineTooLong));
    }

    /// An overlong line is refused before its end arrives, so memory stays bounded.
    #[test]
    fn overlong_partial_line_fails_early() {
        let mut codec = LineCodec::new(8);
        assert!(lines(&mut codec, b"12345678\r").unwrap().is_empty());
        assert_eq!(lines(&mut codec, b"9"), Err(LineTooLong));
        let mut codec = LineCodec::new(8);
        assert_eq!(lines(&mut codec, &[b'x'; 1000]), Err(LineTooLong));
    }

    /// `Break` stops decoding at once: later lines are not delivered.
    #[test]
    fn break_stops_decoding() {
        let mut codec = LineCodec::new(100);
        let mut seen = 0;
        codec
            .decode(b"a\nb\nc\n", |_| {
                seen += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(seen, 1);
    }

    /// At end of stream a last line without `\n` is still delivered.
    #[test]
    fn finish_delivers_unterminated_line() {
        let mut codec = LineCodec::new(100);
        assert!(lines(&mut codec, b"2+3").unwrap().is_empty());
        let mut last = None;
        codec
            .finish(|line| {
                last = Some(line.to_vec());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(last.as_deref(), Some(&b"2+3"[..]));
    }

    /// A long line's buffer is released afterwards; a short one's is reused.
    #[test]
    fn long_line_buffer_is_released() {
        let mut codec = LineCodec::new(100_000);
        lines(&mut codec, &[b'x'; 50_000]).unwrap();
        lines(&mut codec, b"\n").unwrap();
        assert_eq!(codec.partial.capacity(), 0);
    }
}
