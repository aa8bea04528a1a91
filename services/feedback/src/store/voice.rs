//! Feedback items, themes and the items in each theme.

use std::collections::HashMap;

use banso_kit::{Error, Result, db};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait as _},
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{item as i, item_theme as it, tenant as tn, theme as t, voice_change as vc},
    from_json, to_json,
};
use crate::domain::{
    suggest::Change,
    voice::{Channel, CxDimension, Department, Item, ItemFields, JourneyPhase, RoadmapStatus, Theme},
};

impl db::VersionedTable for t::Entity {
    const ID: Self::Column = t::Column::Id;
    const TENANT: Self::Column = t::Column::TenantId;
    const VERSION: Self::Column = t::Column::Version;
}

fn parse<T>(what: &str, s: &str, f: impl Fn(&str) -> Option<T>) -> Result<T> {
    f(s).ok_or_else(|| corrupt(what, s))
}

fn item(m: i::Model, themes: Vec<Uuid>) -> Result<Item> {
    Ok(Item {
        id: m.id,
        fields: ItemFields {
            text: m.body,
            channel: parse("channel", &m.channel, Channel::parse)?,
            account_id: m.account_id,
            contact_id: m.contact_id,
            department: parse("department", &m.department, Department::parse)?,
            category: m.category,
            cx_dimension: m
                .cx_dimension
                .as_deref()
                .map(|x| parse("cx dimension", x, CxDimension::parse))
                .transpose()?,
            journey_phase: m
                .journey_phase
                .as_deref()
                .map(|x| parse("journey phase", x, JourneyPhase::parse))
                .transpose()?,
            severity: m.severity,
            mention_time: Some(m.mention_time.unwrap_or(m.create_time)),
        },
        snapshot: from_json("item snapshot", &m.snapshot)?,
        theme_ids: themes,
        answer_id: m.answer_id,
        create_time: m.create_time,
        created_by: m.created_by,
    })
}

fn item_row(tenant: &str, x: &Item) -> Result<i::ActiveModel> {
    let f = &x.fields;
    Ok(i::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        account_id: Set(f.account_id),
        contact_id: Set(f.contact_id),
        department: Set(f.department.as_str().to_string()),
        category: Set(f.category.clone()),
        cx_dimension: Set(f.cx_dimension.map(|d| d.as_str().to_string())),
        journey_phase: Set(f.journey_phase.map(|p| p.as_str().to_string())),
        severity: Set(f.severity),
        channel: Set(f.channel.as_str().to_string()),
        body: Set(f.text.clone()),
        snapshot: Set(to_json("item snapshot", &x.snapshot)?),
        answer_id: Set(x.answer_id),
        created_by: Set(x.created_by.clone()),
        create_time: Set(x.create_time),
        mention_time: Set(Some(x.mention_time())),
    })
}

/// `xs` as one `INSERT … SELECT FROM unnest(…)` on PostgreSQL: a short
/// statement of 18 arrays instead of a VALUES list of 8,000 parameters
/// parsed and bound a batch. The same columns and values as [`item_row`].
fn items_pg(tenant: &str, xs: &[Item]) -> Result<sea_orm::Statement> {
    use sea_orm::{Value, sea_query::ArrayType as T};
    let array = |ty, f: &dyn Fn(&Item) -> Value| db::pg_array(ty, xs, f);
    let snapshots =
        xs.iter().map(|x| to_json("item snapshot", &x.snapshot).map(Value::from)).collect::<Result<Vec<_>>>()?;
    let mut u = db::Unnest::default();
    let tenant = u.param(tenant);
    let id = u.array("uuid", array(T::Uuid, &|x| x.id.into()));
    u.column(i::Column::Id, id);
    u.column(i::Column::TenantId, tenant);
    let account = u.array("uuid", array(T::Uuid, &|x| x.fields.account_id.into()));
    u.column(i::Column::AccountId, account);
    // The driver's arrays hold no NULL: a value and whether there is one.
    type OptUuid = fn(&Item) -> Option<Uuid>;
    let uuids: [(i::Column, OptUuid); 2] =
        [(i::Column::ContactId, |x| x.fields.contact_id), (i::Column::AnswerId, |x| x.answer_id)];
    for (col, get) in uuids {
        let value = u.array("uuid", array(T::Uuid, &|x| get(x).unwrap_or_default().into()));
        let present = u.array("bool", array(T::Bool, &|x| get(x).is_some().into()));
        u.column(col, format!("CASE WHEN {present} THEN {value} END"));
    }
    type OptText = fn(&Item) -> Option<&'static str>;
    let texts: [(i::Column, OptText); 2] = [
        (i::Column::CxDimension, |x| x.fields.cx_dimension.map(|d| d.as_str())),
        (i::Column::JourneyPhase, |x| x.fields.journey_phase.map(|p| p.as_str())),
    ];
    for (col, get) in texts {
        let value = u.array("text", array(T::String, &|x| get(x).unwrap_or_default().into()));
        let present = u.array("bool", array(T::Bool, &|x| get(x).is_some().into()));
        u.column(col, format!("CASE WHEN {present} THEN {value} END"));
    }
    let department = u.array("text", array(T::String, &|x| x.fields.department.as_str().into()));
    u.column(i::Column::Department, department);
    let category = u.array("text", array(T::String, &|x| x.fields.category.clone().into()));
    u.column(i::Column::Category, category);
    let severity = u.array("int4", array(T::Int, &|x| x.fields.severity.into()));
    u.column(i::Column::Severity, severity);
    let channel = u.array("text", array(T::String, &|x| x.fields.channel.as_str().into()));
    u.column(i::Column::Channel, channel);
    let body = u.array("text", array(T::String, &|x| x.fields.text.clone().into()));
    u.column(i::Column::Body, body);
    let snapshot = u.array("text", Value::Array(T::String, Some(Box::new(snapshots))));
    u.column(i::Column::Snapshot, snapshot);
    let by = u.array("text", array(T::String, &|x| x.created_by.clone().into()));
    u.column(i::Column::CreatedBy, by);
    let created = u.array("timestamptz", array(T::ChronoDateTimeUtc, &|x| x.create_time.into()));
    u.column(i::Column::CreateTime, created);
    let mentioned = u.array("timestamptz", array(T::ChronoDateTimeUtc, &|x| x.mention_time().into()));
    u.column(i::Column::MentionTime, mentioned);
    Ok(u.statement(i::Entity, ""))
}

/// Inserts items (bounded statements) with their themes.
pub(crate) async fn insert_items(conn: &impl ConnectionTrait, tenant: &str, xs: &[Item]) -> Result<()> {
    let postgres = db::is_postgres(conn);
    for chunk in xs.chunks(500) {
        if chunk.is_empty() {
            continue;
        }
        if postgres {
            conn.execute_raw(items_pg(tenant, chunk)?).await?;
        } else {
            let rows = chunk.iter().map(|x| item_row(tenant, x)).collect::<Result<Vec<_>>>()?;
            i::Entity::insert_many(rows).exec_without_returning(conn).await?;
        }
        let links: Vec<it::ActiveModel> = chunk
            .iter()
            .flat_map(|x| x.theme_ids.iter().map(move |t| (x, *t)))
            .map(|(x, theme)| it::ActiveModel {
                tenant_id: Set(tenant.to_string()),
                theme_id: Set(theme),
                item_id: Set(x.id),
                how: Set("keyword".into()),
                create_time: Set(x.create_time),
            })
            .collect();
        for links in links.chunks(1000) {
            it::Entity::insert_many(links.to_vec()).exec_without_returning(conn).await?;
        }
    }
    Ok(())
}

/// The themes of these items.
pub(crate) async fn themes_of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    items: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (item, theme) in links_where(conn, tenant, it::Column::ItemId, items).await? {
        out.entry(item).or_default().push(theme);
    }
    Ok(out)
}

/// The (item, theme) links whose `column` (the item or the theme) is one of
/// `ids`, by theme.
async fn links_where(
    conn: &impl ConnectionTrait,
    tenant: &str,
    column: it::Column,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let rows: Vec<(Uuid, Uuid)> = it::Entity::find()
            .select_only()
            .column(it::Column::ItemId)
            .column(it::Column::ThemeId)
            .filter(it::Column::TenantId.eq(tenant))
            .filter(column.is_in(chunk.iter().copied()))
            .order_by_asc(it::Column::ThemeId)
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

pub(super) async fn with_themes(conn: &impl ConnectionTrait, tenant: &str, rows: Vec<i::Model>) -> Result<Vec<Item>> {
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    let mut themes = themes_of(conn, tenant, &ids).await?;
    rows.into_iter()
        .map(|m| {
            let t = themes.remove(&m.id).unwrap_or_default();
            item(m, t)
        })
        .collect()
}

pub(crate) async fn find_item(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Item>> {
    let Some(m) = i::Entity::find_by_id(id).filter(i::Column::TenantId.eq(tenant)).one(conn).await? else {
        return Ok(None);
    };
    Ok(with_themes(conn, tenant, vec![m]).await?.pop())
}

pub(crate) async fn get_item(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Item> {
    find_item(conn, tenant, id).await?.ok_or_else(|| Error::not_found("feedback item", id.to_string()))
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemFilter {
    pub account: Option<Uuid>,
    pub theme: Option<Uuid>,
    pub unthemed: bool,
    pub department: Option<Department>,
}

/// Newest first (ids are UUIDv7).
pub(crate) async fn list_items(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &ItemFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Item>> {
    let mut q = i::Entity::find().filter(i::Column::TenantId.eq(tenant));
    if let Some(a) = f.account {
        q = q.filter(i::Column::AccountId.eq(a));
    }
    if let Some(d) = f.department {
        q = q.filter(i::Column::Department.eq(d.as_str()));
    }
    if let Some(theme) = f.theme {
        q = q.filter(
            i::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(it::Column::ItemId)
                    .from(it::Entity)
                    .and_where(it::Column::TenantId.eq(tenant))
                    .and_where(it::Column::ThemeId.eq(theme))
                    .to_owned(),
            ),
        );
    }
    if f.unthemed {
        q = q.filter(
            i::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(it::Column::ItemId)
                    .from(it::Entity)
                    .and_where(it::Column::TenantId.eq(tenant))
                    .to_owned(),
            ),
        );
    }
    if let Some(b) = before {
        q = q.filter(i::Column::Id.lt(b));
    }
    let rows = q.order_by(i::Column::Id, Order::Desc).limit(limit).all(conn).await?;
    with_themes(conn, tenant, rows).await
}

/// Every item of the tenant, oldest first (the suggestion index, ranking).
pub(crate) async fn all_items(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<Item>> {
    let rows = i::Entity::find().filter(i::Column::TenantId.eq(tenant)).order_by_asc(i::Column::Id).all(conn).await?;
    with_themes(conn, tenant, rows).await
}

/// Links an item to a theme; false when it was already.
pub(crate) async fn link(
    conn: &impl ConnectionTrait,
    tenant: &str,
    item: Uuid,
    theme: Uuid,
    how: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let row = it::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        theme_id: Set(theme),
        item_id: Set(item),
        how: Set(how.to_string()),
        create_time: Set(at),
    };
    let r = it::Entity::insert(row)
        .on_conflict_do_nothing_on([it::Column::TenantId, it::Column::ThemeId, it::Column::ItemId])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(r, sea_orm::TryInsertResult::Inserted(n) if n > 0))
}

/// Unlinks an item from a theme; false when it was not in it.
pub(crate) async fn unlink(conn: &impl ConnectionTrait, tenant: &str, item: Uuid, theme: Uuid) -> Result<bool> {
    let r = it::Entity::delete_many()
        .filter(it::Column::TenantId.eq(tenant))
        .filter(it::Column::ThemeId.eq(theme))
        .filter(it::Column::ItemId.eq(item))
        .exec(conn)
        .await?;
    Ok(r.rows_affected > 0)
}

/// Items per theme.
pub(crate) async fn theme_sizes(
    conn: &impl ConnectionTrait,
    tenant: &str,
    themes: &[Uuid],
) -> Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> = it::Entity::find()
        .select_only()
        .column(it::Column::ThemeId)
        .column_as(it::Column::ItemId.count(), "n")
        .filter(it::Column::TenantId.eq(tenant))
        .filter(it::Column::ThemeId.is_in(themes.iter().copied()))
        .group_by(it::Column::ThemeId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Generations of changes kept per tenant: an index further behind than
/// this is built again rather than caught up.
pub(crate) const CHANGES_KEPT: i64 = 1024;

/// Moves the tenant's generation of items and themes and records what it
/// changed (in the transaction that made the change, as its last write:
/// the tenant row stays locked until the commit, so generations commit in
/// order and a reader that sees generation g sees every change up to g).
/// Returns the new generation.
pub(crate) async fn bump_generation(conn: &impl ConnectionTrait, tenant: &str, change: &Change) -> Result<i64> {
    let row = tn::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        time_zone: Set("UTC".into()),
        fiscal_year_start_month: Set(1),
        throttles: Set("{}".into()),
        voice_settings: Set("{}".into()),
        voice_generation: Set(0),
    };
    tn::Entity::insert(row).on_conflict_do_nothing_on([tn::Column::TenantId]).exec(conn).await?;
    tn::Entity::update_many()
        .col_expr(tn::Column::VoiceGeneration, Expr::col(tn::Column::VoiceGeneration).add(1))
        .filter(tn::Column::TenantId.eq(tenant))
        .exec(conn)
        .await?;
    let g = generation(conn, tenant).await?;
    vc::Entity::insert(vc::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        generation: Set(g),
        items: Set(ids_bytes(change.items.iter().copied())),
        themes: Set(ids_bytes(change.themes.iter().copied())),
        linked: Set(ids_bytes(change.linked.iter().flat_map(|(i, t)| [*i, *t]))),
        unlinked: Set(ids_bytes(change.unlinked.iter().flat_map(|(i, t)| [*i, *t]))),
    })
    .exec_without_returning(conn)
    .await?;
    // Pruned now and then, not at every change.
    if g.rem_euclid(64) == 0 {
        vc::Entity::delete_many()
            .filter(vc::Column::TenantId.eq(tenant))
            .filter(vc::Column::Generation.lte(g - CHANGES_KEPT))
            .exec(conn)
            .await?;
    }
    Ok(g)
}

/// What the generations after `after` up to `upto` changed, in order; none
/// if some of them are no longer kept.
pub(crate) async fn changes_between(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: i64,
    upto: i64,
) -> Result<Option<Vec<Change>>> {
    if upto <= after {
        return Ok(Some(vec![]));
    }
    if upto - after > CHANGES_KEPT {
        return Ok(None);
    }
    let rows = vc::Entity::find()
        .filter(vc::Column::TenantId.eq(tenant))
        .filter(vc::Column::Generation.gt(after))
        .filter(vc::Column::Generation.lte(upto))
        .order_by_asc(vc::Column::Generation)
        .all(conn)
        .await?;
    // Every generation has its row, unless pruned.
    if rows.len() as i64 != upto - after {
        return Ok(None);
    }
    rows.into_iter()
        .map(|m| {
            Ok(Change {
                items: bytes_ids(&m.items)?,
                themes: bytes_ids(&m.themes)?,
                linked: pairs(bytes_ids(&m.linked)?),
                unlinked: pairs(bytes_ids(&m.unlinked)?),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Ids as their 16 bytes each, one after another.
fn ids_bytes(ids: impl Iterator<Item = Uuid>) -> Vec<u8> {
    ids.flat_map(|id| id.into_bytes()).collect()
}

fn bytes_ids(b: &[u8]) -> Result<Vec<Uuid>> {
    if !b.len().is_multiple_of(16) {
        return Err(corrupt("voice change ids", format!("{} bytes", b.len())));
    }
    Ok(b.chunks_exact(16).map(|c| Uuid::from_slice(c).unwrap_or_default()).collect())
}

fn pairs(ids: Vec<Uuid>) -> Vec<(Uuid, Uuid)> {
    ids.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

pub(crate) async fn generation(conn: &impl ConnectionTrait, tenant: &str) -> Result<i64> {
    Ok(tn::Entity::find_by_id(tenant.to_string()).one(conn).await?.map_or(0, |m| m.voice_generation))
}

fn theme(m: t::Model) -> Result<Theme> {
    Ok(Theme {
        id: m.id,
        body: from_json("theme", &m.body)?,
        log: from_json("theme log", &m.log)?,
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    })
}

fn theme_row(tenant: &str, x: &Theme) -> Result<t::ActiveModel> {
    Ok(t::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        body: Set(to_json("theme", &x.body)?),
        log: Set(to_json("theme log", &x.log)?),
        status: Set(x.status().map(|s: RoadmapStatus| s.as_str().to_string())),
        create_time: Set(x.create_time),
        update_time: Set(x.update_time),
        version: Set(x.version),
    })
}

pub(crate) async fn insert_theme(conn: &impl ConnectionTrait, tenant: &str, x: &Theme) -> Result<()> {
    t::Entity::insert(theme_row(tenant, x)?).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn find_theme(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<Theme>> {
    t::Entity::find_by_id(id).filter(t::Column::TenantId.eq(tenant)).one(conn).await?.map(theme).transpose()
}

pub(crate) async fn get_theme(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Theme> {
    find_theme(conn, tenant, id).await?.ok_or_else(|| Error::not_found("theme", id.to_string()))
}

pub(crate) async fn update_theme(
    conn: &impl ConnectionTrait,
    tenant: &str,
    current: &Theme,
    next: &Theme,
) -> Result<bool> {
    db::update_at_version::<t::Entity>(conn, tenant, current.id, current.version, theme_row(tenant, next)?).await
}

/// Oldest first.
pub(crate) async fn list_themes(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Theme>> {
    let mut q = t::Entity::find().filter(t::Column::TenantId.eq(tenant));
    if let Some(a) = after {
        q = q.filter(t::Column::Id.gt(a));
    }
    q.order_by(t::Column::Id, Order::Asc).limit(limit).all(conn).await?.into_iter().map(theme).collect()
}

/// Every theme of the tenant.
pub(crate) async fn all_themes(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<Theme>> {
    t::Entity::find()
        .filter(t::Column::TenantId.eq(tenant))
        .order_by_asc(t::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(theme)
        .collect()
}

/// These items' texts and themes (the suggestion index reads nothing else).
pub(crate) async fn item_texts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String, Vec<Uuid>)>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<(Uuid, String)> = i::Entity::find()
            .select_only()
            .column(i::Column::Id)
            .column(i::Column::Body)
            .filter(i::Column::TenantId.eq(tenant))
            .filter(i::Column::Id.is_in(chunk.iter().copied()))
            .order_by_asc(i::Column::Id)
            .into_tuple()
            .all(conn)
            .await?;
        let mut themes = themes_of(conn, tenant, chunk).await?;
        out.extend(rows.into_iter().map(|(id, body)| (id, body, themes.remove(&id).unwrap_or_default())));
    }
    Ok(out)
}

/// These themes (those that are still there).
pub(crate) async fn themes_by_ids(conn: &impl ConnectionTrait, tenant: &str, ids: &[Uuid]) -> Result<Vec<Theme>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows = t::Entity::find()
            .filter(t::Column::TenantId.eq(tenant))
            .filter(t::Column::Id.is_in(chunk.iter().copied()))
            .order_by_asc(t::Column::Id)
            .all(conn)
            .await?;
        for m in rows {
            out.push(theme(m)?);
        }
    }
    Ok(out)
}

/// The (item, theme) links of these themes.
pub(crate) async fn links_of_themes(
    conn: &impl ConnectionTrait,
    tenant: &str,
    themes: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>> {
    links_where(conn, tenant, it::Column::ThemeId, themes).await
}

/// How many items and item–theme links the tenant has.
pub(crate) async fn item_and_link_counts(conn: &impl ConnectionTrait, tenant: &str) -> Result<(u64, u64)> {
    use sea_orm::PaginatorTrait;
    let items = i::Entity::find().filter(i::Column::TenantId.eq(tenant)).count(conn).await?;
    let links = it::Entity::find().filter(it::Column::TenantId.eq(tenant)).count(conn).await?;
    Ok((items, links))
}
