//! Turning measurements into the table, the ratios to the baseline, the summary
//! sentence, and the JSON / CSV / SVG files.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// One measured row: one strategy under one workload at one load level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// `baseline`, `server1`.. or an external server's name.
    pub strategy: String,
    /// `pingpong`, `pipelined`, `churn` or `idle`.
    pub workload: String,
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
}

impl Row {
    /// Server CPU (user + system) per message, in microseconds.
    pub fn cpu_per_msg(&self) -> Option<f64> {
        Some(self.cpu_user_us_per_msg? + self.cpu_sys_us_per_msg?)
    }

    fn label(&self) -> String {
        label(&self.workload, self.depth)
    }

    fn same_load(&self, other: &Row) -> bool {
        self.workload == other.workload
            && self.clients == other.clients
            && self.depth == other.depth
    }
}

/// The run's settings, written at the top of the JSON file.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Server mode.
    pub mode: String,
    /// Bytes per line without the newline.
    pub size: usize,
    /// Measured window per row, seconds.
    pub duration_s: f64,
    /// Warm-up per row, seconds.
    pub warmup_s: f64,
    /// Generator threads.
    pub gen_threads: usize,
    /// Measurements per row (the least disturbed is kept).
    pub repeat: usize,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// Whether server statistics could be read (Linux).
    pub process_stats: bool,
}

const HEADERS: [&str; 19] = [
    "strategy", "workload", "clients", "served", "rej", "msg/s", "p50", "p99", "p99.9", "max",
    "usr/msg", "sys/msg", "thr", "peak mem", "mem/conn", "err", "srv", "gen", "other",
];

/// The main table, a row per strategy and load level, aligned for a terminal.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.strategy.clone(),
                r.label(),
                r.clients.to_string(),
                r.served.to_string(),
                r.rejected.to_string(),
                if r.workload == "idle" {
                    "-".into()
                } else {
                    si(r.msgs_per_s)
                },
                micros(r.p50_us, r.messages),
                micros(r.p99_us, r.messages),
                micros(r.p999_us, r.messages),
                micros(r.max_us, r.messages),
                opt(r.cpu_user_us_per_msg, cpu),
                opt(r.cpu_sys_us_per_msg, cpu),
                opt(r.server_threads, |t| t.to_string()),
                opt(r.server_peak_bytes, |b| bytes(b as f64)),
                opt(r.mem_per_conn_bytes, bytes),
                r.errors.to_string(),
                opt(r.server_load, percent),
                opt(r.gen_load, percent),
                opt(r.other_load, percent),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    for (i, line) in std::iter::once(&header).chain(cells.iter()).enumerate() {
        for (col, (cell, width)) in line.iter().zip(&widths).enumerate() {
            let pad = width - cell.chars().count();
            // Names left-aligned, numbers right-aligned.
            if col < 2 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}", " ".repeat(pad));
            }
            out.push_str(if col + 1 < widths.len() { "  " } else { "\n" });
        }
        // Separate strategies for the eye.
        if i > 0 && i < cells.len() && rows[i - 1].strategy != rows[i].strategy {
            out.push('\n');
        }
    }
    out
}

/// A figure of one strategy as a multiple of the baseline's: the median over the rounds
/// in which both were measured, and the lowest and highest round.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Median of the per-round ratios.
    pub median: f64,
    /// Lowest per-round ratio.
    pub low: f64,
    /// Highest per-round ratio.
    pub high: f64,
    /// How many rounds had the figure on both sides.
    pub rounds: usize,
}

impl Spread {
    /// The spread of `ratios`; `None` if there are none.
    fn of(mut ratios: Vec<f64>) -> Option<Spread> {
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => ratios[n / 2],
            _ => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        };
        Some(Spread {
            median,
            low: ratios[0],
            high: ratios[n - 1],
            rounds: n,
        })
    }

    fn show(spread: Option<Spread>) -> String {
        match spread {
            None => "n/a".into(),
            Some(s) if s.rounds > 1 => format!("{:.2}x ({:.2}-{:.2})", s.median, s.low, s.high),
            Some(s) => format!("{:.2}x", s.median),
        }
    }
}

/// One strategy's CPU per message, p99 and throughput as multiples of the baseline's
/// under the same load.
#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    /// The strategy compared with the baseline.
    pub strategy: String,
    /// Its workload.
    pub workload: String,
    /// Lines per write (pipelined), else 1.
    pub depth: usize,
    /// Clients asked for.
    pub clients: usize,
    /// Rounds in which both the strategy and the baseline served messages (a figure
    /// missing from some of them, such as CPU in a short window, has fewer).
    pub rounds: usize,
    /// Server CPU per message.
    pub cpu_per_msg: Option<Spread>,
    /// 99th-percentile latency.
    pub p99: Option<Spread>,
    /// Messages per second.
    pub msgs_per_s: Option<Spread>,
}

/// Ratios of every strategy to the baseline under the same load, taken round by round:
/// `runs[i]` is every measurement of one row, in round order, so round k of a strategy
/// is paired with round k of the baseline, measured moments apart. A disturbance then
/// moves one round's ratio, not the median.
pub fn ratios(runs: &[Vec<Row>]) -> Vec<Ratios> {
    let is_baseline = |r: &&Vec<Row>| r.first().is_some_and(|r| r.strategy == "baseline");
    let mut out = Vec::new();
    for row_runs in runs.iter().filter(|r| !is_baseline(r)) {
        let Some(row) = row_runs.first() else {
            continue;
        };
        let Some(base_runs) = runs
            .iter()
            .filter(is_baseline)
            .find(|b| b[0].same_load(row))
        else {
            continue;
        };
        let pairs: Vec<(&Row, &Row)> = row_runs
            .iter()
            .zip(base_runs)
            .filter(|(r, b)| r.messages > 0 && b.messages > 0)
            .collect();
        let spread = |figure: fn(&Row) -> Option<f64>| {
            Spread::of(
                pairs
                    .iter()
                    .filter_map(|(r, b)| match (figure(r), figure(b)) {
                        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(a / b),
                        _ => None,
                    })
                    .collect(),
            )
        };
        out.push(Ratios {
            strategy: row.strategy.clone(),
            workload: row.workload.clone(),
            depth: row.depth,
            clients: row.clients,
            rounds: pairs.len(),
            cpu_per_msg: spread(Row::cpu_per_msg),
            p99: spread(|r| Some(r.p99_us)),
            msgs_per_s: spread(|r| Some(r.msgs_per_s)),
        });
    }
    out
}

impl Ratios {
    /// Whether these are the ratios of `row`'s strategy and load.
    fn is_of(&self, row: &Row) -> bool {
        self.strategy == row.strategy
            && self.workload == row.workload
            && self.depth == row.depth
            && self.clients == row.clients
    }
}

/// The ratios as lines of text, one per strategy and load; empty if there are none.
pub fn ratio_lines(ratios: &[Ratios]) -> String {
    let cells: Vec<[String; 3]> = ratios
        .iter()
        .map(|r| [r.cpu_per_msg, r.p99, r.msgs_per_s].map(Spread::show))
        .collect();
    let width = ratios.iter().map(|r| r.strategy.len()).max().unwrap_or(0);
    let cell = cells.iter().flatten().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (r, [cpu, p99, rate]) in ratios.iter().zip(cells) {
        let _ = writeln!(
            out,
            "{:<width$} {:<10} {:>6}   cpu/msg {cpu:>cell$}   p99 {p99:>cell$}   msg/s {rate:>cell$}",
            r.strategy,
            label(&r.workload, r.depth),
            r.clients,
        );
    }
    out
}

/// How a workload is named in the table: pipelined rows carry their depth.
fn label(workload: &str, depth: usize) -> String {
    match workload {
        "pipelined" => format!("pipe-x{depth}"),
        w => w.to_string(),
    }
}

/// A few sentences saying what the numbers show.
pub fn summary(rows: &[Row], ratios: &[Ratios]) -> String {
    let mut said = Vec::new();
    let has_baseline = rows.iter().any(|r| r.strategy == "baseline");

    // Ping-pong at the highest load every strategy ran.
    let ping: Vec<&Row> = rows.iter().filter(|r| r.workload == "pingpong").collect();
    if let Some(top) = ping.iter().map(|r| r.clients).max() {
        let at: Vec<&&Row> = ping.iter().filter(|r| r.clients == top).collect();
        let reference = at.iter().find(|r| r.strategy == "baseline").or_else(|| {
            at.iter()
                .filter(|r| r.cpu_per_msg().is_some() && r.messages > 0)
                .min_by(|a, b| {
                    a.cpu_per_msg()
                        .partial_cmp(&b.cpu_per_msg())
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
        });
        if let Some(reference) = reference.filter(|r| r.cpu_per_msg().is_some()) {
            let base_cpu = reference.cpu_per_msg().unwrap_or(1.0).max(1e-9);
            // Against the baseline, the paired ratios (the median over rounds).
            let paired = |r: &Row| ratios.iter().find(|x| x.is_of(r))?.cpu_per_msg;
            let multiple = |r: &Row| match paired(r) {
                Some(spread) => Some(spread.median),
                None => Some(r.cpu_per_msg()? / base_cpu),
            };
            let rounds = at.iter().filter_map(|r| paired(r)).map(|s| s.rounds).max();
            let parts: Vec<String> = at
                .iter()
                .filter(|r| r.strategy != reference.strategy && r.served > 1)
                .filter_map(|r| {
                    Some(format!(
                        "{} {:.1}x ({} msg/s)",
                        r.strategy,
                        multiple(r)?,
                        si(r.msgs_per_s)
                    ))
                })
                .collect();
            if !parts.is_empty() {
                let (run, median) = match rounds {
                    Some(n) if n > 1 => (
                        ", its least disturbed run".to_string(),
                        format!(" (median of {n} paired rounds)"),
                    ),
                    _ => Default::default(),
                };
                said.push(format!(
                    "At {top} ping-pong clients, measured against {} ({:.2} µs of server CPU per message, {} msg/s{run}), the CPU per message was{median}: {}.",
                    if has_baseline { "the baseline echo loop" } else { "the cheapest server" },
                    base_cpu,
                    si(reference.msgs_per_s),
                    parts.join(", ")
                ));
            }
            let model = |name: &str| {
                let row = at.iter().find(|r| r.strategy == name)?;
                Some(paired(row)?.median)
            };
            if let (Some(bare), Some(ours)) = (model("baseline-threads"), model("server2")) {
                said.push(format!(
                    "Thread-per-client by itself (baseline-threads, no server code) cost {bare:.2}x the event loop's CPU per message; server2 cost {ours:.2}x: the difference is what server2 adds to its model."
                ));
            }
        }
        for r in at.iter().filter(|r| r.rejected > 0 && r.served <= 1) {
            said.push(format!(
                "{} served {} of {} clients and turned {} away with ERR busy: one client at a time is its model.",
                r.strategy, r.served, r.clients, r.rejected
            ));
        }
    }

    // Idle memory at the largest hold.
    let idle: Vec<&Row> = rows.iter().filter(|r| r.workload == "idle").collect();
    if let Some(top) = idle.iter().map(|r| r.clients).max() {
        let parts: Vec<String> = idle
            .iter()
            .filter(|r| r.clients == top && r.served > 1)
            .filter_map(|r| Some(format!("{} {}", r.strategy, bytes(r.mem_per_conn_bytes?))))
            .collect();
        if !parts.is_empty() {
            said.push(format!(
                "Holding {top} idle connections cost per connection: {}.",
                parts.join(", ")
            ));
        }
        for r in idle
            .iter()
            .filter(|r| r.clients == top && r.served < r.clients && r.served > 1)
        {
            said.push(format!(
                "{} kept only {} of {} idle connections alive.",
                r.strategy, r.served, r.clients
            ));
        }
    }

    // Churn throughput.
    let churn: Vec<String> = rows
        .iter()
        .filter(|r| r.workload == "churn" && r.messages > 0)
        .map(|r| format!("{} {}", r.strategy, si(r.msgs_per_s)))
        .collect();
    if !churn.is_empty() {
        said.push(format!(
            "Connections per second (churn): {}.",
            churn.join(", ")
        ));
    }

    // Was the generator the bottleneck anywhere? Loopback TCP charges the sender for
    // delivering each message, so per message the generator costs about what the
    // cheapest server costs; what matters is which side fills its core first.
    let measured: Vec<&Row> = rows
        .iter()
        .filter(|r| r.messages > 0 && r.gen_cpu_us_per_msg.is_some() && r.cpu_per_msg().is_some())
        .collect();
    if !measured.is_empty() {
        let cheaper = measured
            .iter()
            .filter(|r| r.gen_cpu_us_per_msg < r.cpu_per_msg())
            .count();
        let tied: Vec<String> = measured
            .iter()
            .filter(|r| {
                r.gen_load.unwrap_or(0.0) >= 0.9
                    && r.gen_cpu_us_per_msg.unwrap_or(0.0) >= 0.95 * r.cpu_per_msg().unwrap_or(0.0)
            })
            .map(|r| format!("{} {} {}", r.strategy, r.label(), r.clients))
            .collect();
        said.push(format!(
            "The load generator spent less CPU per message than the server in {cheaper} of {} rows, so there the server's core filled first.",
            measured.len()
        ));
        if tied.is_empty() {
            said.push("It never ran at 90% of a core while costing as much per message as the server: the servers, not the generator, set these limits.".into());
        } else {
            said.push(format!(
                "In {} the generator ran at 90% or more of a core and cost as much per message as the server: those rows show the machine's limit with one core per side, not the server's alone.",
                tied.join(", ")
            ));
        }
        let disturbed: Vec<String> = rows
            .iter()
            .filter(|r| r.other_load.unwrap_or(0.0) > 0.2)
            .map(|r| format!("{} {} {}", r.strategy, r.label(), r.clients))
            .collect();
        if !disturbed.is_empty() {
            said.push(format!(
                "Other processes used more than 20% of a core during {}: re-run those for clean figures.",
                disturbed.join(", ")
            ));
        }
    } else if !rows.is_empty() && !rows.iter().any(|r| r.gen_load.is_some()) {
        said.push(if loadgen::procstat::SUPPORTED {
            "CPU figures are left out: /proc counts CPU time in 10 ms ticks, too coarse for windows under 0.5 s.".into()
        } else {
            "CPU figures come from /proc and are only available on Linux.".into()
        });
    }
    wrap(&said.join(" "), 100)
}

/// Writes every row as CSV, with a header line.
pub fn write_csv(path: &Path, rows: &[Row]) -> Result<(), String> {
    let mut out = String::new();
    let value = serde_json::to_value(rows).map_err(|e| e.to_string())?;
    let Some(list) = value.as_array() else {
        return Err("rows did not serialise as a list".into());
    };
    let fields: Vec<String> = match list.first().and_then(|r| r.as_object()) {
        Some(obj) => obj.keys().cloned().collect(),
        None => Vec::new(),
    };
    out.push_str(&fields.join(","));
    out.push('\n');
    for row in list {
        let cells: Vec<String> = fields
            .iter()
            .map(|f| match &row[f] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => csv_quote(s),
                other => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the settings and every row as pretty-printed JSON.
pub fn write_json(
    path: &Path,
    settings: &Settings,
    rows: &[Row],
    ratios: &[Ratios],
) -> Result<(), String> {
    #[derive(Serialize)]
    struct Doc<'a> {
        settings: &'a Settings,
        rows: &'a [Row],
        ratios: &'a [Ratios],
    }
    let doc = Doc {
        settings,
        rows,
        ratios,
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Draws throughput and p99 latency against ping-pong clients, a line per strategy.
pub fn write_svg(path: &Path, rows: &[Row]) -> Result<(), String> {
    use plotters::prelude::*;

    let ping: Vec<&Row> = rows
        .iter()
        .filter(|r| r.workload == "pingpong" && r.messages > 0)
        .collect();
    let mut names: Vec<&str> = Vec::new();
    for r in &ping {
        if !names.contains(&r.strategy.as_str()) {
            names.push(&r.strategy);
        }
    }
    let series = |metric: fn(&Row) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        names
            .iter()
            .map(|name| {
                let mut points: Vec<(f64, f64)> = ping
                    .iter()
                    .filter(|r| r.strategy == *name)
                    .map(|r| (r.clients as f64, metric(r)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                (name.to_string(), points)
            })
            .collect()
    };
    let throughput = series(|r| r.msgs_per_s);
    let latency = series(|r| r.p99_us / 1000.0);
    let max_clients = ping.iter().map(|r| r.clients).max().unwrap_or(1) as f64;

    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(600);
        let panels = [
            (&left, "Throughput (messages/s)", &throughput, false),
            (&right, "p99 latency (ms)", &latency, true),
        ];
        for (area, title, data, log_y) in panels {
            let y_max = data
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
                .fold(0.0f64, f64::max)
                .max(1e-3)
                * 1.15;
            let y_min = data
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
                .fold(f64::INFINITY, f64::min)
                .clamp(1e-3, y_max / 2.0)
                * 0.8;
            let x_range = (0.8f64..max_clients * 1.25).log_scale();
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70);
            // The two panels differ only in the y axis type, which plotters encodes in
            // the chart's type: the same drawing code, instantiated twice.
            macro_rules! lines {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc("ping-pong clients")
                        .y_desc(title)
                        .draw()?;
                    for (i, (name, points)) in data.iter().enumerate() {
                        let color = Palette99::pick(i).to_rgba();
                        chart
                            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                            .label(name.as_str())
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                            });
                        chart.draw_series(
                            points.iter().map(|&p| Circle::new(p, 3, color.filled())),
                        )?;
                    }
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperLeft)
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK)
                        .draw()?;
                }};
            }
            if log_y {
                lines!(builder.build_cartesian_2d(x_range, (y_min..y_max).log_scale())?);
            } else {
                lines!(builder.build_cartesian_2d(x_range, 0f64..y_max)?);
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn percent(load: f64) -> String {
    format!("{:.0}%", load * 100.0)
}

fn opt<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map(show).unwrap_or_else(|| "n/a".into())
}

/// 812, 81.2k, 1.23M.
fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.2}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A latency in microseconds, shown in the unit that keeps it short; `-` with no samples.
fn micros(us: f64, samples: u64) -> String {
    if samples == 0 {
        "-".into()
    } else if us < 10.0 {
        format!("{us:.1}µs")
    } else if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// CPU per message in microseconds.
fn cpu(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.2}µs")
    } else if us < 1000.0 {
        format!("{us:.0}µs")
    } else {
        format!("{:.2}ms", us / 1e3)
    }
}

/// 812B, 12.3KiB, 4.50MiB.
fn bytes(b: f64) -> String {
    if b < 1024.0 {
        format!("{b:.0}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1}KiB", b / 1024.0)
    } else {
        format!("{:.2}MiB", b / (1024.0 * 1024.0))
    }
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.chars().count() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.chars().count();
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, clients: usize, cpu_us: f64) -> Row {
        Row {
            strategy: strategy.into(),
            workload: "pingpong".into(),
            depth: 1,
            clients,
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

    /// Numbers are shown in short human units.
    #[test]
    fn units() {
        assert_eq!(si(812.0), "812");
        assert_eq!(si(81_234.0), "81.2k");
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(micros(83.2, 1), "83µs");
        assert_eq!(micros(1234.0, 1), "1.23ms");
        assert_eq!(micros(5.0, 0), "-");
        assert_eq!(bytes(900.0), "900B");
        assert_eq!(bytes(2048.0), "2.0KiB");
    }

    /// Ratios are taken against the baseline row of the same workload and load.
    #[test]
    fn ratios_against_the_baseline() {
        let runs = vec![
            vec![row("baseline", 10, 2.0)],
            vec![row("server4", 10, 2.2)],
            vec![row("server4", 50, 9.0)],
        ];
        let found = ratios(&runs);
        assert_eq!(found.len(), 1, "no baseline at 50 clients: {found:?}");
        let text = ratio_lines(&found);
        assert!(text.contains("cpu/msg 1.10x"), "{text}");
    }

    /// Over several rounds each strategy is paired with the baseline of its own round,
    /// and the median of those ratios is reported with their range: a round in which
    /// the whole machine was slow does not move it.
    #[test]
    fn ratios_pair_rounds_and_take_the_median() {
        let base = [2.0, 4.0, 2.0, 2.0];
        let server = [3.0, 6.0, 2.0, 4.0]; // per round: 1.5, 1.5, 1.0, 2.0
        let runs = vec![
            base.iter().map(|&c| row("baseline", 10, c)).collect(),
            server.iter().map(|&c| row("server2", 10, c)).collect(),
        ];
        let found = ratios(&runs);
        let cpu = found[0].cpu_per_msg.unwrap();
        assert_eq!(found[0].rounds, 4);
        assert_eq!((cpu.median, cpu.low, cpu.high), (1.5, 1.0, 2.0));
        assert!(ratio_lines(&found).contains("1.50x (1.00-2.00)"));
        // A round in which either side served nothing is left out, not counted as zero.
        let mut runs = runs;
        runs[1][3].messages = 0;
        let cpu = ratios(&runs)[0].cpu_per_msg.unwrap();
        assert_eq!((cpu.median, cpu.high), (1.5, 1.5));
    }

    /// The table has a header and one line per row, and marks missing figures n/a.
    #[test]
    fn table_shape() {
        let mut r = row("server2", 10, 3.0);
        r.server_threads = None;
        let text = table(&[r]);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("n/a") && text.starts_with("strategy"));
    }

    /// CSV quotes fields with commas and leaves missing values empty.
    #[test]
    fn csv_quoting() {
        assert_eq!(csv_quote("a,b"), "\"a,b\"");
        assert_eq!(csv_quote("plain"), "plain");
        assert_eq!(csv_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_quote("x\"y,"), "\"x\"\"y,\"");
    }

    /// With the thread-per-client baseline in the run, the summary sets server2 against
    /// it, quoting the medians of the paired rounds, not the ratio of the rows kept.
    #[test]
    fn summary_sets_server2_against_its_model() {
        let rounds = |name: &str, cpu: [f64; 3]| -> Vec<Row> {
            cpu.iter().map(|&c| row(name, 50, c)).collect()
        };
        let runs = vec![
            rounds("baseline", [2.0, 2.0, 4.0]),
            rounds("baseline-threads", [2.4, 3.2, 6.0]), // 1.20, 1.60, 1.50
            rounds("server2", [2.6, 3.4, 6.6]),          // 1.30, 1.70, 1.65
        ];
        // The table keeps each row's first run (none was disturbed).
        let kept: Vec<Row> = runs.iter().map(|r| r[0].clone()).collect();
        let text = summary(&kept, &ratios(&runs));
        let text = text.split_whitespace().collect::<Vec<_>>().join(" "); // unwrapped
        assert!(
            text.contains("by itself (baseline-threads, no server code) cost 1.50x"),
            "{text}"
        );
        assert!(text.contains("server2 cost 1.65x"), "{text}");
        assert!(text.contains("median of 3 paired rounds"), "{text}");
    }

    /// The summary names the rejecting single-client server and the generator's load.
    #[test]
    fn summary_mentions_rejections_and_the_generator() {
        let mut one = row("server1", 10, 2.0);
        one.served = 1;
        one.rejected = 9;
        let text = summary(&[row("baseline", 10, 2.0), one], &[]);
        assert!(text.contains("server1 served 1 of 10"), "{text}");
        assert!(text.contains("servers, not the generator"), "{text}");
    }
}
