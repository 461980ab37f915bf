//! Each model's own promise, beyond the behaviour suite that every model
//! passes: what makes it a different model.

mod common;

use std::io::ErrorKind;
use std::process::Command;
use std::time::Duration;

use common::{bin, retry, Client, Server, Stdin, IO_TIMEOUT};

/// Starts `server --model MODEL 127.0.0.1 0 ARGS...`, without the suite's
/// generous `--workers`.
fn start_model(model: &'static str, args: &[&str]) -> Server {
    let mut command = Command::new(bin("server"));
    command
        .args(["--model", model, "127.0.0.1", "0"])
        .args(args);
    Server::spawn(model, command, Stdin::Piped)
}

/// Asserts the client is sent nothing for `window`: it is waiting, unanswered.
fn assert_unanswered(client: &mut Client, window: Duration) {
    client.stream().set_read_timeout(Some(window)).unwrap();
    match client.read_raw_line() {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected no reply yet, got {other:?}"),
    }
    client.stream().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
}

/// thread-pool with 4 workers and 8 clients: the first four are answered at
/// once; the other four are connected but wait, unanswered, and each gets its
/// first reply only when an earlier client leaves and frees a worker.
#[test]
fn thread_pool_clients_wait_for_a_free_worker() {
    let server = start_model("thread-pool", &["--workers", "4", "--mode", "reverse"]);
    // Connected one after another, so they queue in this order.
    let mut clients: Vec<Client> = (0..8).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send_line("abc");
    }
    for client in &mut clients[..4] {
        client.expect("cba");
    }
    for client in &mut clients[4..] {
        assert_unanswered(client, Duration::from_millis(200));
    }
    let (served, waiting) = clients.split_at_mut(4);
    for (leaving, next) in served.iter_mut().zip(waiting.iter_mut()) {
        leaving.ask("bye", "bye");
        next.expect("cba");
    }
}

/// thread-pool's queue holds `--max-clients` minus the workers: with one
/// worker and two seats, the second client waits and the third gets
/// `ERR busy` at once.
#[test]
fn thread_pool_turns_away_when_the_queue_is_full() {
    let server = start_model(
        "thread-pool",
        &["--workers", "1", "--max-clients", "2", "--mode", "calc"],
    );
    let mut served = server.connect();
    served.ask("6*7", "42");
    let mut queued = server.connect();
    queued.send_line("1+1");
    let mut refused = server.connect();
    refused.expect_last("ERR busy: every worker is busy and the queue is full");
    assert_unanswered(&mut queued, Duration::from_millis(100));
    served.ask("bye", "bye");
    queued.expect("2");
}

/// multi-reactor with 3 loops: connections are handed to the loops in turn,
/// so six clients land on all three, and the server runs at most N + 4
/// threads (the loops, the acceptor, the console's helpers).
#[test]
fn multi_reactor_spreads_connections_over_its_loops() {
    let server = start_model(
        "multi-reactor",
        &["--workers", "3", "--mode", "reverse", "-v"],
    );
    let mut clients: Vec<Client> = (0..6).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.ask("abc", "cba");
    }
    // The log lines were written before the replies; wait for the reader.
    let handed = |log: &str| log.matches("handed over").count();
    retry(IO_TIMEOUT, || {
        (handed(&server.stderr_text()) == 6).then_some(())
    });
    let log = server.stderr_text();
    for n in 0..3 {
        let on_loop = format!("loop={n}");
        let handed = log
            .lines()
            .filter(|l| l.contains("handed over") && l.ends_with(&on_loop))
            .count();
        assert_eq!(handed, 2, "loop {n} took {handed} of 6:\n{log}");
    }
    if let Some(threads) = server.threads() {
        assert!(
            threads <= 3 + 4,
            "multi-reactor with 3 loops runs {threads} threads"
        );
    }
}

/// A calc line that takes a while: 2,000 big-number remainders, about 44 KB.
fn slow_line(plus: u32) -> String {
    let term = "(3**2500)%(2**4000-1)";
    format!("{}+{plus}", vec![term; 2000].join("+"))
}

/// event-loop-workers: while one client's slow lines are being answered, a
/// second client is served at once; and each client's replies come in the
/// order of its lines, slow and fast interleaved.
#[test]
fn event_loop_workers_answer_around_a_slow_line_in_order() {
    let server = start_model("event-loop-workers", &["--workers", "2", "--mode", "calc"]);
    let mut slow = server.connect();
    let mut quick = server.connect();
    quick.ask("1+1", "2"); // connected and served before the slow work starts
    let lines = [slow_line(1), "1+1".into(), slow_line(2), "2+2".into()];
    slow.send(format!("{}\n", lines.join("\n")).as_bytes());
    quick.ask("3*3", "9");
    assert_unanswered(&mut slow, Duration::from_millis(1));
    let replies: Vec<String> = (0..4).map(|_| slow.line()).collect();
    assert_eq!(replies[1], "2", "{replies:?}");
    assert_eq!(replies[3], "4", "{replies:?}");
    let (first, second) = (&replies[0], &replies[2]);
    assert!(first.len() > 100 && first.len() == second.len() && first < second);
}

/// io-uring is Linux-only: elsewhere the model says so in one line on
/// stderr and exits 1, before it listens.
#[cfg(not(target_os = "linux"))]
#[test]
fn io_uring_is_refused_off_linux() {
    let out = common::run("io-uring", &[], Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not available"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

/// event-loop-workers: a client whose slow lines are still being answered is
/// not idle: its replies come, not `ERR idle timeout`.
#[test]
fn event_loop_workers_do_not_time_out_a_client_they_are_answering() {
    let server = start_model(
        "event-loop-workers",
        &["--workers", "2", "--mode", "calc", "--idle-timeout", "0.05"],
    );
    let mut client = server.connect();
    let lines = [slow_line(1), slow_line(2), slow_line(3)];
    client.send(format!("{}\n", lines.join("\n")).as_bytes());
    for _ in 0..3 {
        let reply = client.line();
        assert!(reply.len() > 100, "got {reply:?}");
    }
}

/// thread-pool: kicking a client that waits in the queue frees its seat at
/// once, for the next client to take.
#[test]
fn thread_pool_kicked_queued_client_frees_its_seat() {
    let mut server = start_model(
        "thread-pool",
        &["--workers", "1", "--max-clients", "2", "--mode", "calc"],
    );
    let mut served = server.connect();
    served.ask("6*7", "42");
    let mut queued = server.connect();
    queued.send_line("1+1");
    // Kick it only once it is registered (the log says so), or there is no
    // client 2 to kick yet.
    retry(IO_TIMEOUT, || {
        server.stderr_text().contains("client=2").then_some(())
    })
    .expect("the second client is registered");
    server.console("/kick 2");
    queued.expect_last("ERR kicked by the operator");
    let mut next = server.connect();
    next.send_line("2+2");
    served.ask("bye", "bye");
    next.expect("4");
}

/// thread-pool: the places of kicked queued clients are free for the next
/// ones (they used to linger in the queue until a worker reached them, and a
/// newcomer with a free seat was told the queue was full).
#[test]
fn thread_pool_kicked_clients_leave_the_queue() {
    let mut server = start_model(
        "thread-pool",
        &["--workers", "1", "--max-clients", "3", "--mode", "calc"],
    );
    let mut served = server.connect();
    served.ask("6*7", "42");
    let mut kicked: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    retry(IO_TIMEOUT, || {
        server.stderr_text().contains("client=3").then_some(())
    })
    .expect("both queued clients are registered");
    server.console("/kick 2");
    server.console("/kick 3");
    for client in &mut kicked {
        client.expect_last("ERR kicked by the operator");
    }
    let mut next: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    for (i, client) in next.iter_mut().enumerate() {
        client.send_line(&format!("{i}+1"));
    }
    served.ask("bye", "bye");
    next[0].expect("1");
    next[0].ask("bye", "bye");
    next[1].expect("2");
}
