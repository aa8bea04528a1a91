//! Scoring inputs and outputs for many accounts at once: one query per kind
//! of input for a whole chunk of accounts, and one transaction for the
//! chunk's scores. Live rescoring and the recompute job both go through here.

use std::collections::HashMap;

use banso_events::Payload;
use banso_kit::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Func, OnConflict, Query},
};
use uuid::Uuid;

use super::{CHUNK, Store, build, scores::StoredHealth};
use crate::domain::score::{Band, Contribution};

/// One account's new score, as the scorer decided to store it.
#[derive(Debug, Clone)]
pub struct ScoreWrite {
    pub account_id: Uuid,
    pub score: f64,
    pub band: Band,
    pub contributions: Vec<Contribution>,
    pub scorecard_id: Uuid,
    pub scorecard_version: i64,
    pub change_7d: Option<f64>,
    pub change_30d: Option<f64>,
    /// A band change since the previous score: recorded in the history.
    pub band_changed: bool,
    /// HealthScoreChanged, when the score moved.
    pub event: Option<Payload>,
}

fn ids_in(db: &impl ConnectionTrait, col: &str, ids: &[Uuid]) -> sea_orm::sea_query::SimpleExpr {
    banso_kit::db::uuid_in(db, Expr::col(Alias::new(col)), ids)
}

impl Store {
    /// Daily usage of `ids` since `since`: (account, day, event name, events,
    /// quantity, duration seconds).
    #[allow(clippy::type_complexity)]
    pub async fn daily_usage_of(
        &self,
        tenant: &str,
        ids: &[Uuid],
        since: NaiveDate,
    ) -> Result<Vec<(Uuid, NaiveDate, String, i64, f64, f64)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let q = Query::select()
                .columns(["account_id", "day", "event_name", "events", "quantity", "duration_secs"].map(Alias::new))
                .from(Alias::new("daily_usage"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .and_where(Expr::col(Alias::new("day")).gte(since))
                .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.push((
                    r.try_get("", "account_id")?,
                    r.try_get("", "day")?,
                    r.try_get("", "event_name")?,
                    r.try_get("", "events")?,
                    r.try_get("", "quantity")?,
                    r.try_get("", "duration_secs")?,
                ));
            }
        }
        Ok(out)
    }

    /// Distinct users of `ids` per day and event name since `since`.
    pub async fn daily_users_of(
        &self,
        tenant: &str,
        ids: &[Uuid],
        since: NaiveDate,
    ) -> Result<Vec<(Uuid, NaiveDate, String, String)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let q = Query::select()
                .columns(["account_id", "day", "event_name", "user_key"].map(Alias::new))
                .from(Alias::new("daily_users"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .and_where(Expr::col(Alias::new("day")).gte(since))
                .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.push((
                    r.try_get("", "account_id")?,
                    r.try_get("", "day")?,
                    r.try_get("", "event_name")?,
                    r.try_get("", "user_key")?,
                ));
            }
        }
        Ok(out)
    }

    /// Pushed external measure values of `ids`: account → name → value.
    pub async fn measures_of(&self, tenant: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, HashMap<String, f64>>> {
        let mut out: HashMap<Uuid, HashMap<String, f64>> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let q = Query::select()
                .columns(["account_id", "measure", "value"].map(Alias::new))
                .from(Alias::new("measure_values"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.entry(r.try_get("", "account_id")?)
                    .or_default()
                    .insert(r.try_get("", "measure")?, r.try_get("", "value")?);
            }
        }
        Ok(out)
    }

    /// E-mails sent and replied per account of `ids` in [start, end).
    pub async fn email_counts_of(
        &self,
        tenant: &str,
        ids: &[Uuid],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, (i64, i64)>> {
        let mut out: HashMap<Uuid, (i64, i64)> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let q = Query::select()
                .columns(["account_id", "replied"].map(Alias::new))
                .expr_as(Func::count(Expr::col(Alias::new("activity_id"))), Alias::new("n"))
                .from(Alias::new("email_activities"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .and_where(Expr::col(Alias::new("occur_time")).gte(start))
                .and_where(Expr::col(Alias::new("occur_time")).lt(end))
                .group_by_columns(["account_id", "replied"].map(Alias::new))
                .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                let e = out.entry(r.try_get("", "account_id")?).or_default();
                let n: i64 = r.try_get("", "n")?;
                if r.try_get::<bool>("", "replied")? {
                    e.1 += n;
                } else {
                    e.0 += n;
                }
            }
        }
        Ok(out)
    }

    /// The stored health of `ids` (those scored).
    pub async fn health_of(&self, tenant: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, StoredHealth>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let mut q = super::scores::health_select();
            q.and_where(Expr::col((Alias::new("h"), Alias::new("tenant_id"))).eq(tenant)).and_where(
                banso_kit::db::uuid_in(&self.db, Expr::col((Alias::new("h"), Alias::new("account_id"))), chunk),
            );
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                let h = super::scores::health_from(&r)?;
                out.insert(h.account_id, h);
            }
        }
        Ok(out)
    }

    /// Per account of `ids`, its latest daily snapshot on or before `day`.
    pub async fn daily_score_on_or_before(
        &self,
        tenant: &str,
        ids: &[Uuid],
        day: NaiveDate,
    ) -> Result<HashMap<Uuid, (NaiveDate, f64)>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            // The newest day per account first, then that day's row.
            let latest = Query::select()
                .expr(Func::max(Expr::col((Alias::new("l"), Alias::new("day")))))
                .from_as(Alias::new("health_history"), Alias::new("l"))
                .and_where(Expr::col((Alias::new("l"), Alias::new("tenant_id"))).eq(tenant))
                .and_where(
                    Expr::col((Alias::new("l"), Alias::new("account_id")))
                        .equals((Alias::new("h"), Alias::new("account_id"))),
                )
                .and_where(Expr::col((Alias::new("l"), Alias::new("kind"))).eq("daily"))
                .and_where(Expr::col((Alias::new("l"), Alias::new("day"))).lte(day))
                .to_owned();
            let q =
                Query::select()
                    .columns(["account_id", "day", "score"].map(|c| (Alias::new("h"), Alias::new(c))))
                    .from_as(Alias::new("health_history"), Alias::new("h"))
                    .and_where(Expr::col((Alias::new("h"), Alias::new("tenant_id"))).eq(tenant))
                    .and_where(banso_kit::db::uuid_in(
                        &self.db,
                        Expr::col((Alias::new("h"), Alias::new("account_id"))),
                        chunk,
                    ))
                    .and_where(Expr::col((Alias::new("h"), Alias::new("kind"))).eq("daily"))
                    .and_where(Expr::col((Alias::new("h"), Alias::new("day"))).eq(Expr::SubQuery(
                        None,
                        Box::new(sea_orm::sea_query::SubQueryStatement::SelectStatement(latest)),
                    )))
                    .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.insert(r.try_get("", "account_id")?, (r.try_get("", "day")?, r.try_get("", "score")?));
            }
        }
        Ok(out)
    }

    /// Stores a chunk's measure values and scores in one transaction: the
    /// snapshots (the percentile population), then each score unless one
    /// computed from newer inputs is already stored (`read_time`); for the
    /// scores stored, today's daily snapshot, band changes and the
    /// HealthScoreChanged events. The current score of `unscored` accounts
    /// (no scorecard applies, or no measure has data) is removed, so no
    /// stale score outlives its scorecard; their history stays. Returns how
    /// many events were recorded.
    pub async fn save_scores(
        &self,
        tenant: &str,
        today: NaiveDate,
        read_time: DateTime<Utc>,
        snapshots: &[(Uuid, HashMap<String, Option<f64>>)],
        writes: &[ScoreWrite],
        unscored: &[Uuid],
    ) -> Result<u64> {
        let now = Utc::now();
        let read_micros = read_time.timestamp_micros();
        let txn = self.db.begin().await?;
        for chunk in unscored.chunks(CHUNK) {
            let q = Query::delete()
                .from_table(Alias::new("account_health"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .and_where(Expr::col(Alias::new("read_micros")).lte(read_micros))
                .to_owned();
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let accounts: Vec<Uuid> = snapshots.iter().map(|(a, _)| *a).collect();
        for chunk in accounts.chunks(CHUNK) {
            let q = Query::delete()
                .from_table(Alias::new("measure_snapshots"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .to_owned();
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let values: Vec<(Uuid, &str, f64)> = snapshots
            .iter()
            .flat_map(|(a, vs)| vs.iter().filter_map(move |(m, v)| v.map(|v| (*a, m.as_str(), v))))
            .collect();
        for chunk in values.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("measure_snapshots"))
                .columns(["tenant_id", "measure", "account_id", "value"].map(Alias::new));
            for (a, m, v) in chunk {
                q.values_panic([tenant.into(), (*m).into(), (*a).into(), (*v).into()]);
            }
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let mut stored: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
        for chunk in writes.chunks(CHUNK / 2) {
            let mut q = Query::insert();
            q.into_table(Alias::new("account_health")).columns(
                [
                    "account_id",
                    "tenant_id",
                    "score",
                    "band",
                    "scorecard_id",
                    "scorecard_version",
                    "contributions",
                    "compute_time",
                    "change_7d",
                    "change_30d",
                    "read_micros",
                ]
                .map(Alias::new),
            );
            for w in chunk {
                q.values_panic([
                    w.account_id.into(),
                    tenant.into(),
                    w.score.into(),
                    w.band.as_str().into(),
                    w.scorecard_id.into(),
                    w.scorecard_version.into(),
                    super::scores::json(&w.contributions),
                    read_time.into(),
                    w.change_7d.into(),
                    w.change_30d.into(),
                    read_micros.into(),
                ]);
            }
            q.on_conflict(
                OnConflict::column(Alias::new("account_id"))
                    .update_columns(
                        [
                            "score",
                            "band",
                            "scorecard_id",
                            "scorecard_version",
                            "contributions",
                            "compute_time",
                            "change_7d",
                            "change_30d",
                            "read_micros",
                        ]
                        .map(Alias::new),
                    )
                    .action_and_where(Expr::cust("account_health.read_micros <= excluded.read_micros"))
                    .to_owned(),
            )
            .returning_col(Alias::new("account_id"));
            for r in txn.query_all_raw(build(&txn, &q)).await? {
                stored.insert(r.try_get("", "account_id")?);
            }
        }
        let applied: Vec<&ScoreWrite> = writes.iter().filter(|w| stored.contains(&w.account_id)).collect();
        let ids: Vec<Uuid> = applied.iter().map(|w| w.account_id).collect();
        for chunk in ids.chunks(CHUNK) {
            // Today's snapshot: the day's latest score replaces the earlier one.
            let q = Query::delete()
                .from_table(Alias::new("health_history"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(ids_in(&self.db, "account_id", chunk))
                .and_where(Expr::col(Alias::new("day")).eq(today))
                .and_where(Expr::col(Alias::new("kind")).eq("daily"))
                .to_owned();
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let rows: Vec<(&ScoreWrite, &str)> = applied
            .iter()
            .flat_map(|w| std::iter::once((*w, "daily")).chain(w.band_changed.then_some((*w, "band_change"))))
            .collect();
        for chunk in rows.chunks(CHUNK / 2) {
            let mut q = Query::insert();
            q.into_table(Alias::new("health_history")).columns(
                ["id", "tenant_id", "account_id", "day", "kind", "score", "band", "record_time"].map(Alias::new),
            );
            for (w, kind) in chunk {
                q.values_panic([
                    Uuid::now_v7().into(),
                    tenant.into(),
                    w.account_id.into(),
                    today.into(),
                    (*kind).into(),
                    w.score.into(),
                    w.band.as_str().into(),
                    now.into(),
                ]);
            }
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let events: Vec<_> = applied
            .iter()
            .filter_map(|w| w.event.clone())
            .map(|p| banso_events::envelope::new(tenant, crate::NAME, p))
            .collect();
        if !events.is_empty() {
            banso_events::outbox::record_many(&txn, &events).await?;
        }
        txn.commit().await.map_err(Error::from)?;
        if !events.is_empty() {
            self.outbox.notify();
        }
        Ok(events.len() as u64)
    }
}
