//! Figures in short human units for the table and the summary: rates (`81.2k`),
//! latencies (`83µs`), CPU per message, bytes (`2.0KiB`), percentages, and prose
//! wrapped to a width.

pub fn percent(load: f64) -> String {
    format!("{:.0}%", load * 100.0)
}

pub fn opt<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map(show).unwrap_or_else(|| "n/a".into())
}

/// 812, 81.2k, 1.23M.
pub fn si(x: f64) -> String {
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
pub fn micros(us: f64, samples: u64) -> String {
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
pub fn cpu(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.2}µs")
    } else if us < 1000.0 {
        format!("{us:.0}µs")
    } else {
        format!("{:.2}ms", us / 1e3)
    }
}

/// 812B, 12.3KiB, 4.50MiB.
pub fn bytes(b: f64) -> String {
    if b < 1024.0 {
        format!("{b:.0}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1}KiB", b / 1024.0)
    } else {
        format!("{:.2}MiB", b / (1024.0 * 1024.0))
    }
}

pub fn wrap(text: &str, width: usize) -> String {
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
}
