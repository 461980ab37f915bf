//! The servers over the wire (SPEC sections 2, 4, 5 and 6): the start line, the
//! greeting, `bye`, framing, echo's byte-exactness, calc and reverse, and what
//! each strategy promises about concurrency. Every behaviour runs against each
//! binary that shares it, in the mode that shows it.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{
    in_parallel, listed_models, matrix, models, modes, probe, run, start, text_modes, Client,
    Server, Stdin, COURSEWORK,
};

/// The first stdout line is exactly `listening on 127.0.0.1:PORT`, with the real port.
#[test]
fn listening_line_shows_the_bound_port() {
    in_parallel(&models(), |&name| {
        let server = Server::start(name, &["--mode", "reverse"]);
        assert_ne!(server.addr.port(), 0, "port 0 must show the port it got");
        assert_eq!(
            server.listening,
            format!("listening on 127.0.0.1:{}", server.addr.port())
        );
        Client::connect(server.addr).greet();
    });
}

/// With no HOST or PORT a server uses 127.0.0.1:5000: while the test holds that
/// port, each server fails naming exactly that address.
#[test]
fn defaults_are_loopback_port_5000() {
    let Ok(_held) = TcpListener::bind("127.0.0.1:5000") else {
        eprintln!("skipped: port 5000 is in use here");
        return;
    };
    in_parallel(&models(), |&name| {
        let out = run(name, &[], Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("127.0.0.1:5000"), "{name}: {stderr}");
    });
}

/// A number typed alone is the PORT, on 127.0.0.1 (never a host, which a
/// resolver would make 0.0.22.81 of `5713`): while the test holds
/// 127.0.0.1:PORT, `NAME PORT` fails naming exactly that address.
#[test]
fn a_port_typed_alone_is_the_port() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port().to_string();
    let names: Vec<&str> = COURSEWORK.into_iter().chain(models()).collect();
    in_parallel(&names, |&name| {
        let out = run(name, &[&port], Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("127.0.0.1:{port}")),
            "{name}: {stderr}"
        );
    });
}

/// A host that is a number or numeric shorthand is a usage error: one line
/// naming it, status 2, and no `listening on` line.
#[test]
fn numeric_hosts_are_refused() {
    let names: Vec<&str> = COURSEWORK.into_iter().chain(models()).collect();
    in_parallel(&names, |&name| {
        for host in ["5713", "127.1", "0x7f.1", "2130706433"] {
            let out = run(name, &[host, "0"], Duration::from_secs(10));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {host}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{name} {host}: {stderr}");
            assert!(
                stderr.contains(&format!("`{host}` is not a host")),
                "{name} {host}: {stderr}"
            );
            assert!(out.stdout.is_empty(), "{name} {host}");
        }
    });
}

/// `localhost` resolves to 127.0.0.1, as the coursework form `server2 localhost 5000` expects.
#[test]
fn localhost_means_ipv4_loopback() {
    in_parallel(&models(), |&name| {
        let server = Server::start_on(name, "localhost", &[], Stdin::Piped);
        assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
        server.connect().greet();
    });
}

/// On `::1` the start line reads `listening on [::1]:PORT` and clients are served there.
#[test]
fn ipv6_loopback_listening_line() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: ::1 is not available here");
        return;
    }
    in_parallel(&models(), |&name| {
        let server = Server::start_on(name, "::1", &["--mode", "reverse"], Stdin::Piped);
        assert!(server.addr.is_ipv6(), "{name}: {}", server.addr);
        let mut client = server.connect();
        client.greet();
        client.ask("ab", "ba");
        assert_eq!(
            server.listening,
            format!("listening on [::1]:{}", server.addr.port())
        );
    });
}

/// `Hi`, in any case and with `\r\n`, gets `Hello` in chat, calc and reverse on every server.
#[test]
fn hi_gets_hello_in_text_modes() {
    in_parallel(&matrix(&models(), &text_modes()), |&(name, mode)| {
        let server = start(name, mode, &[]);
        for hi in ["Hi\n", "hi\n", "HI\r\n", "hI\n"] {
            let mut client = server.connect();
            client.send(hi.as_bytes());
            client.expect("Hello");
            client.ask("bye", "bye");
            client.expect_closed();
        }
    });
}

/// In echo mode `Hi` is simply echoed, byte for byte, on every server.
#[test]
fn hi_is_echoed_in_echo_mode() {
    in_parallel(&models(), |&name| {
        let server = start(name, "echo", &[]);
        let mut client = server.connect();
        client.send(b"Hi\n");
        assert_eq!(client.read_raw_line().unwrap(), b"Hi\n");
        client.send(b"hi\r\n");
        assert_eq!(client.read_raw_line().unwrap(), b"hi\r\n");
    });
}

/// The behaviour suite runs over every model in the library's list, and
/// `server --model list` shows each of them, one line each: a model added to
/// the list cannot be left out of either.
#[test]
fn every_listed_model_is_served_and_listed() {
    let listed: Vec<&str> = switchboard::strategy::MODELS
        .iter()
        .map(|m| m.name)
        .collect();
    // Every one that can run here; the others are refused, and tested so.
    let runnable = switchboard::strategy::MODELS.iter();
    let runnable = runnable.filter(|m| m.strategy.check().is_ok());
    assert_eq!(
        listed_models(),
        runnable.map(|m| m.name).collect::<Vec<_>>()
    );
    let out = run("server", &["--model", "list"], Duration::from_secs(10));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, listed, "{text}");
    in_parallel(&models(), |&name| {
        let server = Server::start(name, &["--mode", "reverse"]);
        server.connect().ask("abc", "cba");
    });
}

/// Each coursework binary serves its model in its default mode: server1–3
/// chat with the operator, server4 echoes; server1 alone has one seat.
#[test]
fn coursework_binaries_are_their_models() {
    in_parallel(&COURSEWORK, |&name| {
        let server = Server::start(name, &[]);
        let mut client = server.connect();
        if name == "server4" {
            client.ask("Hi", "Hi");
            return;
        }
        client.greet();
        client.send_line("to the operator");
        server.expect_stdout("[1] to the operator");
        let mut second = server.connect();
        if name == "server1" {
            second.expect_last("ERR busy: serving another client");
        } else {
            second.greet();
        }
    });
}

/// server4 is an echo server by default.
#[test]
fn server4_defaults_to_echo() {
    let server = Server::start("server4", &[]);
    let mut client = server.connect();
    client.ask("Hi", "Hi");
    client.ask("2+2", "2+2");
}

/// `bye` and `exit`, in any case and with `\r\n`, get `bye` and a close in every mode
/// on every server; the server keeps running for the next client.
#[test]
fn bye_and_exit_close_in_every_mode() {
    in_parallel(&matrix(&models(), &modes()), |&(name, mode)| {
        let server = start(name, mode, &[]);
        for word in ["bye\n", "exit\n", "BYE\r\n", "Exit\n", "  bye  \n"] {
            let mut client = server.connect();
            if mode != "echo" {
                client.greet();
            }
            client.send(word.as_bytes());
            client.expect_last("bye");
        }
        let mut client = server.connect();
        match probe(mode) {
            Some((ask, answer)) => client.ask(ask, answer),
            None => client.greet(),
        }
    });
}

/// Lines pipelined after `bye` in the same packet are not answered.
#[test]
fn nothing_is_answered_after_bye() {
    in_parallel(&models(), |&name| {
        let server = start(name, "reverse", &[]);
        let mut client = server.connect();
        client.send(b"ab\nbye\ncd\n");
        client.expect("ba");
        client.expect_last("bye");
    });
}

/// A client that half-closes gets the replies to everything it sent — a last line
/// without `\n` included — and then the close, on every server and mode. Echo
/// gives back exactly the bytes it got, so that last line comes back without `\n`.
#[test]
fn half_close_gets_replies_then_close() {
    in_parallel(&matrix(&models(), &modes()), |&(name, mode)| {
        let server = start(name, mode, &[]);
        let mut client = server.connect();
        let (ask, answer) = probe(mode).unwrap_or(("hello operator", ""));
        client.send(format!("Hi\n{ask}\n{ask}").as_bytes());
        client.half_close();
        match mode {
            "echo" => {
                client.expect("Hi");
                client.expect(answer);
                assert_eq!(client.read_raw_line().unwrap(), answer.as_bytes());
            }
            "chat" => client.expect("Hello"), // the lines go to the operator
            _ => {
                client.expect("Hello");
                client.expect(answer);
                client.expect(answer);
            }
        }
        client.expect_closed();
        if mode == "chat" {
            server.expect_stdout(&format!("[1] {ask}"));
            server.expect_stdout(&format!("[1] {ask}"));
        }
    });
}

/// calc mode answers the SPEC's examples over the wire, exactly, and a bad
/// expression gets `invalid expression: ...` while the session goes on.
#[test]
fn calc_examples_over_the_wire() {
    let cases = [
        ("2+3*4", "14"),
        ("7/2", "3.5"),
        ("8/2", "4"),
        ("2**3**2", "512"),
        ("-2**2", "-4"),
        ("(1+2)*3", "9"),
        ("10%3", "1"),
        ("1.5+1", "2.5"),
        ("2**100", "1267650600228229401496703205376"),
        (" 2 + 3 ", "5"),
    ];
    in_parallel(&models(), |&name| {
        let server = start(name, "calc", &[]);
        let mut client = server.connect();
        client.greet();
        for (expr, value) in cases {
            client.ask(expr, value);
        }
        for bad in ["1/0", "2+", "abc", "9**9**9", "(((1)", "1 % 0"] {
            client.send_line(bad);
            let reply = client.line();
            assert!(
                reply.starts_with("invalid expression: "),
                "{bad:?} got {reply:?}"
            );
        }
        client.ask("1+1", "2");
        // A `\r\n` line is the same expression.
        client.send(b"6*7\r\n");
        client.expect("42");
    });
}

/// calc never hangs or blows up on hostile input: deep nesting and huge powers are refused.
#[test]
fn calc_refuses_hostile_input_promptly() {
    in_parallel(&models(), |&name| {
        let server = start(name, "calc", &[]);
        let mut client = server.connect();
        let started = Instant::now();
        for hostile in [
            "(".repeat(10_000) + "1" + &")".repeat(10_000),
            "-".repeat(10_000) + "1",
            "9**9**9**9**9".to_owned(),
            "10**1000000".to_owned(),
        ] {
            client.send_line(&hostile);
            let reply = client.line();
            assert!(reply.starts_with("invalid expression: "), "{reply}");
        }
        assert!(started.elapsed() < Duration::from_secs(4));
        client.ask("2*2", "4");
    });
}

/// reverse mode reverses by characters, so multi-byte text stays valid UTF-8,
/// and drops the `\r` of `\r\n`.
#[test]
fn reverse_by_characters() {
    in_parallel(&models(), |&name| {
        let server = start(name, "reverse", &[]);
        let mut client = server.connect();
        client.greet();
        client.ask("hello", "olleh");
        client.ask("héllo→ wörld", "dlröw →olléh");
        client.ask("", "");
        client.send("日本語\r\n".as_bytes());
        client.expect("語本日");
        // Only the first line is a greeting.
        client.ask("Hi", "iH");
    });
}

/// Echo returns exactly the bytes it got: `\r\n` kept, invalid UTF-8, NUL and
/// empty lines included, on every server.
#[test]
fn echo_is_byte_exact() {
    in_parallel(&models(), |&name| {
        let server = start(name, "echo", &[]);
        let mut client = server.connect();
        for line in [
            &b"plain\n"[..],
            b"with crlf\r\n",
            b"\xff\xfe\xc3(\n",
            b"nul \0 byte\n",
            b"\n",
            b"\r\n",
            b"   spaced   \n",
            "ünïcödé\n".as_bytes(),
        ] {
            client.send(line);
            assert_eq!(client.read_raw_line().unwrap(), line);
        }
    });
}

/// A 1 MiB line (with `--max-line` raised) comes back byte for byte, twice in a row.
#[test]
fn echo_large_line() {
    in_parallel(&models(), |&name| {
        let server = start(name, "echo", &["--max-line", "2000000"]);
        let client = server.connect();
        let line: Vec<u8> = (0..1 << 20)
            .map(|i: u32| b'a' + (i % 26) as u8)
            .chain(*b"\n")
            .collect();
        let mut writer = client.stream().try_clone().expect("clone");
        let sent = line.clone();
        // Write from another thread: the replies flow back while we still send.
        let feeder = std::thread::spawn(move || {
            writer.write_all(&sent)?;
            writer.write_all(&sent)
        });
        let mut client = client;
        for _ in 0..2 {
            let got = client.read_raw_line().expect("echo of the large line");
            assert!(got == line, "{name}: {} bytes back, differ", got.len());
        }
        feeder.join().unwrap().expect("large lines sent");
    });
}

/// Many lines in one write come back one by one, in order (framing is by line,
/// never by `recv` size).
#[test]
fn pipelined_lines() {
    let pairs: Vec<(&str, &str)> = models()
        .iter()
        .flat_map(|s| ["echo", "calc"].map(move |m| (*s, m)))
        .collect();
    in_parallel(&pairs, |&(name, mode)| {
        let server = start(name, mode, &[]);
        let client = server.connect();
        let batch: String = (0..2000).map(|i| format!("{i}+1\n")).collect();
        let mut writer = client.stream().try_clone().expect("clone");
        let feeder = std::thread::spawn(move || writer.write_all(batch.as_bytes()));
        let mut client = client;
        for i in 0..2000 {
            let want = if mode == "echo" {
                format!("{i}+1")
            } else {
                (i + 1).to_string()
            };
            client.expect(&want);
        }
        feeder.join().unwrap().expect("batch sent");
    });
}

/// Lines dribbled one byte per packet are answered once each, whole — including a
/// multi-byte character cut between packets and a `\r\n` split from its `\n`.
#[test]
fn dribbled_lines() {
    let pairs: Vec<(&str, &str)> = models()
        .iter()
        .flat_map(|s| ["echo", "reverse"].map(move |m| (*s, m)))
        .collect();
    in_parallel(&pairs, |&(name, mode)| {
        let server = start(name, mode, &[]);
        let mut client = server.connect();
        let input = "Hi\r\nhéllo wörld\r\nabc\n";
        for byte in input.as_bytes() {
            client.send(&[*byte]);
        }
        if mode == "echo" {
            assert_eq!(client.read_raw_line().unwrap(), b"Hi\r\n");
            assert_eq!(
                client.read_raw_line().unwrap(),
                "héllo wörld\r\n".as_bytes()
            );
            assert_eq!(client.read_raw_line().unwrap(), b"abc\n");
        } else {
            client.expect("Hello");
            client.expect("dlröw olléh");
            client.expect("cba");
        }
    });
}

/// server1 turns a second client away at once with `ERR busy: serving another
/// client`, and serves the next client as soon as the first has said bye.
#[test]
fn server1_busy_then_hand_over() {
    in_parallel(&modes(), |&mode| {
        let server = start("server1", mode, &[]);
        let mut first = server.connect();
        if mode == "echo" {
            first.ask("Hi", "Hi");
        } else {
            first.greet();
        }
        for _ in 0..3 {
            let started = Instant::now();
            let mut second = server.connect();
            second.expect_last("ERR busy: serving another client");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the busy reply took {:?}",
                started.elapsed()
            );
        }
        // The first client was not disturbed by the others.
        if let Some((ask, answer)) = probe(mode) {
            first.ask(ask, answer);
        }
        first.ask("bye", "bye");
        first.expect_closed();
        // Whoever read `bye` may reconnect at once and find the seat free.
        let mut next = server.connect();
        if mode == "echo" {
            next.ask("Hi", "Hi");
        } else {
            next.greet();
        }
        let mut third = server.connect();
        third.expect_last("ERR busy: serving another client");
    });
}

/// The busy client's socket sees the close: writing to it eventually fails
/// rather than hanging.
#[test]
fn server1_busy_client_is_not_left_hanging() {
    let server = start("server1", "calc", &[]);
    let mut first = server.connect();
    first.greet();
    let mut second = server.connect();
    second.expect_last("ERR busy: serving another client");
    let mut failed = false;
    for _ in 0..100 {
        let result = second.stream().write(b"anyone there?\n");
        if result.is_err() {
            failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(failed, "writes to a refused connection kept succeeding");
    first.ask("1+1", "2");
}

/// Connects `n` clients, greets each, has each ask one question, all while every
/// connection stays open; returns them.
fn crowd(server: &Server, n: usize, mode: &str) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..n).map(|_| server.connect()).collect();
    let hello = if mode == "echo" { "Hi" } else { "Hello" };
    for client in &mut clients {
        client.send(b"Hi\n");
    }
    for client in &mut clients {
        client.expect(hello);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client.send_line(&format!("{i}ab"));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let want = match mode {
            "reverse" => format!("ba{}", i.to_string().chars().rev().collect::<String>()),
            _ => format!("{i}ab"),
        };
        client.expect(&want);
    }
    clients
}

/// server2 serves 200 clients at once, each on a thread of its own.
#[test]
fn server2_serves_200_concurrent_clients() {
    let server = start("server2", "reverse", &[]);
    let clients = crowd(&server, 200, "reverse");
    if let Some(threads) = server.threads() {
        assert!(threads >= 200, "thread-per-client with {threads} threads");
    }
    drop(clients);
}

/// server3 and server4 serve 1,000 clients at once from one event-loop thread
/// (at most 4 threads: the loop, the console reader and writer, the signal handler).
#[test]
fn event_loops_serve_1000_clients_on_few_threads() {
    in_parallel(
        &[("server3", "reverse"), ("server4", "echo")],
        |&(name, mode)| {
            let server = start(name, mode, &[]);
            let clients = crowd(&server, 1000, mode);
            match server.threads() {
                Some(threads) => assert!(threads <= 4, "{name} runs {threads} threads"),
                None => eprintln!("thread count not checked: no /proc here"),
            }
            drop(clients);
        },
    );
}

/// With stdin at end of file (`/dev/null`, as under CI) every server keeps serving
/// in every mode, without spinning.
#[test]
fn stdin_at_eof_keeps_serving() {
    in_parallel(&matrix(&models(), &modes()), |&(name, mode)| {
        let mut server = Server::start_on(name, "127.0.0.1", &["--mode", mode], Stdin::Null);
        let check = |server: &Server| {
            let mut client = server.connect();
            match probe(mode) {
                Some((ask, answer)) => client.ask(ask, answer),
                None => {
                    client.greet();
                    client.send_line("still there?");
                    server.stdout_until("ending in `still there?`", |l| {
                        l.ends_with("] still there?")
                    });
                }
            }
        };
        check(&server);
        server.assert_idle_for(Duration::from_millis(500));
        check(&server);
    });
}

/// A closed console pipe (the operator's stdin ends) does not stop a chat server either.
#[test]
fn console_eof_keeps_serving() {
    in_parallel(&models(), |&name| {
        let mut server = start(name, "chat", &[]);
        server.close_stdin();
        server.assert_idle_for(Duration::from_millis(300));
        let mut client = server.connect();
        client.greet();
        client.ask("bye", "bye");
    });
}
