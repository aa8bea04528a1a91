//! Portfolio views on the wire: filters, orders and pages parsed; lists,
//! distributions and histories into replies.

use banso_cel::Expression;
use banso_kit::{Error, Result, Violations, paging, shown, wire};
use banso_proto::{health as pb, types as tpb};

use super::convert::{band_from_proto, band_to_proto};
use crate::domain::account::{LifecycleStage, TouchModel};
use crate::{
    app::{
        PageRequest,
        portfolio::{HistoryQuery, ListHealth, PortfolioFilter},
    },
    domain::{
        account::{AccountRow, GROUP_BY, valid_group_by},
        portfolio::{Distribution, Totals},
        score::Band,
    },
    store::{
        health::StoredHealth,
        history::{HistoryPoint, Kind},
        portfolio::{ColumnFilter, HealthOrder},
    },
};

/// Each value of a repeated enum field, or a violation naming it; sorted,
/// each once.
fn each<T: Ord>(
    v: &mut Violations,
    field: &str,
    values: &[i32],
    parse: impl Fn(i32) -> Option<T>,
    expected: impl Fn() -> String,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, raw) in values.iter().enumerate() {
        match parse(*raw) {
            Some(x) => out.push(x),
            None => v.add(format!("{field}[{i}]"), format!("{raw} is not one of {}", expected())),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every field of a filter, each bad one named under `filter.`.
fn filter(v: &mut Violations, f: Option<&pb::AccountHealthFilter>) -> PortfolioFilter {
    let Some(f) = f else { return PortfolioFilter::default() };
    let bands: Vec<Band> =
        each(v, "filter.bands", &f.bands, band_from_proto, || "BAND_RED, BAND_YELLOW, BAND_GREEN".to_owned());
    let scorecard_id = v.take(wire::optional_uuid("filter.scorecard_id", &f.scorecard_id)).flatten();
    let segment_id = v.take(wire::optional_uuid("filter.segment_id", &f.segment_id)).flatten();
    let owner_id = f.owner_id.trim();
    wire::text(v, "filter.owner_id", owner_id, 128);
    let condition = match f.condition.trim() {
        "" => None,
        src => match Expression::compile(src, &banso_cel::account_schema()) {
            Ok(e) => Some(e),
            Err(e) => {
                v.add("filter.condition", e.to_string());
                None
            }
        },
    };
    PortfolioFilter {
        columns: ColumnFilter {
            bands,
            scorecard_id,
            lifecycle_stages: each(
                v,
                "filter.lifecycle_stages",
                &f.lifecycle_stages,
                LifecycleStage::from_proto,
                LifecycleStage::wire_names,
            ),
            touch_models: each(
                v,
                "filter.touch_models",
                &f.touch_models,
                TouchModel::from_proto,
                TouchModel::wire_names,
            ),
            owner_id: (!owner_id.is_empty()).then(|| owner_id.to_owned()),
        },
        segment_id,
        condition,
    }
}

fn order(v: &mut Violations, o: i32) -> Option<HealthOrder> {
    use pb::AccountHealthOrder as O;
    match O::try_from(o) {
        Ok(O::Unspecified | O::ScoreAsc) => Some(HealthOrder::ScoreAsc),
        Ok(O::ScoreDesc) => Some(HealthOrder::ScoreDesc),
        Ok(O::Change7dAsc) => Some(HealthOrder::Change7dAsc),
        Ok(O::Change7dDesc) => Some(HealthOrder::Change7dDesc),
        Ok(O::Change30dAsc) => Some(HealthOrder::Change30dAsc),
        Ok(O::Change30dDesc) => Some(HealthOrder::Change30dDesc),
        Err(_) => {
            v.add("order_by", format!("{o} is not an AccountHealthOrder"));
            None
        }
    }
}

pub(crate) fn list(r: pb::ListAccountHealthRequest) -> Result<ListHealth> {
    let mut v = Violations::new();
    let filter = filter(&mut v, r.filter.as_ref());
    let order = order(&mut v, r.order_by);
    let size = v.take(paging::page_size(r.page_size));
    let (order, size) = v.finish_with((order, size))?;
    Ok(ListHealth {
        filter,
        order,
        page: PageRequest { size, token: r.page_token },
        skip_contributions: r.skip_contributions,
    })
}

pub(crate) fn list_to_proto(
    (rows, next_page_token): (Vec<(AccountRow, StoredHealth)>, String),
    skip_contributions: bool,
) -> pb::ListAccountHealthResponse {
    pb::ListAccountHealthResponse {
        accounts: rows.iter().map(|(row, h)| super::scores::to_proto(row, h, !skip_contributions)).collect(),
        next_page_token,
    }
}

pub(crate) fn distribution(r: pb::GetHealthDistributionRequest) -> Result<(PortfolioFilter, Option<String>)> {
    let mut v = Violations::new();
    let filter = filter(&mut v, r.filter.as_ref());
    let group_by = r.group_by.trim();
    if !group_by.is_empty() && !valid_group_by(group_by) {
        v.add(
            "group_by",
            format!(
                "{} is not an account attribute; use one of {} or attributes.<key>",
                shown(group_by),
                GROUP_BY.join(", ")
            ),
        );
    }
    v.finish()?;
    Ok((filter, (!group_by.is_empty()).then(|| group_by.to_owned())))
}

/// A band's ARR total as Money; FAILED_PRECONDITION `AMOUNT_OUT_OF_RANGE`
/// when the sum outgrows int64 (as the retention metrics answer).
fn money(band: Band, currency: &str, amount: i128) -> Result<tpb::Money> {
    let amount_minor = i64::try_from(amount).map_err(|_| Error::FailedPrecondition {
        reason: "AMOUNT_OUT_OF_RANGE",
        message: format!("the ARR of the {band:?} accounts in {currency} sums to {amount}, more than an int64 holds"),
    })?;
    Ok(tpb::Money { currency_code: currency.to_owned(), amount_minor })
}

fn bands_to_proto(t: &Totals) -> Result<Vec<pb::BandTotal>> {
    Band::ALL
        .iter()
        .zip(&t.bands)
        .map(|(b, bt)| {
            Ok(pb::BandTotal {
                band: band_to_proto(*b) as i32,
                accounts: bt.accounts,
                arr: bt.arr.iter().map(|(c, a)| money(*b, c, *a)).collect::<Result<_>>()?,
            })
        })
        .collect()
}

pub(crate) fn distribution_to_proto(d: &Distribution) -> Result<pb::GetHealthDistributionResponse> {
    Ok(pb::GetHealthDistributionResponse {
        overall: bands_to_proto(&d.overall)?,
        groups: d
            .groups
            .iter()
            .map(|(value, t)| {
                Ok(pb::HealthGroup {
                    value: value.clone(),
                    bands: bands_to_proto(t)?,
                    accounts: t.accounts,
                    mean_score: t.mean(),
                })
            })
            .collect::<Result<_>>()?,
        accounts: d.overall.accounts,
        unscored_accounts: d.unscored,
        mean_score: d.overall.mean(),
    })
}

pub(crate) fn history(r: pb::GetHealthHistoryRequest) -> Result<HistoryQuery> {
    let mut v = Violations::new();
    let account = v.take(wire::uuid("account_id", &r.account_id));
    let start = wire::optional_date(&mut v, "start_day", r.start_day.as_ref());
    let end = wire::optional_date(&mut v, "end_day", r.end_day.as_ref());
    let size = v.take(paging::page_size(r.page_size));
    let (account, size) = v.finish_with((account, size))?;
    Ok(HistoryQuery {
        account,
        start,
        end,
        band_changes_only: r.band_changes_only,
        page: PageRequest { size, token: r.page_token },
    })
}

pub(crate) fn history_to_proto((points, next_page_token): (Vec<HistoryPoint>, String)) -> pb::GetHealthHistoryResponse {
    pb::GetHealthHistoryResponse {
        points: points
            .iter()
            .map(|p| pb::HealthPoint {
                day: Some(wire::date_to_proto(p.day)),
                kind: match p.kind {
                    Kind::Daily => pb::HealthPointKind::Daily,
                    Kind::BandChange => pb::HealthPointKind::BandChange,
                } as i32,
                score: p.score,
                band: band_to_proto(p.band) as i32,
                record_time: Some(wire::timestamp(p.record_time)),
            })
            .collect(),
        next_page_token,
    }
}
