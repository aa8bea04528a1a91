//! The `accounts` schema. Every table carries tenant_id and every index that
//! serves a query leads with it.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(banso_kit::idempotency::Migration),
            Box::new(M0001Accounts),
            Box::new(banso_events::outbox::Migration),
            Box::new(M0002ContractsTimelineSegments),
            Box::new(banso_events::outbox::PendingIndex),
            Box::new(M0003TagsWithoutForeignKey),
            Box::new(M0004WriteKeys),
            Box::new(M0005TouchMixAndOrigin),
            Box::new(banso_events::inbox::Migration),
            Box::new(M0006TouchMixRules),
            Box::new(banso_events::outbox::PayloadStorage),
        ]
    }
}

struct M0001Accounts;

impl MigrationName for M0001Accounts {
    fn name(&self) -> &str {
        "m20261122_000001_accounts_contacts_settings"
    }
}

use banso_kit::db::index;

#[async_trait::async_trait]
impl MigrationTrait for M0001Accounts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("accounts")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("name"))
                .col(text_null("external_id"))
                .col(text("industry"))
                .col(big_integer_null("employee_count"))
                .col(text("revenue_band"))
                .col(text("region"))
                .col(text("plan_tier"))
                .col(string_len("lifecycle_stage", 16))
                .col(string_len("touch_model", 8))
                .col(text("owner_id"))
                .col(string_len_null("arr_currency", 3))
                .col(big_integer_null("arr_amount_minor"))
                .col(date_null("contract_start_date"))
                .col(date_null("renewal_date"))
                .col(json("tags"))
                .col(json("custom_attributes"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        let t = "accounts";
        m.create_index(index(t, "tenant_external_id", &["tenant_id", "external_id"]).unique().to_owned()).await?;
        for (name, cols) in [
            ("tenant_id", &["tenant_id", "id"][..]),
            ("tenant_stage", &["tenant_id", "lifecycle_stage", "id"]),
            ("tenant_touch", &["tenant_id", "touch_model", "id"]),
            ("tenant_owner", &["tenant_id", "owner_id", "id"]),
            ("tenant_industry", &["tenant_id", "industry", "id"]),
            ("tenant_region", &["tenant_id", "region", "id"]),
            ("tenant_plan", &["tenant_id", "plan_tier", "id"]),
            ("tenant_revenue_band", &["tenant_id", "revenue_band", "id"]),
            ("tenant_renewal", &["tenant_id", "renewal_date", "id"]),
            ("tenant_arr", &["tenant_id", "arr_currency", "arr_amount_minor", "id"]),
            ("tenant_name", &["tenant_id", "name", "id"]),
            ("tenant_update_time", &["tenant_id", "update_time", "id"]),
        ] {
            m.create_index(index(t, name, cols)).await?;
        }

        // One row per tag, so the tag filter is an index lookup.
        m.create_table(
            Table::create()
                .table("account_tags")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(string_len("tag", 256))
                .col(uuid("account_id"))
                .primary_key(Index::create().col("tenant_id").col("tag").col("account_id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("account_tags_account")
                        .from("account_tags", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index("account_tags", "account", &["account_id"])).await?;

        m.create_table(
            Table::create()
                .table("contacts")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(text("name"))
                .col(text("email"))
                .col(text("email_lower"))
                .col(text("title"))
                .col(text("department"))
                .col(string_len_null("level", 16))
                .col(boolean("champion"))
                .col(boolean("decision_maker"))
                .col(text_null("external_id"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .foreign_key(
                    ForeignKey::create()
                        .name("contacts_account")
                        .from("contacts", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let t = "contacts";
        m.create_index(index(t, "tenant_external_id", &["tenant_id", "external_id"]).unique().to_owned()).await?;
        m.create_index(index(t, "tenant_id", &["tenant_id", "id"])).await?;
        m.create_index(index(t, "tenant_account", &["tenant_id", "account_id", "id"])).await?;
        m.create_index(index(t, "tenant_email", &["tenant_id", "email_lower"])).await?;
        m.create_index(index(t, "account", &["account_id"])).await?;

        m.create_table(
            Table::create()
                .table("tenant_settings")
                .if_not_exists()
                .col(string_len("tenant_id", 64).primary_key())
                .col(text("time_zone"))
                .col(integer("fiscal_year_start_month"))
                .col(string_len("default_currency_code", 3))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["tenant_settings", "contacts", "account_tags", "accounts"] {
            m.drop_table(Table::drop().table(t.to_owned()).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

struct M0002ContractsTimelineSegments;

impl MigrationName for M0002ContractsTimelineSegments {
    fn name(&self) -> &str {
        "m20261122_000002_contracts_timeline_segments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002ContractsTimelineSegments {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("contract_events")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(string_len("kind", 16))
                .col(string_len("currency", 3))
                .col(big_integer("arr_before"))
                .col(big_integer("arr_after"))
                .col(date("effective_date"))
                .col(date_null("term_end"))
                .col(text("reason_code"))
                .col(text("note"))
                .col(text("recorded_by"))
                .col(timestamp_with_time_zone("create_time"))
                .foreign_key(
                    ForeignKey::create()
                        .name("contract_events_account")
                        .from("contract_events", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "contract_events",
            "tenant_account",
            &["tenant_id", "account_id", "effective_date", "id"],
        ))
        .await?;
        m.create_index(index("contract_events", "tenant_effective", &["tenant_id", "currency", "effective_date"]))
            .await?;
        m.create_index(index("contract_events", "account", &["account_id"])).await?;

        m.create_table(
            Table::create()
                .table("activities")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(string_len("kind", 16))
                .col(json("contact_ids"))
                .col(text("author_id"))
                .col(timestamp_with_time_zone("occur_time"))
                .col(text("subject"))
                .col(text("body"))
                .col(text_null("external_ref"))
                .col(timestamp_with_time_zone("create_time"))
                .foreign_key(
                    ForeignKey::create()
                        .name("activities_account")
                        .from("activities", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        let t = "activities";
        m.create_index(index(t, "tenant_external_ref", &["tenant_id", "external_ref"]).unique().to_owned()).await?;
        m.create_index(index(t, "tenant_time", &["tenant_id", "occur_time", "id"])).await?;
        m.create_index(index(t, "tenant_account_time", &["tenant_id", "account_id", "occur_time", "id"])).await?;
        m.create_index(index(t, "tenant_account_kind_time", &["tenant_id", "account_id", "kind", "occur_time"]))
            .await?;
        m.create_index(index(t, "tenant_author_time", &["tenant_id", "author_id", "occur_time", "id"])).await?;
        m.create_index(index(t, "account", &["account_id"])).await?;

        m.create_table(
            Table::create()
                .table("segments")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("display_name"))
                .col(text("description"))
                .col(text("expression"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("segments", "tenant_id", &["tenant_id", "id"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["segments", "activities", "contract_events"] {
            m.drop_table(Table::drop().table(t.to_owned()).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

/// `account_tags` is the store's own index of `accounts.tags`, written and
/// deleted only beside its account in the same transaction
/// (`Store::delete_account` deletes the rows the cascade used to). Its
/// foreign key checked and locked the account for every tag row: half the
/// cost of writing tags, a tenth of a bulk import (docs/benchmarks.md).
/// SQLite keeps it: dropping a constraint there means rebuilding the table.
struct M0003TagsWithoutForeignKey;

impl MigrationName for M0003TagsWithoutForeignKey {
    fn name(&self) -> &str {
        "m20261122_000003_account_tags_without_foreign_key"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003TagsWithoutForeignKey {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE account_tags DROP CONSTRAINT IF EXISTS account_tags_account").await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE account_tags ADD CONSTRAINT account_tags_account FOREIGN KEY (account_id) \
                 REFERENCES accounts (id) ON DELETE CASCADE",
            )
            .await?;
        }
        Ok(())
    }
}

/// The tracking API's write keys: only each key's SHA-256 is stored, looked
/// up by tenant and hash on every verification.
struct M0004WriteKeys;

impl MigrationName for M0004WriteKeys {
    fn name(&self) -> &str {
        "m20261201_000004_write_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004WriteKeys {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("write_keys")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("display_name"))
                .col(text("key_prefix"))
                .col(string_len("key_hash", 64))
                .col(text("creator"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone_null("revoke_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("write_keys", "tenant_hash", &["tenant_id", "key_hash"]).unique().to_owned()).await?;
        m.create_index(index("write_keys", "tenant_id", &["tenant_id", "id"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("write_keys").if_exists().to_owned()).await
    }
}

/// Playbooks (issue #12): each account's touch mix (old rows: 100% of their
/// touch model) and its history, the touch patterns a segment forbids, and
/// who started each activity (old rows: the default of their kind).
struct M0005TouchMixAndOrigin;

impl MigrationName for M0005TouchMixAndOrigin {
    fn name(&self) -> &str {
        "m20261204_000005_touch_mix_and_origin"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005TouchMixAndOrigin {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table("accounts").add_column(json_null("touch_mix")).to_owned()).await?;
        m.alter_table(Table::alter().table("segments").add_column(json_null("forbidden_touch_models")).to_owned())
            .await?;
        m.alter_table(Table::alter().table("activities").add_column(string_len_null("origin", 16)).to_owned()).await?;
        let db = m.get_connection();
        let mix = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE accounts SET touch_mix = json_build_array(json_build_object('touch_model', touch_model, \
                 'percent', 100)) WHERE touch_mix IS NULL"
            }
            _ => {
                "UPDATE accounts SET touch_mix = json_array(json_object('touch_model', touch_model, 'percent', 100)) \
                 WHERE touch_mix IS NULL"
            }
        };
        db.execute_unprepared(mix).await?;
        db.execute_unprepared(
            "UPDATE activities SET origin = CASE \
               WHEN kind IN ('meeting', 'call', 'email_sent', 'outreach', 'survey', 'cta') THEN 'vendor' \
               WHEN kind IN ('email_replied', 'ticket') THEN 'customer' END \
             WHERE origin IS NULL",
        )
        .await?;
        m.create_table(
            Table::create()
                .table("touch_mix_history")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(timestamp_with_time_zone("change_time"))
                .col(json("touch_mix"))
                .col(string_len("set_by", 16))
                .col(text("setter"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("touch_mix_history", "tenant_account", &["tenant_id", "account_id", "change_time", "id"]))
            .await?;
        m.create_index(index("activities", "tenant_origin", &["tenant_id", "origin", "occur_time"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("touch_mix_history").if_exists().to_owned()).await?;
        m.drop_index(Index::drop().name("activities_tenant_origin").table("activities").if_exists().to_owned()).await?;
        m.alter_table(Table::alter().table("activities").drop_column("origin").to_owned()).await?;
        m.alter_table(Table::alter().table("segments").drop_column("forbidden_touch_models").to_owned()).await?;
        m.alter_table(Table::alter().table("accounts").drop_column("touch_mix").to_owned()).await
    }
}

/// Touch-mix rules (issue #12): each tenant's ordered rule list, one row a
/// tenant (keyed by tenant_id, its only lookup), and whether an account's
/// mix was set by hand (old rows: not, so the rules may set them), indexed
/// for the pass that re-applies changed rules to the accounts they govern.
struct M0006TouchMixRules;

impl MigrationName for M0006TouchMixRules {
    fn name(&self) -> &str {
        "m20261204_000006_touch_mix_rules"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006TouchMixRules {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter().table("accounts").add_column(boolean("touch_mix_manual").default(false)).to_owned(),
        )
        .await?;
        m.create_index(index("accounts", "tenant_mix_manual", &["tenant_id", "touch_mix_manual", "id"])).await?;
        m.create_table(
            Table::create()
                .table("touch_mix_rules")
                .if_not_exists()
                .col(string_len("tenant_id", 64).primary_key())
                .col(json("rules"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                // The version last applied to every account it governs:
                // behind `version`, the re-apply pass has work to finish.
                .col(big_integer("applied_version").default(0))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("touch_mix_rules").if_exists().to_owned()).await?;
        m.drop_index(Index::drop().name("accounts_tenant_mix_manual").table("accounts").if_exists().to_owned()).await?;
        m.alter_table(Table::alter().table("accounts").drop_column("touch_mix_manual").to_owned()).await
    }
}
