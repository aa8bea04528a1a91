//! Periods of days in a tenant's calendar: explicit ranges, calendar
//! months, and fiscal quarters and years counted from the tenant's
//! fiscal-year start month (Accounts' TenantSettings). One definition for
//! every service that reports by period (Accounts' retention KPIs, Health's
//! renewal forecast), so "Q1 FY2026" means the same days everywhere.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// A range of days `[start, end)`: `start` inclusive, `end` exclusive, so
/// consecutive periods share their boundary and never count a day twice.
/// Days are calendar days in the tenant's time zone (see [`today_in`]).
///
/// Build one with [`Period::new`] or a helper: they guarantee
/// `start < end`, at most [`MAX_PERIOD_MONTHS`] apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// The kinds of named period a tenant asks for ("this month", "this quarter", …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(dead_code, reason = "named periods for the views to come; pinned by the tests")]
pub enum PeriodKind {
    /// A calendar month.
    Month,
    /// Three months counted from the fiscal-year start month; with a January
    /// start, a calendar quarter.
    FiscalQuarter,
    /// Twelve months from the fiscal-year start month.
    FiscalYear,
}

/// The longest explicit range: 10 years. Longer ones are almost always a
/// typo in a year, and the cost of a metric grows with the history read.
pub const MAX_PERIOD_MONTHS: u32 = 120;

/// Why a period cannot be built. Messages are lowercase and quote the value;
/// [`PeriodError::field`] names the input it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("end {end} must be after start {start}")]
    EndNotAfterStart { start: NaiveDate, end: NaiveDate },
    #[error("range {start} to {end} is longer than 10 years")]
    TooLong { start: NaiveDate, end: NaiveDate },
    #[error("month must be 1 to 12, got {0}")]
    Month(u32),
    #[error("quarter must be 1 to 4, got {0}")]
    Quarter(u32),
    #[error("fiscal_year_start_month must be 1 to 12, got {0}")]
    FiscalYearStartMonth(u32),
    #[error("year {0} is out of the supported range of dates")]
    Year(i32),
}

impl PeriodError {
    /// The input the error is about, for the API to prefix with its path.
    pub fn field(&self) -> &'static str {
        match self {
            PeriodError::EndNotAfterStart { .. } | PeriodError::TooLong { .. } => "end",
            PeriodError::Month(_) => "month",
            PeriodError::Quarter(_) => "quarter",
            PeriodError::FiscalYearStartMonth(_) => "fiscal_year_start_month",
            PeriodError::Year(_) => "year",
        }
    }
}

impl Period {
    /// An explicit range `[start, end)`; `end` must be after `start` and at
    /// most 10 years later (a range of exactly 10 years is allowed).
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Period, PeriodError> {
        if end <= start {
            return Err(PeriodError::EndNotAfterStart { start, end });
        }
        // No limit date means start + 10 years is past the last date chrono
        // knows, so `end` cannot be further than that.
        if let Some(limit) = start.checked_add_months(Months::new(MAX_PERIOD_MONTHS))
            && end > limit
        {
            return Err(PeriodError::TooLong { start, end });
        }
        Ok(Period { start, end })
    }

    /// Calendar month `month` (1 to 12) of `year`: from its first day to the
    /// first day of the next month.
    pub fn month(year: i32, month: u32) -> Result<Period, PeriodError> {
        if !(1..=12).contains(&month) {
            return Err(PeriodError::Month(month));
        }
        months_from(year, month_index(year, month), 1)
    }

    /// Quarter `quarter` (1 to 4) of fiscal year `fiscal_year`, counted from
    /// `fy_start_month`. Fiscal years are named by the calendar year they
    /// start in (see [`Period::fiscal_year`]): with an April start, Q4 of
    /// FY2025 is 2026-01-01 .. 2026-04-01.
    pub fn quarter_of_fiscal_year(fiscal_year: i32, quarter: u32, fy_start_month: u32) -> Result<Period, PeriodError> {
        check_fy_start_month(fy_start_month)?;
        if !(1..=4).contains(&quarter) {
            return Err(PeriodError::Quarter(quarter));
        }
        let first = month_index(fiscal_year, fy_start_month) + 3 * i64::from(quarter - 1);
        months_from(fiscal_year, first, 3)
    }

    /// Fiscal year `fiscal_year`: twelve months from `fy_start_month` of
    /// calendar year `fiscal_year`. This is the Japanese naming (令和7年度,
    /// FY2025, is 2025-04-01 .. 2026-04-01 with an April start), not the one
    /// that names a fiscal year by the year it ends in. With a January start
    /// the fiscal year is the calendar year.
    pub fn fiscal_year(fiscal_year: i32, fy_start_month: u32) -> Result<Period, PeriodError> {
        check_fy_start_month(fy_start_month)?;
        months_from(fiscal_year, month_index(fiscal_year, fy_start_month), 12)
    }

    /// The month, fiscal quarter or fiscal year that contains `date`: "this
    /// quarter" is `Period::containing(today_in(tz, now), FiscalQuarter, m)`.
    #[allow(dead_code, reason = "named periods for the views to come; pinned by the tests")]
    pub fn containing(date: NaiveDate, kind: PeriodKind, fy_start_month: u32) -> Result<Period, PeriodError> {
        check_fy_start_month(fy_start_month)?;
        match kind {
            PeriodKind::Month => Period::month(date.year(), date.month()),
            PeriodKind::FiscalQuarter => {
                let months_into_year = (date.month() + 12 - fy_start_month) % 12;
                Period::quarter_of_fiscal_year(
                    fiscal_year_of(date, fy_start_month)?,
                    months_into_year / 3 + 1,
                    fy_start_month,
                )
            }
            PeriodKind::FiscalYear => Period::fiscal_year(fiscal_year_of(date, fy_start_month)?, fy_start_month),
        }
    }

    /// Whether `date` falls in `[start, end)`.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date < self.end
    }

    /// The number of days in the period.
    #[allow(dead_code, reason = "named periods for the views to come; pinned by the tests")]
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }
}

/// A period as a request names it, before the tenant's fiscal year is
/// known: its values are in range (the API checked them), the period is
/// found by [`PeriodSpec::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodSpec {
    Month { year: i32, month: u32 },
    FiscalQuarter { fiscal_year: i32, quarter: u32 },
    FiscalYear(i32),
    Range(Period),
}

impl PeriodSpec {
    /// The period in a tenant whose fiscal year starts in `fy_start_month`;
    /// an error comes with the request field it is about (`month`,
    /// `fiscal_quarter`, `fiscal_year`, `date_range`).
    pub fn resolve(self, fy_start_month: u32) -> Result<Period, (&'static str, PeriodError)> {
        match self {
            PeriodSpec::Month { year, month } => Period::month(year, month).map_err(|e| ("month", e)),
            PeriodSpec::FiscalQuarter { fiscal_year, quarter } => {
                Period::quarter_of_fiscal_year(fiscal_year, quarter, fy_start_month).map_err(|e| ("fiscal_quarter", e))
            }
            PeriodSpec::FiscalYear(y) => Period::fiscal_year(y, fy_start_month).map_err(|e| ("fiscal_year", e)),
            PeriodSpec::Range(p) => Ok(p),
        }
    }
}

/// The name of the fiscal year containing `date`: the calendar year in which
/// that fiscal year starts (2026-03-31 is in FY2025 with an April start).
/// Agrees with `TenantSettings::fiscal_year_start(date).year()`.
pub fn fiscal_year_of(date: NaiveDate, fy_start_month: u32) -> Result<i32, PeriodError> {
    check_fy_start_month(fy_start_month)?;
    Ok(if date.month() >= fy_start_month { date.year() } else { date.year() - 1 })
}

/// Today's date in the tenant's time zone. Periods are cut in that zone, not
/// in UTC: at 2026-03-31T16:00Z it is already 2026-04-01 in Asia/Tokyo, the
/// first day of a new fiscal year for a company starting in April.
pub fn today_in(tz: chrono_tz::Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

fn check_fy_start_month(m: u32) -> Result<(), PeriodError> {
    if (1..=12).contains(&m) { Ok(()) } else { Err(PeriodError::FiscalYearStartMonth(m)) }
}

/// Months since January of year 0; month arithmetic across years becomes
/// plain addition.
fn month_index(year: i32, month: u32) -> i64 {
    i64::from(year) * 12 + i64::from(month) - 1
}

/// The first day of the month with index `index`, if chrono can represent it.
fn month_start(index: i64) -> Option<NaiveDate> {
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// `months` whole months from the month with index `first`; `year` only
/// names the input in the error when a bound is out of chrono's range.
fn months_from(year: i32, first: i64, months: i64) -> Result<Period, PeriodError> {
    match (month_start(first), month_start(first + months)) {
        (Some(start), Some(end)) => Ok(Period { start, end }),
        _ => Err(PeriodError::Year(year)),
    }
}
