//! Timeline activities on the wire.

use banso_kit::{Result, Violations, auth::Caller, paging::QueryKey, server::Kit, wire};
use banso_proto::{accounts as pb, types as tpb};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::convert::{Paged, page_size, request_id, required};
use crate::{
    app::{EmailWindow, RatioGrouping, RatioQuery, RatioReport},
    domain::activity::{
        self, Activity, ActivityFilter, ActivityKind, EmailStats, NewActivity, TouchCounts, TouchOrigin,
    },
};

/// The window GetEmailResponseRate reads when the request names no start.
const DEFAULT_EMAIL_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(90);

fn kind_from_proto(v: &mut Violations, field: &str, raw: i32) -> Option<ActivityKind> {
    use ActivityKind as K;
    match pb::ActivityKind::try_from(raw) {
        Ok(pb::ActivityKind::Meeting) => Some(K::Meeting),
        Ok(pb::ActivityKind::Call) => Some(K::Call),
        Ok(pb::ActivityKind::EmailSent) => Some(K::EmailSent),
        Ok(pb::ActivityKind::EmailReplied) => Some(K::EmailReplied),
        Ok(pb::ActivityKind::Note) => Some(K::Note),
        Ok(pb::ActivityKind::Outreach) => Some(K::Outreach),
        Ok(pb::ActivityKind::Survey) => Some(K::Survey),
        Ok(pb::ActivityKind::Other) => Some(K::Other),
        Ok(pb::ActivityKind::Ticket) => Some(K::Ticket),
        Ok(pb::ActivityKind::Cta) => Some(K::Cta),
        Ok(pb::ActivityKind::SuccessPlan) => Some(K::SuccessPlan),
        Ok(pb::ActivityKind::LoopClosed) => Some(K::LoopClosed),
        Ok(pb::ActivityKind::Unspecified) => {
            v.add(field, "is required (ACTIVITY_KIND_UNSPECIFIED is not a kind)");
            None
        }
        Err(_) => {
            v.add(field, format!("{raw} is not an ActivityKind"));
            None
        }
    }
}

fn kind_to_proto(k: ActivityKind) -> pb::ActivityKind {
    use ActivityKind as K;
    match k {
        K::Meeting => pb::ActivityKind::Meeting,
        K::Call => pb::ActivityKind::Call,
        K::EmailSent => pb::ActivityKind::EmailSent,
        K::EmailReplied => pb::ActivityKind::EmailReplied,
        K::Note => pb::ActivityKind::Note,
        K::Outreach => pb::ActivityKind::Outreach,
        K::Survey => pb::ActivityKind::Survey,
        K::Other => pb::ActivityKind::Other,
        K::Ticket => pb::ActivityKind::Ticket,
        K::Cta => pb::ActivityKind::Cta,
        K::SuccessPlan => pb::ActivityKind::SuccessPlan,
        K::LoopClosed => pb::ActivityKind::LoopClosed,
    }
}

/// An origin of the wire: `Ok(None)` for UNSPECIFIED, `Err` for an unknown value.
fn origin_from_proto(raw: i32) -> std::result::Result<Option<TouchOrigin>, String> {
    match tpb::TouchOrigin::try_from(raw) {
        Ok(tpb::TouchOrigin::Unspecified) => Ok(None),
        Ok(tpb::TouchOrigin::Vendor) => Ok(Some(TouchOrigin::Vendor)),
        Ok(tpb::TouchOrigin::Customer) => Ok(Some(TouchOrigin::Customer)),
        Err(_) => Err(format!(
            "{raw} is not a touch origin; use one of TOUCH_ORIGIN_VENDOR, TOUCH_ORIGIN_CUSTOMER (or unset)"
        )),
    }
}

fn origin_to_proto(o: Option<TouchOrigin>) -> tpb::TouchOrigin {
    match o {
        None => tpb::TouchOrigin::Unspecified,
        Some(TouchOrigin::Vendor) => tpb::TouchOrigin::Vendor,
        Some(TouchOrigin::Customer) => tpb::TouchOrigin::Customer,
    }
}

pub(crate) fn to_proto(a: &Activity) -> pb::Activity {
    pb::Activity {
        id: a.id.to_string(),
        account_id: a.account_id.to_string(),
        kind: kind_to_proto(a.kind) as i32,
        contact_ids: a.contact_ids.iter().map(Uuid::to_string).collect(),
        author_id: a.author_id.clone(),
        occur_time: Some(wire::timestamp(a.occur_time)),
        subject: a.subject.clone(),
        body: a.body.clone(),
        external_ref: a.external_ref.clone().unwrap_or_default(),
        create_time: Some(wire::timestamp(a.create_time)),
        origin: origin_to_proto(a.origin) as i32,
    }
}

/// A LogActivity request: its request_id and the activity.
pub(crate) fn log(r: pb::LogActivityRequest) -> Result<(Option<String>, NewActivity)> {
    let mut v = Violations::new();
    let request_id = request_id(&mut v, &r.request_id);
    let p = required(&mut v, "activity", r.activity.as_ref());
    let activity = p.and_then(|p| {
        let account_id = v.take(wire::uuid("activity.account_id", &p.account_id));
        let kind = kind_from_proto(&mut v, "activity.kind", p.kind);
        if p.contact_ids.len() > activity::MAX_CONTACTS {
            v.add(
                "activity.contact_ids",
                format!("at most {} contacts, got {}", activity::MAX_CONTACTS, p.contact_ids.len()),
            );
        }
        let contact_ids: Vec<Uuid> = p
            .contact_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| v.take(wire::uuid(&format!("activity.contact_ids[{i}]"), id)))
            .collect();
        wire::text(&mut v, "activity.author_id", &p.author_id, 128);
        let occur_time = required(&mut v, "activity.occur_time", p.occur_time.as_ref())
            .and_then(|t| v.take(wire::time("activity.occur_time", t)));
        if let Some(t) = occur_time
            && activity::in_future(t, wire::now())
        {
            v.add("activity.occur_time", format!("{t} is in the future"));
        }
        wire::text(&mut v, "activity.subject", &p.subject, 200);
        wire::multiline_text(&mut v, "activity.body", &p.body, activity::MAX_BODY_CHARS);
        wire::text(&mut v, "activity.external_ref", &p.external_ref, 256);
        let origin = match origin_from_proto(p.origin) {
            Ok(o) => o,
            Err(why) => {
                v.add("activity.origin", why);
                None
            }
        };
        if origin.is_some() && kind == Some(ActivityKind::Note) {
            v.add("activity.origin", "an internal note is not a touch: leave origin unset");
        }
        Some(NewActivity {
            origin,
            account_id: account_id?,
            kind: kind?,
            contact_ids,
            author_id: (!p.author_id.is_empty()).then(|| p.author_id.clone()),
            occur_time: occur_time?,
            subject: p.subject.clone(),
            body: p.body.clone(),
            external_ref: (!p.external_ref.is_empty()).then(|| p.external_ref.clone()),
        })
    });
    let activity = v.finish_with(activity)?;
    Ok((request_id, activity))
}

/// A ListActivities request, parsed.
pub(crate) struct ListActivities {
    pub filter: ActivityFilter,
    pub page: Paged<(DateTime<Utc>, Uuid)>,
}

pub(crate) fn list(kit: &Kit, caller: &Caller, r: pb::ListActivitiesRequest) -> Result<ListActivities> {
    let mut v = Violations::new();
    let limit = page_size(&mut v, r.page_size);
    let account_id = v.take(wire::optional_uuid("account_id", &r.account_id)).flatten();
    let kinds: Vec<_> =
        r.kinds.iter().enumerate().filter_map(|(i, k)| kind_from_proto(&mut v, &format!("kinds[{i}]"), *k)).collect();
    wire::text(&mut v, "author_id", &r.author_id, 128);
    let mut origins = Vec::new();
    for (i, o) in r.origins.iter().enumerate() {
        match origin_from_proto(*o) {
            // Each origin once: the filter stays three conditions at most.
            Ok(o) if !origins.contains(&o) => origins.push(o),
            Ok(_) => {}
            Err(why) => v.add(format!("origins[{i}]"), why),
        }
    }
    let start_time = wire::optional_time(&mut v, "start_time", r.start_time.as_ref());
    let end_time = wire::optional_time(&mut v, "end_time", r.end_time.as_ref());
    if let (Some(s), Some(e)) = (start_time, end_time)
        && e <= s
    {
        v.add("end_time", format!("{e} must be after start_time {s}"));
    }
    let limit = v.finish_with(limit)?;
    let filter = ActivityFilter {
        account_id,
        kinds,
        author_id: (!r.author_id.is_empty()).then(|| r.author_id.clone()),
        start_time,
        end_time,
        origins,
    };
    let key = QueryKey::new("ListActivities", &caller.tenant_id).part(format!("{filter:?}"));
    Ok(ListActivities { page: Paged::new(&kit.page_tokens, key, &r.page_token, limit)?, filter })
}

pub(crate) fn list_reply(kit: &Kit, q: &ListActivities, rows: Vec<Activity>) -> Result<pb::ListActivitiesResponse> {
    let (rows, next_page_token) = q.page.page(&kit.page_tokens, rows, |last| (last.occur_time, last.id))?;
    Ok(pb::ListActivitiesResponse { activities: rows.iter().map(to_proto).collect(), next_page_token })
}

/// The longest period GetProactiveRatio reads: two years and a leap day.
const MAX_RATIO_PERIOD: chrono::TimeDelta = chrono::TimeDelta::days(731);
/// The most segments one GetProactiveRatio names.
const MAX_RATIO_SEGMENTS: usize = 100;

/// A GetProactiveRatio request: a period of at most 731 days and a grouping.
pub(crate) fn ratio_query(r: pb::GetProactiveRatioRequest) -> Result<RatioQuery> {
    let mut v = Violations::new();
    let start = required(&mut v, "start_time", r.start_time.as_ref()).and_then(|t| v.take(wire::time("start_time", t)));
    let end = required(&mut v, "end_time", r.end_time.as_ref()).and_then(|t| v.take(wire::time("end_time", t)));
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            v.add("end_time", format!("{e} must be after start_time {s}"));
        } else if e - s > MAX_RATIO_PERIOD {
            v.add("end_time", format!("{e} is more than 731 days after start_time {s}"));
        }
    }
    let group_by = match pb::ProactiveRatioGrouping::try_from(r.group_by) {
        Ok(pb::ProactiveRatioGrouping::Account) => Some(RatioGrouping::Account),
        Ok(pb::ProactiveRatioGrouping::Owner) => Some(RatioGrouping::Owner),
        Ok(pb::ProactiveRatioGrouping::Segment) => Some(RatioGrouping::Segment),
        Ok(pb::ProactiveRatioGrouping::Unspecified) => {
            v.add("group_by", "is required: one of PROACTIVE_RATIO_GROUPING_ACCOUNT, _OWNER, _SEGMENT");
            None
        }
        Err(_) => {
            v.add("group_by", format!("{} is not a grouping; use ACCOUNT, OWNER or SEGMENT", r.group_by));
            None
        }
    };
    if r.segment_ids.len() > MAX_RATIO_SEGMENTS {
        v.add("segment_ids", format!("at most {MAX_RATIO_SEGMENTS} segments, got {}", r.segment_ids.len()));
    }
    if !r.segment_ids.is_empty() && group_by.is_some_and(|g| g != RatioGrouping::Segment) {
        v.add("segment_ids", "only with group_by PROACTIVE_RATIO_GROUPING_SEGMENT");
    }
    let segment_ids: Vec<Uuid> = r
        .segment_ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| v.take(wire::uuid(&format!("segment_ids[{i}]"), id)))
        .collect();
    let (start, end, group_by) = v.finish_with((start, end, group_by))?;
    let mut segment_ids = segment_ids;
    segment_ids.sort();
    segment_ids.dedup();
    Ok(RatioQuery { start, end, group_by, segment_ids })
}

fn ratio_group(key: String, c: TouchCounts) -> pb::ProactiveRatioGroup {
    pb::ProactiveRatioGroup {
        key,
        vendor_touches: i64::try_from(c.vendor).unwrap_or(i64::MAX),
        customer_touches: i64::try_from(c.customer).unwrap_or(i64::MAX),
        ratio: c.ratio(),
    }
}

pub(crate) fn ratio_reply(r: RatioReport) -> pb::ProactiveRatioReport {
    pb::ProactiveRatioReport {
        groups: r.groups.into_iter().map(|(k, c)| ratio_group(k, c)).collect(),
        total: Some(ratio_group(String::new(), r.total)),
    }
}

/// A GetEmailResponseRate request: the window ends now unless given, and
/// starts 90 days before its end unless given.
pub(crate) fn email_window(r: pb::GetEmailResponseRateRequest) -> Result<EmailWindow> {
    let mut v = Violations::new();
    let account_id = v.take(wire::uuid("account_id", &r.account_id));
    let end = match &r.end_time {
        Some(t) => v.take(wire::time("end_time", t)),
        None => Some(wire::now()),
    };
    let start = match (&r.start_time, end) {
        (Some(t), _) => v.take(wire::time("start_time", t)),
        // Checked, although every end the API takes has 90 days before it
        // in chrono's range: no date arithmetic on caller data without it.
        (None, Some(end)) => {
            let start = end.checked_sub_signed(DEFAULT_EMAIL_WINDOW);
            if start.is_none() {
                v.add("end_time", format!("{end} has no 90 days before it; send start_time"));
            }
            start
        }
        (None, None) => None,
    };
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.add("end_time", format!("{e} must be after start_time {s}"));
    }
    let (account_id, start, end) = v.finish_with((account_id, start, end))?;
    Ok(EmailWindow { account_id, start, end })
}

pub(crate) fn email_reply(s: EmailStats) -> pb::EmailResponseRate {
    pb::EmailResponseRate {
        emails_sent: i64::try_from(s.sent).unwrap_or(i64::MAX),
        emails_replied: i64::try_from(s.replied).unwrap_or(i64::MAX),
        response_rate: s.response_rate(),
    }
}
