//! The examples end to end: each one is started on port 0 and driven over
//! loopback, the messenger through a whole two-client conversation.
//!
//! `cargo test` builds the examples but gives them no `CARGO_BIN_EXE_*`
//! variable, so they are found next to this test's own executable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The messenger's turn rules: their unit tests run here too, since `cargo
/// test` does not run an example's own tests.
#[path = "../examples/messenger/turns.rs"]
mod messenger_turns;

/// How long any expected line or exit may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A program under test, killed when dropped; its stdout arrives line by line.
struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (tx, stdout) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut err, log) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdin = child.stdin.take().unwrap();
        Process {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// The next line on stdout.
    fn line(&self) -> String {
        match self.stdout.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no line on stdout within {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("stdout ended"),
        }
    }

    fn expect_out(&self, expected: &str) {
        assert_eq!(self.line(), expected, "on stdout");
    }

    /// Types one line on the program's stdin.
    fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("stdin takes the line");
        self.stdin.flush().unwrap();
    }

    /// Waits for the program to end, with nothing more on stdout.
    fn expect_exit(&mut self) -> ExitStatus {
        match self.stdout.recv_timeout(TIMEOUT) {
            Ok(line) => panic!("unexpected line on stdout: {line:?}"),
            Err(RecvTimeoutError::Timeout) => panic!("still running after {TIMEOUT:?}"),
            // stdout closed: the process is ending.
            Err(RecvTimeoutError::Disconnected) => self.child.wait().unwrap(),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- its stderr:\n{}", self.stderr.lock().unwrap());
        }
    }
}

/// Starts example `name` on `127.0.0.1:0`; returns it and the address from its
/// `listening on` line.
fn start(name: &str) -> (Process, SocketAddr) {
    let program = Process::spawn(Command::new(example_path(name)).args(["127.0.0.1", "0"]));
    let first = program.line();
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("first line should be `listening on IP:PORT`: {first:?}"));
    (program, addr)
}

/// `target/<profile>/examples/<name>`, next to the test's `target/<profile>/deps/`.
fn example_path(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    BUILT.get_or_init(|| build_examples(profile_dir));
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    profile_dir.join("examples").join(file)
}

/// `cargo test` builds the examples, but `cargo test --test examples` does not
/// and would run stale ones: build them once per run (a no-op when fresh).
fn build_examples(profile_dir: &Path) {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return; // not run by cargo: use what is there
    };
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--examples"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") | None => {}
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build --examples failed");
}

/// One TCP client speaking the line protocol.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Peer {
    fn connect(addr: SocketAddr) -> Self {
        Peer::from(TcpStream::connect_timeout(&addr, TIMEOUT).expect("connects"))
    }

    fn from(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Peer {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.writer, "{line}").expect("server takes the line");
    }

    /// The next line from the server, without its `\n`.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
            Err(e) => panic!("no line from the server: {e}"),
        }
    }

    fn expect(&mut self, expected: &str) {
        assert_eq!(self.line().as_deref(), Some(expected), "from the server");
    }

    fn expect_closed(&mut self) {
        assert_eq!(self.line(), None, "the server should have closed");
    }
}

/// Every line comes back reversed by characters while another client stays
/// connected, and `exit` disconnects only the client that said it.
#[test]
fn reverse_server_reverses_lines() {
    let (_server, addr) = start("reverse_server");
    let mut idle = Peer::connect(addr);
    idle.send("Hi");
    idle.expect("Hello");
    let mut busy = Peer::connect(addr);
    busy.send("hello world");
    busy.expect("dlrow olleh");
    busy.send("héllo→");
    busy.expect("→olléh");
    busy.send("exit");
    busy.expect("bye");
    busy.expect_closed();
    idle.send("still here");
    idle.expect("ereh llits");
}

/// `/quit` on the reverse server's console tells clients and exits 0.
#[test]
fn reverse_server_quits_from_console() {
    let (mut server, addr) = start("reverse_server");
    let mut client = Peer::connect(addr);
    client.send("abc");
    client.expect("cba");
    server.type_line("/quit");
    client.expect("ERR server shutting down");
    client.expect_closed();
    assert!(server.expect_exit().success());
}

/// Lines are echoed with `Echo from server:`, `monowar` in any case gets the
/// special reply, and `exit` disconnects.
#[test]
fn keyword_echo_answers() {
    let (_server, addr) = start("keyword_echo");
    let mut client = Peer::connect(addr);
    client.send("Hi");
    client.expect("Hello");
    client.send("hello there");
    client.expect("Echo from server: hello there");
    for word in ["monowar", "MonoWar", "  MONOWAR "] {
        client.send(word);
        client.expect("Special word received: Monowar detected!");
    }
    client.send("monowar!");
    client.expect("Echo from server: monowar!");
    client.send("exit");
    client.expect("bye");
    client.expect_closed();
}

/// The project's client quits locally on `--quit-word shishir` with status 0,
/// and the server goes on serving the next client.
#[test]
fn keyword_echo_client_quits_on_shishir() {
    let (_server, addr) = start("keyword_echo");
    let mut client = Process::spawn(Command::new(env!("CARGO_BIN_EXE_client")).args([
        &addr.ip().to_string(),
        &addr.port().to_string(),
        "--quit-word",
        "shishir",
    ]));
    client.expect_out("Hello");
    client.type_line("hello");
    client.expect_out("Echo from server: hello");
    client.type_line("Monowar");
    client.expect_out("Special word received: Monowar detected!");
    client.type_line("Shishir");
    assert!(client.expect_exit().success());
    let mut next = Peer::connect(addr);
    next.send("still serving?");
    next.expect("Echo from server: still serving?");
}

const YOUR_TURN: &str = "* your turn: write to user1; # ends it";

/// A whole conversation: user2 and user3 write and end their turn with `#`,
/// user1 replies to each in turn, out-of-turn lines get a message, and the
/// messenger exits 0 once both clients have said `Exit`.
#[test]
fn messenger_conversation() {
    let (mut user1, addr) = start("messenger");
    assert!(user1.line().starts_with("* you are user1"));

    let mut user2 = Peer::connect(addr);
    user2.expect("* you are user2: # ends your turn, Exit leaves");
    user2.expect(YOUR_TURN);
    user1.expect_out("* user2 joined");
    user2.send("Hi"); // as the client binary does
    user2.expect("Hello");
    let mut user3 = Peer::connect(addr);
    user3.expect("* you are user3: # ends your turn, Exit leaves");
    user3.expect(YOUR_TURN);
    user1.expect_out("* user3 joined");

    // The clients' turn: user1 sees what they write.
    user1.type_line("too early");
    user1.expect_out("* not your turn: waiting for user2 and user3 to end their turn with #");
    user2.send("hello from user2");
    user1.expect_out("user2: hello from user2");
    user3.send("hello from user3");
    user1.expect_out("user3: hello from user3");
    user2.send("#");
    user1.expect_out("* user2 ended their turn");
    user2.expect("* turn ended: waiting for user3");
    user2.send("one more");
    user2.expect("* not your turn: waiting for user3 to end their turn, then user1 replies");
    user3.send("#");
    user1.expect_out("* user3 ended their turn");

    // user1's turn: user2 first, then user3.
    user1.expect_out("* your turn: reply to user2, then # to move on to user3");
    user2.expect("* user1's turn: replying to you");
    user3.expect("* user1's turn: replying to user2");
    user3.send("my turn?");
    user3.expect("* not your turn: user1 is replying to user2");
    user1.type_line("hi user2");
    user2.expect("user1: hi user2");
    user1.type_line("#");
    user1.expect_out("* your turn: reply to user3, then # to end your turn");
    user2.expect("* user1's turn: replying to user3");
    user3.expect("* user1's turn: replying to you");
    user1.type_line("hi user3");
    user3.expect("user1: hi user3");
    user1.type_line("#");
    user1.expect_out("* clients' turn: user2 and user3 write to you");
    user2.expect(YOUR_TURN);
    user3.expect(YOUR_TURN);

    // Exit, one client after the other; nothing else reached either client.
    user2.send("Exit");
    user2.expect("bye");
    user2.expect_closed();
    user1.expect_out("* user2 has left");
    user3.expect("* user2 has left");
    user3.send("exit");
    user3.expect("bye");
    user3.expect_closed();
    user1.expect_out("* user3 has left");
    user1.expect_out("* user2 and user3 have left: goodbye");
    assert!(user1.expect_exit().success());
}

/// A third client is turned away, and user1's `Exit` closes the messenger
/// for everyone with status 0.
#[test]
fn messenger_third_client_and_user1_exit() {
    let (mut user1, addr) = start("messenger");
    user1.line(); // the greeting
    let mut seated = Vec::new();
    for name in ["user2", "user3"] {
        let mut client = Peer::connect(addr);
        client.expect(&format!("* you are {name}: # ends your turn, Exit leaves"));
        client.expect(YOUR_TURN);
        user1.expect_out(&format!("* {name} joined"));
        seated.push(client);
    }
    let mut third = Peer::connect(addr);
    third.expect("ERR busy: user2 and user3 are taken");
    third.expect_closed();
    user1.expect_out("* a third client was turned away");

    user1.type_line("Exit");
    for client in &mut seated {
        client.expect("ERR server shutting down");
        client.expect_closed();
    }
    assert!(user1.expect_exit().success());
}

/// The relay obeys the one output bound: user1 replying to a user2 that
/// never reads gets user2 closed (user1 sees it leave), and the messenger's
/// memory does not grow with what user2 was sent.
#[test]
fn messenger_relay_to_a_client_that_never_reads_is_bounded() {
    const LINES: usize = 50_000;
    let (mut user1, addr) = start("messenger");
    user1.line(); // the greeting
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&addr.into(), TIMEOUT).unwrap();
    let mut user2 = Peer::from(TcpStream::from(socket));
    user2.expect("* you are user2: # ends your turn, Exit leaves");
    user2.expect(YOUR_TURN);
    let mut user3 = Peer::connect(addr);
    user3.expect("* you are user3: # ends your turn, Exit leaves");
    user3.expect(YOUR_TURN);
    user2.send("#");
    user3.send("#");
    while user1.line() != "* your turn: reply to user2, then # to move on to user3" {}
    let before = resident_kib(user1.child.id());

    // From here on user2 reads nothing, while user1 types 1 KiB lines at it.
    let stop = AtomicBool::new(false);
    let Process {
        stdin,
        stdout,
        child,
        ..
    } = &mut user1;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let line = format!("{}\n", "m".repeat(1023));
            for _ in 0..LINES {
                if stop.load(Ordering::Relaxed) || stdin.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match stdout.recv_timeout(left) {
                Ok(line) if line == "* user2 has left" => break,
                Ok(_) => {}
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    panic!("user2 was not closed ({e:?})");
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let after = resident_kib(child.id());
    if let (Some(before), Some(after)) = (before, after) {
        assert!(
            after < before + 16 * 1024,
            "the messenger grew from {before} KiB to {after} KiB"
        );
    }
    while user3.line().as_deref() != Some("* user2 has left") {}
}

/// A process's resident memory, in KiB (Linux: `/proc`; elsewhere `None`).
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The examples read `[HOST] [PORT]` as the binaries do: a port typed alone
/// is that port on 127.0.0.1, and a host in numeric shorthand is refused
/// with exit status 2, before any lookup.
#[test]
fn examples_take_a_port_alone_and_refuse_numeric_hosts() {
    let program = Process::spawn(Command::new(example_path("reverse_server")).arg("0"));
    let first = program.line();
    assert!(
        first.starts_with("listening on 127.0.0.1:"),
        "a lone 0 is the port: {first:?}"
    );
    let refused = Command::new(example_path("keyword_echo"))
        .args(["127.1", "5000"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("`127.1` is not a host"), "{said}");
}
