//! Survey answers (`survey_answers`): per account, kind and contact, the
//! contact's latest answer, from Feedback's SurveyAnswered — what the survey
//! measures are computed from ([`crate::domain::survey`]).

use banso_kit::Result;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait,
    sea_query::{Condition, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{all, corrupt, exec, get, insert, schema::SurveyAnswers as S};
use crate::domain::survey::{Answer, SurveyKind};

/// An answer as SurveyAnswered carries it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewAnswer {
    pub answer_id: String,
    pub account: Uuid,
    pub contact: String,
    pub kind: SurveyKind,
    pub score: i32,
    pub answered_at: DateTime<Utc>,
}

/// The `excluded` row of `INSERT … ON CONFLICT DO UPDATE`.
#[derive(Clone, Copy, sea_orm::DeriveIden)]
struct Excluded;

/// Keeps `a` as its contact's answer of its kind unless the stored one is
/// newer — a later answer time, or the same time and a greater or the
/// same answer id (the same answer again changes nothing). Whether it was
/// kept. `counted`: whether it is within the window now.
pub(crate) async fn keep_latest(
    conn: &impl ConnectionTrait,
    tenant: &str,
    a: &NewAnswer,
    counted: bool,
) -> Result<bool> {
    let row = [
        (S::TenantId, Expr::val(tenant)),
        (S::AccountId, Expr::val(a.account)),
        (S::Kind, Expr::val(a.kind.as_str())),
        (S::ContactId, Expr::val(a.contact.as_str())),
        (S::Score, Expr::val(a.score)),
        (S::AnsweredAt, Expr::val(a.answered_at)),
        (S::AnswerId, Expr::val(a.answer_id.as_str())),
        (S::Counted, Expr::val(counted)),
    ];
    let Some(mut q) = insert(S::Table, [row])? else { return Ok(false) };
    let stored = |c: S| Expr::col((S::Table, c));
    let new = |c: S| Expr::col((Excluded, c));
    let newer = Condition::any().add(stored(S::AnsweredAt).lt(new(S::AnsweredAt))).add(
        Condition::all()
            .add(stored(S::AnsweredAt).eq(new(S::AnsweredAt)))
            .add(stored(S::AnswerId).lt(new(S::AnswerId))),
    );
    q.on_conflict(
        OnConflict::columns([S::TenantId, S::AccountId, S::Kind, S::ContactId])
            .update_columns([S::Score, S::AnsweredAt, S::AnswerId, S::Counted])
            .action_and_where(newer.into())
            .to_owned(),
    );
    Ok(exec(conn, &q).await? > 0)
}

/// The stored answers (one per contact) of an account's surveys of `kind`.
pub(crate) async fn of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    kind: SurveyKind,
) -> Result<Vec<Answer>> {
    let q = Query::select()
        .columns([S::Score, S::AnsweredAt])
        .from(S::Table)
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::AccountId).eq(account))
        .and_where(Expr::col(S::Kind).eq(kind.as_str()))
        .to_owned();
    all(conn, &q)
        .await?
        .iter()
        .map(|r| Ok(Answer { score: get(r, S::Score)?, answered_at: get(r, S::AnsweredAt)? }))
        .collect()
}

/// Marks the answers of an account's surveys of `kind` counted when
/// answered at or after `start` (the window's start), not counted before.
pub(crate) async fn mark_counted(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account: Uuid,
    kind: SurveyKind,
    start: DateTime<Utc>,
) -> Result<()> {
    let q = Query::update()
        .table(S::Table)
        .value(S::Counted, Expr::col(S::AnsweredAt).gte(start))
        .and_where(Expr::col(S::TenantId).eq(tenant))
        .and_where(Expr::col(S::AccountId).eq(account))
        .and_where(Expr::col(S::Kind).eq(kind.as_str()))
        .to_owned();
    exec(conn, &q).await?;
    Ok(())
}

/// Up to `limit` (tenant, account, kind) of every tenant whose answers
/// crossed the window's edge since their measure was computed, the window
/// now starting at `start`: an answer counted then and older now, or (the
/// window made longer) one not counted then and within it now.
pub(crate) async fn crossed(
    conn: &impl ConnectionTrait,
    start: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(String, Uuid, SurveyKind)>> {
    let q = Query::select()
        .distinct()
        .columns([S::TenantId, S::AccountId, S::Kind])
        .from(S::Table)
        .cond_where(
            Condition::any()
                .add(Condition::all().add(Expr::col(S::Counted).eq(true)).add(Expr::col(S::AnsweredAt).lt(start)))
                .add(Condition::all().add(Expr::col(S::Counted).eq(false)).add(Expr::col(S::AnsweredAt).gte(start))),
        )
        .limit(limit)
        .to_owned();
    all(conn, &q)
        .await?
        .iter()
        .map(|r| {
            let kind: String = get(r, S::Kind)?;
            let kind = SurveyKind::parse(&kind).ok_or_else(|| corrupt("survey kind", &kind))?;
            Ok((get(r, S::TenantId)?, get(r, S::AccountId)?, kind))
        })
        .collect()
}
