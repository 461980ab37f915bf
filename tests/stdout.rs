//! A stdout nobody reads (a pipe not drained, a terminal paused with Ctrl-S)
//! never stalls a server: other clients are still served while chat lines
//! pile up unread, and every stop path still exits 0 within one second (SPEC
//! sections 3 and 5).

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{in_parallel, models, multi, Client, SHUTDOWN_LIMIT, START_TIMEOUT};

/// Chat lines the first client sends: about 420 KB of `[1] ...` on stdout,
/// well past a pipe's buffer.
const CHAT_LINES: usize = 4000;

/// A chat-mode server whose stdout is read up to its `listening on` line and
/// then left unread; killed when dropped.
struct StuckServer {
    name: &'static str,
    addr: SocketAddr,
    child: Child,
    stdin: ChildStdin,
    /// Held open and unread, so the server's writes to it fill the pipe.
    stdout: Option<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl StuckServer {
    fn start(name: &'static str) -> StuckServer {
        let mut child = common::command(name)
            .args(["127.0.0.1", "0", "--mode", "chat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        // Read the first line a byte at a time, so nothing after it is taken
        // out of the pipe; on a thread, so a silent server cannot hang us.
        let mut out_pipe = child.stdout.take().expect("stdout piped");
        let (tx, first) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0];
            while !line.ends_with(b"\n") && matches!(out_pipe.read(&mut byte), Ok(1)) {
                line.push(byte[0]);
            }
            let _ = tx.send((String::from_utf8_lossy(&line).into_owned(), out_pipe));
        });
        let stdin = child.stdin.take().expect("stdin piped");
        let mut server = StuckServer {
            name,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            stdin,
            stdout: None,
            stderr,
        };
        let (line, out_pipe) = first.recv_timeout(START_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "{name}: no `listening on` line ({e:?}); stderr:\n{}",
                server.stderr_text()
            )
        });
        server.addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: first stdout line is {line:?}"));
        server.stdout = Some(out_pipe);
        server
    }

    /// Has a client send more chat lines than stdout's pipe holds; returns the
    /// client, still connected.
    fn flood(&self) -> Client {
        let mut chatty = Client::connect(self.addr);
        chatty.greet();
        let mut burst = String::new();
        for i in 0..CHAT_LINES {
            burst.push_str(&format!("{i:04} {}\n", "x".repeat(95)));
        }
        chatty.send(burst.as_bytes());
        chatty
    }

    fn console(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").expect("console input written");
    }

    fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        common::wait_exit(&mut self.child, deadline)
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

impl Drop for StuckServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr_text();
        if !std::thread::panicking() && stderr.contains("panicked") {
            panic!("{} panicked; stderr:\n{stderr}", self.name);
        }
    }
}

/// How the test stops the server.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Quit,
    #[cfg_attr(not(unix), allow(dead_code))]
    Term,
}

/// With stdout full and unread, `/quit` (or SIGTERM) still ends the server
/// with status 0 within one second.
#[test]
fn unread_stdout_cannot_stop_a_shutdown() {
    let mut stops = vec![Stop::Quit];
    if cfg!(unix) {
        stops.push(Stop::Term);
    }
    let cases: Vec<(&'static str, Stop)> = models()
        .iter()
        .flat_map(|name| stops.iter().map(move |how| (*name, *how)))
        .collect();
    in_parallel(&cases, |&(name, how)| {
        let mut server = StuckServer::start(name);
        let _chatty = server.flood();
        let started = Instant::now();
        match how {
            Stop::Quit => server.console("/quit"),
            #[cfg(unix)]
            Stop::Term => {
                common::signal(server.child.id(), "TERM");
            }
            #[cfg(not(unix))]
            Stop::Term => unreachable!("signals are only sent on unix"),
        }
        let status = server.wait_exit(started + SHUTDOWN_LIMIT);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{name} after {how:?}: {status:?} after {:?}; stderr:\n{}",
            started.elapsed(),
            server.stderr_text()
        );
    });
}

/// With stdout stuck and one client's chat lines piling up unread, every
/// model that serves many still answers another client at once: the
/// console's stdout has a writer of its own.
#[test]
fn unread_stdout_stalls_no_model() {
    in_parallel(&multi(), |&name| {
        let server = StuckServer::start(name);
        let _chatty = server.flood();
        let mut other = Client::connect(server.addr);
        other.greet();
        other.ask("bye", "bye");
    });
}
