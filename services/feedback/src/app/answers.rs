//! Answers: the customer's through the public path (the token alone), the
//! account team's to the perception statement, and the CSMs' predictions.

use std::collections::{HashMap, HashSet};

use banso_events::{Tx, group::GroupWork};
use banso_kit::{Error, Result, Violations, auth::Caller, wire};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::App;
use crate::{
    domain::{
        campaign::Invitation,
        projection::{Projected, Snapshot},
        results::{PredictionFact, TeamFact},
        survey::{Kind, NpsCategory, Submission, Survey, check_submission, nps_category},
        token::{Claims, Refusal},
    },
    events,
    store::{self, answers::Answer},
};

/// What the public path says about any token it cannot take: nothing about
/// whether a survey or an invitation exists.
fn not_a_token() -> Error {
    Error::invalid("token", "is not a valid response token")
}

/// The form of an invitation, as its customer sees it.
pub(crate) struct Form {
    pub survey: Survey,
    pub outcome: String,
    pub expire_time: DateTime<Utc>,
}

impl App {
    /// What a token says, if it is ours and has not expired.
    fn claims(&self, token: &str) -> Result<Claims> {
        match self.signer.read(token, wire::now()) {
            Ok(c) => Ok(c),
            Err(Refusal::Invalid) => Err(not_a_token()),
            Err(Refusal::Expired) => Err(Error::FailedPrecondition {
                reason: "TOKEN_EXPIRED",
                message: "this response token has expired: the survey is no longer open to it".into(),
            }),
        }
    }

    /// The invitation a token names, if it may still be answered.
    async fn invitation(&self, token: &str) -> Result<(String, Invitation, Snapshot, Survey)> {
        let claims = self.claims(token)?;
        let conn = self.db.conn();
        // Signed by us, but its tenant's invitation or survey may be gone:
        // the same answer as a forged token.
        let Some((invitation, snapshot)) =
            store::campaigns::find_invitation(conn, &claims.tenant, claims.invitation).await?
        else {
            return Err(not_a_token());
        };
        if invitation.answer_time.is_some() {
            return Err(used());
        }
        let Some(survey) = store::surveys::find(conn, &claims.tenant, invitation.survey_id).await? else {
            return Err(not_a_token());
        };
        Ok((claims.tenant, invitation, snapshot, survey))
    }

    /// GetSurveyForm: the survey of the token's invitation, with the
    /// outcome named from the account's success plan when there is one.
    pub(crate) async fn survey_form(&self, token: &str) -> Result<Form> {
        let (tenant, invitation, _, survey) = self.invitation(token).await?;
        let plan =
            store::projection::get(self.db.conn(), &tenant, invitation.account_id).await?.and_then(|a| a.plan_outcome);
        Ok(Form { outcome: survey.outcome(plan.as_deref()), survey, expire_time: invitation.expire_time })
    }

    /// SubmitSurveyAnswer: the invitation's one answer, and SurveyAnswered
    /// in the same transaction, shared with the answers arriving with it
    /// ([`Answering`]).
    pub(crate) async fn submit_answer(&self, token: &str, s: Submission) -> Result<(Uuid, Option<NpsCategory>)> {
        let claims = self.claims(token)?;
        self.answers.submit(&claims.tenant, Answering { invitation: claims.invitation, submission: s }).await
    }

    /// AnswerAsAccountTeam: the caller's agreement with the survey's
    /// statement about an account.
    pub(crate) async fn answer_as_team(
        &self,
        caller: &Caller,
        survey: Uuid,
        account: Uuid,
        agreement: i32,
    ) -> Result<(Uuid, TeamFact)> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let s = store::surveys::get(conn, tenant, survey).await?;
        if !s.has_statement() {
            return Err(Error::FailedPrecondition {
                reason: "NO_PERCEPTION_STATEMENT",
                message: format!("survey {survey} has no perception statement to agree with"),
            });
        }
        if store::projection::get(conn, tenant, account).await?.is_none() {
            return Err(Error::not_found("account", account.to_string()));
        }
        let fact =
            TeamFact { account_id: account, respondent: caller.subject.clone(), agreement, answer_time: wire::now() };
        let id = Uuid::now_v7();
        self.db
            .write(tenant, async |tx| store::answers::insert_team(tx.conn(), tx.tenant(), survey, &fact, id).await)
            .await?;
        Ok((id, fact))
    }

    /// RecordPrediction: before the account answers and while the NPS
    /// campaign is open, for an account the campaign selects.
    pub(crate) async fn record_prediction(
        &self,
        caller: &Caller,
        fact: PredictionFact,
    ) -> Result<(PredictionFact, DateTime<Utc>)> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let (campaign, _) = store::campaigns::get(conn, tenant, fact.campaign_id).await?;
        if campaign.kind != Kind::Nps {
            return Err(Error::FailedPrecondition {
                reason: "NOT_AN_NPS_CAMPAIGN",
                message: format!(
                    "campaign {} sends a {} survey: predictions are of NPS answers",
                    campaign.id,
                    campaign.kind.as_str()
                ),
            });
        }
        let now = wire::now();
        if !campaign.open_at(now) {
            return Err(Error::FailedPrecondition {
                reason: "CAMPAIGN_CLOSED",
                message: format!("campaign {} has closed: predictions are taken before it closes", campaign.id),
            });
        }
        let Some(account) = store::projection::get(conn, tenant, fact.account_id).await? else {
            return Err(Error::not_found("account", fact.account_id.to_string()));
        };
        let cal = store::tenants::get(conn, tenant).await?.calendar();
        let selects = super::campaigns::selected(conn, tenant, &campaign.body, &cal, now)
            .await?
            .iter()
            .any(|a| a.account.id == account.account.id)
            || store::campaigns::invited_accounts(conn, tenant, campaign.id).await?.contains(&account.account.id);
        if !selects {
            return Err(Error::FailedPrecondition {
                reason: "ACCOUNT_NOT_IN_CAMPAIGN",
                message: format!("campaign {} does not select account {}", campaign.id, fact.account_id),
            });
        }
        if store::answers::account_answered(conn, tenant, campaign.id, fact.account_id).await? {
            return Err(Error::FailedPrecondition {
                reason: "ALREADY_ANSWERED",
                message: format!(
                    "account {} has answered campaign {}: a prediction is made before the answer",
                    fact.account_id, campaign.id
                ),
            });
        }
        self.db
            .write(tenant, async |tx| {
                store::answers::upsert_prediction(tx.conn(), tx.tenant(), campaign.survey_id, &fact, now).await
            })
            .await?;
        Ok((fact, now))
    }
}

/// An answer to submit: the invitation its token named, and what the
/// customer answered.
pub(crate) struct Answering {
    pub invitation: Uuid,
    pub submission: Submission,
}

/// The group commit of answers: what arrives together is read, checked,
/// claimed and written in one transaction (banso_events::group).
pub(crate) struct Answers;

impl GroupWork for Answers {
    type Request = Answering;
    type Reply = (Uuid, Option<NpsCategory>);

    async fn write(&self, tx: &Tx, requests: &[Answering]) -> Result<Vec<Result<Self::Reply>>> {
        answer_round(tx, requests).await
    }
}

/// One round of answers of a tenant: each invitation's one answer, its
/// SurveyAnswered, and its comment as a feedback item. Reads the round's
/// invitations, surveys and accounts in one statement each; a refused
/// answer (a used or unknown invitation, a bad score) writes nothing.
async fn answer_round(tx: &Tx, requests: &[Answering]) -> Result<Vec<Result<(Uuid, Option<NpsCategory>)>>> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let ids: Vec<Uuid> = requests.iter().map(|r| r.invitation).collect();
    let invitations = store::campaigns::find_invitations(conn, tenant, &ids).await?;
    let mut survey_ids: Vec<Uuid> = invitations.values().map(|(i, _)| i.survey_id).collect();
    survey_ids.sort();
    survey_ids.dedup();
    let surveys = store::surveys::find_many(conn, tenant, &survey_ids).await?;
    let mut account_ids: Vec<Uuid> = invitations.values().map(|(i, _)| i.account_id).collect();
    account_ids.sort();
    account_ids.dedup();
    let accounts: HashMap<Uuid, Projected> = store::projection::accounts(conn, tenant, Some(account_ids.as_slice()))
        .await?
        .into_iter()
        .map(|p| (p.account.id, p))
        .collect();

    let now = wire::now();
    let mut outcomes: Vec<Result<(Uuid, Option<NpsCategory>)>> = Vec::with_capacity(requests.len());
    // The answers to write, by their request's place in the round.
    let mut accepted: Vec<(usize, Answer, Option<NpsCategory>)> = Vec::new();
    let mut seen = HashSet::new();
    for (at, r) in requests.iter().enumerate() {
        match answer_of(r, &invitations, &surveys, &accounts, &mut seen, now) {
            Ok((answer, category)) => {
                outcomes.push(Ok((answer.id, category)));
                accepted.push((at, answer, category));
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    // Single use: the claim is the first write; an invitation another
    // writer answered since the read above is not taken.
    let ids: Vec<Uuid> = accepted.iter().map(|(_, a, _)| a.invitation_id).collect();
    let claimed = store::campaigns::claim_answers(conn, tenant, &ids, now).await?;
    accepted.retain(|(at, a, _)| {
        let taken = claimed.contains(&a.invitation_id);
        if !taken {
            outcomes[*at] = Err(used());
        }
        taken
    });
    let answers: Vec<Answer> = accepted.iter().map(|(_, a, _)| a.clone()).collect();
    store::answers::insert(conn, tenant, &answers).await?;
    tx.emit_all(accepted.iter().map(|(_, a, category)| events::survey_answered(a, *category))).await?;
    // Their comments are the customer's voice: feedback items.
    let comments: Vec<_> = answers.iter().map(|a| (a, accounts.get(&a.account_id))).collect();
    super::voice::items::record_comments(tx, &comments).await?;
    Ok(outcomes)
}

/// The answer a request makes, checked against its invitation and survey.
fn answer_of(
    r: &Answering,
    invitations: &HashMap<Uuid, (Invitation, Snapshot)>,
    surveys: &HashMap<Uuid, Survey>,
    accounts: &HashMap<Uuid, Projected>,
    seen: &mut HashSet<Uuid>,
    now: DateTime<Utc>,
) -> Result<(Answer, Option<NpsCategory>)> {
    // Signed by us, but its tenant's invitation or survey may be gone: the
    // same answer as a forged token.
    let Some((invitation, sent_snapshot)) = invitations.get(&r.invitation) else { return Err(not_a_token()) };
    // Answered before, or twice in this round.
    if invitation.answer_time.is_some() || !seen.insert(invitation.id) {
        return Err(used());
    }
    let Some(survey) = surveys.get(&invitation.survey_id) else { return Err(not_a_token()) };
    let s = &r.submission;
    let bad = check_submission(survey, s);
    if !bad.is_empty() {
        let mut v = Violations::new();
        for (field, why) in bad {
            v.add(field, why);
        }
        v.finish()?;
    }
    // The account as it is now; as it was when invited if it is gone.
    let snapshot = accounts.get(&invitation.account_id).map_or_else(|| sent_snapshot.clone(), |a| a.snapshot());
    let answer = Answer {
        id: Uuid::now_v7(),
        invitation_id: invitation.id,
        survey_id: survey.id,
        campaign_id: invitation.campaign_id,
        kind: survey.body.kind,
        account_id: invitation.account_id,
        contact_id: invitation.contact_id,
        score: s.score,
        perception: s.perception_agreement,
        comment: s.comment.clone(),
        answers: s.answers.clone(),
        answer_time: now,
        snapshot,
    };
    let category = (survey.body.kind == Kind::Nps).then(|| answer.score.map(|x| nps_category(f64::from(x)))).flatten();
    Ok((answer, category))
}

fn used() -> Error {
    Error::FailedPrecondition {
        reason: "TOKEN_USED",
        message: "this invitation has been answered already: a response token is single-use".into(),
    }
}
