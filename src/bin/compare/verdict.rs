//! The verdict the page opens with: four sentences computed from the run's own rows,
//! answering what a reader came for. Which model answered the most per CPU, which held
//! idle connections most cheaply, which kept cheap clients fast beside slow ones, and
//! which broke first, and where. The yardsticks (`baseline`, `baseline-threads`,
//! `baseline-async`) are not models and win nothing; flagged rows are not quoted; a
//! question the run has no clean figures for is said to have no answer, or left out
//! when the run did not ask it.

use crate::cli::BASELINES;
use crate::memory::MemoryFit;
use crate::row::{Row, WorkloadName};
use crate::sweep::Sweep;
use crate::units::{bytes, cpu, micros, si};

/// The verdict, a sentence per question the run can answer.
pub fn verdict(rows: &[Row], memory: &[MemoryFit], sweeps: &[Sweep]) -> Vec<String> {
    [
        per_cpu(rows),
        idle(rows, memory),
        heavy(rows),
        broke_first(sweeps),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn is_model(name: &str) -> bool {
    !BASELINES.contains(&name)
}

/// Which model spent the least server CPU per message in ping-pong, at the highest
/// client count, of those that served every client.
fn per_cpu(rows: &[Row]) -> Option<String> {
    let ping = |r: &&Row| r.workload == WorkloadName::PingPong && !r.open_loop();
    let asked = |clients: usize| -> Vec<&Row> {
        (rows.iter().filter(ping))
            .filter(|r| r.clients == clients && is_model(&r.strategy))
            .filter(|r| r.cpu_per_msg().is_some())
            .collect()
    };
    fn fair<'a>(at: &[&'a Row]) -> Vec<&'a Row> {
        (at.iter().copied())
            .filter(|r| r.flags.is_empty() && r.messages > 0 && r.served == r.clients)
            .collect()
    }
    // The highest client count at which two models or more can be ranked.
    let mut counts: Vec<usize> = rows.iter().filter(ping).map(|r| r.clients).collect();
    counts.sort_unstable();
    counts.dedup();
    let top = *counts.last()?;
    let top = (counts.iter().rev().copied())
        .find(|&c| fair(&asked(c)).len() >= 2)
        .unwrap_or(top);
    let at = asked(top);
    if at.is_empty() {
        return None;
    }
    let fair = fair(&at);
    let cpu_of = |r: &Row| r.cpu_per_msg().unwrap_or(f64::INFINITY);
    let best = fair.iter().min_by(|a, b| cpu_of(a).total_cmp(&cpu_of(b)));
    let worst = fair.iter().max_by(|a, b| cpu_of(a).total_cmp(&cpu_of(b)));
    let (Some(best), Some(worst)) = (best, worst) else {
        return Some(format!(
            "Most answered per CPU: no answer; every model's ping-pong row at {top} clients was \
             flagged or served only some of its clients."
        ));
    };
    let per = cpu_of(best);
    let mut said = format!(
        "Most answered per CPU: {}, {} of server CPU per message at {top} ping-pong clients \
         ({}/s per core)",
        best.strategy,
        cpu(per),
        si(1e6 / per)
    );
    if worst.strategy != best.strategy {
        let w = cpu_of(worst);
        said += &format!(
            "; {} spent the most, {} ({:.1}x)",
            worst.strategy,
            cpu(w),
            w / per
        );
    }
    let left: Vec<String> = (at.iter())
        .filter(|r| !fair.iter().any(|f| f.strategy == r.strategy))
        .map(|r| r.strategy.clone())
        .collect();
    if !left.is_empty() {
        said += &format!(
            "; not ranked (flagged, or served only some clients): {}",
            left.join(", ")
        );
    }
    Some(said + ".")
}

/// Which model's memory grew least per idle connection held, kernel stacks included,
/// of those that answered every connection held.
fn idle(rows: &[Row], memory: &[MemoryFit]) -> Option<String> {
    let held_all = |name: &str| {
        let idle = rows
            .iter()
            .filter(|r| r.workload == WorkloadName::Idle && r.strategy == name);
        idle.max_by_key(|r| r.clients)
            .is_some_and(|r| r.served == r.clients)
    };
    let cost = |f: &MemoryFit| {
        f.per_conn_bytes.max(0.0) + f.kernel_stack_per_conn_bytes.unwrap_or(0.0).max(0.0)
    };
    let fits: Vec<&MemoryFit> = (memory.iter())
        .filter(|f| is_model(&f.strategy) && held_all(&f.strategy))
        .collect();
    let best = fits.iter().min_by(|a, b| cost(a).total_cmp(&cost(b)))?;
    let worst = fits.iter().max_by(|a, b| cost(a).total_cmp(&cost(b)))?;
    let counts: Vec<String> = best.points.iter().map(|p| format!("{:.0}", p.0)).collect();
    let mut said = format!(
        "Held idle connections most cheaply: {}, {} per connection (the slope of its memory \
         over {} held, kernel stacks included)",
        best.strategy,
        bytes(cost(best)),
        counts.join(" and ")
    );
    if worst.strategy != best.strategy {
        said += &format!("; {} paid the most, {}", worst.strategy, bytes(cost(worst)));
    }
    Some(said + ".")
}

/// Which model kept the cheap clients' p99 lowest beside the slow calc lines, at the
/// highest heavy client count.
fn heavy(rows: &[Row]) -> Option<String> {
    let heavy = |r: &&Row| r.workload == WorkloadName::Heavy && is_model(&r.strategy);
    let clean = |r: &&&Row| r.flags.is_empty() && r.messages > 0;
    let at = |clients: usize| -> Vec<&Row> {
        (rows.iter().filter(heavy))
            .filter(|r| r.clients == clients)
            .collect()
    };
    // The highest client count at which two models or more ran clean.
    let mut counts: Vec<usize> = rows.iter().filter(heavy).map(|r| r.clients).collect();
    counts.sort_unstable();
    counts.dedup();
    let top = *counts.last()?;
    let top = (counts.iter().rev().copied())
        .find(|&c| at(c).iter().filter(clean).count() >= 2)
        .unwrap_or(top);
    let at = at(top);
    let clean: Vec<&&Row> = at.iter().filter(clean).collect();
    let best = clean.iter().min_by(|a, b| a.p99_us.total_cmp(&b.p99_us));
    let worst = clean.iter().max_by(|a, b| a.p99_us.total_cmp(&b.p99_us));
    let (Some(best), Some(worst)) = (best, worst) else {
        return Some(format!(
            "Kept cheap clients fast beside slow ones: no answer; no model's heavy row at {top} \
             clients was clean."
        ));
    };
    let mut said = format!(
        "Kept cheap clients fastest beside slow calc lines: {}, p99 {} at {top} clients",
        best.strategy,
        micros(best.p99_us, best.messages)
    );
    if worst.strategy != best.strategy {
        said += &format!(
            "; {} made them wait longest, p99 {} ({:.0}x)",
            worst.strategy,
            micros(worst.p99_us, worst.messages),
            worst.p99_us / best.p99_us.max(1e-9)
        );
    }
    let flagged: Vec<&str> = (at.iter())
        .filter(|r| r.messages > 0 && !r.flags.is_empty())
        .map(|r| r.strategy.as_str())
        .collect();
    if !flagged.is_empty() {
        said += &format!("; not ranked (flagged): {}", flagged.join(", "));
    }
    let unserved: Vec<&str> = (at.iter())
        .filter(|r| r.messages == 0)
        .map(|r| r.strategy.as_str())
        .collect();
    if !unserved.is_empty() {
        said += &format!("; no cheap client answered at all: {}", unserved.join(", "));
    }
    Some(said + ".")
}

/// Which model broke first under the sweep: the ones that could not take the sweep's
/// clients at once, then, of the swept, the lowest rate at which one broke.
fn broke_first(sweeps: &[Sweep]) -> Option<String> {
    let models: Vec<&Sweep> = sweeps.iter().filter(|s| is_model(&s.strategy)).collect();
    let first = models.first()?;
    let mut parts = Vec::new();
    let unswept: Vec<String> = (models.iter())
        .filter(|s| s.steps.is_empty() && s.closed_loop.served < s.closed_loop.clients)
        .map(|s| {
            format!(
                "{} (served {} of {} clients at once)",
                s.strategy, s.closed_loop.served, s.closed_loop.clients
            )
        })
        .collect();
    if !unswept.is_empty() {
        parts.push(format!(
            "before any load was offered: {}",
            unswept.join(", ")
        ));
    }
    let broke = (models.iter())
        .filter_map(|s| Some((s, s.broke_at?)))
        .min_by(|a, b| a.1.offered_per_s.total_cmp(&b.1.offered_per_s));
    if let Some((s, at)) = broke {
        let knee = match s.knee {
            Some(k) => format!(", after a knee at {}/s", si(k.offered_per_s)),
            None => String::new(),
        };
        parts.push(format!(
            "{} at {}/s offered ({:.0}% of its closed-loop maximum): p99 {} with {:.0}% of the \
             rate achieved{knee}",
            s.strategy,
            si(at.offered_per_s),
            at.of_max * 100.0,
            micros(at.p99_us, 1),
            100.0 * at.achieved_per_s / at.offered_per_s
        ));
    }
    let unbroken = |all_disturbed: bool| -> Vec<&str> {
        (models.iter())
            .filter(|s| !s.steps.is_empty() && s.broke_at.is_none())
            .filter(|s| s.steps.iter().all(|t| t.disturbed) == all_disturbed)
            .map(|s| s.strategy.as_str())
            .collect()
    };
    let (held, unknown) = (unbroken(false), unbroken(true));
    if parts.is_empty() && held.is_empty() && unknown.is_empty() {
        return None;
    }
    let mut said = format!(
        "Broke first under open-loop load at {} clients: ",
        first.clients
    );
    said += &match parts.is_empty() {
        true => "none found".to_owned(),
        false => parts.join("; of the models swept, "),
    };
    if !held.is_empty() {
        said += &format!("; no break within the sweep: {}", held.join(", "));
    }
    if !unknown.is_empty() {
        said += &format!("; no verdict, every step disturbed: {}", unknown.join(", "));
    }
    Some(said + ".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::test_row as row;
    use crate::sweep::knee;
    use crate::sweep::tests::step;

    fn idle_row(name: &str, clients: usize, served: usize) -> Row {
        Row {
            workload: WorkloadName::Idle,
            served,
            ..row(name, clients, 0.0)
        }
    }

    fn fit(name: &str, per_conn: f64, stack: Option<f64>) -> MemoryFit {
        MemoryFit {
            strategy: name.into(),
            points: vec![(1000.0, 0.0), (4000.0, 0.0)],
            per_conn_bytes: per_conn,
            fixed_bytes: 2e6,
            kernel_stack_per_conn_bytes: stack,
            kernel_sockets_per_conn_bytes: None,
        }
    }

    fn sweep(name: &str, steps: Vec<crate::sweep::Step>, served: usize) -> Sweep {
        let found = knee(&steps, 100_000.0, None);
        Sweep {
            strategy: name.into(),
            clients: 10,
            closed_loop_max_per_s: 100_000.0,
            slo_us: None,
            repeats: 3,
            closed_loop: Row {
                served,
                ..row(name, 10, 5.0)
            },
            steps,
            floor_p99_us: found.floor_p99_us,
            knee: found.knee,
            broke_at: found.broke_at,
            failed: None,
        }
    }

    /// On a synthetic run the verdict names the cheapest model per message (not the
    /// baseline, not a flagged row, not single-client serving 1 of 100), the cheapest
    /// holder of idle connections counting kernel stacks (and not a pool that left
    /// most unanswered), the fastest beside slow lines, and what broke first, and where.
    #[test]
    fn verdict_of_a_synthetic_run() {
        let mut flagged = row("io-uring", 100, 1.0);
        flagged.flags = vec!["other processes used 50% of a core".into()];
        let mut one = row("single-client", 100, 0.5);
        one.served = 1;
        let heavy = |name: &str, p99_us: f64, messages: u64| Row {
            workload: WorkloadName::Heavy,
            p99_us,
            messages,
            ..row(name, 10, 5.0)
        };
        let rows = vec![
            row("baseline", 100, 1.5),
            row("event-loop", 10, 1.0),
            row("event-loop", 100, 2.0),
            row("thread-per-client", 100, 6.0),
            row("async", 100, 3.0),
            flagged,
            one,
            idle_row("event-loop", 4000, 4000),
            idle_row("thread-per-client", 4000, 4000),
            idle_row("thread-pool", 4000, 2),
            heavy("baseline", 50.0, 900),
            heavy("event-loop", 40_000.0, 300),
            heavy("event-loop-workers", 800.0, 900),
            heavy("single-client", 0.0, 0),
        ];
        let memory = vec![
            fit("baseline", 100.0, None),
            fit("event-loop", 300.0, Some(0.0)),
            fit("thread-per-client", 10_000.0, Some(16_384.0)),
            fit("thread-pool", 10.0, None),
        ];
        let saturating = |at: f64| {
            vec![
                step(10_000.0, [(1.0, 150.0), (1.0, 180.0), (1.0, 160.0)]),
                step(at, [(1.0, 300.0), (1.0, 350.0), (1.0, 320.0)]),
                step(
                    2.0 * at,
                    [(0.8, 90_000.0), (0.8, 95_000.0), (0.8, 99_000.0)],
                ),
            ]
        };
        let sweeps = vec![
            sweep("baseline", saturating(20_000.0), 10),
            sweep("single-client", Vec::new(), 1),
            sweep("event-loop", saturating(40_000.0), 10),
            sweep("multi-reactor", saturating(30_000.0), 10),
            sweep("async", saturating(60_000.0)[..2].to_vec(), 10),
        ];
        let said = verdict(&rows, &memory, &sweeps);
        assert_eq!(said.len(), 4, "{said:#?}");
        assert_eq!(
            said[0],
            "Most answered per CPU: event-loop, 2.00µs of server CPU per message at 100 \
             ping-pong clients (500.0k/s per core); thread-per-client spent the most, 6.00µs \
             (3.0x); not ranked (flagged, or served only some clients): io-uring, single-client."
        );
        assert_eq!(
            said[1],
            "Held idle connections most cheaply: event-loop, 300B per connection (the slope \
             of its memory over 1000 and 4000 held, kernel stacks included); \
             thread-per-client paid the most, 25.8KiB."
        );
        assert_eq!(
            said[2],
            "Kept cheap clients fastest beside slow calc lines: event-loop-workers, p99 800µs \
             at 10 clients; event-loop made them wait longest, p99 40.00ms (50x); no cheap \
             client answered at all: single-client."
        );
        assert_eq!(
            said[3],
            "Broke first under open-loop load at 10 clients: before any load was offered: \
             single-client (served 1 of 10 clients at once); of the models swept, \
             multi-reactor at 60.0k/s offered (60% of its closed-loop maximum): p99 95.00ms \
             with 80% of the rate achieved, after a knee at 30.0k/s; no break within the \
             sweep: async."
        );
    }

    /// A run that asked none of the questions gets no verdict; one whose rows were all
    /// flagged says there is no answer rather than quoting them.
    #[test]
    fn no_verdict_without_clean_figures() {
        assert!(verdict(&[], &[], &[]).is_empty());
        let mut shaky = row("event-loop", 10, 2.0);
        shaky.flags = vec!["other processes used 50% of a core".into()];
        let said = verdict(&[shaky], &[], &[]);
        assert_eq!(said.len(), 1);
        assert!(said[0].contains("no answer"), "{said:?}");
        // One clean heavy row is not "the fastest" of the others: they are named.
        let heavy = |name: &str, flags: Vec<String>| Row {
            workload: WorkloadName::Heavy,
            flags,
            ..row(name, 10, 5.0)
        };
        let busy = vec!["other processes used 50% of a core".to_owned()];
        let said = verdict(
            &[heavy("async", vec![]), heavy("event-loop", busy)],
            &[],
            &[],
        );
        assert!(
            said[0].ends_with("; not ranked (flagged): event-loop."),
            "{said:?}"
        );
    }
}
