//! The tables of the `feedback` schema as sea-orm entities.

macro_rules! entity {
    ($m:ident, $table:literal, { $($body:tt)* }) => {
        pub mod $m {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model { $($body)* }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity!(account, "accounts", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    pub tenant_id: String,
    pub deleted: bool,
    #[sea_orm(column_type = "Text")]
    pub account: String,
    pub lifecycle_stage: String,
    pub stage_since: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
});

entity!(signal, "account_signals", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    pub tenant_id: String,
    pub band: Option<String>,
    pub score: Option<f64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub plan_outcome: Option<String>,
});

entity!(contact, "contacts", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    pub tenant_id: String,
    pub account_id: Uuid,
    pub deleted: bool,
    #[sea_orm(column_type = "Text")]
    pub contact: String,
});

entity!(segment, "segments", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub expression: String,
});

entity!(tenant, "tenants", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub time_zone: String,
    pub fiscal_year_start_month: i32,
    #[sea_orm(column_type = "Text")]
    pub throttles: String,
    #[sea_orm(column_type = "Text")]
    pub voice_settings: String,
    pub voice_generation: i64,
});

entity!(voice_change, "voice_changes", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub generation: i64,
    pub items: Vec<u8>,
    pub themes: Vec<u8>,
    pub linked: Vec<u8>,
    pub unlinked: Vec<u8>,
});

entity!(survey, "surveys", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub create_time: ChronoDateTimeUtc,
});

entity!(campaign, "campaigns", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub survey_id: Uuid,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub state: String,
    pub standing: bool,
    pub send_time: Option<ChronoDateTimeUtc>,
    pub close_time: Option<ChronoDateTimeUtc>,
    pub last_run: Option<ChronoDateTimeUtc>,
    pub invited: i64,
    pub throttled: i64,
    pub accounts_without_contacts: i64,
    #[sea_orm(column_type = "Text")]
    pub created_by: String,
    pub create_time: ChronoDateTimeUtc,
    pub version: i64,
});

entity!(invitation, "invitations", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub campaign_id: Uuid,
    pub survey_id: Uuid,
    pub kind: String,
    pub account_id: Uuid,
    pub contact_id: Uuid,
    pub cycle: Date,
    pub throttled: bool,
    #[sea_orm(column_type = "Text")]
    pub email: String,
    pub send_time: ChronoDateTimeUtc,
    pub deliver_time: Option<ChronoDateTimeUtc>,
    pub answer_time: Option<ChronoDateTimeUtc>,
    pub expire_time: ChronoDateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub snapshot: String,
    pub fail_time: Option<ChronoDateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub delivery_error: Option<String>,
});

entity!(answer, "answers", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub invitation_id: Uuid,
    pub survey_id: Uuid,
    pub campaign_id: Uuid,
    pub kind: String,
    pub account_id: Uuid,
    pub contact_id: Uuid,
    pub score: Option<i32>,
    pub perception: Option<i32>,
    #[sea_orm(column_type = "Text")]
    pub comment: String,
    #[sea_orm(column_type = "Text")]
    pub answers: String,
    pub answer_time: ChronoDateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub snapshot: String,
});

entity!(team_answer, "team_answers", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub survey_id: Uuid,
    pub account_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub respondent: String,
    pub agreement: i32,
    pub answer_time: ChronoDateTimeUtc,
});

entity!(prediction, "predictions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: Uuid,
    pub survey_id: Uuid,
    pub account_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub predictor: String,
    pub score: Option<i32>,
    pub healthy: Option<bool>,
    pub record_time: ChronoDateTimeUtc,
});

entity!(item, "items", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub account_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub department: String,
    #[sea_orm(column_type = "Text")]
    pub category: String,
    pub cx_dimension: Option<String>,
    pub journey_phase: Option<String>,
    pub severity: i32,
    pub channel: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    #[sea_orm(column_type = "Text")]
    pub snapshot: String,
    pub answer_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub created_by: String,
    pub create_time: ChronoDateTimeUtc,
    /// Set on every row (migration m20261207_000005 filled the older ones);
    /// nullable only because SQLite adds a column without a default.
    pub mention_time: Option<ChronoDateTimeUtc>,
});

entity!(theme, "themes", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    #[sea_orm(column_type = "Text")]
    pub log: String,
    pub status: Option<String>,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
    pub version: i64,
});

entity!(item_theme, "item_themes", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub theme_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub item_id: Uuid,
    pub how: String,
    pub create_time: ChronoDateTimeUtc,
});

entity!(loop_closed, "loops_closed", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub theme_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub change: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    pub create_time: ChronoDateTimeUtc,
});

entity!(subscription, "subscriptions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub department: String,
    #[sea_orm(column_type = "Text")]
    pub category: String,
    pub theme_id: Option<Uuid>,
    pub min_severity: i32,
    pub endpoint_id: Option<Uuid>,
    pub last_digest_day: Option<Date>,
    pub create_time: ChronoDateTimeUtc,
});

entity!(notice, "notices", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub subscription_id: Uuid,
    pub department: String,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub item_ids: String,
    pub day: Option<Date>,
    pub create_time: ChronoDateTimeUtc,
});

entity!(plan_attainment, "plan_attainment", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub plan_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub checkpoint: String,
    pub attainment: f64,
    pub record_time: ChronoDateTimeUtc,
});
