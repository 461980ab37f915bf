//! Start, stop and exit codes (SPEC sections 2 and 3): every shutdown path —
//! SIGTERM, SIGINT, `/quit` — tells each client `ERR server shutting down` and
//! exits 0 within one second; a bind failure is one stderr line and exit 1;
//! `--help` and `--version` exit 0; a usage error exits 2.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{in_parallel, models, run, Client, Server, Stdin, COURSEWORK, SHUTDOWN_LIMIT, SINGLE};

/// How the test asks a server to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// `/quit` typed at the console.
    Quit,
    /// A signal, by name, for `kill -NAME`.
    #[cfg_attr(not(unix), allow(dead_code))]
    Signal(&'static str),
}

fn stop(server: &mut Server, how: Stop) {
    match how {
        Stop::Quit => server.console("/quit"),
        #[cfg(unix)]
        Stop::Signal(name) => server.signal(name),
        #[cfg(not(unix))]
        Stop::Signal(_) => unreachable!("signals are only sent on unix"),
    }
}

/// The ways to stop a server on this platform.
fn stops() -> Vec<Stop> {
    let mut all = vec![Stop::Quit];
    if cfg!(unix) {
        all.extend([Stop::Signal("TERM"), Stop::Signal("INT")]);
    }
    all
}

/// Starts `name` in `mode`, connects clients (one for server1) and has each
/// show it is served; stops the server `how`; checks every client gets
/// `ERR server shutting down` and a close, and the process exits 0 in time.
fn stop_with_clients(name: &'static str, mode: &str, how: Stop) {
    let mut server = Server::start(name, &["--mode", mode]);
    let count = if name == SINGLE { 1 } else { 3 };
    let mut clients: Vec<Client> = (0..count).map(|_| server.connect()).collect();
    for client in &mut clients {
        if mode == "echo" {
            client.ask("Hi", "Hi");
        } else {
            client.greet();
        }
    }
    if let Some(last) = clients.last_mut() {
        // A line in progress does not delay the goodbye.
        last.send(b"half a li");
    }
    let started = Instant::now();
    stop(&mut server, how);
    for client in &mut clients {
        client.expect_last("ERR server shutting down");
    }
    let status = server.wait_exit(started + SHUTDOWN_LIMIT);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{name} after {how:?}: {status:?} after {:?}; stderr:\n{}",
        started.elapsed(),
        server.stderr_text()
    );
}

/// SIGTERM, SIGINT and `/quit` each make every server tell its clients and exit 0
/// within one second.
#[test]
fn every_stop_path_on_every_server() {
    let cases: Vec<(&'static str, Stop)> = models()
        .iter()
        .flat_map(|name| stops().into_iter().map(move |how| (*name, how)))
        .collect();
    in_parallel(&cases, |&(name, how)| stop_with_clients(name, "chat", how));
}

/// `/quit` on stdin works in every mode, not just chat.
#[test]
fn quit_works_in_every_mode() {
    let cases: Vec<(&'static str, &'static str)> = models()
        .iter()
        .flat_map(|name| ["calc", "echo", "reverse"].map(move |mode| (*name, mode)))
        .collect();
    in_parallel(&cases, |&(name, mode)| {
        stop_with_clients(name, mode, Stop::Quit)
    });
}

/// A server with no clients at all stops at once on every path, even when
/// stopped the moment its `listening on` line appears.
#[test]
fn stop_right_after_start() {
    let cases: Vec<(&'static str, Stop)> = models()
        .iter()
        .flat_map(|name| stops().into_iter().map(move |how| (*name, how)))
        .collect();
    in_parallel(&cases, |&(name, how)| {
        let mut server = Server::start(name, &[]);
        let started = Instant::now();
        stop(&mut server, how);
        let status = server.wait_exit(started + SHUTDOWN_LIMIT);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{name} after {how:?}: {status:?}; stderr:\n{}",
            server.stderr_text()
        );
    });
}

/// A stopped server is stopped: nobody connected later is served, and with
/// stdin at end of file a signal still ends it.
#[cfg(unix)]
#[test]
fn signal_stops_a_server_whose_stdin_is_closed() {
    in_parallel(&models(), |&name| {
        let mut server = Server::start_on(name, "127.0.0.1", &["--mode", "calc"], Stdin::Null);
        let mut client = server.connect();
        client.greet();
        let started = Instant::now();
        server.signal("TERM");
        client.expect_last("ERR server shutting down");
        let status = server.wait_exit(started + SHUTDOWN_LIMIT);
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: {status:?}");
    });
}

/// A port already in use: exactly one stderr line naming the address, exit 1,
/// nothing on stdout, no panic.
#[test]
fn bind_failure_is_one_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().unwrap();
    let port = addr.port().to_string();
    in_parallel(&models(), |&name| {
        let out = run(name, &["127.0.0.1", &port], Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: stderr {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{name}: stderr {stderr:?}");
        assert!(stderr.contains(&addr.to_string()), "{name}: {stderr:?}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr:?}");
        assert!(out.stdout.is_empty(), "{name} printed on stdout");
    });
    drop(taken);
}

/// `--help` and `--version` print to stdout and exit 0 on every server.
#[test]
fn help_and_version_exit_0() {
    let binaries: Vec<&str> = COURSEWORK.iter().copied().chain(["server"]).collect();
    in_parallel(&binaries, |&name| {
        let help = run(name, &["--help"], Duration::from_secs(10));
        assert_eq!(help.status.code(), Some(0), "{name} --help");
        let text = String::from_utf8_lossy(&help.stdout);
        for option in [
            "--mode",
            "--max-clients",
            "--idle-timeout",
            "--max-line",
            "HOST",
            "PORT",
        ] {
            assert!(text.contains(option), "{name} --help lacks {option}");
        }
        let version = run(name, &["--version"], Duration::from_secs(10));
        assert_eq!(version.status.code(), Some(0), "{name} --version");
        let text = String::from_utf8_lossy(&version.stdout);
        assert!(
            text.starts_with(name) && text.contains(env!("CARGO_PKG_VERSION")),
            "{name} --version printed {text:?}"
        );
    });
}

/// The usage line shows HOST and PORT as optional, `[HOST] [PORT]`, in
/// `--help` and in usage errors after them: clap's own line in an error shows
/// those given as required (`server --model <NAME> <HOST> <PORT>`).
#[test]
fn usage_shows_host_and_port_as_optional() {
    let usage = |text: &[u8]| {
        let text = String::from_utf8_lossy(text);
        let line = text.lines().find(|l| l.starts_with("Usage: "));
        line.map(str::to_owned)
            .unwrap_or_else(|| panic!("no usage in {text}"))
    };
    let binaries: Vec<&str> = COURSEWORK
        .iter()
        .copied()
        .chain(["server", "client"])
        .collect();
    in_parallel(&binaries, |&name| {
        let help = run(name, &["--help"], Duration::from_secs(10));
        let error = run(
            name,
            &["localhost", "5000", "--bogus"],
            Duration::from_secs(10),
        );
        assert_eq!(error.status.code(), Some(2), "{name}");
        for line in [usage(&help.stdout), usage(&error.stderr)] {
            assert!(line.contains(" [HOST] [PORT] "), "{name}: {line}");
            assert!(
                !line.contains("<HOST>") && !line.contains("<PORT>"),
                "{line}"
            );
        }
    });
    let no_model = run("server", &["localhost", "5000"], Duration::from_secs(10));
    assert_eq!(no_model.status.code(), Some(2));
    assert_eq!(
        usage(&no_model.stderr),
        "Usage: server [HOST] [PORT] --model <NAME> [OPTIONS]"
    );
}

/// A usage error exits 2 with clap's message on stderr, on every server.
#[test]
fn usage_error_exits_2() {
    let bad: [&[&str]; 8] = [
        &["--bogus"],
        // A negative number is read as the option's value, and refused.
        &["--idle-timeout", "-1"],
        &["--mode", "nonsense"],
        &["127.0.0.1", "99999"],
        &["127.0.0.1", "port"],
        &["--max-clients", "0"],
        &["--max-line", "-5"],
        &["--idle-timeout", "soon"],
    ];
    in_parallel(&models(), |&name| {
        for args in bad {
            let out = run(name, args, Duration::from_secs(10));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(stderr.starts_with("error: "), "{name} {args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{name} {args:?} printed on stdout");
        }
    });
}

/// Every server accepts every shared option (SPEC section 2).
#[test]
fn every_server_accepts_every_option() {
    in_parallel(&models(), |&name| {
        let server = Server::start(
            name,
            &[
                "--mode",
                "reverse",
                "--max-clients",
                "5",
                "--idle-timeout",
                "30",
                "--max-line",
                "100",
                "-q",
            ],
        );
        let mut client = server.connect();
        client.greet();
        client.ask("abc", "cba");
        drop(server);
        let server = Server::start(name, &["-v", "--mode", "calc"]);
        server.connect().ask("1+2", "3");
    });
}

/// Starts `name` with `args` (and `RUST_LOG` if given), serves one client,
/// quits, and returns the stdout lines after `listening on` and all of stderr.
fn session_output(
    name: &'static str,
    args: &[&str],
    rust_log: Option<&str>,
) -> (Vec<String>, String) {
    let mut command = common::command(name);
    command.args(["127.0.0.1", "0"]).args(args);
    match rust_log {
        Some(spec) => command.env("RUST_LOG", spec),
        None => command.env_remove("RUST_LOG"),
    };
    let mut server = Server::spawn(name, command, Stdin::Piped);
    let mut client = server.connect();
    client.greet();
    client.ask("2*3", "6");
    client.ask("bye", "bye");
    client.expect_closed();
    let started = Instant::now();
    server.console("/quit");
    let status = server.wait_exit(started + SHUTDOWN_LIMIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: {status:?}");
    (server.stdout_rest(), server.stderr_at_exit())
}

/// Logs (connected, disconnected) go to stderr, without colour codes when piped;
/// stdout carries nothing but the `listening on` line outside chat mode.
#[test]
fn logs_go_to_stderr_only() {
    in_parallel(&models(), |&name| {
        let (stdout, stderr) = session_output(name, &["--mode", "calc"], None);
        assert!(stdout.is_empty(), "{name} printed on stdout: {stdout:?}");
        assert!(stderr.contains("connected"), "{name}: {stderr}");
        assert!(stderr.contains("disconnected"), "{name}: {stderr}");
        assert!(!stderr.contains('\x1b'), "{name} coloured piped logs");
    });
}

/// `-q` silences the connection logs; `RUST_LOG`, when set, wins over `-q`.
#[test]
fn quiet_flag_and_rust_log() {
    in_parallel(&models(), |&name| {
        let (_, quiet) = session_output(name, &["--mode", "calc", "-q"], None);
        assert!(!quiet.contains("connected"), "{name} -q logged: {quiet}");
        let (_, loud) = session_output(name, &["--mode", "calc", "-q"], Some("debug"));
        assert!(
            loud.contains("connected"),
            "{name} RUST_LOG=debug -q: {loud}"
        );
    });
}
