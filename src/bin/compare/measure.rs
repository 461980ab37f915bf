//! Measuring one job: a fresh server, one load run against it, and the server's CPU,
//! threads and memory sampled exactly around the measured window, turned into a row.

use std::time::Duration;

use loadgen::procstat::{self, ProcSample};
use loadgen::{Exchange, Mark, Plan, Workload};
use switchboard::mode;

use crate::cli::Cli;
use crate::jobs::Job;
use crate::row::{LoadMode, Row};
use crate::servers::{self, Kind};

/// Fewest surviving idle connections for which memory per connection is shown.
const MIN_HELD: usize = 10;
/// The longest an idle row waits for the answers to its pings. A model that
/// queues connections (thread-pool) never answers the ones queued, so the
/// full reply timeout only made each of its idle rows 5 s long; 10,000 held
/// connections of thread-per-client are all answered within 0.3 s here.
const IDLE_PING_WAIT: Duration = Duration::from_secs(2);
/// Shortest window whose CPU figures are shown.
const MIN_CPU_WINDOW: Duration = Duration::from_millis(500);

/// The slow line of the heavy workload: 2,000 big-number remainders, 44 KB,
/// milliseconds of work for any calculator. (`9**99999` would be the obvious
/// choice, but calc refuses results over 4096 bits before computing them.)
pub fn slow_calc_line() -> String {
    vec!["(3**2500)%(2**4000-1)"; 2000].join("+")
}

/// Runs one row: a fresh server, one load run, the server's accounting around it.
pub fn measure(cli: &Cli, job: &Job) -> Result<Row, String> {
    let target = job.target;
    let baseline = matches!(target.kind, Kind::Baseline { .. });
    let framed = !matches!(target.kind, Kind::Baseline { .. } | Kind::Attached { .. });
    // Room for every client, plus the probe connections of an external start where the
    // kernel's socket tables cannot be read.
    let max_clients = (job.clients + 64).max(1024);
    // Heavy rows are calc's: only a calculator has lines that are slow to answer.
    let heavy = matches!(job.workload, Workload::Heavy { .. });
    let mode = match heavy {
        true => LoadMode(&mode::calc::ENTRY),
        false => cli.mode,
    };
    let mut server = servers::start(&target.kind, &cli.host, mode, max_clients, cli.workers)?;

    let mut plan = Plan::new(server.addr, job.workload, job.clients);
    // The baseline has no modes: it always echoes.
    plan.exchange = match loadgen::load_line(mode.as_str(), cli.size) {
        Some(line) if framed => Exchange {
            request: format!("{line}\n").into_bytes(),
            reply: mode.0.answer(&line),
        },
        _ => Exchange::echo(cli.size),
    };
    if heavy {
        let line = slow_calc_line();
        plan.heavy = Exchange {
            request: format!("{line}\n").into_bytes(),
            reply: match framed {
                true => mode.0.answer(&line),
                false => format!("{line}\n").into_bytes(),
            },
        };
    }
    plan.warmup = cli.warmup;
    plan.duration = job.window;
    plan.threads = cli.gen_threads;
    plan.reply_timeout = match job.workload {
        Workload::Idle { .. } => cli.reply_timeout.min(IDLE_PING_WAIT),
        _ => cli.reply_timeout,
    };
    if job.workload == Workload::PingPong {
        plan.rate = job.rate;
    }
    // The baseline does not frame lines, so it cannot close after `bye`.
    plan.server_closes = !baseline;

    let before = server.sample();
    let kernel_before = procstat::sample_kernel().ok();
    let mut kernel_held = None;
    let (mut start, mut end): (Option<ProcSample>, Option<ProcSample>) = (None, None);
    let (mut sys_start, mut sys_end) = (None, None);
    let report = loadgen::run(&plan, &mut |mark| match mark {
        Mark::MeasureStart | Mark::Held => {
            sys_start = procstat::sample_system().ok();
            start = server.sample();
            if mark == Mark::Held {
                kernel_held = procstat::sample_kernel().ok();
            }
        }
        Mark::MeasureEnd | Mark::Pinged => {
            end = server.sample();
            sys_end = procstat::sample_system().ok();
        }
        Mark::Connected => {}
    })
    .map_err(|e| format!("{}: {e}", target.name))?;

    let mut first_error = report.first_error.clone();
    if server.exited() {
        let why = server.failure_reason();
        first_error.get_or_insert(format!("the server exited during the run: {why}"));
    }

    // /proc counts CPU in 10 ms ticks: over a window shorter than half a second (an idle
    // ping round) the figures would be mostly rounding, so they are left out.
    let long_enough = report.window >= MIN_CPU_WINDOW;
    let per_msg = |d: Duration| {
        (report.messages > 0 && long_enough).then(|| d.as_secs_f64() * 1e6 / report.messages as f64)
    };
    let load = |d: Duration| long_enough.then(|| d.as_secs_f64() / report.window.as_secs_f64());
    let cpu = match (&start, &end) {
        (Some(s), Some(e)) => Some(e.cpu_since(s)),
        _ => None,
    };
    let threads = start.iter().chain(end.iter()).map(|s| s.threads).max();
    let mem_per_conn = match (job.workload, &before, &start, &end) {
        // With a handful of survivors (server1 keeps one) page-sized RSS steps would be
        // reported as per-connection cost.
        (Workload::Idle { .. }, Some(b), Some(s), Some(e)) if report.served >= MIN_HELD => {
            let held = s.rss.max(e.rss).saturating_sub(b.rss);
            Some(held as f64 / report.served as f64)
        }
        _ => None,
    };
    let idle_held = matches!(job.workload, Workload::Idle { .. }) && report.served >= MIN_HELD;
    let held_rss = match (&start, &end) {
        (Some(s), Some(e)) if idle_held => Some(s.rss.max(e.rss)),
        _ => None,
    };
    let kernel = |part: fn(&procstat::KernelMemory) -> u64| match (&kernel_before, &kernel_held) {
        (Some(b), Some(h)) if idle_held => {
            let grown = part(h).saturating_sub(part(b));
            Some(grown as f64 / report.served as f64)
        }
        _ => None,
    };
    // Whatever else kept the CPUs busy in the window: other processes (a build, a
    // neighbour on a shared machine) or CPU stolen by the hypervisor.
    let other = match (sys_start, sys_end, cpu, report.generator_cpu) {
        (Some(a), Some(b), Some(srv), Some(gen)) => {
            let system = b.since(&a);
            let others = system.busy.saturating_sub(srv.total() + gen.total()) + system.steal;
            load(others)
        }
        _ => None,
    };
    let lat = |d: Duration| d.as_secs_f64() * 1e6;
    let row = Row {
        strategy: target.name.clone(),
        workload: job.workload.into(),
        depth: job.workload.depth(),
        clients: job.clients,
        connected: report.connected,
        served: report.served,
        rejected: report.rejected,
        errors: report.errors,
        unanswered: report.unanswered,
        first_error,
        messages: report.messages,
        window_s: report.window.as_secs_f64(),
        msgs_per_s: report.rate(),
        p50_us: lat(report.latency.p50),
        p99_us: lat(report.latency.p99),
        p999_us: lat(report.latency.p999),
        max_us: lat(report.latency.max),
        offered_per_s: report.offered_rate,
        achieved_per_s: report.offered_rate.map(|_| report.rate()),
        p50_uncorrected_us: report.uncorrected.map(|s| lat(s.p50)),
        p99_uncorrected_us: report.uncorrected.map(|s| lat(s.p99)),
        p999_uncorrected_us: report.uncorrected.map(|s| lat(s.p999)),
        gen_late_p99_us: report.send_lateness.map(|s| lat(s.p99)),
        gen_pause_max_us: report.generator_pause.map(lat),
        cpu_user_us_per_msg: cpu.and_then(|c| per_msg(c.user)),
        cpu_sys_us_per_msg: cpu.and_then(|c| per_msg(c.system)),
        server_threads: threads,
        server_peak_bytes: end.map(|e| e.peak_rss),
        mem_per_conn_bytes: mem_per_conn,
        held_rss_bytes: held_rss,
        kernel_stack_per_conn_bytes: kernel(|k| k.stacks),
        kernel_sockets_per_conn_bytes: kernel(|k| k.sockets),
        server_load: cpu.and_then(|c| load(c.total())),
        gen_load: report.generator_cpu.and_then(|c| load(c.total())),
        other_load: other,
        repeats: 1,
        gen_cpu_us_per_msg: report.generator_cpu.and_then(|c| per_msg(c.total())),
        flags: Vec::new(),
    };
    drop(server);
    Ok(crate::flags::flagged(row))
}
