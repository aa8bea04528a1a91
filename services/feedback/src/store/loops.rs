//! Closing the loop: who raised a theme, and which accounts a closed loop
//! told (`loops_closed`, whose primary key — tenant, theme, change,
//! account — is the once of LoopClosed).

use std::collections::{BTreeMap, HashMap, HashSet};

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict, Query},
};
use uuid::Uuid;

use super::entities::{item as i, item_theme as it, loop_closed as lc};
use crate::domain::loops::Raised;

/// The theme's items with their account and contact, oldest first.
pub(crate) async fn raised(conn: &impl ConnectionTrait, tenant: &str, theme: Uuid) -> Result<Vec<Raised>> {
    let rows: Vec<(Uuid, Uuid, Option<Uuid>)> = i::Entity::find()
        .select_only()
        .column(i::Column::Id)
        .column(i::Column::AccountId)
        .column(i::Column::ContactId)
        .filter(i::Column::TenantId.eq(tenant))
        .filter(
            i::Column::Id.in_subquery(
                Query::select()
                    .column(it::Column::ItemId)
                    .from(it::Entity)
                    .and_where(it::Column::TenantId.eq(tenant))
                    .and_where(it::Column::ThemeId.eq(theme))
                    .to_owned(),
            ),
        )
        .order_by_asc(i::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|(item, account, contact)| Raised { item, account, contact }).collect())
}

/// Records that change `change` of `theme` told `accounts`; returns those
/// newly recorded (an account told before by this change is not again).
/// One `INSERT … ON CONFLICT DO NOTHING RETURNING` per chunk: exact under
/// concurrency on both databases.
pub(crate) async fn record_told(
    conn: &impl ConnectionTrait,
    tenant: &str,
    theme: Uuid,
    change: i32,
    accounts: &[Uuid],
    at: DateTime<Utc>,
) -> Result<HashSet<Uuid>> {
    let mut inserted = HashSet::new();
    for chunk in accounts.chunks(500) {
        let mut q = Query::insert();
        q.into_table(lc::Entity).columns([
            lc::Column::TenantId,
            lc::Column::ThemeId,
            lc::Column::Change,
            lc::Column::AccountId,
            lc::Column::CreateTime,
        ]);
        for a in chunk {
            q.values([Expr::val(tenant), Expr::val(theme), Expr::val(change), Expr::val(*a), Expr::val(at)])
                .map_err(|e| banso_kit::Error::internal(anyhow::anyhow!("loops_closed row: {e}")))?;
        }
        q.on_conflict(
            OnConflict::columns([lc::Column::TenantId, lc::Column::ThemeId, lc::Column::Change, lc::Column::AccountId])
                .do_nothing()
                .to_owned(),
        )
        .returning_col(lc::Column::AccountId);
        for r in conn.query_all(&q).await? {
            inserted.insert(r.try_get::<Uuid>("", "account_id")?);
        }
    }
    Ok(inserted)
}

/// Accounts told per theme and change (its place in the roadmap history).
pub(crate) async fn told(
    conn: &impl ConnectionTrait,
    tenant: &str,
    themes: &[Uuid],
) -> Result<HashMap<Uuid, BTreeMap<i32, i64>>> {
    let mut out: HashMap<Uuid, BTreeMap<i32, i64>> = HashMap::new();
    for chunk in themes.chunks(1000) {
        let rows: Vec<(Uuid, i32, i64)> = lc::Entity::find()
            .select_only()
            .column(lc::Column::ThemeId)
            .column(lc::Column::Change)
            .column_as(lc::Column::AccountId.count(), "n")
            .filter(lc::Column::TenantId.eq(tenant))
            .filter(lc::Column::ThemeId.is_in(chunk.iter().copied()))
            .group_by(lc::Column::ThemeId)
            .group_by(lc::Column::Change)
            .into_tuple()
            .all(conn)
            .await?;
        for (theme, change, n) in rows {
            out.entry(theme).or_default().insert(change, n);
        }
    }
    Ok(out)
}
