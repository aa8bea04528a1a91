//! Outreach on the wire: the send_outreach action's parse, webhook
//! endpoints (URLs through the SSRF guard) and deliveries; the
//! OutreachService. Endpoints need admin; redelivering needs csm or admin;
//! reading needs any role.

use banso_kit::{
    Result, Violations,
    auth::Access,
    etag, field_paths, fieldmask,
    paging::{self, Paged, QueryKey},
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::playbooks as pb;
use pbjson_types::Empty;
use tonic::Request;
use uuid::Uuid;

use crate::{
    app::{App, CreateEndpoint, UpdateEndpoint},
    domain::{
        outreach::{self as rules, DeliveryStatus, ROLES, UrlPolicy},
        playbook::SendOutreach,
        template,
    },
    outreach::OutreachSettings,
    store::outreach::{Attempt, Delivery, DeliveryFilter, Endpoint},
};

/// The send_outreach action of a playbook, or its violations.
pub(crate) fn send_outreach(v: &mut Violations, f: &str, o: &pb::SendOutreachAction) -> Option<SendOutreach> {
    let endpoint_id = v.take(wire::uuid(&format!("{f}.endpoint_id"), &o.endpoint_id));
    let subject_field = format!("{f}.subject_template");
    wire::required_text(v, &subject_field, &o.subject_template, 200);
    if let Err(e) = template::check(&o.subject_template) {
        v.add(&subject_field, e);
    }
    let body_field = format!("{f}.body_template");
    wire::multiline_text(v, &body_field, &o.body_template, 20_000);
    if let Err(e) = template::check(&o.body_template) {
        v.add(&body_field, e);
    }
    if o.contact_roles.len() > ROLES.len() {
        v.add(format!("{f}.contact_roles"), format!("at most {} roles, got {}", ROLES.len(), o.contact_roles.len()));
    }
    let mut roles = Vec::new();
    for (i, r) in o.contact_roles.iter().enumerate() {
        if !ROLES.contains(&r.as_str()) {
            v.add(
                format!("{f}.contact_roles[{i}]"),
                format!("{} is not a contact role; use one of {}", banso_kit::shown(r), ROLES.join(", ")),
            );
        } else if !roles.contains(r) {
            roles.push(r.clone());
        }
    }
    Some(SendOutreach {
        endpoint_id: endpoint_id?,
        subject: o.subject_template.clone(),
        body: o.body_template.clone(),
        contact_roles: roles,
    })
}

field_paths! {
    /// What UpdateWebhookEndpoint may change.
    pub(crate) enum EndpointField {
        DisplayName = "display_name",
        Url = "url",
        Enabled = "enabled",
    }
}

fn url(v: &mut Violations, field: &str, raw: &str, policy: UrlPolicy) -> String {
    match rules::check_url(raw, policy) {
        Ok(u) => u.to_string(),
        Err(e) => {
            v.add(field, e);
            String::new()
        }
    }
}

fn endpoint_proto(e: &Endpoint, with_secret: bool) -> pb::WebhookEndpoint {
    let now = wire::now();
    pb::WebhookEndpoint {
        id: e.id.to_string(),
        display_name: e.display_name.clone(),
        url: e.url.clone(),
        enabled: e.enabled,
        signing_secret: if with_secret { e.secret.clone() } else { String::new() },
        previous_secret_expire_time: e.previous_secret_until.filter(|t| *t > now).map(wire::timestamp),
        create_time: Some(wire::timestamp(e.create_time)),
        update_time: Some(wire::timestamp(e.update_time)),
        etag: etag::of(e.version),
    }
}

fn status_proto(s: DeliveryStatus) -> pb::DeliveryStatus {
    match s {
        DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
        DeliveryStatus::Succeeded => pb::DeliveryStatus::Succeeded,
        DeliveryStatus::Dead => pb::DeliveryStatus::Dead,
        DeliveryStatus::Skipped => pb::DeliveryStatus::Skipped,
    }
}

fn delivery_proto(d: &Delivery, attempts: &[Attempt]) -> pb::Delivery {
    let opt = |x: Option<Uuid>| x.map(|x| x.to_string()).unwrap_or_default();
    pb::Delivery {
        id: d.id.to_string(),
        endpoint_id: d.endpoint_id.to_string(),
        account_id: d.account_id.to_string(),
        contact_id: opt(d.contact_id),
        playbook_id: opt(d.playbook_id),
        firing_id: opt(d.firing_id),
        trigger_kind: d.trigger_kind.clone(),
        trigger_event_id: d.trigger_event_id.clone(),
        subject: d.subject.clone(),
        body: d.body.clone(),
        status: status_proto(d.status) as i32,
        attempt_count: d.attempts,
        next_attempt_time: d.next_attempt_time.filter(|_| d.status == DeliveryStatus::Pending).map(wire::timestamp),
        last_error: d.last_error.clone(),
        sent_time: d.sent_time.map(wire::timestamp),
        create_time: Some(wire::timestamp(d.create_time)),
        update_time: Some(wire::timestamp(d.update_time)),
        attempts: attempts
            .iter()
            .map(|a| pb::DeliveryAttempt {
                number: a.number,
                series: a.series,
                attempt_time: Some(wire::timestamp(a.attempt_time)),
                duration: Some(pbjson_types::Duration {
                    seconds: a.duration_micros / 1_000_000,
                    nanos: ((a.duration_micros % 1_000_000) * 1000) as i32,
                }),
                http_status: a.http_status,
                error: a.error.clone(),
            })
            .collect(),
    }
}

pub struct OutreachApi {
    app: App,
    kit: Kit,
    settings: OutreachSettings,
}

impl OutreachApi {
    pub(crate) fn new(app: App, kit: Kit, settings: OutreachSettings) -> Self {
        OutreachApi { app, kit, settings }
    }
}

fn id_and_etag(id: &str, tag: &str) -> Result<(Uuid, Option<i64>)> {
    let mut v = Violations::new();
    let id = v.take(wire::uuid("id", id));
    let tag = v.take(etag::parse("etag", tag));
    v.finish_with((id, tag))
}

#[tonic::async_trait]
impl pb::outreach_service_server::OutreachService for OutreachApi {
    async fn create_webhook_endpoint(
        &self,
        req: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Rpc<pb::WebhookEndpoint> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            let e = wire::required(&mut v, "endpoint", r.endpoint.as_ref());
            let cmd = e.map(|e| {
                wire::required_text(&mut v, "endpoint.display_name", &e.display_name, 200);
                CreateEndpoint {
                    request_id: request_id.clone(),
                    display_name: e.display_name.trim().to_string(),
                    url: url(&mut v, "endpoint.url", &e.url, self.settings.policy),
                    enabled: e.enabled,
                }
            });
            let cmd = v.finish_with(cmd)?;
            Ok(endpoint_proto(&self.app.create_endpoint(&caller, cmd).await?, true))
        })
        .await
    }

    async fn get_webhook_endpoint(&self, req: Request<pb::GetWebhookEndpointRequest>) -> Rpc<pb::WebhookEndpoint> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(endpoint_proto(&self.app.get_endpoint(&caller, id).await?, false))
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        req: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Rpc<pb::ListWebhookEndpointsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let limit = paging::page_size(r.page_size)?;
            let key = QueryKey::new("ListWebhookEndpoints", &caller.tenant_id);
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_endpoints(&caller, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |e| e.id)?;
            Ok(pb::ListWebhookEndpointsResponse {
                endpoints: rows.iter().map(|e| endpoint_proto(e, false)).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn update_webhook_endpoint(
        &self,
        req: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Rpc<pb::WebhookEndpoint> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let mask = v.take(fieldmask::parse::<EndpointField>("update_mask", r.update_mask.as_ref()));
            let e = wire::required(&mut v, "endpoint", r.endpoint.as_ref());
            let mut cmd = UpdateEndpoint::default();
            if let Some(e) = e {
                cmd.id = v.take(wire::uuid("endpoint.id", &e.id)).unwrap_or_default();
                cmd.etag = v.take(etag::parse("endpoint.etag", &e.etag)).flatten();
                for f in mask.as_deref().unwrap_or_default() {
                    match f {
                        EndpointField::DisplayName => {
                            wire::required_text(&mut v, "endpoint.display_name", &e.display_name, 200);
                            cmd.display_name = Some(e.display_name.trim().to_string());
                        }
                        EndpointField::Url => {
                            cmd.url = Some(url(&mut v, "endpoint.url", &e.url, self.settings.policy));
                        }
                        EndpointField::Enabled => cmd.enabled = Some(e.enabled),
                    }
                }
            }
            v.finish()?;
            Ok(endpoint_proto(&self.app.update_endpoint(&caller, cmd).await?, false))
        })
        .await
    }

    async fn delete_webhook_endpoint(&self, req: Request<pb::DeleteWebhookEndpointRequest>) -> Rpc<Empty> {
        handle(req, Access::Admin, async |caller, r| {
            let (id, etag) = id_and_etag(&r.id, &r.etag)?;
            self.app.delete_endpoint(&caller, id, etag).await?;
            Ok(Empty {})
        })
        .await
    }

    async fn rotate_webhook_secret(&self, req: Request<pb::RotateWebhookSecretRequest>) -> Rpc<pb::WebhookEndpoint> {
        handle(req, Access::Admin, async |caller, r| {
            let (id, etag) = id_and_etag(&r.id, &r.etag)?;
            Ok(endpoint_proto(&self.app.rotate_secret(&caller, id, etag).await?, true))
        })
        .await
    }

    async fn list_deliveries(&self, req: Request<pb::ListDeliveriesRequest>) -> Rpc<pb::ListDeliveriesResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let limit = v.take(paging::page_size(r.page_size));
            let endpoint_id = v.take(wire::optional_uuid("endpoint_id", &r.endpoint_id)).flatten();
            let account_id = v.take(wire::optional_uuid("account_id", &r.account_id)).flatten();
            let status = match pb::DeliveryStatus::try_from(r.status) {
                Ok(pb::DeliveryStatus::Unspecified) => None,
                Ok(pb::DeliveryStatus::Pending) => Some(DeliveryStatus::Pending),
                Ok(pb::DeliveryStatus::Succeeded) => Some(DeliveryStatus::Succeeded),
                Ok(pb::DeliveryStatus::Dead) => Some(DeliveryStatus::Dead),
                Ok(pb::DeliveryStatus::Skipped) => Some(DeliveryStatus::Skipped),
                Err(_) => {
                    v.add("status", format!("{} is not a delivery status", r.status));
                    None
                }
            };
            let limit = v.finish_with(limit)?;
            let filter = DeliveryFilter { endpoint_id, account_id, status };
            let key = QueryKey::new("ListDeliveries", &caller.tenant_id)
                .part(format!("{endpoint_id:?}/{account_id:?}/{}", status.map(|s| s.as_str()).unwrap_or_default()));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_deliveries(&caller, &filter, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |d| d.id)?;
            Ok(pb::ListDeliveriesResponse {
                deliveries: rows.iter().map(|d| delivery_proto(d, &[])).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_delivery(&self, req: Request<pb::GetDeliveryRequest>) -> Rpc<pb::Delivery> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            let (d, attempts) = self.app.get_delivery(&caller, id).await?;
            Ok(delivery_proto(&d, &attempts))
        })
        .await
    }

    async fn redeliver_delivery(&self, req: Request<pb::RedeliverDeliveryRequest>) -> Rpc<pb::Delivery> {
        handle(req, Access::Write, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            let (d, attempts) = self.app.redeliver(&caller, id).await?;
            Ok(delivery_proto(&d, &attempts))
        })
        .await
    }
}
