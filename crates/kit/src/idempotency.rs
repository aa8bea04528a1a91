//! `request_id` idempotency keys for creates (AIP-155).
//!
//! Each service includes [`Migration`] in its migrator, so the table lives
//! in the service's own schema and a key is recorded in the same transaction
//! as the row it created: either both exist or neither. A retry finds the key
//! and returns the first result; two concurrent first attempts race on the
//! primary key and the loser rolls back and reads the winner's result.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, entity::prelude::*};
use sea_orm_migration::{prelude::*, schema::*};

use crate::error::{Error, Result, shown};

pub mod request_id {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "request_ids")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub operation: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub resource_id: String,
        pub create_time: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Checks a client's `request_id`: at most 128 characters of printable ASCII.
pub fn validate(field: &str, request_id: &str) -> Result<()> {
    if request_id.len() > 128 || !request_id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::invalid(
            field,
            format!("must be at most 128 printable ASCII characters, got {}", shown(request_id)),
        ));
    }
    Ok(())
}

/// An optional `request_id` field: `None` when empty, else checked.
pub fn optional<'a>(field: &str, request_id: &'a str) -> Result<Option<&'a str>> {
    if request_id.is_empty() {
        return Ok(None);
    }
    validate(field, request_id)?;
    Ok(Some(request_id))
}

/// The resource a key already created, if any.
pub async fn lookup(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    operation: &str,
    request_id: &str,
) -> Result<Option<String>> {
    Ok(request_id::Entity::find_by_id((tenant_id.to_owned(), operation.to_owned(), request_id.to_owned()))
        .one(conn)
        .await?
        .map(|m| m.resource_id))
}

/// Records that `request_id` created `resource_id`; call inside the creating
/// transaction. ALREADY_EXISTS means a concurrent attempt won.
pub async fn record(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    operation: &str,
    request_id: &str,
    resource_id: &str,
) -> Result<()> {
    request_id::Entity::insert(request_id::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        operation: Set(operation.to_owned()),
        request_id: Set(request_id.to_owned()),
        resource_id: Set(resource_id.to_owned()),
        create_time: Set(chrono::Utc::now()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Forgets keys older than `age` (clients retry within minutes, not weeks).
pub async fn prune(conn: &impl ConnectionTrait, age: chrono::Duration) -> Result<u64> {
    let cutoff = chrono::Utc::now() - age;
    let res = request_id::Entity::delete_many().filter(request_id::Column::CreateTime.lt(cutoff)).exec(conn).await?;
    Ok(res.rows_affected)
}

/// Creates the `request_ids` table in the service's schema.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m00000000_000000_kit_request_ids"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("request_ids")
                    .if_not_exists()
                    .col(string_len("tenant_id", 64))
                    .col(string_len("operation", 64))
                    .col(string_len("request_id", 128))
                    .col(string_len("resource_id", 64))
                    .col(timestamp_with_time_zone("create_time"))
                    .primary_key(Index::create().col("tenant_id").col("operation").col("request_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_ids_create_time")
                    .table("request_ids")
                    .col("create_time")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("request_ids").to_owned()).await
    }
}
