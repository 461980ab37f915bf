//! Latency statistics: an HDR histogram of nanoseconds, merged across generator threads,
//! summarised as the percentiles `compare` prints.
//!
//! An HDR histogram keeps every percentile within 0.1% (3 significant digits) in a fixed
//! few hundred KiB, whatever the number of samples, so recording costs a few nanoseconds
//! and no allocation on the hot path.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest latency recorded exactly; longer ones are clamped to it (one minute is far
/// beyond any deadline the generator uses).
const HIGHEST_NS: u64 = 60_000_000_000;

/// A latency histogram with nanosecond resolution.
#[derive(Clone, Debug)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram covering 1 ns to 60 s at 3 significant digits.
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, HIGHEST_NS, 3)
            .expect("constant histogram bounds are valid");
        Latency { hist }
    }

    /// Records one sample; values beyond 60 s are recorded as 60 s.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(HIGHEST_NS);
        self.hist.saturating_record(ns.clamp(1, HIGHEST_NS));
    }

    /// Adds every sample of `other` to this histogram.
    pub fn merge(&mut self, other: &Latency) {
        // Both histograms have the same bounds, so adding cannot go out of range.
        let _ = self.hist.add(&other.hist);
    }

    /// The number of samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0.0 ..= 1.0), or zero if nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.hist.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.hist.value_at_quantile(q))
    }

    /// The percentiles `compare` reports.
    pub fn summary(&self) -> Summary {
        if self.hist.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.count(),
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: Duration::from_nanos(self.hist.max()),
            mean: Duration::from_nanos(self.hist.mean().round() as u64),
        }
    }
}

/// Percentiles of one latency histogram; all zero when there were no samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest sample (to the histogram's precision).
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Within 0.1%, as HDR histograms with 3 significant digits promise.
    fn close(a: Duration, b: Duration) -> bool {
        let (a, b) = (a.as_nanos() as f64, b.as_nanos() as f64);
        (a - b).abs() <= b * 0.001 + 1.0
    }

    /// Percentiles of 1..=1000 µs are the values a sorted list gives.
    #[test]
    fn percentiles_of_a_uniform_ramp() {
        let mut h = Latency::new();
        for i in 1..=1000 {
            h.record(us(i));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!(close(s.p50, us(500)), "p50 {:?}", s.p50);
        assert!(close(s.p99, us(990)), "p99 {:?}", s.p99);
        assert!(close(s.p999, us(999)), "p99.9 {:?}", s.p999);
        assert!(close(s.max, us(1000)), "max {:?}", s.max);
        assert!(
            close(s.mean, Duration::from_nanos(500_500)),
            "mean {:?}",
            s.mean
        );
    }

    /// One outlier in a thousand moves p99.9 and max but leaves p50 and p99 alone.
    #[test]
    fn a_single_outlier_only_shows_in_the_tail() {
        let mut h = Latency::new();
        for _ in 0..999 {
            h.record(us(100));
        }
        h.record(Duration::from_millis(50));
        let s = h.summary();
        assert!(close(s.p50, us(100)));
        assert!(close(s.p99, us(100)));
        assert!(close(s.max, Duration::from_millis(50)));
    }

    /// Merging two halves gives the same summary as recording everything in one.
    #[test]
    fn merge_equals_recording_together() {
        let (mut a, mut b, mut all) = (Latency::new(), Latency::new(), Latency::new());
        for i in 1..=500 {
            a.record(us(i));
            all.record(us(i));
        }
        for i in 501..=1000 {
            b.record(us(i));
            all.record(us(i));
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
    }

    /// An empty histogram summarises to zeros instead of panicking, and huge values clamp.
    #[test]
    fn empty_and_out_of_range() {
        assert_eq!(Latency::new().summary(), Summary::default());
        let mut h = Latency::new();
        h.record(Duration::from_secs(3600));
        h.record(Duration::ZERO);
        assert_eq!(h.count(), 2);
        assert!(h.summary().max <= Duration::from_secs(61));
    }
}
