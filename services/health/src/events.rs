//! What the health service publishes — HealthScoreChanged, recorded in the
//! transaction that stores the score ([`crate::scorer`]) — and what it
//! consumes: Accounts' events kept as a small local projection (never
//! Accounts' database): account attributes for scorecard scopes and days to
//! renewal, tenant time zones for day buckets, e-mails sent and replied for
//! the response-rate measure, segments.

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
        score::{Band, Score},
    },
    recompute::Recompute,
    scorer::Scorer,
    store::{self, jobs::Trigger, scorecards::StoredScorecard},
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

/// The durable consumer name of the health service.
pub(crate) const CONSUMER: &str = "health";

pub(crate) struct AccountsProjection {
    pub db: Db,
    pub scorer: Scorer,
    pub recompute: Recompute,
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
                            store::tenants::set_time_zone(conn, tenant, &s.time_zone).await?;
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
