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

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use clap::Parser;
use clap_verbosity_flag::{InfoLevel, Verbosity};

/// How long to wait for the server's `bye` after sending `bye` ourselves.
const BYE_GRACE: Duration = Duration::from_secs(5);

/// Talks to a switchboard server (or any line-based TCP server).
#[derive(Debug, Parser)]
#[command(name = "client", version)]
struct Args {
    /// Server to connect to: a name, an IPv4 or an IPv6 literal.
    #[arg(default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(default_value_t = 5000)]
    port: u16,
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
    /// A line typed by the user (`None`: input ended).
    Typed(Option<String>),
    /// The server closed the connection; `saw_bye` if its last line was `bye`.
    Closed { saw_bye: bool },
    /// The server said `ERR ...`, or the connection failed.
    Failed(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging(&args.verbosity);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("client: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let addrs = switchboard::net::resolve(&args.host, args.port).map_err(|e| e.to_string())?;
    let mut stream = TcpStream::connect(&addrs[..])
        .map_err(|e| format!("cannot connect to {}:{}: {e}", args.host, args.port))?;
    let _ = stream.set_nodelay(true);
    tracing::debug!(server = ?stream.peer_addr().ok(), "connected");

    let (tx, events) = mpsc::channel();
    let reader = stream
        .try_clone()
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    spawn("server-reader", tx.clone(), move |tx| {
        print_server_lines(reader, &tx)
    });
    spawn("keyboard", tx, read_keyboard);

    let send = |stream: &mut TcpStream, line: &str| {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("connection lost: {e}"))
    };
    if !args.no_hello {
        send(&mut stream, "Hi")?;
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
        } else {
            events.recv().unwrap_or(Event::Closed { saw_bye: false })
        };
        match event {
            Event::Typed(Some(line)) if bye_sent => tracing::debug!("not sent after bye: {line}"),
            Event::Typed(Some(line)) => {
                let word = line.trim();
                if args.quit_words.iter().any(|q| q.eq_ignore_ascii_case(word)) {
                    let _ = stream.shutdown(Shutdown::Both);
                    return Ok(());
                }
                send(&mut stream, &line)?;
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
fn print_server_lines(stream: TcpStream, tx: &Sender<Event>) {
    let mut lines = BufReader::new(stream);
    let mut line = Vec::new();
    let mut last_was_bye = false;
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) => {
                let _ = tx.send(Event::Closed {
                    saw_bye: last_was_bye,
                });
                return;
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                if text.starts_with("ERR ") {
                    let _ = tx.send(Event::Failed(format!("server said: {text}")));
                    return;
                }
                last_was_bye = text == "bye";
                let mut stdout = io::stdout().lock();
                let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
            }
            Err(e) => {
                let _ = tx.send(Event::Failed(format!("connection lost: {e}")));
                return;
            }
        }
    }
}

/// Forwards keyboard lines until input ends.
fn read_keyboard(tx: Sender<Event>) {
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if tx.send(Event::Typed(Some(line))).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::Typed(None));
}

fn spawn(name: &str, tx: Sender<Event>, body: impl FnOnce(Sender<Event>) + Send + 'static) {
    let failed = tx.clone();
    if let Err(e) = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || body(tx))
    {
        let _ = failed.send(Event::Failed(format!("cannot start a thread: {e}")));
    }
}
