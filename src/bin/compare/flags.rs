//! Validity flags: the reasons a row's figures should not be quoted as they stand. Each
//! row carries its own ([`Row::flags`]); the report lists them under the table and the
//! summary leaves flagged rows out.

use crate::row::{Row, WorkloadName};

/// Below this share of the offered rate, an open-loop row did not get the load it
/// was meant to measure.
pub const MIN_ACHIEVED: f64 = 0.95;
/// The generator's own lateness (p99) above this share of the corrected p99, and
/// above [`LATE_FLOOR_US`], is a large part of what the row reports.
pub const LATE_SHARE: f64 = 0.25;
/// Lateness below this is the timer and scheduler's ordinary noise.
pub const LATE_FLOOR_US: f64 = 100.0;
/// A generator thread this busy may be what limits the row...
pub const GEN_BUSY: f64 = 0.90;
/// ...and anything else using more than this share of a core disturbed the window.
pub const OTHER_BUSY: f64 = 0.20;

/// `row` with its flags filled in.
pub fn flagged(mut row: Row) -> Row {
    row.flags = reasons(&row);
    row
}

/// Why the row's figures are doubtful, one short sentence each.
pub fn reasons(row: &Row) -> Vec<String> {
    let mut why = Vec::new();
    if let (Some(offered), Some(achieved)) = (row.offered_per_s, row.achieved_per_s) {
        if achieved < MIN_ACHIEVED * offered {
            why.push(format!(
                "rate not achieved: {:.0}/s of {:.0}/s offered ({:.0}%)",
                achieved,
                offered,
                100.0 * achieved / offered
            ));
        }
    }
    why.extend(disturbances(row));
    why
}

/// The reasons that say the window was disturbed — the generator late or held up or
/// busy, other processes busy, clients missing — rather than that the server fell
/// short of the rate offered, which is what a sweep is looking for.
pub fn disturbances(row: &Row) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(late) = row.gen_late_p99_us {
        if late > LATE_FLOOR_US && late > LATE_SHARE * row.p99_us {
            why.push(format!(
                "the generator itself sent late (p99 {:.0} µs behind schedule, against a \
                 p99 of {:.0} µs): its own delays are part of this row's latency",
                late, row.p99_us
            ));
        }
    }
    if let Some(pause) = row.gen_pause_max_us {
        if pause > LATE_FLOOR_US && pause > LATE_SHARE * row.p99_us {
            why.push(format!(
                "the generator was held up for up to {} (its thread descheduled or busy), \
                 against a p99 of {}: requests due meanwhile were charged that wait",
                crate::units::micros(pause, 1),
                crate::units::micros(row.p99_us, 1)
            ));
        }
    }
    // In open loop the generator polls without pause just before each send is due, so
    // its core reads busy whatever it does; there, a rate not achieved is the sign.
    if let (Some(generator), Some(server), false) = (row.gen_load, row.server_load, row.open_loop())
    {
        if generator >= GEN_BUSY && server < generator {
            why.push(format!(
                "the load generator used {:.0}% of a core and the server less ({:.0}%): \
                 the generator may be what limits this row",
                generator * 100.0,
                server * 100.0
            ));
        }
    }
    // Churn counts every connection it opened; the others open each client once.
    if row.workload != WorkloadName::Churn && (row.connected as usize) < row.clients {
        why.push(format!(
            "fewer connections than asked: {} of {}",
            row.connected, row.clients
        ));
    }
    if let Some(other) = row.other_load.filter(|&o| o > OTHER_BUSY) {
        why.push(format!(
            "other processes used {:.0}% of a core during the window",
            other * 100.0
        ));
    }
    why
}

/// The flagged rows as lines for under the table; empty when none is flagged.
pub fn flag_lines(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows.iter().filter(|r| !r.flags.is_empty()) {
        out.push_str(&format!("  {}: {}\n", r.name(), r.flags.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::test_row as row;

    /// Each of the four conditions raises its own flag, and a clean row has none.
    #[test]
    fn each_condition_flags_the_row() {
        let mut clean = row("server4", 10, 2.0);
        clean.connected = 10;
        assert!(reasons(&clean).is_empty(), "{:?}", reasons(&clean));

        let mut slow = clean.clone();
        slow.offered_per_s = Some(10_000.0);
        slow.achieved_per_s = Some(9_000.0);
        assert!(reasons(&slow)[0].starts_with("rate not achieved: 9000/s of 10000/s"));
        slow.achieved_per_s = Some(9_600.0);
        assert!(reasons(&slow).is_empty(), "96% is achieved");
        slow.p99_us = 2_000.0;
        slow.gen_late_p99_us = Some(900.0);
        assert!(reasons(&slow)[0].starts_with("the generator itself sent late"));
        slow.gen_late_p99_us = Some(300.0);
        assert!(reasons(&slow).is_empty(), "15% of p99 is the generator's");
        slow.gen_pause_max_us = Some(3_000.0);
        assert!(reasons(&slow)[0].starts_with("the generator was held up for up to 3.00ms"));
        slow.gen_pause_max_us = Some(80.0);
        assert!(reasons(&slow).is_empty(), "an 80 µs hiccup is noise");

        let mut gen = clean.clone();
        (gen.gen_load, gen.server_load) = (Some(0.95), Some(0.60));
        assert!(reasons(&gen)[0].contains("generator"));
        gen.server_load = Some(0.97);
        assert!(reasons(&gen).is_empty(), "the server's core filled first");

        let mut few = clean.clone();
        few.connected = 7;
        assert_eq!(reasons(&few), ["fewer connections than asked: 7 of 10"]);

        let mut busy = clean.clone();
        busy.other_load = Some(0.35);
        assert!(reasons(&busy)[0].contains("other processes used 35%"));
        assert!(flag_lines(&[flagged(busy)]).contains("server4 pingpong 10: other"));
    }
}
