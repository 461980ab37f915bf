//! What every server test shares: start a real server binary on port 0, talk to
//! it over loopback, and make sure nothing can hang or outlive the test.
//!
//! - [`Server`] spawns a binary, reads its `listening on IP:PORT` line with a
//!   deadline, keeps draining stdout (into a channel) and stderr (into a buffer) so
//!   the server never blocks on a full pipe, and kills the process on drop — then
//!   fails the test if the server printed a panic.
//! - [`Client`] is a connection with read and write timeouts and line helpers.
//! - [`in_parallel`] runs one case per strategy on its own thread, so slow cases
//!   (timeouts, shutdowns) overlap instead of adding up.
#![allow(dead_code)] // each test file uses its own subset of these helpers

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every socket operation in the tests gives up after this long, so a server
/// that stops answering fails the test instead of hanging CI.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a server may take to print its `listening on` line (debug build,
/// busy machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// SPEC section 3: every shutdown path ends the process within one second.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);

/// The coursework's four binaries: each is one model with its mode fixed.
pub const COURSEWORK: [&str; 4] = ["server1", "server2", "server3", "server4"];
/// The single-client model: the one that turns a second client away.
pub const SINGLE: &str = "single-client";

/// Every model in the library's one list that can run here, by name: the
/// behaviour suite runs over each (started as `server --model NAME`), so none
/// can be left out. One this system cannot run (io-uring off Linux, or where
/// a sandbox forbids it) is named on stderr and skipped; its refusal is
/// tested on its own. Where io-uring runs, its single-shot receive path (a
/// kernel without multishot receive) runs too, as [`IO_URING_SINGLE_SHOT`].
pub fn models() -> Vec<&'static str> {
    let mut names = listed_models();
    if names.contains(&"io-uring") {
        names.push(IO_URING_SINGLE_SHOT);
    }
    names
}

/// The models of the library's one list that can run here, by name.
pub fn listed_models() -> Vec<&'static str> {
    let models = switchboard::strategy::MODELS.iter();
    models
        .filter(|m| match m.strategy.check() {
            Ok(()) => true,
            Err(e) => {
                eprintln!("skipped here: {e}");
                false
            }
        })
        .map(|m| m.name)
        .collect()
}

/// `server --model io-uring` held to its single-shot receive path.
pub const IO_URING_SINGLE_SHOT: &str = "io-uring-single-shot";

/// The models that serve many clients at once.
pub fn multi() -> Vec<&'static str> {
    models().into_iter().filter(|m| *m != SINGLE).collect()
}

/// Every mode in the library's one list.
pub fn modes() -> Vec<&'static str> {
    switchboard::mode::MODES.iter().map(|m| m.name).collect()
}

/// The modes that check UTF-8 and answer `Hi` with `Hello` (all but the
/// byte-exact ones, such as echo).
pub fn text_modes() -> Vec<&'static str> {
    let modes = switchboard::mode::MODES.iter();
    modes
        .filter(|m| !(m.build)().is_raw())
        .map(|m| m.name)
        .collect()
}

/// The path of a binary of this package.
pub fn bin(name: &str) -> &'static str {
    match name {
        "server" => env!("CARGO_BIN_EXE_server"),
        "server1" => env!("CARGO_BIN_EXE_server1"),
        "server2" => env!("CARGO_BIN_EXE_server2"),
        "server3" => env!("CARGO_BIN_EXE_server3"),
        "server4" => env!("CARGO_BIN_EXE_server4"),
        "client" => env!("CARGO_BIN_EXE_client"),
        "check" => env!("CARGO_BIN_EXE_check"),
        _ => panic!("no binary named {name}"),
    }
}

/// Workers for the models that have them, in the shared suite: enough that
/// a pool serves every client of a test at once, as the suite expects of a
/// server that serves many. The pool's waiting is tested on its own.
pub const WORKERS: &str = "16";

/// The command that runs `name`: a binary of this package, or a model of the
/// library's list as `server --model NAME --workers 16`.
pub fn command(name: &str) -> Command {
    if name == IO_URING_SINGLE_SHOT || switchboard::strategy::find(name).is_some() {
        let mut command = Command::new(bin("server"));
        model_args(&mut command, name, WORKERS);
        command
    } else {
        Command::new(bin(name))
    }
}

/// Adds `--model NAME --workers N` to a command that runs `server`, and for
/// [`IO_URING_SINGLE_SHOT`] the environment that holds io-uring to that path.
pub fn model_args(command: &mut Command, name: &str, workers: &str) {
    let model = if name == IO_URING_SINGLE_SHOT {
        command.env(switchboard::strategy::io_uring::SINGLE_SHOT_ENV, "1");
        "io-uring"
    } else {
        name
    };
    command.args(["--model", model, "--workers", workers]);
}

/// A one-line question whose answer proves a server in `mode` is serving, and
/// that answer: the mode's own example. Chat answers nothing by itself, so
/// it has none.
pub fn probe(mode: &str) -> Option<(&'static str, &'static str)> {
    switchboard::mode::find(mode).and_then(|m| m.example)
}

/// Runs `case` once per item, each on its own named thread, and fails listing
/// every item whose case panicked (the panics themselves are printed too).
pub fn in_parallel<T: Sync + std::fmt::Debug>(items: &[T], case: impl Fn(&T) + Sync) {
    let failed: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| {
                let case = &case;
                std::thread::Builder::new()
                    .name(format!("{item:?}"))
                    .spawn_scoped(scope, move || case(item))
                    .expect("test thread starts")
            })
            .collect();
        items
            .iter()
            .zip(handles)
            .filter_map(|(item, h)| h.join().is_err().then(|| format!("{item:?}")))
            .collect()
    });
    assert!(failed.is_empty(), "failed cases: {}", failed.join(", "));
}

/// Retries `attempt` every few milliseconds until it returns `Some` or `within`
/// has passed (the sleep paces a bounded retry; it is not synchronisation).
pub fn retry<T>(within: Duration, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `child` exits or `deadline` passes; its exit status, if it did.
/// Polls against the deadline: a bound, not a handshake.
pub fn wait_exit(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    retry(deadline.saturating_duration_since(Instant::now()), || {
        child.try_wait().expect("try_wait works")
    })
}

/// Runs a binary to completion (for `--help`, usage errors, bind failures),
/// killing it and failing the test if it runs longer than `limit`.
pub fn run(name: &str, args: &[&str], limit: Duration) -> Output {
    let mut child = command(name)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    // Drain both pipes while waiting, so a chatty process cannot block on them.
    let out = drain(child.stdout.take().expect("stdout piped"));
    let err = drain(child.stderr.take().expect("stderr piped"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait works") {
            break status;
        }
        if Instant::now() >= deadline {
            // SIGTERM first: `check` and `compare` then stop the servers
            // they started (in process groups of their own, which a SIGKILL
            // of theirs would leave running after the test).
            #[cfg(unix)]
            {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let _ = wait_exit(&mut child, Instant::now() + SHUTDOWN_LIMIT * 2);
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// How the server's stdin is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// A pipe the test writes operator commands into.
    Piped,
    /// `/dev/null`: end of input at once, as under CI.
    Null,
}

/// A running server binary, killed when dropped.
pub struct Server {
    /// The binary's name (`server3`).
    pub name: &'static str,
    /// The address from its `listening on` line.
    pub addr: SocketAddr,
    /// That first stdout line, exactly as printed.
    pub listening: String,
    child: Child,
    stdin: Option<ChildStdin>,
    /// stdout lines after `listening on`, as they arrive.
    stdout: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Disconnects when the stderr reader has seen end of file.
    stderr_done: Receiver<()>,
}

impl Server {
    /// Starts `name 127.0.0.1 0 ARGS...` with a piped stdin (the console).
    pub fn start(name: &'static str, args: &[&str]) -> Server {
        Server::start_on(name, "127.0.0.1", args, Stdin::Piped)
    }

    /// Starts `name HOST 0 ARGS...` with the given stdin: `name` is a
    /// model (run as `server --model NAME`) or a coursework binary.
    pub fn start_on(name: &'static str, host: &str, args: &[&str], stdin: Stdin) -> Server {
        let mut command = command(name);
        command.arg(host).arg("0").args(args);
        Server::spawn(name, command, stdin)
    }

    /// Starts a prepared command (which must end up running server `name`) and
    /// waits for its `listening on` line.
    pub fn spawn(name: &'static str, mut command: Command, stdin: Stdin) -> Server {
        command
            .stdin(match stdin {
                Stdin::Piped => Stdio::piped(),
                Stdin::Null => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("server binary starts");

        let (err_done_tx, stderr_done) = mpsc::channel::<()>();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let _done = err_done_tx;
            let mut chunk = [0; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut chunk) {
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });

        let (tx, stdout) = mpsc::channel();
        let mut out_pipe = BufReader::new(child.stdout.take().expect("stdout piped"));
        std::thread::spawn(move || {
            let mut line = Vec::new();
            while matches!(out_pipe.read_until(b'\n', &mut line), Ok(1..)) {
                let text = String::from_utf8_lossy(&line);
                let _ = tx.send(text.trim_end_matches(['\r', '\n']).to_owned());
                line.clear();
            }
        });

        let stdin = child.stdin.take();
        let mut server = Server {
            name,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            listening: String::new(),
            child,
            stdin,
            stdout,
            stderr,
            stderr_done,
        };
        let first = match server.stdout.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!(
                "{name}: no `listening on` line ({e:?}); stderr:\n{}",
                server.stderr_text()
            ),
        };
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: first stdout line is {first:?}"));
        server.addr = addr;
        server.listening = first;
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection to the server.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Types one line at the operator console.
    pub fn console(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("console input written");
    }

    /// Closes the console's input (end of file on the server's stdin).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line, if one arrives within `within`.
    pub fn stdout_line(&self, within: Duration) -> Option<String> {
        self.stdout.recv_timeout(within).ok()
    }

    /// Reads stdout until a line satisfies `wanted`, within [`IO_TIMEOUT`];
    /// returns it. Lines before it are skipped (and shown if none matches).
    pub fn stdout_until(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(line) => skipped.push(line),
                Err(e) => panic!(
                    "{}: no stdout line {what} ({e:?}); saw {skipped:?}; stderr:\n{}",
                    self.name,
                    self.stderr_text()
                ),
            }
        }
    }

    /// Reads stdout until the line `wanted` appears.
    pub fn expect_stdout(&self, wanted: &str) {
        self.stdout_until(&format!("{wanted:?}"), |line| line == wanted);
    }

    /// The stdout lines not yet read, up to the end of the stream: call once
    /// the process has exited.
    pub fn stdout_rest(&self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(IO_TIMEOUT) {
            rest.push(line);
        }
        rest
    }

    /// Everything the server has written to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the server wrote to stderr, once it has exited: waits (at
    /// most 2 s) for the reader to see end of file, so the last lines are in.
    pub fn stderr_at_exit(&self) -> String {
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(2));
        self.stderr_text()
    }

    /// Waits until the process exits or `deadline` passes.
    pub fn wait_exit(&mut self, deadline: Instant) -> Option<ExitStatus> {
        wait_exit(&mut self.child, deadline)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait works").is_none()
    }

    /// Sends a signal by name (`TERM`, `INT`) with the `kill` command.
    #[cfg(unix)]
    pub fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    /// The server's thread count (Linux: `/proc/PID/status`); `None` elsewhere.
    pub fn threads(&self) -> Option<u64> {
        proc_status(self.pid(), "Threads:")
    }

    /// The server's resident memory in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status(self.pid(), "VmRSS:")
    }

    /// CPU time the server has used, in clock ticks (Linux only).
    pub fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the `(comm)`, which may itself hold spaces: utime and
        // stime are fields 14 and 15 of the whole line, 12 and 13 after it.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    /// Asserts the server stays up and (on Linux) nearly idle for `window`:
    /// a server spinning on end of input or on a failing `accept` would not.
    pub fn assert_idle_for(&mut self, window: Duration) {
        let before = self.cpu_ticks();
        let deadline = Instant::now() + window;
        assert!(
            self.wait_exit(deadline).is_none(),
            "{} exited while it should keep serving; stderr:\n{}",
            self.name,
            self.stderr_text()
        );
        if let (Some(before), Some(after)) = (before, self.cpu_ticks()) {
            // Ticks are usually 10 ms; an idle server uses almost none, a
            // spinning one about one per tick of wall time.
            let window_ticks = window.as_millis() as u64 / 10;
            assert!(
                after - before < window_ticks / 2,
                "{} used {} ticks of CPU in {window:?} while idle",
                self.name,
                after - before
            );
        }
    }
}

impl Drop for Server {
    /// Kills the process, and fails the test if the server ever printed a panic.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr_at_exit();
        if !std::thread::panicking() && stderr.contains("panicked") {
            panic!("{} panicked; stderr:\n{stderr}", self.name);
        }
    }
}

/// A number from a `/proc/PID/status` line such as `Threads:\t3`.
fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// One client connection with read and write timeouts.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `addr`; fails the test if that is impossible.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Connects to `addr` with [`IO_TIMEOUT`] on every operation.
    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// The underlying socket (for options, `try_clone`, addresses).
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send to server");
    }

    /// Sends one line, adding `\n`.
    pub fn send_line(&mut self, text: &str) {
        self.send(format!("{text}\n").as_bytes());
    }

    /// The next line's raw bytes, `\n` included; empty at end of stream.
    pub fn read_raw_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        Ok(line)
    }

    /// The next line as text, without its `\n`; fails the test at end of
    /// stream, on an error or after [`IO_TIMEOUT`].
    pub fn line(&mut self) -> String {
        let raw = self.read_raw_line().expect("reply within the timeout");
        assert!(raw.ends_with(b"\n"), "connection ended; got {raw:?}");
        String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned()
    }

    /// Asserts the next line is exactly `wanted`.
    pub fn expect(&mut self, wanted: &str) {
        assert_eq!(self.line(), wanted);
    }

    /// Sends `text` as a line and asserts the reply is `wanted`.
    pub fn ask(&mut self, text: &str, wanted: &str) {
        self.send_line(text);
        self.expect(wanted);
    }

    /// `Hi` → `Hello`, as every text mode greets.
    pub fn greet(&mut self) {
        self.ask("Hi", "Hello");
    }

    /// Asserts the server closes the connection next, sending nothing more.
    /// A reset counts as closed: the server may close with our bytes unread.
    pub fn expect_closed(&mut self) {
        match self.read_raw_line() {
            Ok(rest) if rest.is_empty() => {}
            Ok(rest) => panic!(
                "expected the server to close; got {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => panic!("expected the server to close; got {e}"),
        }
    }

    /// Asserts the next line is exactly `wanted` and then the server closes.
    pub fn expect_last(&mut self, wanted: &str) {
        self.expect(wanted);
        self.expect_closed();
    }

    /// Shuts down our sending side (half-close).
    pub fn half_close(&self) {
        self.stream().shutdown(Shutdown::Write).expect("half-close");
    }

    /// Drops the connection with a reset (`SO_LINGER` 0) instead of a FIN.
    pub fn reset(self) {
        socket2::SockRef::from(self.stream())
            .set_linger(Some(Duration::ZERO))
            .expect("set SO_LINGER 0");
    }
}

/// Every (server, mode) pair of `servers` and `modes`.
pub fn matrix(
    servers: &[&'static str],
    modes: &[&'static str],
) -> Vec<(&'static str, &'static str)> {
    servers
        .iter()
        .flat_map(|s| modes.iter().map(move |m| (*s, *m)))
        .collect()
}

/// Starts `server` in `mode` with `extra` options.
pub fn start(server: &'static str, mode: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--mode", mode];
    args.extend_from_slice(extra);
    Server::start(server, &args)
}

/// Sends signal `name` (`TERM`, `INT`) to process `pid` with `kill` (unix).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}
