//! sea-orm entities of the `accounts` schema.

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        #[sea_orm(column_type = "Text")]
        pub name: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub external_id: Option<String>,
        #[sea_orm(column_type = "Text")]
        pub industry: String,
        pub employee_count: Option<i64>,
        #[sea_orm(column_type = "Text")]
        pub revenue_band: String,
        #[sea_orm(column_type = "Text")]
        pub region: String,
        #[sea_orm(column_type = "Text")]
        pub plan_tier: String,
        pub lifecycle_stage: String,
        pub touch_model: String,
        /// `[{"touch_model":"high","percent":100}]`; filled for old rows by M0005.
        pub touch_mix: Option<Json>,
        /// Set by hand: the touch-mix rules leave it (M0006; old rows false).
        pub touch_mix_manual: bool,
        #[sea_orm(column_type = "Text")]
        pub owner_id: String,
        pub arr_currency: Option<String>,
        pub arr_amount_minor: Option<i64>,
        pub contract_start_date: Option<Date>,
        pub renewal_date: Option<Date>,
        pub tags: Json,
        pub custom_attributes: Json,
        pub create_time: ChronoDateTimeUtc,
        pub update_time: ChronoDateTimeUtc,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod account_tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "account_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tag: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod contact {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "contacts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub account_id: Uuid,
        #[sea_orm(column_type = "Text")]
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub email: String,
        #[sea_orm(column_type = "Text")]
        pub email_lower: String,
        #[sea_orm(column_type = "Text")]
        pub title: String,
        #[sea_orm(column_type = "Text")]
        pub department: String,
        pub level: Option<String>,
        pub champion: bool,
        pub decision_maker: bool,
        #[sea_orm(column_type = "Text", nullable)]
        pub external_id: Option<String>,
        pub create_time: ChronoDateTimeUtc,
        pub update_time: ChronoDateTimeUtc,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tenant_settings {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(column_type = "Text")]
        pub time_zone: String,
        pub fiscal_year_start_month: i32,
        pub default_currency_code: String,
        pub update_time: ChronoDateTimeUtc,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod contract_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "contract_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub account_id: Uuid,
        pub kind: String,
        pub currency: String,
        pub arr_before: i64,
        pub arr_after: i64,
        pub effective_date: Date,
        pub term_end: Option<Date>,
        #[sea_orm(column_type = "Text")]
        pub reason_code: String,
        #[sea_orm(column_type = "Text")]
        pub note: String,
        #[sea_orm(column_type = "Text")]
        pub recorded_by: String,
        pub create_time: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "activities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub account_id: Uuid,
        pub kind: String,
        pub contact_ids: Json,
        #[sea_orm(column_type = "Text")]
        pub author_id: String,
        pub occur_time: ChronoDateTimeUtc,
        #[sea_orm(column_type = "Text")]
        pub subject: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub external_ref: Option<String>,
        pub create_time: ChronoDateTimeUtc,
        /// "vendor", "customer", or NULL (not a touch).
        pub origin: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod segment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "segments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        #[sea_orm(column_type = "Text")]
        pub display_name: String,
        #[sea_orm(column_type = "Text")]
        pub description: String,
        #[sea_orm(column_type = "Text")]
        pub expression: String,
        /// `["tech"]`; NULL for none (rows before M0005).
        pub forbidden_touch_models: Option<Json>,
        pub create_time: ChronoDateTimeUtc,
        pub update_time: ChronoDateTimeUtc,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod write_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "write_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        #[sea_orm(column_type = "Text")]
        pub display_name: String,
        #[sea_orm(column_type = "Text")]
        pub key_prefix: String,
        pub key_hash: String,
        #[sea_orm(column_type = "Text")]
        pub creator: String,
        pub create_time: ChronoDateTimeUtc,
        pub revoke_time: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

// The versioned tables: their optimistic writes are kit::db's
// `update_at_version` / `delete_at_version`.
macro_rules! versioned {
    ($($m:ident),+) => {$(
        impl banso_kit::db::VersionedTable for $m::Entity {
            const ID: $m::Column = $m::Column::Id;
            const TENANT: $m::Column = $m::Column::TenantId;
            const VERSION: $m::Column = $m::Column::Version;
        }
    )+};
}
versioned!(account, contact, segment);

pub mod touch_mix_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "touch_mix_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: String,
        pub account_id: Uuid,
        pub change_time: ChronoDateTimeUtc,
        pub touch_mix: Json,
        pub set_by: String,
        #[sea_orm(column_type = "Text")]
        pub setter: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod touch_mix_rules {
    use sea_orm::entity::prelude::*;

    /// A tenant's touch-mix rules, in order, as one JSON array.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "touch_mix_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub rules: Json,
        pub update_time: ChronoDateTimeUtc,
        pub version: i64,
        pub applied_version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
