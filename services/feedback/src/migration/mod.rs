//! The `feedback` schema. Every table carries tenant_id; every index leads with it.

use banso_kit::db::index;
use sea_orm_migration::{prelude::*, schema::*};

mod voice;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(banso_kit::idempotency::Migration),
            Box::new(banso_events::outbox::Migration),
            Box::new(banso_events::inbox::Migration),
            Box::new(banso_events::outbox::PendingIndex),
            Box::new(M0001Surveys),
            Box::new(voice::M0002Voice),
            Box::new(voice::M0003ChangeTimes),
            Box::new(M0004DeliveryFailures),
            Box::new(voice::M0005MentionTimes),
            Box::new(banso_events::outbox::PayloadStorage),
            Box::new(voice::M0006VoiceChanges),
        ]
    }
}

struct M0001Surveys;

impl MigrationName for M0001Surveys {
    fn name(&self) -> &str {
        "m20261206_000001_projection_surveys_campaigns_answers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Surveys {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // What campaigns and results read, kept from Accounts', Health's and Playbooks' events.
        m.create_table(
            Table::create()
                .table("accounts")
                .if_not_exists()
                .col(uuid("account_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(boolean("deleted"))
                // domain::projection::Account, JSON.
                .col(text("account"))
                .col(string_len("lifecycle_stage", 16))
                .col(timestamp_with_time_zone("stage_since"))
                .col(timestamp_with_time_zone("update_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("accounts", "tenant", &["tenant_id", "account_id"])).await?;
        // What Health and Playbooks said of an account, apart: their events
        // may come before Accounts' (another stream), and must not be lost.
        m.create_table(
            Table::create()
                .table("account_signals")
                .if_not_exists()
                .col(uuid("account_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(string_len_null("band", 8))
                .col(double_null("score"))
                .col(text_null("plan_outcome"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("contacts")
                .if_not_exists()
                .col(uuid("contact_id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("account_id"))
                .col(boolean("deleted"))
                // domain::projection::Contact, JSON.
                .col(text("contact"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("contacts", "account", &["tenant_id", "account_id"])).await?;
        m.create_table(
            Table::create()
                .table("segments")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(text("expression"))
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
                .col(integer("fiscal_year_start_month"))
                // Survey kind → throttle days (JSON); a kind not in it throttles 90 days.
                .col(text("throttles"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("surveys")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(string_len("kind", 16))
                // domain::survey::Body, JSON.
                .col(text("body"))
                .col(timestamp_with_time_zone("create_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("surveys", "tenant", &["tenant_id", "id"])).await?;
        m.create_table(
            Table::create()
                .table("campaigns")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("survey_id"))
                .col(string_len("kind", 16))
                // domain::campaign::Body, JSON.
                .col(text("body"))
                .col(string_len("state", 16))
                .col(boolean("standing"))
                .col(timestamp_with_time_zone_null("send_time"))
                .col(timestamp_with_time_zone_null("close_time"))
                .col(timestamp_with_time_zone_null("last_run"))
                .col(big_integer("invited"))
                .col(big_integer("throttled"))
                .col(big_integer("accounts_without_contacts"))
                .col(text("created_by"))
                .col(timestamp_with_time_zone("create_time"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("campaigns", "tenant", &["tenant_id", "id"])).await?;
        // The sender finds due campaigns of every tenant.
        m.create_index(index("campaigns", "due", &["state", "send_time"])).await?;
        m.create_table(
            Table::create()
                .table("invitations")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("campaign_id"))
                .col(uuid("survey_id"))
                .col(string_len("kind", 16))
                .col(uuid("account_id"))
                .col(uuid("contact_id"))
                // The day the invitation is for: a one-off campaign's send day, a standing
                // campaign's due day (a renewal, a stage entered): one invitation a contact a cycle.
                .col(date("cycle"))
                // A skip: the contact was within its throttle. Kept so a standing campaign
                // does not count it again; never a token, never in a rate.
                .col(boolean("throttled"))
                .col(text("email"))
                .col(timestamp_with_time_zone("send_time"))
                .col(timestamp_with_time_zone_null("deliver_time"))
                .col(timestamp_with_time_zone_null("answer_time"))
                .col(timestamp_with_time_zone("expire_time"))
                // domain::projection::Snapshot of the account when sent, JSON.
                .col(text("snapshot"))
                .to_owned(),
        )
        .await?;
        // A campaign invites a contact once a cycle, however often it runs.
        m.create_index(
            index("invitations", "once", &["tenant_id", "campaign_id", "contact_id", "cycle"]).unique().to_owned(),
        )
        .await?;
        m.create_index(index("invitations", "campaign", &["tenant_id", "campaign_id", "id"])).await?;
        // The throttle: a contact's latest invitation of a kind.
        m.create_index(index("invitations", "throttle", &["tenant_id", "contact_id", "kind", "send_time"])).await?;
        m.create_index(index("invitations", "survey_sent", &["tenant_id", "survey_id", "send_time"])).await?;
        m.create_table(
            Table::create()
                .table("answers")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("invitation_id"))
                .col(uuid("survey_id"))
                .col(uuid("campaign_id"))
                .col(string_len("kind", 16))
                .col(uuid("account_id"))
                .col(uuid("contact_id"))
                .col(integer_null("score"))
                .col(integer_null("perception"))
                .col(text("comment"))
                // The custom questions' answers (domain::survey::QuestionAnswer list), JSON.
                .col(text("answers"))
                .col(timestamp_with_time_zone("answer_time"))
                // domain::projection::Snapshot of the account when it answered, JSON.
                .col(text("snapshot"))
                .to_owned(),
        )
        .await?;
        // Single use: one answer an invitation, whatever races.
        m.create_index(index("answers", "invitation", &["tenant_id", "invitation_id"]).unique().to_owned()).await?;
        m.create_index(index("answers", "survey_time", &["tenant_id", "survey_id", "answer_time"])).await?;
        m.create_table(
            Table::create()
                .table("team_answers")
                .if_not_exists()
                .col(uuid("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("survey_id"))
                .col(uuid("account_id"))
                .col(text("respondent"))
                .col(integer("agreement"))
                .col(timestamp_with_time_zone("answer_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("team_answers", "survey_time", &["tenant_id", "survey_id", "answer_time"])).await?;
        m.create_table(
            Table::create()
                .table("predictions")
                .if_not_exists()
                // "<campaign>/<account>/<predictor>": the latest replaces the earlier.
                .col(string("id").primary_key())
                .col(string_len("tenant_id", 64))
                .col(uuid("campaign_id"))
                .col(uuid("survey_id"))
                .col(uuid("account_id"))
                .col(text("predictor"))
                .col(integer_null("score"))
                .col(boolean_null("healthy"))
                .col(timestamp_with_time_zone("record_time"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("predictions", "survey", &["tenant_id", "survey_id", "campaign_id"])).await?;
        Ok(())
    }
}

/// An invitation's failed delivery: Playbooks' OutreachFailed, kept so the
/// invitation shows FAILED and why instead of staying SENT.
struct M0004DeliveryFailures;

impl MigrationName for M0004DeliveryFailures {
    fn name(&self) -> &str {
        "m20261206_000004_invitation_delivery_failures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004DeliveryFailures {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column an ALTER: SQLite adds one at a time.
        m.alter_table(
            Table::alter().table("invitations").add_column(timestamp_with_time_zone_null("fail_time")).to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table("invitations").add_column(text_null("delivery_error")).to_owned()).await
    }
}
