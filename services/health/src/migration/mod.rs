//! The `health` schema. Every table carries tenant_id; every index leads with it.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(banso_kit::idempotency::Migration),
            Box::new(banso_events::outbox::Migration),
            Box::new(banso_events::inbox::Migration),
            Box::new(M0001Usage),
            Box::new(M0002Scores),
            Box::new(M0003PortfolioJobs),
            Box::new(banso_events::outbox::PendingIndex),
            Box::new(M0004EventNameDays),
            Box::new(M0005IngestBatches),
            Box::new(M0006BatchIndex),
            Box::new(M0007LastUsage),
            Box::new(M0008Outcomes),
            Box::new(M0009BacktestJobs),
            Box::new(M0010ChurnRisk),
            Box::new(M0011ChurnModels),
            Box::new(M0012BacktestProgress),
            Box::new(M0013FiscalYear),
            Box::new(M0014ModelSchedules),
            Box::new(M0015SurveyAnswers),
            Box::new(banso_events::outbox::PayloadStorage),
        ]
    }
}

struct M0001Usage;

impl MigrationName for M0001Usage {
    fn name(&self) -> &str {
        "m20261122_000001_projection_usage_measures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Usage {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // What health needs of each account, kept from Accounts' events.
        m.create_table(
            Table::create()
                .table("accounts")
                .if_not_exists()
                .col(uuid("account_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text_null("external_id"))
                .col(string_len("lifecycle_stage", 16))
                .col(string_len("touch_model", 8))
                .col(string_len_null("arr_currency", 3))
                .col(big_integer_null("arr_amount_minor"))
                .col(date_null("renewal_date"))
                .col(boolean("deleted"))
                .col(timestamp_with_time_zone("update_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("accounts_tenant_external_id")
                .table("accounts")
                .col("tenant_id")
                .col("external_id")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("tenants")
                .if_not_exists()
                .col(string_len("tenant_id", 64).primary_key())
                .col(text("time_zone"))
                .to_owned(),
        )
        .await?;
        // Raw events, kept for the retention window; the key makes ingest idempotent.
        m.create_table(
            Table::create()
                .table("usage_events")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(string_len("event_id", 128))
                .col(uuid("account_id"))
                .col(text("user_key"))
                .col(text("event_name"))
                .col(timestamp_with_time_zone("occur_time"))
                .col(date("day"))
                .col(double("quantity"))
                .col(double_null("duration_secs"))
                .col(json("properties"))
                .col(timestamp_with_time_zone("ingest_time"))
                .primary_key(Index::create().col("tenant_id").col("event_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("usage_events_tenant_account_time")
                .table("usage_events")
                .col("tenant_id")
                .col("account_id")
                .col("occur_time")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("usage_events_ingest_time")
                .table("usage_events")
                .col("ingest_time")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        // Per account, day (in the tenant's zone) and event name.
        m.create_table(
            Table::create()
                .table("daily_usage")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(date("day"))
                .col(text("event_name"))
                .col(big_integer("events"))
                .col(double("quantity"))
                .col(double("duration_secs"))
                .primary_key(Index::create().col("tenant_id").col("account_id").col("day").col("event_name"))
                .to_owned(),
        )
        .await?;
        // Distinct users per account, day and event name.
        m.create_table(
            Table::create()
                .table("daily_users")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(date("day"))
                .col(text("event_name"))
                .col(text("user_key"))
                .primary_key(
                    Index::create().col("tenant_id").col("account_id").col("day").col("event_name").col("user_key"),
                )
                .to_owned(),
        )
        .await?;
        // External measures: pushed values and those derived from events.
        m.create_table(
            Table::create()
                .table("measure_values")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(string_len("measure", 80))
                .col(double("value"))
                .col(timestamp_with_time_zone("observe_time"))
                .primary_key(Index::create().col("tenant_id").col("account_id").col("measure"))
                .to_owned(),
        )
        .await?;
        // E-mails sent and replied (from ActivityLogged), for the response rate.
        m.create_table(
            Table::create()
                .table("email_activities")
                .if_not_exists()
                .col(uuid("activity_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(boolean("replied"))
                .col(timestamp_with_time_zone("occur_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("email_activities_tenant_account_time")
                .table("email_activities")
                .col("tenant_id")
                .col("account_id")
                .col("occur_time")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in
            ["email_activities", "measure_values", "daily_users", "daily_usage", "usage_events", "tenants", "accounts"]
        {
            m.drop_table(Table::drop().table(t.to_owned()).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

struct M0002Scores;

impl MigrationName for M0002Scores {
    fn name(&self) -> &str {
        "m20261122_000002_scorecards_scores_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Scores {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Current version of each scorecard; every version in scorecard_versions.
        m.create_table(
            Table::create()
                .table("scorecards")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(big_integer("version"))
                .col(json("definition"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("scorecards_tenant")
                .table("scorecards")
                .col("tenant_id")
                .col("id")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("scorecard_versions")
                .if_not_exists()
                .col(uuid("id"))
                .col(big_integer("version"))
                .col(string_len("tenant_id", 64))
                .col(json("definition"))
                .col(timestamp_with_time_zone("create_time"))
                .primary_key(Index::create().col("id").col("version"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("account_health")
                .if_not_exists()
                .col(uuid("account_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(double("score"))
                .col(string_len("band", 8))
                .col(uuid("scorecard_id"))
                .col(big_integer("scorecard_version"))
                .col(json("contributions"))
                .col(timestamp_with_time_zone("compute_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("account_health_tenant_score")
                .table("account_health")
                .col("tenant_id")
                .col("score")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        // The latest raw value of every measure of every account: the
        // population that percentile normalisation ranks within.
        m.create_table(
            Table::create()
                .table("measure_snapshots")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(string_len("measure", 200))
                .col(uuid("account_id"))
                .col(double("value"))
                .primary_key(Index::create().col("tenant_id").col("measure").col("account_id"))
                .to_owned(),
        )
        .await?;
        // A daily snapshot (kind "daily", one per account and day) and every band change.
        m.create_table(
            Table::create()
                .table("health_history")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(date("day"))
                .col(string_len("kind", 16))
                .col(double("score"))
                .col(string_len("band", 8))
                .col(timestamp_with_time_zone("record_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("health_history_daily")
                .table("health_history")
                .col("tenant_id")
                .col("account_id")
                .col("day")
                .col("kind")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["health_history", "measure_snapshots", "account_health", "scorecard_versions", "scorecards"] {
            m.drop_table(Table::drop().table(t.to_owned()).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

struct M0003PortfolioJobs;

impl MigrationName for M0003PortfolioJobs {
    fn name(&self) -> &str {
        "m20261122_000003_account_attributes_segments_jobs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003PortfolioJobs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The rest of each account's attributes: what segment expressions and
        // portfolio filters read. SQLite alters one column per statement.
        let columns = [
            string("name").default("").to_owned(),
            string("industry").default("").to_owned(),
            big_integer_null("employee_count"),
            string("revenue_band").default("").to_owned(),
            string("region").default("").to_owned(),
            string("plan_tier").default("").to_owned(),
            string("owner_id").default("").to_owned(),
            date_null("contract_start_date"),
            text("tags").default("[]").to_owned(),
            text("attributes").default("{}").to_owned(),
        ];
        for mut col in columns {
            m.alter_table(Table::alter().table("accounts").add_column(&mut col).to_owned()).await?;
        }
        // Trend and change ordering are stored with the score they describe.
        for name in ["change_7d", "change_30d"] {
            m.alter_table(Table::alter().table("account_health").add_column(double_null(name)).to_owned()).await?;
        }
        // When the inputs of the stored score were read (µs since the epoch):
        // a score computed from older inputs never replaces a newer one.
        m.alter_table(
            Table::alter().table("account_health").add_column(big_integer("read_micros").default(0)).to_owned(),
        )
        .await?;
        // Accounts' segments, from SegmentChanged: evaluated here on the projection.
        m.create_table(
            Table::create()
                .table("segments")
                .if_not_exists()
                .col(uuid("segment_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("expression"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("recompute_jobs")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(string_len("state", 16))
                .col(string_len("trigger", 16))
                .col(big_integer("accounts_total"))
                .col(big_integer("accounts_done"))
                .col(big_integer("accounts_scored"))
                .col(big_integer("scores_changed"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone_null("start_time"))
                .col(timestamp_with_time_zone_null("end_time"))
                .col(text("error"))
                // Resumable: the last account done, and the runner's lease.
                .col(uuid_null("cursor"))
                .col(timestamp_with_time_zone_null("heartbeat_time"))
                .to_owned(),
        )
        .await?;
        // At most one queued job per tenant, across replicas: requests
        // meanwhile join it (it reads everything when it starts).
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS recompute_jobs_one_queued ON recompute_jobs (tenant_id) \
                 WHERE state = 'queued'",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("recompute_jobs_tenant_time")
                .table("recompute_jobs")
                .col("tenant_id")
                .col("create_time")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        // Recomputes replace a chunk's snapshots by account.
        m.create_index(
            Index::create()
                .name("measure_snapshots_tenant_account")
                .table("measure_snapshots")
                .col("tenant_id")
                .col("account_id")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("health_history_tenant_account_kind")
                .table("health_history")
                .col("tenant_id")
                .col("account_id")
                .col("kind")
                .col("day")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["recompute_jobs", "segments"] {
            m.drop_table(Table::drop().table(t.to_owned()).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

/// The days each event name was used, per tenant: the denominator of feature
/// breadth (distinct names used in 90 days) in one small index range,
/// where counting them from `daily_usage` scanned every account's rollups
/// (2 s on a 100,000-account tenant, once per live scoring round). Ingest
/// adds a row the first time a name is used on a day (`ON CONFLICT DO
/// NOTHING`: no row lock, so concurrent batches never wait on it).
struct M0004EventNameDays;

impl MigrationName for M0004EventNameDays {
    fn name(&self) -> &str {
        "m20261122_000004_event_name_days"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004EventNameDays {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("event_name_days")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(date("day"))
                .col(text("event_name"))
                .primary_key(Index::create().col("tenant_id").col("day").col("event_name"))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO event_name_days (tenant_id, day, event_name) \
                 SELECT DISTINCT tenant_id, day, event_name FROM daily_usage",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("event_name_days").if_exists().to_owned()).await
    }
}

/// Ingest batches, the queue of the rollups: an ingest stores its new raw
/// events, all stamped with the batch's `ingest_time`, and this row, in one
/// transaction, and acknowledges; the rollup task then folds the batch's
/// events into `daily_usage`, `daily_users` and `event_name_days` and sets
/// `rolled_up_time`, again in one transaction, so every stored event is
/// counted exactly once however either side fails. The key makes a batch's
/// `ingest_time` unique within its tenant; rows stay (rolled up) until the
/// raw events they name are pruned, so a time is never reused.
struct M0005IngestBatches;

impl MigrationName for M0005IngestBatches {
    fn name(&self) -> &str {
        "m20261122_000005_ingest_batches"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005IngestBatches {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("ingest_batches")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(timestamp_with_time_zone("ingest_time"))
                .col(big_integer("events"))
                .col(timestamp_with_time_zone_null("rolled_up_time"))
                .primary_key(Index::create().col("tenant_id").col("ingest_time"))
                .to_owned(),
        )
        .await?;
        // The pending batches only: the rollup task's queue stays a few
        // index entries however many batches are kept.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS ingest_batches_pending ON ingest_batches (ingest_time) \
                 WHERE rolled_up_time IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("ingest_batches").if_exists().to_owned()).await
    }
}

/// The rollup task reads a batch's events by `ingest_time` and tenant. With
/// only `(ingest_time)` indexed, a planner whose statistics predate the
/// table's growth could as well pick `(tenant_id, account_id, occur_time)`
/// and read the tenant's every event per statement (measured: 53 such scans
/// reading 4,494,314 rows to roll up 200,000 events, docs/benchmarks.md).
/// An index matching both conditions is the cheapest plan whatever the
/// statistics say; pruning uses its leading `ingest_time` as before.
struct M0006BatchIndex;

impl MigrationName for M0006BatchIndex {
    fn name(&self) -> &str {
        "m20261122_000006_usage_events_batch_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006BatchIndex {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("usage_events_batch")
                .table("usage_events")
                .col("ingest_time")
                .col("tenant_id")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name("usage_events_ingest_time").table("usage_events").if_exists().to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("usage_events_ingest_time")
                .table("usage_events")
                .col("ingest_time")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.drop_index(Index::drop().name("usage_events_batch").table("usage_events").if_exists().to_owned()).await
    }
}

/// Per account, the latest day of its usage: what UsageSeen publishes once
/// a day (docs/health.md, Events). Filled as batches are rolled up from then
/// on; an account with usage before it has its first UsageSeen with its next
/// usage.
struct M0007LastUsage;

impl MigrationName for M0007LastUsage {
    fn name(&self) -> &str {
        "m20261204_000007_last_usage"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0007LastUsage {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("last_usage")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(date("day"))
                .primary_key(Index::create().col("tenant_id").col("account_id"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("last_usage").if_exists().to_owned()).await
    }
}

/// Labelled outcomes per account, from Accounts' ContractChanged: the churns
/// (with their date and ARR lost), renewals, expansions, contractions and
/// reactivations a backtest labels snapshots with (docs/metrics.md).
struct M0008Outcomes;

impl MigrationName for M0008Outcomes {
    fn name(&self) -> &str {
        "m20261204_000008_account_outcomes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Outcomes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("account_outcomes")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("event_id"))
                .col(uuid("account_id"))
                .col(string_len("kind", 16))
                .col(string_len_null("expansion", 16))
                .col(date("effective_date"))
                .col(string_len("currency", 3))
                .col(big_integer("arr_before"))
                .col(big_integer("arr_after"))
                .col(timestamp_with_time_zone("record_time"))
                .primary_key(Index::create().col("tenant_id").col("event_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("account_outcomes_kind_day")
                .table("account_outcomes")
                .col("tenant_id")
                .col("kind")
                .col("effective_date")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("account_outcomes").if_exists().to_owned()).await
    }
}

/// Backtests run in the background and their results
/// (`store::backtest_jobs`, a leased work queue).
struct M0009BacktestJobs;

impl MigrationName for M0009BacktestJobs {
    fn name(&self) -> &str {
        "m20261204_000009_backtest_jobs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0009BacktestJobs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("backtest_jobs")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(string_len("status", 16))
                .col(text("request"))
                .col(text_null("result"))
                .col(text("error"))
                .col(timestamp_with_time_zone_null("next_attempt_time"))
                .col(text("lease_owner"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone_null("end_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("backtest_jobs_due")
                .table("backtest_jobs")
                .col("status")
                .col("next_attempt_time")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("backtest_jobs_tenant")
                .table("backtest_jobs")
                .col("tenant_id")
                .col("id")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("backtest_jobs").if_exists().to_owned()).await
    }
}

/// Each account's latest churn probability and its bucket, as the last
/// trained churn model scored it: what ChurnRiskChanged compares with.
struct M0010ChurnRisk;

impl MigrationName for M0010ChurnRisk {
    fn name(&self) -> &str {
        "m20261204_000010_account_churn_risk"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010ChurnRisk {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("account_churn_risk")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(double("probability"))
                .col(string_len("bucket", 8))
                .col(timestamp_with_time_zone("update_time"))
                .primary_key(Index::create().col("tenant_id").col("account_id"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("account_churn_risk").if_exists().to_owned()).await
    }
}

/// Every churn (and expansion) model a tenant trained, by version (the fit
/// and its figures as JSON: read whole, never queried inside), which version
/// scored each account's stored probability, and each account's latest
/// expansion probability per target.
struct M0011ChurnModels;

impl MigrationName for M0011ChurnModels {
    fn name(&self) -> &str {
        "m20261204_000011_churn_models"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0011ChurnModels {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("churn_models")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(big_integer("version"))
                .col(text("model"))
                .col(timestamp_with_time_zone("create_time"))
                .primary_key(Index::create().col("tenant_id").col("version"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("account_expansion_signal")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(string_len("target", 16))
                .col(double("probability"))
                .col(string_len("bucket", 8))
                .col(big_integer("model_version"))
                .col(text("reasons"))
                .col(timestamp_with_time_zone("update_time"))
                .primary_key(Index::create().col("tenant_id").col("account_id").col("target"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table("account_churn_risk").add_column(big_integer("model_version").default(0)).to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table("account_churn_risk").add_column(text("reasons").default("[]")).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("account_churn_risk").drop_column("reasons").to_owned()).await?;
        m.alter_table(Table::alter().table("account_churn_risk").drop_column("model_version").to_owned()).await?;
        m.drop_table(Table::drop().table("account_expansion_signal").if_exists().to_owned()).await?;
        m.drop_table(Table::drop().table("churn_models").if_exists().to_owned()).await
    }
}

/// A backtest job's progress: its phase, steps done of steps in all, the
/// labelled snapshots, and when a runner began it.
struct M0012BacktestProgress;

impl MigrationName for M0012BacktestProgress {
    fn name(&self) -> &str {
        "m20261205_000012_backtest_progress"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0012BacktestProgress {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for col in [
            string_len("phase", 16).default("").to_owned(),
            integer("steps_done").default(0).to_owned(),
            integer("steps_total").default(0).to_owned(),
            big_integer("snapshots").default(0).to_owned(),
            timestamp_with_time_zone_null("start_time"),
        ] {
            m.alter_table(Table::alter().table("backtest_jobs").add_column(col).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in ["phase", "steps_done", "steps_total", "snapshots", "start_time"] {
            m.alter_table(Table::alter().table("backtest_jobs").drop_column(Alias::new(col)).to_owned()).await?;
        }
        Ok(())
    }
}

/// The month a tenant's fiscal year starts in, from Accounts'
/// TenantSettingsChanged: the renewal forecast asks for fiscal periods.
struct M0013FiscalYear;

impl MigrationName for M0013FiscalYear {
    fn name(&self) -> &str {
        "m20261205_000013_fiscal_year"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0013FiscalYear {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let col = integer("fiscal_year_start_month").default(1).to_owned();
        m.alter_table(Table::alter().table("tenants").add_column(col).to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("tenants").drop_column(Alias::new("fiscal_year_start_month")).to_owned())
            .await
    }
}

/// Which target each kept model predicts, as a column (the live scorer reads
/// the latest model of each), and each tenant's retraining schedule per
/// target: a leased work queue (`store::model_schedules`) that any replica's
/// retrainer claims when a model is due.
struct M0014ModelSchedules;

impl MigrationName for M0014ModelSchedules {
    fn name(&self) -> &str {
        "m20261205_000014_model_schedules"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0014ModelSchedules {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let col = string_len("target", 16).default("churn").to_owned();
        m.alter_table(Table::alter().table("churn_models").add_column(col).to_owned()).await?;
        // The models kept before: their target is in the JSON, written
        // compact by serde_json (`"target":"upsell"`).
        for target in ["expansion", "upsell", "cross_sell"] {
            let q = Query::update()
                .table("churn_models")
                .value("target", target)
                .and_where(Expr::col("model").like(format!("%\"target\":\"{target}\"%")))
                .to_owned();
            m.exec_stmt(q).await?;
        }
        m.create_index(
            Index::create()
                .name("churn_models_target")
                .table("churn_models")
                .col("tenant_id")
                .col("target")
                .col("version")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("model_schedules")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(string_len("target", 16))
                .col(string_len("status", 16))
                .col(timestamp_with_time_zone_null("next_attempt_time"))
                .col(text("lease_owner"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(timestamp_with_time_zone_null("last_attempt_time"))
                .col(text("last_error"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("model_schedules_tenant_target")
                .table("model_schedules")
                .col("tenant_id")
                .col("target")
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("model_schedules_due")
                .table("model_schedules")
                .col("status")
                .col("next_attempt_time")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("model_schedules").if_exists().to_owned()).await?;
        m.drop_index(Index::drop().name("churn_models_target").table("churn_models").to_owned()).await?;
        m.alter_table(Table::alter().table("churn_models").drop_column(Alias::new("target")).to_owned()).await
    }
}

/// Survey answers from Feedback's SurveyAnswered, each contact's latest per
/// account and kind (`store::survey_answers`): what the survey measures
/// (`external:nps`, …) are the mean of. `counted` says whether the answer
/// was within the window when its measure was last computed, so the aging
/// pass finds the answers that crossed the window's edge since.
struct M0015SurveyAnswers;

impl MigrationName for M0015SurveyAnswers {
    fn name(&self) -> &str {
        "m20261206_000015_survey_answers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0015SurveyAnswers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("survey_answers")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(string_len("kind", 16))
                .col(text("contact_id"))
                .col(integer("score"))
                .col(timestamp_with_time_zone("answered_at"))
                .col(text("answer_id"))
                .col(boolean("counted"))
                .primary_key(Index::create().col("tenant_id").col("account_id").col("kind").col("contact_id"))
                .to_owned(),
        )
        .await?;
        // The aging pass, across tenants: counted answers now past the edge.
        m.create_index(
            Index::create()
                .name("survey_answers_counted_time")
                .table("survey_answers")
                .col("counted")
                .col("answered_at")
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("survey_answers").if_exists().to_owned()).await
    }
}
