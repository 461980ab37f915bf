//! A three-user instant messenger: user1 serves, user2 and user3 connect.
//!
//! ```text
//! cargo run --example messenger -- 127.0.0.1 5000     # user1, typing at this console
//! cargo run --bin client -- 127.0.0.1 5000            # user2 (the first to connect)
//! cargo run --bin client -- 127.0.0.1 5000            # user3
//! ```
//!
//! Everyone types from the keyboard, and `#` ends a turn. First user2 and
//! user3 write; user1 sees everything they send until both have typed `#`.
//! Then user1 replies to each in turn: user1's lines go to user2 until user1
//! types `#`, then to user3 until `#` again, and the clients write once more.
//! user2 and user3 see only user1's lines, never each other's. A line typed
//! out of turn is not delivered: its writer is told whose turn it is, and
//! every turn change is announced with a `*` line. `Exit` from a client ends
//! that client's session; the program ends (status 0) once both have said
//! `Exit`. user1's `Exit` closes the messenger for everyone (the clients see
//! `ERR server shutting down`), as does Ctrl-C.
//!
//! How it is built on the library: the rules live in `turns.rs`, a state
//! machine without I/O. Three sources feed it over one channel — a [`Mode`]
//! that forwards the clients' lines, a [`Clients::on_presence`] hook that
//! reports clients joining and leaving (a client's `Exit` is answered with
//! `bye` by the session itself, so leaving is how the messenger hears of it),
//! and a thread reading user1's keyboard — and one thread applies them in
//! order, printing for user1 and sending to clients with [`Clients::send`].

mod turns;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};

use switchboard::address::Address;
use switchboard::clients::{Clients, Presence};
use switchboard::mode::Speaker;
use switchboard::{net, serve, Error, EventLoop, Mode, Server, Shutdown};
use switchboard::{Goodbye, Outbound};
use turns::{Input, Output, Turns};

/// Inputs waiting for the rules thread, at most.
const INPUTS_WAITING: usize = 1024;

/// The clients' lines, forwarded to the thread that applies the rules.
struct Relay(SyncSender<Input>);

impl Mode for Relay {
    fn on_line(&self, from: Speaker<'_>, line: &str, _out: &mut Vec<u8>) {
        let _ = self.0.send(Input::Client(from.id, line.to_owned()));
    }
}

fn main() -> ExitCode {
    // A port typed alone is the port; a host in numeric shorthand is refused.
    let address = match Address::from_args(std::env::args().skip(1)) {
        Ok(address) => address,
        Err(why) => {
            eprintln!("messenger: {why}\nusage: messenger [HOST] [PORT]");
            return ExitCode::from(2);
        }
    };
    match run(&address) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("messenger: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(address: &Address) -> Result<(), Error> {
    let listener = net::bind(&address.resolve()?)?;
    let addr = listener
        .local_addr()
        .map_err(Error::io("reading the bound address"))?;
    say(&format!("listening on {addr}"));
    say("* you are user1: user2 and user3 write first, then you reply to each; # ends a turn, Exit quits");

    // Bounded, so that user1 typing (or pasting) faster than the rules are
    // applied cannot grow it without end: the keyboard's thread then waits,
    // and so, briefly, would the loop handing in a client's line.
    let (tx, inputs) = mpsc::sync_channel(INPUTS_WAITING);
    let server = Server::new(Relay(tx.clone()));
    let presence = tx.clone();
    server.clients().on_presence(move |change| {
        let _ = presence.send(match change {
            Presence::Joined(id) => Input::Joined(id),
            Presence::Left(id) => Input::Left(id),
        });
    });
    // End of input (stdin closed or a file) only ends this thread.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            let _ = tx.send(Input::User1(line));
        }
    });
    let (clients, shutdown) = (server.clients().clone(), server.shutdown.clone());
    std::thread::spawn(move || apply_rules(&inputs, &clients, &shutdown));
    let stop = server.shutdown.clone();
    if let Err(e) = ctrlc::set_handler(move || stop.trigger()) {
        say(&format!(
            "* Ctrl-C will not close the messenger gracefully: {e}"
        ));
    }
    // The select-style loop writes a client's `bye` before reporting it gone,
    // so ending the program on the last `Exit` cannot cut that line off.
    serve(&EventLoop, listener, server)
}

/// Applies each input to the rules and carries out what they say.
fn apply_rules(inputs: &Receiver<Input>, clients: &Clients, shutdown: &Shutdown) {
    let mut turns = Turns::default();
    for input in inputs {
        for output in turns.handle(input) {
            match output {
                Output::User1(line) => say(&line),
                Output::Client(id, line) => {
                    clients.send(id, Outbound::Line(line));
                }
                Output::Refuse(id) => {
                    let why = Goodbye::Busy("user2 and user3 are taken");
                    clients.send(id, Outbound::Close(why));
                }
                Output::End => shutdown.trigger(),
            }
        }
    }
}

/// One line on user1's screen. A closed stdout is ignored, not a panic.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}
