//! Items, themes, suggestions and the voice settings on the wire; the
//! voice's enum converters and `theme_to_proto` for the other parts.

use std::collections::BTreeSet;

use banso_kit::{
    Violations,
    auth::Access,
    etag, field_paths, fieldmask,
    paging::{self, Paged, QueryKey},
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::feedback as pb;
use tonic::{Request, Streaming};
use uuid::Uuid;

use crate::{
    app::{App, voice::items::Incoming},
    domain::{
        rank::{Assessment, Weights},
        voice::{
            Acknowledgement, Channel, CxDimension, Decision, Department, Item, ItemFields, JourneyPhase, MAX_ITEM_TEXT,
            Roadmap, RoadmapChange, RoadmapStatus, Theme, ThemeBody, mention_time_problem,
        },
    },
    events::{department_to_proto, item_to_proto, roadmap_status_to_proto},
    store::voice::ItemFilter,
};

/// An enum of the wire: its value, a violation for UNSPECIFIED when
/// `required`, or for an unknown number.
fn enum_from<T>(
    v: &mut Violations,
    field: &str,
    raw: i32,
    required: bool,
    names: &str,
    f: impl Fn(i32) -> Option<T>,
) -> Option<T> {
    if raw == 0 {
        if required {
            v.add(field, format!("is required: use {names}"));
        }
        return None;
    }
    let x = f(raw);
    if x.is_none() {
        v.add(field, format!("{raw} is not one of {names}"));
    }
    x
}

/// A required department.
pub(super) fn department_from(v: &mut Violations, field: &str, raw: i32) -> Option<Department> {
    department(v, field, raw, true)
}

/// A department filter: UNSPECIFIED is none.
pub(super) fn department_filter(v: &mut Violations, field: &str, raw: i32) -> Option<Department> {
    department(v, field, raw, false)
}

fn department(v: &mut Violations, field: &str, raw: i32, required: bool) -> Option<Department> {
    enum_from(v, field, raw, required, "DEPARTMENT_PRODUCT, _SUPPORT, _SALES, _CS or _BILLING", |r| {
        Some(match pb::Department::try_from(r).ok()? {
            pb::Department::Product => Department::Product,
            pb::Department::Support => Department::Support,
            pb::Department::Sales => Department::Sales,
            pb::Department::Cs => Department::Cs,
            pb::Department::Billing => Department::Billing,
            pb::Department::Unspecified => return None,
        })
    })
}

/// A list of departments, each once.
pub(super) fn departments_from(v: &mut Violations, field: &str, raw: &[i32]) -> Vec<Department> {
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if let Some(d) = department_from(v, &f, *r) {
            if out.contains(&d) {
                v.add(f, format!("{} is listed twice", d.as_str()));
            } else {
                out.push(d);
            }
        }
    }
    out
}

fn channel_from(v: &mut Violations, field: &str, raw: i32) -> Option<Channel> {
    let names = "CHANNEL_CSM_NOTE, _SUPPORT_TICKET, _CALL, _COMMUNITY or _EMAIL";
    let c = enum_from(v, field, raw, true, names, |r| {
        Some(match pb::Channel::try_from(r).ok()? {
            pb::Channel::SurveyComment => Channel::SurveyComment,
            pb::Channel::CsmNote => Channel::CsmNote,
            pb::Channel::SupportTicket => Channel::SupportTicket,
            pb::Channel::Call => Channel::Call,
            pb::Channel::Community => Channel::Community,
            pb::Channel::Email => Channel::Email,
            pb::Channel::Unspecified => return None,
        })
    });
    if c == Some(Channel::SurveyComment) {
        v.add(field, "survey comments are recorded by the service from the answers: use another channel");
        return None;
    }
    c
}

fn cx_from(v: &mut Violations, field: &str, raw: i32) -> Option<CxDimension> {
    enum_from(v, field, raw, false, "CX_DIMENSION_SENSE, _FEEL, _THINK, _ACT or _RELATE", |r| {
        Some(match pb::CxDimension::try_from(r).ok()? {
            pb::CxDimension::Sense => CxDimension::Sense,
            pb::CxDimension::Feel => CxDimension::Feel,
            pb::CxDimension::Think => CxDimension::Think,
            pb::CxDimension::Act => CxDimension::Act,
            pb::CxDimension::Relate => CxDimension::Relate,
            pb::CxDimension::Unspecified => return None,
        })
    })
}

fn phase_from(v: &mut Violations, field: &str, raw: i32) -> Option<JourneyPhase> {
    enum_from(v, field, raw, false, "JOURNEY_PHASE_BUYING, _USING or _SUPPORT", |r| {
        Some(match pb::JourneyPhase::try_from(r).ok()? {
            pb::JourneyPhase::Buying => JourneyPhase::Buying,
            pb::JourneyPhase::Using => JourneyPhase::Using,
            pb::JourneyPhase::Support => JourneyPhase::Support,
            pb::JourneyPhase::Unspecified => return None,
        })
    })
}

pub(super) fn roadmap_status_from(v: &mut Violations, field: &str, raw: i32) -> Option<RoadmapStatus> {
    enum_from(v, field, raw, true, "ROADMAP_STATUS_UNDER_REVIEW, _PLANNED, _IN_PROGRESS, _SHIPPED or _DECLINED", |r| {
        Some(match pb::RoadmapStatus::try_from(r).ok()? {
            pb::RoadmapStatus::UnderReview => RoadmapStatus::UnderReview,
            pb::RoadmapStatus::Planned => RoadmapStatus::Planned,
            pb::RoadmapStatus::InProgress => RoadmapStatus::InProgress,
            pb::RoadmapStatus::Shipped => RoadmapStatus::Shipped,
            pb::RoadmapStatus::Declined => RoadmapStatus::Declined,
            pb::RoadmapStatus::Unspecified => return None,
        })
    })
}

/// An item's fields (prefix "item").
fn item_fields(v: &mut Violations, i: &pb::FeedbackItem) -> Option<ItemFields> {
    if i.text.trim().is_empty() {
        v.add("item.text", "is required");
    } else {
        wire::multiline_text(v, "item.text", &i.text, MAX_ITEM_TEXT);
    }
    let channel = channel_from(v, "item.channel", i.channel);
    let account = v.take(wire::uuid("item.account_id", &i.account_id));
    let contact = v.take(wire::optional_uuid("item.contact_id", &i.contact_id)).flatten();
    let department = department_from(v, "item.department", i.department);
    wire::text(v, "item.category", &i.category, 100);
    let cx = cx_from(v, "item.cx_dimension", i.cx_dimension);
    let phase = phase_from(v, "item.journey_phase", i.journey_phase);
    if !(1..=5).contains(&i.severity) {
        v.add("item.severity", format!("must be 1 (mild) to 5 (severe), got {}", i.severity));
    }
    let mention_time = wire::optional_time(v, "item.mention_time", i.mention_time.as_ref());
    if let Some(why) = mention_time.and_then(|t| mention_time_problem(t, wire::now())) {
        v.add("item.mention_time", why);
    }
    Some(ItemFields {
        text: i.text.trim().to_string(),
        channel: channel?,
        account_id: account?,
        contact_id: contact,
        department: department?,
        category: i.category.trim().to_string(),
        cx_dimension: cx,
        journey_phase: phase,
        severity: i.severity,
        mention_time,
    })
}

fn assessment(v: &mut Violations, a: Option<&pb::ThemeAssessment>) -> Assessment {
    let Some(a) = a else { return Assessment::default() };
    for (field, x) in [("expertise", a.expertise), ("certainty", a.certainty), ("speed", a.speed)] {
        if !(0..=5).contains(&x) {
            v.add(format!("theme.assessment.{field}"), format!("must be 1 to 5 (0: not assessed), got {x}"));
        }
    }
    for (field, x) in [("initial_cost", a.initial_cost), ("operating_cost_per_account", a.operating_cost_per_account)] {
        if !x.is_finite() || x < 0.0 {
            v.add(format!("theme.assessment.{field}"), format!("must be a finite amount ≥ 0, got {x}"));
        }
    }
    Assessment {
        main_component: a.main_component,
        mainstream: a.mainstream,
        root_cause: a.root_cause,
        bottleneck: a.bottleneck,
        we_can_support: a.we_can_support,
        customers_consult_us: a.customers_consult_us,
        expertise: a.expertise,
        competitor_meets_need: a.competitor_meets_need,
        certainty: a.certainty,
        speed: a.speed,
        initial_cost: a.initial_cost,
        operating_cost_per_account: a.operating_cost_per_account,
    }
}

fn keywords(v: &mut Violations, raw: &[String]) -> Vec<String> {
    if raw.len() > 50 {
        v.add("theme.keywords", format!("at most 50 keywords, got {}", raw.len()));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, k) in raw.iter().take(50).enumerate() {
        wire::required_text(v, &format!("theme.keywords[{i}]"), k, 100);
        let k = k.trim().to_string();
        if !k.is_empty() && seen.insert(k.to_lowercase()) {
            out.push(k);
        }
    }
    out
}

fn roadmap(v: &mut Violations, r: Option<&pb::RoadmapLink>) -> Roadmap {
    let Some(r) = r else { return Roadmap::default() };
    wire::text(v, "theme.roadmap.tracker", &r.tracker, 50);
    wire::text(v, "theme.roadmap.key", &r.key, 100);
    wire::text(v, "theme.roadmap.url", &r.url, 2000);
    let web = r.url.starts_with("https://") || r.url.starts_with("http://");
    if !r.url.is_empty() && !web {
        v.add("theme.roadmap.url", format!("must be an http(s) URL, got {:?}", banso_kit::error::shown(&r.url)));
    }
    Roadmap { tracker: r.tracker.trim().to_string(), key: r.key.trim().to_string(), url: r.url.trim().to_string() }
}

field_paths! {
    /// What UpdateTheme may change.
    pub(crate) enum ThemeField {
        DisplayName = "display_name",
        Description = "description",
        Keywords = "keywords",
        DecisionOwner = "decision_owner",
        Departments = "departments",
        Assessment = "assessment",
        Roadmap = "roadmap",
    }
}

/// The theme's fields of `mask` (all for a create), checked.
fn theme_fields(v: &mut Violations, t: &pb::Theme, mask: &[ThemeField]) -> ThemeBody {
    let mut b = ThemeBody {
        display_name: String::new(),
        description: String::new(),
        keywords: vec![],
        decision_owner: String::new(),
        departments: vec![],
        assessment: Assessment::default(),
        roadmap: Roadmap::default(),
    };
    for f in mask {
        match f {
            ThemeField::DisplayName => {
                wire::required_text(v, "theme.display_name", &t.display_name, 200);
                b.display_name = t.display_name.trim().to_string();
            }
            ThemeField::Description => {
                wire::multiline_text(v, "theme.description", &t.description, 5000);
                b.description = t.description.clone();
            }
            ThemeField::Keywords => b.keywords = keywords(v, &t.keywords),
            ThemeField::DecisionOwner => {
                wire::text(v, "theme.decision_owner", &t.decision_owner, 200);
                b.decision_owner = t.decision_owner.trim().to_string();
            }
            ThemeField::Departments => b.departments = departments_from(v, "theme.departments", &t.departments),
            ThemeField::Assessment => b.assessment = assessment(v, t.assessment.as_ref()),
            ThemeField::Roadmap => b.roadmap = roadmap(v, t.roadmap.as_ref()),
        }
    }
    b
}

fn apply(body: &mut ThemeBody, new: &ThemeBody, mask: &[ThemeField]) {
    for f in mask {
        match f {
            ThemeField::DisplayName => body.display_name = new.display_name.clone(),
            ThemeField::Description => body.description = new.description.clone(),
            ThemeField::Keywords => body.keywords = new.keywords.clone(),
            ThemeField::DecisionOwner => body.decision_owner = new.decision_owner.clone(),
            ThemeField::Departments => body.departments = new.departments.clone(),
            ThemeField::Assessment => body.assessment = new.assessment,
            ThemeField::Roadmap => body.roadmap = new.roadmap.clone(),
        }
    }
}

fn assessment_to_proto(a: &Assessment) -> pb::ThemeAssessment {
    pb::ThemeAssessment {
        main_component: a.main_component,
        mainstream: a.mainstream,
        root_cause: a.root_cause,
        bottleneck: a.bottleneck,
        we_can_support: a.we_can_support,
        customers_consult_us: a.customers_consult_us,
        expertise: a.expertise,
        competitor_meets_need: a.competitor_meets_need,
        certainty: a.certainty,
        speed: a.speed,
        initial_cost: a.initial_cost,
        operating_cost_per_account: a.operating_cost_per_account,
    }
}

fn decision_to_proto(d: &Decision) -> pb::Decision {
    pb::Decision {
        decision: d.decision.clone(),
        rationale: d.rationale.clone(),
        departments_consulted: d.departments_consulted.iter().map(|x| department_to_proto(*x)).collect(),
        decided_by: d.decided_by.clone(),
        decide_time: Some(wire::timestamp(d.decide_time)),
    }
}

fn ack_to_proto(a: &Acknowledgement) -> pb::Acknowledgement {
    pb::Acknowledgement {
        department: department_to_proto(a.department),
        acknowledged_by: a.acknowledged_by.clone(),
        acknowledge_time: Some(wire::timestamp(a.acknowledge_time)),
    }
}

fn change_to_proto(c: &RoadmapChange) -> pb::RoadmapChange {
    pb::RoadmapChange {
        status: roadmap_status_to_proto(Some(c.status)),
        changed_by: c.changed_by.clone(),
        change_time: Some(wire::timestamp(c.change_time)),
        accounts_told: c.accounts_told,
    }
}

/// A theme on the wire, with the number of its items.
pub(super) fn theme_to_proto(t: &Theme, items: i64) -> pb::Theme {
    let b = &t.body;
    pb::Theme {
        id: t.id.to_string(),
        display_name: b.display_name.clone(),
        description: b.description.clone(),
        keywords: b.keywords.clone(),
        decision_owner: b.decision_owner.clone(),
        departments: b.departments.iter().map(|d| department_to_proto(*d)).collect(),
        assessment: Some(assessment_to_proto(&b.assessment)),
        roadmap: Some(pb::RoadmapLink {
            tracker: b.roadmap.tracker.clone(),
            key: b.roadmap.key.clone(),
            url: b.roadmap.url.clone(),
            status: roadmap_status_to_proto(t.status()),
        }),
        decisions: t.log.decisions.iter().map(decision_to_proto).collect(),
        acknowledgements: t.log.acknowledgements.iter().map(ack_to_proto).collect(),
        roadmap_history: t.log.roadmap_history.iter().map(change_to_proto).collect(),
        items,
        create_time: Some(wire::timestamp(t.create_time)),
        etag: etag::of(t.version),
    }
}

pub(super) async fn create_feedback_item(
    app: &App,
    _kit: &Kit,
    req: Request<pb::CreateFeedbackItemRequest>,
) -> Rpc<pb::FeedbackItem> {
    handle(req, Access::Write, async |caller, r| {
        let mut v = Violations::new();
        let request_id = wire::request_id(&mut v, &r.request_id);
        let f = wire::required(&mut v, "item", r.item.as_ref()).and_then(|i| item_fields(&mut v, i));
        let f = v.finish_with(f)?;
        Ok(item_to_proto(&app.create_item(&caller, request_id, f).await?))
    })
    .await
}

/// Most items one import stream takes.
const MAX_IMPORT: usize = 100_000;

pub(super) async fn import_feedback_items(
    app: &App,
    _kit: &Kit,
    req: Request<Streaming<pb::ImportFeedbackItemsRequest>>,
) -> Rpc<pb::ImportFeedbackItemsResponse> {
    handle(req, Access::Write, async |caller, mut stream| {
        let mut incoming: Vec<Incoming> = Vec::new();
        while let Some(msg) = stream.message().await.map_err(|s| {
            banso_kit::Error::invalid("stream", format!("cannot read the request stream: {}", s.message()))
        })? {
            if incoming.len() >= MAX_IMPORT {
                return Err(banso_kit::Error::invalid(
                    "items",
                    format!("one import takes at most {MAX_IMPORT} items: split the stream"),
                ));
            }
            let mut v = Violations::new();
            let f = wire::required(&mut v, "item", msg.item.as_ref()).and_then(|i| item_fields(&mut v, i));
            incoming.push(match (v.finish(), f) {
                (Ok(()), Some(f)) => Ok(f),
                (Err(banso_kit::Error::InvalidArgument(vs)), _) => {
                    Err(vs.into_iter().map(|x| format!("{}: {}", x.field, x.description)).collect())
                }
                _ => Err(vec!["item: is not a valid item".into()]),
            });
        }
        let r = app.import_items(&caller, incoming).await?;
        Ok(pb::ImportFeedbackItemsResponse {
            created: r.created,
            failures: r
                .failures
                .into_iter()
                .map(|(index, violations)| pb::ImportFailure { index, violations })
                .collect(),
            failed: r.failed,
        })
    })
    .await
}

pub(super) async fn get_feedback_item(
    app: &App,
    _kit: &Kit,
    req: Request<pb::GetFeedbackItemRequest>,
) -> Rpc<pb::FeedbackItem> {
    handle(req, Access::Read, async |caller, r| {
        let id = wire::uuid("id", &r.id)?;
        Ok(item_to_proto(&app.get_item(&caller, id).await?))
    })
    .await
}

pub(super) async fn list_feedback_items(
    app: &App,
    kit: &Kit,
    req: Request<pb::ListFeedbackItemsRequest>,
) -> Rpc<pb::ListFeedbackItemsResponse> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let limit = v.take(paging::page_size(r.page_size));
        let account = v.take(wire::optional_uuid("account_id", &r.account_id)).flatten();
        let theme = v.take(wire::optional_uuid("theme_id", &r.theme_id)).flatten();
        let department = department_filter(&mut v, "department", r.department);
        if theme.is_some() && r.unthemed {
            v.add("unthemed", "give theme_id or unthemed, not both");
        }
        let limit = v.finish_with(limit)?;
        let filter = ItemFilter { account, theme, unthemed: r.unthemed, department };
        let key = QueryKey::new("ListFeedbackItems", &caller.tenant_id).part(format!("{filter:?}"));
        let page: Paged<Uuid> = Paged::new(&kit.page_tokens, key, &r.page_token, limit)?;
        let rows = app.list_items(&caller, filter, page.after, page.fetch()).await?;
        let (rows, next_page_token) = page.page(&kit.page_tokens, rows, |i: &Item| i.id)?;
        Ok(pb::ListFeedbackItemsResponse { items: rows.iter().map(item_to_proto).collect(), next_page_token })
    })
    .await
}

fn item_and_theme(item: &str, theme: &str) -> banso_kit::Result<(Uuid, Uuid)> {
    let mut v = Violations::new();
    let item = v.take(wire::uuid("item_id", item));
    let theme = v.take(wire::uuid("theme_id", theme));
    v.finish_with((item, theme))
}

pub(super) async fn assign_theme(app: &App, _kit: &Kit, req: Request<pb::AssignThemeRequest>) -> Rpc<pb::FeedbackItem> {
    handle(req, Access::Write, async |caller, r| {
        let (item, theme) = item_and_theme(&r.item_id, &r.theme_id)?;
        Ok(item_to_proto(&app.assign_theme(&caller, item, theme, "hand").await?))
    })
    .await
}

pub(super) async fn unassign_theme(
    app: &App,
    _kit: &Kit,
    req: Request<pb::UnassignThemeRequest>,
) -> Rpc<pb::FeedbackItem> {
    handle(req, Access::Write, async |caller, r| {
        let (item, theme) = item_and_theme(&r.item_id, &r.theme_id)?;
        Ok(item_to_proto(&app.unassign_theme(&caller, item, theme).await?))
    })
    .await
}

pub(super) async fn suggest_themes(
    app: &App,
    _kit: &Kit,
    req: Request<pb::SuggestThemesRequest>,
) -> Rpc<pb::SuggestThemesResponse> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let of = match (r.item_id.is_empty(), r.text.trim().is_empty()) {
            (false, true) => v.take(wire::uuid("item_id", &r.item_id)).map(Ok),
            (true, false) => {
                wire::multiline_text(&mut v, "text", &r.text, MAX_ITEM_TEXT);
                Some(Err(r.text.clone()))
            }
            (false, false) => {
                v.add("text", "give item_id or text, not both");
                None
            }
            (true, true) => {
                v.add("text", "is required (or item_id)");
                None
            }
        };
        let k = match r.max_suggestions {
            0 => 3,
            k @ 1..=20 => k as usize,
            k => {
                v.add("max_suggestions", format!("must be 1 to 20, got {k}"));
                3
            }
        };
        let of = v.finish_with(of)?;
        let s = app.suggest_themes(&caller, of, k).await?;
        Ok(pb::SuggestThemesResponse {
            suggestions: s
                .into_iter()
                .map(|(id, display_name, similarity)| pb::ThemeSuggestion {
                    theme_id: id.to_string(),
                    display_name,
                    similarity,
                })
                .collect(),
        })
    })
    .await
}

pub(super) async fn suggest_candidate_themes(
    app: &App,
    _kit: &Kit,
    req: Request<pb::SuggestCandidateThemesRequest>,
) -> Rpc<pb::SuggestCandidateThemesResponse> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let max = match r.max_candidates {
            0 => 10,
            k @ 1..=50 => k as usize,
            k => {
                v.add("max_candidates", format!("must be 1 to 50, got {k}"));
                10
            }
        };
        let min = match r.min_items {
            0 => 3,
            k @ 2..=100 => k as usize,
            k => {
                v.add("min_items", format!("must be 2 to 100, got {k}"));
                3
            }
        };
        v.finish()?;
        let c = app.candidate_themes(&caller, max, min).await?;
        Ok(pb::SuggestCandidateThemesResponse {
            candidates: c
                .into_iter()
                .map(|(c, accounts)| pb::CandidateTheme {
                    top_terms: c.top_terms,
                    item_ids: c.items.iter().map(Uuid::to_string).collect(),
                    accounts,
                })
                .collect(),
        })
    })
    .await
}

pub(super) async fn create_theme(app: &App, _kit: &Kit, req: Request<pb::CreateThemeRequest>) -> Rpc<pb::Theme> {
    handle(req, Access::Admin, async |caller, r| {
        let mut v = Violations::new();
        let request_id = wire::request_id(&mut v, &r.request_id);
        let body = wire::required(&mut v, "theme", r.theme.as_ref())
            .map(|t| theme_fields(&mut v, t, <ThemeField as fieldmask::FieldPath>::ALL));
        if let Some(rm) = r.theme.as_ref().and_then(|t| t.roadmap.as_ref())
            && rm.status != 0
        {
            v.add("theme.roadmap.status", "is set with SetRoadmapStatus, which closes loops");
        }
        let body = v.finish_with(body)?;
        Ok(theme_to_proto(&app.create_theme(&caller, request_id, body).await?, 0))
    })
    .await
}

pub(super) async fn get_theme(app: &App, _kit: &Kit, req: Request<pb::GetThemeRequest>) -> Rpc<pb::Theme> {
    handle(req, Access::Read, async |caller, r| {
        let id = wire::uuid("id", &r.id)?;
        let (t, n) = app.get_theme(&caller, id).await?;
        Ok(theme_to_proto(&t, n))
    })
    .await
}

pub(super) async fn list_themes(
    app: &App,
    kit: &Kit,
    req: Request<pb::ListThemesRequest>,
) -> Rpc<pb::ListThemesResponse> {
    handle(req, Access::Read, async |caller, r| {
        let limit = paging::page_size(r.page_size)?;
        let key = QueryKey::new("ListThemes", &caller.tenant_id);
        let page: Paged<Uuid> = Paged::new(&kit.page_tokens, key, &r.page_token, limit)?;
        let rows = app.list_themes(&caller, page.after, page.fetch()).await?;
        let (rows, next_page_token) = page.page(&kit.page_tokens, rows, |(t, _)| t.id)?;
        Ok(pb::ListThemesResponse {
            themes: rows.iter().map(|(t, n)| theme_to_proto(t, *n)).collect(),
            next_page_token,
        })
    })
    .await
}

pub(super) async fn update_theme(app: &App, _kit: &Kit, req: Request<pb::UpdateThemeRequest>) -> Rpc<pb::Theme> {
    handle(req, Access::Admin, async |caller, r| {
        let mut v = Violations::new();
        let mask = v.take(fieldmask::parse::<ThemeField>("update_mask", r.update_mask.as_ref()));
        let t = wire::required(&mut v, "theme", r.theme.as_ref());
        let id = t.and_then(|t| v.take(wire::uuid("theme.id", &t.id)));
        let tag = t.and_then(|t| v.take(etag::parse("theme.etag", &t.etag)));
        let body = t.map(|t| theme_fields(&mut v, t, mask.as_deref().unwrap_or_default()));
        let (mask, id, tag, body) = v.finish_with((mask, id, tag, body))?;
        let (t, n) = app.update_theme(&caller, id, tag, |b| apply(b, &body, &mask)).await?;
        Ok(theme_to_proto(&t, n))
    })
    .await
}

fn settings_to_proto(s: &crate::domain::voice::VoiceSettings) -> pb::VoiceSettings {
    pb::VoiceSettings {
        weights: Some(super::rank::weights_to_proto(&s.weights)),
        require_decision: s.require_decision,
        min_similarity: Some(s.min_similarity),
        digest_time: s.digest_time.clone(),
    }
}

field_paths! {
    /// What UpdateVoiceSettings may change.
    pub(crate) enum SettingsField {
        Weights = "weights",
        RequireDecision = "require_decision",
        MinSimilarity = "min_similarity",
        DigestTime = "digest_time",
    }
}

pub(super) async fn get_voice_settings(
    app: &App,
    _kit: &Kit,
    req: Request<pb::GetVoiceSettingsRequest>,
) -> Rpc<pb::VoiceSettings> {
    handle(req, Access::Read, async |caller, _| Ok(settings_to_proto(&app.voice_settings(&caller).await?))).await
}

pub(super) async fn update_voice_settings(
    app: &App,
    _kit: &Kit,
    req: Request<pb::UpdateVoiceSettingsRequest>,
) -> Rpc<pb::VoiceSettings> {
    handle(req, Access::Admin, async |caller, r| {
        let mut v = Violations::new();
        let mask = v.take(fieldmask::parse::<SettingsField>("update_mask", r.update_mask.as_ref()));
        let s = wire::required(&mut v, "settings", r.settings.as_ref());
        let mut new = crate::domain::voice::VoiceSettings::default();
        if let (Some(s), Some(mask)) = (s, mask.as_deref()) {
            for f in mask {
                match f {
                    SettingsField::Weights => {
                        new.weights = s.weights.as_ref().map_or(Weights::default(), |w| {
                            super::rank::weights_given(&mut v, "settings.weights", w).over(Weights::default())
                        })
                    }
                    SettingsField::RequireDecision => new.require_decision = s.require_decision,
                    SettingsField::MinSimilarity => match s.min_similarity {
                        Some(x) if x.is_finite() && (0.0..=1.0).contains(&x) => new.min_similarity = x,
                        Some(x) => v.add("settings.min_similarity", format!("must be 0 to 1, got {x}")),
                        None => {}
                    },
                    SettingsField::DigestTime => {
                        if chrono::NaiveTime::parse_from_str(&s.digest_time, "%H:%M").is_err()
                            || s.digest_time.len() != 5
                        {
                            v.add(
                                "settings.digest_time",
                                format!(
                                    "must be a local time HH:MM, got {:?}",
                                    banso_kit::error::shown(&s.digest_time)
                                ),
                            );
                        }
                        new.digest_time = s.digest_time.clone();
                    }
                }
            }
        }
        let mask = v.finish_with(mask)?;
        let s = app
            .update_voice_settings(&caller, |cur| {
                for f in &mask {
                    match f {
                        SettingsField::Weights => cur.weights = new.weights,
                        SettingsField::RequireDecision => cur.require_decision = new.require_decision,
                        SettingsField::MinSimilarity => cur.min_similarity = new.min_similarity,
                        SettingsField::DigestTime => cur.digest_time = new.digest_time.clone(),
                    }
                }
            })
            .await?;
        Ok(settings_to_proto(&s))
    })
    .await
}
