//! The tables of the `playbooks` schema as sea-orm entities.

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
    #[sea_orm(column_type = "Text", nullable)]
    pub health: Option<String>,
    pub lifecycle_stage: String,
    pub stage_since: ChronoDateTimeUtc,
    pub renewal_date: Option<Date>,
    pub last_usage_day: Option<Date>,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
});

entity!(segment, "segments", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub display_name: String,
    #[sea_orm(column_type = "Text")]
    pub expression: String,
    #[sea_orm(column_type = "Text")]
    pub forbidden_touch_models: String,
});

entity!(tenant, "tenants", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub time_zone: String,
    pub schedule_time: String,
    pub fatigue_max_messages: i32,
    pub fatigue_window_days: i32,
    pub last_schedule_day: Option<Date>,
    #[sea_orm(column_type = "Text")]
    pub schedule_lease_owner: String,
    pub schedule_lease_until: Option<ChronoDateTimeUtc>,
    pub review_execution_threshold_percent: i32,
    pub version: i64,
});

entity!(playbook, "playbooks", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub head_version: i64,
    pub live_version: i64,
    #[sea_orm(column_type = "Text")]
    pub live_trigger: String,
    pub round_robin: i64,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
    pub version: i64,
});

entity!(playbook_version, "playbook_versions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub playbook_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub definition: String,
    #[sea_orm(column_type = "Text")]
    pub author: String,
    pub create_time: ChronoDateTimeUtc,
});

entity!(firing, "firings", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub playbook_id: Uuid,
    pub playbook_version: i64,
    pub account_id: Uuid,
    pub trigger_kind: String,
    #[sea_orm(column_type = "Text")]
    pub trigger_key: String,
    pub fire_time: ChronoDateTimeUtc,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub actions: String,
});

entity!(trigger_event, "trigger_events", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: Uuid,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    pub account_id: Option<Uuid>,
    pub occur_time: ChronoDateTimeUtc,
    pub seq: i64,
    pub stage_entered: Option<String>,
    #[sea_orm(column_type = "Blob")]
    pub envelope: Vec<u8>,
});

entity!(cta, "ctas", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub account_id: Uuid,
    pub playbook_id: Option<Uuid>,
    pub playbook_version: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub open_key: Option<String>,
    pub cta_type: String,
    pub priority: i32,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    #[sea_orm(column_type = "Text")]
    pub owner_id: String,
    pub due_date: Option<Date>,
    #[sea_orm(column_type = "Text")]
    pub tasks: String,
    #[sea_orm(column_type = "Text")]
    pub reasons: String,
    pub snooze_until: Option<ChronoDateTimeUtc>,
    pub outcome: String,
    #[sea_orm(column_type = "Text")]
    pub close_note: String,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
    pub close_time: Option<ChronoDateTimeUtc>,
    pub version: i64,
});

entity!(programme, "programmes", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub display_name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub kind: String,
    pub capacity: i32,
    pub open: bool,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
    pub version: i64,
});

entity!(enrolment, "enrolments", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub programme_id: Uuid,
    pub account_id: Uuid,
    #[sea_orm(column_type = "Text", nullable)]
    pub live_key: Option<String>,
    pub status: String,
    pub playbook_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub enrolled_by: String,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
    pub version: i64,
});

macro_rules! versioned {
    ($($m:ident),+) => {$(
        impl banso_kit::db::VersionedTable for $m::Entity {
            const ID: $m::Column = $m::Column::Id;
            const TENANT: $m::Column = $m::Column::TenantId;
            const VERSION: $m::Column = $m::Column::Version;
        }
    )+};
}
versioned!(playbook, cta, programme, enrolment, success_plan);

entity!(account_change, "account_changes", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub firing_id: Uuid,
    pub action_index: i32,
    pub playbook_id: Uuid,
    pub account_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub change: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_time: Option<ChronoDateTimeUtc>,
    #[sea_orm(column_type = "Text")]
    pub lease_owner: String,
    pub lease_until: Option<ChronoDateTimeUtc>,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
});

entity!(success_plan_template, "success_plan_templates", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub display_name: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub create_time: ChronoDateTimeUtc,
});

entity!(success_plan, "success_plans", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub account_id: Uuid,
    pub state: String,
    pub stage: String,
    pub stage_since: ChronoDateTimeUtc,
    pub template_id: Option<Uuid>,
    pub model_id: Option<Uuid>,
    pub follows_plan_id: Option<Uuid>,
    pub playbook_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub created_by: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub active_key: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub review: Option<String>,
    pub target_met: Option<bool>,
    pub roi: Option<f64>,
    pub conclude_time: Option<ChronoDateTimeUtc>,
    pub reading_due: Option<Date>,
    pub off_track: bool,
    pub proxy_end: Option<Date>,
    pub create_time: ChronoDateTimeUtc,
    pub update_time: ChronoDateTimeUtc,
    pub version: i64,
});

entity!(success_model, "success_models", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub plan_id: Uuid,
    pub template_id: Uuid,
    pub segment_id: Option<Uuid>,
    pub theme_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub display_name: String,
    #[sea_orm(column_type = "Text")]
    pub problem: String,
    #[sea_orm(column_type = "Text")]
    pub checkpoints: String,
    #[sea_orm(column_type = "Text")]
    pub usage: String,
    pub create_time: ChronoDateTimeUtc,
});

entity!(success_model_proposal, "success_model_proposals", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: String,
    pub model_id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    pub cta_id: Option<Uuid>,
    pub create_time: ChronoDateTimeUtc,
});
