//! The inbox: a consumer's record of the events it has applied.
//!
//! [`claim`] the event inside the transaction that applies it: if the claim
//! is new, apply and commit both; if the event was already claimed (a
//! redelivery), skip it. Effects are therefore exactly-once even though
//! delivery is at-least-once.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::OnConflict};
use sea_orm_migration::{prelude::*, schema::*};

use crate::envelope::Envelope;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub tenant_id: String,
        pub processed_time: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Claims `envelope` for `consumer`: true if this is its first handling.
/// Never fails on a duplicate (which would abort a PostgreSQL transaction).
pub async fn claim(conn: &impl ConnectionTrait, consumer: &str, envelope: &Envelope) -> Result<bool, DbErr> {
    let inserted = entity::Entity::insert(entity::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(envelope.id.clone()),
        tenant_id: Set(envelope.tenant_id.clone()),
        processed_time: Set(chrono::Utc::now()),
    })
    .on_conflict(OnConflict::columns([entity::Column::Consumer, entity::Column::EventId]).do_nothing().to_owned())
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Forgets claims older than `age` (longer than any redelivery can take).
pub async fn prune(conn: &impl ConnectionTrait, age: chrono::Duration) -> Result<u64, DbErr> {
    let cutoff = chrono::Utc::now() - age;
    Ok(entity::Entity::delete_many().filter(entity::Column::ProcessedTime.lt(cutoff)).exec(conn).await?.rows_affected)
}

/// Creates `inbox` in the consuming service's schema.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m00000000_000002_events_inbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("inbox")
                .if_not_exists()
                .col(string_len("consumer", 64))
                .col(string_len("event_id", 36))
                .col(string_len("tenant_id", 64))
                .col(timestamp_with_time_zone("processed_time"))
                .primary_key(Index::create().col("consumer").col("event_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("inbox_processed_time")
                .table("inbox")
                .col("processed_time")
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("inbox").to_owned()).await
    }
}
