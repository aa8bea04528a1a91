//! Figures with their 95% intervals, so a team does not act on four
//! answers. Every formula is in docs/metrics.md with a worked example.

/// The normal quantile of a two-sided 95% interval.
pub(crate) const Z: f64 = 1.959_963_984_540_054;

/// A figure, its sample size and its 95% interval (absent where the sample
/// cannot give one).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Estimate {
    pub value: Option<f64>,
    pub n: i64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Estimate {
    fn empty(n: i64) -> Self {
        Estimate { value: None, n, low: None, high: None }
    }
}

/// Wilson's score interval of a proportion `k / n`, as fractions.
pub(crate) fn wilson(k: i64, n: i64) -> Option<(f64, f64, f64)> {
    if n <= 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some((p, (centre - half).max(0.0), (centre + half).min(1.0)))
}

/// A percentage `100 k / n` with Wilson's interval.
pub(crate) fn percent(k: i64, n: i64) -> Estimate {
    match wilson(k, n) {
        Some((p, lo, hi)) => Estimate { value: Some(100.0 * p), n, low: Some(100.0 * lo), high: Some(100.0 * hi) },
        None => Estimate::empty(n),
    }
}

/// NPS = 100 (p − d) of `promoters` and `detractors` among `n` answers,
/// ± Z · 100 · √((p + d − (p − d)²) / n): the variance of a score that is
/// +1 for a promoter, −1 for a detractor and 0 for a passive.
pub(crate) fn nps(promoters: i64, detractors: i64, n: i64) -> Estimate {
    if n <= 0 {
        return Estimate::empty(n);
    }
    let p = promoters as f64 / n as f64;
    let d = detractors as f64 / n as f64;
    let value = 100.0 * (p - d);
    let margin = Z * 100.0 * ((p + d - (p - d).powi(2)) / n as f64).max(0.0).sqrt();
    Estimate { value: Some(value), n, low: Some((value - margin).max(-100.0)), high: Some((value + margin).min(100.0)) }
}

/// Student's t quantile for a two-sided 95% interval with `df` degrees of
/// freedom: the table's three decimals up to 30; beyond, the quantile of
/// the smallest df of each bucket (never too narrow an interval), and the
/// normal's beyond 1,000 (t(1000) = 1.962).
pub(crate) fn t95(df: i64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        ..=0 => f64::NAN,
        1..=30 => TABLE[(df - 1) as usize],
        31..=40 => 2.042,
        41..=60 => 2.021,
        61..=120 => 2.000,
        121..=1000 => 1.980,
        _ => Z,
    }
}

/// The mean of `xs` with its t interval (none for one value), clamped to
/// the scale `[lo, hi]`.
pub(crate) fn mean(xs: &[f64], lo: f64, hi: f64) -> Estimate {
    let n = xs.len() as i64;
    if n == 0 {
        return Estimate::empty(0);
    }
    let m = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Estimate { value: Some(m), n, low: None, high: None };
    }
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t95(n - 1) * (var / n as f64).sqrt();
    Estimate { value: Some(m), n, low: Some((m - half).max(lo)), high: Some((m + half).min(hi)) }
}

/// The difference of two percentages `100 (k1/n1 − k2/n2)` in points, with
/// Newcombe's hybrid score interval (from the two Wilson intervals);
/// `n` is the smaller sample.
pub(crate) fn difference(k1: i64, n1: i64, k2: i64, n2: i64) -> Estimate {
    let (Some((p1, l1, u1)), Some((p2, l2, u2))) = (wilson(k1, n1), wilson(k2, n2)) else {
        return Estimate::empty(n1.min(n2).max(0));
    };
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Estimate { value: Some(100.0 * d), n: n1.min(n2), low: Some(100.0 * low), high: Some(100.0 * high) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 0.01, "{a} vs {b}");
    }

    /// The worked example of docs/metrics.md: 50 promoters, 30 passives,
    /// 20 detractors of 100 → NPS 30, p + d − (p − d)² = 0.7 − 0.09 = 0.61,
    /// margin 1.96 × 100 × √0.0061 = 15.31.
    #[test]
    fn nps_with_its_margin() {
        let e = nps(50, 20, 100);
        close(e.value, 30.0);
        close(e.low, 14.69);
        close(e.high, 45.31);
        assert_eq!(e.n, 100);
        // Four answers: the interval says not to act on them.
        let small = nps(2, 1, 4);
        close(small.value, 25.0);
        assert!(small.high.unwrap() - small.low.unwrap() > 100.0, "{small:?}");
        // All promoters: no spread, NPS 100, the interval clamped.
        let all = nps(10, 0, 10);
        close(all.value, 100.0);
        close(all.high, 100.0);
        assert_eq!(nps(0, 0, 0).value, None);
    }

    /// CSAT 4–5 share: 8 of 10 → 80%, Wilson 49.0%–94.3%.
    #[test]
    fn wilson_percentages() {
        let e = percent(8, 10);
        close(e.value, 80.0);
        close(e.low, 49.02);
        close(e.high, 94.33);
        let none = percent(0, 5);
        close(none.low, 0.0);
        assert!(none.high.unwrap() > 40.0, "{none:?}");
        assert_eq!(percent(0, 0).value, None);
    }

    /// CES 5, 6, 7, 4, 6: mean 5.6, s = 1.14, t(4) = 2.776 → ±1.42.
    #[test]
    fn means_with_t_intervals() {
        let e = mean(&[5.0, 6.0, 7.0, 4.0, 6.0], 1.0, 7.0);
        close(e.value, 5.6);
        close(e.low, 4.18);
        close(e.high, 7.0); // 7.02, clamped to the scale
        let one = mean(&[3.0], 1.0, 5.0);
        assert_eq!((one.value, one.low), (Some(3.0), None));
        assert!((t95(2000) - Z).abs() < 1e-9 && (t95(1) - 12.706).abs() < 1e-9 && t95(35) >= 2.030);
    }

    /// 80% of 10 vendor answers against 8% of 100 customer answers: a gap
    /// of 72 points, Newcombe 40.2–86.9.
    #[test]
    fn the_gap_between_two_shares() {
        let e = difference(8, 10, 8, 100);
        close(e.value, 72.0);
        close(e.low, 40.24);
        close(e.high, 86.85);
        assert_eq!(e.n, 10);
        assert_eq!(difference(1, 0, 1, 2).value, None);
    }
}
