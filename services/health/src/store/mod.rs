//! The repository: the only code that touches the `health` schema.

mod bulk;
mod ingest;
pub mod jobs;
pub mod portfolio;
pub mod scores;
mod segments;

use std::collections::{BTreeSet, HashMap, HashSet};

use banso_events::outbox::OutboxSignal;
use banso_kit::Result;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement,
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
pub use ingest::RolledUp;

#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    outbox: OutboxSignal,
    /// One lock per tenant, held while a chunk's scores are computed from
    /// the stored ones and written ([`Store::scoring_lock`]).
    scoring: std::sync::Arc<std::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>>,
    /// The last batch time handed out by this process ([`Store::ingest`]).
    batch_micros: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Whether the last batch this process checked held stored events: the
    /// PostgreSQL ingest then looks before it copies ([`Store::ingest`]).
    saw_duplicates: std::sync::Arc<std::sync::atomic::AtomicBool>,
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
        Store {
            db,
            outbox,
            scoring: Default::default(),
            batch_micros: Default::default(),
            saw_duplicates: Default::default(),
        }
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
        // Every projected column but the key, then when it changed; the
        // values below follow this order.
        let updated: Vec<&str> =
            ACCOUNT_COLUMNS.iter().copied().filter(|c| *c != "account_id").chain(["update_time"]).collect();
        let mut q = Query::insert();
        q.into_table(Alias::new("accounts"))
            .columns(["account_id", "tenant_id", "deleted"].into_iter().chain(updated.iter().copied()).map(Alias::new))
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
                OnConflict::column(Alias::new("account_id"))
                    .update_columns(updated.into_iter().map(Alias::new))
                    .to_owned(),
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
