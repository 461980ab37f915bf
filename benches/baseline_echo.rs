//! The baseline echo loop and the load generator in one process, each on its own named
//! thread, so the kernel's per-thread accounting (`/proc/self/task/*/stat`) shows what
//! each side spends per message: the generator's own ceiling, measured.
//!
//! ```text
//! cargo bench --bench baseline_echo            # ~10 s: ping-pong 1/50/500, pipelined x32, 16 KiB
//! cargo test --bench baseline_echo             # a 0.1 s smoke run of the same code
//! ```
//!
//! The baseline itself (`loadgen::baseline`) is the smallest correct single-threaded mio
//! echo loop; `compare` runs it as a separate process (the `baseline` row) so ratios come
//! from one run. This bench answers the other question — does the generator run out of
//! CPU before the server does? If the generator's CPU per message is at most the
//! baseline's, then against any server at least as costly as the baseline (every real
//! one), the server's core fills first. Linux only (it reads /proc).

use std::time::Duration;

use loadgen::baseline::Baseline;
use loadgen::{run, Exchange, Mark, Plan, Workload};

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs this as a quick smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    let window = if full {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(100)
    };
    if !cfg!(target_os = "linux") {
        println!("baseline_echo: per-thread CPU comes from /proc; Linux only");
        return;
    }
    let server = match Baseline::bind("127.0.0.1:0".parse().expect("literal address")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("baseline_echo: {e}");
            std::process::exit(1);
        }
    };
    let addr = server.local_addr().expect("bound listener has an address");
    let stopper = server.stopper();
    let handle = std::thread::Builder::new()
        .name("baseline".into())
        .spawn(move || server.run())
        .expect("spawn the baseline thread");

    println!(
        "{:<22} {:>10} {:>9} {:>9} {:>13} {:>13} {:>9}",
        "workload", "msg/s", "p50", "p99", "server µs/msg", "gen µs/msg", "gen/srv"
    );
    let cases: [(&str, Workload, usize, usize); 5] = [
        ("pingpong 1", Workload::PingPong, 1, 64),
        ("pingpong 50", Workload::PingPong, 50, 64),
        ("pingpong 500", Workload::PingPong, 500, 64),
        (
            "pipelined x32, 50",
            Workload::Pipelined { depth: 32 },
            50,
            64,
        ),
        ("pingpong 50, 16 KiB", Workload::PingPong, 50, 16 * 1024),
    ];
    for (name, workload, clients, size) in cases {
        let mut plan = Plan::new(addr, workload, clients);
        plan.exchange = Exchange::echo(size);
        plan.duration = window;
        plan.warmup = window / 4;
        let mut before = (Duration::ZERO, Duration::ZERO);
        let mut after = before;
        let report = run(&plan, &mut |mark| match mark {
            Mark::MeasureStart => before = thread_cpu(),
            Mark::MeasureEnd => after = thread_cpu(),
            _ => {}
        });
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                eprintln!("baseline_echo: {name}: {e}");
                std::process::exit(1);
            }
        };
        let msgs = report.messages.max(1) as f64;
        let server = (after.0.saturating_sub(before.0)).as_secs_f64() * 1e6 / msgs;
        let gen = (after.1.saturating_sub(before.1)).as_secs_f64() * 1e6 / msgs;
        println!(
            "{:<22} {:>10.0} {:>9.1?} {:>9.1?} {:>13.2} {:>13.2} {:>8.2}x",
            name,
            report.rate(),
            report.latency.p50,
            report.latency.p99,
            server,
            gen,
            if server > 0.0 { gen / server } else { 0.0 },
        );
        assert_eq!(report.errors, 0, "{name}: {:?}", report.first_error);
    }
    stopper.stop();
    let _ = handle.join();
}

/// CPU time (user + system) of the thread named `baseline` and of the `loadgen-*`
/// threads, from `/proc/self/task/TID/stat` (10 ms ticks).
fn thread_cpu() -> (Duration, Duration) {
    let (mut server, mut gen) = (Duration::ZERO, Duration::ZERO);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (server, gen);
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15; index 0 here is field 3.
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        let cpu = Duration::from_millis(ticks * 10);
        if name == "baseline" {
            server += cpu;
        } else if name.starts_with("loadgen") {
            gen += cpu;
        }
    }
    (server, gen)
}
