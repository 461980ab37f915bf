//! The report on stdout: a line of settings, the table with a legend of its columns,
//! the ratios to the baseline, the rows' first errors and the summary, in that order.

use crate::flags::flag_lines;
use crate::manifest::Manifest;
use crate::memory::{fit_lines, MemoryFit};
use crate::row::{Row, Settings};
use crate::stats::{ratio_lines, Ratios};
use crate::summary::summary;
use crate::sweep::{sweep_lines, Sweep};
use crate::table::table;

/// What goes to stdout: the settings, the table and its legend, the ratios, the first
/// error of each failing row and the summary.
pub fn report(
    settings: &Settings,
    rows: &[Row],
    ratios: &[Ratios],
    memory: &[MemoryFit],
    sweeps: &[Sweep],
    manifest: &Manifest,
) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "switchboard compare: {} build, {} mode, {}-byte lines, {} s windows after {} s warm-up, \
         {} generator thread(s), {} CPUs{}\n{}\n",
        match settings.build {
            "debug" => "DEBUG",
            other => other,
        },
        settings.mode,
        settings.size,
        settings.duration_s,
        settings.warmup_s,
        settings.gen_threads,
        settings.cpus,
        if settings.repeat > 1 {
            format!(
                ", least disturbed of {} runs per row (idle: middle memory)",
                settings.repeat
            )
        } else {
            String::new()
        },
        match settings.build {
            "debug" =>
                "WARNING: a debug build, compare and servers alike: these figures are \
                        many times slower than release and say little about the models.\n",
            _ => "",
        }
    ));
    out.push_str(&table(rows));
    out.push_str(
        "\nclients: asked for (churn: parallel connect loops; idle: connections held). served: got \
         replies (idle: survived the ping). rej: turned away with ERR busy.\nmsg/s: lines answered \
         per second (churn: connect/Hi/bye/close cycles; idle: pings). Latency per request \
         (pipelined: per batch; churn: per cycle).\nusr/sys per msg: the server's CPU time per \
         message; thr, peak mem: its threads and peak RSS; mem/conn: RSS growth per idle \
         connection.\nsrv, gen: CPU use of the server and of the load generator in the window (100% = one \
         core); a single-threaded side at ~100% is the one that limits throughput.\nother: CPU used by \
         anything else during the window (other processes, hypervisor steal); above ~20% the row \
         was disturbed and is worth re-running.\n",
    );
    if rows.iter().any(Row::open_loop) {
        out.push_str(
            "Open loop (--rate): offered is the rate asked for, msg/s the rate achieved; p50, p99 \
             and p99.9 are timed from when each request was due, so they include any wait a \
             stalled server imposed; p99 unc is timed from the actual send, as a closed-loop \
             tool would (coordinated omission).\n",
        );
    }
    let waiting: Vec<String> = rows
        .iter()
        .filter(|r| r.unanswered > 0)
        .map(|r| {
            format!(
                "  {}: {} of {} clients connected but were never answered",
                r.name(),
                r.unanswered,
                r.clients
            )
        })
        .collect();
    if !waiting.is_empty() {
        out.push_str(
            "\nClients left waiting: connected (the kernel completes the handshake for the \
             listen queue) but given no reply and no error in the window, so counted neither \
             served nor err. The usual cause is a server that takes one client at a time \
             while the rest wait in its listen backlog (listen(5) in a typical course \
             server), or a pool with fewer workers than clients.\n",
        );
        out.push_str(&waiting.join("\n"));
        out.push('\n');
    }
    let flagged = flag_lines(rows);
    if !flagged.is_empty() {
        out.push_str(
            "\nFlagged rows (!), not quoted in the summary below: their figures are doubtful for \
             the reason given.\n",
        );
        out.push_str(&flagged);
    }
    if !settings.process_stats {
        out.push_str("Server statistics come from /proc and are only available on Linux.\n");
    }
    if let Some(first) = ratios.first() {
        let against = match first.against.as_str() {
            "baseline" => "the baseline".to_owned(),
            bare => bare.to_owned(),
        };
        out.push_str(&if settings.repeat > 1 {
            format!(
                "\nRelative to {against} under the same load, median (lowest-highest) of \
                 {} rounds, each strategy paired with the {} run of its round:\n",
                settings.repeat, first.against
            )
        } else {
            format!(
                "\nRelative to {against} under the same load (one round each; for figures to \
                 quote, --repeat 5 gives medians with their spread):\n"
            )
        });
        out.push_str(&ratio_lines(ratios));
    }
    out.push_str(&fit_lines(memory));
    out.push_str(&sweep_lines(sweeps));
    let errors: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let e = r.first_error.as_ref()?;
            Some(format!(
                "  {} {} {}: {e}",
                r.strategy, r.workload, r.clients
            ))
        })
        .collect();
    if !errors.is_empty() {
        out.push_str("\nFirst error of rows with errors:\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    let verdict = crate::verdict::verdict(rows, memory, sweeps);
    if !verdict.is_empty() {
        out.push_str("\nIn short, from this run:\n");
        for line in verdict {
            let wrapped = crate::units::wrap(&line, 98);
            for (i, part) in wrapped.lines().enumerate() {
                out.push_str(if i == 0 { "- " } else { "  " });
                out.push_str(part);
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out.push_str(&summary(rows, ratios));
    let more = [
        crate::sweep::knee_sentence(sweeps),
        crate::memory::slope_sentence(memory),
    ];
    out.push_str(&crate::units::wrap(&more.join(" "), 100));
    out.push('\n');
    out.push_str(&manifest.lines());
    out
}
