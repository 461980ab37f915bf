//! The messenger's rules as a state machine without I/O: an [`Input`] in,
//! the lines to deliver out. Nothing here touches a socket or a terminal, so
//! every rule is tested directly (the tests are at the end of this file).
//!
//! - Clients take the seats `user2` and `user3` in the order they connect; a
//!   seat is never given again, and a third client is turned away.
//! - **The clients' turn** (the first): each line a client sends is shown to
//!   user1, and only to user1. A client's `#` ends its turn; later lines from
//!   it are refused until its next turn. Once every client still here has
//!   typed `#`, the turn passes to user1.
//! - **user1's turn**: user1 replies to each client in seat order. user1's
//!   lines go to user2 until user1 types `#`, then to user3 until `#` again;
//!   then it is the clients' turn once more. Clients not here are skipped.
//! - Out of turn, a line is not delivered: its writer is told whose turn it is.
//! - `Exit` ends that user's session: a client's ends its connection (seen
//!   here as [`Input::Left`]), user1's ends the messenger. Once both clients
//!   have left, the messenger ends.

use switchboard::ClientId;

/// The client seats, in the order clients take them.
const NAMES: [&str; 2] = ["user2", "user3"];

const YOUR_TURN: &str = "* your turn: write to user1; # ends it";

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A client connected.
    Joined(ClientId),
    /// A client is gone: it said `Exit` (or `bye`), or its connection dropped.
    Left(ClientId),
    /// A client sent a line.
    Client(ClientId, String),
    /// user1 typed a line at the server's console.
    User1(String),
}

/// What to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Show a line on user1's screen.
    User1(String),
    /// Send a line to one client.
    Client(ClientId, String),
    /// Turn this client away: both seats are taken.
    Refuse(ClientId),
    /// The conversation is over: end the program.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seat {
    Free,
    Taken(ClientId),
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// The clients write to user1; `done[s]` once seat `s` has typed `#`.
    Clients { done: [bool; 2] },
    /// user1 replies to the client in seat `to`.
    User1 { to: usize },
}

/// Who sits where, whose turn it is, and what each line means.
#[derive(Debug)]
pub struct Turns {
    seats: [Seat; 2],
    turn: Turn,
    over: bool,
    out: Vec<Output>,
}

impl Default for Turns {
    fn default() -> Self {
        Turns {
            seats: [Seat::Free; 2],
            turn: Turn::Clients { done: [false; 2] },
            over: false,
            out: Vec::new(),
        }
    }
}

impl Turns {
    /// Applies one input; returns what to deliver, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        if !self.over {
            match input {
                Input::Joined(id) => self.joined(id),
                Input::Left(id) => self.left(id),
                Input::Client(id, line) => self.client_line(id, &line),
                Input::User1(line) => self.user1_line(&line),
            }
        }
        std::mem::take(&mut self.out)
    }

    fn joined(&mut self, id: ClientId) {
        let Some(s) = self.seats.iter().position(|seat| *seat == Seat::Free) else {
            self.tell_user1("* a third client was turned away");
            self.out.push(Output::Refuse(id));
            return;
        };
        self.seats[s] = Seat::Taken(id);
        self.tell_user1(format!("* {} joined", NAMES[s]));
        self.tell(
            s,
            format!("* you are {}: # ends your turn, Exit leaves", NAMES[s]),
        );
        match self.turn {
            Turn::Clients { .. } => self.tell(s, YOUR_TURN),
            Turn::User1 { to } => {
                self.tell(s, format!("* user1's turn: replying to {}", whom(s, to)))
            }
        }
    }

    fn left(&mut self, id: ClientId) {
        let Some(s) = self.seat_of(id) else {
            return; // a client that was turned away
        };
        self.seats[s] = Seat::Left;
        let gone = format!("* {} has left", NAMES[s]);
        self.tell_user1(gone.clone());
        for other in self.here() {
            self.tell(other, gone.clone());
        }
        if self.seats.iter().all(|seat| *seat == Seat::Left) {
            self.tell_user1("* user2 and user3 have left: goodbye");
            self.end();
            return;
        }
        match self.turn {
            Turn::Clients { .. } => {
                self.end_clients_turn_if_done();
            }
            Turn::User1 { to } if to == s => self.user1_turn_from(s + 1),
            Turn::User1 { .. } => {}
        }
    }

    fn client_line(&mut self, id: ClientId, line: &str) {
        let Some(s) = self.seat_of(id) else {
            return; // a client being turned away
        };
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        match self.turn {
            Turn::User1 { to } => {
                let why = format!("* not your turn: user1 is replying to {}", whom(s, to));
                self.tell(s, why);
            }
            Turn::Clients { done } if done[s] => {
                let why = format!(
                    "* not your turn: waiting for {} to end their turn, then user1 replies",
                    self.still_writing()
                );
                self.tell(s, why);
            }
            Turn::Clients { mut done } if text == "#" => {
                done[s] = true;
                self.turn = Turn::Clients { done };
                self.tell_user1(format!("* {} ended their turn", NAMES[s]));
                if !self.end_clients_turn_if_done() {
                    let wait = format!("* turn ended: waiting for {}", self.still_writing());
                    self.tell(s, wait);
                }
            }
            Turn::Clients { .. } => self.tell_user1(format!("{}: {line}", NAMES[s])),
        }
    }

    fn user1_line(&mut self, line: &str) {
        let text = line.trim();
        if text.eq_ignore_ascii_case("exit") {
            // The clients learn it from the server's `ERR server shutting down`.
            self.end();
            return;
        }
        if text.is_empty() {
            return;
        }
        match self.turn {
            Turn::Clients { .. } if self.here().next().is_none() => {
                let why = format!("* not your turn: waiting for {} to connect", self.awaited());
                self.tell_user1(why);
            }
            Turn::Clients { .. } => {
                let why = format!(
                    "* not your turn: waiting for {} to end their turn with #",
                    self.still_writing()
                );
                self.tell_user1(why);
            }
            Turn::User1 { to } if text == "#" => self.user1_turn_from(to + 1),
            Turn::User1 { to } => self.tell(to, format!("user1: {line}")),
        }
    }

    /// Hands the turn to user1 once every client still here has typed `#`.
    fn end_clients_turn_if_done(&mut self) -> bool {
        let Turn::Clients { done } = self.turn else {
            return false;
        };
        if self.here().next().is_none() || !self.here().all(|s| done[s]) {
            return false;
        }
        self.user1_turn_from(0);
        true
    }

    /// user1 replies to the first client here from seat `first` on; past the
    /// last one, the clients' turn begins.
    fn user1_turn_from(&mut self, first: usize) {
        let Some(to) = self.here().find(|&s| s >= first) else {
            return self.clients_turn();
        };
        self.turn = Turn::User1 { to };
        let then = match self.here().find(|&s| s > to) {
            Some(next) => format!("# to move on to {}", NAMES[next]),
            None => "# to end your turn".into(),
        };
        self.tell_user1(format!("* your turn: reply to {}, then {then}", NAMES[to]));
        for s in self.here() {
            self.tell(s, format!("* user1's turn: replying to {}", whom(s, to)));
        }
    }

    fn clients_turn(&mut self) {
        self.turn = Turn::Clients { done: [false; 2] };
        if self.here().next().is_none() {
            let wait = format!("* waiting for {} to connect", self.awaited());
            self.tell_user1(wait);
            return;
        }
        self.tell_user1(format!(
            "* clients' turn: {} write to you",
            self.still_writing()
        ));
        for s in self.here() {
            self.tell(s, YOUR_TURN);
        }
    }

    /// The clients here who have not yet ended the clients' turn.
    fn still_writing(&self) -> String {
        let done = match self.turn {
            Turn::Clients { done } => done,
            Turn::User1 { .. } => [false; 2],
        };
        names(self.here().filter(|&s| !done[s]))
    }

    /// The seats whose client is connected, in order (a copy: `self` stays free).
    fn here(&self) -> impl Iterator<Item = usize> {
        let seats = self.seats;
        (0..2).filter(move |&s| matches!(seats[s], Seat::Taken(_)))
    }

    /// The users who have not connected yet.
    fn awaited(&self) -> String {
        names((0..2).filter(|&s| self.seats[s] == Seat::Free))
    }

    fn seat_of(&self, id: ClientId) -> Option<usize> {
        self.seats.iter().position(|seat| *seat == Seat::Taken(id))
    }

    fn tell(&mut self, s: usize, line: impl Into<String>) {
        if let Seat::Taken(id) = self.seats[s] {
            self.out.push(Output::Client(id, line.into()));
        }
    }

    fn tell_user1(&mut self, line: impl Into<String>) {
        self.out.push(Output::User1(line.into()));
    }

    fn end(&mut self) {
        self.over = true;
        self.out.push(Output::End);
    }
}

/// How seat `s` calls the client in seat `to`.
fn whom(s: usize, to: usize) -> &'static str {
    if s == to {
        "you"
    } else {
        NAMES[to]
    }
}

/// `user2`, or `user2 and user3`.
fn names(seats: impl Iterator<Item = usize>) -> String {
    let names: Vec<&str> = seats.map(|s| NAMES[s]).collect();
    names.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const U2: ClientId = ClientId(1);
    const U3: ClientId = ClientId(2);

    /// Feeds `input`, returning the outputs as `to: text` for short assertions.
    fn feed(turns: &mut Turns, input: Input) -> Vec<String> {
        turns
            .handle(input)
            .into_iter()
            .map(|out| match out {
                Output::User1(text) => format!("u1: {text}"),
                Output::Client(id, text) => format!("c{id}: {text}"),
                Output::Refuse(id) => format!("refuse c{id}"),
                Output::End => "end".into(),
            })
            .collect()
    }

    fn said(id: ClientId, line: &str) -> Input {
        Input::Client(id, line.into())
    }

    fn typed(line: &str) -> Input {
        Input::User1(line.into())
    }

    /// Two clients seated, the clients' turn under way.
    fn seated() -> Turns {
        let mut t = Turns::default();
        t.handle(Input::Joined(U2));
        t.handle(Input::Joined(U3));
        t
    }

    /// Clients are seated in connection order and told who they are and
    /// whose turn it is; a third is turned away.
    #[test]
    fn seats_in_order() {
        let mut t = Turns::default();
        assert_eq!(
            feed(&mut t, Input::Joined(U2)),
            [
                "u1: * user2 joined",
                "c1: * you are user2: # ends your turn, Exit leaves",
                "c1: * your turn: write to user1; # ends it",
            ]
        );
        feed(&mut t, Input::Joined(U3));
        assert_eq!(
            feed(&mut t, Input::Joined(ClientId(3))),
            ["u1: * a third client was turned away", "refuse c3"]
        );
        assert!(feed(&mut t, said(ClientId(3), "hello?")).is_empty());
        assert!(feed(&mut t, Input::Left(ClientId(3))).is_empty());
    }

    /// A full round: both clients write and end their turn, user1 answers
    /// user2, `#`, user3, `#`, and the clients' turn comes back.
    #[test]
    fn full_round() {
        let mut t = seated();
        assert_eq!(
            feed(&mut t, said(U2, "hi from 2")),
            ["u1: user2: hi from 2"]
        );
        assert_eq!(
            feed(&mut t, said(U2, "#")),
            [
                "u1: * user2 ended their turn",
                "c1: * turn ended: waiting for user3"
            ]
        );
        assert_eq!(
            feed(&mut t, said(U3, "hi from 3")),
            ["u1: user3: hi from 3"]
        );
        assert_eq!(
            feed(&mut t, said(U3, " # ")),
            [
                "u1: * user3 ended their turn",
                "u1: * your turn: reply to user2, then # to move on to user3",
                "c1: * user1's turn: replying to you",
                "c2: * user1's turn: replying to user2",
            ]
        );
        assert_eq!(feed(&mut t, typed("hello 2")), ["c1: user1: hello 2"]);
        assert_eq!(
            feed(&mut t, typed("#")),
            [
                "u1: * your turn: reply to user3, then # to end your turn",
                "c1: * user1's turn: replying to user3",
                "c2: * user1's turn: replying to you",
            ]
        );
        assert_eq!(feed(&mut t, typed("hello 3")), ["c2: user1: hello 3"]);
        assert_eq!(
            feed(&mut t, typed("#")),
            [
                "u1: * clients' turn: user2 and user3 write to you",
                "c1: * your turn: write to user1; # ends it",
                "c2: * your turn: write to user1; # ends it",
            ]
        );
        assert_eq!(feed(&mut t, said(U3, "again")), ["u1: user3: again"]);
    }

    /// Out of turn, nothing is delivered and the writer is told why.
    #[test]
    fn out_of_turn() {
        let mut t = seated();
        assert_eq!(
            feed(&mut t, typed("early")),
            ["u1: * not your turn: waiting for user2 and user3 to end their turn with #"]
        );
        feed(&mut t, said(U2, "#"));
        assert_eq!(
            feed(&mut t, said(U2, "more")),
            ["c1: * not your turn: waiting for user3 to end their turn, then user1 replies"]
        );
        feed(&mut t, said(U3, "#"));
        assert_eq!(
            feed(&mut t, said(U3, "me?")),
            ["c2: * not your turn: user1 is replying to user2"]
        );
        assert!(feed(&mut t, typed("   ")).is_empty());
    }

    /// With one client here, user1's turn starts at its `#` and skips the empty seat.
    #[test]
    fn one_client() {
        let mut t = Turns::default();
        assert_eq!(
            feed(&mut t, typed("anyone?")),
            ["u1: * not your turn: waiting for user2 and user3 to connect"]
        );
        feed(&mut t, Input::Joined(U2));
        assert_eq!(
            feed(&mut t, said(U2, "#")),
            [
                "u1: * user2 ended their turn",
                "u1: * your turn: reply to user2, then # to end your turn",
                "c1: * user1's turn: replying to you",
            ]
        );
        assert_eq!(
            feed(&mut t, Input::Joined(U3)),
            [
                "u1: * user3 joined",
                "c2: * you are user3: # ends your turn, Exit leaves",
                "c2: * user1's turn: replying to user2",
            ]
        );
    }

    /// A client leaving moves the turn on; both gone ends the program.
    #[test]
    fn leaving() {
        let mut t = seated();
        feed(&mut t, said(U2, "#"));
        assert_eq!(
            feed(&mut t, Input::Left(U3)),
            [
                "u1: * user3 has left",
                "c1: * user3 has left",
                "u1: * your turn: reply to user2, then # to end your turn",
                "c1: * user1's turn: replying to you",
            ]
        );
        assert_eq!(
            feed(&mut t, Input::Left(U2)),
            [
                "u1: * user2 has left",
                "u1: * user2 and user3 have left: goodbye",
                "end"
            ]
        );
        assert!(feed(&mut t, typed("hello?")).is_empty());
    }

    /// The seat of a client who left is not given again; the program waits
    /// for the other seat's user instead.
    #[test]
    fn seats_are_not_reused() {
        let mut t = Turns::default();
        feed(&mut t, Input::Joined(U2));
        feed(&mut t, said(U2, "#"));
        assert_eq!(
            feed(&mut t, Input::Left(U2)),
            ["u1: * user2 has left", "u1: * waiting for user3 to connect"]
        );
        assert_eq!(feed(&mut t, Input::Joined(U3))[0], "u1: * user3 joined");
        assert_eq!(feed(&mut t, Input::Left(U3)).last().unwrap(), "end");
    }

    /// user1's `Exit`, in any case, ends the messenger at any time.
    #[test]
    fn user1_exit() {
        let mut t = seated();
        assert_eq!(feed(&mut t, typed(" EXIT")), ["end"]);
    }
}
