//! The figures: results, the perception gap, predictions against answers,
//! the band × category matrix. Each reads the rows of its range and hands
//! them to the pure functions of [`crate::domain::results`].

use std::collections::{BTreeMap, HashSet};

use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::App;
use crate::{
    domain::{
        projection::{Band, Projected},
        results::{self, AccountGap, Actual, GapRow, GapSummary, Grouping, MatrixEntry, Periods, Row, account_gap},
        survey::{Kind, NpsCategory, Survey},
    },
    store,
};

/// A range of time asked for: from the beginning (or `default_back` ago) to now.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Range {
    pub(crate) fn resolve(self, default_back: Option<Duration>) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = self.end.unwrap_or_else(wire::now);
        let start = self.start.or(default_back.map(|d| end - d)).unwrap_or(DateTime::UNIX_EPOCH);
        (start, end)
    }
}

/// Whose perception gap.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    Tenant,
    Account(Uuid),
    Segment(Uuid),
}

/// How prediction gaps are summarised.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PredictionGrouping {
    Tenant,
    Csm,
    Segment(Uuid),
}

pub(crate) struct Gap {
    pub statement: String,
    pub rows: Vec<GapRow>,
    pub total: GapRow,
}

pub(crate) struct Predictions {
    pub accounts: Vec<AccountGap>,
    pub summaries: Vec<GapSummary>,
}

/// Most accounts a prediction gap lists.
const MAX_LISTED: usize = 1000;

fn needs_nps(s: &Survey) -> Result<()> {
    if s.body.kind != Kind::Nps {
        return Err(Error::FailedPrecondition {
            reason: "NOT_AN_NPS_SURVEY",
            message: format!("survey {} is a {} survey: this view is of NPS answers", s.id, s.body.kind.as_str()),
        });
    }
    Ok(())
}

impl App {
    pub(crate) async fn survey_results(
        &self,
        caller: &Caller,
        survey: Uuid,
        grouping: Grouping,
        periods: Periods,
        range: Range,
    ) -> Result<(Kind, Vec<Row>, Row)> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let s = store::surveys::get(conn, tenant, survey).await?;
        let cal = store::tenants::get(conn, tenant).await?.calendar();
        let (from, to) = range.resolve(None);
        let answers: Vec<_> =
            store::answers::facts(conn, tenant, survey, None, from, to).await?.into_iter().map(|(_, a)| a).collect();
        let invitations = store::campaigns::facts(conn, tenant, survey, from, to).await?;
        let first =
            answers.first().map(|a| a.answer_time).into_iter().chain(invitations.iter().map(|i| i.send_time)).min();
        let range_start = cal.day(range.start.or(first).unwrap_or(to));
        let (rows, total) = results::results(s.body.kind, grouping, periods, &cal, range_start, &answers, &invitations);
        Ok((s.body.kind, rows, total))
    }

    /// The accounts of a scope; `None` for the whole tenant.
    pub(crate) async fn scope_accounts(&self, tenant: &str, scope: Scope) -> Result<Option<HashSet<Uuid>>> {
        let conn = self.db.conn();
        match scope {
            Scope::Tenant => Ok(None),
            Scope::Account(id) => {
                if store::projection::get(conn, tenant, id).await?.is_none() {
                    return Err(Error::not_found("account", id.to_string()));
                }
                Ok(Some(HashSet::from([id])))
            }
            Scope::Segment(id) => {
                if store::projection::segment(conn, tenant, id).await?.is_none() {
                    return Err(Error::not_found("segment", id.to_string()));
                }
                Ok(Some(self.segment_members(tenant, id).await?))
            }
        }
    }

    async fn segment_members(&self, tenant: &str, segment: Uuid) -> Result<HashSet<Uuid>> {
        Ok(self.segment_accounts(tenant, segment).await?.into_iter().map(|a| a.account.id).collect())
    }

    /// The live accounts of a segment the projection knows, by its expression now.
    pub(crate) async fn segment_accounts(&self, tenant: &str, segment: Uuid) -> Result<Vec<Projected>> {
        let conn = self.db.conn();
        let cal = store::tenants::get(conn, tenant).await?.calendar();
        let body = crate::domain::campaign::Body {
            display_name: String::new(),
            segment_id: Some(segment),
            account_ids: vec![],
            contacts: Default::default(),
            schedule: crate::domain::campaign::Schedule::BeforeRenewal { days: 0 },
            token_valid_days: 0,
            delivery_endpoint_id: None,
        };
        super::campaigns::selected(conn, tenant, &body, &cal, wire::now()).await
    }

    pub(crate) async fn perception_gap(
        &self,
        caller: &Caller,
        survey: Uuid,
        scope: Scope,
        periods: Periods,
        range: Range,
    ) -> Result<Gap> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let s = store::surveys::get(conn, tenant, survey).await?;
        if !s.has_statement() {
            return Err(Error::FailedPrecondition {
                reason: "NO_PERCEPTION_STATEMENT",
                message: format!("survey {survey} has no perception statement"),
            });
        }
        let members = self.scope_accounts(tenant, scope).await?;
        let cal = store::tenants::get(conn, tenant).await?.calendar();
        let (from, to) = range.resolve(None);
        let keep = |a: &Uuid| members.as_ref().is_none_or(|m| m.contains(a));
        let team: Vec<_> = store::answers::team(conn, tenant, survey, from, to)
            .await?
            .into_iter()
            .filter(|t| keep(&t.account_id))
            .collect();
        let customers: Vec<_> = store::answers::facts(conn, tenant, survey, None, from, to)
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| keep(&a.account_id))
            .collect();
        let first = team.iter().map(|t| t.answer_time).chain(customers.iter().map(|a| a.answer_time)).min();
        let range_start = cal.day(range.start.or(first).unwrap_or(to));
        let (rows, total) = results::perception_gap(periods, &cal, range_start, &team, &customers);
        Ok(Gap { statement: s.body.perception_statement, rows, total })
    }

    pub(crate) async fn prediction_gap(
        &self,
        caller: &Caller,
        survey: Uuid,
        campaign: Option<Uuid>,
        grouping: PredictionGrouping,
        periods: Periods,
        range: Range,
    ) -> Result<Predictions> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let s = store::surveys::get(conn, tenant, survey).await?;
        needs_nps(&s)?;
        if let Some(c) = campaign {
            let (c, _) = store::campaigns::get(conn, tenant, c).await?;
            if c.survey_id != survey {
                return Err(Error::invalid("campaign_id", format!("campaign {} sends another survey", c.id)));
            }
        }
        let members = match grouping {
            PredictionGrouping::Segment(seg) => {
                Some(self.scope_accounts(tenant, Scope::Segment(seg)).await?.unwrap_or_default())
            }
            _ => None,
        };
        let cal = store::tenants::get(conn, tenant).await?.calendar();
        let (from, to) = range.resolve(None);
        // Each account's answers in each campaign: the mean score and the first answer.
        let mut actual: BTreeMap<(Uuid, Uuid), (Vec<f64>, DateTime<Utc>)> = BTreeMap::new();
        for (c, a) in store::answers::facts(conn, tenant, survey, campaign, from, to).await? {
            let Some(x) = a.score else { continue };
            let e = actual.entry((c, a.account_id)).or_insert((Vec::new(), a.answer_time));
            e.0.push(f64::from(x));
            e.1 = e.1.min(a.answer_time);
        }
        let mut gaps: Vec<AccountGap> = store::answers::predictions(conn, tenant, survey, campaign)
            .await?
            .into_iter()
            .filter_map(|p| {
                let (scores, first) = actual.get(&(p.campaign_id, p.account_id))?;
                let mean = scores.iter().sum::<f64>() / scores.len() as f64;
                Some(account_gap(p, Actual { mean, first_answer: *first }))
            })
            .collect();
        let range_start = cal.day(range.start.or(gaps.iter().map(|g| g.actual.first_answer).min()).unwrap_or(to));
        let summaries = results::summarise(
            &gaps,
            |g| match grouping {
                PredictionGrouping::Tenant => String::new(),
                PredictionGrouping::Csm => g.fact.predictor.clone(),
                PredictionGrouping::Segment(_) => {
                    if members.as_ref().is_some_and(|m| m.contains(&g.fact.account_id)) { "member" } else { "other" }
                        .into()
                }
            },
            periods,
            &cal,
            range_start,
        );
        // The largest misses first.
        gaps.sort_by(|a, b| {
            let key = |g: &AccountGap| (g.gap.map_or(0.0, f64::abs), g.mismatch);
            key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal)
        });
        gaps.truncate(MAX_LISTED);
        Ok(Predictions { accounts: gaps, summaries })
    }

    /// Every account with NPS answers in the range, with its category and band.
    async fn matrix_entries(
        &self,
        tenant: &str,
        survey: Uuid,
        range: Range,
    ) -> Result<(Vec<MatrixEntry>, BTreeMap<Uuid, Projected>)> {
        let conn = self.db.conn();
        let s = store::surveys::get(conn, tenant, survey).await?;
        needs_nps(&s)?;
        let (from, to) = range.resolve(Some(Duration::days(365)));
        let answers: Vec<_> =
            store::answers::facts(conn, tenant, survey, None, from, to).await?.into_iter().map(|(_, a)| a).collect();
        let ids: Vec<Uuid> = answers.iter().map(|a| a.account_id).collect::<HashSet<_>>().into_iter().collect();
        let accounts: BTreeMap<Uuid, Projected> = store::projection::accounts(conn, tenant, Some(&ids))
            .await?
            .into_iter()
            .map(|a| (a.account.id, a))
            .collect();
        // Deleted accounts leave the matrix.
        let entries = results::matrix(&answers, |id| accounts.get(&id).and_then(|a| a.band))
            .into_iter()
            .filter(|e| accounts.contains_key(&e.account_id))
            .collect();
        Ok((entries, accounts))
    }

    /// The matrix: per (band, category) the accounts and their ARR per currency.
    pub(crate) async fn band_category_matrix(
        &self,
        caller: &Caller,
        survey: Uuid,
        range: Range,
    ) -> Result<Vec<(Option<Band>, NpsCategory, i64, BTreeMap<String, i64>)>> {
        let (entries, accounts) = self.matrix_entries(&caller.tenant_id, survey, range).await?;
        let bands = [None, Some(Band::Red), Some(Band::Yellow), Some(Band::Green)];
        let mut cells = Vec::new();
        for band in bands {
            for cat in NpsCategory::ALL {
                let mut n = 0;
                let mut arr: BTreeMap<String, i64> = BTreeMap::new();
                for e in entries.iter().filter(|e| e.band == band && e.category == *cat) {
                    n += 1;
                    if let Some(a) = accounts.get(&e.account_id)
                        && let (Some(cur), Some(minor)) = (&a.account.arr_currency, a.account.arr_minor)
                    {
                        *arr.entry(cur.clone()).or_default() += minor;
                    }
                }
                cells.push((band, *cat, n, arr));
            }
        }
        Ok(cells)
    }

    /// The accounts of one cell, largest ARR first, from `offset`.
    pub(crate) async fn matrix_accounts(
        &self,
        caller: &Caller,
        survey: Uuid,
        cell: (Option<Band>, NpsCategory),
        range: Range,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(MatrixEntry, Projected)>> {
        let (band, category) = cell;
        let (entries, mut accounts) = self.matrix_entries(&caller.tenant_id, survey, range).await?;
        let mut cell: Vec<_> = entries
            .into_iter()
            .filter(|e| e.band == band && e.category == category)
            .filter_map(|e| accounts.remove(&e.account_id).map(|a| (e, a)))
            .collect();
        cell.sort_by(|(ea, a), (eb, b)| {
            b.account
                .arr_minor
                .unwrap_or(0)
                .cmp(&a.account.arr_minor.unwrap_or(0))
                .then(ea.account_id.cmp(&eb.account_id))
        });
        Ok(cell.into_iter().skip(offset).take(limit).collect())
    }
}
