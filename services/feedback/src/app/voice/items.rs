//! Feedback items and themes: recording (one, a stream, a survey's
//! comment), keyword rules, assigning, suggestions from the tenant's
//! index, candidate themes, and the voice settings.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use banso_events::{
    Tx,
    db::{Identified, RequestKey, Versioned, remembered},
};
use banso_kit::{Error, Result, auth::Caller, wire};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    app::App,
    domain::{
        projection::Projected,
        suggest::{Candidate, Doc, Index, ThemeDoc, cluster},
        voice::{Item, ItemFields, ItemSnapshot, Theme, ThemeBody, ThemeLog, VoiceSettings},
    },
    events,
    store::{self, voice::ItemFilter},
};

const OP_CREATE_ITEM: &str = "CreateFeedbackItem";
const OP_CREATE_THEME: &str = "CreateTheme";

/// Items a transaction of an import writes.
const IMPORT_BATCH: usize = 500;

impl Identified for Item {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl Identified for Theme {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl Versioned for Theme {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

/// The suggestion index of each tenant, rebuilt when the tenant's
/// generation moved (an item, a theme or a link changed).
#[derive(Default)]
pub(crate) struct Indexes(Mutex<HashMap<String, Arc<Index>>>);

/// The account as an item records it.
pub(crate) fn snapshot(p: &Projected) -> ItemSnapshot {
    ItemSnapshot {
        arr_currency: p.account.arr_currency.clone(),
        arr_minor: p.account.arr_minor,
        plan: p.account.plan_tier.clone(),
        lifecycle_stage: Some(p.account.lifecycle_stage),
        band: p.band,
    }
}

/// The themes whose keyword rules take `text`.
fn keyword_themes(themes: &[Theme], text: &str) -> Vec<Uuid> {
    themes.iter().filter(|t| t.keyword_takes(text)).map(|t| t.id).collect()
}

/// Records items in `tx` (its first statement a write): the items with the
/// themes their keyword rules give, FeedbackReceived each, the routing to
/// departments, and the tenant's generation moved.
pub(crate) async fn record(tx: &Tx, items: &mut [Item], themes: &[Theme]) -> Result<()> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    for i in items.iter_mut() {
        let mut ids = keyword_themes(themes, &i.fields.text);
        ids.sort();
        ids.dedup();
        i.theme_ids = ids;
    }
    store::voice::insert_items(conn, tenant, items).await?;
    tx.emit_all(items.iter().map(events::feedback_received)).await?;
    super::routing::route_items(tx, items).await?;
    store::voice::bump_generation(conn, tenant).await
}

/// A survey answer's comment as an item (in the answer's transaction).
pub(crate) async fn record_comment(
    tx: &Tx,
    answer: &store::answers::Answer,
    projected: Option<&Projected>,
) -> Result<()> {
    if answer.comment.trim().is_empty() {
        return Ok(());
    }
    let themes = store::voice::all_themes(tx.conn(), tx.tenant()).await?;
    let mut item = [Item {
        id: Uuid::now_v7(),
        fields: ItemFields {
            text: answer.comment.clone(),
            channel: crate::domain::voice::Channel::SurveyComment,
            account_id: answer.account_id,
            contact_id: Some(answer.contact_id),
            department: crate::domain::voice::Department::Cs,
            category: format!("{} survey", answer.kind.as_str()),
            cx_dimension: None,
            journey_phase: None,
            severity: crate::domain::voice::comment_severity(answer.kind, answer.score),
        },
        snapshot: projected.map(snapshot).unwrap_or_default(),
        theme_ids: vec![],
        answer_id: Some(answer.id),
        create_time: answer.answer_time,
        created_by: "survey".into(),
    }];
    record(tx, &mut item, &themes).await
}

/// What ImportFeedbackItems did.
#[derive(Debug, Default)]
pub(crate) struct Imported {
    pub created: i64,
    /// (index in the stream, "field: description" each).
    pub failures: Vec<(i64, Vec<String>)>,
    pub failed: i64,
}

/// An item to import, parsed, or why not.
pub(crate) type Incoming = std::result::Result<ItemFields, Vec<String>>;

/// Most failures an import lists (all are counted).
const MAX_LISTED_FAILURES: usize = 1000;

impl App {
    async fn account(&self, tenant: &str, f: &ItemFields) -> Result<Projected> {
        let conn = self.db.conn();
        let Some(p) = store::projection::get(conn, tenant, f.account_id).await? else {
            return Err(Error::not_found("account", f.account_id.to_string()));
        };
        if let Some(c) = f.contact_id
            && !store::projection::contacts_of(conn, tenant, &[f.account_id]).await?.iter().any(|x| x.id == c)
        {
            return Err(Error::not_found("contact", c.to_string()));
        }
        Ok(p)
    }

    pub(crate) async fn create_item(&self, caller: &Caller, request_id: Option<String>, f: ItemFields) -> Result<Item> {
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_ITEM, request_id });
        let tenant = caller.tenant_id.clone();
        let s = self.scope(&tenant);
        let projected = self.account(&tenant, &f).await?;
        let themes = store::voice::all_themes(self.db.conn(), &tenant).await?;
        let by = caller.subject.clone();
        self.db
            .create_once(
                &tenant,
                key,
                async move |id| store::voice::get_item(&s.conn, &s.tenant, remembered(id)?).await,
                async move |tx| {
                    let mut item = [Item {
                        id: Uuid::now_v7(),
                        fields: f,
                        snapshot: snapshot(&projected),
                        theme_ids: vec![],
                        answer_id: None,
                        create_time: wire::now(),
                        created_by: by,
                    }];
                    record(tx, &mut item, &themes).await?;
                    let [item] = item;
                    Ok(item)
                },
            )
            .await
    }

    /// Items of a stream: each bad one reported with its index, the good
    /// ones written a batch a transaction.
    pub(crate) async fn import_items(&self, caller: &Caller, incoming: Vec<Incoming>) -> Result<Imported> {
        let tenant = caller.tenant_id.as_str();
        let conn = self.db.conn();
        let mut out = Imported::default();
        let fail = |out: &mut Imported, i: usize, why: Vec<String>| {
            out.failed += 1;
            if out.failures.len() < MAX_LISTED_FAILURES {
                out.failures.push((i as i64, why));
            }
        };
        let ids: Vec<Uuid> = incoming
            .iter()
            .filter_map(|x| x.as_ref().ok().map(|f| f.account_id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let accounts: HashMap<Uuid, Projected> = store::projection::accounts(conn, tenant, Some(&ids))
            .await?
            .into_iter()
            .map(|a| (a.account.id, a))
            .collect();
        let contacts: HashSet<(Uuid, Uuid)> = store::projection::contacts_of(conn, tenant, &ids)
            .await?
            .into_iter()
            .map(|c| (c.account_id, c.id))
            .collect();
        let themes = store::voice::all_themes(conn, tenant).await?;
        let now = wire::now();
        let mut good = Vec::new();
        for (i, x) in incoming.into_iter().enumerate() {
            let f = match x {
                Ok(f) => f,
                Err(why) => {
                    fail(&mut out, i, why);
                    continue;
                }
            };
            let Some(p) = accounts.get(&f.account_id) else {
                fail(&mut out, i, vec![format!("item.account_id: account {} does not exist", f.account_id)]);
                continue;
            };
            if let Some(c) = f.contact_id
                && !contacts.contains(&(f.account_id, c))
            {
                fail(
                    &mut out,
                    i,
                    vec![format!("item.contact_id: contact {c} is not a contact of account {}", f.account_id)],
                );
                continue;
            }
            good.push(Item {
                id: Uuid::now_v7(),
                snapshot: snapshot(p),
                fields: f,
                theme_ids: vec![],
                answer_id: None,
                create_time: now,
                created_by: caller.subject.clone(),
            });
        }
        for batch in good.chunks_mut(IMPORT_BATCH) {
            self.db.write(tenant, async |tx| record(tx, batch, &themes).await).await?;
            out.created += batch.len() as i64;
        }
        Ok(out)
    }

    pub(crate) async fn get_item(&self, caller: &Caller, id: Uuid) -> Result<Item> {
        store::voice::get_item(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_items(
        &self,
        caller: &Caller,
        filter: ItemFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Item>> {
        if let Some(t) = filter.theme {
            store::voice::get_theme(self.db.conn(), &caller.tenant_id, t).await?;
        }
        store::voice::list_items(self.db.conn(), &caller.tenant_id, &filter, before, limit).await
    }

    /// Puts an item in a theme (by hand or accepting a suggestion).
    pub(crate) async fn assign_theme(&self, caller: &Caller, item: Uuid, theme: Uuid, how: &str) -> Result<Item> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let i = store::voice::get_item(conn, tenant, item).await?;
        store::voice::get_theme(conn, tenant, theme).await?;
        self.db
            .write(tenant, async |tx| {
                if store::voice::link(tx.conn(), tx.tenant(), item, theme, how, wire::now()).await? {
                    store::voice::bump_generation(tx.conn(), tx.tenant()).await?;
                    super::routing::route_assignment(tx, &i, theme).await?;
                }
                Ok(())
            })
            .await?;
        store::voice::get_item(conn, tenant, item).await
    }

    pub(crate) async fn unassign_theme(&self, caller: &Caller, item: Uuid, theme: Uuid) -> Result<Item> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        store::voice::get_item(conn, tenant, item).await?;
        store::voice::get_theme(conn, tenant, theme).await?;
        self.db
            .write(tenant, async |tx| {
                if store::voice::unlink(tx.conn(), tx.tenant(), item, theme).await? {
                    store::voice::bump_generation(tx.conn(), tx.tenant()).await?;
                }
                Ok(())
            })
            .await?;
        store::voice::get_item(conn, tenant, item).await
    }

    /// The tenant's index, rebuilt if its generation moved.
    pub(crate) async fn index(&self, tenant: &str) -> Result<Arc<Index>> {
        let conn = self.db.conn();
        let generation = store::voice::generation(conn, tenant).await?;
        if let Ok(m) = self.indexes.0.lock()
            && let Some(i) = m.get(tenant).filter(|i| i.generation == generation)
        {
            return Ok(i.clone());
        }
        let index = Arc::new(build_index(conn, tenant, generation).await?);
        if let Ok(mut m) = self.indexes.0.lock() {
            m.insert(tenant.to_string(), index.clone());
        }
        Ok(index)
    }

    /// The closest themes for an item (not those it is in) or a text.
    pub(crate) async fn suggest_themes(
        &self,
        caller: &Caller,
        of: std::result::Result<Uuid, String>,
        k: usize,
    ) -> Result<Vec<(Uuid, String, f64)>> {
        let tenant = caller.tenant_id.as_str();
        let (text, exclude) = match of {
            Ok(item) => {
                let i = store::voice::get_item(self.db.conn(), tenant, item).await?;
                (i.fields.text, i.theme_ids)
            }
            Err(text) => (text, vec![]),
        };
        let min = store::tenants::voice_settings(self.db.conn(), tenant).await?.min_similarity;
        Ok(self.index(tenant).await?.suggest(&text, &exclude, k, min))
    }

    /// Unthemed items grouped by likeness: (items, top terms, accounts).
    pub(crate) async fn candidate_themes(
        &self,
        caller: &Caller,
        max: usize,
        min_items: usize,
    ) -> Result<Vec<(Candidate, i64)>> {
        let tenant = caller.tenant_id.as_str();
        let index = self.index(tenant).await?;
        let unthemed: Vec<Item> = store::voice::all_items(self.db.conn(), tenant)
            .await?
            .into_iter()
            .filter(|i| i.theme_ids.is_empty())
            .collect();
        let accounts: HashMap<Uuid, Uuid> = unthemed.iter().map(|i| (i.id, i.fields.account_id)).collect();
        let vectors: Vec<_> = unthemed.iter().map(|i| (i.id, index.vector(&i.fields.text))).collect();
        let mut out: Vec<(Candidate, i64)> = cluster(&vectors, CANDIDATE_SIMILARITY, min_items)
            .into_iter()
            .map(|c| {
                let n = c.items.iter().filter_map(|i| accounts.get(i)).collect::<HashSet<_>>().len() as i64;
                (c, n)
            })
            .collect();
        out.truncate(max);
        Ok(out)
    }

    pub(crate) async fn create_theme(
        &self,
        caller: &Caller,
        request_id: Option<String>,
        body: ThemeBody,
    ) -> Result<Theme> {
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_THEME, request_id });
        let s = self.scope(&caller.tenant_id);
        let theme = self
            .db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::voice::get_theme(&s.conn, &s.tenant, remembered(id)?).await,
                async move |tx| {
                    let t = wire::now();
                    let theme = Theme {
                        id: Uuid::now_v7(),
                        body,
                        log: ThemeLog::default(),
                        create_time: t,
                        update_time: t,
                        version: 1,
                    };
                    store::voice::insert_theme(tx.conn(), tx.tenant(), &theme).await?;
                    apply_keywords(tx, &theme).await?;
                    store::voice::bump_generation(tx.conn(), tx.tenant()).await?;
                    Ok(theme)
                },
            )
            .await?;
        Ok(theme)
    }

    pub(crate) async fn get_theme(&self, caller: &Caller, id: Uuid) -> Result<(Theme, i64)> {
        let conn = self.db.conn();
        let mut t = store::voice::get_theme(conn, &caller.tenant_id, id).await?;
        super::loops::with_accounts_told(conn, &caller.tenant_id, std::slice::from_mut(&mut t)).await?;
        let n = store::voice::theme_sizes(conn, &caller.tenant_id, &[id]).await?.get(&id).copied().unwrap_or(0);
        Ok((t, n))
    }

    pub(crate) async fn list_themes(
        &self,
        caller: &Caller,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<(Theme, i64)>> {
        let conn = self.db.conn();
        let mut themes = store::voice::list_themes(conn, &caller.tenant_id, after, limit).await?;
        super::loops::with_accounts_told(conn, &caller.tenant_id, &mut themes).await?;
        let ids: Vec<Uuid> = themes.iter().map(|t| t.id).collect();
        let sizes = store::voice::theme_sizes(conn, &caller.tenant_id, &ids).await?;
        Ok(themes
            .into_iter()
            .map(|t| {
                let n = sizes.get(&t.id).copied().unwrap_or(0);
                (t, n)
            })
            .collect())
    }

    /// UpdateTheme: the fields `change` sets, at the version `etag` names
    /// (or the latest, retried on a lost race); new keywords take the items
    /// that match them.
    pub(crate) async fn update_theme(
        &self,
        caller: &Caller,
        id: Uuid,
        etag: Option<i64>,
        change: impl Fn(&mut ThemeBody) + Send + Sync,
    ) -> Result<(Theme, i64)> {
        let s = self.scope(&caller.tenant_id);
        self.db
            .update_versioned(
                &caller.tenant_id,
                &format!("theme {id}"),
                etag,
                async move || store::voice::get_theme(&s.conn, &s.tenant, id).await,
                |t| {
                    change(&mut t.body);
                    Ok(())
                },
                async |tx, current, next| {
                    if !store::voice::update_theme(tx.conn(), tx.tenant(), current, next).await? {
                        return Ok(false);
                    }
                    if current.body.keywords != next.body.keywords {
                        apply_keywords(tx, next).await?;
                    }
                    store::voice::bump_generation(tx.conn(), tx.tenant()).await?;
                    Ok(true)
                },
            )
            .await?;
        self.get_theme(caller, id).await
    }

    pub(crate) async fn voice_settings(&self, caller: &Caller) -> Result<VoiceSettings> {
        store::tenants::voice_settings(self.db.conn(), &caller.tenant_id).await
    }

    pub(crate) async fn update_voice_settings(
        &self,
        caller: &Caller,
        change: impl FnOnce(&mut VoiceSettings),
    ) -> Result<VoiceSettings> {
        let mut settings = store::tenants::voice_settings(self.db.conn(), &caller.tenant_id).await?;
        change(&mut settings);
        self.db
            .write(&caller.tenant_id, async |tx| {
                store::tenants::set_voice_settings(tx.conn(), tx.tenant(), &settings).await
            })
            .await?;
        Ok(settings)
    }
}

/// How alike unthemed items must be to make a candidate theme.
const CANDIDATE_SIMILARITY: f64 = 0.3;

/// Puts the tenant's items that the theme's keywords take in it.
async fn apply_keywords(tx: &Tx, theme: &Theme) -> Result<()> {
    if theme.body.keywords.is_empty() {
        return Ok(());
    }
    let (conn, tenant) = (tx.conn(), tx.tenant());
    let now = wire::now();
    for item in store::voice::all_items(conn, tenant).await? {
        if !item.theme_ids.contains(&theme.id) && theme.keyword_takes(&item.fields.text) {
            store::voice::link(conn, tenant, item.id, theme.id, "keyword", now).await?;
        }
    }
    Ok(())
}

async fn build_index(conn: &impl ConnectionTrait, tenant: &str, generation: i64) -> Result<Index> {
    let items = store::voice::all_items(conn, tenant).await?;
    let themes = store::voice::all_themes(conn, tenant).await?;
    let docs: Vec<Doc<'_>> = items.iter().map(|i| Doc { text: &i.fields.text, themes: &i.theme_ids }).collect();
    let theme_docs: Vec<ThemeDoc<'_>> = themes
        .iter()
        .map(|t| ThemeDoc {
            id: t.id,
            name: &t.body.display_name,
            words: format!("{} {} {}", t.body.display_name, t.body.description, t.body.keywords.join(" ")),
        })
        .collect();
    Ok(Index::build(generation, &docs, &theme_docs))
}
