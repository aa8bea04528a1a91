//! Campaigns and their invitations.

use std::collections::HashMap;

use banso_kit::{Error, Result, db};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    corrupt,
    entities::{campaign as c, invitation as i},
    from_json, to_json,
};
use crate::domain::{
    campaign::{Campaign, Counts, Failure, Invitation, State, Status},
    projection::Snapshot,
    results::InvitationFact,
    survey::Kind,
};

impl db::VersionedTable for c::Entity {
    const ID: Self::Column = c::Column::Id;
    const TENANT: Self::Column = c::Column::TenantId;
    const VERSION: Self::Column = c::Column::Version;
}

fn kind(s: &str) -> Result<Kind> {
    Kind::parse(s).ok_or_else(|| corrupt("survey kind", s))
}

fn campaign(m: c::Model) -> Result<(Campaign, i64)> {
    Ok((
        Campaign {
            id: m.id,
            survey_id: m.survey_id,
            kind: kind(&m.kind)?,
            body: from_json("campaign", &m.body)?,
            state: State::parse(&m.state).ok_or_else(|| corrupt("campaign state", &m.state))?,
            close_time: m.close_time,
            counts: Counts {
                invited: m.invited,
                throttled: m.throttled,
                accounts_without_contacts: m.accounts_without_contacts,
                ..Counts::default()
            },
            created_by: m.created_by,
            create_time: m.create_time,
            last_run: m.last_run,
        },
        m.version,
    ))
}

fn campaign_row(tenant: &str, x: &Campaign, version: i64) -> Result<c::ActiveModel> {
    Ok(c::ActiveModel {
        id: Set(x.id),
        tenant_id: Set(tenant.to_string()),
        survey_id: Set(x.survey_id),
        kind: Set(x.kind.as_str().to_string()),
        body: Set(to_json("campaign", &x.body)?),
        state: Set(x.state.as_str().to_string()),
        standing: Set(x.body.schedule.is_standing()),
        send_time: Set(match x.body.schedule {
            crate::domain::campaign::Schedule::Once { send_time } => Some(send_time),
            _ => None,
        }),
        close_time: Set(x.close_time),
        last_run: Set(x.last_run),
        invited: Set(x.counts.invited),
        throttled: Set(x.counts.throttled),
        accounts_without_contacts: Set(x.counts.accounts_without_contacts),
        created_by: Set(x.created_by.clone()),
        create_time: Set(x.create_time),
        version: Set(version),
    })
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, x: &Campaign) -> Result<()> {
    c::Entity::insert(campaign_row(tenant, x, 1)?).exec_without_returning(conn).await?;
    Ok(())
}

/// A campaign with its version (for the claim of a run).
pub(crate) async fn find(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<Option<(Campaign, i64)>> {
    c::Entity::find_by_id(id).filter(c::Column::TenantId.eq(tenant)).one(conn).await?.map(campaign).transpose()
}

pub(crate) async fn get(conn: &impl ConnectionTrait, tenant: &str, id: Uuid) -> Result<(Campaign, i64)> {
    find(conn, tenant, id).await?.ok_or_else(|| Error::not_found("campaign", id.to_string()))
}

/// Writes `x` over the row at `version` (its version + 1); false when
/// another writer moved it first.
pub(crate) async fn update(conn: &impl ConnectionTrait, tenant: &str, x: &Campaign, version: i64) -> Result<bool> {
    db::update_at_version::<c::Entity>(conn, tenant, x.id, version, campaign_row(tenant, x, version + 1)?).await
}

/// Newest first.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Option<Uuid>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Campaign>> {
    let mut q = c::Entity::find().filter(c::Column::TenantId.eq(tenant));
    if let Some(s) = survey {
        q = q.filter(c::Column::SurveyId.eq(s));
    }
    if let Some(b) = before {
        q = q.filter(c::Column::Id.lt(b));
    }
    q.order_by(c::Column::Id, Order::Desc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| campaign(m).map(|(x, _)| x))
        .collect()
}

/// Campaigns of every tenant with invitations to send at `now`: one-off
/// ones whose time came, standing ones not run since `ran_before`.
pub(crate) async fn due(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    ran_before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(String, Uuid)>> {
    let once = Condition::all().add(c::Column::State.eq(State::Scheduled.as_str())).add(c::Column::SendTime.lte(now));
    let standing = Condition::all()
        .add(c::Column::State.eq(State::Active.as_str()))
        .add(c::Column::Standing.eq(true))
        .add(Condition::any().add(c::Column::LastRun.is_null()).add(c::Column::LastRun.lt(ran_before)));
    let rows = c::Entity::find()
        .filter(Condition::any().add(once).add(standing))
        .order_by_asc(c::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|m| (m.tenant_id, m.id)).collect())
}

fn invitation(m: i::Model) -> Result<(Invitation, Snapshot)> {
    Ok((
        Invitation {
            id: m.id,
            campaign_id: m.campaign_id,
            survey_id: m.survey_id,
            kind: kind(&m.kind)?,
            account_id: m.account_id,
            contact_id: m.contact_id,
            cycle: m.cycle,
            email: m.email,
            send_time: m.send_time,
            deliver_time: m.deliver_time,
            answer_time: m.answer_time,
            expire_time: m.expire_time,
            failure: m.fail_time.map(|at| Failure { at, error: m.delivery_error.unwrap_or_default() }),
        },
        from_json("invitation snapshot", &m.snapshot)?,
    ))
}

/// Invitations, and skips (`true`: the contact was within its throttle).
pub(crate) async fn insert_invitations(
    conn: &impl ConnectionTrait,
    tenant: &str,
    xs: &[(Invitation, Snapshot, bool)],
) -> Result<()> {
    // Bounded statements: 14 columns a row stays far under SQLite's limit.
    for chunk in xs.chunks(500) {
        let rows = chunk
            .iter()
            .map(|(x, snap, throttled)| {
                Ok(i::ActiveModel {
                    id: Set(x.id),
                    tenant_id: Set(tenant.to_string()),
                    campaign_id: Set(x.campaign_id),
                    survey_id: Set(x.survey_id),
                    kind: Set(x.kind.as_str().to_string()),
                    account_id: Set(x.account_id),
                    contact_id: Set(x.contact_id),
                    cycle: Set(x.cycle),
                    throttled: Set(*throttled),
                    email: Set(x.email.clone()),
                    send_time: Set(x.send_time),
                    deliver_time: Set(x.deliver_time),
                    answer_time: Set(x.answer_time),
                    expire_time: Set(x.expire_time),
                    snapshot: Set(to_json("invitation snapshot", snap)?),
                    fail_time: Set(x.failure.as_ref().map(|f| f.at)),
                    delivery_error: Set(x.failure.as_ref().map(|f| f.error.clone())),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !rows.is_empty() {
            i::Entity::insert_many(rows).exec_without_returning(conn).await?;
        }
    }
    Ok(())
}

/// The (contact, cycle) pairs a campaign has invited or skipped.
pub(crate) async fn invited_contacts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    campaign: Uuid,
) -> Result<Vec<(Uuid, NaiveDate)>> {
    Ok(i::Entity::find()
        .select_only()
        .column(i::Column::ContactId)
        .column(i::Column::Cycle)
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::CampaignId.eq(campaign))
        .into_tuple()
        .all(conn)
        .await?)
}

/// Each contact's latest invitation to a survey of `kind`.
pub(crate) async fn last_invited(
    conn: &impl ConnectionTrait,
    tenant: &str,
    kind: Kind,
    contacts: &[Uuid],
) -> Result<HashMap<Uuid, DateTime<Utc>>> {
    let mut out = HashMap::new();
    for chunk in contacts.chunks(1000) {
        let rows: Vec<(Uuid, DateTime<Utc>)> = i::Entity::find()
            .select_only()
            .column(i::Column::ContactId)
            .column_as(i::Column::SendTime.max(), "last")
            .filter(i::Column::TenantId.eq(tenant))
            .filter(i::Column::Kind.eq(kind.as_str()))
            .filter(i::Column::Throttled.eq(false))
            .filter(i::Column::ContactId.is_in(chunk.iter().copied()))
            .group_by(i::Column::ContactId)
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// An invitation of the tenant (the tenant the token names).
pub(crate) async fn find_invitation(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
) -> Result<Option<(Invitation, Snapshot)>> {
    i::Entity::find_by_id(id)
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::Throttled.eq(false))
        .one(conn)
        .await?
        .map(invitation)
        .transpose()
}

/// The invitations (not skips) of these ids that exist in the tenant.
pub(crate) async fn find_invitations(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (Invitation, Snapshot)>> {
    i::Entity::find()
        .filter(i::Column::TenantId.eq(tenant))
        .filter(db::uuid_in(conn, sea_orm::sea_query::Expr::col(i::Column::Id), ids))
        .filter(i::Column::Throttled.eq(false))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| invitation(m).map(|x| (x.0.id, x)))
        .collect()
}

/// A campaign's invitations, oldest first.
pub(crate) async fn invitations(
    conn: &impl ConnectionTrait,
    tenant: &str,
    campaign: Uuid,
    status: Option<Status>,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Invitation>> {
    let mut q = i::Entity::find()
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::CampaignId.eq(campaign))
        .filter(i::Column::Throttled.eq(false));
    q = match status {
        None => q,
        // As Invitation::status decides.
        Some(Status::Answered) => q.filter(i::Column::AnswerTime.is_not_null()),
        Some(Status::Failed) => q
            .filter(i::Column::AnswerTime.is_null())
            .filter(i::Column::DeliverTime.is_null())
            .filter(i::Column::FailTime.is_not_null()),
        Some(Status::Expired) => q
            .filter(i::Column::AnswerTime.is_null())
            .filter(i::Column::ExpireTime.lte(now))
            .filter(Condition::any().add(i::Column::DeliverTime.is_not_null()).add(i::Column::FailTime.is_null())),
        Some(Status::Delivered) => q
            .filter(i::Column::AnswerTime.is_null())
            .filter(i::Column::ExpireTime.gt(now))
            .filter(i::Column::DeliverTime.is_not_null()),
        Some(Status::Sent) => q
            .filter(i::Column::AnswerTime.is_null())
            .filter(i::Column::ExpireTime.gt(now))
            .filter(i::Column::DeliverTime.is_null())
            .filter(i::Column::FailTime.is_null()),
    };
    if let Some(a) = after {
        q = q.filter(i::Column::Id.gt(a));
    }
    q.order_by(i::Column::Id, Order::Asc)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| invitation(m).map(|(x, _)| x))
        .collect()
}

/// Marks these invitations of the campaign delivered at `at`, where not
/// already delivered or answered; how many it marked.
pub(crate) async fn mark_delivered(
    conn: &impl ConnectionTrait,
    tenant: &str,
    campaign: Uuid,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<u64> {
    let r = i::Entity::update_many()
        .col_expr(i::Column::DeliverTime, Some(at).into())
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::CampaignId.eq(campaign))
        .filter(i::Column::Id.is_in(ids.iter().copied()))
        .filter(i::Column::Throttled.eq(false))
        .filter(i::Column::DeliverTime.is_null())
        .filter(i::Column::AnswerTime.is_null())
        .exec(conn)
        .await?;
    Ok(r.rows_affected)
}

/// An invitation reached its contact at `at` (Playbooks' outreach said so),
/// unless it was delivered or answered already.
pub(crate) async fn delivered(conn: &impl ConnectionTrait, tenant: &str, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    i::Entity::update_many()
        .col_expr(i::Column::DeliverTime, Some(at).into())
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::Id.eq(id))
        .filter(i::Column::DeliverTime.is_null())
        .filter(i::Column::AnswerTime.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// An invitation's delivery failed at `at` (Playbooks' outreach gave up),
/// unless it was delivered or answered already; a later failure (a
/// redelivery that failed again) replaces an earlier one.
pub(crate) async fn delivery_failed(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Uuid,
    failure: &Failure,
) -> Result<()> {
    i::Entity::update_many()
        .col_expr(i::Column::FailTime, Some(failure.at).into())
        .col_expr(i::Column::DeliveryError, Some(failure.error.clone()).into())
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::Id.eq(id))
        .filter(i::Column::DeliverTime.is_null())
        .filter(i::Column::AnswerTime.is_null())
        .filter(Condition::any().add(i::Column::FailTime.is_null()).add(i::Column::FailTime.lte(failure.at)))
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes each invitation's one answer: the ids taken (not those answered
/// already, by an earlier answer or one that won a race).
pub(crate) async fn claim_answers(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<std::collections::HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    // RETURNING tells which claims won: on PostgreSQL another writer's
    // transaction may have taken one since this one read it.
    Ok(i::Entity::update_many()
        .col_expr(i::Column::AnswerTime, Some(at).into())
        .filter(i::Column::TenantId.eq(tenant))
        .filter(db::uuid_in(conn, sea_orm::sea_query::Expr::col(i::Column::Id), ids))
        .filter(i::Column::AnswerTime.is_null())
        .exec_with_returning(conn)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect())
}

/// Delivered (marked or answered), answered and failed (not delivered
/// since, not answered) invitations of a campaign.
pub(crate) async fn delivered_answered(
    conn: &impl ConnectionTrait,
    tenant: &str,
    campaign: Uuid,
) -> Result<(i64, i64, i64)> {
    let base = || {
        i::Entity::find()
            .filter(i::Column::TenantId.eq(tenant))
            .filter(i::Column::CampaignId.eq(campaign))
            .filter(i::Column::Throttled.eq(false))
    };
    let answered = base().filter(i::Column::AnswerTime.is_not_null()).count(conn).await?;
    let delivered_only =
        base().filter(i::Column::AnswerTime.is_null()).filter(i::Column::DeliverTime.is_not_null()).count(conn).await?;
    let failed = base()
        .filter(i::Column::AnswerTime.is_null())
        .filter(i::Column::DeliverTime.is_null())
        .filter(i::Column::FailTime.is_not_null())
        .count(conn)
        .await?;
    let n = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    Ok((n(answered + delivered_only), n(answered), n(failed)))
}

/// The invitations of a survey sent in `[from, to)`, as the response rate reads them.
pub(crate) async fn facts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<InvitationFact>> {
    let rows = i::Entity::find()
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::SurveyId.eq(survey))
        .filter(i::Column::Throttled.eq(false))
        .filter(i::Column::SendTime.gte(from))
        .filter(i::Column::SendTime.lt(to))
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|m| {
            Ok(InvitationFact {
                send_time: m.send_time,
                delivered: m.deliver_time.is_some() || m.answer_time.is_some(),
                answered: m.answer_time.is_some(),
                snapshot: from_json("invitation snapshot", &m.snapshot)?,
            })
        })
        .collect()
}

/// The accounts a campaign invited.
pub(crate) async fn invited_accounts(conn: &impl ConnectionTrait, tenant: &str, campaign: Uuid) -> Result<Vec<Uuid>> {
    Ok(i::Entity::find()
        .select_only()
        .column(i::Column::AccountId)
        .distinct()
        .filter(i::Column::TenantId.eq(tenant))
        .filter(i::Column::CampaignId.eq(campaign))
        .filter(i::Column::Throttled.eq(false))
        .into_tuple::<Uuid>()
        .all(conn)
        .await?)
}
