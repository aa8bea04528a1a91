//! The repository: the only code that touches the `health` schema.

mod bulk;
pub mod jobs;
pub mod portfolio;
pub mod scores;
mod segments;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use banso_events::outbox::OutboxSignal;
use banso_kit::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, PostgresQueryBuilder, Query, SqliteQueryBuilder},
};
use uuid::Uuid;

/// An event that passed validation, with its account resolved.
#[derive(Debug, Clone)]
pub struct AcceptedEvent {
    pub event_id: String,
    pub account_id: Uuid,
    pub user_key: String,
    pub event_name: String,
    pub occur_time: DateTime<Utc>,
    pub day: NaiveDate,
    pub quantity: f64,
    pub duration_secs: Option<f64>,
    pub properties: serde_json::Value,
}

pub use crate::domain::account::AccountRow;
pub use bulk::ScoreWrite;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    outbox: OutboxSignal,
    /// One lock per tenant, held while a chunk's scores are computed from
    /// the stored ones and written ([`Store::scoring_lock`]).
    scoring: std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>>,
}

/// Rows per multi-row statement: 11 values a usage event keeps every
/// statement far below PostgreSQL's 65,535 bound parameters.
const CHUNK: usize = 2_000;

pub(crate) fn build(conn: &impl ConnectionTrait, stmt: &impl sea_orm::sea_query::QueryStatementWriter) -> Statement {
    let backend = conn.get_database_backend();
    let (sql, values) = match backend {
        DbBackend::Postgres => stmt.build(PostgresQueryBuilder),
        _ => stmt.build(SqliteQueryBuilder),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

impl Store {
    pub fn new(db: DatabaseConnection, outbox: OutboxSignal) -> Self {
        Store { db, outbox, scoring: Default::default() }
    }

    /// Serializes scoring of `tenant` in this process. The live scorer and a
    /// recompute job may score the same account at once; each decides
    /// whether the score moved (HealthScoreChanged) against the stored score
    /// it reads under this lock, so the second sees the first's score
    /// instead of both announcing the same move. (Across replicas the
    /// stored score still ends up the newest, `read_micros`; an event may
    /// then repeat, as any event may under at-least-once delivery.)
    pub async fn scoring_lock(&self, tenant: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self.scoring.lock().expect("scoring locks poisoned").entry(tenant.to_owned()).or_default().clone();
        lock.lock_owned().await
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    // ----- the accounts projection -----

    pub async fn upsert_account(&self, conn: &impl ConnectionTrait, tenant: &str, a: &AccountRow) -> Result<()> {
        let updated = [
            "external_id",
            "name",
            "lifecycle_stage",
            "touch_model",
            "arr_currency",
            "arr_amount_minor",
            "renewal_date",
            "contract_start_date",
            "industry",
            "employee_count",
            "revenue_band",
            "region",
            "plan_tier",
            "owner_id",
            "tags",
            "attributes",
            "update_time",
        ];
        let mut q = Query::insert();
        q.into_table(Alias::new("accounts"))
            .columns(["account_id", "tenant_id", "deleted"].into_iter().chain(updated).map(Alias::new))
            .values_panic([
                a.account_id.into(),
                tenant.into(),
                false.into(),
                a.external_id.clone().into(),
                a.name.clone().into(),
                a.lifecycle_stage.clone().into(),
                a.touch_model.clone().into(),
                a.arr_currency.clone().into(),
                a.arr_amount_minor.into(),
                a.renewal_date.into(),
                a.contract_start_date.into(),
                a.industry.clone().into(),
                a.employee_count.into(),
                a.revenue_band.clone().into(),
                a.region.clone().into(),
                a.plan_tier.clone().into(),
                a.owner_id.clone().into(),
                serde_json::to_string(&a.tags).expect("serializes").into(),
                serde_json::to_string(&a.attributes).expect("serializes").into(),
                Utc::now().into(),
            ])
            .on_conflict(
                OnConflict::column(Alias::new("account_id")).update_columns(updated.map(Alias::new)).to_owned(),
            );
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    /// Marks an account deleted: its usage no longer scores, late events for
    /// it are refused.
    pub async fn delete_account(&self, conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<()> {
        let q = Query::update()
            .table(Alias::new("accounts"))
            .value(Alias::new("deleted"), true)
            .and_where(Expr::col(Alias::new("account_id")).eq(id))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .to_owned();
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    pub async fn set_time_zone(&self, conn: &impl ConnectionTrait, tenant: &str, tz: &str) -> Result<()> {
        let q = Query::insert()
            .into_table(Alias::new("tenants"))
            .columns([Alias::new("tenant_id"), Alias::new("time_zone")])
            .values_panic([tenant.into(), tz.into()])
            .on_conflict(OnConflict::column(Alias::new("tenant_id")).update_column(Alias::new("time_zone")).to_owned())
            .to_owned();
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    /// The tenant's time zone (UTC until Accounts says otherwise).
    pub async fn time_zone(&self, tenant: &str) -> Result<chrono_tz::Tz> {
        let q = Query::select()
            .column(Alias::new("time_zone"))
            .from(Alias::new("tenants"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .to_owned();
        let row = self.db.query_one_raw(build(&self.db, &q)).await?;
        Ok(match row {
            Some(r) => r.try_get::<String>("", "time_zone")?.parse().unwrap_or(chrono_tz::UTC),
            None => chrono_tz::UTC,
        })
    }

    pub async fn record_email(
        &self,
        conn: &impl ConnectionTrait,
        tenant: &str,
        activity_id: Uuid,
        account_id: Uuid,
        replied: bool,
        occur_time: DateTime<Utc>,
    ) -> Result<()> {
        let q = Query::insert()
            .into_table(Alias::new("email_activities"))
            .columns(["activity_id", "tenant_id", "account_id", "replied", "occur_time"].map(Alias::new))
            .values_panic([activity_id.into(), tenant.into(), account_id.into(), replied.into(), occur_time.into()])
            .on_conflict(OnConflict::column(Alias::new("activity_id")).do_nothing().to_owned())
            .to_owned();
        conn.execute_raw(build(conn, &q)).await?;
        Ok(())
    }

    /// Which of `ids` are live accounts of the tenant, and the ids of
    /// `external_ids` that are.
    pub async fn resolve_accounts(
        &self,
        tenant: &str,
        ids: &[Uuid],
        external_ids: &[String],
    ) -> Result<(HashSet<Uuid>, HashMap<String, Uuid>)> {
        // A batch names an account once per event: look each up once.
        let ids: Vec<Uuid> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let external_ids: Vec<&str> =
            external_ids.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
        let mut known = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let q = Query::select()
                .column(Alias::new("account_id"))
                .from(Alias::new("accounts"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("deleted")).eq(false))
                .and_where(banso_kit::db::uuid_in(&self.db, Expr::col(Alias::new("account_id")), chunk))
                .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                known.insert(r.try_get::<Uuid>("", "account_id")?);
            }
        }
        let mut by_external = HashMap::new();
        for chunk in external_ids.chunks(CHUNK) {
            let q = Query::select()
                .columns([Alias::new("account_id"), Alias::new("external_id")])
                .from(Alias::new("accounts"))
                .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("deleted")).eq(false))
                .and_where(banso_kit::db::text_in(&self.db, Expr::col(Alias::new("external_id")), chunk))
                .to_owned();
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                by_external.insert(r.try_get::<String>("", "external_id")?, r.try_get::<Uuid>("", "account_id")?);
            }
        }
        Ok((known, by_external))
    }

    // ----- ingest -----

    /// Stores the events not stored before (by tenant and event_id) and adds
    /// exactly those to the daily rollups, in one transaction. Returns the
    /// event ids stored now; the others were duplicates.
    pub async fn ingest(&self, tenant: &str, events: &[AcceptedEvent]) -> Result<HashSet<String>> {
        let mut inserted = HashSet::new();
        if events.is_empty() {
            return Ok(inserted);
        }
        let now = Utc::now();
        if self.db.get_database_backend() == DbBackend::Postgres {
            // PostgreSQL: the whole batch as one statement of 11 parameters,
            // the columns as arrays (UNNEST). Its text never changes, so it is
            // parsed and planned once per connection, where multi-row VALUES
            // made a new 22,000-parameter statement for every chunk. The
            // events insert RETURNs what it stored, and two data-modifying
            // CTEs add exactly those rows to the rollups (and the days their
            // names were used to `event_name_days`), all in the
            // statement's single transaction (as below for SQLite): a retried
            // batch stores nothing and adds nothing. The rollup rows are
            // written in key order, so concurrent batches lock them in the
            // same order. A NULL duration travels as NaN (validation never
            // lets a NaN through); the properties go as text through jsonb,
            // stored exactly as a bound JSON value would be.
            const SQL: &str = "\
                WITH input AS ( \
                  SELECT * FROM UNNEST($2::text[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], \
                    $7::date[], $8::float8[], $9::float8[], $10::text[]) WITH ORDINALITY \
                    AS t(event_id, account_id, user_key, event_name, occur_time, day, quantity, duration_secs, \
                         properties, ord)), \
                stored AS ( \
                  INSERT INTO usage_events (tenant_id, event_id, account_id, user_key, event_name, occur_time, day, \
                    quantity, duration_secs, properties, ingest_time) \
                  SELECT $1, event_id, account_id, user_key, event_name, occur_time, day, quantity, \
                    NULLIF(duration_secs, 'NaN'::float8), properties::jsonb::json, $11 \
                  FROM input ORDER BY ord \
                  ON CONFLICT (tenant_id, event_id) DO NOTHING \
                  RETURNING event_id, account_id, user_key, event_name, day, quantity, duration_secs), \
                usage AS ( \
                  INSERT INTO daily_usage (tenant_id, account_id, day, event_name, events, quantity, duration_secs) \
                  SELECT $1, account_id, day, event_name, count(*), sum(quantity), sum(coalesce(duration_secs, 0)) \
                  FROM stored GROUP BY account_id, day, event_name ORDER BY account_id, day, event_name \
                  ON CONFLICT (tenant_id, account_id, day, event_name) DO UPDATE SET \
                    events = daily_usage.events + excluded.events, \
                    quantity = daily_usage.quantity + excluded.quantity, \
                    duration_secs = daily_usage.duration_secs + excluded.duration_secs), \
                users AS ( \
                  INSERT INTO daily_users (tenant_id, account_id, day, event_name, user_key) \
                  SELECT DISTINCT $1, account_id, day, event_name, user_key FROM stored WHERE user_key <> '' \
                  ORDER BY 2, 3, 4, 5 \
                  ON CONFLICT (tenant_id, account_id, day, event_name, user_key) DO NOTHING), \
                names AS ( \
                  INSERT INTO event_name_days (tenant_id, day, event_name) \
                  SELECT DISTINCT $1, day, event_name FROM stored ORDER BY 2, 3 \
                  ON CONFLICT (tenant_id, day, event_name) DO NOTHING) \
                SELECT event_id FROM stored";
            use sea_orm::sea_query::ArrayType;
            let array = |ty: ArrayType, values: Vec<Value>| Value::Array(ty, Some(Box::new(values)));
            let column = |ty: ArrayType, f: &dyn Fn(&AcceptedEvent) -> Value| array(ty, events.iter().map(f).collect());
            let values = vec![
                Value::from(tenant),
                column(ArrayType::String, &|e| e.event_id.clone().into()),
                column(ArrayType::Uuid, &|e| e.account_id.into()),
                column(ArrayType::String, &|e| e.user_key.clone().into()),
                column(ArrayType::String, &|e| e.event_name.clone().into()),
                column(ArrayType::ChronoDateTimeUtc, &|e| e.occur_time.into()),
                column(ArrayType::ChronoDate, &|e| e.day.into()),
                column(ArrayType::Double, &|e| e.quantity.into()),
                column(ArrayType::Double, &|e| e.duration_secs.unwrap_or(f64::NAN).into()),
                column(ArrayType::String, &|e| e.properties.to_string().into()),
                Value::from(now),
            ];
            let rows = self.db.query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, SQL, values)).await?;
            for r in rows {
                inserted.insert(r.try_get::<String>("", "event_id")?);
            }
            return Ok(inserted);
        }
        let txn = self.db.begin().await?;
        for chunk in events.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("usage_events")).columns(
                [
                    "tenant_id",
                    "event_id",
                    "account_id",
                    "user_key",
                    "event_name",
                    "occur_time",
                    "day",
                    "quantity",
                    "duration_secs",
                    "properties",
                    "ingest_time",
                ]
                .map(Alias::new),
            );
            for e in chunk {
                q.values_panic([
                    tenant.into(),
                    e.event_id.clone().into(),
                    e.account_id.into(),
                    e.user_key.clone().into(),
                    e.event_name.clone().into(),
                    e.occur_time.into(),
                    e.day.into(),
                    e.quantity.into(),
                    e.duration_secs.into(),
                    Expr::val(Value::Json(Some(Box::new(e.properties.clone())))),
                    now.into(),
                ]);
            }
            q.on_conflict(
                OnConflict::columns([Alias::new("tenant_id"), Alias::new("event_id")]).do_nothing().to_owned(),
            )
            .returning_col(Alias::new("event_id"));
            for r in txn.query_all_raw(build(&txn, &q)).await? {
                inserted.insert(r.try_get::<String>("", "event_id")?);
            }
        }
        // Only what was stored now counts, so a retried batch adds nothing.
        let mut usage: BTreeMap<(Uuid, NaiveDate, &str), (i64, f64, f64)> = BTreeMap::new();
        let mut users: BTreeMap<(Uuid, NaiveDate, &str, &str), ()> = BTreeMap::new();
        let mut seen = HashSet::new();
        for e in events.iter().filter(|e| inserted.contains(&e.event_id)) {
            // The same new id twice in one batch was stored once.
            if !seen.insert(e.event_id.as_str()) {
                continue;
            }
            let u = usage.entry((e.account_id, e.day, e.event_name.as_str())).or_default();
            u.0 += 1;
            u.1 += e.quantity;
            u.2 += e.duration_secs.unwrap_or(0.0);
            if !e.user_key.is_empty() {
                users.insert((e.account_id, e.day, e.event_name.as_str(), e.user_key.as_str()), ());
            }
        }
        let usage: Vec<_> = usage.into_iter().collect();
        for chunk in usage.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("daily_usage")).columns(
                ["tenant_id", "account_id", "day", "event_name", "events", "quantity", "duration_secs"].map(Alias::new),
            );
            for ((account, day, name), (n, qty, dur)) in chunk {
                q.values_panic([
                    tenant.into(),
                    (*account).into(),
                    (*day).into(),
                    (*name).into(),
                    (*n).into(),
                    (*qty).into(),
                    (*dur).into(),
                ]);
            }
            // Incremental: add to what the day already holds.
            q.on_conflict(
                OnConflict::columns(["tenant_id", "account_id", "day", "event_name"].map(Alias::new))
                    .value(Alias::new("events"), Expr::cust("daily_usage.events + excluded.events"))
                    .value(Alias::new("quantity"), Expr::cust("daily_usage.quantity + excluded.quantity"))
                    .value(
                        Alias::new("duration_secs"),
                        Expr::cust("daily_usage.duration_secs + excluded.duration_secs"),
                    )
                    .to_owned(),
            );
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let names: BTreeSet<(NaiveDate, &str)> = usage.iter().map(|((_, day, name), _)| (*day, *name)).collect();
        let names: Vec<_> = names.into_iter().collect();
        for chunk in names.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("event_name_days")).columns(["tenant_id", "day", "event_name"].map(Alias::new));
            for (day, name) in chunk {
                q.values_panic([tenant.into(), (*day).into(), (*name).into()]);
            }
            q.on_conflict(
                OnConflict::columns(["tenant_id", "day", "event_name"].map(Alias::new)).do_nothing().to_owned(),
            );
            txn.execute_raw(build(&txn, &q)).await?;
        }
        let users: Vec<_> = users.into_keys().collect();
        for chunk in users.chunks(CHUNK) {
            let mut q = Query::insert();
            q.into_table(Alias::new("daily_users"))
                .columns(["tenant_id", "account_id", "day", "event_name", "user_key"].map(Alias::new));
            for (account, day, name, user) in chunk {
                q.values_panic([tenant.into(), (*account).into(), (*day).into(), (*name).into(), (*user).into()]);
            }
            q.on_conflict(
                OnConflict::columns(["tenant_id", "account_id", "day", "event_name", "user_key"].map(Alias::new))
                    .do_nothing()
                    .to_owned(),
            );
            txn.execute_raw(build(&txn, &q)).await?;
        }
        txn.commit().await?;
        Ok(inserted)
    }

    /// Deletes raw usage events ingested before `cutoff`, at most `batch`
    /// at a time; returns how many went. Rollups keep their counts: raw
    /// events are only the audit trail and the idempotency keys, and an
    /// event older than the late window is refused anyway.
    pub async fn prune_raw_events(&self, cutoff: DateTime<Utc>, batch: u64) -> Result<u64> {
        let stmt = Statement::from_sql_and_values(
            self.db.get_database_backend(),
            match self.db.get_database_backend() {
                DbBackend::Postgres => {
                    "DELETE FROM usage_events WHERE (tenant_id, event_id) IN \
                     (SELECT tenant_id, event_id FROM usage_events WHERE ingest_time < $1 LIMIT $2)"
                }
                _ => {
                    "DELETE FROM usage_events WHERE (tenant_id, event_id) IN \
                     (SELECT tenant_id, event_id FROM usage_events WHERE ingest_time < ? LIMIT ?)"
                }
            },
            [cutoff.into(), (batch as i64).into()],
        );
        Ok(self.db.execute_raw(stmt).await?.rows_affected())
    }

    // ----- external measures -----

    pub async fn set_measure(
        &self,
        tenant: &str,
        account: Uuid,
        measure: &str,
        value: Option<f64>,
        observe_time: DateTime<Utc>,
    ) -> Result<()> {
        let stmt = match value {
            Some(v) => {
                let q = Query::insert()
                    .into_table(Alias::new("measure_values"))
                    .columns(["tenant_id", "account_id", "measure", "value", "observe_time"].map(Alias::new))
                    .values_panic([tenant.into(), account.into(), measure.into(), v.into(), observe_time.into()])
                    .on_conflict(
                        OnConflict::columns(["tenant_id", "account_id", "measure"].map(Alias::new))
                            .update_columns([Alias::new("value"), Alias::new("observe_time")])
                            .to_owned(),
                    )
                    .to_owned();
                build(&self.db, &q)
            }
            None => {
                let q = Query::delete()
                    .from_table(Alias::new("measure_values"))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .and_where(Expr::col(Alias::new("account_id")).eq(account))
                    .and_where(Expr::col(Alias::new("measure")).eq(measure))
                    .to_owned();
                build(&self.db, &q)
            }
        };
        self.db.execute_raw(stmt).await?;
        Ok(())
    }

    /// The projection row of an account.
    pub async fn account(&self, tenant: &str, id: Uuid) -> Result<Option<AccountRow>> {
        Ok(self.accounts_by_id(tenant, &[id]).await?.pop())
    }

    /// The live projection rows of `ids` (those that exist), in no order.
    pub async fn accounts_by_id(&self, tenant: &str, ids: &[Uuid]) -> Result<Vec<AccountRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut q = account_select();
            q.and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                .and_where(Expr::col(Alias::new("deleted")).eq(false))
                .and_where(banso_kit::db::uuid_in(
                    &self.db,
                    Expr::col((Alias::new("accounts"), Alias::new("account_id"))),
                    chunk,
                ));
            for r in self.db.query_all_raw(build(&self.db, &q)).await? {
                out.push(account_from(&r)?);
            }
        }
        Ok(out)
    }

    /// A page of the tenant's live accounts by id, after `after`.
    pub async fn accounts_page(&self, tenant: &str, after: Option<Uuid>, limit: u64) -> Result<Vec<AccountRow>> {
        let mut q = account_select();
        q.and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("deleted")).eq(false));
        if let Some(a) = after {
            q.and_where(Expr::col(Alias::new("account_id")).gt(a));
        }
        q.order_by(Alias::new("account_id"), sea_orm::Order::Asc).limit(limit);
        self.db.query_all_raw(build(&self.db, &q)).await?.iter().map(account_from).collect()
    }
}

pub(crate) const ACCOUNT_COLUMNS: [&str; 17] = [
    "account_id",
    "external_id",
    "name",
    "lifecycle_stage",
    "touch_model",
    "arr_currency",
    "arr_amount_minor",
    "renewal_date",
    "contract_start_date",
    "industry",
    "employee_count",
    "revenue_band",
    "region",
    "plan_tier",
    "owner_id",
    "tags",
    "attributes",
];

fn account_select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns(ACCOUNT_COLUMNS.map(|c| (Alias::new("accounts"), Alias::new(c))))
        .from(Alias::new("accounts"))
        .to_owned()
}

pub(crate) fn account_from(r: &sea_orm::QueryResult) -> Result<AccountRow> {
    let bad = |what: &str, e: serde_json::Error| banso_kit::Error::internal(anyhow::anyhow!("stored {what}: {e}"));
    let tags: String = r.try_get("", "tags")?;
    let attributes: String = r.try_get("", "attributes")?;
    Ok(AccountRow {
        account_id: r.try_get("", "account_id")?,
        external_id: r.try_get("", "external_id")?,
        name: r.try_get("", "name")?,
        lifecycle_stage: r.try_get("", "lifecycle_stage")?,
        touch_model: r.try_get("", "touch_model")?,
        arr_currency: r.try_get("", "arr_currency")?,
        arr_amount_minor: r.try_get("", "arr_amount_minor")?,
        renewal_date: r.try_get("", "renewal_date")?,
        contract_start_date: r.try_get("", "contract_start_date")?,
        industry: r.try_get("", "industry")?,
        employee_count: r.try_get("", "employee_count")?,
        revenue_band: r.try_get("", "revenue_band")?,
        region: r.try_get("", "region")?,
        plan_tier: r.try_get("", "plan_tier")?,
        owner_id: r.try_get("", "owner_id")?,
        tags: serde_json::from_str(&tags).map_err(|e| bad("tags", e))?,
        attributes: serde_json::from_str(&attributes).map_err(|e| bad("attributes", e))?,
    })
}
