//! The server under test as a process: started from the user's shell command on a free
//! loopback port, in a process group of its own so that everything it forks is
//! signalled, measured and killed with it; its stdout and stderr kept for the report.

use std::collections::VecDeque;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::console::{Stdin, Stdout};
use crate::ready::{self, Ready};

/// Bytes of the server's output kept (the most recent ones).
const OUTPUT_KEPT: usize = 64 * 1024;

/// Process groups alive right now, for the Ctrl-C handler and the `--timeout` watchdog.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A running server, killed (with its whole process group) when dropped.
pub struct ServerProcess {
    child: Child,
    /// Also the process group id.
    pid: u32,
    /// Where it accepts connections (loopback).
    pub addr: SocketAddr,
    /// The command line as run, `{port}` replaced.
    pub line: String,
    output: Arc<Mutex<VecDeque<u8>>>,
    /// The console's input: held open, so a chat server that reads it sees no end of
    /// input, as at a terminal; written only by the console checks.
    pub stdin: Stdin,
    /// The console's output alone (stderr is only in `output`).
    pub stdout: Stdout,
}

/// Where `free_port` looks: below the ports every common OS hands out to outgoing
/// connections (Linux from 32768, macOS and Windows from 49152), so that no client
/// socket of a test or of another grader takes the port between the check and the bind.
const PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A loopback port nobody listens on now, from `PORTS`, starting at a place that
/// differs per process and per call so that graders running side by side spread out.
fn free_port() -> std::io::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    // A fresh `RandomState` is seeded anew for every call.
    let hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let span = u64::from(PORTS.end - PORTS.start);
    let start = hasher.finish() % span;
    // Try a bounded number; on a machine where they are all taken, let the kernel pick.
    for step in 0..256 {
        let port = PORTS.start + ((start + step) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// Whether a server's output says its bind failed because the port was in use (in the
/// words of Rust, Python, C's `perror`, Java and Node). Read only after the server
/// exited without listening, to start it again elsewhere; readiness itself is never
/// read from the output.
fn says_address_in_use(output: &str) -> bool {
    let output = output.to_ascii_lowercase();
    ["address already in use", "address in use", "eaddrinuse"]
        .iter()
        .any(|words| output.contains(words))
}

/// A failed start, and whether another process had taken the port.
enum Taken {
    Yes(StartError),
    No(StartError),
}

/// Why a server did not start, with what it printed.
pub struct StartError {
    /// One line.
    pub message: String,
    /// The server's stdout and stderr, interleaved as they arrived.
    pub output: String,
}

impl ServerProcess {
    /// Runs `template` (a shell command with `{port}`) on a free loopback port and
    /// waits, at most `within`, until that port accepts connections.
    pub fn start(template: &str, within: Duration) -> Result<ServerProcess, StartError> {
        // The free port found may be taken by another process before the
        // server binds it (tests start many servers at once): then the
        // server fails to start, through no fault of its own; try another.
        let mut attempts = 3;
        loop {
            attempts -= 1;
            match Self::start_once(template, None, within) {
                Err(Taken::Yes(_)) if attempts > 0 => continue,
                Err(Taken::Yes(e) | Taken::No(e)) => return Err(e),
                Ok(server) => return Ok(server),
            }
        }
    }

    /// Runs `template` again on `port`, the one a server before it had: a restart.
    pub fn start_at(
        template: &str,
        port: u16,
        within: Duration,
    ) -> Result<ServerProcess, StartError> {
        match Self::start_once(template, Some(port), within) {
            Ok(server) => Ok(server),
            Err(Taken::Yes(e) | Taken::No(e)) => Err(e),
        }
    }

    fn start_once(
        template: &str,
        port: Option<u16>,
        within: Duration,
    ) -> Result<ServerProcess, Taken> {
        let port = port.map_or_else(free_port, Ok).map_err(|e| {
            Taken::No(StartError {
                message: format!("cannot find a free loopback port: {e}"),
                output: String::new(),
            })
        })?;
        let line = template.replace("{port}", &port.to_string());
        let mut child = shell(&line).spawn().map_err(|e| {
            Taken::No(StartError {
                message: format!("cannot run `{line}`: {e}"),
                output: String::new(),
            })
        })?;
        let pid = child.id();
        if let Ok(mut live) = LIVE.lock() {
            live.push(pid);
        }
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = Stdout::default();
        if let Some(out) = child.stdout.take() {
            keep(out, Arc::clone(&output), Some(stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            keep(err, Arc::clone(&output), None);
        }
        let stdin = Stdin::new(child.stdin.take());
        let mut server = ServerProcess {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            line,
            output,
            stdin,
            stdout,
        };
        tracing::debug!(pid, line = %server.line, "started");
        let deadline = Instant::now() + within;
        loop {
            let ready = ready::loopback_listener(port, pid);
            if let Some(status) = server.exit_status() {
                let error = server.start_error(format!(
                    "`{}` exited ({status}) before accepting connections on port {port}",
                    server.line
                ));
                let in_use = matches!(ready, Ready::Taken) || says_address_in_use(&error.output);
                return Err(if in_use {
                    Taken::Yes(error)
                } else {
                    Taken::No(error)
                });
            }
            if let Ready::At(addr) = ready {
                server.addr = addr;
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(Taken::No(server.start_error(format!(
                    "`{}` did not accept connections on port {port} within {within:?}",
                    server.line
                ))));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn start_error(&mut self, message: String) -> StartError {
        self.stop();
        StartError {
            message,
            output: self.output(),
        }
    }

    /// The process's exit status, once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether any process of the server's group is still running (Linux: every
    /// process of the group; elsewhere: the one started).
    pub fn running(&mut self) -> bool {
        let started = self.exit_status().is_none();
        #[cfg(unix)]
        return group_running(self.pid).unwrap_or(started);
        #[cfg(not(unix))]
        started
    }

    /// Descriptors open in the server's whole process group (Linux, from `/proc`).
    pub fn open_descriptors(&self) -> Option<usize> {
        let pids = loadgen::procstat::group_pids(self.pid).ok()?;
        let mut open = 0;
        for pid in pids {
            // A process that has just exited has no descriptors left to count.
            if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                open += fds.count();
            }
        }
        Some(open)
    }

    /// How long the process group's threads have been running or ready to
    /// run (Linux, where the kernel keeps scheduler statistics).
    pub fn runnable(&self) -> Option<Duration> {
        cli::process::group_runnable_time(self.pid)
    }

    /// CPU time used so far by the whole process group (Linux only).
    pub fn cpu(&self) -> Option<Duration> {
        let sample = loadgen::procstat::sample_group(self.pid).ok()?;
        Some(sample.user + sample.system)
    }

    /// Sends `signal` (`TERM`, `INT`) to the whole process group, as a terminal does.
    #[cfg(unix)]
    pub fn signal(&self, signal: &str) -> Result<(), String> {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.pid)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match sent {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("kill -{signal} failed ({status})")),
            Err(e) => Err(format!("cannot run kill: {e}")),
        }
    }

    /// The last `lines` lines the server printed, stdout and stderr interleaved.
    pub fn output_tail(&self, lines: usize) -> String {
        let all = self.output();
        let kept: Vec<&str> = all.lines().collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }

    /// Everything kept of the server's output.
    pub fn output(&self) -> String {
        let bytes: Vec<u8> = self
            .output
            .lock()
            .map(|o| o.iter().copied().collect())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Kills the process group and reaps the process.
    pub fn stop(&mut self) {
        cli::process::kill_group(self.pid);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|&p| p != self.pid);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills every server still alive: for Ctrl-C and the `--timeout` watchdog.
pub fn kill_all() {
    let groups: Vec<u32> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for pgid in groups {
        cli::process::kill_group(pgid);
    }
}

/// `sh -c LINE` (`cmd /C` on Windows) in a process group of its own.
fn shell(line: &str) -> Command {
    #[cfg(unix)]
    let mut command = {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new("sh");
        c.arg("-c").arg(line).process_group(0);
        c
    };
    #[cfg(not(unix))]
    let mut command = {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(line);
        c
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Whether a live (not zombie) process is in group `pgid`; `None` without `/proc`.
#[cfg(unix)]
fn group_running(pgid: u32) -> Option<bool> {
    let pids = loadgen::procstat::group_pids(pgid).ok()?;
    Some(!pids.is_empty())
}

/// Appends everything `pipe` delivers to `output`, keeping the last [`OUTPUT_KEPT`]
/// bytes, and to `console` too when it is the server's stdout.
fn keep(
    mut pipe: impl Read + Send + 'static,
    output: Arc<Mutex<VecDeque<u8>>>,
    console: Option<Stdout>,
) {
    thread::spawn(move || {
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            if let Some(console) = &console {
                console.push(&chunk[..n]);
            }
            if let Ok(mut kept) = output.lock() {
                kept.extend(&chunk[..n]);
                let excess = kept.len().saturating_sub(OUTPUT_KEPT);
                kept.drain(..excess);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_outside_the_outgoing_range_and_free() {
        let port = free_port().unwrap();
        assert!(PORTS.contains(&port), "{port}");
        let _held = TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn address_in_use_is_recognised_in_common_words() {
        assert!(says_address_in_use(
            "OSError: [Errno 98] Address already in use"
        ));
        assert!(says_address_in_use("bind: Address in use"));
        assert!(says_address_in_use("Error: listen EADDRINUSE: :::5000"));
        assert!(!says_address_in_use("Permission denied"));
    }
}
