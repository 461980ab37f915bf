//! The `client` binary against real servers: what it prints, what it sends,
//! and its exit status (SPEC sections 2 and 3).

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{bin, Client, Server, IO_TIMEOUT};

/// A running `client`, killed when dropped; its stdout arrives line by line.
struct ClientProcess {
    child: Child,
    stdout: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl ClientProcess {
    fn start(server: &Server, args: &[&str]) -> ClientProcess {
        let mut child = Command::new(bin("client"))
            .arg(server.addr.ip().to_string())
            .arg(server.addr.port().to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client starts");
        let (tx, stdout) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().expect("stdout piped"));
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().expect("stderr piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        ClientProcess {
            child,
            stdout,
            stderr,
        }
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin piped");
        writeln!(stdin, "{line}").expect("client reads its stdin");
    }

    fn end_input(&mut self) {
        drop(self.child.stdin.take());
    }

    fn expect_line(&self, wanted: &str) {
        match self.stdout.recv_timeout(IO_TIMEOUT) {
            Ok(line) => assert_eq!(line, wanted),
            Err(e) => panic!("client printed nothing ({e:?}); wanted {wanted:?}"),
        }
    }

    /// Ends the input, then waits for the exit (see [`ClientProcess::wait`]).
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        self.end_input();
        self.wait()
    }

    /// Waits for the exit; returns the status, the rest of stdout and stderr.
    fn wait(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + IO_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait works") {
                break status;
            }
            assert!(Instant::now() < deadline, "client still running");
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader thread may still hold lines from the pipe: read to its end.
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(IO_TIMEOUT) {
            rest.push(line);
        }
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status, rest, stderr.join().unwrap_or_default())
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The coursework session: automatic `Hi`, answers printed, `bye` ends it with status 0.
#[test]
fn hi_then_bye_exits_zero() {
    let server = Server::start("server3", &["--mode", "calc"]);
    let mut client = ClientProcess::start(&server, &[]);
    client.expect_line("Hello");
    client.type_line("2+3*4");
    client.expect_line("14");
    client.type_line("bye");
    client.expect_line("bye");
    let (status, _, stderr) = client.finish();
    assert!(status.success(), "status {status}, stderr {stderr}");
    assert_eq!(stderr, "");
}

/// With `--no-hello` nothing is sent first; end of input still gets every answer.
#[test]
fn no_hello_and_end_of_input() {
    let server = Server::start("server2", &["--mode", "reverse"]);
    let mut client = ClientProcess::start(&server, &["--no-hello"]);
    client.type_line("abc");
    client.type_line("hi");
    let (status, mut lines, stderr) = {
        client.expect_line("cba");
        client.finish()
    };
    lines.retain(|l| !l.is_empty());
    assert!(status.success(), "status {status}, stderr {stderr}");
    // `hi` was not the first line, so it is reversed rather than greeted.
    assert_eq!(lines, ["ih"]);
}

/// An operator's message is printed while the user is not typing anything.
#[test]
fn operator_message_arrives_without_input() {
    let mut server = Server::start("server3", &[]);
    let mut client = ClientProcess::start(&server, &[]);
    client.expect_line("Hello");
    server.console("@1 hello from the operator");
    client.expect_line("hello from the operator");
    client.type_line("exit");
    client.expect_line("bye");
    let (status, _, _) = client.finish();
    assert!(status.success());
}

/// A `--quit-word` ends the session locally: status 0, and the word is never sent.
#[test]
fn quit_word_ends_locally() {
    let server = Server::start("server3", &[]);
    let mut client = ClientProcess::start(&server, &["--quit-word", "shishir"]);
    client.expect_line("Hello");
    client.type_line("first");
    server.expect_stdout("[1] first");
    client.type_line("ShiShir");
    let (status, _, stderr) = client.finish();
    assert!(status.success(), "status {status}, stderr {stderr}");
    // The server saw the connection end without the quit word.
    let gone = common::retry(IO_TIMEOUT, || {
        server.stderr_text().contains("disconnected").then_some(())
    });
    assert!(gone.is_some(), "the server never saw the client go");
    let rest: Vec<String> = std::iter::from_fn(|| server.stdout_line(Duration::ZERO)).collect();
    assert!(!rest.iter().any(|l| l.contains("hishir")), "sent: {rest:?}");
}

/// `ERR busy` from server1 is one stderr line and status 1.
#[test]
fn err_from_server_exits_one() {
    let server = Server::start("server1", &["--mode", "calc"]);
    let mut first = Client::connect(server.addr);
    first.greet();
    let client = ClientProcess::start(&server, &[]);
    let (status, _, stderr) = client.finish();
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains("ERR busy"), "stderr: {stderr}");
}

/// Nothing listening: one clear stderr line naming the address, status 1.
#[test]
fn refused_connection_exits_one() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed again: nothing listens there now
    let out = common::run("client", &["127.0.0.1", &port.to_string()], IO_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "stderr: {stderr}"
    );
}

/// The server going away mid-session (`/quit`) is an error for the client.
#[test]
fn server_shutdown_exits_one() {
    let mut server = Server::start("server2", &[]);
    let client = ClientProcess::start(&server, &[]);
    client.expect_line("Hello");
    server.console("/quit");
    // Input stays open: ending it would race the goodbye with a half-close.
    let (status, _, stderr) = client.wait();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("ERR server shutting down"),
        "stderr: {stderr}"
    );
}

/// Input that is not UTF-8 is sent as it is, and so is everything after it
/// (echo is byte-exact; the client used to stop at the first such line).
#[test]
fn non_utf8_input_is_sent_as_it_is() {
    let mut server = Server::start("server4", &[]);
    let mut client = ClientProcess::start(&server, &["--no-hello"]);
    let stdin = client.child.stdin.as_mut().expect("stdin piped");
    stdin
        .write_all(b"a\nb\xff\xfe\nc\nbye\n")
        .expect("client reads its stdin");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "status {status}, stderr {stderr}");
    assert_eq!(lines, ["a", "b\u{fffd}\u{fffd}", "c", "bye"], "{stderr}");
    server.close_stdin();
}

/// A server line longer than the client's 64 KiB piece is printed in pieces,
/// and a character that a piece's end cuts in two is printed whole, not as
/// two replacement characters.
#[test]
fn a_long_line_is_printed_whole_across_pieces() {
    let mut server = Server::start("server4", &["--max-line", "200000"]);
    let mut client = ClientProcess::start(&server, &["--no-hello"]);
    // "x" first, so a piece of 65,536 bytes ends inside an "é".
    let line = format!("x{}", "é".repeat(40_000));
    client.type_line(&line);
    client.type_line("bye");
    let (status, lines, stderr) = client.finish();
    assert!(status.success(), "status {status}, stderr {stderr}");
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0] == line,
        "the long line came back changed ({} bytes)",
        lines[0].len()
    );
    server.close_stdin();
}

/// A host that is a number or numeric shorthand is refused with one line and
/// status 2, before anything is looked up or connected: `127.1` is loopback
/// to a resolver, yet the listener held at 127.0.0.1:PORT sees no connection.
#[test]
fn numeric_hosts_are_refused_without_connecting() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    held.set_nonblocking(true).expect("nonblocking");
    let port = held.local_addr().expect("addr").port().to_string();
    for host in ["127.1", "0x7f.1", "2130706433", "0177.0.0.1"] {
        let out = common::run("client", &[host, &port], IO_TIMEOUT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{host}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{host}: {stderr}");
        assert!(
            stderr.starts_with(&format!("client: `{host}` is not a host")),
            "{host}: {stderr}"
        );
        // The client has exited: a connection it made would be queued.
        match held.accept() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("{host}: the client connected: {other:?}"),
        }
    }
}

/// A child process killed when dropped, so a failed assertion leaves none behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A number typed alone is the port on 127.0.0.1: `client PORT` reaches the
/// listener there.
#[test]
fn a_port_typed_alone_connects_to_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Never start a client that would take the port for a host and leave
    // this machine: the parsing it uses must agree first.
    let parsed = cli::parse_address(Some(&port.to_string()), None);
    assert_eq!(parsed, Ok(cli::Address::loopback(port)));
    listener.set_nonblocking(true).expect("nonblocking");
    let mut client = Running(
        Command::new(bin("client"))
            .args([&port.to_string(), "--no-hello"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("client starts"),
    );
    let accepted = common::retry(IO_TIMEOUT, || listener.accept().ok());
    let (mut conn, _) = accepted.expect("the client connects to 127.0.0.1:PORT");
    // Its input is empty: it half-closes at once, and ends when we close.
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut sent = Vec::new();
    conn.read_to_end(&mut sent).expect("the client half-closes");
    assert_eq!(sent, b"");
    drop(conn);
    let status = common::wait_exit(&mut client.0, Instant::now() + IO_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// A greeting still unanswered after 2 s gets one line on stderr, and the
/// client goes on waiting: the late answer is printed, and it ends as usual.
#[test]
fn an_unanswered_greeting_is_reported_after_two_seconds() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let started = Instant::now();
    let mut client = Running(
        Command::new(bin("client"))
            .args([addr.ip().to_string(), addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("client starts"),
    );
    let (mut conn, _) = listener.accept().expect("the client connects");
    conn.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut hi = [0; 3];
    conn.read_exact(&mut hi).expect("the client says Hi");
    assert_eq!(&hi, b"Hi\n");

    let (tx, stderr_lines) = mpsc::channel();
    let err = BufReader::new(client.0.stderr.take().expect("stderr piped"));
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = stderr_lines.recv_timeout(IO_TIMEOUT);
    let waited = started.elapsed();
    assert_eq!(
        line.as_deref(),
        Ok("connected, no answer yet: the server may be busy")
    );
    assert!(waited >= Duration::from_secs(2), "said after {waited:?}");

    let (tx, stdout_lines) = mpsc::channel();
    let out = BufReader::new(client.0.stdout.take().expect("stdout piped"));
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    conn.write_all(b"Hello\n").expect("write");
    assert_eq!(
        stdout_lines.recv_timeout(IO_TIMEOUT).as_deref(),
        Ok("Hello")
    );
    // End of input half-closes; our close then ends the session normally.
    drop(client.0.stdin.take());
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("the client half-closes");
    drop(conn);
    let status = common::wait_exit(&mut client.0, Instant::now() + IO_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    // Said once only.
    assert_eq!(stderr_lines.recv_timeout(IO_TIMEOUT).ok(), None);
}
