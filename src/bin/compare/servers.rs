//! Starting, sampling and stopping the server processes `compare` measures.
//!
//! Every server runs in a process group of its own, so an external command started
//! through a shell (or a server that forks per client) is measured and stopped as a
//! whole. A process group does not get the terminal's Ctrl-C, so `compare` keeps a list
//! of live groups and its own Ctrl-C handler kills them before exiting.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use loadgen::procstat::{self, ProcSample};

use crate::row::LoadMode;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of a server's stderr kept to explain a failure.
const STDERR_LINES: usize = 5;

/// Process groups of the servers alive right now, for the Ctrl-C handler.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The built-in yardsticks: each a model's smallest correct echo server, no framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yardstick {
    /// `baseline`: one mio event loop (`--serve-baseline`).
    Loop,
    /// `baseline-threads`: a blocking thread per client (`--serve-baseline-threads`).
    Threads,
    /// `baseline-async`: tokio's echo example, a task per client (`--serve-baseline-async`).
    Tasks,
}

impl Yardstick {
    const ALL: [Yardstick; 3] = [Yardstick::Loop, Yardstick::Threads, Yardstick::Tasks];

    /// The yardstick whose row is called `name`, if one is.
    pub fn named(name: &str) -> Option<Yardstick> {
        Yardstick::ALL
            .into_iter()
            .find(|y| y.name_and_flag().0 == name)
    }

    /// The row's name and the flag that serves it.
    fn name_and_flag(self) -> (&'static str, &'static str) {
        match self {
            Yardstick::Loop => ("baseline", "--serve-baseline"),
            Yardstick::Threads => ("baseline-threads", "--serve-baseline-threads"),
            Yardstick::Tasks => ("baseline-async", "--serve-baseline-async"),
        }
    }

    /// What it is, as the summary names it.
    pub fn described(self) -> &'static str {
        match self {
            Yardstick::Loop => "the baseline echo loop",
            Yardstick::Threads => "baseline-threads, the bare thread-per-client echo",
            Yardstick::Tasks => "baseline-async, tokio's own echo",
        }
    }
}

/// What to start for one row.
#[derive(Clone, Debug)]
pub enum Kind {
    /// One of the built-in yardsticks, which compare serves itself.
    Baseline(Yardstick),
    /// A switchboard binary: `server --model NAME`, or `server1`..`server4`.
    Builtin {
        /// Path of the binary.
        exe: PathBuf,
        /// Arguments before the common ones (`--model NAME`).
        args: Vec<String>,
    },
    /// A user's shell command with `{port}`.
    External {
        /// The command.
        command: String,
    },
    /// A server someone else started: driven, but not sampled or stopped.
    Attached {
        /// Its address.
        addr: SocketAddr,
    },
}

/// A running server.
pub struct Server {
    /// `None` for an attached server, which is not ours to sample or stop.
    child: Option<Child>,
    /// Also its process group id.
    pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Sample the whole process group (external commands), not just the one process.
    group: bool,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// Installs the Ctrl-C / SIGTERM handler that stops every live server and exits 130.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let groups: Vec<u32> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
        for pgid in groups {
            cli::process::kill_group(pgid);
        }
        eprintln!("\ncompare: interrupted");
        std::process::exit(130);
    });
}

/// Starts a server of `kind` on `host`, with the per-line `mode` and `max_clients`.
pub fn start(
    kind: &Kind,
    host: &str,
    mode: LoadMode,
    max_clients: usize,
    workers: Option<usize>,
) -> Result<Server, String> {
    match kind {
        Kind::Baseline(yardstick) => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find the compare executable: {e}"))?;
            let mut cmd = Command::new(exe);
            let (name, flag) = yardstick.name_and_flag();
            let ip = switchboard::net::resolve(host, 0).map_err(|e| e.to_string())?[0].ip();
            cmd.arg(flag).arg(SocketAddr::new(ip, 0).to_string());
            if let (Yardstick::Tasks, Some(n)) = (yardstick, workers) {
                cmd.arg("--workers").arg(n.to_string());
            }
            start_announcing(cmd, name)
        }
        Kind::Builtin { exe, args } => {
            let mut cmd = Command::new(exe);
            cmd.args(args)
                .args([host, "0", "--mode", mode.as_str(), "-q"])
                .arg("--max-clients")
                .arg(max_clients.to_string());
            let name = exe.file_stem().map(|s| s.to_string_lossy().into_owned());
            start_announcing(cmd, name.as_deref().unwrap_or("server"))
        }
        Kind::External { command } => start_external(command, host),
        Kind::Attached { addr } => Ok(Server {
            child: None,
            pid: 0,
            addr: *addr,
            group: false,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
        }),
    }
}

/// Path of a switchboard binary in `dir`.
pub fn binary(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn prepare(cmd: &mut Command) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
}

fn spawn(
    mut cmd: Command,
    name: &str,
    group: bool,
) -> Result<(Server, mpsc::Receiver<String>), String> {
    prepare(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let pid = child.id();
    if let Ok(mut live) = LIVE.lock() {
        live.push(pid);
    }
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(err) = child.stderr.take() {
        let tail = Arc::clone(&stderr);
        thread::spawn(move || keep_tail(err, tail));
    }
    // The first stdout line goes to the starter; the rest is read and dropped so a
    // chatty server never blocks on a full pipe.
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines.map_while(Result::ok) {}
        });
    }
    let server = Server {
        child: Some(child),
        pid,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        group,
        stderr,
    };
    Ok((server, rx))
}

/// Starts a server that prints `listening on IP:PORT` first, as every switchboard
/// server (and the baseline) does.
fn start_announcing(cmd: Command, name: &str) -> Result<Server, String> {
    let (mut server, first_line) = spawn(cmd, name, false)?;
    let line = match first_line.recv_timeout(START_TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let why = server.failure_reason();
            return Err(format!("{name} did not start: {why}"));
        }
    };
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
        .ok_or_else(|| format!("{name} printed {line:?} instead of `listening on IP:PORT`"))?;
    server.addr = addr;
    Ok(server)
}

/// Starts a user's command on a free port and waits until it accepts connections.
fn start_external(command: &str, host: &str) -> Result<Server, String> {
    // Resolved once, so the free port is found on the very address the row will drive.
    // `resolve` fails rather than return no address, and puts IPv4 first.
    let ip = switchboard::net::resolve(host, 0).map_err(|e| e.to_string())?[0].ip();
    // Ask the kernel for a free port, then hand it over: another process could take it
    // in between, but on a test machine that is rare and shows up as a start failure.
    let port = TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port on {host}: {e}"))?
        .port();
    let line = command.replace("{port}", &port.to_string());
    #[cfg(unix)]
    let cmd = {
        let mut c = Command::new("sh");
        c.arg("-c").arg(&line);
        c
    };
    #[cfg(windows)]
    let cmd = {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(&line);
        c
    };
    let (mut server, _first_line) = spawn(cmd, &line, true)?;
    let addr = SocketAddr::new(ip, port);
    server.addr = addr;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = server.exit_status() {
            let why = server.failure_reason();
            return Err(format!(
                "`{line}` exited ({status}) before accepting connections: {why}"
            ));
        }
        let ready = match listening_on(addr) {
            Some(listening) => listening,
            // Without socket tables, a probe connection closed at once; a single-client
            // server sees it as a client that left without a word.
            None => TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
        };
        if ready {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "`{line}` did not accept connections on {addr} within {START_TIMEOUT:?}"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a server listens where we will connect (`addr`, or the wildcard address of
/// either family on its port), read from the kernel's socket tables, so no connection
/// has to be made: a naive coursework server may serve a probe connection as its one
/// client, or spin on it. `None` where the tables cannot be read or list no socket at
/// all (not Linux, or a kernel that does not fill them in).
fn listening_on(addr: SocketAddr) -> Option<bool> {
    let sockets = cli::process::tcp_sockets()?;
    Some(sockets.iter().any(|&(local, listening)| {
        let wildcard = local.ip().is_unspecified();
        listening && local.port() == addr.port() && (wildcard || local == addr)
    }))
}

impl Server {
    /// CPU, threads and memory now (Linux only; never for an attached server).
    pub fn sample(&self) -> Option<ProcSample> {
        if self.child.is_none() {
            None
        } else if self.group {
            procstat::sample_group(self.pid).ok()
        } else {
            procstat::sample_process(self.pid).ok()
        }
    }

    /// Whether the process has exited (it should not have).
    pub fn exited(&mut self) -> bool {
        self.exit_status().is_some()
    }

    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// The last stderr lines, or the exit status, to explain a failure.
    pub fn failure_reason(&mut self) -> String {
        // Give the stderr reader a moment to catch up with a process that just died.
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline && !self.exited() {
            thread::sleep(Duration::from_millis(20));
        }
        let tail: Vec<String> = self
            .stderr
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        match (tail.last(), self.exit_status()) {
            (Some(last), _) => last.clone(),
            (None, Some(status)) => format!("exited with {status}"),
            _ => "no output".into(),
        }
    }
}

impl Drop for Server {
    /// Kills the server's whole process group and reaps it; the measurements are taken.
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if self.group {
            cli::process::kill_group(self.pid);
        }
        let _ = child.kill();
        let _ = child.wait();
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|&p| p != self.pid);
        }
    }
}

fn keep_tail(stream: impl Read, tail: Arc<Mutex<VecDeque<String>>>) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

/// The open-files limit of this process (Linux), to refuse runs that cannot fit.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On Linux a real listener is seen without connecting to it, and is gone once
    /// closed; one on another address of the same port does not count.
    #[test]
    fn sees_a_real_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        if listening_on(addr).is_none() {
            return; // no socket tables here: compare probes instead
        }
        assert_eq!(listening_on(addr), Some(true));
        let elsewhere = SocketAddr::new([127, 0, 0, 2].into(), addr.port());
        assert_eq!(listening_on(elsewhere), Some(false));
        drop(listener);
        assert_eq!(listening_on(addr), Some(false));
    }
}
