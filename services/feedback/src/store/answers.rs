//! Answers (the customer's), the account team's answers to the perception
//! statement, and the CSMs' predictions.

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    entities::{answer as a, prediction as p, team_answer as t},
    from_json, to_json,
};
use crate::domain::{
    projection::Snapshot,
    results::{AnswerFact, Predicted, PredictionFact, TeamFact},
    survey::{Kind, QuestionAnswer},
};

/// A customer's answer as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub id: Uuid,
    pub invitation_id: Uuid,
    pub survey_id: Uuid,
    pub campaign_id: Uuid,
    pub kind: Kind,
    pub account_id: Uuid,
    pub contact_id: Uuid,
    pub score: Option<i32>,
    pub perception: Option<i32>,
    pub comment: String,
    pub answers: Vec<QuestionAnswer>,
    pub answer_time: DateTime<Utc>,
    pub snapshot: Snapshot,
}

pub(crate) async fn insert(conn: &impl ConnectionTrait, tenant: &str, xs: &[Answer]) -> Result<()> {
    if xs.is_empty() {
        return Ok(());
    }
    let rows = xs
        .iter()
        .map(|x| {
            Ok(a::ActiveModel {
                id: Set(x.id),
                tenant_id: Set(tenant.to_string()),
                invitation_id: Set(x.invitation_id),
                survey_id: Set(x.survey_id),
                campaign_id: Set(x.campaign_id),
                kind: Set(x.kind.as_str().to_string()),
                account_id: Set(x.account_id),
                contact_id: Set(x.contact_id),
                score: Set(x.score),
                perception: Set(x.perception),
                comment: Set(x.comment.clone()),
                answers: Set(to_json("answers", &x.answers)?),
                answer_time: Set(x.answer_time),
                snapshot: Set(to_json("answer snapshot", &x.snapshot)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    a::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

/// The answers of a survey in `[from, to)` (of one campaign when given),
/// oldest first, with the campaign of each.
pub(crate) async fn facts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    campaign: Option<Uuid>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, AnswerFact)>> {
    let mut q = a::Entity::find()
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::SurveyId.eq(survey))
        .filter(a::Column::AnswerTime.gte(from))
        .filter(a::Column::AnswerTime.lt(to));
    if let Some(c) = campaign {
        q = q.filter(a::Column::CampaignId.eq(c));
    }
    q.order_by_asc(a::Column::AnswerTime)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| {
            Ok((
                m.campaign_id,
                AnswerFact {
                    account_id: m.account_id,
                    contact_id: m.contact_id,
                    score: m.score,
                    perception: m.perception,
                    answer_time: m.answer_time,
                    snapshot: from_json("answer snapshot", &m.snapshot)?,
                },
            ))
        })
        .collect()
}

/// Which of a survey's answers to list.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AnswerFilter {
    pub campaign: Option<Uuid>,
    pub account: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub with_comment: bool,
}

/// A survey's answers, newest first (ids are UUIDv7, taken when the answer
/// is written), those before `before` when paging.
pub(crate) async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    filter: AnswerFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Answer>> {
    let mut q = a::Entity::find().filter(a::Column::TenantId.eq(tenant)).filter(a::Column::SurveyId.eq(survey));
    if let Some(c) = filter.campaign {
        q = q.filter(a::Column::CampaignId.eq(c));
    }
    if let Some(x) = filter.account {
        q = q.filter(a::Column::AccountId.eq(x));
    }
    if let Some(t) = filter.from {
        q = q.filter(a::Column::AnswerTime.gte(t));
    }
    if let Some(t) = filter.to {
        q = q.filter(a::Column::AnswerTime.lt(t));
    }
    if filter.with_comment {
        q = q.filter(a::Column::Comment.ne(""));
    }
    if let Some(b) = before {
        q = q.filter(a::Column::Id.lt(b));
    }
    q.order_by_desc(a::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| {
            Ok(Answer {
                id: m.id,
                invitation_id: m.invitation_id,
                survey_id: m.survey_id,
                campaign_id: m.campaign_id,
                kind: Kind::parse(&m.kind).ok_or_else(|| super::corrupt("answer kind", &m.kind))?,
                account_id: m.account_id,
                contact_id: m.contact_id,
                score: m.score,
                perception: m.perception,
                comment: m.comment,
                answers: from_json("answers", &m.answers)?,
                answer_time: m.answer_time,
                snapshot: from_json("answer snapshot", &m.snapshot)?,
            })
        })
        .collect()
}

/// Whether the account has answered in the campaign.
pub(crate) async fn account_answered(
    conn: &impl ConnectionTrait,
    tenant: &str,
    campaign: Uuid,
    account: Uuid,
) -> Result<bool> {
    let n = a::Entity::find()
        .filter(a::Column::TenantId.eq(tenant))
        .filter(a::Column::CampaignId.eq(campaign))
        .filter(a::Column::AccountId.eq(account))
        .count(conn)
        .await?;
    Ok(n > 0)
}

pub(crate) async fn insert_team(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    x: &TeamFact,
    id: Uuid,
) -> Result<()> {
    let row = t::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.to_string()),
        survey_id: Set(survey),
        account_id: Set(x.account_id),
        respondent: Set(x.respondent.clone()),
        agreement: Set(x.agreement),
        answer_time: Set(x.answer_time),
    };
    t::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

pub(crate) async fn team(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TeamFact>> {
    Ok(t::Entity::find()
        .filter(t::Column::TenantId.eq(tenant))
        .filter(t::Column::SurveyId.eq(survey))
        .filter(t::Column::AnswerTime.gte(from))
        .filter(t::Column::AnswerTime.lt(to))
        .order_by_asc(t::Column::AnswerTime)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| TeamFact {
            account_id: m.account_id,
            respondent: m.respondent,
            agreement: m.agreement,
            answer_time: m.answer_time,
        })
        .collect())
}

/// Records a prediction; a predictor's later one for the same account and
/// campaign replaces the earlier.
pub(crate) async fn upsert_prediction(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    x: &PredictionFact,
    at: DateTime<Utc>,
) -> Result<()> {
    let (score, healthy) = match x.predicted {
        Predicted::Score(s) => (Some(s), None),
        Predicted::Healthy(h) => (None, Some(h)),
    };
    let row = p::ActiveModel {
        id: Set(format!("{}/{}/{}", x.campaign_id, x.account_id, x.predictor)),
        tenant_id: Set(tenant.to_string()),
        campaign_id: Set(x.campaign_id),
        survey_id: Set(survey),
        account_id: Set(x.account_id),
        predictor: Set(x.predictor.clone()),
        score: Set(score),
        healthy: Set(healthy),
        record_time: Set(at),
    };
    p::Entity::insert(row)
        .on_conflict(
            OnConflict::column(p::Column::Id)
                .update_columns([p::Column::Score, p::Column::Healthy, p::Column::RecordTime])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The predictions of a survey's campaigns (of one when given).
pub(crate) async fn predictions(
    conn: &impl ConnectionTrait,
    tenant: &str,
    survey: Uuid,
    campaign: Option<Uuid>,
) -> Result<Vec<PredictionFact>> {
    let mut q = p::Entity::find().filter(p::Column::TenantId.eq(tenant)).filter(p::Column::SurveyId.eq(survey));
    if let Some(c) = campaign {
        q = q.filter(p::Column::CampaignId.eq(c));
    }
    Ok(q.order_by_asc(p::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|m| {
            let predicted = match (m.score, m.healthy) {
                (Some(s), _) => Predicted::Score(s),
                (None, Some(h)) => Predicted::Healthy(h),
                (None, None) => return None,
            };
            Some(PredictionFact {
                campaign_id: m.campaign_id,
                account_id: m.account_id,
                predictor: m.predictor,
                predicted,
            })
        })
        .collect())
}
