//! What the generator sends: the [`Plan`] for one run, the [`Workload`] shapes and the
//! [`Exchange`] — one request line and the exact reply the server must send back.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Error;

/// The traffic pattern of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Each client sends one line and waits for its reply before sending the next.
    /// Measures per-message cost and round-trip latency.
    PingPong,
    /// Each client writes `depth` lines in one `write`, then waits for all `depth`
    /// replies. Measures how well a server handles many lines per read.
    Pipelined {
        /// Lines per batch.
        depth: usize,
    },
    /// Each client slot loops: connect, `Hi`, `bye`, wait for the server to close, close.
    /// One completed loop is one "message"; latency is the whole cycle.
    Churn,
    /// Ping-pong in which the first `heavy` clients send [`Plan::heavy`], a request that
    /// is slow to answer, and the others the cheap [`Plan::exchange`]. Only the cheap
    /// clients' replies are counted and timed: how much the slow ones delay everyone
    /// else (head-of-line blocking).
    Heavy {
        /// Clients sending the slow request.
        heavy: usize,
    },
    /// Open every client, hold them all silent for `hold`, then ping each once.
    /// Measures memory per open connection and how many connections survive.
    Idle {
        /// How long the connections stay silent before the ping.
        hold: Duration,
    },
}

impl Workload {
    /// A short name for tables and files: `pingpong`, `pipelined`, `churn`, `heavy`,
    /// `idle`.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::PingPong => "pingpong",
            Workload::Pipelined { .. } => "pipelined",
            Workload::Churn => "churn",
            Workload::Heavy { .. } => "heavy",
            Workload::Idle { .. } => "idle",
        }
    }

    /// Lines per request write (1 except for [`Workload::Pipelined`]).
    pub fn depth(&self) -> usize {
        match self {
            Workload::Pipelined { depth } => *depth,
            _ => 1,
        }
    }
}

/// One request line and the reply that proves the server handled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The bytes sent, ending in `\n`.
    pub request: Vec<u8>,
    /// The bytes expected back, ending in `\n`.
    pub reply: Vec<u8>,
}

/// Payload bytes: lowercase letters, so a line never starts with `E` (the first byte of
/// every `ERR ...` line) and is valid UTF-8 for every mode.
fn letters(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A request line of about `size` bytes (without its `\n`) that a server in `mode`
/// answers by itself, for load tests: letters for `echo` and `reverse`, `1+1+...+1` for
/// `calc` (cheap to parse, and every term is work). `None` for a mode the generator
/// does not load: `chat` answers only through an operator. The reply to expect is the
/// mode's own answer (`switchboard::mode::ModeEntry::answer`).
pub fn load_line(mode: &str, size: usize) -> Option<String> {
    match mode {
        "echo" | "reverse" => Some(String::from_utf8(letters(size)).expect("ASCII letters")),
        "calc" => {
            let mut line = "1+".repeat(size.div_ceil(2).max(1));
            line.pop();
            Some(line)
        }
        _ => None,
    }
}

impl Exchange {
    /// For an echo server (the baselines, and `--mode echo`): a line of `size` payload bytes (plus `\n`), returned unchanged.
    pub fn echo(size: usize) -> Self {
        let mut request = letters(size);
        request.push(b'\n');
        Exchange {
            reply: request.clone(),
            request,
        }
    }
}

/// Everything one load run needs. Build it with [`Plan::new`] and adjust the public
/// fields; [`crate::run`] checks it before starting.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The server.
    pub addr: SocketAddr,
    /// The traffic pattern.
    pub workload: Workload,
    /// Clients (connections) for ping-pong, pipelined and idle; concurrent connect loops
    /// for churn.
    pub clients: usize,
    /// The line each client sends and the reply it expects.
    pub exchange: Exchange,
    /// Traffic before the measured window, so connection setup and cold caches do not
    /// count. Ignored by [`Workload::Idle`].
    pub warmup: Duration,
    /// Length of the measured window. Ignored by [`Workload::Idle`].
    pub duration: Duration,
    /// Generator threads, each with its own `mio::Poll` and an equal share of the clients.
    pub threads: usize,
    /// How long one connect may take, and how long all connects of the setup may take.
    pub connect_timeout: Duration,
    /// How long a client waits for a reply before counting an error and closing.
    pub reply_timeout: Duration,
    /// Connects in flight at once per thread while opening clients: a burst larger than
    /// the server's listen backlog would be dropped by the kernel and retried a second
    /// later, which would measure the backlog, not the server.
    pub max_connecting: usize,
    /// Heavy: the slow request the first clients send, and its reply.
    pub heavy: Exchange,
    /// Churn: whether the server closes the connection after answering `bye` (every
    /// switchboard server does). The framing-less baseline never does; for it the client
    /// closes as soon as `bye` comes back.
    pub server_closes: bool,
    /// Open loop (ping-pong only): this many requests per second in total, each client
    /// on a fixed schedule of its own, the clients' schedules staggered evenly so that
    /// requests go out `1 / rate` apart rather than in bursts. Latency is then timed
    /// from when each request was *due*, so a server that stalls is charged for every
    /// request the stall held back (coordinated omission, as wrk2 corrects it); the
    /// time from the actual send is kept beside it. `None`: closed loop, each client
    /// sends as soon as its previous reply is in.
    pub rate: Option<f64>,
}

impl Plan {
    /// A plan with short defaults: 64-byte echo lines, 0.2 s warm-up, 1 s window, one
    /// thread, 10 s connect timeout, 5 s reply timeout, 64 connects in flight, a
    /// server that closes after `bye`.
    pub fn new(addr: SocketAddr, workload: Workload, clients: usize) -> Self {
        Plan {
            addr,
            workload,
            clients,
            exchange: Exchange::echo(64),
            heavy: Exchange::echo(64),
            warmup: Duration::from_millis(200),
            duration: Duration::from_secs(1),
            threads: 1,
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(5),
            max_connecting: 64,
            server_closes: true,
            rate: None,
        }
    }

    /// Checks the plan for values that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: &str| Err(Error::Plan(why.into()));
        if self.clients == 0 {
            return bad("clients must be at least 1");
        }
        if self.threads == 0 {
            return bad("threads must be at least 1");
        }
        if self.max_connecting == 0 {
            return bad("max_connecting must be at least 1");
        }
        if self.workload.depth() == 0 {
            return bad("pipeline depth must be at least 1");
        }
        let lines = [&self.exchange, &self.heavy];
        if lines
            .iter()
            .any(|e| e.request.last() != Some(&b'\n') || e.reply.last() != Some(&b'\n'))
        {
            return bad("request and reply must end in \\n");
        }
        if let Workload::Heavy { heavy } = self.workload {
            if heavy == 0 || heavy >= self.clients {
                return bad("heavy needs at least one slow client and one cheap one");
            }
        }
        if self.connect_timeout.is_zero() || self.reply_timeout.is_zero() {
            return bad("timeouts must be longer than zero");
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return bad("the rate must be a positive number of requests per second");
            }
            if self.workload != Workload::PingPong {
                return bad("an open-loop rate applies to ping-pong only");
            }
        }
        if !matches!(self.workload, Workload::Idle { .. }) && self.duration.is_zero() {
            return bad("duration must be longer than zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Each loaded mode's line has about the size asked for; chat has none.
    #[test]
    fn load_lines() {
        assert_eq!(super::load_line("echo", 3).as_deref(), Some("abc"));
        assert_eq!(super::load_line("reverse", 28).unwrap().len(), 28);
        assert_eq!(super::load_line("calc", 5).as_deref(), Some("1+1+1"));
        assert_eq!(super::load_line("calc", 0).as_deref(), Some("1"));
        assert_eq!(super::load_line("chat", 10), None);
    }

    use super::*;

    /// Echo requests are letters plus newline and come back byte for byte.
    #[test]
    fn echo_exchange() {
        let e = Exchange::echo(30);
        assert_eq!(e.request.len(), 31);
        assert_eq!(e.request, e.reply);
        assert!(e.request.starts_with(b"abcdefghijklmnopqrstuvwxyzabcd\n"));
    }

    /// Plans with zero clients, threads or depth are refused before anything starts.
    #[test]
    fn invalid_plans_are_refused() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(Plan::new(addr, Workload::PingPong, 1).validate().is_ok());
        assert!(Plan::new(addr, Workload::PingPong, 0).validate().is_err());
        let mut p = Plan::new(addr, Workload::Pipelined { depth: 0 }, 1);
        assert!(p.validate().is_err());
        p.workload = Workload::PingPong;
        p.threads = 0;
        assert!(p.validate().is_err());
        p.threads = 1;
        p.exchange.request = b"no newline".to_vec();
        assert!(p.validate().is_err());
        // Heavy needs a slow client and a cheap one.
        for (heavy, clients, ok) in [(1, 2, true), (0, 2, false), (2, 2, false)] {
            let p = Plan::new(addr, Workload::Heavy { heavy }, clients);
            assert_eq!(p.validate().is_ok(), ok, "heavy {heavy} of {clients}");
        }
        // An open-loop rate is a positive number, for ping-pong.
        let mut p = Plan::new(addr, Workload::PingPong, 2);
        for (rate, ok) in [
            (1000.0, true),
            (0.0, false),
            (f64::NAN, false),
            (-1.0, false),
        ] {
            p.rate = Some(rate);
            assert_eq!(p.validate().is_ok(), ok, "rate {rate}");
        }
        p.rate = Some(1000.0);
        p.workload = Workload::Churn;
        assert!(p.validate().is_err(), "open loop is ping-pong only");
    }
}
