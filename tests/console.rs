//! The operator console in chat mode (SPEC section 7), driven through the real
//! server's stdin and stdout: `[ID] text`, `@ID`, `@all`, a plain reply to the
//! last speaker, `/list`, `/kick` and `/quit`, on every strategy that runs chat
//! — server1 with its one client, the others with several at once.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{in_parallel, models, multi, retry, Client, Server, IO_TIMEOUT, SHUTDOWN_LIMIT};

/// Starts `name` in chat mode (`server4` defaults to echo).
fn chat_server(name: &'static str) -> Server {
    Server::start(name, &["--mode", "chat"])
}

/// Connects a client, greets, and says `I am NAME`; returns it with the id the
/// console shows for it.
fn join(server: &Server, name: &str) -> (Client, String) {
    let mut client = server.connect();
    client.greet();
    client.send_line(&format!("I am {name}"));
    let shown = server.stdout_until(&format!("`[ID] I am {name}`"), |line| {
        line.ends_with(&format!("] I am {name}"))
    });
    let id = shown
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map(|(id, _)| id.to_owned())
        .unwrap_or_else(|| panic!("not an `[ID] text` line: {shown:?}"));
    assert!(id.parse::<u64>().is_ok(), "id {id:?} is not a number");
    (client, id)
}

/// Sends `/list` and returns the clients it shows: id → peer address text.
fn list(server: &mut Server) -> HashMap<String, String> {
    server.console("/list");
    let header = server.stdout_until("`N client(s) connected`", |l| {
        l.ends_with(" client(s) connected")
    });
    let count: usize = header
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad /list header {header:?}"));
    (0..count)
        .map(|_| {
            let line = server
                .stdout_line(IO_TIMEOUT)
                .expect("a /list line per client");
            let (id, peer) = line
                .strip_prefix('[')
                .and_then(|rest| rest.split_once("] "))
                .unwrap_or_else(|| panic!("bad /list line {line:?}"));
            (id.to_owned(), peer.to_owned())
        })
        .collect()
}

/// Each line a chat client sends shows on stdout as `[ID] text`, ids counting
/// from 1, and the client gets no reply of its own.
#[test]
fn client_lines_show_as_id_and_text() {
    in_parallel(&models(), |&name| {
        let server = chat_server(name);
        let (mut client, id) = join(&server, "first");
        assert_eq!(id, "1");
        for text in ["hello operator", "Hi", "  spaced  ", "ünïcödé"] {
            client.send_line(text);
            server.expect_stdout(&format!("[1] {text}"));
        }
        // `\r\n` is accepted and the `\r` dropped.
        client.send(b"with crlf\r\n");
        server.expect_stdout("[1] with crlf");
        client.ask("bye", "bye");
        client.expect_closed();
        // The next client gets the next id.
        let (_client, id) = join(&server, "second");
        assert_eq!(id, "2");
    });
}

/// server1's console with its one client: a plain line, `@ID`, `@all`, `/list`,
/// `/kick` (after which the next client is served), and `/quit`.
#[test]
fn server1_console_commands() {
    let mut server = chat_server("server1");
    let (mut client, id) = join(&server, "solo");
    server.console("a plain answer");
    client.expect("a plain answer");
    server.console(&format!("@{id} directly to you"));
    client.expect("directly to you");
    server.console("@all to everyone");
    client.expect("to everyone");

    let listed = list(&mut server);
    let peer = client.stream().local_addr().unwrap().to_string();
    assert_eq!(listed, HashMap::from([(id.clone(), peer)]));

    server.console(&format!("/kick {id}"));
    let goodbye = client.line();
    assert!(goodbye.starts_with("ERR "), "kick sent {goodbye:?}");
    client.expect_closed();

    // The seat is free again once the kicked session has gone.
    let mut next = retry(IO_TIMEOUT, || {
        let mut c = server.connect();
        c.send_line("Hi");
        (c.line() == "Hello").then_some(c)
    })
    .expect("a new client is served after the kick");
    next.send_line("after the kick");
    server.stdout_until("`[ID] after the kick`", |l| l.ends_with("] after the kick"));
    server.console("welcome back");
    next.expect("welcome back");

    let started = Instant::now();
    server.console("/quit");
    next.expect_last("ERR server shutting down");
    let status = server.wait_exit(started + SHUTDOWN_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}

/// With several chat clients: `@ID` reaches only that client, `@all` reaches
/// everyone, a plain line goes to the last speaker, clients never see each
/// other's lines, `/list` shows each client's address, `/kick` closes one and
/// leaves the rest, and `/quit` tells everyone and exits 0.
#[test]
fn console_commands_with_several_clients() {
    in_parallel(&multi(), |&name| {
        let mut server = chat_server(name);
        let (mut a, id_a) = join(&server, "A");
        let (mut b, id_b) = join(&server, "B");
        let (mut c, id_c) = join(&server, "C");
        let ids = [&id_a, &id_b, &id_c];
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            3,
            "ids must differ: {ids:?}"
        );

        // C spoke last.
        server.console("to the last speaker");
        c.expect("to the last speaker");
        a.send_line("A again");
        server.expect_stdout(&format!("[{id_a}] A again"));
        server.console("now to A");
        a.expect("now to A");

        server.console(&format!("@{id_b} only for B"));
        b.expect("only for B");
        server.console("@all for all of you");
        // The next line each sees is the broadcast: nobody saw B's private
        // line or another client's `I am ...`.
        for client in [&mut a, &mut b, &mut c] {
            client.expect("for all of you");
        }

        let listed = list(&mut server);
        let expected: HashMap<String, String> = [(&id_a, &a), (&id_b, &b), (&id_c, &c)]
            .into_iter()
            .map(|(id, client)| {
                let peer = client.stream().local_addr().unwrap().to_string();
                (id.clone(), peer)
            })
            .collect();
        assert_eq!(listed, expected);

        server.console(&format!("/kick {id_b}"));
        let goodbye = b.line();
        assert!(goodbye.starts_with("ERR "), "kick sent {goodbye:?}");
        b.expect_closed();
        let after_kick = retry(IO_TIMEOUT, || {
            let listed = list(&mut server);
            (listed.len() == 2).then_some(listed)
        })
        .expect("/list shows two clients after the kick");
        assert!(after_kick.contains_key(&id_a) && after_kick.contains_key(&id_c));
        server.console("@all still here");
        a.expect("still here");
        c.expect("still here");
        c.send_line("C is fine");
        server.expect_stdout(&format!("[{id_c}] C is fine"));

        let started = Instant::now();
        server.console("/quit");
        for client in [&mut a, &mut c] {
            client.expect_last("ERR server shutting down");
        }
        let status = server.wait_exit(started + SHUTDOWN_LIMIT);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: {status:?}");
    });
}

/// Messages to a client that has left, or to no one, do not disturb the others,
/// and the console keeps working.
#[test]
fn console_survives_departed_and_unknown_clients() {
    in_parallel(&models(), |&name| {
        let mut server = chat_server(name);
        let (mut a, id_a) = join(&server, "leaving");
        a.ask("bye", "bye");
        a.expect_closed();
        // The last speaker has gone; so has client `id_a`.
        server.console("anyone?");
        server.console(&format!("@{id_a} are you there?"));
        server.console("@99 nobody");
        server.console("/kick 99");
        server.console("/nonsense");
        // The console handles its input in order: once `/list` answers, the
        // lines above have been dealt with (and delivered to nobody).
        list(&mut server);
        let (mut b, id_b) = join(&server, "staying");
        server.console(&format!("@{id_b} hello B"));
        b.expect("hello B");
        assert!(server.is_running());
    });
}

/// A client line arriving in pieces is shown once, whole, when its end arrives.
#[test]
fn dribbled_chat_line_shows_once() {
    in_parallel(&models(), |&name| {
        let server = chat_server(name);
        let (mut client, id) = join(&server, "dribbler");
        for byte in "piece by piece\n".as_bytes() {
            client.send(&[*byte]);
        }
        client.send_line("then whole");
        // Exactly these two lines, in order: no fragment was shown on its own.
        for text in ["piece by piece", "then whole"] {
            assert_eq!(
                server.stdout_line(IO_TIMEOUT),
                Some(format!("[{id}] {text}"))
            );
        }
    });
}

/// A line the client had not finished when it was kicked is not shown to the
/// operator: input after the close goes unanswered, on every strategy.
#[test]
fn kick_drops_the_unfinished_line() {
    in_parallel(&models(), |&name| {
        let mut server = chat_server(name);
        let (mut client, id) = join(&server, name);
        client.send(b"finished\nunfinished secret");
        server.stdout_until("`[ID] finished`", |l| l.ends_with("] finished"));
        server.console(&format!("/kick {id}"));
        client.expect_last("ERR kicked by the operator");
        let gone = retry(IO_TIMEOUT, || {
            server.stderr_text().contains("disconnected").then_some(())
        });
        assert!(gone.is_some(), "{name}: the kicked client never left");
        let rest: Vec<String> = std::iter::from_fn(|| server.stdout_line(Duration::ZERO)).collect();
        assert!(
            !rest.iter().any(|l| l.contains("unfinished")),
            "{name} showed the unfinished line: {rest:?}"
        );
    });
}

/// Flooding a client that never reads with operator lines does not hang the
/// console: that client is dropped, and a `/quit` typed after the flood still
/// stops the server within seconds of the flood's start.
#[test]
fn console_survives_a_client_that_never_reads() {
    in_parallel(&models(), |&name| {
        let mut server = chat_server(name);
        let (_mute, id) = join(&server, name); // never reads again
        let line = "x".repeat(1000);
        let flood: String = (0..8_000).map(|_| format!("@{id} {line}\n")).collect();
        let started = Instant::now();
        server.console(flood.trim_end());
        server.console("/quit");
        let status = server.wait_exit(started + Duration::from_secs(5));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{name}: {status:?} {:?} after the flood began",
            started.elapsed()
        );
    });
}

/// A client's control characters reach the operator as escapes: a `\r` cannot
/// make its line pass for another client's, nor a sequence clear the screen.
#[test]
fn client_control_characters_are_shown_escaped() {
    let server = chat_server("event-loop");
    let (mut client, id) = join(&server, "first");
    client.send(b"innocent\r[2] I am client two\x1b[2J\n");
    server.expect_stdout(&format!(
        "[{id}] innocent\\r[2] I am client two\\u{{1b}}[2J"
    ));
}

/// `/kick ID` says on stdout that it was done. A plain line with nobody to go
/// to says why: a client's automatic `Hi` is not speaking, so with one client
/// that has only greeted, nobody has spoken yet.
#[test]
fn kick_confirms_and_a_plain_line_says_why_it_went_nowhere() {
    in_parallel(&models(), |&name| {
        let mut server = chat_server(name);
        server.console("anyone?");
        server.expect_stdout("no client is connected");
        let mut greeted = server.connect();
        greeted.greet();
        server.console("hello?");
        server.expect_stdout("nobody has spoken yet: use @ID text or @all text");
        let listed = list(&mut server);
        let id = listed.keys().next().expect("one client listed").clone();
        server.console(&format!("/kick {id}"));
        server.expect_stdout(&format!("kicked client {id}"));
        greeted.expect_last("ERR kicked by the operator");
        wait_gone(&mut server, &id);

        let (mut spoke, spoke_id) = join(&server, "leaving");
        spoke.ask("bye", "bye");
        spoke.expect_closed();
        wait_gone(&mut server, &spoke_id);
        let mut quiet = server.connect();
        quiet.greet();
        server.console("still there?");
        server.expect_stdout(
            "nobody has spoken since the last speaker left: use @ID text or @all text",
        );
    });
}

/// Waits until `/list` no longer shows client `id`.
fn wait_gone(server: &mut Server, id: &str) {
    let gone = retry(IO_TIMEOUT, || {
        (!list(server).contains_key(id)).then_some(())
    });
    assert!(gone.is_some(), "{}: client {id} never left", server.name);
}
