//! The gRPC face of the Playbooks service. Each RPC is one [`handle`]: its
//! access rule, its parse (`api/<resource>.rs`: valid domain values or
//! INVALID_ARGUMENT with every bad field), its use case (`app/`), its reply.
//! Playbooks and settings need admin; CTAs need csm (or admin, or a
//! service); reading needs any role.

pub(crate) mod ctas;
pub(crate) mod outreach;
pub(crate) mod plans;
pub(crate) mod playbooks;
pub(crate) mod programmes;

use banso_kit::{
    Result, Violations,
    auth::{Access, Caller},
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
    app::{App, CreatePlaybook, CtaQuery, UpdatePlaybook, UpdateSettings},
    store::{self, firings::Firing},
};

pub struct PlaybooksApi {
    app: App,
    kit: Kit,
}

impl PlaybooksApi {
    pub(crate) fn new(app: App, kit: Kit) -> Self {
        PlaybooksApi { app, kit }
    }
}

field_paths! {
    /// What UpdatePlaybookSettings may change.
    pub(crate) enum SettingsField {
        ScheduleTime = "schedule_time",
        FatigueMaxMessages = "fatigue_max_messages",
        FatigueWindowDays = "fatigue_window_days",
        ReviewExecutionThresholdPercent = "review_execution_threshold_percent",
    }
}

fn id_and_etag(id: &str, tag: &str) -> Result<(Uuid, Option<i64>)> {
    let mut v = Violations::new();
    let id = v.take(wire::uuid("id", id));
    let tag = v.take(etag::parse("etag", tag));
    v.finish_with((id, tag))
}

fn version(v: &mut Violations, raw: i64) -> i64 {
    if raw < 0 {
        v.add("version", format!("must not be negative, got {raw}"));
    }
    raw.max(0)
}

fn page(v: &mut Violations, requested: i32) -> Option<u64> {
    v.take(paging::page_size(requested))
}

fn firing_proto(f: &Firing) -> pb::Firing {
    pb::Firing {
        id: if f.id.is_nil() { String::new() } else { f.id.to_string() },
        playbook_id: f.playbook_id.to_string(),
        playbook_version: f.playbook_version,
        account_id: f.account_id.to_string(),
        trigger_kind: f.trigger_kind.clone(),
        trigger_key: f.trigger_key.clone(),
        fire_time: Some(wire::timestamp(f.fire_time)),
        status: (match f.verdict {
            crate::domain::engine::Verdict::Fire => pb::FiringStatus::Fired,
            crate::domain::engine::Verdict::Cooldown => pb::FiringStatus::Cooldown,
            crate::domain::engine::Verdict::EnrolmentLimit => pb::FiringStatus::EnrolmentLimit,
        }) as i32,
        actions: f
            .actions
            .iter()
            .map(|a| pb::ActionOutcome {
                index: a.index as i32,
                kind: a.kind.clone(),
                status: (match a.status.as_str() {
                    "done" => pb::ActionStatus::Done,
                    "skipped" => pb::ActionStatus::Skipped,
                    _ => pb::ActionStatus::Failed,
                }) as i32,
                detail: a.detail.clone(),
                resource_id: a.resource_id.clone().unwrap_or_default(),
            })
            .collect(),
    }
}

fn settings_proto(s: &store::tenants::Settings) -> pb::PlaybookSettings {
    use banso_events::db::Versioned as _;
    pb::PlaybookSettings {
        schedule_time: s.schedule_time.clone(),
        fatigue_max_messages: s.fatigue_max_messages,
        fatigue_window_days: s.fatigue_window_days,
        last_schedule_day: s.last_schedule_day.map(wire::date_to_proto),
        review_execution_threshold_percent: s.review_execution_threshold_percent,
        etag: etag::of(s.version()),
    }
}

impl PlaybooksApi {
    fn list_ctas_reply(
        &self,
        page: &Paged<store::ctas::Cursor>,
        order: store::ctas::CtaOrder,
        rows: Vec<crate::domain::cta::Cta>,
    ) -> Result<pb::ListCallsToActionResponse> {
        let (rows, next_page_token) =
            page.page(&self.kit.page_tokens, rows, |last| store::ctas::Cursor::of(order, last))?;
        let now = wire::now();
        Ok(pb::ListCallsToActionResponse {
            ctas: rows.iter().map(|c| ctas::to_proto(c, now)).collect(),
            next_page_token,
        })
    }

    /// ListCallsToAction, or the caller's queue (`mine`).
    async fn list_ctas_of(
        &self,
        caller: &Caller,
        r: &pb::ListCallsToActionRequest,
        mine: bool,
    ) -> Result<pb::ListCallsToActionResponse> {
        let limit = paging::page_size(r.page_size)?;
        let method = if mine { "ListMyCallsToAction" } else { "ListCallsToAction" };
        let (mut f, order, key) = ctas::query(caller, method, r.filter.as_ref(), &r.order_by)?;
        if mine {
            f.owner_id = Some(caller.subject.clone());
            f.statuses = vec![crate::domain::cta::Status::Open, crate::domain::cta::Status::InProgress];
        }
        let page = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
        let q = CtaQuery { filter: f, order, after: page.after.clone(), limit: page.fetch() };
        let rows = self.app.list_ctas(caller, &q).await?;
        self.list_ctas_reply(&page, order, rows)
    }
}

#[tonic::async_trait]
impl pb::playbooks_service_server::PlaybooksService for PlaybooksApi {
    async fn create_playbook(&self, req: Request<pb::CreatePlaybookRequest>) -> Rpc<pb::Playbook> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let request_id = wire::request_id(&mut v, &r.request_id);
            v.finish()?;
            let definition = playbooks::definition(r.playbook.as_ref())?;
            Ok(playbooks::to_proto(
                &self.app.create_playbook(&caller, CreatePlaybook { request_id, definition }).await?,
            ))
        })
        .await
    }

    async fn get_playbook(&self, req: Request<pb::GetPlaybookRequest>) -> Rpc<pb::Playbook> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let id = v.take(wire::uuid("id", &r.id));
            let version = version(&mut v, r.version);
            let id = v.finish_with(id)?;
            Ok(playbooks::to_proto(&self.app.get_playbook(&caller, id, version).await?))
        })
        .await
    }

    async fn list_playbooks(&self, req: Request<pb::ListPlaybooksRequest>) -> Rpc<pb::ListPlaybooksResponse> {
        handle(req, Access::Read, async |caller, r| {
            let limit = paging::page_size(r.page_size)?;
            let key = QueryKey::new("ListPlaybooks", &caller.tenant_id).part(format!("{:?}", r.enabled));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_playbooks(&caller, r.enabled, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |p| p.id)?;
            Ok(pb::ListPlaybooksResponse { playbooks: rows.iter().map(playbooks::to_proto).collect(), next_page_token })
        })
        .await
    }

    async fn list_playbook_versions(
        &self,
        req: Request<pb::ListPlaybookVersionsRequest>,
    ) -> Rpc<pb::ListPlaybookVersionsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let id = v.take(wire::uuid("id", &r.id));
            let limit = page(&mut v, r.page_size);
            let (id, limit) = v.finish_with((id, limit))?;
            let key = QueryKey::new("ListPlaybookVersions", &caller.tenant_id).part(id.as_bytes());
            let page: Paged<i64> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_versions(&caller, id, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |p| p.version)?;
            Ok(pb::ListPlaybookVersionsResponse {
                versions: rows.iter().map(playbooks::to_proto).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn update_playbook(&self, req: Request<pb::UpdatePlaybookRequest>) -> Rpc<pb::Playbook> {
        handle(req, Access::Admin, async |caller, r| {
            let (id, etag, fields) = playbooks::update(&r)?;
            let cmd = UpdatePlaybook {
                id,
                etag,
                change: Box::new(move |d| {
                    d.apply(&fields);
                    playbooks::consistent(d)
                }),
            };
            Ok(playbooks::to_proto(&self.app.update_playbook(&caller, cmd).await?))
        })
        .await
    }

    async fn enable_playbook(&self, req: Request<pb::EnablePlaybookRequest>) -> Rpc<pb::Playbook> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let version = version(&mut v, r.version);
            v.finish()?;
            let (id, etag) = id_and_etag(&r.id, &r.etag)?;
            Ok(playbooks::to_proto(&self.app.enable_playbook(&caller, id, version, etag).await?))
        })
        .await
    }

    async fn disable_playbook(&self, req: Request<pb::DisablePlaybookRequest>) -> Rpc<pb::Playbook> {
        handle(req, Access::Admin, async |caller, r| {
            let (id, etag) = id_and_etag(&r.id, &r.etag)?;
            Ok(playbooks::to_proto(&self.app.disable_playbook(&caller, id, etag).await?))
        })
        .await
    }

    async fn delete_playbook(&self, req: Request<pb::DeletePlaybookRequest>) -> Rpc<Empty> {
        handle(req, Access::Admin, async |caller, r| {
            let (id, etag) = id_and_etag(&r.id, &r.etag)?;
            self.app.delete_playbook(&caller, id, etag).await?;
            Ok(Empty {})
        })
        .await
    }

    async fn simulate_playbook(&self, req: Request<pb::SimulatePlaybookRequest>) -> Rpc<pb::SimulatePlaybookResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let id = v.take(wire::uuid("id", &r.id));
            let version = version(&mut v, r.version);
            let days = match r.lookback_days {
                0 => 7,
                d @ 1..=30 => d,
                d => {
                    v.add("lookback_days", format!("must be 1 to 30, got {d}"));
                    7
                }
            };
            let max = match r.max_firings {
                0 => 100,
                n @ 1..=1000 => n,
                n => {
                    v.add("max_firings", format!("must be 1 to 1000, got {n}"));
                    100
                }
            };
            let id = v.finish_with(id)?;
            let s = self.app.simulate(&caller, id, version, days as u32, max as usize).await?;
            Ok(pb::SimulatePlaybookResponse {
                evaluated: s.evaluated,
                matched: s.matched,
                would_fire: s.would_fire,
                suppressed_by_cooldown: s.cooldown,
                suppressed_by_limit: s.limit,
                deduplicated: s.deduplicated,
                condition_errors: s.condition_errors,
                accounts: s.accounts,
                firings: s.firings.iter().map(firing_proto).collect(),
                errors: s.errors,
            })
        })
        .await
    }

    async fn test_condition(&self, req: Request<pb::TestConditionRequest>) -> Rpc<pb::TestConditionResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let expr = match crate::app::engine::compile(&r.condition) {
                Ok(Some(e)) => Some(e),
                Ok(None) => {
                    v.add("condition", "is required");
                    None
                }
                Err(e) => {
                    v.add("condition", e.to_string());
                    None
                }
            };
            let account = v.take(wire::uuid("account_id", &r.account_id));
            let event = v.take(wire::optional_uuid("event_id", &r.event_id));
            let (expr, account, event) = v.finish_with((expr, account, event))?;
            let (result, values) = self.app.test_condition(&caller, expr, account, event).await?;
            Ok(pb::TestConditionResponse {
                result: result.as_ref().copied().unwrap_or(false),
                error: result.err().unwrap_or_default(),
                values: values.into_iter().collect(),
            })
        })
        .await
    }

    async fn run_playbook(&self, req: Request<pb::RunPlaybookRequest>) -> Rpc<pb::RunPlaybookResponse> {
        handle(req, Access::Write, async |caller, r| {
            let mut v = Violations::new();
            let id = v.take(wire::uuid("id", &r.id));
            if r.account_ids.is_empty() || r.account_ids.len() > 1000 {
                v.add("account_ids", format!("must name 1 to 1000 accounts, got {}", r.account_ids.len()));
            }
            let mut accounts: Vec<Uuid> = Vec::new();
            for (i, a) in r.account_ids.iter().enumerate() {
                if let Some(a) = v.take(wire::uuid(&format!("account_ids[{i}]"), a))
                    && !accounts.contains(&a)
                {
                    accounts.push(a);
                }
            }
            let request_id = wire::request_id(&mut v, &r.request_id);
            let id = v.finish_with(id)?;
            let (firings, not_matched) = self.app.run_playbook(&caller, id, accounts, request_id).await?;
            Ok(pb::RunPlaybookResponse { firings: firings.iter().map(firing_proto).collect(), not_matched })
        })
        .await
    }

    async fn list_firings(&self, req: Request<pb::ListFiringsRequest>) -> Rpc<pb::ListFiringsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let mut v = Violations::new();
            let limit = page(&mut v, r.page_size);
            let playbook = v.take(wire::optional_uuid("playbook_id", &r.playbook_id));
            let account = v.take(wire::optional_uuid("account_id", &r.account_id));
            let (limit, playbook, account) = v.finish_with((limit, playbook, account))?;
            let key = QueryKey::new("ListFirings", &caller.tenant_id).part(format!("{playbook:?}/{account:?}"));
            let page: Paged<Uuid> = Paged::new(&self.kit.page_tokens, key, &r.page_token, limit)?;
            let rows = self.app.list_firings(&caller, playbook, account, page.after, page.fetch()).await?;
            let (rows, next_page_token) = page.page(&self.kit.page_tokens, rows, |f| f.id)?;
            Ok(pb::ListFiringsResponse { firings: rows.iter().map(firing_proto).collect(), next_page_token })
        })
        .await
    }

    async fn get_playbook_settings(&self, req: Request<pb::GetPlaybookSettingsRequest>) -> Rpc<pb::PlaybookSettings> {
        handle(req, Access::Read, async |caller, _r| Ok(settings_proto(&self.app.get_settings(&caller).await?))).await
    }

    async fn update_playbook_settings(
        &self,
        req: Request<pb::UpdatePlaybookSettingsRequest>,
    ) -> Rpc<pb::PlaybookSettings> {
        handle(req, Access::Admin, async |caller, r| {
            let mut v = Violations::new();
            let mask = v.take(fieldmask::parse::<SettingsField>("update_mask", r.update_mask.as_ref()));
            let s = wire::required(&mut v, "settings", r.settings.as_ref());
            let mut cmd = UpdateSettings::default();
            if let Some(s) = s {
                cmd.etag = v.take(etag::parse("settings.etag", &s.etag)).flatten();
                for f in mask.as_deref().unwrap_or_default() {
                    match f {
                        SettingsField::ScheduleTime => {
                            let ok = s.schedule_time.len() == 5
                                && chrono::NaiveTime::parse_from_str(&s.schedule_time, "%H:%M").is_ok();
                            if !ok {
                                v.add(
                                    "settings.schedule_time",
                                    format!(
                                        "must be HH:MM (00:00 to 23:59), got {}",
                                        banso_kit::shown(&s.schedule_time)
                                    ),
                                );
                            }
                            cmd.schedule_time = Some(s.schedule_time.clone());
                        }
                        SettingsField::FatigueMaxMessages => {
                            if !(1..=100).contains(&s.fatigue_max_messages) {
                                v.add(
                                    "settings.fatigue_max_messages",
                                    format!("must be 1 to 100, got {}", s.fatigue_max_messages),
                                );
                            }
                            cmd.fatigue_max_messages = Some(s.fatigue_max_messages);
                        }
                        SettingsField::FatigueWindowDays => {
                            if !(1..=365).contains(&s.fatigue_window_days) {
                                v.add(
                                    "settings.fatigue_window_days",
                                    format!("must be 1 to 365, got {}", s.fatigue_window_days),
                                );
                            }
                            cmd.fatigue_window_days = Some(s.fatigue_window_days);
                        }
                        SettingsField::ReviewExecutionThresholdPercent => {
                            let pct = s.review_execution_threshold_percent;
                            if !(1..=100).contains(&pct) {
                                v.add(
                                    "settings.review_execution_threshold_percent",
                                    format!("must be 1 to 100, got {pct}"),
                                );
                            }
                            cmd.review_execution_threshold_percent = Some(pct);
                        }
                    }
                }
            }
            v.finish()?;
            Ok(settings_proto(&self.app.update_settings(&caller, cmd).await?))
        })
        .await
    }

    async fn create_call_to_action(&self, req: Request<pb::CreateCallToActionRequest>) -> Rpc<pb::CallToAction> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = ctas::create(r)?;
            Ok(ctas::to_proto(&self.app.create_cta(&caller, cmd).await?, wire::now()))
        })
        .await
    }

    async fn get_call_to_action(&self, req: Request<pb::GetCallToActionRequest>) -> Rpc<pb::CallToAction> {
        handle(req, Access::Read, async |caller, r| {
            let id = wire::uuid("id", &r.id)?;
            Ok(ctas::to_proto(&self.app.get_cta(&caller, id).await?, wire::now()))
        })
        .await
    }

    async fn list_calls_to_action(
        &self,
        req: Request<pb::ListCallsToActionRequest>,
    ) -> Rpc<pb::ListCallsToActionResponse> {
        handle(req, Access::Read, async |caller, r| self.list_ctas_of(&caller, &r, false).await).await
    }

    async fn list_my_calls_to_action(
        &self,
        req: Request<pb::ListMyCallsToActionRequest>,
    ) -> Rpc<pb::ListCallsToActionResponse> {
        handle(req, Access::Read, async |caller, r| {
            let r =
                pb::ListCallsToActionRequest { page_size: r.page_size, page_token: r.page_token, ..Default::default() };
            self.list_ctas_of(&caller, &r, true).await
        })
        .await
    }

    async fn update_call_to_action(&self, req: Request<pb::UpdateCallToActionRequest>) -> Rpc<pb::CallToAction> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = ctas::update(r)?;
            Ok(ctas::to_proto(&self.app.update_cta(&caller, cmd).await?, wire::now()))
        })
        .await
    }

    async fn snooze_call_to_action(&self, req: Request<pb::SnoozeCallToActionRequest>) -> Rpc<pb::CallToAction> {
        handle(req, Access::Write, async |caller, r| {
            let now = wire::now();
            let (id, until, etag) = ctas::snooze(&r, now)?;
            Ok(ctas::to_proto(&self.app.snooze_cta(&caller, id, until, etag).await?, wire::now()))
        })
        .await
    }

    async fn close_call_to_action(&self, req: Request<pb::CloseCallToActionRequest>) -> Rpc<pb::CallToAction> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = ctas::close(r)?;
            Ok(ctas::to_proto(&self.app.close_cta(&caller, cmd).await?, wire::now()))
        })
        .await
    }
}
