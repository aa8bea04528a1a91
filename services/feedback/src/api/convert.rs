//! Surveys, campaigns and answers on the wire: parse a request into valid
//! domain values (or every bad field at once), and domain → proto.

use std::collections::{BTreeMap, BTreeSet};

use banso_kit::{Violations, wire};
use banso_proto::feedback as pb;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::{
    app::{
        campaigns::{Issued, NewCampaign},
        reports::Range,
    },
    domain::{
        campaign::{self, Body as CampaignBody, Campaign, ContactSelector, Schedule, State, Status},
        projection::{Band, Level},
        results::{Grouping, Periods},
        stats::Estimate,
        survey::{self, Body, Kind, Language, NpsCategory, Question, QuestionAnswer, QuestionType, Submission, Survey},
        token::MAX_TOKEN_LEN,
    },
    events::{category_to_proto, kind_to_proto},
};

pub(crate) fn kind_from(raw: i32) -> Option<Kind> {
    match pb::SurveyKind::try_from(raw).ok()? {
        pb::SurveyKind::Ces => Some(Kind::Ces),
        pb::SurveyKind::Outcome => Some(Kind::Outcome),
        pb::SurveyKind::Nps => Some(Kind::Nps),
        pb::SurveyKind::Csat => Some(Kind::Csat),
        pb::SurveyKind::Custom => Some(Kind::Custom),
        pb::SurveyKind::Unspecified => None,
    }
}

const KINDS: &str = "SURVEY_KIND_CES, _OUTCOME, _NPS, _CSAT or _CUSTOM";

/// A required survey kind.
pub(crate) fn kind(v: &mut Violations, field: &str, raw: i32) -> Option<Kind> {
    let k = kind_from(raw);
    if k.is_none() {
        let what = if raw == 0 { "is required".to_string() } else { format!("{raw} is not a survey kind") };
        v.add(field, format!("{what}: use {KINDS}"));
    }
    k
}

/// An optional filter by kind (UNSPECIFIED: all).
pub(crate) fn kind_filter(v: &mut Violations, field: &str, raw: i32) -> Option<Kind> {
    if raw == 0 {
        return None;
    }
    kind(v, field, raw)
}

fn question_type(t: QuestionType) -> pb::QuestionType {
    match t {
        QuestionType::Scale => pb::QuestionType::Scale,
        QuestionType::Choice => pb::QuestionType::Choice,
        QuestionType::Text => pb::QuestionType::Text,
    }
}

fn question(v: &mut Violations, field: &str, i: usize, q: &pb::CustomQuestion) -> Option<Question> {
    wire::required_text(v, &format!("{field}.text"), &q.text, 500);
    let kind = match pb::QuestionType::try_from(q.r#type) {
        Ok(pb::QuestionType::Scale) => Some(QuestionType::Scale),
        Ok(pb::QuestionType::Choice) => Some(QuestionType::Choice),
        Ok(pb::QuestionType::Text) => Some(QuestionType::Text),
        _ => {
            let what =
                if q.r#type == 0 { "is required".to_string() } else { format!("{} is not a question type", q.r#type) };
            v.add(format!("{field}.type"), format!("{what}: use QUESTION_TYPE_SCALE, _CHOICE or _TEXT"));
            None
        }
    };
    let scale = if q.scale_min == 0 && q.scale_max == 0 { (1, 5) } else { (q.scale_min, q.scale_max) };
    if kind == Some(QuestionType::Scale) && !(0 <= scale.0 && scale.0 < scale.1 && scale.1 <= 10) {
        v.add(
            format!("{field}.scale_max"),
            format!("the scale must satisfy 0 <= min < max <= 10, got {} to {}", scale.0, scale.1),
        );
    }
    if kind == Some(QuestionType::Choice) {
        if !(2..=20).contains(&q.choices.len()) {
            v.add(
                format!("{field}.choices"),
                format!("a choice question takes 2 to 20 choices, got {}", q.choices.len()),
            );
        }
        let mut seen = BTreeSet::new();
        for (j, c) in q.choices.iter().enumerate() {
            wire::required_text(v, &format!("{field}.choices[{j}]"), c, 200);
            if !seen.insert(c.trim()) {
                v.add(format!("{field}.choices[{j}]"), format!("{c:?} is listed twice"));
            }
        }
    } else if !q.choices.is_empty() {
        v.add(format!("{field}.choices"), "only a choice question has choices");
    }
    if q.multiple && kind != Some(QuestionType::Choice) {
        v.add(format!("{field}.multiple"), "only a choice question takes several choices");
    }
    Some(Question {
        id: format!("q{}", i + 1),
        text: q.text.trim().to_string(),
        kind: kind?,
        scale,
        choices: q.choices.iter().map(|c| c.trim().to_string()).collect(),
        multiple: q.multiple,
        required: q.required,
    })
}

/// CreateSurvey's survey.
pub(crate) fn survey_body(v: &mut Violations, s: &pb::Survey) -> Option<Body> {
    wire::required_text(v, "survey.display_name", &s.display_name, 200);
    let kind = kind(v, "survey.kind", s.kind);
    wire::text(v, "survey.question", &s.question, 500);
    wire::text(v, "survey.default_outcome", &s.default_outcome, 200);
    wire::text(v, "survey.perception_statement", &s.perception_statement, 300);
    if s.questions.len() > survey::MAX_QUESTIONS {
        v.add("survey.questions", format!("at most {} questions, got {}", survey::MAX_QUESTIONS, s.questions.len()));
    }
    if kind == Some(Kind::Custom) && s.questions.is_empty() {
        v.add("survey.questions", "a custom survey needs at least one question");
    }
    if kind == Some(Kind::Custom) && !s.question.trim().is_empty() {
        v.add("survey.question", "a custom survey has no main question: ask it as a custom question");
    }
    if kind.is_some_and(|k| k != Kind::Outcome) && !s.default_outcome.trim().is_empty() {
        v.add("survey.default_outcome", "only an outcome survey names an outcome");
    }
    let language = match s.language.as_str() {
        "" | "en" => Some(Language::En),
        "ja" => Some(Language::Ja),
        other => {
            v.add(
                "survey.language",
                format!("{:?} is not a form language: use \"en\" or \"ja\"", banso_kit::error::shown(other)),
            );
            None
        }
    };
    let questions: Vec<Option<Question>> = s
        .questions
        .iter()
        .take(survey::MAX_QUESTIONS)
        .enumerate()
        .map(|(i, q)| question(v, &format!("survey.questions[{i}]"), i, q))
        .collect();
    Some(Body {
        display_name: s.display_name.trim().to_string(),
        kind: kind?,
        question: s.question.trim().to_string(),
        default_outcome: s.default_outcome.trim().to_string(),
        questions: questions.into_iter().collect::<Option<Vec<_>>>()?,
        perception_statement: s.perception_statement.trim().to_string(),
        language: language?,
    })
}

pub(crate) fn custom_question(q: &Question) -> pb::CustomQuestion {
    pb::CustomQuestion {
        id: q.id.clone(),
        text: q.text.clone(),
        r#type: question_type(q.kind) as i32,
        scale_min: if q.kind == QuestionType::Scale { q.scale.0 } else { 0 },
        scale_max: if q.kind == QuestionType::Scale { q.scale.1 } else { 0 },
        choices: q.choices.clone(),
        multiple: q.multiple,
        required: q.required,
    }
}

pub(crate) fn survey_to_proto(s: &Survey) -> pb::Survey {
    pb::Survey {
        id: s.id.to_string(),
        display_name: s.body.display_name.clone(),
        kind: kind_to_proto(s.body.kind) as i32,
        question: s.body.question.clone(),
        default_outcome: s.body.default_outcome.clone(),
        questions: s.body.questions.iter().map(custom_question).collect(),
        perception_statement: s.body.perception_statement.clone(),
        language: s.body.language.as_str().to_string(),
        create_time: Some(wire::timestamp(s.create_time)),
    }
}

fn level_from(raw: i32) -> Option<Level> {
    match banso_proto::accounts::ContactLevel::try_from(raw).ok()? {
        banso_proto::accounts::ContactLevel::Executive => Some(Level::Executive),
        banso_proto::accounts::ContactLevel::Manager => Some(Level::Manager),
        banso_proto::accounts::ContactLevel::Practitioner => Some(Level::Practitioner),
        banso_proto::accounts::ContactLevel::Unspecified => None,
    }
}

fn level_to_proto(l: Level) -> i32 {
    (match l {
        Level::Executive => banso_proto::accounts::ContactLevel::Executive,
        Level::Manager => banso_proto::accounts::ContactLevel::Manager,
        Level::Practitioner => banso_proto::accounts::ContactLevel::Practitioner,
    }) as i32
}

fn selector(v: &mut Violations, s: Option<&pb::ContactSelector>) -> ContactSelector {
    let Some(s) = s else { return ContactSelector::default() };
    let mut levels = Vec::new();
    for (i, raw) in s.levels.iter().enumerate() {
        match level_from(*raw) {
            Some(l) if !levels.contains(&l) => levels.push(l),
            Some(_) => v.add(format!("campaign.contacts.levels[{i}]"), "is listed twice"),
            None => v.add(
                format!("campaign.contacts.levels[{i}]"),
                format!("{raw} is not a contact level: use CONTACT_LEVEL_EXECUTIVE, _MANAGER or _PRACTITIONER"),
            ),
        }
    }
    if s.departments.len() > 20 {
        v.add("campaign.contacts.departments", format!("at most 20 departments, got {}", s.departments.len()));
    }
    for (i, d) in s.departments.iter().enumerate() {
        wire::required_text(v, &format!("campaign.contacts.departments[{i}]"), d, 100);
    }
    ContactSelector {
        levels,
        champions_only: s.champions_only,
        decision_makers_only: s.decision_makers_only,
        departments: s.departments.iter().map(|d| d.trim().to_lowercase()).collect(),
    }
}

/// CreateCampaign's campaign, at `now`.
pub(crate) fn new_campaign(v: &mut Violations, c: &pb::Campaign, now: DateTime<Utc>) -> Option<NewCampaign> {
    let survey_id = v.take(wire::uuid("campaign.survey_id", &c.survey_id));
    wire::required_text(v, "campaign.display_name", &c.display_name, 200);
    let segment_id = v.take(wire::optional_uuid("campaign.segment_id", &c.segment_id)).flatten();
    if c.account_ids.len() > campaign::MAX_ACCOUNT_IDS {
        v.add(
            "campaign.account_ids",
            format!("at most {} accounts, got {}", campaign::MAX_ACCOUNT_IDS, c.account_ids.len()),
        );
    }
    let mut account_ids = Vec::new();
    for (i, a) in c.account_ids.iter().take(campaign::MAX_ACCOUNT_IDS).enumerate() {
        if let Some(id) = v.take(wire::uuid(&format!("campaign.account_ids[{i}]"), a)) {
            if account_ids.contains(&id) {
                v.add(format!("campaign.account_ids[{i}]"), format!("{id} is listed twice"));
            }
            account_ids.push(id);
        }
    }
    if segment_id.is_some() && !c.account_ids.is_empty() {
        v.add("campaign.account_ids", "give a segment or a list of accounts, not both");
    }
    let contacts = selector(v, c.contacts.as_ref());
    let delivery_endpoint_id =
        v.take(wire::optional_uuid("campaign.delivery_endpoint_id", &c.delivery_endpoint_id)).flatten();
    let send_time = wire::optional_time(v, "campaign.send_time", c.send_time.as_ref());
    if let Some(t) = send_time
        && t > now + Duration::days(366)
    {
        v.add("campaign.send_time", format!("must be within a year, got {}", t.to_rfc3339()));
    }
    let schedule = match (&c.standing, send_time) {
        (Some(_), Some(_)) => {
            v.add("campaign.standing", "a standing campaign has no send_time: give one or the other");
            None
        }
        (Some(s), None) => standing(v, s),
        (None, t) => Some(Schedule::Once { send_time: t.map_or(now, |t| t.max(now)) }),
    };
    let token_valid_days = match c.token_valid_days {
        0 => campaign::DEFAULT_TOKEN_DAYS,
        d @ 1..=90 => d,
        d => {
            v.add("campaign.token_valid_days", format!("must be 1 to 90 days, got {d}"));
            campaign::DEFAULT_TOKEN_DAYS
        }
    };
    let close_time = wire::optional_time(v, "campaign.close_time", c.close_time.as_ref());
    if let (Some(close), Some(Schedule::Once { send_time })) = (close_time, &schedule)
        && close <= *send_time
    {
        v.add(
            "campaign.close_time",
            format!("must be after the send time {}, got {}", send_time.to_rfc3339(), close.to_rfc3339()),
        );
    }
    if let Some(close) = close_time
        && close <= now
    {
        v.add("campaign.close_time", format!("must be in the future, got {}", close.to_rfc3339()));
    }
    Some(NewCampaign {
        survey_id: survey_id?,
        body: CampaignBody {
            display_name: c.display_name.trim().to_string(),
            segment_id,
            account_ids,
            contacts,
            schedule: schedule?,
            token_valid_days,
            delivery_endpoint_id,
        },
        close_time,
    })
}

fn standing(v: &mut Violations, s: &pb::StandingSchedule) -> Option<Schedule> {
    let stage = s.after_stage != 0;
    match (stage, s.days_before_renewal) {
        (true, 0) => {
            let st = wire::lifecycle_stage(v, "campaign.standing.after_stage", s.after_stage);
            if !(0..=3650).contains(&s.days_after_stage) {
                v.add("campaign.standing.days_after_stage", format!("must be 0 to 3650, got {}", s.days_after_stage));
            }
            Some(Schedule::AfterStage { stage: st?, days: s.days_after_stage })
        }
        (false, d) if d != 0 => {
            if !(1..=3650).contains(&d) {
                v.add("campaign.standing.days_before_renewal", format!("must be 1 to 3650, got {d}"));
            }
            if s.days_after_stage != 0 {
                v.add("campaign.standing.days_after_stage", "is for after_stage, which is not set");
            }
            Some(Schedule::BeforeRenewal { days: d })
        }
        (true, _) => {
            v.add("campaign.standing", "give after_stage or days_before_renewal, not both");
            None
        }
        (false, _) => {
            v.add("campaign.standing", "give after_stage (with days_after_stage) or days_before_renewal");
            None
        }
    }
}

fn state_to_proto(s: State) -> pb::CampaignState {
    match s {
        State::Scheduled => pb::CampaignState::Scheduled,
        State::Active => pb::CampaignState::Active,
        State::Closed => pb::CampaignState::Closed,
    }
}

pub(crate) fn campaign_to_proto(c: &Campaign, now: DateTime<Utc>) -> pb::Campaign {
    let (send_time, standing) = match c.body.schedule {
        Schedule::Once { send_time } => (Some(wire::timestamp(send_time)), None),
        Schedule::AfterStage { stage, days } => (
            None,
            Some(pb::StandingSchedule {
                after_stage: stage.to_proto() as i32,
                days_after_stage: days,
                days_before_renewal: 0,
            }),
        ),
        Schedule::BeforeRenewal { days } => {
            (None, Some(pb::StandingSchedule { after_stage: 0, days_after_stage: 0, days_before_renewal: days }))
        }
    };
    // Past its close time a campaign is closed, whether or not the sender has been by.
    let state = if c.open_at(now) { c.state } else { State::Closed };
    pb::Campaign {
        id: c.id.to_string(),
        survey_id: c.survey_id.to_string(),
        display_name: c.body.display_name.clone(),
        segment_id: c.body.segment_id.map(|s| s.to_string()).unwrap_or_default(),
        account_ids: c.body.account_ids.iter().map(Uuid::to_string).collect(),
        contacts: Some(pb::ContactSelector {
            levels: c.body.contacts.levels.iter().map(|l| level_to_proto(*l)).collect(),
            champions_only: c.body.contacts.champions_only,
            decision_makers_only: c.body.contacts.decision_makers_only,
            departments: c.body.contacts.departments.clone(),
        }),
        send_time,
        standing,
        token_valid_days: c.body.token_valid_days,
        close_time: c.close_time.map(wire::timestamp),
        state: state_to_proto(state) as i32,
        counts: Some(pb::CampaignCounts {
            invited: c.counts.invited,
            throttled: c.counts.throttled,
            delivered: c.counts.delivered,
            answered: c.counts.answered,
            accounts_without_contacts: c.counts.accounts_without_contacts,
            failed: c.counts.failed,
        }),
        create_time: Some(wire::timestamp(c.create_time)),
        created_by: c.created_by.clone(),
        delivery_endpoint_id: c.body.delivery_endpoint_id.map(|e| e.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn status_filter(v: &mut Violations, raw: i32) -> Option<Status> {
    match pb::InvitationStatus::try_from(raw) {
        Ok(pb::InvitationStatus::Unspecified) => None,
        Ok(pb::InvitationStatus::Sent) => Some(Status::Sent),
        Ok(pb::InvitationStatus::Delivered) => Some(Status::Delivered),
        Ok(pb::InvitationStatus::Answered) => Some(Status::Answered),
        Ok(pb::InvitationStatus::Expired) => Some(Status::Expired),
        Ok(pb::InvitationStatus::Failed) => Some(Status::Failed),
        Err(_) => {
            v.add(
                "status",
                format!(
                    "{raw} is not an invitation status: use INVITATION_STATUS_SENT, _DELIVERED, _ANSWERED, _EXPIRED or _FAILED"
                ),
            );
            None
        }
    }
}

pub(crate) fn invitation_to_proto(x: &Issued, now: DateTime<Utc>) -> pb::Invitation {
    let i = &x.invitation;
    pb::Invitation {
        id: i.id.to_string(),
        campaign_id: i.campaign_id.to_string(),
        account_id: i.account_id.to_string(),
        contact_id: i.contact_id.to_string(),
        email: i.email.clone(),
        status: (match i.status(now) {
            Status::Sent => pb::InvitationStatus::Sent,
            Status::Delivered => pb::InvitationStatus::Delivered,
            Status::Answered => pb::InvitationStatus::Answered,
            Status::Expired => pb::InvitationStatus::Expired,
            Status::Failed => pb::InvitationStatus::Failed,
        }) as i32,
        token: x.token.clone(),
        answer_url: x.answer_url.clone(),
        send_time: Some(wire::timestamp(i.send_time)),
        deliver_time: i.deliver_time.or(i.answer_time).map(wire::timestamp),
        answer_time: i.answer_time.map(wire::timestamp),
        expire_time: Some(wire::timestamp(i.expire_time)),
        fail_time: i.failure.as_ref().map(|f| wire::timestamp(f.at)),
        delivery_error: i.failure.as_ref().map(|f| f.error.clone()).unwrap_or_default(),
    }
}

/// A response token as given: present and not longer than any we sign.
pub(crate) fn token(v: &mut Violations, t: &str) -> String {
    if t.is_empty() {
        v.add("token", "is required");
    } else if t.len() > MAX_TOKEN_LEN {
        v.add("token", "is not a valid response token");
    }
    t.to_string()
}

/// SubmitSurveyAnswer, but the token.
pub(crate) fn submission(v: &mut Violations, r: &pb::SubmitSurveyAnswerRequest) -> Submission {
    wire::multiline_text(v, "comment", &r.comment, survey::MAX_ANSWER_TEXT);
    if r.answers.len() > survey::MAX_QUESTIONS {
        v.add("answers", format!("at most {} answers, got {}", survey::MAX_QUESTIONS, r.answers.len()));
    }
    let answers = r
        .answers
        .iter()
        .take(survey::MAX_QUESTIONS)
        .enumerate()
        .map(|(i, a)| {
            wire::text(v, &format!("answers[{i}].question_id"), &a.question_id, 10);
            wire::multiline_text(v, &format!("answers[{i}].text"), &a.text, survey::MAX_ANSWER_TEXT);
            if a.choices.len() > 20 {
                v.add(format!("answers[{i}].choices"), format!("at most 20 choices, got {}", a.choices.len()));
            }
            for (j, c) in a.choices.iter().take(20).enumerate() {
                wire::text(v, &format!("answers[{i}].choices[{j}]"), c, 200);
            }
            QuestionAnswer {
                question_id: a.question_id.clone(),
                scale: a.scale,
                choices: a.choices.iter().take(20).map(|c| c.trim().to_string()).collect(),
                text: a.text.clone(),
            }
        })
        .collect();
    Submission { score: r.score, comment: r.comment.clone(), answers, perception_agreement: r.perception_agreement }
}

pub(crate) fn category(c: Option<NpsCategory>) -> i32 {
    category_to_proto(c) as i32
}

pub(crate) fn category_from(v: &mut Violations, field: &str, raw: i32) -> Option<NpsCategory> {
    match pb::NpsCategory::try_from(raw) {
        Ok(pb::NpsCategory::Detractor) => Some(NpsCategory::Detractor),
        Ok(pb::NpsCategory::Passive) => Some(NpsCategory::Passive),
        Ok(pb::NpsCategory::Promoter) => Some(NpsCategory::Promoter),
        _ => {
            let what = if raw == 0 { "is required".to_string() } else { format!("{raw} is not an NPS category") };
            v.add(field, format!("{what}: use NPS_CATEGORY_DETRACTOR, _PASSIVE or _PROMOTER"));
            None
        }
    }
}

/// A band of the matrix: UNSPECIFIED is "not scored".
pub(crate) fn band_from(v: &mut Violations, raw: i32) -> Option<Option<Band>> {
    match banso_proto::health::Band::try_from(raw) {
        Ok(banso_proto::health::Band::Unspecified) => Some(None),
        Ok(banso_proto::health::Band::Red) => Some(Some(Band::Red)),
        Ok(banso_proto::health::Band::Yellow) => Some(Some(Band::Yellow)),
        Ok(banso_proto::health::Band::Green) => Some(Some(Band::Green)),
        Err(_) => {
            v.add(
                "band",
                format!("{raw} is not a band: use BAND_RED, _YELLOW, _GREEN or BAND_UNSPECIFIED (not scored)"),
            );
            None
        }
    }
}

pub(crate) fn band_to_proto(b: Option<Band>) -> i32 {
    (match b {
        None => banso_proto::health::Band::Unspecified,
        Some(Band::Red) => banso_proto::health::Band::Red,
        Some(Band::Yellow) => banso_proto::health::Band::Yellow,
        Some(Band::Green) => banso_proto::health::Band::Green,
    }) as i32
}

pub(crate) fn grouping(v: &mut Violations, raw: i32) -> Option<Grouping> {
    Some(match pb::ResultGrouping::try_from(raw) {
        Ok(pb::ResultGrouping::Unspecified) => Grouping::None,
        Ok(pb::ResultGrouping::Industry) => Grouping::Industry,
        Ok(pb::ResultGrouping::Size) => Grouping::Size,
        Ok(pb::ResultGrouping::Region) => Grouping::Region,
        Ok(pb::ResultGrouping::Plan) => Grouping::Plan,
        Ok(pb::ResultGrouping::LifecycleStage) => Grouping::LifecycleStage,
        Ok(pb::ResultGrouping::TouchModel) => Grouping::TouchModel,
        Ok(pb::ResultGrouping::HealthBand) => Grouping::HealthBand,
        Err(_) => {
            v.add("group_by", format!("{raw} is not a grouping: use RESULT_GROUPING_INDUSTRY, _SIZE, _REGION, _PLAN, _LIFECYCLE_STAGE, _TOUCH_MODEL or _HEALTH_BAND"));
            return None;
        }
    })
}

pub(crate) fn periods(v: &mut Violations, raw: i32) -> Option<Periods> {
    use banso_kit::calendar::PeriodKind;
    Some(match pb::Period::try_from(raw) {
        Ok(pb::Period::Unspecified) => Periods::Whole,
        Ok(pb::Period::Month) => Periods::Of(PeriodKind::Month),
        Ok(pb::Period::Quarter) => Periods::Of(PeriodKind::FiscalQuarter),
        Ok(pb::Period::FiscalYear) => Periods::Of(PeriodKind::FiscalYear),
        Err(_) => {
            v.add("period", format!("{raw} is not a period: use PERIOD_MONTH, _QUARTER or _FISCAL_YEAR"));
            return None;
        }
    })
}

/// A range `[start_time, end_time)`: start before end when both are given.
pub(crate) fn range(
    v: &mut Violations,
    start: Option<&pbjson_types::Timestamp>,
    end: Option<&pbjson_types::Timestamp>,
) -> Range {
    let start = wire::optional_time(v, "start_time", start);
    let end = wire::optional_time(v, "end_time", end);
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.add("end_time", format!("must be after start_time {}, got {}", s.to_rfc3339(), e.to_rfc3339()));
    }
    Range { start, end }
}

pub(crate) fn estimate(e: &Estimate) -> pb::Estimate {
    pb::Estimate { value: e.value, n: e.n, low: e.low, high: e.high }
}

/// The kind of each throttle, once; days 0 to 730.
pub(crate) fn throttles(v: &mut Violations, s: &pb::FeedbackSettings) -> BTreeMap<Kind, i32> {
    let mut out = BTreeMap::new();
    for (i, t) in s.throttles.iter().enumerate() {
        let field = format!("settings.throttles[{i}]");
        let k = kind(v, &format!("{field}.kind"), t.kind);
        if !(0..=730).contains(&t.days) {
            v.add(format!("{field}.days"), format!("must be 0 (no throttle) to 730 days, got {}", t.days));
        }
        if let Some(k) = k
            && out.insert(k, t.days).is_some()
        {
            v.add(format!("{field}.kind"), format!("{} is listed twice", k.as_str()));
        }
    }
    out
}

pub(crate) fn settings_to_proto(t: &crate::store::tenants::Tenant) -> pb::FeedbackSettings {
    pb::FeedbackSettings {
        throttles: Kind::ALL
            .iter()
            .map(|k| pb::KindThrottle { kind: kind_to_proto(*k) as i32, days: t.throttle_days(*k) })
            .collect(),
    }
}

/// A customer's answer as the API shows it.
pub(crate) fn answer_to_proto(a: &crate::store::answers::Answer) -> pb::SurveyAnswer {
    pb::SurveyAnswer {
        id: a.id.to_string(),
        survey_id: a.survey_id.to_string(),
        campaign_id: a.campaign_id.to_string(),
        invitation_id: a.invitation_id.to_string(),
        account_id: a.account_id.to_string(),
        contact_id: a.contact_id.to_string(),
        kind: kind_to_proto(a.kind) as i32,
        score: a.score,
        nps_category: category(a.score.filter(|_| a.kind == Kind::Nps).map(|x| survey::nps_category(f64::from(x)))),
        perception_agreement: a.perception,
        comment: a.comment.clone(),
        answers: a
            .answers
            .iter()
            .map(|x| pb::QuestionAnswer {
                question_id: x.question_id.clone(),
                scale: x.scale,
                choices: x.choices.clone(),
                text: x.text.clone(),
            })
            .collect(),
        answer_time: Some(wire::timestamp(a.answer_time)),
    }
}
