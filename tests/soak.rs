//! A soak test anyone can run: well-behaved and hostile clients together
//! against one model for a while, and what it cost the server.
//!
//! ```text
//! SOAK_MODEL=event-loop SOAK_SECS=600 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Well-behaved clients ping-pong echo lines and check every reply; beside
//! them, hostile ones send a byte at a time (slowloris), flood without ever
//! reading, connect and reset, send lines over `--max-line`, and vanish
//! mid-line. At the end it prints the bytes the well-behaved clients sent,
//! got back and lost (which must be 0), the server's descriptors and memory
//! at the start and the end (which must be flat), and the well-behaved
//! clients' p99. It is ignored by `cargo test`: it is a measurement, run on
//! purpose, not a check of every build.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Server};

/// The server's open descriptors (Linux).
fn fds(server: &Server) -> Option<usize> {
    Some(
        std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .ok()?
            .count(),
    )
}

#[test]
#[ignore = "a soak run of minutes: SOAK_MODEL=NAME SOAK_SECS=N cargo test --release --test soak -- --ignored --nocapture"]
fn soak() {
    let model: &'static str = std::env::var("SOAK_MODEL")
        .ok()
        .and_then(|m| switchboard::strategy::find(&m))
        .map_or("event-loop", |m| m.name);
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server = Server::start(model, &["--mode", "echo", "--max-line", "1024", "-q"]);
    let addr = server.addr;
    // Let the server settle, then take the baseline.
    Client::connect(addr).ask("warm", "warm");
    let (fds_before, rss_before) = (fds(&server), server.rss_kib());
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(secs);
    let (sent, answered) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies = Arc::new(Mutex::new(Vec::new()));

    std::thread::scope(|scope| {
        // Well-behaved: ping-pong, every reply checked.
        for n in 0..8 {
            let (stop, sent, answered, latencies) = (&stop, &sent, &answered, &latencies);
            scope.spawn(move || {
                let mut client = Client::connect(addr);
                let mut mine = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let line = format!("client {n} line {i}");
                    let started = Instant::now();
                    client.send_line(&line);
                    sent.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
                    if client.line() == line {
                        answered.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
                    }
                    mine.push(started.elapsed());
                    i += 1;
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
        // Slowloris: a byte at a time, every 50 ms.
        for _ in 0..4 {
            let stop = &stop;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    for b in b"slow line\n".iter().cycle().take(200) {
                        if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        }
        // Never reads: floods until the server stops taking, holds, leaves.
        for _ in 0..2 {
            let stop = &stop;
            scope.spawn(move || {
                let line = [[b'f'; 1000].as_slice(), b"\n"].concat();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                    while !stop.load(Ordering::Relaxed) && s.write_all(&line).is_ok() {}
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        }
        // Connect and reset; overlong lines; gone mid-line.
        {
            let stop = &stop;
            scope.spawn(move || {
                let mut buf = [0; 256];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(s) = TcpStream::connect(addr) {
                        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    }
                    if let Ok(mut s) = TcpStream::connect(addr) {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = s.write_all(&[b'x'; 3000]);
                        let _ = s.read(&mut buf); // ERR line too long
                    }
                    if let Ok(mut s) = TcpStream::connect(addr) {
                        let _ = s.write_all(b"half a li");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });

    // The hostile clients are gone; give the server a moment to close them.
    let settled = common::retry(Duration::from_secs(10), || {
        (fds(&server) <= fds_before.map(|n| n + 2)).then_some(())
    });
    let (fds_after, rss_after) = (fds(&server), server.rss_kib());
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default();
    let (sent, answered) = (
        sent.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed),
    );
    println!(
        "soak {model} {secs}s: well-behaved bytes sent {sent}, answered {answered}, lost {}; \
         {} exchanges, p99 {p99:?}; descriptors {fds_before:?} -> {fds_after:?}; \
         RSS {rss_before:?} -> {rss_after:?} KiB",
        sent - answered,
        latencies.len(),
    );
    assert_eq!(sent, answered, "well-behaved bytes lost");
    assert!(
        settled.is_some(),
        "descriptors did not come back: {fds_before:?} -> {fds_after:?}"
    );
}
