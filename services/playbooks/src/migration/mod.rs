//! The `playbooks` schema. Every table carries tenant_id; every index leads with it.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(banso_kit::idempotency::Migration),
            Box::new(banso_events::outbox::Migration),
            Box::new(banso_events::inbox::Migration),
            Box::new(banso_events::outbox::PendingIndex),
            Box::new(M0001Playbooks),
            Box::new(M0002Outreach),
            Box::new(M0003Programmes),
            Box::new(M0004AccountChanges),
            Box::new(M0005SuccessPlans),
            Box::new(banso_events::outbox::PayloadStorage),
        ]
    }
}

struct M0001Playbooks;

impl MigrationName for M0001Playbooks {
    fn name(&self) -> &str {
        "m20261204_000001_projection_playbooks_firings_ctas"
    }
}

use banso_kit::db::index;

#[async_trait::async_trait]
impl MigrationTrait for M0001Playbooks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // What conditions read, kept from Accounts' and Health's events.
        m.create_table(
            Table::create()
                .table("accounts")
                .if_not_exists()
                .col(uuid("account_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(boolean("deleted"))
                // The account as its latest event carried it (domain::projection::Account, JSON).
                .col(text("account"))
                // The latest HealthScoreChanged (domain::projection::Health, JSON).
                .col(text_null("health"))
                .col(string_len("lifecycle_stage", 16))
                .col(timestamp_with_time_zone("stage_since"))
                .col(date_null("renewal_date"))
                .col(date_null("last_usage_day"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("accounts", "tenant_renewal", &["tenant_id", "renewal_date"])).await?;
        m.create_table(
            Table::create()
                .table("segments")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("display_name"))
                .col(text("expression"))
                // JSON list of touch model names the segment forbids.
                .col(text("forbidden_touch_models"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("segments", "tenant", &["tenant_id"])).await?;
        m.create_table(
            Table::create()
                .table("tenants")
                .if_not_exists()
                .col(string_len("tenant_id", 64).primary_key())
                .col(text("time_zone"))
                .col(string_len("schedule_time", 5))
                .col(integer("fatigue_max_messages"))
                .col(integer("fatigue_window_days"))
                .col(date_null("last_schedule_day"))
                // The replica running today's schedule holds the lease until it expires.
                .col(text("schedule_lease_owner"))
                .col(timestamp_with_time_zone_null("schedule_lease_until"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("playbooks")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(big_integer("head_version"))
                .col(big_integer("live_version"))
                // Of the live version, so an event finds its playbooks with one indexed read:
                // "event:<type>", "schedule", "manual", or "" when disabled.
                .col(text("live_trigger"))
                .col(big_integer("round_robin"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("playbooks", "tenant_live_trigger", &["tenant_id", "live_trigger"])).await?;
        m.create_table(
            Table::create()
                .table("playbook_versions")
                .if_not_exists()
                .col(uuid("playbook_id"))
                .col(big_integer("version"))
                .col(string_len("tenant_id", 64))
                // domain::playbook::Definition, JSON.
                .col(text("definition"))
                .col(text("author"))
                .col(timestamp_with_time_zone("create_time"))
                .primary_key(Index::create().col("playbook_id").col("version"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("firings")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("playbook_id"))
                .col(big_integer("playbook_version"))
                .col(uuid("account_id"))
                .col(string_len("trigger_kind", 16))
                .col(text("trigger_key"))
                .col(timestamp_with_time_zone("fire_time"))
                .col(string_len("status", 16))
                // Each action's outcome (JSON).
                .col(text("actions"))
                .to_owned(),
        )
        .await?;
        // A trigger fires a playbook for an account once: a redelivered event, a re-run schedule day.
        m.create_index(
            index("firings", "once", &["tenant_id", "playbook_id", "account_id", "trigger_key"]).unique().to_owned(),
        )
        .await?;
        m.create_index(index("firings", "tenant_time", &["tenant_id", "fire_time"])).await?;
        m.create_index(index("firings", "tenant_account", &["tenant_id", "account_id", "fire_time"])).await?;
        // The trigger events of the last days, for simulation.
        m.create_table(
            Table::create()
                .table("trigger_events")
                .if_not_exists()
                .col(uuid("event_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("event_type"))
                .col(uuid_null("account_id"))
                .col(timestamp_with_time_zone("occur_time"))
                .col(big_integer("seq"))
                // The lifecycle stage the account entered with it, as the live engine saw it.
                .col(string_len_null("stage_entered", 16))
                // The envelope, protobuf-encoded.
                .col(blob("envelope"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("trigger_events", "tenant_time", &["tenant_id", "occur_time", "seq"])).await?;
        m.create_table(
            Table::create()
                .table("ctas")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(uuid_null("playbook_id"))
                .col(big_integer("playbook_version"))
                // "<playbook>/<account>" while open: at most one open CTA per playbook and account.
                .col(text_null("open_key"))
                .col(string_len("cta_type", 16))
                .col(integer("priority"))
                .col(string_len("status", 16))
                .col(text("title"))
                .col(text("description"))
                .col(text("owner_id"))
                .col(date_null("due_date"))
                .col(text("tasks"))
                .col(text("reasons"))
                .col(timestamp_with_time_zone_null("snooze_until"))
                .col(string_len("outcome", 16))
                .col(text("close_note"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(timestamp_with_time_zone_null("close_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ctas", "open_key", &["tenant_id", "open_key"]).unique().to_owned()).await?;
        m.create_index(index("ctas", "tenant_owner_due", &["tenant_id", "owner_id", "due_date"])).await?;
        m.create_index(index("ctas", "tenant_account", &["tenant_id", "account_id"])).await?;
        Ok(())
    }
}

struct M0003Programmes;

impl MigrationName for M0003Programmes {
    fn name(&self) -> &str {
        "m20261204_000003_programmes_enrolments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Programmes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("programmes")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("display_name"))
                .col(text("description"))
                .col(string_len("kind", 16))
                .col(integer("capacity"))
                .col(boolean("open"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("programmes", "tenant", &["tenant_id", "id"])).await?;
        m.create_table(
            Table::create()
                .table("enrolments")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("programme_id"))
                .col(uuid("account_id"))
                // "<programme>/<account>" unless withdrawn: one live enrolment per programme and account.
                .col(text_null("live_key"))
                .col(string_len("status", 16))
                .col(uuid_null("playbook_id"))
                .col(text("enrolled_by"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("enrolments", "live_key", &["tenant_id", "live_key"]).unique().to_owned()).await?;
        m.create_index(index("enrolments", "tenant_programme", &["tenant_id", "programme_id", "status"])).await?;
        m.create_index(index("enrolments", "tenant_account", &["tenant_id", "account_id"])).await?;
        Ok(())
    }
}

/// Outreach: webhook endpoints, the contacts projection, deliveries and
/// their attempts.
struct M0002Outreach;

impl MigrationName for M0002Outreach {
    fn name(&self) -> &str {
        "m20261204_000002_outreach_endpoints_contacts_deliveries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Outreach {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("webhook_endpoints")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("display_name"))
                .col(text("url"))
                .col(boolean("enabled"))
                // The signing secret, and the one before a rotation while it still signs.
                .col(text("secret"))
                .col(text_null("previous_secret"))
                .col(timestamp_with_time_zone_null("previous_secret_until"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhook_endpoints", "tenant", &["tenant_id", "id"])).await?;
        // Who outreach is about, kept from Accounts' ContactChanged.
        m.create_table(
            Table::create()
                .table("contacts")
                .if_not_exists()
                .col(uuid("contact_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                // domain::outreach::Contact, JSON.
                .col(text("contact"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("contacts", "tenant_account", &["tenant_id", "account_id"])).await?;
        m.create_table(
            Table::create()
                .table("deliveries")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("endpoint_id"))
                .col(uuid("account_id"))
                .col(uuid_null("contact_id"))
                .col(uuid_null("playbook_id"))
                .col(uuid_null("firing_id"))
                .col(string_len("trigger_kind", 16))
                .col(text("trigger_event_id"))
                .col(text("subject"))
                .col(text("body"))
                // The JSON posted, fixed when queued: every attempt sends the same bytes.
                .col(text("payload"))
                // "contact:<id>" or "account:<id>": what the fatigue budget counts.
                .col(text("fatigue_key"))
                .col(string_len("status", 16))
                .col(integer("attempts"))
                .col(integer("series"))
                .col(timestamp_with_time_zone_null("next_attempt_time"))
                // A replica sending it holds it until then.
                .col(text("lease_owner"))
                .col(timestamp_with_time_zone_null("lease_until"))
                .col(text("last_error"))
                .col(timestamp_with_time_zone_null("sent_time"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .to_owned(),
        )
        .await?;
        // The worker's query spans tenants (as Health's rollup queue does): due pending rows.
        m.create_index(index("deliveries", "due", &["status", "next_attempt_time"])).await?;
        m.create_index(index("deliveries", "tenant_fatigue", &["tenant_id", "fatigue_key", "create_time"])).await?;
        m.create_index(index("deliveries", "tenant_endpoint", &["tenant_id", "endpoint_id", "id"])).await?;
        m.create_index(index("deliveries", "tenant_account", &["tenant_id", "account_id", "id"])).await?;
        m.create_table(
            Table::create()
                .table("delivery_attempts")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("delivery_id"))
                .col(integer("series"))
                .col(integer("number"))
                .col(timestamp_with_time_zone("attempt_time"))
                .col(big_integer("duration_micros"))
                .col(integer("http_status"))
                .col(text("error"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("delivery_attempts", "tenant_delivery", &["tenant_id", "delivery_id"])).await?;
        // One row per contact (or account) the budget counts: a firing upserts it before counting, so two
        // transactions queueing for the same contact take turns (a row lock on PostgreSQL, the write lock on
        // SQLite) and the second counts the first's message.
        m.create_table(
            Table::create()
                .table("fatigue_keys")
                .if_not_exists()
                .col(string_len("tenant_id", 64))
                .col(text("fatigue_key"))
                .col(big_integer("turns"))
                .primary_key(Index::create().col("tenant_id").col("fatigue_key"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}

struct M0004AccountChanges;

impl MigrationName for M0004AccountChanges {
    fn name(&self) -> &str {
        "m20261204_000004_account_changes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004AccountChanges {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // update_account actions, queued by the firing and applied through
        // Accounts' API by a worker: a call to another service never runs
        // inside the firing's transaction.
        m.create_table(
            Table::create()
                .table("account_changes")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("firing_id"))
                .col(integer("action_index"))
                .col(uuid("playbook_id"))
                .col(uuid("account_id"))
                // domain::playbook::UpdateAccount, JSON.
                .col(text("change"))
                .col(string_len("status", 16))
                .col(integer("attempts"))
                .col(timestamp_with_time_zone_null("next_attempt_time"))
                .col(text("lease_owner"))
                .col(timestamp_with_time_zone_null("lease_until"))
                // What was changed, or why it failed.
                .col(text("detail"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .to_owned(),
        )
        .await?;
        // The worker's query spans tenants, as the outreach worker's does.
        m.create_index(index("account_changes", "due", &["status", "next_attempt_time"])).await?;
        m.create_index(index("account_changes", "tenant_firing", &["tenant_id", "firing_id"])).await?;
        Ok(())
    }
}

struct M0005SuccessPlans;

impl MigrationName for M0005SuccessPlans {
    fn name(&self) -> &str {
        "m20261205_000005_success_plans"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005SuccessPlans {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tenants")
                .add_column(integer("review_execution_threshold_percent").default(80))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("success_plan_templates")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("display_name"))
                // domain::plan::Body, JSON.
                .col(text("body"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("success_plan_templates", "tenant", &["tenant_id", "id"])).await?;
        m.create_table(
            Table::create()
                .table("success_plans")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(string_len("state", 16))
                .col(string_len("stage", 32))
                .col(timestamp_with_time_zone("stage_since"))
                .col(uuid_null("template_id"))
                .col(uuid_null("model_id"))
                .col(uuid_null("follows_plan_id"))
                .col(uuid_null("playbook_id"))
                .col(text("created_by"))
                // "<template>/<account>" while active: one active plan per template and account.
                .col(text_null("active_key"))
                // domain::plan::Body (with the readings), JSON.
                .col(text("body"))
                // domain::plan::Concluded, JSON, once concluded.
                .col(text_null("review"))
                .col(boolean_null("target_met"))
                .col(double_null("roi"))
                .col(timestamp_with_time_zone_null("conclude_time"))
                // What schedule triggers read (domain::plan::Alerts), kept at each write.
                .col(date_null("reading_due"))
                .col(boolean("off_track"))
                .col(date_null("proxy_end"))
                .col(timestamp_with_time_zone("create_time"))
                .col(timestamp_with_time_zone("update_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("success_plans", "active_key", &["tenant_id", "active_key"]).unique().to_owned()).await?;
        m.create_index(index("success_plans", "tenant_account", &["tenant_id", "account_id"])).await?;
        m.create_index(index("success_plans", "tenant_model", &["tenant_id", "model_id"])).await?;
        m.create_index(index("success_plans", "tenant_state", &["tenant_id", "state", "account_id"])).await?;
        m.create_table(
            Table::create()
                .table("success_models")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("plan_id"))
                .col(uuid("template_id"))
                .col(uuid_null("segment_id"))
                .col(uuid_null("theme_id"))
                .col(text("display_name"))
                .col(text("problem"))
                // [domain::plan::Checkpoint], JSON, as agreed in the plan.
                .col(text("checkpoints"))
                // The first plan's account's usage (measure → value), JSON.
                .col(text("usage"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("success_models", "plan", &["tenant_id", "plan_id"]).unique().to_owned()).await?;
        m.create_table(
            Table::create()
                .table("success_model_proposals")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("model_id"))
                .col(uuid("account_id"))
                .col(string_len("reason", 16))
                .col(uuid_null("cta_id"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("success_model_proposals", "model_account", &["tenant_id", "model_id", "account_id"])
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
