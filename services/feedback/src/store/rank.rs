//! What target selection reads beyond the projection and the themes:
//! every theme's mentions in one pass, and the latest NPS answer of
//! accounts.

use std::collections::HashMap;

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entities::{answer as a, item as i, item_theme as it};
use crate::domain::survey::Kind;

/// An item in a theme, as much of it as ranking reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MentionRow {
    pub theme_id: Uuid,
    pub account_id: Uuid,
    pub contact_id: Option<Uuid>,
    /// When the customer said it.
    pub mention_time: DateTime<Utc>,
    pub severity: i32,
}

/// Every (theme, item) link of the tenant with the item's account, contact,
/// mention time and severity, no item bodies: two sequential scans at once — the
/// items' six columns, the links' two — joined here. (On SQLite a join
/// looks each item up by id in theme order, several times slower.)
pub(crate) async fn mentions(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<MentionRow>> {
    let items = i::Entity::find()
        .select_only()
        .column(i::Column::Id)
        .column(i::Column::AccountId)
        .column(i::Column::ContactId)
        .column(i::Column::CreateTime)
        .column(i::Column::MentionTime)
        .column(i::Column::Severity)
        .filter(i::Column::TenantId.eq(tenant))
        .into_tuple::<(Uuid, Uuid, Option<Uuid>, DateTime<Utc>, Option<DateTime<Utc>>, i32)>()
        .all(conn);
    let links = it::Entity::find()
        .select_only()
        .column(it::Column::ThemeId)
        .column(it::Column::ItemId)
        .filter(it::Column::TenantId.eq(tenant))
        .into_tuple::<(Uuid, Uuid)>()
        .all(conn);
    let (items, links) = tokio::try_join!(items, links)?;
    let items: HashMap<Uuid, (Uuid, Option<Uuid>, DateTime<Utc>, i32)> = items
        .into_iter()
        .map(|(id, account, contact, created, mentioned, severity)| {
            (id, (account, contact, mentioned.unwrap_or(created), severity))
        })
        .collect();
    Ok(links
        .into_iter()
        .filter_map(|(theme_id, item)| {
            let (account_id, contact_id, mention_time, severity) = *items.get(&item)?;
            Some(MentionRow { theme_id, account_id, contact_id, mention_time, severity })
        })
        .collect())
}

/// The score of each account's latest scored NPS answer (a tie in time
/// goes to the later id), for these accounts.
pub(crate) async fn latest_nps(
    conn: &impl ConnectionTrait,
    tenant: &str,
    accounts: &[Uuid],
) -> Result<HashMap<Uuid, i32>> {
    let mut out = HashMap::new();
    // Bounded IN lists: SQLite takes at most 32,766 parameters.
    for chunk in accounts.chunks(1000) {
        let rows: Vec<(Uuid, Option<i32>)> = a::Entity::find()
            .select_only()
            .column(a::Column::AccountId)
            .column(a::Column::Score)
            .filter(a::Column::TenantId.eq(tenant))
            .filter(a::Column::Kind.eq(Kind::Nps.as_str()))
            .filter(a::Column::Score.is_not_null())
            .filter(a::Column::AccountId.is_in(chunk.iter().copied()))
            .order_by_asc(a::Column::AnswerTime)
            .order_by_asc(a::Column::Id)
            .into_tuple()
            .all(conn)
            .await?;
        // Oldest first: the last one an account has wins.
        out.extend(rows.into_iter().filter_map(|(account, score)| score.map(|s| (account, s))));
    }
    Ok(out)
}
