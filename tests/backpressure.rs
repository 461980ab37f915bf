//! Clients that send faster than they read: the server answers everything in
//! order, buffers a bounded amount, and does not keep a connection forever for
//! a client that never takes its replies.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use common::{in_parallel, multi, retry, Server};

/// Thousands of short `calc` lines that each ask for a 1,234-digit reply, sent
/// without reading, are all answered in order once the client reads: the
/// server pauses instead of buffering megabytes, and resuming loses nothing.
#[test]
fn amplifying_requests_are_all_answered_in_order() {
    in_parallel(&["server2", "server3"], |&name| {
        let server = Server::start(name, &["--mode", "calc"]);
        let mut client = server.connect();
        client.ask("2**4095", &big_power());
        let lines = 5_000;
        let mut writer = client.stream().try_clone().expect("clone");
        let sender = thread::spawn(move || {
            let batch: String = (0..lines).map(|i| format!("2**4095+{i}\n")).collect();
            writer.write_all(batch.as_bytes())
        });
        let base = big_power();
        let (head, tail) = base.split_at(base.len() - 12);
        let tail: u64 = tail.parse().expect("digits");
        let mut reader = BufReader::new(client.stream());
        let mut line = String::new();
        for i in 0..lines {
            line.clear();
            reader.read_line(&mut line).expect("a reply line");
            let want = format!("{head}{:012}", tail + i);
            assert!(line.trim_end() == want, "{name}: reply {i} is wrong");
        }
        sender
            .join()
            .expect("sender thread")
            .expect("all lines sent");
    });
}

/// One client that sends hundreds of slow `calc` lines at once does not
/// keep another waiting until all are answered: the server answers the other
/// between its lines. (An event loop that answered one read's every line in
/// one go answered the second client only after the first's last line.)
#[test]
fn many_slow_lines_from_one_client_are_served_in_turns() {
    in_parallel(&multi(), |&name| {
        let server = Server::start(name, &["--mode", "calc"]);
        let mut busy = server.connect();
        let mut other = server.connect();
        busy.greet();
        other.greet();
        let lines = 400;
        let slow = ["(3**2500)%(2**4000-1)"; 10].join("+");
        let batch = format!("{slow}\n").repeat(lines);
        let answered = Arc::new(AtomicUsize::new(0));
        let (first, first_came) = mpsc::channel();
        let mut reader = BufReader::new(busy.stream().try_clone().expect("clone"));
        let count = Arc::clone(&answered);
        let replies = thread::spawn(move || {
            let mut line = String::new();
            for _ in 0..lines {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if count.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = first.send(());
                }
            }
        });
        busy.send(batch.as_bytes());
        first_came
            .recv_timeout(Duration::from_secs(20))
            .expect("the first slow line answered");
        other.ask("1+1", "2");
        let meanwhile = answered.load(Ordering::SeqCst);
        assert!(
            meanwhile < lines / 2,
            "{name}: the other client waited for {meanwhile} of {lines} slow lines"
        );
        replies.join().expect("reader thread");
        assert_eq!(
            answered.load(Ordering::SeqCst),
            lines,
            "{name}: lost replies"
        );
    });
}

/// 2**4095 in decimal, computed by doubling so the test needs no big-integer crate.
fn big_power() -> String {
    let mut digits = vec![1u8]; // least significant first
    for _ in 0..4095 {
        let mut carry = 0;
        for d in digits.iter_mut() {
            let v = *d * 2 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            digits.push(carry);
        }
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// A client that floods without ever reading is stopped being read, timed out
/// as idle, and then closed even though it never takes its `ERR` line.
#[test]
fn client_that_never_reads_is_closed_after_idle_timeout() {
    in_parallel(&["server3", "server4"], |&name| {
        let server = Server::start(name, &["--mode", "echo", "--idle-timeout", "1"]);
        let client = server.connect();
        let mut writer = client.stream().try_clone().expect("clone");
        let line = format!("{}\n", "x".repeat(1000));
        // More than the socket buffers hold: the sender ends up blocked (its
        // write timeout ends it) or reset when the server closes.
        let _sender = thread::spawn(move || {
            for _ in 0..64_000 {
                if writer.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let closed = retry(Duration::from_secs(20), || {
            server.stderr_text().contains("disconnected").then_some(())
        });
        assert!(closed.is_some(), "{name} kept a non-reading client open");
        drop(client);
    });
}
