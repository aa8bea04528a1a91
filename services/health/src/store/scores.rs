//! Scorecards (versioned), current scores, measure snapshots and history.

use std::collections::HashMap;

use banso_events::Payload;
use banso_kit::{Error, Result, idempotency};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, TransactionTrait, Value,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{Store, build};
use crate::domain::{
    score::{Band, Contribution, Score},
    scorecard::ScorecardDef,
};

const OP_CREATE_SCORECARD: &str = "CreateScorecard";

fn json(v: &impl serde::Serialize) -> Expr {
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
    pub score: f64,
    pub band: Band,
    pub scorecard_id: Uuid,
    pub scorecard_version: i64,
    pub contributions: Vec<Contribution>,
    pub compute_time: DateTime<Utc>,
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

    /// The live accounts of a tenant.
    pub async fn account_ids(&self, tenant: &str) -> Result<Vec<Uuid>> {
        let q = Query::select()
            .column(Alias::new("account_id"))
            .from(Alias::new("accounts"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("deleted")).eq(false))
            .to_owned();
        self.db.query_all_raw(build(&self.db, &q)).await?.iter().map(|r| Ok(r.try_get("", "account_id")?)).collect()
    }

    /// Distinct event names the tenant used in the last 90 days (the
    /// denominator of feature breadth).
    pub async fn tracked_event_names(&self, tenant: &str, since: NaiveDate) -> Result<usize> {
        let q = Query::select()
            .expr(Expr::cust("COUNT(DISTINCT event_name) AS n"))
            .from(Alias::new("daily_usage"))
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

    pub async fn save_snapshots(
        &self,
        tenant: &str,
        account: Uuid,
        values: &HashMap<String, Option<f64>>,
    ) -> Result<()> {
        let txn = self.db.begin().await?;
        for (measure, value) in values {
            let stmt = match value {
                Some(v) => build(
                    &txn,
                    &Query::insert()
                        .into_table(Alias::new("measure_snapshots"))
                        .columns(["tenant_id", "measure", "account_id", "value"].map(Alias::new))
                        .values_panic([tenant.into(), measure.as_str().into(), account.into(), (*v).into()])
                        .on_conflict(
                            OnConflict::columns(["tenant_id", "measure", "account_id"].map(Alias::new))
                                .update_column(Alias::new("value"))
                                .to_owned(),
                        )
                        .to_owned(),
                ),
                None => build(
                    &txn,
                    &Query::delete()
                        .from_table(Alias::new("measure_snapshots"))
                        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                        .and_where(Expr::col(Alias::new("measure")).eq(measure.as_str()))
                        .and_where(Expr::col(Alias::new("account_id")).eq(account))
                        .to_owned(),
                ),
            };
            txn.execute_raw(stmt).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn account_health(&self, tenant: &str, account: Uuid) -> Result<Option<StoredHealth>> {
        let q = Query::select()
            .columns(
                ["score", "band", "scorecard_id", "scorecard_version", "contributions", "compute_time"].map(Alias::new),
            )
            .from(Alias::new("account_health"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("account_id")).eq(account))
            .to_owned();
        let Some(r) = self.db.query_one_raw(build(&self.db, &q)).await? else { return Ok(None) };
        let band: String = r.try_get("", "band")?;
        let contributions: serde_json::Value = r.try_get("", "contributions")?;
        Ok(Some(StoredHealth {
            score: r.try_get("", "score")?,
            band: Band::parse(&band).ok_or_else(|| Error::internal(anyhow::anyhow!("stored band {band:?}")))?,
            scorecard_id: r.try_get("", "scorecard_id")?,
            scorecard_version: r.try_get("", "scorecard_version")?,
            contributions: serde_json::from_value(contributions)
                .map_err(|e| Error::internal(anyhow::anyhow!("stored contributions: {e}")))?,
            compute_time: r.try_get("", "compute_time")?,
        }))
    }

    /// The daily snapshots of an account since `since`: (day, score).
    pub async fn daily_scores(&self, tenant: &str, account: Uuid, since: NaiveDate) -> Result<Vec<(NaiveDate, f64)>> {
        let q = Query::select()
            .columns(["day", "score"].map(Alias::new))
            .from(Alias::new("health_history"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("account_id")).eq(account))
            .and_where(Expr::col(Alias::new("kind")).eq("daily"))
            .and_where(Expr::col(Alias::new("day")).gte(since))
            .order_by(Alias::new("day"), sea_orm::Order::Asc)
            .to_owned();
        self.db
            .query_all_raw(build(&self.db, &q))
            .await?
            .iter()
            .map(|r| Ok((r.try_get("", "day")?, r.try_get("", "score")?)))
            .collect()
    }

    /// Stores a new score: the current row, today's daily snapshot, a
    /// history row on a band change, and (if it moved) HealthScoreChanged
    /// through the outbox, all in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_score(
        &self,
        tenant: &str,
        account: Uuid,
        today: NaiveDate,
        score: &Score,
        scorecard: &StoredScorecard,
        previous: Option<&StoredHealth>,
        event: Option<Payload>,
    ) -> Result<()> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let upsert = Query::insert()
            .into_table(Alias::new("account_health"))
            .columns(
                [
                    "account_id",
                    "tenant_id",
                    "score",
                    "band",
                    "scorecard_id",
                    "scorecard_version",
                    "contributions",
                    "compute_time",
                ]
                .map(Alias::new),
            )
            .values_panic([
                account.into(),
                tenant.into(),
                score.score.into(),
                score.band.as_str().into(),
                scorecard.id.into(),
                scorecard.version.into(),
                json(&score.contributions),
                now.into(),
            ])
            .on_conflict(
                OnConflict::column(Alias::new("account_id"))
                    .update_columns(
                        ["score", "band", "scorecard_id", "scorecard_version", "contributions", "compute_time"]
                            .map(Alias::new),
                    )
                    .to_owned(),
            )
            .to_owned();
        txn.execute_raw(build(&txn, &upsert)).await?;
        // Today's snapshot: replace the day's row.
        let delete_today = Query::delete()
            .from_table(Alias::new("health_history"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("account_id")).eq(account))
            .and_where(Expr::col(Alias::new("day")).eq(today))
            .and_where(Expr::col(Alias::new("kind")).eq("daily"))
            .to_owned();
        txn.execute_raw(build(&txn, &delete_today)).await?;
        let mut kinds = vec!["daily"];
        if previous.is_some_and(|p| p.band != score.band) {
            kinds.push("band_change");
        }
        for kind in kinds {
            let q = Query::insert()
                .into_table(Alias::new("health_history"))
                .columns(
                    ["id", "tenant_id", "account_id", "day", "kind", "score", "band", "record_time"].map(Alias::new),
                )
                .values_panic([
                    Uuid::now_v7().into(),
                    tenant.into(),
                    account.into(),
                    today.into(),
                    kind.into(),
                    score.score.into(),
                    score.band.as_str().into(),
                    now.into(),
                ])
                .to_owned();
            txn.execute_raw(build(&txn, &q)).await?;
        }
        if let Some(payload) = event {
            banso_events::outbox::record(&txn, &banso_events::envelope::new(tenant, crate::NAME, payload)).await?;
        }
        txn.commit().await?;
        self.outbox.notify();
        Ok(())
    }
}
