//! Portfolio reads: scored accounts with their projection, filtered in SQL
//! by what columns hold; CEL conditions are the caller's, on the rows.

use banso_kit::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, JoinType, Query, SelectStatement},
};
use uuid::Uuid;

use super::{ACCOUNT_COLUMNS, Store, account_from, build, scores::StoredHealth};
use crate::domain::{account::AccountRow, score::Band};

/// Filters that columns answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnFilter {
    pub bands: Vec<Band>,
    pub scorecard_id: Option<Uuid>,
    pub lifecycle_stages: Vec<String>,
    pub touch_models: Vec<String>,
    pub owner_id: Option<String>,
}

impl ColumnFilter {
    /// Whether it filters on the score itself (unscored accounts cannot pass).
    pub fn on_health(&self) -> bool {
        !self.bands.is_empty() || self.scorecard_id.is_some()
    }

    fn apply(&self, q: &mut SelectStatement) {
        let a = |c: &str| Expr::col((Alias::new("a"), Alias::new(c)));
        let h = |c: &str| Expr::col((Alias::new("h"), Alias::new(c)));
        if !self.bands.is_empty() {
            q.and_where(h("band").is_in(self.bands.iter().map(|b| b.as_str())));
        }
        if let Some(id) = self.scorecard_id {
            q.and_where(h("scorecard_id").eq(id));
        }
        if !self.lifecycle_stages.is_empty() {
            q.and_where(a("lifecycle_stage").is_in(self.lifecycle_stages.iter().map(String::as_str)));
        }
        if !self.touch_models.is_empty() {
            q.and_where(a("touch_model").is_in(self.touch_models.iter().map(String::as_str)));
        }
        if let Some(owner) = &self.owner_id {
            q.and_where(a("owner_id").eq(owner.as_str()));
        }
    }
}

/// The orders of ListAccountHealth; ties by account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthOrder {
    ScoreAsc,
    ScoreDesc,
    Change7dAsc,
    Change7dDesc,
    Change30dAsc,
    Change30dDesc,
}

/// Beyond any change (changes are within ±100): accounts without a trend
/// sort last either way.
const NO_TREND: f64 = 1.0e9;

impl HealthOrder {
    fn ascending(self) -> bool {
        matches!(self, HealthOrder::ScoreAsc | HealthOrder::Change7dAsc | HealthOrder::Change30dAsc)
    }

    /// The sort key as SQL, and its value for a stored health.
    fn key_sql(self) -> String {
        let last = if self.ascending() { NO_TREND } else { -NO_TREND };
        match self {
            HealthOrder::ScoreAsc | HealthOrder::ScoreDesc => "h.score".to_owned(),
            HealthOrder::Change7dAsc | HealthOrder::Change7dDesc => format!("COALESCE(h.change_7d, {last:.1})"),
            HealthOrder::Change30dAsc | HealthOrder::Change30dDesc => format!("COALESCE(h.change_30d, {last:.1})"),
        }
    }

    pub fn key(self, h: &StoredHealth) -> f64 {
        let last = if self.ascending() { NO_TREND } else { -NO_TREND };
        match self {
            HealthOrder::ScoreAsc | HealthOrder::ScoreDesc => h.score,
            HealthOrder::Change7dAsc | HealthOrder::Change7dDesc => h.change_7d.unwrap_or(last),
            HealthOrder::Change30dAsc | HealthOrder::Change30dDesc => h.change_30d.unwrap_or(last),
        }
    }
}

/// One point of an account's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    pub id: Uuid,
    pub day: NaiveDate,
    pub band_change: bool,
    pub score: f64,
    pub band: Band,
    pub record_time: DateTime<Utc>,
}

fn joined() -> SelectStatement {
    let mut q = super::scores::health_select();
    q.columns(ACCOUNT_COLUMNS.iter().skip(1).map(|c| (Alias::new("a"), Alias::new(*c)))).join_as(
        JoinType::InnerJoin,
        Alias::new("accounts"),
        Alias::new("a"),
        Expr::col((Alias::new("a"), Alias::new("account_id"))).equals((Alias::new("h"), Alias::new("account_id"))),
    );
    q
}

impl Store {
    /// Scored live accounts passing `filter`, in `order`, after the keyset
    /// cursor (sort key, account id).
    pub async fn health_page(
        &self,
        tenant: &str,
        filter: &ColumnFilter,
        order: HealthOrder,
        after: Option<(f64, Uuid)>,
        limit: u64,
    ) -> Result<Vec<(AccountRow, StoredHealth)>> {
        let mut q = joined();
        q.and_where(Expr::col((Alias::new("h"), Alias::new("tenant_id"))).eq(tenant))
            .and_where(Expr::col((Alias::new("a"), Alias::new("deleted"))).eq(false));
        filter.apply(&mut q);
        let key = order.key_sql();
        let id = || Expr::col((Alias::new("h"), Alias::new("account_id")));
        if let Some((k, last)) = after {
            let beyond = if order.ascending() { Expr::cust(key.clone()).gt(k) } else { Expr::cust(key.clone()).lt(k) };
            q.and_where(beyond.or(Expr::cust(key.clone()).eq(k).and(id().gt(last))));
        }
        let dir = if order.ascending() { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
        q.order_by_expr(Expr::cust(key), dir).order_by_expr(id(), sea_orm::Order::Asc).limit(limit);
        self.db
            .query_all_raw(build(&self.db, &q))
            .await?
            .iter()
            .map(|r| Ok((account_from(r)?, super::scores::health_from(r)?)))
            .collect()
    }

    /// Every live account passing `filter` with its score, band and ARR
    /// (scores absent for accounts not scored).
    pub async fn health_all(
        &self,
        tenant: &str,
        filter: &ColumnFilter,
    ) -> Result<Vec<(AccountRow, Option<(f64, Band)>)>> {
        let mut q = Query::select();
        q.columns(ACCOUNT_COLUMNS.map(|c| (Alias::new("a"), Alias::new(c))))
            .columns(["score", "band"].map(|c| (Alias::new("h"), Alias::new(c))))
            .from_as(Alias::new("accounts"), Alias::new("a"))
            .join_as(
                JoinType::LeftJoin,
                Alias::new("account_health"),
                Alias::new("h"),
                Expr::col((Alias::new("h"), Alias::new("account_id")))
                    .equals((Alias::new("a"), Alias::new("account_id"))),
            )
            .and_where(Expr::col((Alias::new("a"), Alias::new("tenant_id"))).eq(tenant))
            .and_where(Expr::col((Alias::new("a"), Alias::new("deleted"))).eq(false));
        filter.apply(&mut q);
        let mut out = Vec::new();
        for r in self.db.query_all_raw(build(&self.db, &q)).await? {
            let score: Option<f64> = r.try_get("", "score")?;
            let band: Option<String> = r.try_get("", "band")?;
            let scored = match (score, band.as_deref().and_then(Band::parse)) {
                (Some(s), Some(b)) => Some((s, b)),
                _ => None,
            };
            out.push((account_from(&r)?, scored));
        }
        Ok(out)
    }

    /// An account's history in [start, end], oldest first, after the cursor
    /// (day, id).
    #[allow(clippy::too_many_arguments)]
    pub async fn history(
        &self,
        tenant: &str,
        account: Uuid,
        start: NaiveDate,
        end: NaiveDate,
        band_changes_only: bool,
        after: Option<(NaiveDate, Uuid)>,
        limit: u64,
    ) -> Result<Vec<HistoryPoint>> {
        let col = |c: &str| Expr::col(Alias::new(c));
        let mut q = Query::select();
        q.columns(["id", "day", "kind", "score", "band", "record_time"].map(Alias::new))
            .from(Alias::new("health_history"))
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("account_id").eq(account))
            .and_where(col("day").gte(start))
            .and_where(col("day").lte(end));
        if band_changes_only {
            q.and_where(col("kind").eq("band_change"));
        }
        if let Some((day, id)) = after {
            q.and_where(col("day").gt(day).or(col("day").eq(day).and(col("id").gt(id))));
        }
        q.order_by(Alias::new("day"), sea_orm::Order::Asc).order_by(Alias::new("id"), sea_orm::Order::Asc).limit(limit);
        self.db
            .query_all_raw(build(&self.db, &q))
            .await?
            .iter()
            .map(|r| {
                let band: String = r.try_get("", "band")?;
                Ok(HistoryPoint {
                    id: r.try_get("", "id")?,
                    day: r.try_get("", "day")?,
                    band_change: r.try_get::<String>("", "kind")? == "band_change",
                    score: r.try_get("", "score")?,
                    band: Band::parse(&band)
                        .ok_or_else(|| banso_kit::Error::internal(anyhow::anyhow!("stored band {band:?}")))?,
                    record_time: r.try_get("", "record_time")?,
                })
            })
            .collect()
    }
}
