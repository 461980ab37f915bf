//! The thread-per-client yardstick: the smallest correct blocking echo server, one OS
//! thread per connection, no line framing.
//!
//! `compare` runs it as the row `baseline-threads`. Every message wakes a blocked thread
//! and every reply ends with that thread blocking again, so next to `baseline` (the event
//! loop) it shows what the thread-per-client *model* costs by itself on this machine;
//! `server2`'s figures next to *it* show what switchboard adds on top of the model.
//!
//! Where it affects the cost, it is built like `server2`: `TCP_NODELAY`, 512 KiB thread
//! stacks, the same listen backlog. Its read buffer is a fixed 4 KiB, where `server2`'s
//! starts at 1 KiB and doubles up to 64 KiB for long lines. Like the event-loop baseline
//! it has no lines, no `bye`, no limits and no console.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::Error;

/// Stack per client thread, as `server2` asks for.
const STACK_SIZE: usize = 512 * 1024;
/// Pause after a failed `accept` (out of descriptors), so it is not retried in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A bound thread-per-client echo server, ready to [`run`](ThreadsBaseline::run).
pub struct ThreadsBaseline {
    listener: TcpListener,
}

impl ThreadsBaseline {
    /// Binds a blocking listener on `addr` (port 0 = any free port).
    pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
        Ok(ThreadsBaseline {
            listener: super::listen(addr)?,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))
    }

    /// Accepts and echoes until the process ends, each client on a thread of its own;
    /// it never returns (the signature is [`Baseline::run`](super::Baseline::run)'s).
    pub fn run(self) -> Result<(), Error> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    // A thread that cannot be started drops (closes) its connection.
                    let _ = thread::Builder::new()
                        .stack_size(STACK_SIZE)
                        .spawn(move || echo(stream));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => thread::sleep(ACCEPT_BACKOFF),
            }
        }
    }
}

/// One client: block in `read`, write back what came, until end of file or an error.
fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
