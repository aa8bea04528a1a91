//! The gRPC face of the Accounts service. Each RPC is one
//! [`handle`]: its access rule, its parse (`api/<resource>.rs`: valid
//! domain values or INVALID_ARGUMENT with every bad field), its use case
//! (`app/`), its reply (domain → proto). Nothing else happens here.

pub(crate) mod accounts;
pub(crate) mod activities;
pub(crate) mod contacts;
pub(crate) mod contracts;
mod convert;
mod import;
mod retention;
pub(crate) mod segments;
pub(crate) mod settings;
mod touch_rules;
mod write_keys;

use banso_kit::{
    auth::Access,
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::accounts as pb;
use pbjson_types::Empty;
use tonic::{Request, Streaming};

use crate::app::App;

pub struct AccountsApi {
    app: App,
    kit: Kit,
}

impl AccountsApi {
    pub(crate) fn new(app: App, kit: Kit) -> Self {
        AccountsApi { app, kit }
    }
}

#[tonic::async_trait]
impl pb::accounts_service_server::AccountsService for AccountsApi {
    async fn get_account(&self, req: Request<pb::GetAccountRequest>) -> Rpc<pb::Account> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(accounts::to_proto(&self.app.get_account(&caller, id).await?))
        })
        .await
    }

    async fn list_accounts(&self, req: Request<pb::ListAccountsRequest>) -> Rpc<pb::ListAccountsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let q = accounts::list(&self.kit, &caller, r)?;
            let after = q.page.after.as_ref();
            let rows = self.app.list_accounts(&caller, &q.filter, q.order, after, q.page.fetch()).await?;
            accounts::list_reply(&self.kit, &q, rows)
        })
        .await
    }

    async fn create_account(&self, req: Request<pb::CreateAccountRequest>) -> Rpc<pb::Account> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = accounts::create(r)?;
            Ok(accounts::to_proto(&self.app.create_account(&caller, cmd).await?))
        })
        .await
    }

    async fn update_account(&self, req: Request<pb::UpdateAccountRequest>) -> Rpc<pb::Account> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = accounts::update(r)?;
            Ok(accounts::to_proto(&self.app.update_account(&caller, cmd).await?))
        })
        .await
    }

    async fn delete_account(&self, req: Request<pb::DeleteAccountRequest>) -> Rpc<Empty> {
        handle(req, Access::Write, async |caller, r| {
            let (id, etag) = convert::id_and_etag(&r.id, &r.etag)?;
            self.app.delete_account(&caller, id, etag).await?;
            Ok(Empty {})
        })
        .await
    }

    async fn batch_get_accounts(&self, req: Request<pb::BatchGetAccountsRequest>) -> Rpc<pb::BatchGetAccountsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let ids = accounts::batch_ids(&r)?;
            let found = self.app.batch_get_accounts(&caller, &ids).await?;
            Ok(pb::BatchGetAccountsResponse { accounts: found.iter().map(accounts::to_proto).collect() })
        })
        .await
    }

    async fn upsert_account(&self, req: Request<pb::UpsertAccountRequest>) -> Rpc<pb::UpsertAccountResponse> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = accounts::upsert(r)?;
            let (account, created) = self.app.upsert_account(&caller, cmd).await?;
            Ok(pb::UpsertAccountResponse { account: Some(accounts::to_proto(&account)), created })
        })
        .await
    }

    async fn get_contact(&self, req: Request<pb::GetContactRequest>) -> Rpc<pb::Contact> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(contacts::to_proto(&self.app.get_contact(&caller, id).await?))
        })
        .await
    }

    async fn list_contacts(&self, req: Request<pb::ListContactsRequest>) -> Rpc<pb::ListContactsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let q = contacts::list(&self.kit, &caller, r)?;
            let rows = self.app.list_contacts(&caller, &q.filter, q.page.after, q.page.fetch()).await?;
            contacts::list_reply(&self.kit, &q, rows)
        })
        .await
    }

    async fn create_contact(&self, req: Request<pb::CreateContactRequest>) -> Rpc<pb::Contact> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = contacts::create(r)?;
            Ok(contacts::to_proto(&self.app.create_contact(&caller, cmd).await?))
        })
        .await
    }

    async fn update_contact(&self, req: Request<pb::UpdateContactRequest>) -> Rpc<pb::Contact> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = contacts::update(r)?;
            Ok(contacts::to_proto(&self.app.update_contact(&caller, cmd).await?))
        })
        .await
    }

    async fn delete_contact(&self, req: Request<pb::DeleteContactRequest>) -> Rpc<Empty> {
        handle(req, Access::Write, async |caller, r| {
            let (id, etag) = convert::id_and_etag(&r.id, &r.etag)?;
            self.app.delete_contact(&caller, id, etag).await?;
            Ok(Empty {})
        })
        .await
    }

    async fn get_tenant_settings(&self, req: Request<pb::GetTenantSettingsRequest>) -> Rpc<pb::TenantSettings> {
        handle(req, Access::Read, async |caller, _| Ok(settings::to_proto(&self.app.get_settings(&caller).await?)))
            .await
    }

    async fn update_tenant_settings(&self, req: Request<pb::UpdateTenantSettingsRequest>) -> Rpc<pb::TenantSettings> {
        handle(req, Access::Admin, async |caller, r| {
            let cmd = settings::update(r)?;
            Ok(settings::to_proto(&self.app.update_settings(&caller, cmd).await?))
        })
        .await
    }

    async fn get_touch_mix_rules(&self, req: Request<pb::GetTouchMixRulesRequest>) -> Rpc<pb::TouchMixRules> {
        handle(req, Access::Read, async |caller, _| {
            Ok(touch_rules::to_proto(&self.app.get_touch_mix_rules(&caller).await?))
        })
        .await
    }

    async fn update_touch_mix_rules(
        &self,
        req: Request<pb::UpdateTouchMixRulesRequest>,
    ) -> Rpc<pb::UpdateTouchMixRulesResponse> {
        handle(req, Access::Admin, async |caller, r| {
            let cmd = touch_rules::update(r)?;
            let (rules, changed) = self.app.update_touch_mix_rules(&caller, cmd).await?;
            Ok(pb::UpdateTouchMixRulesResponse {
                touch_mix_rules: Some(touch_rules::to_proto(&rules)),
                accounts_changed: i64::try_from(changed).unwrap_or(i64::MAX),
            })
        })
        .await
    }

    async fn preview_touch_mix_rules(
        &self,
        req: Request<pb::PreviewTouchMixRulesRequest>,
    ) -> Rpc<pb::PreviewTouchMixRulesResponse> {
        handle(req, Access::Read, async |caller, r| {
            let rules = touch_rules::preview(r)?;
            Ok(touch_rules::preview_reply(self.app.preview_touch_mix_rules(&caller, rules).await?))
        })
        .await
    }

    async fn import_accounts(
        &self,
        req: Request<Streaming<pb::ImportAccountsRequest>>,
    ) -> Rpc<pb::ImportAccountsResponse> {
        handle(req, Access::Write, async |caller, stream| {
            let chunks = import::account_chunks(stream);
            Ok(import::accounts_reply(self.app.import_accounts(&caller, chunks).await?))
        })
        .await
    }

    async fn import_contacts(
        &self,
        req: Request<Streaming<pb::ImportContactsRequest>>,
    ) -> Rpc<pb::ImportContactsResponse> {
        handle(req, Access::Write, async |caller, stream| {
            let chunks = import::contact_chunks(stream);
            Ok(import::contacts_reply(self.app.import_contacts(&caller, chunks).await?))
        })
        .await
    }

    async fn record_contract_event(
        &self,
        req: Request<pb::RecordContractEventRequest>,
    ) -> Rpc<pb::RecordContractEventResponse> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = contracts::record(r)?;
            Ok(contracts::record_reply(&self.app.record_contract_event(&caller, cmd).await?))
        })
        .await
    }

    async fn list_contract_events(
        &self,
        req: Request<pb::ListContractEventsRequest>,
    ) -> Rpc<pb::ListContractEventsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let q = contracts::list(&self.kit, &caller, r)?;
            let rows = self.app.list_contract_events(&caller, q.account_id, q.page.after, q.page.fetch()).await?;
            contracts::list_reply(&self.kit, &q, rows)
        })
        .await
    }

    async fn log_activity(&self, req: Request<pb::LogActivityRequest>) -> Rpc<pb::Activity> {
        handle(req, Access::Write, async |caller, r| {
            let (request_id, activity) = activities::log(r)?;
            Ok(activities::to_proto(&self.app.log_activity(&caller, request_id.as_deref(), activity).await?))
        })
        .await
    }

    async fn list_activities(&self, req: Request<pb::ListActivitiesRequest>) -> Rpc<pb::ListActivitiesResponse> {
        handle(req, Access::Read, async |caller, r| {
            let q = activities::list(&self.kit, &caller, r)?;
            let rows = self.app.list_activities(&caller, &q.filter, q.page.after, q.page.fetch()).await?;
            activities::list_reply(&self.kit, &q, rows)
        })
        .await
    }

    async fn list_touch_mix_history(
        &self,
        req: Request<pb::ListTouchMixHistoryRequest>,
    ) -> Rpc<pb::ListTouchMixHistoryResponse> {
        handle(req, Access::Read, async |caller, r| {
            let q = accounts::mix_history(&self.kit, &caller, r)?;
            let rows = self.app.list_touch_mix_history(&caller, q.account_id, q.page.after, q.page.fetch()).await?;
            accounts::mix_history_reply(&self.kit, &q, rows)
        })
        .await
    }

    async fn get_proactive_ratio(&self, req: Request<pb::GetProactiveRatioRequest>) -> Rpc<pb::ProactiveRatioReport> {
        handle(req, Access::Read, async |caller, r| {
            let q = activities::ratio_query(r)?;
            Ok(activities::ratio_reply(self.app.proactive_ratio(&caller, q).await?))
        })
        .await
    }

    async fn get_email_response_rate(
        &self,
        req: Request<pb::GetEmailResponseRateRequest>,
    ) -> Rpc<pb::EmailResponseRate> {
        handle(req, Access::Read, async |caller, r| {
            let window = activities::email_window(r)?;
            Ok(activities::email_reply(self.app.email_stats(&caller, window).await?))
        })
        .await
    }

    async fn create_segment(&self, req: Request<pb::CreateSegmentRequest>) -> Rpc<pb::Segment> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = segments::create(r)?;
            Ok(segments::to_proto(&self.app.create_segment(&caller, cmd).await?))
        })
        .await
    }

    async fn get_segment(&self, req: Request<pb::GetSegmentRequest>) -> Rpc<pb::Segment> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(segments::to_proto(&self.app.get_segment(&caller, id).await?))
        })
        .await
    }

    async fn list_segments(&self, req: Request<pb::ListSegmentsRequest>) -> Rpc<pb::ListSegmentsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let page = segments::list_page(&self.kit, &caller, &r)?;
            let rows = self.app.list_segments(&caller, page.after, page.fetch()).await?;
            segments::list_reply(&self.kit, &page, rows)
        })
        .await
    }

    async fn update_segment(&self, req: Request<pb::UpdateSegmentRequest>) -> Rpc<pb::Segment> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = segments::update(r)?;
            Ok(segments::to_proto(&self.app.update_segment(&caller, cmd).await?))
        })
        .await
    }

    async fn delete_segment(&self, req: Request<pb::DeleteSegmentRequest>) -> Rpc<Empty> {
        handle(req, Access::Write, async |caller, r| {
            let (id, etag) = convert::id_and_etag(&r.id, &r.etag)?;
            self.app.delete_segment(&caller, id, etag).await?;
            Ok(Empty {})
        })
        .await
    }

    async fn evaluate_segment(&self, req: Request<pb::EvaluateSegmentRequest>) -> Rpc<pb::EvaluateSegmentResponse> {
        handle(req, Access::Read, async |caller, r| {
            let q = segments::evaluate(&self.kit, &caller, r)?;
            let page = self.app.evaluate_segment(&caller, q.segment_id, q.page.after, q.page.limit).await?;
            segments::evaluate_reply(&self.kit, &q, page)
        })
        .await
    }

    async fn count_segment_members(
        &self,
        req: Request<pb::CountSegmentMembersRequest>,
    ) -> Rpc<pb::CountSegmentMembersResponse> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("segment_id", &r.segment_id)?;
            Ok(segments::count_reply(self.app.count_segment_members(&caller, id).await?))
        })
        .await
    }

    async fn check_segment_membership(
        &self,
        req: Request<pb::CheckSegmentMembershipRequest>,
    ) -> Rpc<pb::CheckSegmentMembershipResponse> {
        handle(req, Access::Read, async |caller, r| {
            let (segment_id, account_id) = segments::membership(&r)?;
            Ok(segments::membership_reply(self.app.check_segment_membership(&caller, segment_id, account_id).await?))
        })
        .await
    }

    async fn create_write_key(&self, req: Request<pb::CreateWriteKeyRequest>) -> Rpc<pb::CreateWriteKeyResponse> {
        handle(req, Access::Admin, async |caller, r| {
            let display_name = write_keys::create(&r)?;
            let (k, key) = self.app.create_write_key(&caller, display_name).await?;
            Ok(pb::CreateWriteKeyResponse { write_key: Some(write_keys::to_proto(&k)), key })
        })
        .await
    }

    async fn list_write_keys(&self, req: Request<pb::ListWriteKeysRequest>) -> Rpc<pb::ListWriteKeysResponse> {
        handle(req, Access::Admin, async |caller, r| {
            let page = write_keys::list_page(&self.kit, &caller, &r)?;
            let rows = self.app.list_write_keys(&caller, page.after, page.fetch()).await?;
            write_keys::list_reply(&self.kit, &page, rows)
        })
        .await
    }

    async fn revoke_write_key(&self, req: Request<pb::RevokeWriteKeyRequest>) -> Rpc<pb::WriteKey> {
        handle(req, Access::Admin, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(write_keys::to_proto(&self.app.revoke_write_key(&caller, id).await?))
        })
        .await
    }

    async fn verify_write_key(&self, req: Request<pb::VerifyWriteKeyRequest>) -> Rpc<pb::VerifyWriteKeyResponse> {
        handle(req, Access::Read, async |caller, r| {
            write_keys::require_service(&caller)?;
            let key = write_keys::verify(&r)?;
            let id = self.app.verify_write_key(&caller, key).await?;
            Ok(pb::VerifyWriteKeyResponse { write_key_id: id.to_string() })
        })
        .await
    }

    async fn get_retention_metrics(&self, req: Request<pb::GetRetentionMetricsRequest>) -> Rpc<pb::RetentionMetrics> {
        handle(req, Access::Read, async |caller, r| {
            let q = retention::query(r)?;
            Ok(retention::to_proto(self.app.retention_metrics(&caller, q).await?))
        })
        .await
    }
}
