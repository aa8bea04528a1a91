//! Portfolio reads: scored accounts with their projection, filtered in SQL
//! by what columns hold; CEL conditions are the caller's, on the rows.

use banso_kit::Result;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Expr, ExprTrait, Func, JoinType, Query, SelectStatement},
};
use uuid::Uuid;

use super::{
    accounts, all, get,
    health::{self, StoredHealth},
    schema::{AccountHealth as H, Accounts as A},
};
use crate::domain::{
    account::{AccountRow, LifecycleStage, TouchModel},
    score::Band,
};

/// Filters that columns answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ColumnFilter {
    pub bands: Vec<Band>,
    pub scorecard_id: Option<Uuid>,
    pub lifecycle_stages: Vec<LifecycleStage>,
    pub touch_models: Vec<TouchModel>,
    pub owner_id: Option<String>,
}

impl ColumnFilter {
    /// Whether it filters on the score itself (unscored accounts cannot pass).
    pub(crate) fn on_health(&self) -> bool {
        !self.bands.is_empty() || self.scorecard_id.is_some()
    }

    fn apply(&self, q: &mut SelectStatement) {
        if !self.bands.is_empty() {
            q.and_where(Expr::col((H::Table, H::Band)).is_in(self.bands.iter().map(|b| b.as_str())));
        }
        if let Some(id) = self.scorecard_id {
            q.and_where(Expr::col((H::Table, H::ScorecardId)).eq(id));
        }
        if !self.lifecycle_stages.is_empty() {
            q.and_where(
                Expr::col((A::Table, A::LifecycleStage)).is_in(self.lifecycle_stages.iter().map(|s| s.as_str())),
            );
        }
        if !self.touch_models.is_empty() {
            q.and_where(Expr::col((A::Table, A::TouchModel)).is_in(self.touch_models.iter().map(|t| t.as_str())));
        }
        if let Some(owner) = &self.owner_id {
            q.and_where(Expr::col((A::Table, A::OwnerId)).eq(owner.as_str()));
        }
    }
}

/// The orders of ListAccountHealth; ties by account id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HealthOrder {
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

    /// The sort key in SQL.
    fn key_expr(self) -> Expr {
        let last = if self.ascending() { NO_TREND } else { -NO_TREND };
        match self {
            HealthOrder::ScoreAsc | HealthOrder::ScoreDesc => Expr::col((H::Table, H::Score)),
            HealthOrder::Change7dAsc | HealthOrder::Change7dDesc => {
                Func::coalesce([Expr::col((H::Table, H::Change7d)), Expr::val(last)]).into()
            }
            HealthOrder::Change30dAsc | HealthOrder::Change30dDesc => {
                Func::coalesce([Expr::col((H::Table, H::Change30d)), Expr::val(last)]).into()
            }
        }
    }

    /// The sort key of a stored health.
    pub(crate) fn key(self, h: &StoredHealth) -> f64 {
        let last = if self.ascending() { NO_TREND } else { -NO_TREND };
        match self {
            HealthOrder::ScoreAsc | HealthOrder::ScoreDesc => h.score,
            HealthOrder::Change7dAsc | HealthOrder::Change7dDesc => h.change_7d.unwrap_or(last),
            HealthOrder::Change30dAsc | HealthOrder::Change30dDesc => h.change_30d.unwrap_or(last),
        }
    }
}

/// Scored live accounts passing `filter`, in `order`, after the keyset
/// cursor (sort key, account id).
pub(crate) async fn page(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &ColumnFilter,
    order: HealthOrder,
    after: Option<(f64, Uuid)>,
    limit: u64,
) -> Result<Vec<(AccountRow, StoredHealth)>> {
    let mut q = health::select();
    q.columns(A::ROW.into_iter().filter(|c| *c != A::AccountId).map(|c| (A::Table, c))).join(
        JoinType::InnerJoin,
        A::Table,
        Expr::col((A::Table, A::AccountId)).equals((H::Table, H::AccountId)),
    );
    q.and_where(Expr::col((H::Table, H::TenantId)).eq(tenant)).and_where(Expr::col((A::Table, A::Deleted)).eq(false));
    filter.apply(&mut q);
    let key = order.key_expr();
    let id = || Expr::col((H::Table, H::AccountId));
    if let Some((k, last)) = after {
        let beyond = if order.ascending() { key.clone().gt(k) } else { key.clone().lt(k) };
        q.and_where(beyond.or(key.clone().eq(k).and(id().gt(last))));
    }
    let dir = if order.ascending() { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    q.order_by_expr(key, dir).order_by_expr(id(), sea_orm::Order::Asc).limit(limit);
    all(conn, &q).await?.iter().map(|r| Ok((accounts::from_row(r)?, health::from_row(r)?))).collect()
}

/// Every live account passing `filter` with its score and band (absent for
/// accounts not scored).
pub(crate) async fn all_accounts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &ColumnFilter,
) -> Result<Vec<(AccountRow, Option<(f64, Band)>)>> {
    let mut q = Query::select();
    q.columns(A::ROW.map(|c| (A::Table, c)))
        .columns([H::Score, H::Band].map(|c| (H::Table, c)))
        .from(A::Table)
        .join(JoinType::LeftJoin, H::Table, Expr::col((H::Table, H::AccountId)).equals((A::Table, A::AccountId)))
        .and_where(Expr::col((A::Table, A::TenantId)).eq(tenant))
        .and_where(Expr::col((A::Table, A::Deleted)).eq(false));
    filter.apply(&mut q);
    let mut out = Vec::new();
    for r in all(conn, &q).await? {
        let score: Option<f64> = get(&r, H::Score)?;
        let band: Option<String> = get(&r, H::Band)?;
        let scored = match (score, band.as_deref().and_then(Band::parse)) {
            (Some(s), Some(b)) => Some((s, b)),
            _ => None,
        };
        out.push((accounts::from_row(&r)?, scored));
    }
    Ok(out)
}
