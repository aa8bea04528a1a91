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

/// The scores of `writes` as one `INSERT … SELECT FROM unnest(…)` upsert,
/// with the same guard as the portable statement in [`Store::save_scores`]:
/// a stored score from newer inputs stays.
fn upsert_health_pg(tenant: &str, read_time: DateTime<Utc>, writes: &[ScoreWrite]) -> sea_orm::Statement {
    use sea_orm::{Value, sea_query::ArrayType};
    const UPSERT: &str = "INSERT INTO account_health (account_id, tenant_id, score, band, scorecard_id, \
         scorecard_version, contributions, compute_time, change_7d, change_30d, read_micros) \
         SELECT a, $1, s, b, c, v, j::json, $2, CASE WHEN h7 THEN c7 END, CASE WHEN h30 THEN c30 END, $3 \
         FROM unnest($4::uuid[], $5::float8[], $6::text[], $7::uuid[], $8::int8[], $9::text[], $10::float8[], \
           $11::bool[], $12::float8[], $13::bool[]) AS t(a, s, b, c, v, j, c7, h7, c30, h30) \
         ON CONFLICT (account_id) DO UPDATE SET score = excluded.score, band = excluded.band, \
           scorecard_id = excluded.scorecard_id, scorecard_version = excluded.scorecard_version, \
           contributions = excluded.contributions, compute_time = excluded.compute_time, \
           change_7d = excluded.change_7d, change_30d = excluded.change_30d, read_micros = excluded.read_micros \
         WHERE account_health.read_micros <= excluded.read_micros \
         RETURNING account_id";
    let array = |ty, f: &dyn Fn(&ScoreWrite) -> Value| banso_kit::db::pg_array(ty, writes, f);
    let contributions = |w: &ScoreWrite| Value::from(serde_json::to_string(&w.contributions).expect("serializes"));
    sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        UPSERT,
        [
            tenant.into(),
            read_time.into(),
            read_time.timestamp_micros().into(),
            array(ArrayType::Uuid, &|w| w.account_id.into()),
            array(ArrayType::Double, &|w| w.score.into()),
            array(ArrayType::String, &|w| w.band.as_str().into()),
            array(ArrayType::Uuid, &|w| w.scorecard_id.into()),
            array(ArrayType::BigInt, &|w| w.scorecard_version.into()),
            array(ArrayType::String, &contributions),
            // The driver's arrays hold no NULL: a value and whether there is one.
            array(ArrayType::Double, &|w| w.change_7d.unwrap_or(0.0).into()),
            array(ArrayType::Bool, &|w| w.change_7d.is_some().into()),
            array(ArrayType::Double, &|w| w.change_30d.unwrap_or(0.0).into()),
            array(ArrayType::Bool, &|w| w.change_30d.is_some().into()),
        ],
    )
}

/// `SELECT account_id, <bucket> AS bucket FROM <table>` of the tenant's
/// days within the last cut; `None` without cuts. The bucket of a day is
/// the first offset of the range between cuts that holds it
/// ([`crate::domain::measure::bucket_start`]), compared as dates so that
/// both databases use their (…, day) indexes.
fn bucket_select(
    table: &str,
    tenant: &str,
    today: NaiveDate,
    cuts: &[u32],
) -> Option<sea_orm::sea_query::SelectStatement> {
    let last = *cuts.last()?;
    // Offset `c` is the day `today - c`; a day is within `c` days when after `today - c`.
    let after = |c: u32| today - chrono::Days::new(u64::from(c));
    let mut case = sea_orm::sea_query::CaseStatement::new();
    let mut start = 0;
    for c in cuts {
        case = case.case(Expr::col(Alias::new("day")).gt(after(*c)), Expr::val(start as i32));
        start = *c;
    }
    let mut q = Query::select();
    q.column(Alias::new("account_id"))
        .expr_as(case.finally(Expr::val(start as i32)), Alias::new("bucket"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
        .and_where(Expr::col(Alias::new("day")).gt(after(last)))
        .and_where(Expr::col(Alias::new("day")).lte(today));
    Some(q)
}

fn ids_in(db: &impl ConnectionTrait, col: &str, ids: &[Uuid]) -> sea_orm::sea_query::SimpleExpr {
    banso_kit::db::uuid_in(db, Expr::col(Alias::new(col)), ids)
}

impl Store {
    /// Usage of `ids` summed per bucket of days between `cuts`
    /// ([`crate::domain::measure::window_cuts`]): (account, the bucket's
    /// first offset before `today`, event name, events, quantity, duration
    /// seconds). Days past the last cut, and after `today`, are left out.
    #[allow(clippy::type_complexity)]
    pub async fn usage_in_buckets(
        &self,
        tenant: &str,
        ids: &[Uuid],
        today: NaiveDate,
        cuts: &[u32],
    ) -> Result<Vec<(Uuid, u32, String, i64, f64, f64)>> {
        let mut out = Vec::new();
        let Some(mut q) = bucket_select("daily_usage", tenant, today, cuts) else { return Ok(out) };
        q.column(Alias::new("event_name"))
            .expr_as(Expr::cust("CAST(SUM(events) AS BIGINT)"), Alias::new("events"))
            .expr_as(Expr::cust("SUM(quantity)"), Alias::new("quantity"))
            .expr_as(Expr::cust("SUM(duration_secs)"), Alias::new("duration_secs"))
            .group_by_col(Alias::new("account_id"))
            .add_group_by([Expr::cust("bucket"), Expr::col(Alias::new("event_name"))]);
        for chunk in ids.chunks(CHUNK) {
            let mut q = q.clone();
            q.and_where(ids_in(&self.db, "account_id", chunk));
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.push((
                    r.try_get("", "account_id")?,
                    r.try_get::<i32>("", "bucket")? as u32,
                    r.try_get("", "event_name")?,
                    r.try_get("", "events")?,
                    r.try_get("", "quantity")?,
                    r.try_get("", "duration_secs")?,
                ));
            }
        }
        Ok(out)
    }

    /// The distinct users of `ids` per bucket of days between `cuts`, as
    /// [`Self::usage_in_buckets`]: (account, bucket, user key).
    pub async fn users_in_buckets(
        &self,
        tenant: &str,
        ids: &[Uuid],
        today: NaiveDate,
        cuts: &[u32],
    ) -> Result<Vec<(Uuid, u32, String)>> {
        let mut out = Vec::new();
        let Some(mut q) = bucket_select("daily_users", tenant, today, cuts) else { return Ok(out) };
        q.distinct().column(Alias::new("user_key")).and_where(Expr::col(Alias::new("user_key")).ne(""));
        for chunk in ids.chunks(CHUNK) {
            let mut q = q.clone();
            q.and_where(ids_in(&self.db, "account_id", chunk));
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.push((
                    r.try_get("", "account_id")?,
                    r.try_get::<i32>("", "bucket")? as u32,
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
        if banso_kit::db::is_postgres(&self.db) {
            // One backward probe of (tenant_id, account_id, kind, day) per
            // account, whatever the table's statistics say: the correlated
            // form below got a scan of the tenant's history per chunk once a
            // recompute had grown the table past its last ANALYZE.
            const LATEST: &str = "SELECT a.id AS account_id, h.day, h.score \
                 FROM unnest($2::uuid[]) AS a(id) \
                 CROSS JOIN LATERAL (SELECT day, score FROM health_history \
                   WHERE tenant_id = $1 AND account_id = a.id AND kind = 'daily' AND day <= $3 \
                   ORDER BY day DESC LIMIT 1) AS h";
            for chunk in ids.chunks(CHUNK) {
                let array =
                    banso_kit::db::pg_array(sea_orm::sea_query::ArrayType::Uuid, chunk, |id| sea_orm::Value::from(*id));
                let stmt = sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    LATEST,
                    [tenant.into(), array, day.into()],
                );
                for r in self.db.query_all_raw(stmt).await? {
                    out.insert(r.try_get("", "account_id")?, (r.try_get("", "day")?, r.try_get("", "score")?));
                }
            }
            return Ok(out);
        }
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
        let postgres = banso_kit::db::is_postgres(&txn);
        if postgres {
            // Typed arrays: a chunk's ~10,000 snapshots in one statement.
            use sea_orm::{Value, sea_query::ArrayType};
            const INSERT: &str = "INSERT INTO measure_snapshots (tenant_id, measure, account_id, value) \
                 SELECT $1, m, a, v FROM unnest($2::text[], $3::uuid[], $4::float8[]) AS t(m, a, v)";
            for chunk in values.chunks(CHUNK * 10) {
                let array = |ty, f: &dyn Fn(&(Uuid, &str, f64)) -> Value| banso_kit::db::pg_array(ty, chunk, f);
                let stmt = sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    INSERT,
                    [
                        tenant.into(),
                        array(ArrayType::String, &|(_, m, _)| (*m).into()),
                        array(ArrayType::Uuid, &|(a, _, _)| (*a).into()),
                        array(ArrayType::Double, &|(_, _, v)| (*v).into()),
                    ],
                );
                txn.execute_raw(stmt).await?;
            }
        }
        let portable: &[(Uuid, &str, f64)] = if postgres { &[] } else { &values };
        for chunk in portable.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("measure_snapshots"))
                .columns(["tenant_id", "measure", "account_id", "value"].map(Alias::new));
            for (a, m, v) in chunk {
                q.values_panic([tenant.into(), (*m).into(), (*a).into(), (*v).into()]);
            }
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let mut stored: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
        if postgres {
            // One statement of typed arrays a chunk: a multi-row VALUES of
            // 11 parameters a row cost a fifth of a recompute in parsing
            // and planning (docs/benchmarks.md).
            for chunk in writes.chunks(CHUNK) {
                for r in txn.query_all_raw(upsert_health_pg(tenant, read_time, chunk)).await? {
                    stored.insert(r.try_get("", "account_id")?);
                }
            }
        }
        // On SQLite, a multi-row VALUES.
        let portable: &[ScoreWrite] = if postgres { &[] } else { writes };
        for chunk in portable.chunks(CHUNK / 2) {
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
