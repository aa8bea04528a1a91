//! The voice of the customer: items, themes, their links, subscriptions and
//! notices, what closing a loop told, and the plan attainment the outcome
//! axis reads.

use banso_kit::db::index;
use sea_orm_migration::{prelude::*, schema::*};

pub(super) struct M0002Voice;

impl MigrationName for M0002Voice {
    fn name(&self) -> &str {
        "m20261206_000002_voice_items_themes_loops"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Voice {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("items")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(uuid_null("contact_id"))
                .col(string_len("department", 16))
                .col(text("category"))
                .col(string_len_null("cx_dimension", 16))
                .col(string_len_null("journey_phase", 16))
                .col(integer("severity"))
                .col(string_len("channel", 16))
                .col(text("body"))
                // domain::voice::ItemSnapshot, JSON.
                .col(text("snapshot"))
                .col(uuid_null("answer_id"))
                .col(text("created_by"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("items", "tenant_time", &["tenant_id", "create_time"])).await?;
        m.create_index(index("items", "account", &["tenant_id", "account_id"])).await?;
        // A survey comment becomes one item, whatever retries.
        m.create_index(index("items", "answer", &["tenant_id", "answer_id"]).unique().to_owned()).await?;
        m.create_table(
            Table::create()
                .table("themes")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                // domain::voice::ThemeBody and ThemeLog, JSON.
                .col(text("body"))
                .col(text("log"))
                .col(string_len_null("status", 16))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("themes", "tenant", &["tenant_id", "id"])).await?;
        m.create_table(
            Table::create()
                .table("item_themes")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("theme_id"))
                .col(uuid("item_id"))
                // "hand", "keyword", "suggestion".
                .col(string_len("how", 16))
                .col(timestamp_with_time_zone("create_time"))
                .primary_key(Index::create().col("tenant_id").col("theme_id").col("item_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("item_themes", "item", &["tenant_id", "item_id"])).await?;
        // Which accounts a closed loop told, per theme and status change:
        // the once of LoopClosed.
        m.create_table(
            Table::create()
                .table("loops_closed")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("theme_id"))
                .col(integer("change"))
                .col(uuid("account_id"))
                .col(timestamp_with_time_zone("create_time"))
                .primary_key(Index::create().col("tenant_id").col("theme_id").col("change").col("account_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("subscriptions")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(string_len("department", 16))
                .col(text("category"))
                .col(uuid_null("theme_id"))
                .col(integer("min_severity"))
                .col(uuid_null("endpoint_id"))
                .col(date_null("last_digest_day"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("subscriptions", "tenant", &["tenant_id", "department"])).await?;
        m.create_table(
            Table::create()
                .table("notices")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("subscription_id"))
                .col(string_len("department", 16))
                .col(string_len("kind", 8))
                // The items' ids, JSON.
                .col(text("item_ids"))
                .col(date_null("day"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("notices", "tenant", &["tenant_id", "id"])).await?;
        // A digest a subscription a day.
        m.create_index(
            index("notices", "digest", &["tenant_id", "subscription_id", "kind", "day"]).unique().to_owned(),
        )
        .await?;
        // Success plans' attainment per account (from CheckpointRecorded), for the outcome axis.
        m.create_table(
            Table::create()
                .table("plan_attainment")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(uuid("plan_id"))
                .col(string_len("checkpoint", 80))
                .col(double("attainment"))
                .col(timestamp_with_time_zone("record_time"))
                .primary_key(Index::create().col("tenant_id").col("account_id").col("plan_id").col("checkpoint"))
                .to_owned(),
        )
        .await?;
        // The outcome and experience axes read a tenant's CES and outcome answers of a range.
        m.create_index(index("answers", "kind_time", &["tenant_id", "kind", "answer_time"])).await?;
        m.alter_table(Table::alter().table("tenants").add_column(text("voice_settings").default("{}")).to_owned())
            .await?;
        m.alter_table(
            Table::alter().table("tenants").add_column(big_integer("voice_generation").default(0)).to_owned(),
        )
        .await?;
        Ok(())
    }
}

/// What the suggestion index reads on a suggestion's path, each a range
/// of an index led by the tenant instead of a scan of the tenant's rows:
/// the links made and the themes changed since its last look (by time),
/// and an item's themes by an index that covers them (SQLite read those
/// through the primary key, (tenant, theme, item), which covers them too:
/// every link of the tenant for one item). The (tenant, item) index is a
/// prefix of the new one, kept: migrations only add (docs/operations.md).
pub(super) struct M0003ChangeTimes;

impl MigrationName for M0003ChangeTimes {
    fn name(&self) -> &str {
        "m20261206_000003_voice_change_times"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003ChangeTimes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("item_themes", "item_theme", &["tenant_id", "item_id", "theme_id"])).await?;
        m.create_index(index("item_themes", "time", &["tenant_id", "create_time"])).await?;
        m.create_index(index("themes", "update_time", &["tenant_id", "update_time"])).await?;
        Ok(())
    }
}

/// When the customer said an item (`mention_time`), for history imported
/// from another tool: what longevity and the CX coverage's periods read.
/// The items recorded before it were said when recorded. The column is
/// nullable only because SQLite adds a column without a default; every
/// row has a value once this has run, and the service writes one always.
pub(super) struct M0005MentionTimes;

impl MigrationName for M0005MentionTimes {
    fn name(&self) -> &str {
        "m20261207_000005_item_mention_times"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005MentionTimes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table("items").add_column(timestamp_with_time_zone_null("mention_time")).to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::update()
                .table("items")
                .value("mention_time", Expr::col("create_time"))
                .and_where(Expr::col("mention_time").is_null())
                .to_owned(),
        )
        .await?;
        m.create_index(index("items", "mention_time", &["tenant_id", "mention_time"])).await?;
        Ok(())
    }
}

/// What each generation of a tenant's items and themes changed, so that a
/// suggestion index catches up by generation — a sequence the store hands
/// out under the tenant row's lock, in commit order — and not by the clock,
/// which replicas disagree on and which may step backward. One row per
/// generation, each a list of 16-byte ids; only the last
/// `store::voice::CHANGES_KEPT` generations are kept.
pub(super) struct M0006VoiceChanges;

impl MigrationName for M0006VoiceChanges {
    fn name(&self) -> &str {
        "m20261208_000006_voice_changes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006VoiceChanges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("voice_changes")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(big_integer("generation"))
                // Items recorded (with their themes as recorded).
                .col(blob("items"))
                // Themes created or changed (with the items their keywords took).
                .col(blob("themes"))
                // (item, theme) pairs put in, and taken out, by hand.
                .col(blob("linked"))
                .col(blob("unlinked"))
                .primary_key(Index::create().col("tenant_id").col("generation"))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Ids do not compress: pglz would only spend the import's CPU.
            for c in ["items", "themes", "linked", "unlinked"] {
                db.execute_unprepared(&format!("ALTER TABLE voice_changes ALTER COLUMN {c} SET STORAGE EXTERNAL"))
                    .await?;
            }
        }
        Ok(())
    }
}
