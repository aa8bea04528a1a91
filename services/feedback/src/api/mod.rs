//! The doors: per RPC its access rule, its parse, its use case, its reply.
//! [`SurveysApi`] is for the tenant's people and services;
//! [`ResponsesApi`] is the public answer path, whose only credential is the
//! invitation's response token.

mod convert;
pub(crate) mod voice;

use banso_kit::{
    Violations,
    auth::Access,
    error::reply,
    paging::{self, Paged, QueryKey},
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::feedback as pb;
use tonic::Request;
use uuid::Uuid;

use self::convert::*;
use crate::{
    app::{
        App,
        reports::{PredictionGrouping, Scope},
    },
    domain::results::{Predicted, PredictionFact},
};

pub struct SurveysApi {
    app: App,
    kit: Kit,
}

impl SurveysApi {
    pub(crate) fn new(app: App, kit: Kit) -> Self {
        SurveysApi { app, kit }
    }
}

pub struct ResponsesApi {
    app: App,
}

impl ResponsesApi {
    pub(crate) fn new(app: App) -> Self {
        ResponsesApi { app }
    }
}

/// A page size with this service's default of `default`.
fn page_size(v: &mut Violations, requested: i32, default: i32) -> Option<u64> {
    v.take(paging::page_size(if requested == 0 { default } else { requested }))
}

#[tonic::async_trait]
impl pb::surveys_service_server::SurveysService for SurveysApi {
    async fn create_survey(&self, req: Request<pb::CreateSurveyRequest>) -> Rpc<pb::Survey> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let body = wire::required(&mut v, "survey", r.survey.as_ref()).and_then(|s| survey_body(&mut v, s));
            let body = v.finish_with(body)?;
            Ok(survey_to_proto(&self.app.create_survey(&caller, request_id, body).await?))
        })
        .await
    }

    async fn get_survey(&self, req: Request<pb::GetSurveyRequest>) -> Rpc<pb::Survey> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(survey_to_proto(&self.app.get_survey(&caller, id).await?))
        })
        .await
    }

    async fn list_surveys(&self, req: Request<pb::ListSurveysRequest>) -> Rpc<pb::ListSurveysResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let limit = page_size(&mut v, r.page_size, 50);
            let kind = kind_filter(&mut v, "kind", r.kind);
            let limit = v.finish_with(limit)?;
            let key = QueryKey::new("ListSurveys", &caller.tenant_id).part(format!("{kind:?}"));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_surveys(&caller, kind, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |s| s.id)?;
            Ok(pb::ListSurveysResponse { surveys: rows.iter().map(survey_to_proto).collect(), next_page_token })
        })
        .await
    }

    async fn create_campaign(&self, req: Request<pb::CreateCampaignRequest>) -> Rpc<pb::Campaign> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let now = wire::now();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let cmd =
                wire::required(&mut v, "campaign", r.campaign.as_ref()).and_then(|c| new_campaign(&mut v, c, now));
            let cmd = v.finish_with(cmd)?;
            Ok(campaign_to_proto(&self.app.create_campaign(&caller, request_id, cmd).await?, wire::now()))
        })
        .await
    }

    async fn get_campaign(&self, req: Request<pb::GetCampaignRequest>) -> Rpc<pb::Campaign> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(campaign_to_proto(&self.app.get_campaign(&caller, id).await?, wire::now()))
        })
        .await
    }

    async fn list_campaigns(&self, req: Request<pb::ListCampaignsRequest>) -> Rpc<pb::ListCampaignsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let limit = page_size(&mut v, r.page_size, 50);
            let survey = v.take(wire::optional_uuid("survey_id", &r.survey_id)).flatten();
            let limit = v.finish_with(limit)?;
            let key = QueryKey::new("ListCampaigns", &caller.tenant_id).part(format!("{survey:?}"));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_campaigns(&caller, survey, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |c| c.id)?;
            let now = wire::now();
            Ok(pb::ListCampaignsResponse {
                campaigns: rows.iter().map(|c| campaign_to_proto(c, now)).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn close_campaign(&self, req: Request<pb::CloseCampaignRequest>) -> Rpc<pb::Campaign> {
        handle(req, Access::Write, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(campaign_to_proto(&self.app.close_campaign(&caller, id).await?, wire::now()))
        })
        .await
    }

    async fn list_invitations(&self, req: Request<pb::ListInvitationsRequest>) -> Rpc<pb::ListInvitationsResponse> {
        // Tokens answer for a customer: only those who deliver them see them.
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let campaign = v.take(wire::uuid("campaign_id", &r.campaign_id));
            let limit = page_size(&mut v, r.page_size, 100);
            let status = status_filter(&mut v, r.status);
            let (campaign, limit) = v.finish_with((campaign, limit))?;
            let key = QueryKey::new("ListInvitations", &caller.tenant_id).part(format!("{campaign}/{status:?}"));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_invitations(&caller, campaign, status, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |x| x.invitation.id)?;
            let now = wire::now();
            Ok(pb::ListInvitationsResponse {
                invitations: rows.iter().map(|x| invitation_to_proto(x, now)).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn mark_invitations_delivered(
        &self,
        req: Request<pb::MarkInvitationsDeliveredRequest>,
    ) -> Rpc<pb::MarkInvitationsDeliveredResponse> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let campaign = v.take(wire::uuid("campaign_id", &r.campaign_id));
            if r.invitation_ids.is_empty() || r.invitation_ids.len() > 1000 {
                v.add("invitation_ids", format!("give 1 to 1000 invitations, got {}", r.invitation_ids.len()));
            }
            let ids: Vec<Uuid> = r
                .invitation_ids
                .iter()
                .take(1000)
                .enumerate()
                .filter_map(|(i, id)| v.take(wire::uuid(&format!("invitation_ids[{i}]"), id)))
                .collect();
            let at = wire::optional_time(&mut v, "deliver_time", r.deliver_time.as_ref());
            if let Some(t) = at
                && t > wire::now() + chrono::Duration::minutes(5)
            {
                v.add("deliver_time", format!("must not be in the future, got {}", t.to_rfc3339()));
            }
            let campaign = v.finish_with(campaign)?;
            let marked = self.app.mark_delivered(&caller, campaign, ids, at).await?;
            Ok(pb::MarkInvitationsDeliveredResponse { marked: i32::try_from(marked).unwrap_or(i32::MAX) })
        })
        .await
    }

    async fn answer_as_account_team(&self, req: Request<pb::AnswerAsAccountTeamRequest>) -> Rpc<pb::TeamAnswer> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let account = v.take(wire::uuid("account_id", &r.account_id));
            if !(1..=5).contains(&r.agreement) {
                v.add("agreement", format!("must be 1 (disagree) to 5 (agree), got {}", r.agreement));
            }
            let (survey, account) = v.finish_with((survey, account))?;
            let (id, t) = self.app.answer_as_team(&caller, survey, account, r.agreement).await?;
            Ok(pb::TeamAnswer {
                id: id.to_string(),
                survey_id: survey.to_string(),
                account_id: t.account_id.to_string(),
                respondent: t.respondent,
                agreement: t.agreement,
                answer_time: Some(wire::timestamp(t.answer_time)),
            })
        })
        .await
    }

    async fn record_prediction(&self, req: Request<pb::RecordPredictionRequest>) -> Rpc<pb::Prediction> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let campaign = v.take(wire::uuid("campaign_id", &r.campaign_id));
            let account = v.take(wire::uuid("account_id", &r.account_id));
            let predicted = match (r.predicted_score, r.predicted_healthy) {
                (Some(s), None) if (0..=10).contains(&s) => Some(Predicted::Score(s)),
                (Some(s), None) => {
                    v.add("predicted_score", format!("must be 0 to 10, got {s}"));
                    None
                }
                (None, Some(h)) => Some(Predicted::Healthy(h)),
                (Some(_), Some(_)) => {
                    v.add("predicted_healthy", "give predicted_score or predicted_healthy, not both");
                    None
                }
                (None, None) => {
                    v.add("predicted_score", "is required (or predicted_healthy)");
                    None
                }
            };
            let (campaign_id, account_id, predicted) = v.finish_with((campaign, account, predicted))?;
            let fact = PredictionFact { campaign_id, account_id, predictor: caller.subject.clone(), predicted };
            let (fact, at) = self.app.record_prediction(&caller, fact).await?;
            let (score, healthy) = match fact.predicted {
                Predicted::Score(s) => (Some(s), None),
                Predicted::Healthy(h) => (None, Some(h)),
            };
            Ok(pb::Prediction {
                campaign_id: fact.campaign_id.to_string(),
                account_id: fact.account_id.to_string(),
                predictor: fact.predictor,
                predicted_score: score,
                predicted_healthy: healthy,
                record_time: Some(wire::timestamp(at)),
            })
        })
        .await
    }

    async fn list_survey_answers(
        &self,
        req: Request<pb::ListSurveyAnswersRequest>,
    ) -> Rpc<pb::ListSurveyAnswersResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let campaign = v.take(wire::optional_uuid("campaign_id", &r.campaign_id)).flatten();
            let account = v.take(wire::optional_uuid("account_id", &r.account_id)).flatten();
            let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
            let limit = page_size(&mut v, r.page_size, 50);
            let (survey, limit) = v.finish_with((survey, limit))?;
            let filter = crate::store::answers::AnswerFilter {
                campaign,
                account,
                from: range.start,
                to: range.end,
                with_comment: r.with_comment,
            };
            let key = QueryKey::new("ListSurveyAnswers", &caller.tenant_id).part(format!(
                "{survey}/{campaign:?}/{account:?}/{:?}/{:?}/{}",
                range.start, range.end, r.with_comment
            ));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_answers(&caller, survey, filter, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |a| a.id)?;
            Ok(pb::ListSurveyAnswersResponse { answers: rows.iter().map(answer_to_proto).collect(), next_page_token })
        })
        .await
    }

    async fn get_survey_results(&self, req: Request<pb::GetSurveyResultsRequest>) -> Rpc<pb::SurveyResults> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let grouping = grouping(&mut v, r.group_by);
            let periods = periods(&mut v, r.period);
            let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
            let (survey, grouping, periods) = v.finish_with((survey, grouping, periods))?;
            let (kind, rows, total) = self.app.survey_results(&caller, survey, grouping, periods, range).await?;
            let row = |r: &crate::domain::results::Row| pb::ResultRow {
                group: r.group.clone(),
                period_start: r.period_start.map(wire::date_to_proto),
                period: r.period.clone(),
                answers: r.answers,
                promoters: r.promoters,
                passives: r.passives,
                detractors: r.detractors,
                nps: Some(estimate(&r.nps)),
                csat: Some(estimate(&r.csat)),
                ces: Some(estimate(&r.ces)),
                outcome: Some(estimate(&r.outcome)),
                response_rate: Some(estimate(&r.response_rate)),
                delivered: r.delivered,
            };
            Ok(pb::SurveyResults {
                kind: crate::events::kind_to_proto(kind) as i32,
                rows: rows.iter().map(row).collect(),
                total: Some(row(&total)),
            })
        })
        .await
    }

    async fn get_perception_gap(&self, req: Request<pb::GetPerceptionGapRequest>) -> Rpc<pb::PerceptionGap> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let scope = match pb::GapScope::try_from(r.scope) {
                Ok(pb::GapScope::Unspecified) => {
                    if !r.scope_id.is_empty() {
                        v.add("scope_id", "the tenant scope takes no scope_id");
                    }
                    Some(Scope::Tenant)
                }
                Ok(pb::GapScope::Account) => v.take(wire::uuid("scope_id", &r.scope_id)).map(Scope::Account),
                Ok(pb::GapScope::Segment) => v.take(wire::uuid("scope_id", &r.scope_id)).map(Scope::Segment),
                Err(_) => {
                    v.add(
                        "scope",
                        format!(
                            "{} is not a scope: use GAP_SCOPE_ACCOUNT, _SEGMENT or UNSPECIFIED (the tenant)",
                            r.scope
                        ),
                    );
                    None
                }
            };
            let periods = periods(&mut v, r.period);
            let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
            let (survey, scope, periods) = v.finish_with((survey, scope, periods))?;
            let g = self.app.perception_gap(&caller, survey, scope, periods, range).await?;
            let row = |r: &crate::domain::results::GapRow| pb::PerceptionRow {
                period_start: Some(wire::date_to_proto(r.period_start)),
                period: r.period.clone(),
                vendor_agreement: Some(estimate(&r.vendor)),
                customer_agreement: Some(estimate(&r.customer)),
                gap_points: Some(estimate(&r.gap)),
            };
            Ok(pb::PerceptionGap {
                statement: g.statement,
                rows: g.rows.iter().map(row).collect(),
                total: Some(row(&g.total)),
            })
        })
        .await
    }

    async fn get_prediction_gap(&self, req: Request<pb::GetPredictionGapRequest>) -> Rpc<pb::PredictionGap> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let campaign = v.take(wire::optional_uuid("campaign_id", &r.campaign_id)).flatten();
            let grouping = match pb::PredictionGrouping::try_from(r.group_by) {
                Ok(pb::PredictionGrouping::Unspecified) => Some(PredictionGrouping::Tenant),
                Ok(pb::PredictionGrouping::Csm) => Some(PredictionGrouping::Csm),
                Ok(pb::PredictionGrouping::Segment) => {
                    v.take(wire::uuid("segment_id", &r.segment_id)).map(PredictionGrouping::Segment)
                }
                Err(_) => {
                    v.add(
                        "group_by",
                        format!("{} is not a grouping: use PREDICTION_GROUPING_CSM or _SEGMENT", r.group_by),
                    );
                    None
                }
            };
            if !matches!(grouping, Some(PredictionGrouping::Segment(_)) | None) && !r.segment_id.is_empty() {
                v.add("segment_id", "is for PREDICTION_GROUPING_SEGMENT");
            }
            let periods = periods(&mut v, r.period);
            let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
            let (survey, grouping, periods) = v.finish_with((survey, grouping, periods))?;
            let p = self.app.prediction_gap(&caller, survey, campaign, grouping, periods, range).await?;
            Ok(pb::PredictionGap {
                accounts: p
                    .accounts
                    .iter()
                    .map(|g| pb::AccountPredictionGap {
                        account_id: g.fact.account_id.to_string(),
                        campaign_id: g.fact.campaign_id.to_string(),
                        predictor: g.fact.predictor.clone(),
                        predicted_score: match g.fact.predicted {
                            Predicted::Score(s) => Some(s),
                            Predicted::Healthy(_) => None,
                        },
                        predicted_healthy: match g.fact.predicted {
                            Predicted::Score(_) => None,
                            Predicted::Healthy(h) => Some(h),
                        },
                        predicted_category: category(g.predicted_category),
                        actual_score: g.actual.mean,
                        actual_category: category(Some(g.actual_category)),
                        gap: g.gap,
                        category_mismatch: g.mismatch,
                        answer_time: Some(wire::timestamp(g.actual.first_answer)),
                    })
                    .collect(),
                summaries: p
                    .summaries
                    .iter()
                    .map(|s| pb::PredictionSummary {
                        group: s.group.clone(),
                        period_start: Some(wire::date_to_proto(s.period_start)),
                        period: s.period.clone(),
                        n: s.n,
                        mean_gap: Some(estimate(&s.mean_gap)),
                        mean_absolute_gap: s.mean_absolute_gap,
                        mismatch_rate: Some(estimate(&s.mismatch_rate)),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn get_band_category_matrix(
        &self,
        req: Request<pb::GetBandCategoryMatrixRequest>,
    ) -> Rpc<pb::BandCategoryMatrix> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
            let survey = v.finish_with(survey)?;
            let cells = self.app.band_category_matrix(&caller, survey, range).await?;
            Ok(pb::BandCategoryMatrix {
                cells: cells
                    .into_iter()
                    .map(|(band, cat, n, arr)| pb::MatrixCell {
                        band: band_to_proto(band),
                        category: category(Some(cat)),
                        accounts: n,
                        arr: arr
                            .into_iter()
                            .map(|(currency_code, amount_minor)| banso_proto::types::Money {
                                currency_code,
                                amount_minor,
                            })
                            .collect(),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn list_matrix_accounts(
        &self,
        req: Request<pb::ListMatrixAccountsRequest>,
    ) -> Rpc<pb::ListMatrixAccountsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let survey = v.take(wire::uuid("survey_id", &r.survey_id));
            let band = band_from(&mut v, r.band);
            let cat = category_from(&mut v, "category", r.category);
            let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
            let limit = page_size(&mut v, r.page_size, 50);
            let (survey, band, cat, limit) = v.finish_with((survey, band, cat, limit))?;
            let key = QueryKey::new("ListMatrixAccounts", &caller.tenant_id)
                .part(format!("{survey}/{band:?}/{cat:?}/{:?}/{:?}", range.start, range.end));
            let page: Paged<u64> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let offset = page.after.map_or(0, |a| a + 1);
            let rows = self
                .app
                .matrix_accounts(
                    &caller,
                    survey,
                    (band, cat),
                    range,
                    usize::try_from(offset).unwrap_or(usize::MAX),
                    usize::try_from(page.fetch()).unwrap_or(usize::MAX),
                )
                .await?;
            let rows: Vec<_> = rows.into_iter().enumerate().map(|(i, x)| (offset + i as u64, x)).collect();
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |(i, _)| *i)?;
            Ok(pb::ListMatrixAccountsResponse {
                accounts: rows
                    .into_iter()
                    .map(|(_, (e, a))| pb::MatrixAccount {
                        account_id: e.account_id.to_string(),
                        display_name: a.account.name.clone(),
                        owner_id: a.account.owner_id.clone(),
                        arr: a.account.arr_currency.as_ref().map(|c| banso_proto::types::Money {
                            currency_code: c.clone(),
                            amount_minor: a.account.arr_minor.unwrap_or(0),
                        }),
                        health_score: a.score,
                        nps_score: e.score,
                        respondents: e.respondents,
                    })
                    .collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_feedback_settings(&self, req: Request<pb::GetFeedbackSettingsRequest>) -> Rpc<pb::FeedbackSettings> {
        handle(req, Access::Read, async |caller, _| Ok(settings_to_proto(&self.app.feedback_settings(&caller).await?)))
            .await
    }

    async fn update_feedback_settings(
        &self,
        req: Request<pb::UpdateFeedbackSettingsRequest>,
    ) -> Rpc<pb::FeedbackSettings> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let days = wire::required(&mut v, "settings", r.settings.as_ref()).map(|s| throttles(&mut v, s));
            let days = v.finish_with(days)?;
            Ok(settings_to_proto(&self.app.update_feedback_settings(&caller, days).await?))
        })
        .await
    }
}

#[tonic::async_trait]
impl pb::survey_response_service_server::SurveyResponseService for ResponsesApi {
    async fn get_survey_form(&self, req: Request<pb::GetSurveyFormRequest>) -> Rpc<pb::SurveyForm> {
        let r = req.into_inner();
        reply(
            async {
                let mut v = Violations::new();
                let token = token(&mut v, &r.token);
                v.finish()?;
                let f = self.app.survey_form(&token).await?;
                let (lo, hi) = f.survey.body.kind.scale().unwrap_or((0, 0));
                Ok(pb::SurveyForm {
                    kind: crate::events::kind_to_proto(f.survey.body.kind) as i32,
                    question: f.survey.question(&f.outcome),
                    scale_min: lo,
                    scale_max: hi,
                    outcome: if f.survey.body.kind == crate::domain::survey::Kind::Outcome {
                        f.outcome
                    } else {
                        String::new()
                    },
                    questions: f.survey.body.questions.iter().map(custom_question).collect(),
                    perception_statement: f.survey.body.perception_statement.clone(),
                    language: f.survey.body.language.as_str().to_string(),
                    expire_time: Some(wire::timestamp(f.expire_time)),
                })
            }
            .await,
        )
    }

    async fn submit_survey_answer(
        &self,
        req: Request<pb::SubmitSurveyAnswerRequest>,
    ) -> Rpc<pb::SubmitSurveyAnswerResponse> {
        let r = req.into_inner();
        reply(
            async {
                let mut v = Violations::new();
                let token = token(&mut v, &r.token);
                let s = submission(&mut v, &r);
                v.finish()?;
                let (id, cat) = self.app.submit_answer(&token, s).await?;
                Ok(pb::SubmitSurveyAnswerResponse { answer_id: id.to_string(), nps_category: category(cat) })
            }
            .await,
        )
    }
}
