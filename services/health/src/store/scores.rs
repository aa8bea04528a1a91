//! Scorecards (versioned), current scores, measure snapshots and history.

use banso_kit::{Error, Result, idempotency};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, TransactionTrait, Value,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{Store, build};
use crate::domain::{
    score::{Band, Contribution},
    scorecard::ScorecardDef,
};

const OP_CREATE_SCORECARD: &str = "CreateScorecard";

pub(crate) fn json(v: &impl serde::Serialize) -> Expr {
    Expr::val(Value::Json(Some(Box::new(serde_json::to_value(v).expect("serializes")))))
}

/// A stored scorecard version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScorecard {
    pub id: Uuid,
    pub version: i64,
    pub def: ScorecardDef,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// An account's stored health.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHealth {
    pub account_id: Uuid,
    pub score: f64,
    pub band: Band,
    pub scorecard_id: Uuid,
    pub scorecard_version: i64,
    pub contributions: Vec<Contribution>,
    pub compute_time: DateTime<Utc>,
    /// Change since the latest daily score 7 (30) days before the compute day.
    pub change_7d: Option<f64>,
    pub change_30d: Option<f64>,
}

const HEALTH_COLUMNS: [&str; 10] = [
    "account_id",
    "score",
    "band",
    "scorecard_id",
    "scorecard_version",
    "contributions",
    "compute_time",
    "change_7d",
    "change_30d",
    "read_micros",
];

/// `SELECT <health columns> FROM account_health AS h`.
pub(crate) fn health_select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns(HEALTH_COLUMNS.map(|c| (Alias::new("h"), Alias::new(c))))
        .from_as(Alias::new("account_health"), Alias::new("h"))
        .to_owned()
}

pub(crate) fn health_from(r: &sea_orm::QueryResult) -> Result<StoredHealth> {
    let band: String = r.try_get("", "band")?;
    let contributions: serde_json::Value = r.try_get("", "contributions")?;
    Ok(StoredHealth {
        account_id: r.try_get("", "account_id")?,
        score: r.try_get("", "score")?,
        band: Band::parse(&band).ok_or_else(|| Error::internal(anyhow::anyhow!("stored band {band:?}")))?,
        scorecard_id: r.try_get("", "scorecard_id")?,
        scorecard_version: r.try_get("", "scorecard_version")?,
        contributions: serde_json::from_value(contributions)
            .map_err(|e| Error::internal(anyhow::anyhow!("stored contributions: {e}")))?,
        compute_time: r.try_get("", "compute_time")?,
        change_7d: r.try_get("", "change_7d")?,
        change_30d: r.try_get("", "change_30d")?,
    })
}

fn scorecard_from(r: &sea_orm::QueryResult) -> Result<StoredScorecard> {
    let def: serde_json::Value = r.try_get("", "definition")?;
    Ok(StoredScorecard {
        id: r.try_get("", "id")?,
        version: r.try_get("", "version")?,
        def: serde_json::from_value(def).map_err(|e| Error::internal(anyhow::anyhow!("stored scorecard: {e}")))?,
        create_time: r.try_get("", "create_time")?,
        update_time: r.try_get("", "update_time")?,
    })
}

impl Store {
    pub async fn get_scorecard(&self, tenant: &str, id: Uuid, version: Option<i64>) -> Result<StoredScorecard> {
        let current = Query::select()
            .columns(["id", "version", "definition", "create_time", "update_time"].map(Alias::new))
            .from(Alias::new("scorecards"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        let row = self.db.query_one_raw(build(&self.db, &current)).await?;
        let mut card = scorecard_from(&row.ok_or_else(|| Error::not_found("scorecard", id.to_string()))?)?;
        if let Some(v) = version.filter(|v| *v != card.version) {
            let q = Query::select()
                .columns(["definition", "create_time"].map(Alias::new))
                .from(Alias::new("scorecard_versions"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("id")).eq(id))
                .and_where(Expr::col(Alias::new("version")).eq(v))
                .to_owned();
            let r = self
                .db
                .query_one_raw(build(&self.db, &q))
                .await?
                .ok_or_else(|| Error::not_found("scorecard version", format!("{id} v{v}")))?;
            let def: serde_json::Value = r.try_get("", "definition")?;
            card.def =
                serde_json::from_value(def).map_err(|e| Error::internal(anyhow::anyhow!("stored scorecard: {e}")))?;
            card.version = v;
            card.update_time = r.try_get("", "create_time")?;
        }
        Ok(card)
    }

    /// Current versions, oldest first, after `after`.
    pub async fn list_scorecards(&self, tenant: &str, after: Option<Uuid>, limit: u64) -> Result<Vec<StoredScorecard>> {
        let mut q = Query::select();
        q.columns(["id", "version", "definition", "create_time", "update_time"].map(Alias::new))
            .from(Alias::new("scorecards"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant));
        if let Some(a) = after {
            q.and_where(Expr::col(Alias::new("id")).gt(a));
        }
        q.order_by(Alias::new("id"), sea_orm::Order::Asc).limit(limit);
        self.db.query_all_raw(build(&self.db, &q)).await?.iter().map(scorecard_from).collect()
    }

    async fn insert_version(&self, conn: &impl ConnectionTrait, tenant: &str, c: &StoredScorecard) -> Result<()> {
        let q = Query::insert()
            .into_table(Alias::new("scorecard_versions"))
            .columns(["id", "version", "tenant_id", "definition", "create_time"].map(Alias::new))
            .values_panic([c.id.into(), c.version.into(), tenant.into(), json(&c.def), c.update_time.into()])
            .to_owned();
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    pub async fn create_scorecard(
        &self,
        tenant: &str,
        def: ScorecardDef,
        request_id: Option<&str>,
    ) -> Result<StoredScorecard> {
        if let Some(key) = request_id
            && let Some(id) = idempotency::lookup(&self.db, tenant, OP_CREATE_SCORECARD, key).await?
        {
            return self.get_scorecard(tenant, Uuid::parse_str(&id).map_err(Error::internal)?, None).await;
        }
        let now = Utc::now();
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).expect("in range");
        let card = StoredScorecard { id: Uuid::now_v7(), version: 1, def, create_time: now, update_time: now };
        let txn = self.db.begin().await?;
        let q = Query::insert()
            .into_table(Alias::new("scorecards"))
            .columns(["id", "tenant_id", "version", "definition", "create_time", "update_time"].map(Alias::new))
            .values_panic([card.id.into(), tenant.into(), 1i64.into(), json(&card.def), now.into(), now.into()])
            .to_owned();
        txn.execute_raw(build(&txn, &q)).await?;
        self.insert_version(&txn, tenant, &card).await?;
        if let Some(key) = request_id
            && let Err(e) = idempotency::record(&txn, tenant, OP_CREATE_SCORECARD, key, &card.id.to_string()).await
        {
            txn.rollback().await?;
            return match (e, idempotency::lookup(&self.db, tenant, OP_CREATE_SCORECARD, key).await?) {
                (Error::AlreadyExists(_), Some(id)) => {
                    self.get_scorecard(tenant, Uuid::parse_str(&id).map_err(Error::internal)?, None).await
                }
                (e, _) => Err(e),
            };
        }
        txn.commit().await?;
        Ok(card)
    }

    /// Writes `def` as the next version if the current one is `expected`.
    pub async fn update_scorecard(
        &self,
        tenant: &str,
        current: &StoredScorecard,
        def: ScorecardDef,
    ) -> Result<StoredScorecard> {
        let now = Utc::now();
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).expect("in range");
        let next = StoredScorecard { version: current.version + 1, def, update_time: now, ..current.clone() };
        let txn = self.db.begin().await?;
        let q = Query::update()
            .table(Alias::new("scorecards"))
            .value(Alias::new("version"), next.version)
            .value(Alias::new("definition"), json(&next.def))
            .value(Alias::new("update_time"), now)
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("id")).eq(current.id))
            .and_where(Expr::col(Alias::new("version")).eq(current.version))
            .to_owned();
        let res = txn.execute_raw(build(&txn, &q)).await?;
        if res.rows_affected() == 0 {
            txn.rollback().await?;
            return Err(Error::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!("scorecard {} changed meanwhile; read it again and retry", current.id),
            });
        }
        self.insert_version(&txn, tenant, &next).await?;
        txn.commit().await?;
        Ok(next)
    }

    /// Every current scorecard of the tenant.
    pub async fn scorecards(&self, tenant: &str) -> Result<Vec<StoredScorecard>> {
        self.list_scorecards(tenant, None, u64::MAX >> 1).await
    }

    /// Distinct event names the tenant used in the last 90 days (the
    /// denominator of feature breadth).
    pub async fn tracked_event_names(&self, tenant: &str, since: NaiveDate) -> Result<usize> {
        let q = Query::select()
            .expr(Expr::cust("COUNT(DISTINCT event_name) AS n"))
            .from(Alias::new("event_name_days"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("day")).gte(since))
            .to_owned();
        let r = self.db.query_one_raw(build(&self.db, &q)).await?;
        Ok(r.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) as usize)
    }

    /// The tenant's latest values of `measure`, sorted (percentile population).
    pub async fn population(&self, tenant: &str, measure: &str) -> Result<Vec<f64>> {
        let q = Query::select()
            .column(Alias::new("value"))
            .from(Alias::new("measure_snapshots"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("measure")).eq(measure))
            .to_owned();
        let mut v: Vec<f64> = self
            .db
            .query_all_raw(build(&self.db, &q))
            .await?
            .iter()
            .map(|r| r.try_get::<f64>("", "value"))
            .collect::<std::result::Result<_, _>>()?;
        v.sort_by(f64::total_cmp);
        Ok(v)
    }

    pub async fn account_health(&self, tenant: &str, account: Uuid) -> Result<Option<StoredHealth>> {
        Ok(self.health_of(tenant, &[account]).await?.remove(&account))
    }
}
