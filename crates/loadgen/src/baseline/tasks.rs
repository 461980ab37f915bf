//! The async yardstick: tokio's own echo example — a task per connection on the
//! work-stealing runtime, reading and writing until the peer leaves — with no line
//! framing.
//!
//! `compare` runs it as the row `baseline-async`. Next to `baseline` (the event loop)
//! it shows what the runtime costs by itself on this machine; the `async` model's
//! figures next to *it* show what switchboard adds on top of tokio. Where it affects
//! the cost it is built like the `async` model: `--workers` runtime threads (default:
//! one per core, as tokio's), `TCP_NODELAY`, a 4 KiB read buffer, the same listen
//! backlog. Like the other baselines it has no lines, no `bye`, no limits, no console.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;

/// Pause after a failed `accept` (out of descriptors), so it is not retried in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A bound tokio echo server, ready to [`run`](TasksBaseline::run).
pub struct TasksBaseline {
    listener: std::net::TcpListener,
    workers: Option<usize>,
}

impl TasksBaseline {
    /// Binds a listener on `addr` (port 0 = any free port), for a runtime of `workers`
    /// threads (`None`: tokio's default, one per core).
    pub fn bind(addr: SocketAddr, workers: Option<usize>) -> Result<Self, Error> {
        Ok(TasksBaseline {
            listener: super::listen(addr)?,
            workers,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))
    }

    /// Accepts and echoes until the process ends, each client in a task of its own;
    /// it returns only if the runtime cannot start.
    pub fn run(self) -> Result<(), Error> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = self.workers {
            builder.worker_threads(workers.max(1));
        }
        let runtime = builder
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the tokio runtime", e))?;
        runtime.block_on(async move {
            self.listener
                .set_nonblocking(true)
                .map_err(|e| Error::io("making the listener non-blocking", e))?;
            let listener = tokio::net::TcpListener::from_std(self.listener)
                .map_err(|e| Error::io("registering the listener", e))?;
            loop {
                match listener.accept().await {
                    Ok((socket, _)) => {
                        tokio::spawn(echo(socket));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
                }
            }
        })
    }
}

/// One client, as tokio's example writes it: read, write back what came, until end of
/// file or an error.
async fn echo(mut socket: tokio::net::TcpStream) {
    let _ = socket.set_nodelay(true);
    let mut buf = vec![0; 4096];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if socket.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
