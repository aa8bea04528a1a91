//! Routing to departments on the wire: subscriptions and their notices.

use banso_kit::{
    Violations,
    auth::Access,
    paging::{self, Paged, QueryKey},
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::feedback as pb;
use tonic::Request;
use uuid::Uuid;

use crate::{
    app::{App, voice::routing::NewSubscription},
    domain::{
        routing::{MAX_CATEGORY, MAX_MIN_SEVERITY, Notice, NoticeKind, Subscription},
        voice::Department,
    },
    events::{department_to_proto, notice_kind_to_proto},
};

use super::items::{department_filter, department_from};

pub(super) async fn create_subscription(
    app: &App,
    _kit: &Kit,
    req: Request<pb::CreateSubscriptionRequest>,
) -> Rpc<pb::Subscription> {
    handle(req, Access::Admin, async |caller, r| {
        let mut v = Violations::new();
        let cmd = wire::required(&mut v, "subscription", r.subscription.as_ref()).map(|s| new_subscription(&mut v, s));
        let cmd = v.finish_with(cmd)?;
        Ok(subscription_to_proto(&app.create_subscription(&caller, cmd).await?))
    })
    .await
}

pub(super) async fn list_subscriptions(
    app: &App,
    _kit: &Kit,
    req: Request<pb::ListSubscriptionsRequest>,
) -> Rpc<pb::ListSubscriptionsResponse> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let department = department_filter(&mut v, "department", r.department);
        v.finish()?;
        let rows = app.list_subscriptions(&caller, department).await?;
        Ok(pb::ListSubscriptionsResponse { subscriptions: rows.iter().map(subscription_to_proto).collect() })
    })
    .await
}

pub(super) async fn delete_subscription(
    app: &App,
    _kit: &Kit,
    req: Request<pb::DeleteSubscriptionRequest>,
) -> Rpc<pb::DeleteSubscriptionResponse> {
    handle(req, Access::Admin, async |caller, r| {
        let id = wire::uuid("id", &r.id)?;
        app.delete_subscription(&caller, id).await?;
        Ok(pb::DeleteSubscriptionResponse {})
    })
    .await
}

pub(super) async fn list_notices(
    app: &App,
    kit: &Kit,
    req: Request<pb::ListNoticesRequest>,
) -> Rpc<pb::ListNoticesResponse> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let limit = v.take(paging::page_size(r.page_size));
        let department = department_filter(&mut v, "department", r.department);
        let kind = kind_filter(&mut v, "kind", r.kind);
        let limit = v.finish_with(limit)?;
        let filter = format!("{}/{}", department.map_or("", |d| d.as_str()), kind.map_or("", |k| k.as_str()));
        let key = QueryKey::new("ListNotices", &caller.tenant_id).part(filter);
        let page: Paged<Uuid> = Paged::new(&kit.page_tokens, key, &r.page_token, limit)?;
        let rows = app.list_notices(&caller, department, kind, page.after, page.fetch()).await?;
        let (rows, next_page_token) = page.page(&kit.page_tokens, rows, |n| n.id)?;
        Ok(pb::ListNoticesResponse { notices: rows.iter().map(notice_to_proto).collect(), next_page_token })
    })
    .await
}

fn new_subscription(v: &mut Violations, s: &pb::Subscription) -> NewSubscription {
    let department = department_from(v, "subscription.department", s.department);
    wire::text(v, "subscription.category", &s.category, MAX_CATEGORY);
    let theme_id = v.take(wire::optional_uuid("subscription.theme_id", &s.theme_id)).flatten();
    if !(0..=MAX_MIN_SEVERITY).contains(&s.min_severity) {
        v.add(
            "subscription.min_severity",
            format!("must be 1 to {MAX_MIN_SEVERITY} (0: any severity), got {}", s.min_severity),
        );
    }
    let endpoint_id = v.take(wire::optional_uuid("subscription.endpoint_id", &s.endpoint_id)).flatten();
    NewSubscription {
        department: department.unwrap_or(Department::Cs),
        category: s.category.trim().to_string(),
        theme_id,
        min_severity: s.min_severity,
        endpoint_id,
    }
}

/// A notice kind to filter by (UNSPECIFIED: any).
fn kind_filter(v: &mut Violations, field: &str, raw: i32) -> Option<NoticeKind> {
    match pb::NoticeKind::try_from(raw) {
        Ok(pb::NoticeKind::Unspecified) => None,
        Ok(pb::NoticeKind::Alert) => Some(NoticeKind::Alert),
        Ok(pb::NoticeKind::Digest) => Some(NoticeKind::Digest),
        Err(_) => {
            v.add(field, format!("{raw} is not a notice kind: use NOTICE_KIND_ALERT or NOTICE_KIND_DIGEST"));
            None
        }
    }
}

fn subscription_to_proto(s: &Subscription) -> pb::Subscription {
    pb::Subscription {
        id: s.id.to_string(),
        department: department_to_proto(s.department),
        category: s.category.clone(),
        theme_id: s.theme_id.map(|t| t.to_string()).unwrap_or_default(),
        min_severity: s.min_severity,
        endpoint_id: s.endpoint_id.map(|e| e.to_string()).unwrap_or_default(),
        create_time: Some(wire::timestamp(s.create_time)),
    }
}

fn notice_to_proto(n: &Notice) -> pb::Notice {
    pb::Notice {
        id: n.id.to_string(),
        subscription_id: n.subscription_id.to_string(),
        department: department_to_proto(n.department),
        kind: notice_kind_to_proto(n.kind),
        item_ids: n.item_ids.iter().map(|i| i.to_string()).collect(),
        day: n.day.map(wire::date_to_proto),
        create_time: Some(wire::timestamp(n.create_time)),
    }
}
