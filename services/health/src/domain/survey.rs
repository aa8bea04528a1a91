//! Survey measures: the Feedback service's answers (SurveyAnswered) as the
//! external measures `external:nps`, `external:csat`, `external:ces` and
//! `external:outcome` (docs/health.md, *Survey measures*).
//!
//! Per account and kind, each contact counts with its latest answer (by
//! answer time), if that answer is within the window; the measure is the
//! mean of those scores on the kind's own scale, missing without any.

use chrono::{DateTime, Duration, Utc};

/// The default window: answers of the last 180 days count.
pub const DEFAULT_WINDOW_DAYS: u64 = 180;

/// A survey kind that makes a measure (CUSTOM surveys have no score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SurveyKind {
    /// Net promoter, 0–10.
    Nps,
    /// Satisfaction, 1–5.
    Csat,
    /// Customer effort, 1–7.
    Ces,
    /// Outcome reached, 1–5.
    Outcome,
}

impl SurveyKind {
    pub const ALL: [SurveyKind; 4] = [SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces, SurveyKind::Outcome];

    /// The stored kind, and the external measure's name (without `external:`).
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Nps => "nps",
            SurveyKind::Csat => "csat",
            SurveyKind::Ces => "ces",
            SurveyKind::Outcome => "outcome",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The lowest and highest score of the kind's scale.
    pub fn scale(self) -> (i32, i32) {
        match self {
            SurveyKind::Nps => (0, 10),
            SurveyKind::Csat | SurveyKind::Outcome => (1, 5),
            SurveyKind::Ces => (1, 7),
        }
    }

    /// `score` if it is on the kind's scale, else what is wrong with it.
    pub fn check(self, score: i32) -> Result<i32, String> {
        let (lo, hi) = self.scale();
        if (lo..=hi).contains(&score) {
            Ok(score)
        } else {
            Err(format!("{score} is outside the {} scale {lo}–{hi}", self.as_str()))
        }
    }
}

/// One contact's latest answer of a kind, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub score: i32,
    pub answered_at: DateTime<Utc>,
}

/// The oldest answer time that still counts at `now`: `now − window`.
pub fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    now.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether an answer made at `answered_at` counts at `now`.
pub fn counts(answered_at: DateTime<Utc>, now: DateTime<Utc>, window: Duration) -> bool {
    answered_at >= window_start(now, window)
}

/// The measure at `now` of an account's latest answers of one kind, one per
/// contact: the mean score of those within the window; `None` (missing)
/// when none is.
pub fn measure(answers: &[Answer], now: DateTime<Utc>, window: Duration) -> Option<f64> {
    let counted: Vec<f64> =
        answers.iter().filter(|a| counts(a.answered_at, now, window)).map(|a| f64::from(a.score)).collect();
    (!counted.is_empty()).then(|| counted.iter().sum::<f64>() / counted.len() as f64)
}

/// When the value a measure holds was observed: its newest counted answer.
pub fn observed(answers: &[Answer], now: DateTime<Utc>, window: Duration) -> Option<DateTime<Utc>> {
    answers.iter().filter(|a| counts(a.answered_at, now, window)).map(|a| a.answered_at).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::days(days_ago)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-30T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_measure_is_the_mean_of_the_answers_within_the_window() {
        let now = now();
        let window = Duration::days(180);
        let answers = |a: &[(i32, i64)]| -> Vec<Answer> {
            a.iter().map(|&(score, days)| Answer { score, answered_at: at(days, now) }).collect()
        };
        assert_eq!(measure(&answers(&[(9, 1), (5, 30)]), now, window), Some(7.0));
        assert_eq!(measure(&answers(&[(9, 1), (4, 2), (5, 30)]), now, window), Some(6.0));
        // 200 days ago is outside; exactly 180 days ago is the window's edge, inside.
        assert_eq!(measure(&answers(&[(9, 1), (0, 200)]), now, window), Some(9.0));
        assert_eq!(measure(&answers(&[(3, 180), (0, 200)]), now, window), Some(3.0));
        // None within: missing, not zero.
        assert_eq!(measure(&answers(&[(0, 181), (10, 400)]), now, window), None);
        assert_eq!(measure(&[], now, window), None);
        // An answer a moment ahead of the clock counts.
        let ahead = Answer { score: 4, answered_at: now + Duration::seconds(5) };
        assert_eq!(measure(&[ahead], now, window), Some(4.0));
        // A shorter window leaves more out.
        assert_eq!(measure(&answers(&[(9, 1), (5, 30)]), now, Duration::days(7)), Some(9.0));
        assert_eq!(observed(&answers(&[(9, 3), (5, 1), (2, 300)]), now, window), Some(at(1, now)));
        assert_eq!(observed(&answers(&[(2, 300)]), now, window), None);
    }

    #[test]
    fn each_kind_has_its_own_scale_and_name() {
        assert_eq!(SurveyKind::Nps.check(0), Ok(0));
        assert_eq!(SurveyKind::Nps.check(10), Ok(10));
        assert_eq!(SurveyKind::Nps.check(11), Err("11 is outside the nps scale 0–10".into()));
        assert_eq!(SurveyKind::Csat.check(0), Err("0 is outside the csat scale 1–5".into()));
        assert_eq!(SurveyKind::Csat.check(5), Ok(5));
        assert_eq!(SurveyKind::Ces.check(7), Ok(7));
        assert_eq!(SurveyKind::Ces.check(8), Err("8 is outside the ces scale 1–7".into()));
        assert_eq!(SurveyKind::Outcome.check(6), Err("6 is outside the outcome scale 1–5".into()));
        for k in SurveyKind::ALL {
            assert_eq!(SurveyKind::parse(k.as_str()), Some(k));
            assert!(crate::domain::measure::is_external_name(k.as_str()));
        }
        assert_eq!(SurveyKind::parse("custom"), None);
    }

    #[test]
    fn a_window_reaching_before_time_began_starts_there() {
        let now = now();
        assert_eq!(window_start(now, Duration::days(10)), at(10, now));
        assert_eq!(window_start(DateTime::<Utc>::MIN_UTC, Duration::days(1)), DateTime::<Utc>::MIN_UTC);
    }
}
