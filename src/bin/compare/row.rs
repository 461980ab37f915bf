//! The rows of a comparison: a measured [`Row`] per model and load (the models
//! themselves are `switchboard::strategy`), and the run's [`Settings`]. Their field
//! names are the keys of the JSON and CSV files, so renaming one changes the files.

use std::fmt;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde::Serialize;
use switchboard::mode::{self, ModeEntry, MODES};

/// One measured row: one strategy under one workload at one load level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// `baseline`, a model (`event-loop`), `server1`.. or an external server's name.
    pub strategy: String,
    /// `pingpong`, `pipelined`, `churn` or `idle`.
    pub workload: WorkloadName,
    /// Lines per write (pipelined), else 1.
    pub depth: usize,
    /// Clients asked for (churn: concurrent connect loops; idle: connections).
    pub clients: usize,
    /// Connections established (churn: in total).
    pub connected: u64,
    /// Clients that completed at least one exchange (idle: survivors of the ping).
    pub served: usize,
    /// Connections turned away with `ERR busy`.
    pub rejected: u64,
    /// Other failures: refused, reset, wrong reply, timeout.
    pub errors: u64,
    /// Clients connected (or still connecting) that got no reply at all in the window
    /// and its drain, and no error: left waiting, as in a listen backlog.
    pub unanswered: u64,
    /// The first such failure.
    pub first_error: Option<String>,
    /// Lines answered in the window (churn: cycles; idle: pings answered).
    pub messages: u64,
    /// Window length in seconds.
    pub window_s: f64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Latency percentiles in microseconds (per request or batch, cycle, or ping).
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
    /// Open loop: the requests per second asked for (`--rate`); null in closed loop.
    pub offered_per_s: Option<f64>,
    /// Open loop: the requests per second answered in the window.
    pub achieved_per_s: Option<f64>,
    /// Open loop: the median from each request's actual send, not from when it was due
    /// (`p50_us` etc. are from when it was due).
    pub p50_uncorrected_us: Option<f64>,
    /// Open loop: p99 from the actual send.
    pub p99_uncorrected_us: Option<f64>,
    /// Open loop: p99.9 from the actual send.
    pub p999_uncorrected_us: Option<f64>,
    /// Open loop: p99 of how late the generator itself sent to idle clients
    /// (its own delays, which the corrected figures include).
    pub gen_late_p99_us: Option<f64>,
    /// Open loop: the longest the generator's loop was held up in the window
    /// (descheduled, or handling a burst); requests due meanwhile were charged it.
    pub gen_pause_max_us: Option<f64>,
    /// Server user CPU per message, in microseconds.
    pub cpu_user_us_per_msg: Option<f64>,
    /// Server system CPU per message, in microseconds.
    pub cpu_sys_us_per_msg: Option<f64>,
    /// Server threads (the most seen during the window).
    pub server_threads: Option<u64>,
    /// Server peak resident memory, in bytes.
    pub server_peak_bytes: Option<u64>,
    /// Idle: growth of the server's resident memory per connection held, in bytes.
    pub mem_per_conn_bytes: Option<f64>,
    /// Idle: the server's resident memory while holding the connections, in bytes
    /// (what the memory fit is taken over).
    pub held_rss_bytes: Option<u64>,
    /// Idle, Linux: growth of the kernel's thread stacks per connection held
    /// (machine-wide `KernelStack`; a thread per client shows here), in bytes.
    pub kernel_stack_per_conn_bytes: Option<f64>,
    /// Idle, Linux: growth of the kernel's socket memory per connection held
    /// (machine-wide unreclaimable slab plus TCP buffer pages; both ends of each
    /// loopback connection, the generator's included), in bytes.
    pub kernel_sockets_per_conn_bytes: Option<f64>,
    /// Share of one core the server used in the window (2.0 = two full cores).
    pub server_load: Option<f64>,
    /// Share of one core the load generator used in the window.
    pub gen_load: Option<f64>,
    /// CPU used by everything else on the machine during the window, in cores.
    pub other_load: Option<f64>,
    /// Load generator CPU per message, in microseconds.
    pub gen_cpu_us_per_msg: Option<f64>,
    /// How many times the row was measured (`--repeat`); these figures are the run with
    /// the lowest `other_load`.
    pub repeats: usize,
    /// Why this row's figures are not to be quoted as they stand (empty: nothing
    /// found). Listed under the table; a flagged row is left out of the summary.
    pub flags: Vec<String>,
}

impl Row {
    /// Server CPU (user + system) per message, in microseconds.
    pub fn cpu_per_msg(&self) -> Option<f64> {
        Some(self.cpu_user_us_per_msg? + self.cpu_sys_us_per_msg?)
    }

    /// The workload as the table names it.
    pub fn label(&self) -> String {
        label(self.workload, self.depth)
    }

    /// The row as the notes under the table name it: `server4 pipe-x32 10`.
    pub fn name(&self) -> String {
        format!("{} {} {}", self.strategy, self.label(), self.clients)
    }

    /// A row that could not be measured at all (its server did not start): the reason
    /// stands in for the figures.
    pub fn failed(strategy: &str, workload: loadgen::Workload, clients: usize, why: String) -> Row {
        Row {
            strategy: strategy.into(),
            workload: workload.into(),
            depth: workload.depth(),
            clients,
            first_error: Some(why.clone()),
            flags: vec![format!("failed: {why}")],
            ..Row::default()
        }
    }

    /// Whether the row is open-loop (`--rate`).
    pub fn open_loop(&self) -> bool {
        self.offered_per_s.is_some()
    }

    /// Whether `other` ran the same workload at the same load.
    pub fn same_load(&self, other: &Row) -> bool {
        self.workload == other.workload
            && self.clients == other.clients
            && self.depth == other.depth
    }
}

/// The run's settings, written at the top of the JSON file.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Server mode.
    pub mode: LoadMode,
    /// Bytes per line without the newline.
    pub size: usize,
    /// Measured window per row, seconds.
    pub duration_s: f64,
    /// Warm-up per row, seconds.
    pub warmup_s: f64,
    /// Generator threads.
    pub gen_threads: usize,
    /// Heavy: how many clients send the slow calc line.
    pub heavy_clients: usize,
    /// Measurements per row (the least disturbed is kept; of idle rows, the middle memory).
    pub repeat: usize,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// Whether server statistics could be read (Linux).
    pub process_stats: bool,
    /// `release` or `debug`: how compare, and the servers beside it, were built. A
    /// debug build is many times slower and its figures say little.
    pub build: &'static str,
}

/// How this compare was built: `debug` or `release`.
pub const BUILD: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// A workload by name: what `--workloads` takes and the files write. The shapes
/// themselves, with their parameters, are [`loadgen::Workload`].
///
/// The variants carry no doc comments: clap would list them in `--help` as a table of
/// possible values instead of the one line the option has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lower")]
pub enum WorkloadName {
    // The default only lets `Row` derive `Default`.
    #[default]
    PingPong,
    Pipelined,
    Churn,
    Heavy,
    Idle,
    Sweep,
}

impl WorkloadName {
    /// The name as typed after `--workloads` and written in the files.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadName::PingPong => "pingpong",
            WorkloadName::Pipelined => "pipelined",
            WorkloadName::Churn => "churn",
            WorkloadName::Heavy => "heavy",
            WorkloadName::Idle => "idle",
            WorkloadName::Sweep => "sweep",
        }
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<loadgen::Workload> for WorkloadName {
    fn from(workload: loadgen::Workload) -> Self {
        match workload {
            loadgen::Workload::PingPong => WorkloadName::PingPong,
            loadgen::Workload::Pipelined { .. } => WorkloadName::Pipelined,
            loadgen::Workload::Churn => WorkloadName::Churn,
            loadgen::Workload::Heavy { .. } => WorkloadName::Heavy,
            loadgen::Workload::Idle { .. } => WorkloadName::Idle,
        }
    }
}

/// A server mode that can be load-tested: one of the library's modes that
/// has a load line. Chat has none: it needs an operator.
#[derive(Clone, Copy, Debug)]
pub struct LoadMode(pub &'static ModeEntry);

impl LoadMode {
    /// The name as typed after `--mode`, by compare's users and by the servers'.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// `--mode`'s values, from the library's one list of modes.
    pub fn parser() -> impl TypedValueParser<Value = LoadMode> {
        let loadable = MODES
            .iter()
            .filter(|m| loadgen::load_line(m.name, 1).is_some());
        let names = loadable.map(|m| PossibleValue::new(m.name).help(m.about));
        PossibleValuesParser::new(names)
            .try_map(|name| mode::find(&name).map(LoadMode).ok_or("no such mode"))
    }
}

impl PartialEq for LoadMode {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for LoadMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for LoadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a workload is named in the table: pipelined rows carry their depth.
pub fn label(workload: WorkloadName, depth: usize) -> String {
    match workload {
        WorkloadName::Pipelined => format!("pipe-x{depth}"),
        w => w.to_string(),
    }
}

/// A release run's settings in echo mode, 64-byte lines, 0.5 s windows on 2 CPUs, for
/// the tests of the modules that read them.
#[cfg(test)]
pub fn test_settings() -> Settings {
    Settings {
        mode: LoadMode(switchboard::mode::find("echo").expect("echo is a mode")),
        size: 64,
        duration_s: 0.5,
        warmup_s: 0.1,
        gen_threads: 1,
        heavy_clients: 2,
        repeat: 1,
        cpus: 2,
        process_stats: true,
        build: "release",
    }
}

/// A ping-pong row with round figures, for the tests of the modules that read rows.
#[cfg(test)]
pub fn test_row(strategy: &str, clients: usize, cpu_us: f64) -> Row {
    Row {
        strategy: strategy.into(),
        workload: WorkloadName::PingPong,
        depth: 1,
        clients,
        connected: clients as u64,
        served: clients,
        messages: 1000,
        window_s: 1.0,
        msgs_per_s: 1000.0,
        p99_us: 100.0,
        cpu_user_us_per_msg: Some(cpu_us / 2.0),
        cpu_sys_us_per_msg: Some(cpu_us / 2.0),
        gen_load: Some(0.5),
        gen_cpu_us_per_msg: Some(cpu_us / 2.0),
        ..Row::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::ValueEnum;

    use super::*;

    /// `--workloads`, the files and loadgen spell every workload the same way.
    #[test]
    fn workload_names_agree() {
        for w in WorkloadName::value_variants() {
            let typed = w.to_possible_value().expect("no variant is skipped");
            assert_eq!(typed.get_name(), w.as_str());
            assert_eq!(serde_json::to_value(w).unwrap(), w.as_str());
        }
        let hold = Duration::from_secs(1);
        for shape in [
            loadgen::Workload::PingPong,
            loadgen::Workload::Pipelined { depth: 4 },
            loadgen::Workload::Churn,
            loadgen::Workload::Heavy { heavy: 2 },
            loadgen::Workload::Idle { hold },
        ] {
            assert_eq!(WorkloadName::from(shape).as_str(), shape.name());
        }
    }

    /// `--mode` offers every mode with a load line, and the JSON spells it
    /// as the servers' `--mode` does.
    #[test]
    fn load_modes_are_the_librarys() {
        let offered: Vec<String> = LoadMode::parser()
            .possible_values()
            .expect("a fixed list")
            .map(|v| v.get_name().to_owned())
            .collect();
        assert_eq!(offered, ["calc", "echo", "reverse"]);
        for name in offered {
            let mode = LoadMode(mode::find(&name).unwrap());
            assert_eq!(serde_json::to_value(mode).unwrap(), name.as_str());
        }
    }
}
