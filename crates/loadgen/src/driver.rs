//! The client engine: [`run`] splits the clients over a few threads, each running one
//! `mio::Poll` loop, and coordinates the phases (connect, warm-up, measured window,
//! drain) from the calling thread.
//!
//! It is built to cost the generator less per message than the cheapest server costs:
//! no allocation per message (requests and expected replies are shared buffers, replies
//! are checked in place against them), one `write` per request, and on Linux one `read`
//! per reply — a read that returns less than the buffer means the socket is drained, so
//! the extra read that would only return `WouldBlock` is skipped (see
//! `SHORT_READ_DRAINS`). Sockets are registered once for both directions, so no
//! `epoll_ctl` per message either.
//!
//! Every wait has a deadline: connects ([`Plan::connect_timeout`]), replies
//! ([`Plan::reply_timeout`]), the drain after the window, and every message between the
//! coordinator and its threads. A dead or stuck server turns into errors in the
//! [`Report`], never a hang.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::procstat::{self, CpuTime};
use crate::stats::{Latency, Summary};
use crate::workload::{Exchange, Plan, Workload};
use crate::Error;

/// On Linux (and kqueue systems) a readiness edge fires for every arrival of new data, so
/// a read that returns fewer bytes than asked for has emptied the socket and the next
/// arrival will raise a new event. Windows' emulated edge triggering only re-arms after a
/// `WouldBlock`, so there the generator reads until `WouldBlock` like any mio program.
const SHORT_READ_DRAINS: bool = cfg!(unix);

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Longest unexpected line (`ERR ...`, a greeting) the generator collects before giving up.
const MAX_LINE: usize = 4096;
/// The low bits of a token are the client's slot; the high bits a generation number, so
/// a late event for a closed socket is never taken for its replacement's (churn reuses
/// slots).
const SLOT_BITS: u32 = 20;
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;
/// How often deadlines are scanned, and the longest a poll waits.
const TICK: Duration = Duration::from_millis(20);
/// After the window closes, outstanding replies get this long to arrive, so connections
/// close cleanly instead of resetting mid-reply.
const DRAIN: Duration = Duration::from_millis(500);
/// Open loop: `epoll` waits in whole milliseconds (mio rounds up), so a request due
/// sooner than this is waited for by polling without a timeout, yielding the CPU
/// between polls; otherwise every send could go out up to a millisecond late, and the
/// latency timed from when it was due would carry the generator's own lateness. A
/// sleep instead would be cheaper but deaf: replies arriving during it wait, which
/// shows on the median (docs/measurements/figures-behind-the-code.md). So in open loop above
/// about a thousand requests per second the generator's thread reads as a busy core:
/// that is waiting, not work, and the achieved rate tells whether it kept up.
const FINE_WAIT: Duration = Duration::from_millis(1);

/// Points in a run where the caller is called back (from the coordinating thread), so it
/// can sample the server exactly there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Every client has connected (or failed to); for churn, right away.
    Connected,
    /// The measured window opens (after the warm-up).
    MeasureStart,
    /// The measured window closes.
    MeasureEnd,
    /// Idle: the connections have been held silent for the hold time; next comes the ping.
    Held,
    /// Idle: every connection has been pinged; they are still open.
    Pinged,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The traffic pattern.
    pub workload: Workload,
    /// Clients asked for (connect loops for churn).
    pub clients: usize,
    /// Connections established during setup (churn: connections opened in total).
    pub connected: u64,
    /// Clients that completed at least one exchange (idle: pings answered, i.e. survivors;
    /// churn: slots that completed at least one cycle).
    pub served: usize,
    /// Connections turned away with `ERR busy`.
    pub rejected: u64,
    /// Connections that failed any other way: refused, reset, wrong reply, timeout.
    pub errors: u64,
    /// Clients still waiting when the run ended, never answered: connected (or still
    /// connecting) but no reply in the window and the drain after it, and no error
    /// either. A server that takes one client at a time, or a listen backlog of 5, leaves
    /// the rest here.
    pub unanswered: u64,
    /// The first of those failures, for a diagnostic line.
    pub first_error: Option<String>,
    /// Lines answered inside the measured window (churn: cycles; idle: pings answered).
    pub messages: u64,
    /// Length of the measured window (idle: how long the ping round took).
    pub window: Duration,
    /// Round-trip latency: per request (pipelined: per batch), per churn cycle, per ping.
    /// Open loop: from when each request was due, whether or not it could be sent then.
    pub latency: Summary,
    /// Open loop only: latency from when each request actually went out, the figure a
    /// closed-loop tool reports, which leaves out the waiting a stall imposed.
    pub uncorrected: Option<Summary>,
    /// Open loop only: the rate asked for, requests per second ([`Plan::rate`]).
    pub offered_rate: Option<f64>,
    /// Open loop only: how late the generator itself sent requests that found their
    /// client idle when they fell due. A busy machine delays the generator's own
    /// thread, and that delay is inside the latency timed from the due time; a server
    /// that holds a client back is not in this figure (those sends wait on a reply).
    pub send_lateness: Option<Summary>,
    /// Open loop only: the longest the generator's loop was held up beyond what it
    /// asked to wait, within the window: its thread descheduled, or busy handling a
    /// burst. Every request due meanwhile is charged that wait, whether its client was
    /// idle or waiting on a reply, so a pause near the p99 makes the p99 the
    /// generator's as much as the server's.
    pub generator_pause: Option<Duration>,
    /// CPU time this process (the generator) used during the window, when available.
    pub generator_cpu: Option<CpuTime>,
}

impl Report {
    /// Messages per second in the measured window.
    pub fn rate(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.messages as f64 / secs
        } else {
            0.0
        }
    }

    /// Share of one CPU core the generator used during the window (1.0 = one full core).
    pub fn generator_load(&self) -> Option<f64> {
        let secs = self.window.as_secs_f64();
        self.generator_cpu
            .filter(|_| secs > 0.0)
            .map(|c| c.total().as_secs_f64() / secs)
    }
}

/// Runs `plan` against its server and reports; `mark` is called at each [`Mark`].
///
/// Returns an error only if the run could not take place (invalid plan, no poll, a
/// thread that died); failures of single connections are counted in the report.
pub fn run(plan: &Plan, mark: &mut dyn FnMut(Mark)) -> Result<Report, Error> {
    plan.validate()?;
    let threads = plan.threads.min(plan.clients);
    let per_thread = plan.clients.div_ceil(threads);
    if per_thread > SLOT_MASK {
        return Err(Error::Plan(format!(
            "at most {SLOT_MASK} clients per thread; use more threads"
        )));
    }
    let bufs = Bufs::new(plan);
    thread::scope(|scope| {
        let (note_tx, note_rx) = mpsc::channel();
        let mut cmds = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        let mut offset = 0;
        for w in 0..threads {
            let share = plan.clients / threads + usize::from(w < plan.clients % threads);
            let first = offset;
            offset += share;
            let heavy = match plan.workload {
                Workload::Heavy { heavy } => heavy / threads + usize::from(w < heavy % threads),
                _ => 0,
            };
            let (cmd_tx, cmd_rx) = mpsc::channel();
            let note_tx = note_tx.clone();
            let bufs = &bufs;
            let handle = thread::Builder::new()
                .name(format!("loadgen-{w}"))
                .spawn_scoped(scope, move || {
                    worker_main(plan, bufs, (share, heavy, first), cmd_rx, note_tx)
                })
                .map_err(|e| Error::io("spawning a generator thread", e))?;
            cmds.push(cmd_tx);
            handles.push(handle);
        }
        drop(note_tx);
        let outcome = coordinate(plan, threads, &note_rx, &cmds, mark);
        // Workers still waiting for a command see their channel close and finish.
        drop(cmds);
        let mut total = Tally::default();
        for handle in handles {
            let tally = handle
                .join()
                .map_err(|_| Error::Worker("a generator thread panicked".into()))?;
            total.merge(tally);
        }
        let (window, generator_cpu) = outcome?;
        Ok(Report {
            workload: plan.workload,
            clients: plan.clients,
            connected: total.connected,
            served: total.served,
            rejected: total.rejected,
            errors: total.errors,
            unanswered: total.unanswered,
            first_error: total.first_error,
            messages: total.messages,
            window,
            latency: total.latency.summary(),
            uncorrected: plan.rate.map(|_| total.uncorrected.summary()),
            send_lateness: plan.rate.map(|_| total.lateness.summary()),
            generator_pause: plan.rate.map(|_| total.pause),
            offered_rate: plan.rate,
            generator_cpu,
        })
    })
}

/// Coordinator → worker.
enum Cmd {
    /// Start traffic now (open loop: on the schedule that begins at `start`, the same
    /// instant for every thread); count what completes in `[t0, t1)`, stop sending at `t1`.
    Go {
        start: Instant,
        t0: Instant,
        t1: Instant,
    },
    /// Idle: ping every open connection once.
    Ping,
}

/// Worker → coordinator.
enum Note {
    Ready,
    Pinged,
    Failed(String),
}

/// Drives the phases from the calling thread; returns the window and the generator's CPU.
fn coordinate(
    plan: &Plan,
    threads: usize,
    notes: &Receiver<Note>,
    cmds: &[Sender<Cmd>],
    mark: &mut dyn FnMut(Mark),
) -> Result<(Duration, Option<CpuTime>), Error> {
    // Workers bound their own setup by connect_timeout; the margin covers scheduling.
    let setup_limit = plan.connect_timeout + Duration::from_secs(5);
    wait_for(notes, threads, setup_limit, "connecting")?;
    mark(Mark::Connected);
    let send_all = |cmd: &dyn Fn() -> Cmd| {
        for c in cmds {
            // A worker that already stopped has reported why through its tally.
            let _ = c.send(cmd());
        }
    };
    match plan.workload {
        Workload::Idle { hold } => {
            thread::sleep(hold);
            mark(Mark::Held);
            let cpu0 = procstat::sample_self().ok();
            let start = Instant::now();
            send_all(&|| Cmd::Ping);
            wait_for(notes, threads, plan.reply_timeout + DRAIN * 4, "pinging")?;
            let window = start.elapsed();
            let cpu = cpu_delta(cpu0);
            mark(Mark::Pinged);
            Ok((window, cpu))
        }
        _ => {
            let start = Instant::now();
            let t0 = start + plan.warmup;
            let t1 = t0 + plan.duration;
            send_all(&|| Cmd::Go { start, t0, t1 });
            thread::sleep(t0.saturating_duration_since(Instant::now()));
            let cpu0 = procstat::sample_self().ok();
            mark(Mark::MeasureStart);
            thread::sleep(t1.saturating_duration_since(Instant::now()));
            let cpu = cpu_delta(cpu0);
            mark(Mark::MeasureEnd);
            Ok((plan.duration, cpu))
        }
    }
}

fn cpu_delta(before: Option<procstat::ProcSample>) -> Option<CpuTime> {
    let after = procstat::sample_self().ok()?;
    Some(after.cpu_since(&before?))
}

/// Waits until `count` workers have reported the next phase done.
fn wait_for(
    notes: &Receiver<Note>,
    count: usize,
    limit: Duration,
    what: &str,
) -> Result<(), Error> {
    let deadline = Instant::now() + limit;
    for _ in 0..count {
        let left = deadline.saturating_duration_since(Instant::now());
        match notes.recv_timeout(left) {
            Ok(Note::Ready | Note::Pinged) => {}
            Ok(Note::Failed(why)) => return Err(Error::Worker(why)),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Error::Worker(format!("no progress after {limit:?} {what}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::Worker(format!("threads stopped while {what}")))
            }
        }
    }
    Ok(())
}

/// The bytes every client of a run sends and expects, shared by all threads.
struct Bufs {
    /// The request line repeated `depth` times: one `write` per batch.
    request: Vec<u8>,
    /// The expected reply to `request`.
    reply: Vec<u8>,
    /// Heavy: the slow request and its reply.
    heavy: Exchange,
    /// Lines per request.
    depth: u64,
}

impl Bufs {
    fn new(plan: &Plan) -> Self {
        let depth = plan.workload.depth();
        Bufs {
            request: plan.exchange.request.repeat(depth),
            reply: plan.exchange.reply.repeat(depth),
            heavy: plan.heavy.clone(),
            depth: depth as u64,
        }
    }
}

/// Where a client is in its script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// No socket yet, or closed and about to reconnect.
    Unopened,
    /// Non-blocking connect in progress.
    Connecting,
    /// Connected, nothing outstanding: waiting for the start, or holding (idle).
    Open,
    /// A request is out and its reply is being checked.
    Exchange,
    /// Churn: `Hi` sent, waiting for the greeting line.
    Hi,
    /// Churn: `bye` sent, waiting for `bye`.
    Bye,
    /// Churn: waiting for the server to close.
    Eof,
    /// Finished; not reopened.
    Done,
}

impl Step {
    /// Steps waiting on the server, which carry a deadline.
    fn is_waiting(self) -> bool {
        matches!(
            self,
            Step::Connecting | Step::Exchange | Step::Hi | Step::Bye | Step::Eof
        )
    }
}

/// Which buffer a client is writing.
#[derive(Clone, Copy, Debug)]
enum Out {
    Request,
    Hi,
    Bye,
}

/// One client connection and its progress.
struct Conn {
    stream: Option<TcpStream>,
    token: Token,
    generation: u32,
    step: Step,
    out: Out,
    out_pos: usize,
    in_pos: usize,
    /// A line being collected: a greeting, `bye`, or an `ERR ...` that replaced a reply.
    line: Vec<u8>,
    /// Bytes go to `line` instead of being checked against the expected reply.
    collecting: bool,
    /// Start of the current exchange (churn: of the whole cycle); in open loop, when the
    /// request was due, which a stall may have made earlier than `sent`.
    started: Instant,
    /// When the current request actually went out.
    sent: Instant,
    deadline: Instant,
    served: bool,
}

impl Conn {
    /// Client `slot`, not yet connected.
    fn unopened(slot: usize, now: Instant) -> Conn {
        Conn {
            stream: None,
            token: Token(slot),
            generation: 0,
            step: Step::Unopened,
            out: Out::Request,
            out_pos: 0,
            in_pos: 0,
            line: Vec::new(),
            collecting: false,
            started: now,
            sent: now,
            deadline: now,
            served: false,
        }
    }
}

/// Why a connection ended early.
enum Fail {
    /// `ERR busy ...`: the server turned the client away, as single-client servers must.
    Rejected,
    Error(String),
}

/// What a completed chunk of input finished.
enum Progress {
    Partial,
    Complete,
}

/// Counters a worker hands back.
#[derive(Default)]
struct Tally {
    latency: Latency,
    /// Open loop: latency from the actual send.
    uncorrected: Latency,
    /// Open loop: the generator's own lateness on sends to idle clients.
    lateness: Latency,
    /// Open loop: the longest hold-up of the generator's loop in the window.
    pause: Duration,
    messages: u64,
    served: usize,
    connected: u64,
    rejected: u64,
    errors: u64,
    unanswered: u64,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        self.uncorrected.merge(&other.uncorrected);
        self.lateness.merge(&other.lateness);
        self.pause = self.pause.max(other.pause);
        self.messages += other.messages;
        self.served += other.served;
        self.connected += other.connected;
        self.rejected += other.rejected;
        self.errors += other.errors;
        self.unanswered += other.unanswered;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The thread body: set up, report, follow the coordinator's commands, return the tally.
/// `clients`: this worker's clients, how many of them send the slow request, and the
/// run-wide index of its first client (its place in the open-loop stagger).
fn worker_main(
    plan: &Plan,
    bufs: &Bufs,
    clients: (usize, usize, usize),
    cmds: Receiver<Cmd>,
    notes: Sender<Note>,
) -> Tally {
    let mut worker = match Worker::new(plan, bufs, clients) {
        Ok(w) => w,
        Err(e) => {
            let _ = notes.send(Note::Failed(e.to_string()));
            return Tally::default();
        }
    };
    // Commands arrive within the hold or warm-up time; the margin only guards a
    // coordinator that vanished.
    let cmd_limit = match plan.workload {
        Workload::Idle { hold } => hold + Duration::from_secs(30),
        _ => Duration::from_secs(30),
    };
    if let Err(e) = worker.drive(&cmds, &notes, cmd_limit) {
        worker.tally.errors += 1;
        worker
            .tally
            .first_error
            .get_or_insert_with(|| e.to_string());
        let _ = notes.send(Note::Failed(e.to_string()));
    }
    worker.finish()
}

struct Worker<'a> {
    plan: &'a Plan,
    bufs: &'a Bufs,
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    /// Connects in flight, limited to `plan.max_connecting` during setup.
    connecting: usize,
    /// The measured window; completions outside it are not counted.
    window: Option<(Instant, Instant)>,
    /// Whether finished exchanges start new ones.
    sending: bool,
    /// Heavy: slots below this send the slow request, and are not counted.
    heavy: usize,
    /// Churn slots whose cycle failed, to reconnect on the next loop turn.
    reopen: Vec<usize>,
    /// Reused buffer of (token, readable, read side closed) from the last poll.
    ready: Vec<(Token, bool, bool)>,
    /// Open loop: time between one client's requests (clients × 1 / rate).
    interval: Option<Duration>,
    /// Open loop: the run-wide index of this worker's first client.
    first: usize,
    /// Open loop: clients waiting for their next request to fall due, soonest first.
    /// An entry is stale unless its client is still `Open` with that due time.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    tally: Tally,
}

impl<'a> Worker<'a> {
    fn new(
        plan: &'a Plan,
        bufs: &'a Bufs,
        (clients, heavy, first): (usize, usize, usize),
    ) -> Result<Self, Error> {
        let poll = Poll::new().map_err(|e| Error::io("creating a poll", e))?;
        let now = Instant::now();
        let conns = (0..clients).map(|slot| Conn::unopened(slot, now)).collect();
        Ok(Worker {
            plan,
            bufs,
            poll,
            events: Events::with_capacity(1024),
            conns,
            scratch: vec![0; READ_CHUNK],
            connecting: 0,
            window: None,
            sending: false,
            heavy,
            reopen: Vec::new(),
            ready: Vec::with_capacity(1024),
            interval: plan
                .rate
                .map(|rate| Duration::from_secs_f64(plan.clients as f64 / rate)),
            first,
            timers: BinaryHeap::new(),
            tally: Tally::default(),
        })
    }

    /// Setup, then whatever the coordinator asks.
    fn drive(
        &mut self,
        cmds: &Receiver<Cmd>,
        notes: &Sender<Note>,
        cmd_limit: Duration,
    ) -> Result<(), Error> {
        if self.plan.workload != Workload::Churn {
            self.open_all()?;
        }
        let _ = notes.send(Note::Ready);
        let cmd = cmds
            .recv_timeout(cmd_limit)
            .map_err(|_| Error::Worker("no start command from the coordinator".into()))?;
        match cmd {
            Cmd::Go { start, t0, t1 } => {
                self.window = Some((t0, t1));
                self.sending = true;
                let now = Instant::now();
                // Open loop: client k of the run is first due k / rate after the start,
                // so the requests of all clients together go out evenly spaced.
                let gap = self.plan.rate.map(|rate| 1.0 / rate);
                let churn = self.plan.workload == Workload::Churn;
                for slot in 0..self.conns.len() {
                    match (self.conns[slot].step, gap) {
                        (Step::Open, Some(gap)) => {
                            let k = (self.first + slot) as f64;
                            let due = start + Duration::from_secs_f64(k * gap);
                            self.schedule(slot, due, now);
                        }
                        (Step::Open, None) => self.start_exchange(slot, now),
                        (Step::Unopened, _) if churn => self.open(slot, now),
                        _ => {}
                    }
                }
                self.pump_until(t1, DRAIN)?;
            }
            Cmd::Ping => {
                let now = Instant::now();
                self.window = Some((now, now + self.plan.reply_timeout + DRAIN));
                for slot in 0..self.conns.len() {
                    if self.conns[slot].step == Step::Open {
                        self.start_exchange(slot, now);
                    }
                }
                self.pump_until(now, self.plan.reply_timeout)?;
                let _ = notes.send(Note::Pinged);
                // Hold the connections until the coordinator has sampled the server:
                // it drops the command channel when it is done.
                let _ = cmds.recv_timeout(cmd_limit);
            }
        }
        Ok(())
    }

    /// Opens every client, at most `max_connecting` at a time, within `connect_timeout`.
    fn open_all(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + self.plan.connect_timeout;
        let mut next = 0;
        let mut last_scan = Instant::now();
        loop {
            let now = Instant::now();
            while self.connecting < self.plan.max_connecting && next < self.conns.len() {
                self.open(next, now);
                next += 1;
            }
            if next == self.conns.len() && self.connecting == 0 {
                return Ok(());
            }
            if now >= deadline {
                for slot in next..self.conns.len() {
                    self.fail(
                        slot,
                        Fail::Error("connect: setup took too long".into()),
                        now,
                    );
                }
                self.expire(deadline + self.plan.connect_timeout);
                return Ok(());
            }
            self.poll_once(TICK.min(deadline - now))?;
            if last_scan.elapsed() >= TICK {
                last_scan = Instant::now();
                self.expire(last_scan);
            }
        }
    }

    /// Runs the event loop until `stop`, then lets outstanding work finish for up to
    /// `drain`, then stops regardless.
    fn pump_until(&mut self, stop: Instant, drain: Duration) -> Result<(), Error> {
        let hard_stop = stop + drain;
        let mut last_scan = Instant::now();
        loop {
            let mut now = Instant::now();
            let top = now;
            if self.sending && now >= stop {
                self.sending = false;
                self.timers.clear();
            }
            if !self.sending
                && (now >= hard_stop || !self.conns.iter().any(|c| c.step.is_waiting()))
            {
                return Ok(());
            }
            if self.sending && self.fire_due(now) {
                now = Instant::now();
            }
            let until = if self.sending { stop } else { hard_stop };
            let mut timeout = TICK.min(until.saturating_duration_since(now));
            let mut fine = false;
            if let Some(Reverse((due, _))) = self.timers.peek() {
                let wait = due.saturating_duration_since(now);
                if wait < FINE_WAIT {
                    timeout = Duration::ZERO;
                    fine = true;
                } else {
                    // Whole milliseconds, rounded down: the rest is waited out finely.
                    let whole = Duration::from_millis(wait.as_millis() as u64);
                    timeout = timeout.min(whole);
                }
            }
            if self.poll_once(timeout)? == 0 && fine {
                thread::yield_now();
            }
            if self.interval.is_some() && self.in_window(top) {
                let held = top.elapsed().saturating_sub(timeout);
                self.tally.pause = self.tally.pause.max(held);
            }
            if last_scan.elapsed() >= TICK {
                last_scan = Instant::now();
                self.expire(last_scan);
            }
        }
    }

    /// Open loop: starts the requests that have fallen due; whether any did.
    fn fire_due(&mut self, now: Instant) -> bool {
        let mut fired = false;
        while let Some(&Reverse((due, slot))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let conn = &self.conns[slot];
            if conn.step == Step::Open && conn.stream.is_some() && conn.started == due {
                if self.in_window(now) {
                    self.tally.lateness.record(now - due);
                }
                self.start_exchange_due(slot, due, now);
                fired = true;
            }
        }
        fired
    }

    /// Open loop: the next request of `slot` is due at `due`: sent now if that has
    /// passed (a stall put the client behind; it catches up back to back), else
    /// when it comes.
    fn schedule(&mut self, slot: usize, due: Instant, now: Instant) {
        if due <= now {
            return self.start_exchange_due(slot, due, now);
        }
        let conn = &mut self.conns[slot];
        conn.step = Step::Open;
        conn.started = due;
        self.timers.push(Reverse((due, slot)));
    }

    /// Polls once and handles the events; returns how many there were.
    fn poll_once(&mut self, timeout: Duration) -> Result<usize, Error> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(Error::io("polling", e)),
        }
        let now = Instant::now();
        // `events` stays borrowed while iterating; copy out the few fields needed.
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|e: &Event| {
            (
                e.token(),
                e.is_readable() || e.is_read_closed() || e.is_error(),
                e.is_read_closed() || e.is_error(),
            )
        }));
        for &(token, readable, closed) in &ready {
            self.on_event(token, readable, closed, now);
        }
        let count = ready.len();
        self.ready = ready;
        if self.sending {
            for slot in std::mem::take(&mut self.reopen) {
                self.open(slot, now);
            }
        }
        Ok(count)
    }

    fn on_event(&mut self, token: Token, readable: bool, closed: bool, now: Instant) {
        let slot = token.0 & SLOT_MASK;
        match self.conns.get(slot) {
            Some(c) if c.token == token && c.stream.is_some() => {}
            _ => return, // a socket that was closed since
        }
        let mut result = Ok(());
        if self.conns[slot].step == Step::Connecting {
            result = self.finish_connect(slot, now);
        }
        if result.is_ok() && self.conns[slot].stream.is_some() {
            result = self.flush(slot);
        }
        let connected = self.conns[slot].step != Step::Connecting;
        if result.is_ok() && readable && connected && self.conns[slot].stream.is_some() {
            result = self.read(slot, closed, now);
        }
        if let Err(fail) = result {
            self.fail(slot, fail, now);
        }
    }

    /// Starts a non-blocking connect in `slot`.
    fn open(&mut self, slot: usize, now: Instant) {
        let generation = self.conns[slot].generation.wrapping_add(1);
        let token = Token(slot | ((generation as usize) << SLOT_BITS));
        {
            let conn = &mut self.conns[slot];
            conn.generation = generation;
            conn.token = token;
            conn.started = now;
            conn.deadline = now + self.plan.connect_timeout;
            conn.out_pos = 0;
            conn.in_pos = 0;
            conn.line.clear();
            conn.collecting = false;
        }
        let mut stream = match TcpStream::connect(self.plan.addr) {
            Ok(s) => s,
            Err(e) => return self.fail(slot, Fail::Error(format!("connect: {e}")), now),
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
            return self.fail(slot, Fail::Error(format!("register: {e}")), now);
        }
        self.conns[slot].stream = Some(stream);
        self.conns[slot].step = Step::Connecting;
        self.connecting += 1;
    }

    /// A connecting socket became ready: connected, failed, or a spurious wake-up.
    fn finish_connect(&mut self, slot: usize, now: Instant) -> Result<(), Fail> {
        let conn = &mut self.conns[slot];
        let Some(stream) = conn.stream.as_mut() else {
            return Ok(());
        };
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return Err(Fail::Error(format!("connect: {e}"))),
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(Fail::Error(format!("connect: {e}"))),
        }
        // Without TCP_NODELAY small requests wait for Nagle's timer and latency is
        // measured in tens of milliseconds.
        let _ = stream.set_nodelay(true);
        self.connecting -= 1;
        self.tally.connected += 1;
        conn.step = Step::Open;
        if self.plan.workload == Workload::Churn {
            conn.step = Step::Hi;
            conn.out = Out::Hi;
            conn.out_pos = 0;
            conn.deadline = now + self.plan.reply_timeout;
        } else if self.sending {
            self.start_exchange(slot, now);
        }
        Ok(())
    }

    /// Sends the request (batch) on an open connection.
    fn start_exchange(&mut self, slot: usize, now: Instant) {
        self.start_exchange_due(slot, now, now);
    }

    /// Sends the request that was due at `due` (open loop; `now` in closed loop).
    fn start_exchange_due(&mut self, slot: usize, due: Instant, now: Instant) {
        let conn = &mut self.conns[slot];
        conn.step = Step::Exchange;
        conn.out = Out::Request;
        conn.out_pos = 0;
        conn.in_pos = 0;
        conn.started = due;
        conn.sent = now;
        conn.deadline = now + self.plan.reply_timeout;
        if let Err(fail) = self.flush(slot) {
            self.fail(slot, fail, now);
        }
    }

    /// Writes what is pending until done or the socket is full.
    fn flush(&mut self, slot: usize) -> Result<(), Fail> {
        let conn = &mut self.conns[slot];
        if !matches!(conn.step, Step::Exchange | Step::Hi | Step::Bye) {
            return Ok(());
        }
        let buf: &[u8] = match conn.out {
            Out::Request if slot < self.heavy => &self.bufs.heavy.request,
            Out::Request => &self.bufs.request,
            Out::Hi => b"Hi\n",
            Out::Bye => b"bye\n",
        };
        let Some(stream) = conn.stream.as_mut() else {
            return Ok(());
        };
        while conn.out_pos < buf.len() {
            match stream.write(&buf[conn.out_pos..]) {
                Ok(0) => return Err(Fail::Error("write: connection closed".into())),
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The server may have said why before closing (`ERR busy`): look.
                Err(e) => return Err(salvage(conn, &mut self.scratch, format!("write: {e}"))),
            }
        }
        Ok(())
    }

    /// Reads and checks what the server sent.
    fn read(&mut self, slot: usize, closed: bool, now: Instant) -> Result<(), Fail> {
        loop {
            let conn = &mut self.conns[slot];
            let Some(stream) = conn.stream.as_mut() else {
                return Ok(());
            };
            let n = match stream.read(&mut self.scratch) {
                Ok(0) => return self.on_eof(slot, now),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(salvage(conn, &mut self.scratch, format!("read: {e}"))),
            };
            let reply = match slot < self.heavy {
                true => &self.bufs.heavy.reply,
                false => &self.bufs.reply,
            };
            if let Progress::Complete = consume(conn, &self.scratch[..n], reply)? {
                self.on_complete(slot, now)?;
            }
            // A short read emptied the socket; unless the peer also closed (then no new
            // edge will come for the end of file), the next arrival raises a new event.
            if SHORT_READ_DRAINS && n < self.scratch.len() && !closed {
                return Ok(());
            }
        }
    }

    /// The expected input of the current step has fully arrived.
    fn on_complete(&mut self, slot: usize, now: Instant) -> Result<(), Fail> {
        let counted = self.in_window(now) && slot >= self.heavy;
        let conn = &mut self.conns[slot];
        match conn.step {
            Step::Exchange => {
                conn.served = true;
                if counted {
                    self.tally.latency.record(now - conn.started);
                    self.tally.uncorrected.record(now - conn.sent);
                    self.tally.messages += self.bufs.depth;
                }
                match (self.sending, self.interval) {
                    (true, Some(interval)) => {
                        let due = conn.started + interval;
                        self.schedule(slot, due, now);
                    }
                    (true, None) => self.start_exchange(slot, now),
                    (false, _) => conn.step = Step::Open,
                }
            }
            Step::Hi => {
                conn.step = Step::Bye;
                conn.out = Out::Bye;
                conn.out_pos = 0;
                conn.line.clear();
                conn.deadline = now + self.plan.reply_timeout;
                return self.flush(slot);
            }
            Step::Bye if self.plan.server_closes => {
                conn.step = Step::Eof;
                conn.line.clear();
            }
            Step::Bye => self.complete_cycle(slot, now),
            _ => {}
        }
        Ok(())
    }

    /// The server closed the connection.
    fn on_eof(&mut self, slot: usize, now: Instant) -> Result<(), Fail> {
        let conn = &mut self.conns[slot];
        if conn.collecting && !conn.line.is_empty() {
            return Err(classify(&conn.line));
        }
        if conn.step != Step::Eof {
            return Err(Fail::Error(format!(
                "server closed the connection ({})",
                describe(conn.step)
            )));
        }
        // A churn cycle ended as it should: the server said bye and closed first.
        self.complete_cycle(slot, now);
        Ok(())
    }

    /// A churn cycle is done: count it, close (with a reset: no TIME_WAIT), go again.
    fn complete_cycle(&mut self, slot: usize, now: Instant) {
        let counted = self.in_window(now) && slot >= self.heavy;
        let conn = &mut self.conns[slot];
        conn.served = true;
        if counted {
            self.tally.latency.record(now - conn.started);
            self.tally.messages += 1;
        }
        self.close(slot, true);
        if self.sending {
            self.open(slot, now);
        } else {
            self.conns[slot].step = Step::Done;
        }
    }

    fn in_window(&self, now: Instant) -> bool {
        matches!(self.window, Some((t0, t1)) if now >= t0 && now < t1)
    }

    /// Counts a failure, closes the connection, and for churn starts the next cycle.
    fn fail(&mut self, slot: usize, fail: Fail, _now: Instant) {
        match fail {
            Fail::Rejected => self.tally.rejected += 1,
            Fail::Error(why) => {
                self.tally.errors += 1;
                if self.tally.first_error.is_none() {
                    self.tally.first_error = Some(why);
                }
            }
        }
        if self.conns[slot].step == Step::Connecting {
            self.connecting -= 1;
        }
        self.close(slot, true);
        self.conns[slot].step = Step::Done;
        if self.plan.workload == Workload::Churn && self.sending {
            // Reopened from the event loop, not from here: a connect that fails at once
            // (out of descriptors) would otherwise recurse without bound.
            self.conns[slot].step = Step::Unopened;
            self.reopen.push(slot);
        }
    }

    /// Closes a slot's socket. With `reset`, `SO_LINGER` 0 makes the close send a RST
    /// instead of a FIN, so neither side keeps the connection in TIME_WAIT: at thousands
    /// of connections per second those would exhaust the ephemeral ports.
    fn close(&mut self, slot: usize, reset: bool) {
        if let Some(stream) = self.conns[slot].stream.take() {
            if reset {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
            drop(stream);
        }
    }

    /// Fails every connection whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            if conn.step.is_waiting() && conn.deadline <= now {
                let why = format!("timed out ({})", describe(conn.step));
                self.fail(slot, Fail::Error(why), now);
            }
        }
    }

    /// Closes what is still open (cleanly where nothing is outstanding) and tallies.
    fn finish(mut self) -> Tally {
        for slot in 0..self.conns.len() {
            let conn = &self.conns[slot];
            let busy = conn.step.is_waiting();
            if !conn.served && matches!(conn.step, Step::Connecting | Step::Exchange) {
                self.tally.unanswered += 1;
            }
            self.close(slot, busy);
        }
        self.tally.served = self.conns.iter().filter(|c| c.served).count();
        self.tally
    }
}

fn describe(step: Step) -> &'static str {
    match step {
        Step::Unopened => "before connecting",
        Step::Connecting => "connecting",
        Step::Open => "while idle",
        Step::Exchange => "waiting for a reply",
        Step::Hi => "waiting for the greeting",
        Step::Bye => "waiting for bye",
        Step::Eof => "waiting for the server to close",
        Step::Done => "after finishing",
    }
}

/// Checks one chunk of input against what the current step expects.
/// `reply` is what the exchange under way must get back.
fn consume(conn: &mut Conn, chunk: &[u8], reply: &[u8]) -> Result<Progress, Fail> {
    match conn.step {
        Step::Exchange if !conn.collecting => {
            let want = &reply[conn.in_pos..];
            // Where a reply should start, `ERR ` (or the start of it, cut short by the
            // read) is the server's error line, unless the reply itself starts so.
            let err_start = chunk.starts_with(ERR) || ERR.starts_with(chunk);
            if conn.in_pos == 0 && err_start && !want.starts_with(&chunk[..chunk.len().min(4)]) {
                conn.collecting = true;
                return match collect(conn, chunk)? {
                    Some(line) if line.starts_with(ERR) => Err(classify(&line)),
                    Some(line) => Err(differs(reply, &line, 0)),
                    None => Ok(Progress::Partial),
                };
            }
            if !want.starts_with(chunk) {
                return Err(differs(reply, chunk, conn.in_pos));
            }
            conn.in_pos += chunk.len();
            Ok(if conn.in_pos == reply.len() {
                Progress::Complete
            } else {
                Progress::Partial
            })
        }
        Step::Hi | Step::Bye if !conn.collecting => {
            let Some(line) = collect(conn, chunk)? else {
                return Ok(Progress::Partial);
            };
            let text = line.strip_suffix(b"\r").unwrap_or(&line);
            if text.starts_with(b"ERR ") {
                return Err(classify(text));
            }
            if conn.step == Step::Bye && !text.eq_ignore_ascii_case(b"bye") {
                let shown = String::from_utf8_lossy(text);
                return Err(Fail::Error(format!("expected bye, got {shown:?}")));
            }
            Ok(Progress::Complete)
        }
        Step::Eof => Err(Fail::Error("data after bye".into())),
        // Anything else is unsolicited: collect it as the reason the server is about to
        // give for closing (`ERR busy`, `ERR idle timeout`, ...).
        _ => {
            conn.collecting = true;
            match collect(conn, chunk)? {
                Some(line) => Err(classify(&line)),
                None => Ok(Progress::Partial),
            }
        }
    }
}

/// Appends to the connection's line; returns it once a `\n` arrives. Bytes after the
/// `\n` are an error: the server should be waiting for the client by then.
fn collect(conn: &mut Conn, chunk: &[u8]) -> Result<Option<Vec<u8>>, Fail> {
    match chunk.iter().position(|&b| b == b'\n') {
        None => {
            if conn.line.len() + chunk.len() > MAX_LINE {
                return Err(Fail::Error("unexpected data from the server".into()));
            }
            conn.line.extend_from_slice(chunk);
            Ok(None)
        }
        Some(end) if end + 1 == chunk.len() || conn.collecting => {
            conn.line.extend_from_slice(&chunk[..end]);
            Ok(Some(std::mem::take(&mut conn.line)))
        }
        Some(_) => Err(Fail::Error("server sent more than one line".into())),
    }
}

/// The start of every error line the protocol has.
const ERR: &[u8] = b"ERR ";

/// A reply that is not the expected one, reported at its first differing byte:
/// `got` arrived at offset `at` of the reply `want`.
fn differs(want: &[u8], got: &[u8], at: usize) -> Fail {
    let i = got
        .iter()
        .zip(&want[at.min(want.len())..])
        .position(|(g, w)| g != w)
        .unwrap_or(want.len().saturating_sub(at).min(got.len()));
    let byte = at + i;
    let show = |bytes: &[u8]| {
        let end = bytes.len().min(16);
        let text: String = bytes[..end].escape_ascii().to_string();
        match end < bytes.len() {
            true => format!("\"{text}\"..."),
            false => format!("\"{text}\""),
        }
    };
    let expected = match want.get(byte..) {
        Some(rest) if !rest.is_empty() => show(rest),
        _ => "the end of the reply".into(),
    };
    Fail::Error(format!(
        "reply differs at byte {byte}: expected {expected}, got {}",
        show(&got[i..])
    ))
}

/// A line the server sent instead of a reply.
fn classify(line: &[u8]) -> Fail {
    if line.starts_with(b"ERR busy") {
        Fail::Rejected
    } else {
        let text = String::from_utf8_lossy(line);
        Fail::Error(format!("server said {:?}", text.trim_end()))
    }
}

/// After a write or read error, reads what the server left in the socket: a connection
/// turned away with `ERR busy` may be reset before the client reads that line.
fn salvage(conn: &mut Conn, scratch: &mut [u8], why: String) -> Fail {
    if let Some(stream) = conn.stream.as_mut() {
        if let Ok(n) = stream.read(&mut scratch[..MAX_LINE]) {
            let mut line = std::mem::take(&mut conn.line);
            line.extend_from_slice(&scratch[..n]);
            if line.starts_with(b"ERR ") {
                let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
                return classify(&line[..end]);
            }
        }
    } else if conn.line.starts_with(b"ERR ") {
        return classify(&conn.line);
    }
    Fail::Error(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> Conn {
        Conn {
            step: Step::Exchange,
            ..Conn::unopened(0, Instant::now())
        }
    }

    fn error_of(result: Result<Progress, Fail>) -> String {
        match result {
            Err(Fail::Error(why)) => why,
            Err(Fail::Rejected) => "rejected".into(),
            Ok(_) => "no error".into(),
        }
    }

    /// A reply that goes wrong in its second read is reported at the byte where it
    /// differs, with what was expected and what came, not where the read began.
    #[test]
    fn a_differing_reply_is_reported_at_its_first_differing_byte() {
        let want: Vec<u8> = [vec![b'a'; 1030], b"\n".to_vec()].concat();
        let mut conn = waiting();
        assert!(matches!(
            consume(&mut conn, &want[..1024], &want),
            Ok(Progress::Partial)
        ));
        let why = error_of(consume(&mut conn, b"aaaX\n", &want));
        assert_eq!(
            why,
            r#"reply differs at byte 1027: expected "aaa\n", got "X\n""#
        );
        // More bytes than the reply: reported where the reply should have ended.
        let why = error_of(consume(&mut waiting(), b"abc\nzz", b"abc\n"));
        assert_eq!(
            why,
            r#"reply differs at byte 4: expected the end of the reply, got "zz""#
        );
    }

    /// A reply that starts with `E` is a wrong reply, not an error line; `ERR busy`
    /// is a refusal, even when it arrives one byte at a time.
    #[test]
    fn a_reply_starting_with_e_is_not_an_err_line() {
        let why = error_of(consume(&mut waiting(), b"Echo: abc\n", b"abc\n"));
        assert_eq!(
            why,
            r#"reply differs at byte 0: expected "abc\n", got "Echo: abc\n""#
        );
        let mut conn = waiting();
        for piece in [&b"E"[..], b"R", b"R busy\n"] {
            match consume(&mut conn, piece, b"abc\n") {
                Ok(Progress::Partial) => {}
                Err(Fail::Rejected) => return,
                _ => panic!("ERR busy, sent in pieces, is a refusal"),
            }
        }
        panic!("ERR busy was never recognised");
    }
}
