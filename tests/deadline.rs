//! The backstops `cli::run` adds for a graceful stop that hangs (SPEC
//! section 3): once shutdown fires the process exits 0 within one second
//! anyway, and a second Ctrl-C exits at once with status 130.
//!
//! A hang needs a server that hangs, so this test binary re-runs itself as
//! one: [`hanging_server`] serves a mode that never returns from the line
//! `hang`, leaving the event loop stuck and unable to stop on its own.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use common::{Client, IO_TIMEOUT, SHUTDOWN_LIMIT, START_TIMEOUT};
use switchboard::mode::{reply, Speaker};
use switchboard::strategy::event_loop;
use switchboard::{Mode, Server};

/// Set when this binary runs as the hanging server.
const CHILD: &str = "SWITCHBOARD_TEST_HANGING_SERVER";

/// Not a check by itself: the hanging server the other tests start, which
/// does nothing unless this binary was re-run with `CHILD` set.
#[test]
fn hanging_server() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let server = Server::new(Hang);
    server
        .shutdown
        .on_trigger(|| eprintln!("shutdown triggered"));
    let address = cli::Address::loopback(0);
    cli::run(&event_loop::MODEL, &address, server).expect("serves");
}

/// Echoes lines, except `hang`, which it never returns from.
struct Hang;

impl Mode for Hang {
    fn on_line(&self, _from: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        if line == "hang" {
            eprintln!("hanging");
            loop {
                std::thread::park();
            }
        }
        reply(out, line);
    }
}

/// The hanging server, started and stuck in `hang`; killed when dropped.
struct Hung {
    child: Child,
    stdin: ChildStdin,
    /// The server's stderr, line by line.
    stderr: Receiver<String>,
    /// The client whose `hang` the server is stuck in, kept connected.
    _client: Option<Client>,
}

impl Hung {
    fn start() -> Hung {
        let mut child = Command::new(std::env::current_exe().expect("test binary path"))
            .args(["hanging_server", "--exact", "--nocapture"])
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hanging server starts");
        let stdout = lines(BufReader::new(child.stdout.take().expect("stdout piped")));
        let stderr = lines(BufReader::new(child.stderr.take().expect("stderr piped")));
        let stdin = child.stdin.take().expect("stdin piped");
        let mut hung = Hung {
            child,
            stdin,
            stderr,
            _client: None,
        };
        // The test harness prints its own lines first.
        let addr: SocketAddr = wait_for(&stdout, START_TIMEOUT, |line| {
            line.strip_prefix("listening on ")?.parse().ok()
        })
        .expect("a `listening on` line");
        let mut client = Client::connect(addr);
        client.greet();
        client.send_line("hang");
        hung.expect_stderr("hanging");
        hung._client = Some(client);
        hung
    }

    fn expect_stderr(&mut self, wanted: &str) {
        wait_for(&self.stderr, IO_TIMEOUT, |line| {
            (line == wanted).then_some(())
        })
        .unwrap_or_else(|| panic!("no stderr line {wanted:?}"));
    }

    fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        common::wait_exit(&mut self.child, deadline)
    }

    #[cfg(unix)]
    fn interrupt(&self) {
        common::signal(self.child.id(), "INT");
    }
}

impl Drop for Hung {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards each line of `pipe` to the returned channel, on a thread.
fn lines(pipe: impl BufRead + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in pipe.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The first line from `lines` within `within` for which `wanted` says `Some`.
fn wait_for<T>(
    lines: &Receiver<String>,
    within: std::time::Duration,
    wanted: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(found) = wanted(&lines.recv_timeout(left).ok()?) {
            return Some(found);
        }
    }
}

/// `/quit` while the server is stuck mid-line still ends it with status 0
/// within one second: the deadline, not the graceful stop, ends it.
#[test]
fn deadline_ends_a_stop_that_hangs() {
    let mut server = Hung::start();
    let started = Instant::now();
    writeln!(server.stdin, "/quit").expect("console input written");
    let status = server.wait_exit(started + SHUTDOWN_LIMIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{status:?} after {:?}",
        started.elapsed()
    );
}

/// A second Ctrl-C ends a hanging stop at once, with status 130.
#[cfg(unix)]
#[test]
fn second_ctrl_c_exits_at_once() {
    let mut server = Hung::start();
    server.interrupt();
    server.expect_stderr("shutdown triggered");
    let started = Instant::now();
    server.interrupt();
    let status = server.wait_exit(started + SHUTDOWN_LIMIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "{status:?} after {:?}",
        started.elapsed()
    );
}
