//! The `compare` binary end to end: options, exit codes, the table and the files it
//! writes. Runs are kept tiny (0.2 s windows); every run is killed and fails the test if
//! it outlives its time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const COMPARE: &str = env!("CARGO_BIN_EXE_compare");

/// Arguments that make every row short.
const TINY: [&str; 8] = [
    "-d",
    "0.2",
    "--warmup",
    "0.05",
    "--hold",
    "0.05",
    "--reply-timeout",
    "2",
];

/// Runs compare with `args`, killing it after `limit`, in a scratch directory of its
/// own that is removed afterwards.
fn compare(args: &[&str], limit: Duration) -> Output {
    let dir = scratch_dir("run");
    let out = compare_in(&dir, args, limit);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Runs compare with `args` in `dir`, killing it after `limit`. Whatever the test
/// asks, nothing lands in the user's report: without `--html` or `--no-html` the page
/// goes to `dir/report.html`, never to compare's default (`target/compare/report.html`,
/// which `cargo run --release --bin compare` wrote for the user).
fn compare_in(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let page = dir.join("report.html");
    let mut command = Command::new(COMPARE);
    command.args(args);
    if !args.iter().any(|a| matches!(*a, "--html" | "--no-html")) {
        command.arg("--html").arg(&page);
    }
    let mut child = command
        // Any output named by a relative path lands here too.
        .current_dir(dir)
        // `cargo test` has just built every server; no need for compare to
        // run cargo again (it does when started by `cargo run`).
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("compare starts");
    let deadline = Instant::now() + limit;
    // Polling the exit status is the timeout, not synchronisation: the output is read
    // only after the process has ended.
    while child.try_wait().expect("wait works").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "compare {args:?} still running after {limit:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch file path unique to this test process.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("switchboard-compare-{}-{name}", std::process::id()))
}

/// A fresh, empty scratch directory unique to this call.
fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = scratch(&format!("{name}-{n}.d"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The lines of the table for one strategy.
fn rows_of<'a>(text: &'a str, strategy: &str) -> Vec<&'a str> {
    const WORKLOADS: [&str; 5] = ["pingpong", "pipe-x", "churn", "heavy", "idle"];
    text.lines()
        .filter(|l| {
            let mut cols = l.split_whitespace();
            cols.next() == Some(strategy)
                && cols
                    .next()
                    .is_some_and(|w| WORKLOADS.iter().any(|k| w.starts_with(k)))
        })
        .filter(|l| !l.contains("cpu/msg")) // the ratio lines
        // Table rows go on with the clients and served counts; the prose
        // under the table may wrap so that a line starts `NAME pingpong 5 the`.
        .filter(|l| {
            let mut counts = l.split_whitespace().skip(2);
            let number = |c: Option<&str>| c.is_some_and(|c| c.parse::<u64>().is_ok());
            number(counts.next()) && number(counts.next())
        })
        .collect()
}

/// The columns of `strategy`'s only row, asserting it had `clients` clients, served
/// them all and turned none away.
fn one_row_serving_all<'a>(text: &'a str, strategy: &str, clients: &str) -> Vec<&'a str> {
    let rows = rows_of(text, strategy);
    assert_eq!(rows.len(), 1, "{text}");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        &cols[2..5],
        [clients, clients, "0"],
        "clients, served, rejected: {text}"
    );
    cols
}

/// `--help` documents the workloads and output files and exits 0.
#[test]
fn help_exits_zero() {
    let out = compare(&["--help"], Duration::from_secs(10));
    assert!(out.status.success());
    let text = stdout(&out);
    for word in [
        "--external",
        "--rate",
        "--host",
        "speak switchboard's line protocol",
        "--json",
        "--csv",
        "--svg",
        "--clients",
        "pipelined",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}

/// Usage errors exit 2 with clap's message, before anything runs.
#[test]
fn usage_errors_exit_two() {
    for args in [
        &["-c", "0"][..],
        &["-s", "server9"],
        &["--mode", "chat"],
        &["--external", "python3 server.py 5000"],
        &["--duration", "soon"],
        // A window of nothing is a usage error, like zero clients.
        &["-d", "0"],
        // A gate needs something to be measured against.
        &["--fail-over", "10"],
        &["--rate", "0"],
    ] {
        let out = compare(args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error"), "{args:?}");
    }
}

/// A missing server binary is one clear line on stderr and exit 1, not a panic.
#[test]
fn missing_binaries_exit_one() {
    let out = compare(
        &["-s", "server2", "--bin-dir", "/nonexistent-dir"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("server2 not found") && err.contains("cargo build"),
        "{err}"
    );
}

/// Every workload runs against the baseline and the JSON, CSV and SVG files are written
/// with one entry per row.
#[test]
fn baseline_every_workload_and_files() {
    let (json, csv, svg) = (scratch("a.json"), scratch("a.csv"), scratch("a.svg"));
    let mut args = vec!["-s", "baseline", "-c", "1,4", "--pipelined-clients", "2"];
    args.extend(["--churn-clients", "2", "--idle", "50", "-q"]);
    // Every workload with a row per load; sweeps have a test of their own.
    args.extend(["-w", "pingpong,pipelined,churn,idle"]);
    args.extend(TINY);
    let (j, c, s) = (
        json.to_string_lossy().into_owned(),
        csv.to_string_lossy().into_owned(),
        svg.to_string_lossy().into_owned(),
    );
    args.extend(["--json", &j, "--csv", &c, "--svg", &s]);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(rows_of(&text, "baseline").len(), 5, "{text}");
    assert!(!text.contains("First error"), "{text}");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for row in rows {
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["messages"].as_u64().unwrap() > 0, "{row}");
    }
    let idle = rows.iter().find(|r| r["workload"] == "idle").unwrap();
    assert_eq!(idle["served"], 50);

    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv_text.lines().count(), 6);
    assert!(csv_text.starts_with("strategy,workload,"));
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.contains("baseline"));
    for f in [json, csv, svg] {
        let _ = std::fs::remove_file(f);
    }
}

/// A user's own server started with `--external 'NAME=CMD {port}'` becomes a row of its
/// own, measured from outside (here: compare's baseline, started as an ordinary command).
#[test]
fn external_server_is_a_row() {
    let cmd = format!("mine={COMPARE} --serve-baseline 127.0.0.1:{{port}}");
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "3", "-q"];
    args.extend(["--external", &cmd]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    one_row_serving_all(&text, "mine", "3");
}

/// With `--repeat`, ratios are the median of rounds (with their range), in the table and
/// the JSON, and the thread-per-client baseline is a row of its own.
#[test]
fn repeated_rounds_and_the_threads_baseline() {
    let json = scratch("r.json");
    let j = json.to_string_lossy().into_owned();
    let mut args = vec!["-s", "baseline,baseline-threads,server2", "-w", "pingpong"];
    args.extend(["-c", "3", "--repeat", "2", "-q", "--json", &j]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    one_row_serving_all(&text, "baseline-threads", "3");
    assert!(
        text.contains("median (lowest-highest) of 2 rounds"),
        "{text}"
    );

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let ratios = doc["ratios"].as_array().unwrap();
    let names: Vec<&str> = ratios
        .iter()
        .filter_map(|r| r["strategy"].as_str())
        .collect();
    assert_eq!(names, ["baseline-threads", "server2"], "{doc}");
    for r in ratios {
        assert_eq!(r["rounds"], 2, "{r}");
        let rate = &r["msgs_per_s"];
        assert_eq!(rate["rounds"], 2, "{r}");
        let median = rate["median"].as_f64().expect("a throughput ratio");
        assert!(median > 0.0 && median.is_finite(), "{r}");
    }
}

/// A server that is not there shows up as errors in its row; compare still finishes.
#[test]
fn dead_attached_server_is_errors_not_a_hang() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "2", "-q"];
    args.extend(["--attach", &addr]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("First error"), "{text}");
    assert!(rows_of(&text, "attach1")[0].contains(" 2 "), "{text}");
}

/// The default run has every model of the library's list, side by side with
/// the baseline: single-client serves one client and rejects the rest, the
/// thread pool serves as many as it has workers (the rest wait), the others
/// serve everyone, and nobody errs.
#[test]
fn every_model_side_by_side() {
    let mut args = vec![
        "-w",
        "pingpong,pipelined,churn,idle",
        "-c",
        "1,5",
        "--pipelined-clients",
        "3",
        "--churn-clients",
        "2",
        "--workers",
        "3",
    ];
    args.extend(["--idle", "40", "-q"]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let runnable = switchboard::strategy::MODELS.iter();
    let runnable = runnable.filter(|m| m.strategy.check().is_ok());
    let models = runnable.map(|m| m.name);
    for strategy in ["baseline"].into_iter().chain(models.clone()) {
        assert_eq!(rows_of(&text, strategy).len(), 5, "{strategy}: {text}");
    }
    let five: Vec<&str> = rows_of(&text, "single-client")
        .into_iter()
        .filter(|l| l.contains("pingpong"))
        .collect();
    let cols: Vec<&str> = five[1].split_whitespace().collect();
    assert_eq!(
        &cols[2..5],
        ["5", "1", "4"],
        "single-client serves one of five: {text}"
    );
    for strategy in models.filter(|m| *m != "single-client") {
        for line in rows_of(&text, strategy) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let clients: usize = cols[2].parse().unwrap();
            let served: usize = cols[3].parse().unwrap();
            let expected = match strategy {
                "thread-pool" if !line.contains("churn") => clients.min(3),
                _ => clients,
            };
            assert_eq!(served, expected, "{strategy} serves whom it can: {line}");
            // A pool's waiting clients may time out: that is its lesson.
            if strategy != "thread-pool" {
                assert_eq!(cols[15], "0", "{strategy} errs: {line}");
            }
        }
    }
}

/// `-w heavy` runs calc with a slow client among cheap ones and times the
/// cheap ones: on one event loop they wait behind the slow line, and the
/// summary says so for each model.
#[test]
fn heavy_workload_times_the_cheap_clients() {
    let mut args = vec!["-w", "heavy", "-c", "4", "--heavy-clients", "1"];
    args.extend([
        "-s",
        "baseline,event-loop,event-loop-workers",
        "--workers",
        "2",
    ]);
    // The slow line takes a debug build a good part of TINY's window on a
    // loaded machine, and the one event loop serves nobody meanwhile: a
    // longer window, so every client is answered within it.
    args.extend(["-d", "1.5"]);
    args.extend(&TINY[2..]);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for strategy in ["baseline", "event-loop", "event-loop-workers"] {
        let rows = rows_of(&text, strategy);
        assert_eq!(rows.len(), 1, "{strategy}: {text}");
        let cols: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(&cols[1..4], ["heavy", "4", "4"], "{text}");
    }
    // The summary gives no verdict on a run other processes disturbed.
    let disturbed = text.contains("on a disturbed run this report gives no verdict");
    assert!(
        text.contains("the cheap clients waited: ") || disturbed,
        "{text}"
    );
    assert!(!text.contains("First error"), "{text}");
}

/// A line-echo server on 127.0.0.1 that answers every connection from a thread of
/// its own, and once, `stall_after` after the first line it ever gets, stops
/// answering everyone for `stall`: the hiccup coordinated omission hides.
fn stalling_server(stall_after: Duration, stall: Duration) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Every reply goes out under this lock, so holding it stalls every client.
    let gate = Arc::new(Mutex::new(()));
    let first_line: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let stalled = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (gate, first_line, stalled) = (gate.clone(), first_line.clone(), stalled.clone());
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let since = first_line.get_or_init(Instant::now).elapsed();
                    let held = gate.lock().unwrap();
                    if since >= stall_after && !stalled.swap(true, Ordering::SeqCst) {
                        std::thread::sleep(stall); // the stall itself, not synchronisation
                    }
                    if writer.write_all(&line).is_err() {
                        break;
                    }
                    drop(held);
                    line.clear();
                }
            });
        }
    });
    addr
}

/// Open loop against a server that stalls for 500 ms once: timed from when each
/// request was due, p99 shows the stall; timed from the actual send (what a
/// closed-loop tool reports), it does not. The JSON carries the contract's names.
#[test]
fn open_loop_sees_the_stall_that_closed_loop_timing_hides() {
    let addr = stalling_server(Duration::from_millis(900), Duration::from_millis(500));
    let json = scratch("stall.json");
    let (j, attach) = (json.to_string_lossy().into_owned(), format!("stall={addr}"));
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "10", "-q"];
    args.extend(["--rate", "2000", "-d", "2", "--warmup", "0.2"]);
    args.extend(["--attach", &attach, "--json", &j]);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("offered") && text.contains("p99 unc"),
        "{text}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let rows = doc["rows"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|r| r["strategy"] == "stall")
        .expect("a row named stall");
    let us = |key: &str| {
        row[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {row}"))
    };
    assert_eq!(us("offered_per_s"), 2000.0, "{row}");
    assert!(us("achieved_per_s") > 0.0, "{row}");
    assert!(
        us("p99_us") > 250_000.0,
        "corrected p99 shows the stall: {row}"
    );
    assert!(
        us("p99_uncorrected_us") < 100_000.0,
        "uncorrected p99 hides it: {row}"
    );
    assert!(us("p50_uncorrected_us") <= us("p50_us"), "{row}");
    assert!(us("p999_us") >= us("p999_uncorrected_us"), "{row}");
    // A closed-loop row has no open-loop figures.
    let base = rows.iter().find(|r| r["strategy"] == "baseline").unwrap();
    assert!(
        base["offered_per_s"].is_number(),
        "--rate applies to every ping-pong row"
    );
}

/// A server that serves its first client to the end before accepting the next, as a
/// typical course server does: the clients left in its listen backlog are counted
/// as never answered and explained under the table, not passed over in silence.
#[test]
fn clients_left_in_the_backlog_are_counted() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                if writer.write_all(&line).is_err() {
                    break;
                }
                line.clear();
            }
        }
    });
    let json = scratch("backlog.json");
    let (j, attach) = (json.to_string_lossy().into_owned(), format!("one={addr}"));
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "6", "-q"];
    args.extend(["--attach", &attach, "--json", &j]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("one pingpong 6: 5 of 6 clients connected but were never answered"),
        "{text}"
    );
    assert!(text.contains("listen(5)"), "{text}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let row = &doc["rows"].as_array().unwrap()[1];
    assert_eq!(
        (row["served"].clone(), row["unanswered"].clone()),
        (1.into(), 5.into()),
        "{row}"
    );
}

/// An `--external` server that never starts fails its own row, and says why; the
/// other rows are still measured, and compare exits 1 after the full report.
#[test]
fn a_failing_external_server_fails_only_its_row() {
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "2", "-q"];
    args.extend(["--external", "broken=exit 3 {port}"]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(rows_of(&text, "baseline").len(), 1, "{text}");
    assert!(text.contains("broken pingpong 2: failed: "), "{text}");
    assert!(text.contains("exited"), "{text}");
    let err = stderr(&out);
    assert!(err.contains("broken did not run"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `--host ::1`: every server, an external one included, is started and driven on
/// IPv6 loopback. Skipped where this machine has no `::1`.
#[test]
fn external_server_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let cmd = format!("v6={COMPARE} --serve-baseline [::1]:{{port}}");
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "2", "-q"];
    args.extend(["--host", "::1", "--external", &cmd]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = rows_of(&text, "v6");
    assert_eq!(row.len(), 1, "{text}");
    let cols: Vec<&str> = row[0].split_whitespace().collect();
    assert_eq!(&cols[2..5], ["2", "2", "0"], "{text}");
}

/// `--svg` with no ping-pong row to chart says so in one line and writes nothing;
/// it does not panic.
#[test]
fn svg_without_pingpong_rows_does_not_panic() {
    let svg = scratch("churn.svg");
    let s = svg.to_string_lossy().into_owned();
    let mut args = vec![
        "-s",
        "baseline",
        "-w",
        "churn",
        "--churn-clients",
        "2",
        "-q",
    ];
    args.extend(["--svg", &s]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no ping-pong rows to chart"), "{err}");
    assert!(!err.contains("panicked") && !svg.exists(), "{err}");
}

/// The build profile is in the table's header, and a debug build (as `cargo test`
/// builds it) is warned about loudly.
#[test]
fn the_build_profile_is_recorded() {
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "1", "-q"];
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let header = text.lines().next().unwrap_or_default();
    if cfg!(debug_assertions) {
        assert!(header.contains("DEBUG build"), "{header}");
        assert!(text.contains("WARNING: a debug build"), "{text}");
        assert!(stderr(&out).contains("WARNING"), "{}", stderr(&out));
    } else {
        assert!(header.contains("release build"), "{header}");
    }
}

/// `-w sweep` measures the closed-loop maximum, then steps the offered rate from
/// 10% to 120% of it, each step an open-loop row with the contract's fields, and
/// names a knee only where p99 stayed under the SLO with the rate achieved.
#[test]
fn sweep_steps_the_offered_rate_and_finds_the_knee() {
    let json = scratch("sweep.json");
    let j = json.to_string_lossy().into_owned();
    let mut args = vec!["-s", "baseline", "-w", "sweep", "--sweep-clients", "4"];
    args.extend([
        "--sweep-steps",
        "3",
        "--sweep-duration",
        "0.3",
        "--slo",
        "50ms",
    ]);
    args.extend(["-q", "--json", &j]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("baseline: closed-loop max"), "{text}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let sweep = &doc["sweeps"][0];
    let max = sweep["closed_loop_max_per_s"].as_f64().unwrap();
    assert!(max > 0.0, "{sweep}");
    let steps = sweep["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{sweep}");
    for (step, share) in steps.iter().zip([0.1, 0.65, 1.2]) {
        let offered = step["offered_per_s"].as_f64().unwrap();
        assert!((offered / max - share).abs() < 1e-6, "{step}");
        for key in ["achieved_per_s", "p99_us", "p99_uncorrected_us"] {
            assert!(step[key].is_number(), "{key}: {step}");
        }
    }
    // The knee, if any, is a step that met the SLO with its rate achieved.
    if let Some(offered) = sweep["knee"]["offered_per_s"].as_f64() {
        let step = steps
            .iter()
            .find(|s| s["offered_per_s"] == offered)
            .unwrap();
        assert!(step["p99_us"].as_f64().unwrap() <= 50_000.0, "{sweep}");
        let achieved = step["achieved_per_s"].as_f64().unwrap();
        assert!(achieved >= 0.95 * offered, "{sweep}");
    }
}

/// A model that serves fewer clients at once than the sweep has is not swept: the
/// offered load would fall on the one it serves while the others wait unanswered.
/// The reason is said, and no step is run.
#[test]
fn a_model_that_cannot_serve_every_client_is_not_swept() {
    let json = scratch("unswept.json");
    let j = json.to_string_lossy().into_owned();
    let mut args = vec!["-s", "single-client", "-w", "sweep", "--sweep-clients", "3"];
    args.extend(["--sweep-steps", "2", "--sweep-duration", "0.2", "-q"]);
    args.extend(["--no-html", "--json", &j]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("single-client: no sweep: it served 1 of its 3 clients at once"),
        "{}",
        stdout(&out)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let sweep = &doc["sweeps"][0];
    assert_eq!(sweep["steps"].as_array().map(Vec::len), Some(0), "{sweep}");
    assert!(sweep["knee"].is_null(), "{sweep}");
}

/// `--html FILE` writes one self-contained page: the charts as inline SVG, the table,
/// summary and manifest below them, and nothing fetched from the network.
#[test]
fn html_page_is_self_contained() {
    let html = scratch("page.html");
    let h = html.to_string_lossy().into_owned();
    let mut args = vec!["-s", "baseline,event-loop", "-w", "pingpong,idle,sweep"];
    args.extend(["-c", "1,4", "--idle", "20,40", "--sweep-clients", "4"]);
    args.extend([
        "--sweep-steps",
        "2",
        "--sweep-duration",
        "0.2",
        "-q",
        "--html",
        &h,
    ]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(90));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("Report: {h}")),
        "{}",
        stdout(&out)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    let _ = std::fs::remove_file(&html);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    // Latency curves, throughput and memory; windows too short for CPU figures, and
    // no heavy rows: each missing chart says why.
    assert_eq!(page.matches("<svg").count(), 3, "{page}");
    assert!(page.contains("no heavy rows in this run"));
    assert!(page.contains("no CPU figures in this run"));
    for part in ["mem/conn", "Run manifest", "git commit", "least-squares"] {
        assert!(page.contains(part), "{part} missing");
    }
    for fetch in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!page.contains(fetch), "the page fetches something: {fetch}");
    }
    let outside = page.matches("http").count();
    let namespaces = page.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(outside, namespaces, "only SVG namespaces name a URL");
}

/// The JSON carries the run's manifest: date, kernel, cores, pinning, version,
/// build and the command line.
#[test]
fn json_has_the_manifest() {
    let json = scratch("m.json");
    let j = json.to_string_lossy().into_owned();
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "1", "-q"];
    args.extend(["--no-html", "--json", &j]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let m = &doc["manifest"];
    for key in ["date", "cores", "pinning", "version", "build", "command"] {
        assert!(!m[key].is_null(), "{key}: {m}");
    }
    assert!(m["command"].as_str().unwrap().contains("--no-html"), "{m}");
    assert!(
        !stdout(&out).contains("Report: "),
        "--no-html writes no page"
    );
}

/// `--against OLD.json` sets each ratio beside the stored one, and `--fail-over PCT`
/// exits 3 when a p99 or CPU-per-message ratio got worse by more than PCT.
#[test]
fn regression_gate_against_a_stored_run() {
    let old = scratch("old.json");
    let o = old.to_string_lossy().into_owned();
    // A stored run in which event-loop's p99 was a billionth of the baseline's:
    // no run can match that (a thousandth could, when one stall on a loaded
    // machine sets the baseline's p99 in a window this short).
    let stored = serde_json::json!({"ratios": [{
        "strategy": "event-loop", "workload": "pingpong", "depth": 1, "clients": 2,
        "p99": {"median": 1e-9}, "msgs_per_s": {"median": 1.0}
    }]});
    std::fs::write(&old, stored.to_string()).unwrap();
    let mut args = vec![
        "-s",
        "baseline,event-loop",
        "-w",
        "pingpong",
        "-c",
        "2",
        "-q",
    ];
    args.extend(["--no-html", "--against", &o]);
    args.extend(TINY);
    let loose = compare(&args, Duration::from_secs(60));
    assert!(loose.status.success(), "{}", stderr(&loose));
    let text = stdout(&loose);
    assert!(text.contains(&format!("Against {o}")), "{text}");
    assert!(text.contains("event-loop pingpong 2  p99"), "{text}");
    assert!(text.contains("was   0.00x"), "{text}");

    args.extend(["--fail-over", "50"]);
    let gated = compare(&args, Duration::from_secs(60));
    let _ = std::fs::remove_file(&old);
    assert_eq!(
        gated.status.code(),
        Some(3),
        "{}\n{}",
        stderr(&gated),
        stdout(&gated)
    );
    let err = stderr(&gated);
    assert!(
        err.contains("worse than the stored run by more than 50%"),
        "{err}"
    );
    assert!(err.contains("event-loop pingpong 2 p99"), "{err}");
}

/// Progress on a stderr that is not a terminal is one plain line per row, with the
/// row and the time left, and no terminal escapes.
#[test]
fn progress_is_plain_lines_when_not_a_terminal() {
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "1,2", "--no-html"];
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("[1/2] baseline") && lines[0].ends_with("s left"),
        "{err}"
    );
    assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
}

/// `baseline-async` is tokio's own echo example as a row: every client served, on
/// the runtime threads `--workers` asks for (3 here, beside the main thread).
#[test]
fn the_async_baseline_is_a_row_beside_the_async_model() {
    let mut args = vec!["-s", "baseline,baseline-async,async", "-w", "pingpong"];
    args.extend(["-c", "3", "--workers", "3", "-q"]);
    args.extend(TINY);
    let out = compare(&args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let cols = one_row_serving_all(&text, "baseline-async", "3");
    if cfg!(target_os = "linux") {
        assert_eq!(cols[12], "4", "threads: {text}");
    }
}

/// `cargo test` leaves the user's report alone: a run that names no page writes it in
/// the test's own directory, and compare's default page (`target/compare/report.html`,
/// the README's first command's output) is exactly as it was, or still absent.
#[test]
fn a_test_run_leaves_the_users_report_alone() {
    let users_report = Path::new(COMPARE)
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("compare").join("report.html"));
    let before = users_report.as_deref().map(std::fs::read);
    let dir = scratch_dir("own-page");
    let mut args = vec!["-s", "baseline", "-w", "pingpong", "-c", "1", "-q"];
    args.extend(TINY);
    let out = compare_in(&dir, &args, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let page = dir.join("report.html");
    assert!(
        stdout(&out).contains(&format!("Report: {}", page.display())),
        "{}",
        stdout(&out)
    );
    let written = std::fs::read_to_string(&page).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(written.starts_with("<!DOCTYPE html>"), "{written}");
    let after = users_report.as_deref().map(std::fs::read);
    assert_eq!(
        before.map(|r| r.ok()),
        after.map(|r| r.ok()),
        "{users_report:?} changed"
    );
}
