//! One contract, kept by every model.
//!
//! Each test here is one rule of the contract (nothing lost quietly, one
//! output bound, a fault stays with its client, shutdown tells everyone,
//! silence meets its timeout wherever a client waits), run against every
//! model in [`MODELS`] in turn, in this process. A model added to that list
//! is held to every rule with no new test code. Where a model cannot keep a
//! rule as written, [`Exception`] says why, and the test checks what the
//! model promises instead.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchboard::mode::{Echo, Speaker};
use switchboard::strategy::{Model, MODELS};
use switchboard::Outbound;
use switchboard::{Mode, Server};

/// The longest any step may wait: generous for a loaded CI machine, and
/// still a bound, so no test can hang.
const DEADLINE: Duration = Duration::from_secs(10);

/// What a model cannot do as the rule says, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exception {
    /// single-client serves one client at a time: a second is turned away,
    /// so rules about several clients at once are checked one after another.
    OneAtATime,
}

fn exceptions(model: &Model) -> &'static [Exception] {
    match model.name {
        "single-client" => &[Exception::OneAtATime],
        _ => &[],
    }
}

/// A model serving `server` on a loopback port, on a thread of this test.
struct Running {
    addr: SocketAddr,
    server: Server,
    thread: Option<JoinHandle<Result<(), switchboard::Error>>>,
}

impl Running {
    /// Starts `model` with `mode`; `setup` adjusts limits and workers.
    /// `None` (with the reason printed) where the model cannot run here.
    fn start(
        model: &Model,
        mode: impl Mode + 'static,
        setup: impl FnOnce(&mut Server),
    ) -> Option<Self> {
        if let Err(e) = model.strategy.check() {
            eprintln!("{}: skipped: {e}", model.name);
            return None;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server::new(mode);
        server.workers = 2;
        setup(&mut server);
        let strategy = model.strategy;
        let for_thread = server.clone();
        let thread = std::thread::spawn(move || switchboard::serve(strategy, listener, for_thread));
        Some(Running {
            addr,
            server,
            thread: Some(thread),
        })
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr, None)
    }

    /// Waits until `n` clients are admitted (a blocking model admits them
    /// on its own thread, after `connect` has returned).
    fn wait_for_clients(&self, n: usize) {
        let clients = self.server.clients();
        until(
            || clients.count() == n,
            || format!("{n} clients admitted, {} are", clients.count()),
        );
    }

    /// Stops the server and checks that it stopped within a second.
    fn stop(mut self) {
        let began = Instant::now();
        self.server.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the model's thread panicked").unwrap();
        }
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "the server took {:?} to stop",
            began.elapsed()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.shutdown.trigger();
    }
}

/// A test's client: a socket with timeouts, read line by line.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects; `recv_buffer` makes the kernel's receive buffer small, for
    /// a client that never reads.
    fn connect(addr: SocketAddr, recv_buffer: Option<usize>) -> Client {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.connect_timeout(&addr.into(), DEADLINE).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    fn send(&self, line: &str) {
        let mut stream = self.stream();
        stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// The next line, without its `\n`; `None` at end of input or on a reset.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
            Err(e) => panic!("no line within {DEADLINE:?}: {e}"),
        }
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line().as_deref(), Some(want));
    }

    /// Reads to the end: the last line before the close, if any.
    fn last_line(&mut self) -> Option<String> {
        let mut last = None;
        while let Some(line) = self.line() {
            last = Some(line);
        }
        last
    }
}

/// Retries `done` until it holds, failing with `what` after [`DEADLINE`].
fn until(mut done: impl FnMut() -> bool, what: impl Fn() -> String) {
    let began = Instant::now();
    while !done() {
        assert!(
            began.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `rule` against every model, naming the model in a failure
/// (`CONFORMANCE_MODEL=NAME` runs it against that one alone). io-uring runs
/// twice: on its multishot receive path and on the single-shot one that a
/// kernel without multishot gets (`io-uring-single-shot`).
fn for_every_model(rule: impl Fn(&Model)) {
    let only = std::env::var("CONFORMANCE_MODEL").ok();
    let chosen = MODELS
        .iter()
        .chain([&switchboard::strategy::io_uring::SINGLE_SHOT])
        .filter(|m| only.as_deref().is_none_or(|o| o == m.name));
    for model in chosen {
        eprintln!("{}", model.name);
        rule(model);
    }
}

/// Nothing is lost quietly: 300 operator lines sent to a client that is
/// busy echoing its own lines all arrive, in order — whoever happened to
/// be writing to that client when each was sent.
#[test]
fn operator_lines_reach_a_busy_client_in_order() {
    const LINES: usize = 300;
    /// Echoes the client reads between two operator lines: each operator
    /// line is sent while the server is busy writing echoes to the client.
    const ECHOES_BETWEEN: usize = 10;
    for_every_model(|model| {
        let Some(running) = Running::start(model, Echo, |_| {}) else {
            return;
        };
        let mut client = running.connect();
        running.wait_for_clients(1);
        let id = running.server.clients().list()[0].0;
        // The client keeps the server writing to it: a steady stream of its
        // own lines to echo, while it reads everything that comes back.
        let writer = client.stream().try_clone().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let chatter = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    if done.load(Ordering::Relaxed) || (&writer).write_all(b"x\n").is_err() {
                        break;
                    }
                }
                let _ = writer.shutdown(std::net::Shutdown::Write);
            })
        };
        let (tick, ticks) = mpsc::channel::<()>();
        let clients = Arc::clone(running.server.clients());
        let operator = std::thread::spawn(move || {
            for n in 0..LINES {
                if ticks.recv().is_err() {
                    return;
                }
                assert!(clients.send(id, Outbound::Line(format!("op-{n}"))));
            }
        });
        let (mut next, mut echoes) = (0, 0);
        let _ = tick.send(());
        while let Some(line) = client.line() {
            if let Some(n) = line.strip_prefix("op-") {
                assert_eq!(
                    n,
                    next.to_string(),
                    "{}: operator lines out of order",
                    model.name
                );
                next += 1;
                if next == LINES {
                    done.store(true, Ordering::Relaxed);
                }
            } else {
                echoes += 1;
                if echoes % ECHOES_BETWEEN == 0 {
                    let _ = tick.send(());
                }
            }
        }
        drop(tick);
        operator.join().unwrap();
        chatter.join().unwrap();
        assert_eq!(next, LINES, "{}: operator lines lost", model.name);
        running.stop();
    });
}

/// One output bound, whatever fills it: a client that never reads, flooded
/// with operator lines, is closed, rather than buffered for without limit;
/// and a new client is served at once all the while.
#[test]
fn a_client_that_never_reads_is_closed_at_the_output_bound() {
    const FLOOD: usize = 50_000;
    for_every_model(|model| {
        let Some(running) = Running::start(model, Echo, |_| {}) else {
            return;
        };
        let mut stalled = Client::connect(running.addr, Some(4096));
        running.wait_for_clients(1);
        let id = running.server.clients().list()[0].0;
        let line = "z".repeat(1023);
        let clients = running.server.clients();
        let mut sent = 0;
        // Sent until the server gives the client up (`send` is then false).
        while sent < FLOOD && clients.send(id, Outbound::Line(line.clone())) {
            sent += 1;
        }
        until(
            || clients.count() == 0,
            || format!("{}: the non-reader closed ({sent} lines sent)", model.name),
        );
        // What reached the client is at most the bound plus the kernel's
        // buffers: nothing near the flood was kept for it.
        let mut received = 0;
        let mut sink = [0; 64 * 1024];
        loop {
            let mut stream = stalled.stream();
            match stream.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => received += n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{}: the non-reader was never closed: {e}", model.name),
            }
        }
        assert!(
            received < 8 << 20,
            "{}: {received} bytes reached a client that never read",
            model.name
        );
        assert!(stalled.line().is_none());
        let mut next = running.connect();
        next.send("hello");
        next.expect("hello");
        running.stop();
    });
}

/// A mode with a bug: it panics on the line `boom`, echoes the rest.
struct Fragile;

impl Mode for Fragile {
    fn on_line(&self, _: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        assert_ne!(line, "boom", "a bug in the mode, on purpose");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// A fault in one conversation stays there: the client whose line made the
/// mode panic gets `ERR internal error` and is closed; a client connected
/// at the time, and the next to connect, are served on.
#[test]
fn a_panic_in_a_mode_closes_only_its_client() {
    for_every_model(|model| {
        let one_at_a_time = exceptions(model).contains(&Exception::OneAtATime);
        let Some(running) = Running::start(model, Fragile, |_| {}) else {
            return;
        };
        let mut bystander = (!one_at_a_time).then(|| {
            let mut c = running.connect();
            c.send("Hi");
            c.expect("Hello");
            c
        });
        let mut victim = running.connect();
        victim.send("Hi");
        victim.expect("Hello");
        victim.send("boom");
        assert_eq!(
            victim.last_line().as_deref(),
            Some("ERR internal error"),
            "{}",
            model.name
        );
        if let Some(bystander) = &mut bystander {
            bystander.send("still here");
            bystander.expect("still here");
        }
        let mut next = running.connect();
        next.send("after");
        next.expect("after");
        running.wait_for_clients(if one_at_a_time { 1 } else { 2 });
        running.stop();
    });
}

/// Shutdown tells everyone: every client connected when the stop comes,
/// served or waiting for a worker, gets `ERR server shutting down`, and the
/// server stops within a second.
#[test]
fn shutdown_tells_every_client() {
    for_every_model(|model| {
        let one_at_a_time = exceptions(model).contains(&Exception::OneAtATime);
        let Some(running) = Running::start(model, Echo, |s| s.workers = 2) else {
            return;
        };
        let count = if one_at_a_time { 1 } else { 5 };
        let mut clients: Vec<Client> = (0..count).map(|_| running.connect()).collect();
        running.wait_for_clients(count);
        let stop = running.server.shutdown.clone();
        let stopper = std::thread::spawn(move || stop.trigger());
        for client in &mut clients {
            assert_eq!(
                client.last_line().as_deref(),
                Some("ERR server shutting down"),
                "{}",
                model.name
            );
        }
        stopper.join().unwrap();
        running.stop();
    });
}

/// Silence meets its timeout wherever a client waits: with two workers and
/// more clients than that, every silent client — those waiting for a
/// worker included — is told `ERR idle timeout` about when it is due.
#[test]
fn every_silent_client_meets_the_idle_timeout() {
    const LIMIT: Duration = Duration::from_millis(600);
    for_every_model(|model| {
        let one_at_a_time = exceptions(model).contains(&Exception::OneAtATime);
        let Some(running) = Running::start(model, Echo, |s| {
            s.workers = 2;
            s.limits.idle_timeout = Some(LIMIT);
        }) else {
            return;
        };
        let count = if one_at_a_time { 1 } else { 6 };
        let began = Instant::now();
        let mut clients: Vec<Client> = (0..count).map(|_| running.connect()).collect();
        for client in &mut clients {
            assert_eq!(
                client.last_line().as_deref(),
                Some("ERR idle timeout"),
                "{}",
                model.name
            );
        }
        let took = began.elapsed();
        // Each is due after LIMIT; a queue that starts the clock only when a
        // worker takes the client would need three times that here.
        assert!(
            took < LIMIT * 2 + Duration::from_millis(400),
            "{}: the last silent client was closed after {took:?}",
            model.name
        );
        running.stop();
    });
}

/// Clients that reset their connection before being served take no seat:
/// with every seat taken by such clients (waiting for a worker, in a pool),
/// the next real client is still admitted and served.
#[test]
fn clients_that_reset_take_no_seats() {
    const SEATS: usize = 4;
    for_every_model(|model| {
        let one_at_a_time = exceptions(model).contains(&Exception::OneAtATime);
        let Some(running) = Running::start(model, Echo, |s| {
            s.workers = 1;
            s.limits.max_clients = SEATS;
        }) else {
            return;
        };
        let mut first = running.connect();
        first.send("first");
        first.expect("first");
        let resetting = if one_at_a_time { 0 } else { SEATS - 1 };
        let gone: Vec<Client> = (0..resetting).map(|_| running.connect()).collect();
        running.wait_for_clients(1 + resetting);
        for client in gone {
            socket2::SockRef::from(client.stream())
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        if one_at_a_time {
            first.send("bye");
            first.expect("bye");
        }
        let mut next = running.connect();
        next.send("next");
        if !one_at_a_time {
            // A pool serves it once its one worker is free.
            first.send("bye");
        }
        assert_eq!(next.line().as_deref(), Some("next"), "{}", model.name);
        running.stop();
    });
}

/// A mode with a bug outside the one call the session guards: once broken,
/// asking whether it is raw panics, which kills whichever thread runs the
/// session at that moment — a client's thread, a pool worker, an event
/// loop, a task.
struct Breaking(Arc<AtomicBool>);

impl Mode for Breaking {
    fn on_line(&self, _: Speaker<'_>, line: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }

    fn is_raw(&self) -> bool {
        assert!(
            !self.0.load(Ordering::SeqCst),
            "a bug outside the mode's lines, on purpose"
        );
        false
    }
}

/// Every thread or loop that serves clients is watched: when one dies, its
/// client is told or closed, never left hanging; then the server either
/// carries on, its seat free and the next client served, or stops with an
/// error. It never goes on taking clients nobody serves.
#[test]
fn a_thread_that_dies_leaves_no_client_hanging() {
    for_every_model(|model| {
        let broken = Arc::new(AtomicBool::new(false));
        let mode = Breaking(Arc::clone(&broken));
        let Some(mut running) = Running::start(model, mode, |s| s.workers = 2) else {
            return;
        };
        let mut victim = running.connect();
        victim.send("Hi");
        victim.expect("Hello");
        broken.store(true, Ordering::SeqCst);
        victim.send("this line meets the bug");
        let last = victim.last_line();
        assert!(
            matches!(last.as_deref(), None | Some("ERR internal error")),
            "{}: {last:?}",
            model.name
        );
        broken.store(false, Ordering::SeqCst);
        let thread = running.thread.take().unwrap();
        let clients = Arc::clone(running.server.clients());
        until(
            || clients.count() == 0 || thread.is_finished(),
            || {
                format!(
                    "{}: the dead thread's client still holds its seat",
                    model.name
                )
            },
        );
        // Carried on: the next client is served. Or stopped: then not as if
        // all were well.
        let greeted = TcpStream::connect(running.addr).ok().and_then(|stream| {
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut next = Client {
                reader: BufReader::new(stream),
            };
            let mut stream = next.stream();
            stream.write_all(b"Hi\n").ok()?;
            let mut line = String::new();
            next.reader.read_line(&mut line).ok().map(|_| line)
        });
        if greeted.as_deref() == Some("Hello\n") {
            running.thread = Some(thread);
            running.stop();
            return;
        }
        until(
            || thread.is_finished(),
            || format!("{}: neither serves nor stops", model.name),
        );
        let outcome = thread.join();
        assert!(
            !matches!(outcome, Ok(Ok(()))),
            "{}: stopped as if all were well",
            model.name
        );
    });
}
