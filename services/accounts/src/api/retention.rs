//! Retention metrics on the wire.

use banso_kit::{Result, Violations, wire};
use banso_proto::accounts as pb;

use super::convert::required;
use crate::{
    app::MetricsQuery,
    domain::{
        retention::{Period, PeriodSpec, RetentionMetrics},
        validate,
    },
};

/// `lo ≤ value ≤ hi` as a `u32`, quoting the value as sent when it is not.
fn in_range(v: &mut Violations, field: &str, value: i32, lo: u32, hi: u32) -> Option<u32> {
    let ok = u32::try_from(value).ok().filter(|n| (lo..=hi).contains(n));
    if ok.is_none() {
        v.add(field, format!("must be {lo} to {hi}, got {value}"));
    }
    ok
}

/// A year the API's dates allow (1900–9999).
fn year(v: &mut Violations, field: &str, year: i32) -> Option<i32> {
    let ok = (wire::MIN_YEAR..=wire::MAX_YEAR).contains(&year);
    v.check(!ok, field, format!("must be {} to {}, got {year}", wire::MIN_YEAR, wire::MAX_YEAR));
    ok.then_some(year)
}

pub(crate) fn query(r: pb::GetRetentionMetricsRequest) -> Result<MetricsQuery> {
    use pb::get_retention_metrics_request::Period as P;
    let mut v = Violations::new();
    let period = match &r.period {
        None => {
            v.add("period", "is required: month, fiscal_quarter, fiscal_year or date_range");
            None
        }
        Some(P::Month(m)) => {
            let (year, month) = (year(&mut v, "month.year", m.year), in_range(&mut v, "month.month", m.month, 1, 12));
            year.zip(month).map(|(year, month)| PeriodSpec::Month { year, month })
        }
        Some(P::FiscalQuarter(q)) => {
            let fiscal_year = year(&mut v, "fiscal_quarter.fiscal_year", q.fiscal_year);
            let quarter = in_range(&mut v, "fiscal_quarter.quarter", q.quarter, 1, 4);
            fiscal_year.zip(quarter).map(|(fiscal_year, quarter)| PeriodSpec::FiscalQuarter { fiscal_year, quarter })
        }
        Some(P::FiscalYear(y)) => year(&mut v, "fiscal_year", *y).map(PeriodSpec::FiscalYear),
        Some(P::DateRange(d)) => {
            let start = required(&mut v, "date_range.start", d.start.as_ref())
                .and_then(|s| wire::date(&mut v, "date_range.start", s.year, s.month, s.day));
            let end = required(&mut v, "date_range.end", d.end.as_ref())
                .and_then(|e| wire::date(&mut v, "date_range.end", e.year, e.month, e.day));
            match start.zip(end).map(|(start, end)| Period::new(start, end)) {
                Some(Ok(p)) => Some(PeriodSpec::Range(p)),
                Some(Err(e)) => {
                    v.add(format!("date_range.{}", e.field()), e.to_string());
                    None
                }
                None => None,
            }
        }
    };
    let currency_code = (!r.currency_code.is_empty()).then(|| {
        validate::currency(&mut v, "currency_code", &r.currency_code);
        r.currency_code.clone()
    });
    let segment_id = v.take(wire::optional_uuid("segment_id", &r.segment_id)).flatten();
    let period = v.finish_with(period)?;
    Ok(MetricsQuery { period, currency_code, segment_id })
}

pub(crate) fn to_proto((m, currency_code): (RetentionMetrics, String)) -> pb::RetentionMetrics {
    pb::RetentionMetrics {
        period_start: Some(wire::date_to_proto(m.period.start)),
        period_end: Some(wire::date_to_proto(m.period.end)),
        currency_code,
        starting_arr: m.starting_arr,
        ending_arr: m.ending_arr,
        starting_logos: m.starting_logos,
        ending_logos: m.ending_logos,
        churned_logos: m.churned_logos,
        new_logos: m.new_logos,
        churned_arr: m.churned_arr,
        contraction_arr: m.contraction_arr,
        expansion_arr: m.expansion_arr,
        new_arr: m.new_arr,
        logo_churn_rate: m.logo_churn_rate,
        revenue_churn_rate: m.revenue_churn_rate,
        net_revenue_churn_rate: m.net_revenue_churn_rate,
        gross_revenue_retention: m.gross_revenue_retention,
        net_revenue_retention: m.net_revenue_retention,
        renewals: m.renewals,
        renewal_churns: m.renewal_churns,
        renewal_rate: m.renewal_rate,
        arr_renewal_rate: m.arr_renewal_rate,
        renewal_arr_due: m.renewal_arr_due,
        renewal_arr_retained: m.renewal_arr_retained,
        renewal_arr_booked: m.renewal_arr_booked,
        net_arr_renewal_rate: m.net_arr_renewal_rate,
    }
}
