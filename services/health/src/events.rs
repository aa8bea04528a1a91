//! What the health service publishes — HealthScoreChanged, recorded in the
//! transaction that stores the score ([`crate::scorer`]) — and what it
//! consumes: Accounts' events kept as a small local projection (never
//! Accounts' database): account attributes for scorecard scopes and days to
//! renewal, tenant time zones for day buckets, e-mails sent and replied for
//! the response-rate measure, segments; and Feedback's survey answers, kept
//! as the survey measures (`external:nps`, …, [`crate::surveys`]).

use std::collections::HashMap;

use async_trait::async_trait;
use banso_events::{Db, Envelope, Handler, HandlerError, Payload, inbox};
use banso_kit::{Error, Result, wire};
use banso_proto::accounts as apb;
use uuid::Uuid;

use crate::{
    api::convert::band_to_proto,
    domain::{
        account::{AccountRow, Attr, LifecycleStage, TouchModel},
        outcome::{ContractKind, Outcome, classify},
        score::{Band, Score},
        survey::{self, SurveyKind},
    },
    recompute::Recompute,
    scorer::Scorer,
    store::{self, jobs::Trigger, scorecards::StoredScorecard, survey_answers::NewAnswer},
};

/// What a HealthScoreChanged says: the account's score moved from `old`
/// (none for its first score) to `new` under `card`.
pub(crate) struct ScoreChange<'a> {
    pub account: Uuid,
    pub old: Option<(f64, Band)>,
    pub new: &'a Score,
    pub card: &'a StoredScorecard,
    /// The 7- and 30-day change, as stored with the score.
    pub trend: (Option<f64>, Option<f64>),
    /// The previous windows' values of the usage window measures.
    pub previous: &'a HashMap<String, f64>,
}

/// HealthScoreChanged, with per measure (in the scorecard's order) the raw
/// value that scored, its previous window's value where it has one, its
/// points and weight: what playbook conditions read.
pub(crate) fn health_score_changed(c: ScoreChange<'_>) -> Payload {
    let measures = c
        .new
        .contributions
        .iter()
        .map(|m| banso_proto::events::MeasureReading {
            measure: m.measure.clone(),
            value: m.raw,
            // Beside a value only: a drop from nothing known is no drop.
            previous_value: m.raw.and(c.previous.get(&m.measure).copied()),
            points: m.points,
            weight: m.weight,
        })
        .collect();
    Payload::HealthScoreChanged(banso_proto::events::HealthScoreChanged {
        account_id: c.account.to_string(),
        old_score: c.old.map(|(score, _)| score),
        new_score: c.new.score,
        old_band: c.old.map(|(_, band)| band_to_proto(band) as i32).unwrap_or(0),
        new_band: band_to_proto(c.new.band) as i32,
        scorecard_id: c.card.id.to_string(),
        scorecard_version: c.card.version,
        trend_7d: c.trend.0,
        trend_30d: c.trend.1,
        measures,
    })
}

/// UsageSeen: `account`'s latest day of usage advanced to `day` (the
/// tenant's day), recorded by the rollup task ([`crate::store::ingest::roll_up`]).
pub(crate) fn usage_seen(account: Uuid, day: chrono::NaiveDate) -> Payload {
    Payload::UsageSeen(banso_proto::events::UsageSeen {
        account_id: account.to_string(),
        day: Some(wire::date_to_proto(day)),
    })
}

/// A risk bucket on the wire (churn and expansion share them).
fn bucket_to_proto(b: crate::domain::churn_model::RiskBucket) -> i32 {
    use crate::domain::churn_model::RiskBucket;
    use banso_proto::events::ChurnRiskBucket as B;
    (match b {
        RiskBucket::Low => B::Low,
        RiskBucket::Medium => B::Medium,
        RiskBucket::High => B::High,
    }) as i32
}

/// A model's reasons (feature, contribution) on the wire, each described
/// in the words of the measure catalog.
fn reasons_to_proto(reasons: Vec<(String, f64)>) -> Vec<banso_proto::events::ChurnReason> {
    reasons
        .into_iter()
        .map(|(measure, contribution)| banso_proto::events::ChurnReason {
            description: crate::domain::churn_features::describe(&measure),
            measure,
            contribution,
        })
        .collect()
}

/// ChurnRiskChanged: `account`'s churn probability moved from bucket `old`
/// (none for its first) to that of `probability`, with its reasons.
pub(crate) fn churn_risk_changed(
    account: Uuid,
    old: Option<crate::domain::churn_model::RiskBucket>,
    probability: f64,
    model: &crate::domain::churn_model::Trained,
    version: i64,
    reasons: Vec<(String, f64)>,
) -> Payload {
    use crate::domain::churn_model::RiskBucket;
    use banso_proto::events::ChurnRiskBucket as B;
    Payload::ChurnRiskChanged(banso_proto::events::ChurnRiskChanged {
        account_id: account.to_string(),
        old_bucket: old.map_or(B::Unspecified as i32, bucket_to_proto),
        new_bucket: bucket_to_proto(RiskBucket::of(probability)),
        probability,
        horizon_days: model.horizon as i32,
        scorecard_id: model.scorecard.0.to_string(),
        scorecard_version: model.scorecard.1,
        model_version: version,
        reasons: reasons_to_proto(reasons),
    })
}

/// ExpansionSignalChanged: an account's expansion probability of the
/// model's target moved to another bucket.
pub(crate) fn expansion_signal_changed(
    account: Uuid,
    old: Option<crate::domain::churn_model::RiskBucket>,
    probability: f64,
    model: &crate::domain::churn_model::Trained,
    version: i64,
    reasons: Vec<(String, f64)>,
) -> Payload {
    use crate::domain::churn_model::{RiskBucket, Target};
    use banso_proto::events::{ChurnRiskBucket as B, ExpansionTarget as T};
    let target = match model.target {
        Target::Churn => T::Unspecified,
        Target::Expansion => T::Any,
        Target::Upsell => T::Upsell,
        Target::CrossSell => T::CrossSell,
    } as i32;
    Payload::ExpansionSignalChanged(banso_proto::events::ExpansionSignalChanged {
        account_id: account.to_string(),
        target,
        old_bucket: old.map_or(B::Unspecified as i32, bucket_to_proto),
        new_bucket: bucket_to_proto(RiskBucket::of(probability)),
        probability,
        horizon_days: model.horizon as i32,
        scorecard_id: model.scorecard.0.to_string(),
        scorecard_version: model.scorecard.1,
        model_version: version,
        reasons: reasons_to_proto(reasons),
    })
}

/// The durable consumer name of the health service.
pub(crate) const CONSUMER: &str = "health";

pub(crate) struct AccountsProjection {
    pub db: Db,
    pub scorer: Scorer,
    pub recompute: Recompute,
}

/// The durable consumer name of Feedback's events (its inbox claims too).
pub(crate) const SURVEYS: &str = "health-feedback";

/// Feedback's SurveyAnswered, kept as each contact's latest answer per
/// account and kind, and the survey measure it moves ([`crate::surveys`]).
/// CUSTOM answers, answers without a score and kinds Health does not know
/// are ignored.
pub(crate) struct SurveyAnswers {
    pub db: Db,
    pub scorer: Scorer,
    /// How far back answers count ([`crate::domain::survey`]).
    pub window: chrono::Duration,
}

/// The answer a SurveyAnswered carries, if it makes a measure.
pub(crate) fn survey_answer(e: &banso_proto::events::SurveyAnswered) -> Result<Option<NewAnswer>> {
    use banso_proto::feedback::SurveyKind as K;
    let kind = match K::try_from(e.kind) {
        Ok(K::Nps) => SurveyKind::Nps,
        Ok(K::Csat) => SurveyKind::Csat,
        Ok(K::Ces) => SurveyKind::Ces,
        Ok(K::Outcome) => SurveyKind::Outcome,
        // CUSTOM has no score; a kind of a newer Feedback is none of ours.
        _ => return Ok(None),
    };
    let Some(score) = e.score else { return Ok(None) };
    if e.answer_id.is_empty() {
        return Err(rejected("answer_id", format!("is required (survey {}, account {})", e.survey_id, e.account_id)));
    }
    let id = &e.answer_id;
    let score = kind.check(score).map_err(|why| rejected("score", format!("answer {id}: {why}")))?;
    let account = wire::uuid("account_id", &e.account_id)?;
    if e.contact_id.is_empty() {
        return Err(rejected("contact_id", format!("answer {id} has no contact")));
    }
    let time = e.answer_time.as_ref().ok_or_else(|| rejected("answer_time", format!("answer {id} has no time")))?;
    let answered_at = wire::time("answer_time", time)?;
    // Stored to the microsecond, as the databases keep it: the same answer
    // again compares equal.
    let answered_at = chrono::DateTime::from_timestamp_micros(answered_at.timestamp_micros()).unwrap_or(answered_at);
    Ok(Some(NewAnswer { answer_id: id.clone(), account, contact: e.contact_id.clone(), kind, score, answered_at }))
}

#[async_trait]
impl Handler for SurveyAnswers {
    async fn handle(&self, env: &Envelope) -> std::result::Result<(), HandlerError> {
        let Some(Payload::SurveyAnswered(e)) = &env.payload else { return Ok(()) };
        let Some(answer) = survey_answer(e)? else { return Ok(()) };
        let tenant = env.tenant_id.as_str();
        let now = wire::now();
        let counted = survey::counts(answer.answered_at, now, self.window);
        let changed = self
            .db
            .write(tenant, async |tx| {
                let conn = tx.conn();
                if !inbox::claim(conn, SURVEYS, env).await? {
                    // Seen before: its effect is already committed.
                    return Ok(false);
                }
                // An older answer of the contact, or the same one again, changes nothing.
                if !store::survey_answers::keep_latest(conn, tenant, &answer, counted).await? {
                    return Ok(false);
                }
                crate::surveys::refresh(conn, tenant, answer.account, answer.kind, now, self.window).await
            })
            .await?;
        if changed {
            self.scorer.account(tenant, answer.account);
        }
        Ok(())
    }
}

/// The durable consumer name of the accounts handed over by other replicas.
pub(crate) const HANDED_OVER: &str = "health-scoring";

/// Accounts another replica queued, for this one (it holds their
/// partition) to score ([`crate::scorer::hand_over`]). No inbox: scoring an
/// account twice changes nothing the first did not, and publishes nothing
/// more (a score that did not move is not announced).
pub(crate) struct HandedOver {
    pub scorer: Scorer,
}

#[async_trait]
impl Handler for HandedOver {
    async fn handle(&self, env: &Envelope) -> Result<(), HandlerError> {
        if let Some(Payload::AccountsToScore(e)) = &env.payload {
            for id in &e.account_ids {
                let id = Uuid::parse_str(id)
                    .map_err(|_| HandlerError::Rejected(anyhow::anyhow!("account_ids: {id:?} is not a UUID")))?;
                self.scorer.account(&env.tenant_id, id);
            }
        }
        Ok(())
    }
}

/// An event that cannot be applied as it is (dead-lettered after retries).
fn rejected(field: &str, what: String) -> Error {
    Error::invalid(field, what)
}

/// A date Accounts sent (it checked it; one that is not a date is left out).
fn date(d: Option<&banso_proto::types::Date>) -> Option<chrono::NaiveDate> {
    wire::optional_date(&mut banso_kit::Violations::new(), "date", d)
}

/// The projection row of an Accounts' account as its events carry it.
pub(crate) fn account_row(a: &apb::Account) -> Result<AccountRow> {
    let account_id = wire::uuid("account.id", &a.id)?;
    let lifecycle_stage = LifecycleStage::from_proto(a.lifecycle_stage)
        .ok_or_else(|| rejected("account.lifecycle_stage", format!("account {account_id} has no lifecycle stage")))?;
    let touch_model = TouchModel::from_proto(a.touch_model)
        .ok_or_else(|| rejected("account.touch_model", format!("account {account_id} has no touch model")))?;
    let attributes = a.custom_attributes.iter().filter_map(|(k, v)| Some((k.clone(), Attr::from_proto(v)?))).collect();
    Ok(AccountRow {
        account_id,
        external_id: (!a.external_id.is_empty()).then(|| a.external_id.clone()),
        name: a.name.clone(),
        lifecycle_stage,
        touch_model,
        arr_currency: a.arr.as_ref().map(|m| m.currency_code.clone()),
        arr_amount_minor: a.arr.as_ref().map(|m| m.amount_minor),
        renewal_date: date(a.renewal_date.as_ref()),
        contract_start_date: date(a.contract_start_date.as_ref()),
        industry: a.industry.clone(),
        employee_count: a.employee_count,
        revenue_band: a.revenue_band.clone(),
        region: a.region.clone(),
        plan_tier: a.plan_tier.clone(),
        owner_id: a.owner_id.clone(),
        tags: a.tags.clone(),
        attributes,
    })
}

/// The labelled outcome a contract event records, if any
/// ([`crate::domain::outcome::classify`]).
pub(crate) fn outcome(c: &apb::ContractEvent) -> Result<Option<Outcome>> {
    let kind = match apb::ContractEventKind::try_from(c.kind) {
        Ok(apb::ContractEventKind::New) => ContractKind::New,
        Ok(apb::ContractEventKind::Renewal) => ContractKind::Renewal,
        Ok(apb::ContractEventKind::Expansion) => ContractKind::Expansion,
        Ok(apb::ContractEventKind::Contraction) => ContractKind::Contraction,
        Ok(apb::ContractEventKind::Churn) => ContractKind::Churn,
        Ok(apb::ContractEventKind::Reactivation) => ContractKind::Reactivation,
        _ => return Err(rejected("contract_event.kind", format!("contract event {} has no kind", c.id))),
    };
    let event_id = wire::uuid("contract_event.id", &c.id)?;
    let account_id = wire::uuid("contract_event.account_id", &c.account_id)?;
    let effective_date = date(c.effective_date.as_ref()).ok_or_else(|| {
        rejected("contract_event.effective_date", format!("contract event {event_id} has no effective date"))
    })?;
    let arr_before = c.arr_before.as_ref().map_or(0, |m| m.amount_minor);
    let arr_after = c.arr_after.as_ref().map_or(0, |m| m.amount_minor);
    let currency = c.arr_after.as_ref().or(c.arr_before.as_ref()).map(|m| m.currency_code.clone()).unwrap_or_default();
    Ok(classify(kind, arr_after, &c.reason_code).map(|(kind, expansion)| Outcome {
        event_id,
        account_id,
        kind,
        expansion,
        effective_date,
        currency,
        arr_before,
        arr_after,
    }))
}

/// What an applied event asks for after its transaction.
#[derive(Default)]
struct Follow {
    /// An account whose score its inputs may have moved.
    rescore: Option<Uuid>,
    /// A recompute was queued.
    recompute: bool,
}

#[async_trait]
impl Handler for AccountsProjection {
    async fn handle(&self, env: &Envelope) -> std::result::Result<(), HandlerError> {
        let tenant = env.tenant_id.as_str();
        let follow = self
            .db
            .write(tenant, async |tx| {
                let mut follow = Follow::default();
                let conn = tx.conn();
                if !inbox::claim(conn, CONSUMER, env).await? {
                    // Seen before: its effect is already committed.
                    return Ok(follow);
                }
                match &env.payload {
                    Some(Payload::AccountCreated(e)) => {
                        if let Some(a) = &e.account {
                            let r = account_row(a)?;
                            follow.rescore = Some(r.account_id);
                            store::accounts::upsert(conn, tenant, &r).await?;
                        }
                    }
                    Some(Payload::AccountUpdated(e)) => {
                        if let Some(a) = &e.account {
                            let r = account_row(a)?;
                            follow.rescore = Some(r.account_id);
                            store::accounts::upsert(conn, tenant, &r).await?;
                        }
                    }
                    Some(Payload::ContractChanged(e)) => {
                        if let Some(a) = &e.account {
                            let r = account_row(a)?;
                            follow.rescore = Some(r.account_id);
                            store::accounts::upsert(conn, tenant, &r).await?;
                        }
                        if let Some(o) = e.contract_event.as_ref().map(outcome).transpose()?.flatten() {
                            store::outcomes::record(conn, tenant, &o).await?;
                        }
                    }
                    Some(Payload::AccountDeleted(e)) => {
                        store::accounts::delete(conn, tenant, wire::uuid("account_id", &e.account_id)?).await?;
                    }
                    Some(Payload::ActivityLogged(e)) => {
                        if let Some(a) = &e.activity {
                            let replied = match apb::ActivityKind::try_from(a.kind) {
                                Ok(apb::ActivityKind::EmailSent) => Some(false),
                                Ok(apb::ActivityKind::EmailReplied) => Some(true),
                                _ => None,
                            };
                            let time = a.occur_time.as_ref().and_then(|t| wire::time("occur_time", t).ok());
                            if let (Some(replied), Ok(id), Ok(account), Some(t)) =
                                (replied, wire::uuid("id", &a.id), wire::uuid("account_id", &a.account_id), time)
                            {
                                store::accounts::record_email(conn, tenant, id, account, replied, t).await?;
                                follow.rescore = Some(account);
                            }
                        }
                    }
                    Some(Payload::SegmentChanged(e)) => {
                        if let Some(seg) = &e.segment {
                            let id = wire::uuid("segment.id", &seg.id)?;
                            let deleted = e.change == banso_proto::events::segment_changed::Change::Deleted as i32;
                            if deleted {
                                store::segments::delete(conn, tenant, id).await?;
                            } else {
                                store::segments::upsert(conn, tenant, id, &seg.expression).await?;
                            }
                            // Accounts scored by a scorecard scoped to it may now score elsewhere.
                            store::jobs::queue(conn, tenant, Trigger::Segment).await?;
                            follow.recompute = true;
                        }
                    }
                    Some(Payload::TenantSettingsChanged(e)) => {
                        if let Some(s) = &e.settings {
                            store::tenants::set_settings(conn, tenant, &s.time_zone, s.fiscal_year_start_month).await?;
                            // Days are cut elsewhere now.
                            store::jobs::queue(conn, tenant, Trigger::TimeZone).await?;
                            follow.recompute = true;
                        }
                    }
                    _ => {}
                }
                Ok(follow)
            })
            .await?;
        // Attributes, contract state, e-mail replies and day cuts feed scores.
        if let Some(id) = follow.rescore {
            self.scorer.account(tenant, id);
        }
        if follow.recompute {
            self.recompute.wake();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use banso_proto::{events::ContractChanged, types};
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::outcome::{ExpansionKind, OutcomeKind};

    /// Accounts handed over with an id that is not a UUID are rejected
    /// (dead-lettered after retries), naming the field and the value; other
    /// events on the subject are ignored.
    #[tokio::test]
    async fn handed_over_accounts_must_be_uuids() {
        let handler = HandedOver { scorer: Scorer::idle() };
        let env = |ids: &[&str]| Envelope {
            tenant_id: "acme".into(),
            payload: Some(Payload::AccountsToScore(banso_proto::events::AccountsToScore {
                account_ids: ids.iter().map(|s| s.to_string()).collect(),
            })),
            ..Default::default()
        };
        let good = Uuid::now_v7().to_string();
        assert!(handler.handle(&env(&[&good])).await.is_ok());
        match handler.handle(&env(&[&good, "not-a-uuid"])).await {
            Err(HandlerError::Rejected(e)) => {
                let e = e.to_string();
                assert!(e.contains("account_ids") && e.contains("not-a-uuid"), "{e}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(handler.handle(&Envelope::default()).await.is_ok());
    }

    fn money(amount_minor: i64) -> Option<types::Money> {
        Some(types::Money { currency_code: "JPY".into(), amount_minor })
    }

    fn contract(
        account: Uuid,
        kind: apb::ContractEventKind,
        before: i64,
        after: i64,
        day: u32,
        reason: &str,
    ) -> Envelope {
        let event = apb::ContractEvent {
            id: Uuid::now_v7().to_string(),
            account_id: account.to_string(),
            kind: kind as i32,
            arr_before: money(before),
            arr_after: money(after),
            effective_date: Some(wire::date_to_proto(NaiveDate::from_ymd_opt(2026, 3, day).unwrap())),
            reason_code: reason.into(),
            ..Default::default()
        };
        banso_events::envelope::new(
            "acme",
            "accounts",
            Payload::ContractChanged(ContractChanged { contract_event: Some(event), account: None }),
        )
    }

    #[tokio::test]
    async fn contract_changes_are_kept_as_labelled_outcomes_once_each() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&db).await;
        let projection =
            AccountsProjection { db: app.db.clone(), scorer: Scorer::idle(), recompute: app.recompute.clone() };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        use apb::ContractEventKind as K;
        let events = [
            contract(a, K::New, 0, 1_000, 1, ""),
            contract(a, K::Expansion, 1_000, 1_500, 2, "upsell"),
            contract(a, K::Expansion, 1_500, 1_800, 3, "cross-sell"),
            contract(a, K::Contraction, 1_800, 1_200, 4, ""),
            contract(a, K::Renewal, 1_200, 1_200, 5, ""),
            contract(a, K::Churn, 1_200, 0, 6, "competitor"),
            contract(b, K::Contraction, 700, 0, 7, ""),
        ];
        for e in &events {
            projection.handle(e).await.unwrap();
        }
        // Redelivered: no second outcome.
        projection.handle(&events[5]).await.unwrap();
        let all = [
            OutcomeKind::Churned,
            OutcomeKind::Renewed,
            OutcomeKind::Expanded,
            OutcomeKind::Contracted,
            OutcomeKind::Reactivated,
        ];
        let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let got = store::outcomes::list(app.db.conn(), "acme", &all, from, to).await.unwrap();
        let seen: Vec<_> = got
            .iter()
            .map(|o| (o.account_id, o.kind, o.expansion, o.effective_date.to_string(), o.arr_change()))
            .collect();
        assert_eq!(
            seen,
            [
                (a, OutcomeKind::Expanded, Some(ExpansionKind::Upsell), "2026-03-02".into(), 500),
                (a, OutcomeKind::Expanded, Some(ExpansionKind::CrossSell), "2026-03-03".into(), 300),
                (a, OutcomeKind::Contracted, None, "2026-03-04".into(), -600),
                (a, OutcomeKind::Renewed, None, "2026-03-05".into(), 0),
                (a, OutcomeKind::Churned, None, "2026-03-06".into(), -1_200),
                (b, OutcomeKind::Churned, None, "2026-03-07".into(), -700),
            ]
        );
        // Another tenant sees none of them.
        assert!(store::outcomes::list(app.db.conn(), "globex", &all, from, to).await.unwrap().is_empty());
        let churns = store::outcomes::list(app.db.conn(), "acme", &[OutcomeKind::Churned], from, to).await.unwrap();
        assert_eq!(
            churns.iter().map(|o| (o.arr_before, o.currency.as_str())).collect::<Vec<_>>(),
            [(1_200, "JPY"), (700, "JPY")]
        );
    }

    /// The survey measures `account` holds, by name.
    async fn survey_values(db: &Db, account: Uuid) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = store::measures::values_of(db.conn(), "acme", &[account])
            .await
            .unwrap()
            .remove(&account)
            .unwrap_or_default()
            .into_iter()
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn values(v: &[(&str, f64)]) -> Vec<(String, f64)> {
        v.iter().map(|(n, x)| (n.to_string(), *x)).collect()
    }

    /// Per account and kind, each contact's latest answer within the
    /// window, averaged; older answers delivered late, answers seen before,
    /// CUSTOM answers and answers without a score change nothing; the aging
    /// pass clears what aged out, and counts again what a longer window
    /// takes back in.
    #[tokio::test]
    async fn survey_answers_average_each_contacts_latest_answer_within_the_window() {
        use banso_proto::feedback::SurveyKind as K;

        use crate::testing::survey_answered as answered;
        let db = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&db).await;
        let window = chrono::Duration::days(180);
        let handler = SurveyAnswers { db: app.db.clone(), scorer: Scorer::idle(), window };
        let (a, other) = (Uuid::now_v7(), Uuid::now_v7());
        let now = wire::now();
        let ago = |d: i64| now - chrono::Duration::days(d);
        let apply = async |e: &Envelope| handler.handle(e).await.unwrap();

        // Two contacts answer 9 and 5: 7.
        apply(&answered("acme", a, "c1", K::Nps, Some(9), ago(10))).await;
        let c2 = answered("acme", a, "c2", K::Nps, Some(5), ago(9));
        apply(&c2).await;
        assert_eq!(survey_values(&app.db, a).await, values(&[("nps", 7.0)]));
        // The first answers again: its new answer replaces its old one.
        let c1 = answered("acme", a, "c1", K::Nps, Some(3), ago(8));
        apply(&c1).await;
        assert_eq!(survey_values(&app.db, a).await, values(&[("nps", 4.0)]));
        // An older answer of it delivered late does not.
        apply(&answered("acme", a, "c1", K::Nps, Some(10), ago(20))).await;
        // Redelivered, and the same answer again under another envelope.
        apply(&c1).await;
        apply(&c2).await;
        let again = Envelope { id: Uuid::now_v7().to_string(), ..c2.clone() };
        apply(&again).await;
        // An answer older than the window is kept but not counted.
        apply(&answered("acme", a, "c3", K::Nps, Some(0), ago(200))).await;
        // CUSTOM answers and answers without a score are ignored.
        apply(&answered("acme", a, "c4", K::Custom, Some(1), ago(1))).await;
        apply(&answered("acme", a, "c4", K::Nps, None, ago(1))).await;
        assert_eq!(survey_values(&app.db, a).await, values(&[("nps", 4.0)]));
        // Each kind is a measure of its own, on its own scale.
        apply(&answered("acme", a, "c1", K::Csat, Some(4), ago(1))).await;
        apply(&answered("acme", a, "c2", K::Ces, Some(7), ago(1))).await;
        apply(&answered("acme", a, "c2", K::Outcome, Some(2), ago(1))).await;
        apply(&answered("acme", other, "c1", K::Nps, Some(10), ago(1))).await;
        let expected = [("ces", 7.0), ("csat", 4.0), ("nps", 4.0), ("outcome", 2.0)];
        assert_eq!(survey_values(&app.db, a).await, values(&expected));
        assert_eq!(survey_values(&app.db, other).await, values(&[("nps", 10.0)]));

        // Aging: 175 days on, the window starts 5 days ago: the NPS answers
        // (8 and 9 days ago) are out, the measure is missing; once only.
        let (scorer, later) = (Scorer::idle(), now + chrono::Duration::days(175));
        assert_eq!(crate::surveys::age_out(&app.db, &scorer, window, later).await.unwrap(), 1);
        assert_eq!(survey_values(&app.db, a).await, values(&[("ces", 7.0), ("csat", 4.0), ("outcome", 2.0)]));
        assert_eq!(crate::surveys::age_out(&app.db, &scorer, window, later).await.unwrap(), 0);
        // A window of a year: they count again, the one 200 days old too.
        let year = chrono::Duration::days(365);
        assert_eq!(crate::surveys::age_out(&app.db, &scorer, year, now).await.unwrap(), 1);
        let expected = [("ces", 7.0), ("csat", 4.0), ("nps", 8.0 / 3.0), ("outcome", 2.0)];
        assert_eq!(survey_values(&app.db, a).await, values(&expected));
    }

    /// An answer that cannot be applied is rejected (dead-lettered after
    /// retries), naming the field and the value.
    #[tokio::test]
    async fn malformed_survey_answers_are_rejected_naming_the_field() {
        use banso_proto::feedback::SurveyKind as K;

        use crate::testing::survey_answered as answered;
        let db = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&db).await;
        let handler = SurveyAnswers { db: app.db.clone(), scorer: Scorer::idle(), window: chrono::Duration::days(180) };
        let a = Uuid::now_v7();
        let now = wire::now();
        let with = |f: &dyn Fn(&mut banso_proto::events::SurveyAnswered)| {
            let mut env = answered("acme", a, "c1", K::Nps, Some(9), now);
            if let Some(Payload::SurveyAnswered(e)) = &mut env.payload {
                f(e);
            }
            env
        };
        let cases: [(Envelope, &str, &str); 6] = [
            (with(&|e| e.score = Some(11)), "score", "11 is outside the nps scale 0–10"),
            (with(&|e| (e.kind, e.score) = (K::Csat as i32, Some(0))), "score", "0 is outside the csat scale 1–5"),
            (with(&|e| e.account_id = "nope".into()), "account_id", "nope"),
            (with(&|e| e.contact_id.clear()), "contact_id", "has no contact"),
            (with(&|e| e.answer_id.clear()), "answer_id", "is required"),
            (with(&|e| e.answer_time = None), "answer_time", "has no time"),
        ];
        for (env, field, what) in cases {
            match handler.handle(&env).await {
                Err(HandlerError::Rejected(e)) => {
                    let e = e.to_string();
                    assert!(e.contains(field) && e.contains(what), "{field}: {e}");
                }
                other => panic!("{field}: expected a rejection, got {other:?}"),
            }
        }
    }
}
