//! `client [HOST] [PORT]`: the one client for all four servers.
//!
//! Full duplex: one thread prints the server's lines the moment they arrive
//! (so an operator's message shows up without pressing Enter) while another
//! reads the keyboard. The main thread only decides when the session is over:
//!
//! - you type `bye` or `exit`: sent, and the session ends with the server's `bye`;
//! - you type a `--quit-word`: the session ends here, without telling the server;
//! - your input ends (Ctrl-D, or a file piped in): the sending side is shut, the
//!   server answers what it got, and the session ends when it closes;
//! - the server sends an `ERR ...` line, resets, or vanishes: exit status 1.
//!
//! A greeting still unanswered after 2 s gets one line on stderr (`connected,
//! no answer yet: the server may be busy`), and the client goes on waiting: a
//! thread-pool server keeps the clients it has no worker for in its queue,
//! silent, and a student should know the connection itself worked.

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches, Parser};
use clap_verbosity_flag::{InfoLevel, Verbosity};
use switchboard::console::visible;

/// Typed lines (and the reader's news) waiting for the main thread.
const EVENTS_WAITING: usize = 64;

/// A server line longer than this is printed in pieces of this size, so a
/// server that never sends `\n` cannot make the client hold all it sends.
const LINE_PIECE: u64 = 64 * 1024;

/// How long to wait for the server's `bye` after sending `bye` ourselves.
const BYE_GRACE: Duration = Duration::from_secs(5);

/// How long the greeting may go unanswered before the client says so: a
/// thread-pool server keeps a client it has no worker for waiting, silent.
const GREETING_PATIENCE: Duration = Duration::from_secs(2);

/// Talks to a switchboard server (or any line-based TCP server).
#[derive(Debug, Parser)]
#[command(
    name = "client",
    version,
    override_usage = "client [HOST] [PORT] [OPTIONS]"
)]
struct Args {
    #[command(flatten)]
    address: cli::AddressArgs,
    /// Do not send `Hi` on connecting.
    #[arg(long)]
    no_hello: bool,
    /// A word that ends the session locally, in addition to `bye` and `exit` (repeatable).
    #[arg(long = "quit-word", value_name = "WORD")]
    quit_words: Vec<String>,
    #[command(flatten)]
    verbosity: Verbosity<InfoLevel>,
}

/// What the main thread waits for.
enum Event {
    /// What the user typed, as the bytes came: a line with its `\n`, or a
    /// piece of a longer one, or a last line input ended before its `\n`
    /// (`None`: input ended).
    Typed(Option<Vec<u8>>),
    /// The server's first bytes arrived.
    Answered,
    /// The server closed the connection; `saw_bye` if its last line was `bye`.
    Closed { saw_bye: bool },
    /// The server said `ERR ...`, or the connection failed.
    Failed(String),
}

fn main() -> ExitCode {
    let matches = Args::command()
        .mut_arg("port", |port| {
            port.help("The server's port [default: 5000]")
        })
        .get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let address = args.address.or_exit("client");
    cli::init_logging(&args.verbosity);
    match run(&args, &address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("client: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, address: &cli::Address) -> Result<(), String> {
    let addrs = address.resolve().map_err(|e| e.to_string())?;
    let mut stream =
        TcpStream::connect(&addrs[..]).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = stream.set_nodelay(true);
    tracing::debug!(server = ?stream.peer_addr().ok(), "connected");

    // Bounded: input is read only as fast as the server takes it, so a
    // server that stops reading cannot make the client hold all of stdin.
    let (tx, events) = mpsc::sync_channel(EVENTS_WAITING);
    let reader = stream
        .try_clone()
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    spawn("server-reader", tx.clone(), move |tx| {
        print_server_lines(reader, &tx)
    });
    spawn("keyboard", tx, read_keyboard);

    let send = |stream: &mut TcpStream, line: &[u8]| {
        stream
            .write_all(&[line, b"\n"].concat())
            .map_err(|e| format!("connection lost: {e}"))
    };
    // Until the greeting is answered (or we stop waiting), when to say that
    // the server has not answered yet.
    let mut greeting_due = None;
    if !args.no_hello {
        send(&mut stream, b"Hi")?;
        greeting_due = Some(Instant::now() + GREETING_PATIENCE);
    }
    let mut input_done = false;
    let mut bye_sent = false;
    loop {
        let event = if bye_sent {
            match events.recv_timeout(BYE_GRACE) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => Event::Closed { saw_bye: true },
            }
        } else if let Some(due) = greeting_due {
            match events.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!("connected, no answer yet: the server may be busy");
                    greeting_due = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Event::Closed { saw_bye: false },
            }
        } else {
            events.recv().unwrap_or(Event::Closed { saw_bye: false })
        };
        match event {
            Event::Answered => greeting_due = None,
            Event::Typed(Some(line)) if bye_sent => {
                tracing::debug!("not sent after bye: {}", String::from_utf8_lossy(&line));
            }
            Event::Typed(Some(line)) => {
                // Sent as typed, whatever the bytes (echo is byte-exact).
                let text = String::from_utf8_lossy(&line);
                let word = text.trim();
                if args.quit_words.iter().any(|q| q.eq_ignore_ascii_case(word)) {
                    let _ = stream.shutdown(Shutdown::Both);
                    return Ok(());
                }
                stream
                    .write_all(&line)
                    .map_err(|e| format!("connection lost: {e}"))?;
                bye_sent = word.eq_ignore_ascii_case("bye") || word.eq_ignore_ascii_case("exit");
            }
            Event::Typed(None) => {
                // Half-close: the server still answers what it got, then closes.
                input_done = true;
                let _ = stream.shutdown(Shutdown::Write);
            }
            Event::Closed { saw_bye } if saw_bye || bye_sent || input_done => return Ok(()),
            Event::Closed { .. } => return Err("the server closed the connection".into()),
            Event::Failed(message) => return Err(message),
        }
    }
}

/// Prints each server line as it arrives; reports how the connection ended.
fn print_server_lines(stream: TcpStream, tx: &SyncSender<Event>) {
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    let mut last_was_bye = false;
    let mut answered = false;
    // Whether this piece begins a line (a long line comes in pieces).
    let mut starts_line = true;
    let terminal = io::stdout().is_terminal();
    // The start of a character that a piece's end cut in two: it waits at
    // the front of `line` for the rest, so both halves print as one.
    let mut cut = Vec::new();
    loop {
        line.clear();
        line.append(&mut cut);
        match (&mut lines).take(LINE_PIECE).read_until(b'\n', &mut line) {
            Ok(0) => {
                let _ = tx.send(Event::Closed {
                    saw_bye: last_was_bye,
                });
                return;
            }
            Ok(_) => {
                if !answered {
                    answered = true;
                    let _ = tx.send(Event::Answered);
                }
                let ended = line.last() == Some(&b'\n');
                if !ended {
                    cut = line.split_off(line.len() - unfinished_char(&line));
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                if starts_line && text.starts_with("ERR ") {
                    let text = visible(text); // stderr may be a terminal too
                    let _ = tx.send(Event::Failed(format!("server said: {text}")));
                    return;
                }
                last_was_bye = starts_line && ended && text == "bye";
                // A hostile server's escape sequences are shown, not obeyed.
                let text = match terminal {
                    true => visible(text),
                    false => text.into(),
                };
                let end = if ended { "\n" } else { "" };
                let mut stdout = io::stdout().lock();
                let _ = write!(stdout, "{text}{end}").and_then(|()| stdout.flush());
                starts_line = ended;
            }
            Err(e) => {
                let _ = tx.send(Event::Failed(format!("connection lost: {e}")));
                return;
            }
        }
    }
}

/// How many bytes at the end of `bytes` begin a UTF-8 character whose
/// other bytes have not come yet (0 if none).
fn unfinished_char(bytes: &[u8]) -> usize {
    // The last byte that starts a character (not a continuation byte).
    let is_start = |&i: &usize| bytes[i] & 0xC0 != 0x80;
    let last_start = (bytes.len().saturating_sub(3)..bytes.len())
        .rev()
        .find(is_start);
    match last_start.map(|i| (i, std::str::from_utf8(&bytes[i..]))) {
        Some((i, Err(e))) if e.error_len().is_none() => bytes.len() - i,
        _ => 0,
    }
}

/// Forwards keyboard lines until input ends.
fn read_keyboard(tx: SyncSender<Event>) {
    let mut stdin = io::stdin().lock();
    loop {
        let mut line = Vec::new();
        // A line without end is sent in pieces too, not held whole.
        match (&mut stdin).take(LINE_PIECE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if tx.send(Event::Typed(Some(line))).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Event::Typed(None));
}

fn spawn(name: &str, tx: SyncSender<Event>, body: impl FnOnce(SyncSender<Event>) + Send + 'static) {
    let failed = tx.clone();
    if let Err(e) = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(tx))
    {
        let _ = failed.send(Event::Failed(format!("cannot start a thread: {e}")));
    }
}
