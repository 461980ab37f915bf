//! The yardstick: the smallest *correct* single-threaded `mio` echo loop, with no line
//! framing — whatever bytes arrive go straight back.
//!
//! `compare` runs it as its own process (the row `baseline`) and reports every
//! strategy's CPU per message and latency as a ratio to it, so targets like "server4
//! costs at most 1.1x the baseline" are measured in one run, on one machine, under one
//! load. It plays by the same rules as a real server, so the ratio measures framing and
//! protocol overhead, not shortcuts: reads are drained until `WouldBlock`, a short write
//! keeps the rest pending (and stops reading that client until it drains — backpressure)
//! instead of failing, and the listen backlog is as deep as the strategies'.
//!
//! It does not do what real servers must: no lines, no `bye`, no limits, no console.
//! Accept errors (out of descriptors) are not backed off: it is a benchmark, not a server.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::Error;

pub mod tasks;
pub mod threads;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Client tokens start here; the slab index is `token - FIRST_CLIENT`.
const FIRST_CLIENT: usize = 2;
/// Listen backlog: deep enough that a burst of connects is queued, not dropped and
/// retried a second later by the client's SYN timer.
pub const BACKLOG: i32 = 1024;

/// A bound baseline echo server, ready to [`run`](Baseline::run).
pub struct Baseline {
    poll: Poll,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

/// Stops a running [`Baseline`] from another thread.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    /// Asks the loop to return; it does within one loop turn.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back. While non-empty the client is not read
    /// from, so a client that never reads its replies cannot make this grow without bound.
    pending: Vec<u8>,
}

impl Baseline {
    /// Binds a non-blocking listener on `addr` (port 0 = any free port).
    pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
        let listener = listen(addr)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(format!("binding {addr}"), e))?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new().map_err(|e| Error::io("creating a poll", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::io("registering the listener", e))?;
        let waker =
            Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("creating a waker", e))?;
        Ok(Baseline {
            poll,
            listener,
            stop: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(waker),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))
    }

    /// A handle that stops [`run`](Baseline::run) from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Echoes until stopped. Per-client errors close that client only.
    pub fn run(mut self) -> Result<(), Error> {
        let mut events = Events::with_capacity(1024);
        let mut conns: Vec<Option<Conn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io("polling", e));
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(&mut conns, &mut free),
                    WAKER => {
                        if self.stop.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                    }
                    Token(t) => {
                        let index = t - FIRST_CLIENT;
                        let keep = match conns.get_mut(index) {
                            Some(Some(conn)) => serve(conn, &mut buf),
                            _ => continue, // closed earlier in this batch
                        };
                        if !keep {
                            conns[index] = None;
                            free.push(index);
                        }
                    }
                }
            }
        }
    }

    /// Accepts until `WouldBlock`: one readiness event may stand for many connections.
    fn accept(&mut self, conns: &mut Vec<Option<Conn>>, free: &mut Vec<usize>) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Anything else (EMFILE): give up for this event.
                Err(_) => return,
            };
            let _ = stream.set_nodelay(true);
            let index = free.pop().unwrap_or(conns.len());
            let token = Token(index + FIRST_CLIENT);
            // Both directions at once: WRITABLE only fires after a full send buffer
            // drains, so it costs nothing until a write comes up short.
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, token, interest)
                .is_err()
            {
                free.push(index);
                continue;
            }
            let conn = Conn {
                stream,
                pending: Vec::new(),
            };
            if index == conns.len() {
                conns.push(Some(conn));
            } else {
                conns[index] = Some(conn);
            }
        }
    }
}

/// A blocking listener on `addr` with the strategies' backlog.
fn listen(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    use socket2::{Domain, Protocol, Socket, Type};
    let fail = |e| Error::io(format!("binding {addr}"), e);
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    #[cfg(unix)]
    socket.set_reuse_address(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    Ok(socket.into())
}

/// Handles one readiness event for a client; `false` means close it.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    if !conn.pending.is_empty() {
        match write_some(&mut conn.stream, &conn.pending) {
            Ok(n) => {
                conn.pending.drain(..n);
            }
            Err(_) => return false,
        }
        if !conn.pending.is_empty() {
            return true; // still backed up: wait for the next WRITABLE
        }
    }
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => match write_some(&mut conn.stream, &buf[..n]) {
                Ok(written) if written == n => {}
                Ok(written) => {
                    conn.pending.extend_from_slice(&buf[written..n]);
                    return true;
                }
                Err(_) => return false,
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Writes as much of `bytes` as the socket takes now.
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match stream.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
