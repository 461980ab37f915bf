//! The load generator against small servers with known behaviour: the baseline echo
//! loop, and a tiny blocking line server that can reject, stay silent, or say `bye`.
//! Every test runs under a watchdog, so a hang fails instead of blocking the suite.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::baseline::threads::ThreadsBaseline;
use loadgen::baseline::Baseline;
use loadgen::{run, Exchange, Mark, Plan, Report, Workload};

/// Runs `f` on a thread and fails the test if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

/// Starts the baseline echo server on a free port; it runs until the test process ends.
fn start_baseline() -> SocketAddr {
    let server = Baseline::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.run());
    addr
}

/// Starts the thread-per-client baseline on a free port, likewise.
fn start_threads_baseline() -> SocketAddr {
    let server = ThreadsBaseline::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    thread::spawn(move || server.run());
    addr
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Echo lines; `bye` gets `bye` and a close. Beyond `max` clients: `ERR busy`.
    Echo { max: usize },
    /// Accept and never answer.
    Silent,
    /// Read the first line, then answer `ERR busy` and close.
    BusyAfterFirstLine,
}

/// A blocking thread-per-client line server speaking switchboard's echo protocol.
fn start_line_server(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let active = Arc::new(AtomicUsize::new(0));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if behaviour == Behaviour::BusyAfterFirstLine {
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = Vec::new();
                    let _ = reader.read_until(b'\n', &mut line);
                    let _ = stream.write_all(b"ERR busy: serving another client\n");
                    let _ = stream.shutdown(Shutdown::Write);
                    let _ = reader.read_until(b'\n', &mut line);
                });
                continue;
            }
            let Behaviour::Echo { max } = behaviour else {
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let mut sink = Vec::new();
                    let _ = std::io::Read::read_to_end(&mut stream, &mut sink);
                });
                continue;
            };
            if active.load(Ordering::SeqCst) >= max {
                let _ = stream.write_all(b"ERR busy: serving another client\n");
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            active.fetch_add(1, Ordering::SeqCst);
            let active = Arc::clone(&active);
            thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if line.trim_ascii_end().eq_ignore_ascii_case(b"bye") {
                        let _ = stream.write_all(b"bye\n");
                        break;
                    }
                    if stream.write_all(&line).is_err() {
                        break;
                    }
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    addr
}

fn quick(addr: SocketAddr, workload: Workload, clients: usize) -> Plan {
    let mut plan = Plan::new(addr, workload, clients);
    plan.warmup = Duration::from_millis(50);
    plan.duration = Duration::from_millis(300);
    plan.reply_timeout = Duration::from_secs(2);
    plan.connect_timeout = Duration::from_secs(3);
    plan
}

fn go(plan: Plan) -> (Report, Vec<Mark>) {
    within(Duration::from_secs(20), move || {
        let mut marks = Vec::new();
        let report = run(&plan, &mut |m| marks.push(m)).unwrap();
        (report, marks)
    })
}

/// Ping-pong against the baseline serves every client, checks every reply, and opens
/// and closes the measured window in order.
#[test]
fn pingpong_against_the_baseline() {
    let (r, marks) = go(quick(start_baseline(), Workload::PingPong, 10));
    assert_eq!(
        (r.served, r.rejected, r.errors),
        (10, 0, 0),
        "{:?}",
        r.first_error
    );
    assert!(r.messages > 10 && r.rate() > 0.0);
    assert!(r.latency.p50 > Duration::ZERO && r.latency.p50 <= r.latency.p99);
    assert!(r.latency.p99 <= r.latency.p999 && r.latency.p999 <= r.latency.max);
    assert_eq!(
        marks,
        vec![Mark::Connected, Mark::MeasureStart, Mark::MeasureEnd]
    );
}

/// Open loop sends on its schedule, not as fast as the server answers: over a 0.5 s
/// window at 2,000 requests/s spread over 6 clients on 2 threads, about 1,000 are
/// answered (closed loop against the same server answers tens of thousands), every
/// client is served, and the latency from the due time is never below the latency
/// from the send.
#[test]
fn open_loop_keeps_to_its_schedule() {
    let mut plan = quick(start_baseline(), Workload::PingPong, 6);
    plan.duration = Duration::from_millis(500);
    plan.threads = 2;
    plan.rate = Some(2000.0);
    let (r, _) = go(plan);
    assert_eq!((r.served, r.errors), (6, 0), "{:?}", r.first_error);
    // A request due in the warm-up and answered in the window counts: allow a few.
    assert!(
        (800..=1010).contains(&r.messages),
        "{} answered at 2,000/s over 0.5 s",
        r.messages
    );
    assert_eq!(r.offered_rate, Some(2000.0));
    let unc = r
        .uncorrected
        .expect("open loop keeps the uncorrected figures");
    assert!(
        unc.p50 <= r.latency.p50 && unc.max <= r.latency.max,
        "{unc:?} {:?}",
        r.latency
    );
    assert!(r.send_lateness.is_some());
}

/// Clients split over several threads are all served.
#[test]
fn several_generator_threads() {
    let mut plan = quick(start_baseline(), Workload::PingPong, 9);
    plan.threads = 2;
    let (r, _) = go(plan);
    assert_eq!((r.served, r.errors), (9, 0), "{:?}", r.first_error);
}

/// The thread-per-client baseline serves many clients at once and echoes pipelined
/// 16 KiB lines whole: writes bigger than its read buffer come back in pieces.
#[test]
fn threads_baseline_serves_every_client() {
    let (r, _) = go(quick(start_threads_baseline(), Workload::PingPong, 20));
    assert_eq!((r.served, r.errors), (20, 0), "{:?}", r.first_error);
    let mut plan = quick(
        start_threads_baseline(),
        Workload::Pipelined { depth: 8 },
        4,
    );
    plan.exchange = Exchange::echo(16 * 1024);
    let (r, _) = go(plan);
    assert_eq!((r.served, r.errors), (4, 0), "{:?}", r.first_error);
    assert!(r.messages >= 8 && r.messages % 8 == 0);
}

/// Pipelined batches of 16 KiB lines come back whole; messages count lines, not batches.
#[test]
fn pipelined_large_lines() {
    let mut plan = quick(start_baseline(), Workload::Pipelined { depth: 8 }, 4);
    plan.exchange = Exchange::echo(16 * 1024);
    let (r, _) = go(plan);
    assert_eq!((r.served, r.errors), (4, 0), "{:?}", r.first_error);
    assert!(r.messages >= 8 && r.messages % 8 == 0);
    assert_eq!(r.latency.count * 8, r.messages);
}

/// A single-client server's `ERR busy` is counted as a rejection, not an error.
#[test]
fn rejections_are_counted_honestly() {
    let (r, _) = go(quick(
        start_line_server(Behaviour::Echo { max: 1 }),
        Workload::PingPong,
        5,
    ));
    assert_eq!(
        (r.served, r.rejected, r.errors),
        (1, 4, 0),
        "{:?}",
        r.first_error
    );
}

/// `ERR busy` that arrives in place of a reply (not during connection setup) is a
/// rejection too.
#[test]
fn rejection_in_place_of_a_reply() {
    let (r, _) = go(quick(
        start_line_server(Behaviour::BusyAfterFirstLine),
        Workload::PingPong,
        5,
    ));
    assert_eq!(
        (r.served, r.rejected, r.errors),
        (0, 5, 0),
        "{:?}",
        r.first_error
    );
}

/// Churn completes connect / Hi / bye / close cycles against a server that closes.
#[test]
fn churn_cycles() {
    let (r, _) = go(quick(
        start_line_server(Behaviour::Echo { max: 100 }),
        Workload::Churn,
        4,
    ));
    assert_eq!(r.errors, 0, "{:?}", r.first_error);
    assert!(r.messages > 0 && r.served == 4);
}

/// Churn against the baseline, which never closes, works with `server_closes` off.
#[test]
fn churn_against_the_baseline() {
    let mut plan = quick(start_baseline(), Workload::Churn, 4);
    plan.server_closes = false;
    let (r, _) = go(plan);
    assert_eq!(r.errors, 0, "{:?}", r.first_error);
    assert!(r.messages > 0);
}

/// Idle hold opens every connection, pings each once, and marks the two sample points.
#[test]
fn idle_hold_pings_every_connection() {
    let plan = quick(
        start_baseline(),
        Workload::Idle {
            hold: Duration::from_millis(50),
        },
        300,
    );
    let (r, marks) = go(plan);
    assert_eq!(
        (r.served, r.errors, r.messages),
        (300, 0, 300),
        "{:?}",
        r.first_error
    );
    assert_eq!(marks, vec![Mark::Connected, Mark::Held, Mark::Pinged]);
}

/// A server that never answers costs one reply timeout and shows up as errors.
#[test]
fn silent_server_times_out() {
    let mut plan = quick(start_line_server(Behaviour::Silent), Workload::PingPong, 3);
    plan.reply_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let (r, _) = go(plan);
    assert_eq!((r.served, r.errors, r.messages), (0, 3, 0));
    assert!(r.first_error.unwrap().contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Nothing listening: every client fails to connect, and the run still ends promptly.
#[test]
fn refused_connections_are_errors() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (r, _) = go(quick(addr, Workload::PingPong, 3));
    assert_eq!((r.served, r.errors), (0, 3));
}

/// A reply that differs from the request is an error, not a served message.
#[test]
fn wrong_replies_are_errors() {
    let mut plan = quick(start_baseline(), Workload::PingPong, 2);
    plan.exchange.reply = b"something else\n".to_vec();
    let (r, _) = go(plan);
    assert_eq!((r.served, r.errors), (0, 2));
}

/// The generator can see its own CPU use (Linux), and reports a plausible load.
#[test]
#[cfg(target_os = "linux")]
fn generator_cpu_is_reported() {
    let (r, _) = go(quick(start_baseline(), Workload::PingPong, 4));
    let load = r.generator_load().unwrap();
    assert!((0.0..=4.0).contains(&load), "{load}");
}
