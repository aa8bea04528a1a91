//! Portfolio views: scored accounts filtered and ordered, the distribution
//! over bands, an account's history.

use banso_cel::Expression;
use banso_kit::{Error, Result, auth::Caller, paging::QueryKey};
use chrono::{Days, NaiveDate, Utc};
use uuid::Uuid;

use super::{App, PageRequest};
use crate::{
    domain::{
        account::AccountRow,
        portfolio::{Conditions, Distribution, distribution},
        rollup::day_of,
    },
    store::{
        self,
        health::StoredHealth,
        history::HistoryPoint,
        portfolio::{ColumnFilter, HealthOrder},
    },
};

/// How far back GetHealthHistory looks without a start day.
const DEFAULT_HISTORY_DAYS: u64 = 90;

/// Which accounts a portfolio view covers.
#[derive(Debug, Clone, Default)]
pub(crate) struct PortfolioFilter {
    pub columns: ColumnFilter,
    pub segment_id: Option<Uuid>,
    pub condition: Option<Expression>,
}

impl PortfolioFilter {
    /// What a page token is bound to.
    fn query_part(&self) -> String {
        format!(
            "{:?}|{:?}|{}",
            self.columns,
            self.segment_id,
            self.condition.as_ref().map(|c| c.source()).unwrap_or_default()
        )
    }
}

/// ListAccountHealth.
#[derive(Debug, Clone)]
pub(crate) struct ListHealth {
    pub filter: PortfolioFilter,
    pub order: HealthOrder,
    pub page: PageRequest,
    pub skip_contributions: bool,
}

/// GetHealthHistory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistoryQuery {
    pub account: Uuid,
    /// Default: `DEFAULT_HISTORY_DAYS` before the end.
    pub start: Option<NaiveDate>,
    /// Default: today, in the tenant's time zone.
    pub end: Option<NaiveDate>,
    pub band_changes_only: bool,
    pub page: PageRequest,
}

impl App {
    /// The CEL parts of a filter, the segment's expression taken from the
    /// projection: NOT_FOUND for a segment Health has not heard of.
    async fn conditions(&self, tenant: &str, filter: PortfolioFilter) -> Result<(ColumnFilter, Conditions)> {
        let segment = match filter.segment_id {
            None => None,
            Some(id) => {
                let src = store::segments::expression(self.db.conn(), tenant, id)
                    .await?
                    .ok_or_else(|| Error::not_found("segment", id.to_string()))?;
                // Saved expressions compiled then; one that no longer does (a
                // stricter CEL engine since) must be edited in Accounts.
                Some(Expression::compile(&src, &banso_cel::account_schema()).map_err(|e| {
                    Error::FailedPrecondition {
                        reason: "SEGMENT_EXPRESSION_INVALID",
                        message: format!("segment {id}'s expression no longer compiles ({e}); update the segment"),
                    }
                })?)
            }
        };
        Ok((filter.columns, Conditions { segment, condition: filter.condition }))
    }

    /// Scored live accounts passing the filter, in order, a page at a time.
    /// Columns filter in SQL; CEL conditions here, fetching on until the
    /// page is full (one more row tells whether another page exists).
    pub(crate) async fn list_account_health(
        &self,
        caller: &Caller,
        q: ListHealth,
    ) -> Result<(Vec<(AccountRow, StoredHealth)>, String)> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let key = QueryKey::new("ListAccountHealth", tenant)
            .part(q.filter.query_part())
            .part(format!("{:?}|{}", q.order, q.skip_contributions));
        let (columns, conditions) = self.conditions(tenant, q.filter).await?;
        let mut after: Option<(f64, Uuid)> = self.page_tokens.decode(&key, &q.page.token)?;
        let now = Utc::now();
        let today = day_of(now, store::tenants::time_zone(conn, tenant).await?);
        let size = q.page.size;
        let mut page: Vec<(AccountRow, StoredHealth)> = Vec::new();
        let batch = if conditions.is_empty() { size + 1 } else { (size + 1).max(500) };
        'fill: loop {
            let rows = store::portfolio::page(conn, tenant, &columns, q.order, after, batch).await?;
            let exhausted = (rows.len() as u64) < batch;
            for (row, h) in rows {
                after = Some((q.order.key(&h), row.account_id));
                if conditions.keep(&row, today, now) {
                    page.push((row, h));
                    if page.len() as u64 > size {
                        break 'fill;
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        let order = q.order;
        self.page_tokens.page(&key, page, size, |(row, h)| (order.key(h), row.account_id))
    }

    /// Accounts and ARR per band of the live accounts passing the filter,
    /// grouped by `group_by` (a valid attribute) when given.
    pub(crate) async fn get_health_distribution(
        &self,
        caller: &Caller,
        filter: PortfolioFilter,
        group_by: Option<String>,
    ) -> Result<Distribution> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let (columns, conditions) = self.conditions(tenant, filter).await?;
        let now = Utc::now();
        let today = day_of(now, store::tenants::time_zone(conn, tenant).await?);
        let rows = store::portfolio::all_accounts(conn, tenant, &columns).await?;
        let kept: Vec<_> = rows
            .iter()
            // Unscored accounts cannot pass a filter on the score.
            .filter(|(row, scored)| (scored.is_some() || !columns.on_health()) && conditions.keep(row, today, now))
            .map(|(row, scored)| (row, *scored))
            .collect();
        Ok(distribution(&kept, group_by.as_deref()))
    }

    /// An account's daily snapshots and band changes between two days,
    /// oldest first, a page at a time.
    pub(crate) async fn get_health_history(
        &self,
        caller: &Caller,
        q: HistoryQuery,
    ) -> Result<(Vec<HistoryPoint>, String)> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        if store::accounts::get_live(conn, tenant, q.account).await?.is_none() {
            return Err(Error::not_found("account", q.account.to_string()));
        }
        let end = match q.end {
            Some(e) => e,
            None => day_of(Utc::now(), store::tenants::time_zone(conn, tenant).await?),
        };
        let start =
            q.start.unwrap_or_else(|| end.checked_sub_days(Days::new(DEFAULT_HISTORY_DAYS)).unwrap_or(NaiveDate::MIN));
        if start > end {
            return Err(Error::invalid("start_day", format!("{start} is after end_day {end}")));
        }
        let key = QueryKey::new("GetHealthHistory", tenant)
            .part(q.account.as_bytes())
            .part(format!("{start}|{end}|{}", q.band_changes_only));
        let after: Option<(NaiveDate, Uuid)> = self.page_tokens.decode(&key, &q.page.token)?;
        let rows =
            store::history::page(conn, tenant, q.account, start, end, q.band_changes_only, after, q.page.size + 1)
                .await?;
        self.page_tokens.page(&key, rows, q.page.size, |p| (p.day, p.id))
    }
}
