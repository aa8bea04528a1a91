//! Feedback items and themes: recording (one, a stream, a survey's
//! comment), keyword rules, assigning, suggestions from the tenant's
//! index, candidate themes, and the voice settings.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::SeqCst},
    },
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
        suggest::{Candidate, Change, Doc, Index, ThemeDoc, cluster},
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

/// The suggestion index of each tenant, kept in step with the store in
/// place.
///
/// **Freshness**: a suggestion reflects every change committed before it
/// began — it reads the tenant's generation first and is answered by an
/// index at that generation or later. Every change the index reads (an
/// item recorded, a theme created or changed, an assignment) moves the
/// generation in its transaction.
///
/// **Catch-up**: an index behind the store reads what the generations
/// after its own changed — each generation's transaction records its
/// change (the items recorded, the themes created or changed, the links
/// made or unmade by hand) as it moves the generation — and applies it in
/// place: the themes reworded with their links, the new items with their
/// themes, then each (item, theme) pair linked or unlinked by hand set to
/// what the store has now (whatever was done to it in between). Generations are
/// handed out under the tenant row's lock and commit in order, so reading
/// them misses nothing, whatever the clocks of the replicas say; an index
/// further behind than the store keeps changes for
/// ([`store::voice::CHANGES_KEPT`]) is built again. A commit of this process that moves the generation wakes a
/// catch-up in the background ([`App::moved`]), so that the next
/// suggestion usually finds it done; a suggestion that still finds the
/// index behind (a catch-up under way, or a change made by another
/// process) waits for the catch-up under way or runs one itself. The store is read without holding the index: other
/// suggestions are answered meanwhile, and the index is locked only to
/// apply what was read. One catch-up (or build) runs at a time per tenant.
///
/// **Check**: a moment after a catch-up (and at most every
/// [`CHECK_INTERVAL`] while changes keep coming) a background task compares
/// the index's counts of items and links with the store's (two counts over
/// the tenant: too dear for every suggestion); if they differ (which a
/// change the index cannot read would cause: a defect, or a tool that wrote
/// the tables) or too many items were weighed in place (see [`Index::refresh`]), the index is
/// rebuilt from scratch in the background, brought up to date and swapped
/// in, while the caught-up one keeps serving.
#[derive(Default)]
pub(crate) struct Indexes {
    slots: Mutex<HashMap<String, Slot>>,
}

type Slot = Arc<Tenant>;

/// One tenant's index and what keeps it in step.
#[derive(Default)]
pub(crate) struct Tenant {
    kept: Arc<tokio::sync::RwLock<Option<Index>>>,
    /// Held while the store is read for the index (a build, a catch-up, a
    /// rebuild's last catch-up and swap): the only writers of `kept` hold it.
    updating: tokio::sync::Mutex<()>,
    /// A commit of this process moved the generation since the background
    /// catch-up last looked.
    moved: AtomicBool,
    /// The background catch-up runs.
    catching_up: AtomicBool,
    /// A check is due.
    check_due: AtomicBool,
    /// The background check runs.
    checking: AtomicBool,
}

/// How long the background check waits after a change, so that a burst of
/// changes costs one check.
const CHECK_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// While changes keep coming, the background check runs at most this often
/// (its two counts read the tenant's items and links).
const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Items weighed in place (with the document frequencies of their time)
/// past which a rebuild is due: a tenth of the index, and at least this
/// many (a small index rebuilds in no time, but not at every item).
const MIN_DRIFT: usize = 10;

/// An index of at most this many items is weighed again as a whole after
/// every catch-up that weighed something in place (0.2 ms at 2,016 items,
/// a fifth of them themed, release build): in place, drift matters most where items are few — a word of
/// one item speaks for nothing until a second item has it, so an item put
/// in a theme while its words were its own alone added nothing to the
/// theme, and a catch-up that later brings the second item does not add it
/// again.
const REFRESH_UP_TO: usize = 2_000;

impl Indexes {
    fn slot(&self, tenant: &str) -> Slot {
        let mut m = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(tenant.to_string()).or_default().clone()
    }

    /// The tenant's slot if this process keeps its index.
    fn existing(&self, tenant: &str) -> Option<Slot> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).get(tenant).cloned()
    }
}

/// What a background check found.
enum Checked {
    InStep,
    /// The store changed while it read: check again.
    Moved,
    Rebuild,
}

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

/// The themes whose keyword rules take `text` (of `ruled`, the themes that
/// have rules).
fn keyword_themes(ruled: &[&Theme], text: &str) -> Vec<Uuid> {
    ruled.iter().filter(|t| t.keyword_takes(text)).map(|t| t.id).collect()
}

/// How recorded items are announced.
#[derive(Clone, Copy)]
pub(crate) enum Announce {
    /// A FeedbackReceived each (one item, a survey's comments).
    EachItem,
    /// FeedbackImported, the batch's items together (an import).
    Together,
}

/// Records items in `tx` (its first statement a write): the items with the
/// themes their keyword rules give, their events (`announce`), the routing
/// to departments, and the tenant's generation moved.
pub(crate) async fn record(tx: &Tx, items: &mut [Item], themes: &[Theme], announce: Announce) -> Result<()> {
    let (conn, tenant) = (tx.conn(), tx.tenant());
    // Only themes with rules are tried: a tenant's themes mostly have none,
    // and an import tried each of them for every item.
    let ruled: Vec<&Theme> = themes.iter().filter(|t| !t.body.keywords.is_empty()).collect();
    for i in items.iter_mut() {
        let mut ids = keyword_themes(&ruled, &i.fields.text);
        ids.sort();
        ids.dedup();
        i.theme_ids = ids;
    }
    store::voice::insert_items(conn, tenant, items).await?;
    match announce {
        Announce::EachItem => tx.emit_all(items.iter().map(events::feedback_received)).await?,
        Announce::Together => tx.emit_all(events::feedback_imported(items)).await?,
    }
    super::routing::route_items(tx, items).await?;
    let change = Change { items: items.iter().map(|i| i.id).collect(), ..Change::default() };
    store::voice::bump_generation(conn, tenant, &change).await?;
    Ok(())
}

/// Survey answers' comments as items (in the answers' transaction), each
/// with its account as projected when it answered.
pub(crate) async fn record_comments(tx: &Tx, answers: &[(&store::answers::Answer, Option<&Projected>)]) -> Result<()> {
    let mut items: Vec<Item> = answers
        .iter()
        .filter(|(a, _)| !a.comment.trim().is_empty())
        .map(|(answer, projected)| Item {
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
                mention_time: None,
            },
            snapshot: projected.map(snapshot).unwrap_or_default(),
            theme_ids: vec![],
            answer_id: Some(answer.id),
            create_time: answer.answer_time,
            created_by: "survey".into(),
        })
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let themes = store::voice::all_themes(tx.conn(), tx.tenant()).await?;
    record(tx, &mut items, &themes, Announce::EachItem).await
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
        let item = self
            .db
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
                    record(tx, &mut item, &themes, Announce::EachItem).await?;
                    let [item] = item;
                    Ok(item)
                },
            )
            .await?;
        self.moved(&tenant);
        Ok(item)
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
            self.db.write(tenant, async |tx| record(tx, batch, &themes, Announce::Together).await).await?;
            out.created += batch.len() as i64;
        }
        self.moved(tenant);
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
                    let change = Change { linked: vec![(item, theme)], ..Change::default() };
                    store::voice::bump_generation(tx.conn(), tx.tenant(), &change).await?;
                    super::routing::route_assignment(tx, &i, theme).await?;
                }
                Ok(())
            })
            .await?;
        self.moved(tenant);
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
                    let change = Change { unlinked: vec![(item, theme)], ..Change::default() };
                    store::voice::bump_generation(tx.conn(), tx.tenant(), &change).await?;
                }
                Ok(())
            })
            .await?;
        self.moved(tenant);
        store::voice::get_item(conn, tenant, item).await
    }

    /// The tenant's index with every change committed before the call (see
    /// [`Indexes`]).
    pub(crate) async fn index(&self, tenant: &str) -> Result<IndexGuard> {
        let generation = store::voice::generation(self.db.conn(), tenant).await?;
        self.index_at(tenant, generation).await
    }

    /// The tenant's index at `generation` or later: built if there is none,
    /// caught up if it is behind.
    async fn index_at(&self, tenant: &str, generation: i64) -> Result<IndexGuard> {
        let slot = self.indexes.slot(tenant);
        let read = slot.kept.clone().read_owned().await;
        if read.as_ref().is_some_and(|k| k.generation >= generation) {
            return view(read);
        }
        drop(read);
        self.bring_up(tenant, &slot, Some(generation)).await?;
        view(slot.kept.clone().read_owned().await)
    }

    /// Brings the tenant's index up to the store's generation. With
    /// `at_least` (a suggestion's): builds it if there is none, and does
    /// nothing if it already is at that generation; without (the
    /// background catch-up): catches up an index there is.
    async fn bring_up(&self, tenant: &str, slot: &Slot, at_least: Option<i64>) -> Result<()> {
        let conn = self.db.conn();
        let _updating = slot.updating.lock().await;
        let changes = {
            let read = slot.kept.read().await;
            let k = match (read.as_ref(), at_least) {
                (None, None) => return Ok(()),
                (None, Some(_)) => {
                    drop(read);
                    let generation = store::voice::generation(conn, tenant).await?;
                    let built = build_index(conn, tenant, generation).await?;
                    *slot.kept.write().await = Some(built);
                    return Ok(());
                }
                (Some(k), Some(g)) if k.generation >= g => return Ok(()),
                (Some(k), _) => k,
            };
            // Read before the changes: a change committed after moves it again.
            let generation = store::voice::generation(conn, tenant).await?;
            if generation <= k.generation {
                return Ok(());
            }
            // Only the catch-ups write the index, and this one holds
            // `updating`: the index read here is the one the changes apply to.
            let changes = read_changes(conn, tenant, k, generation).await?;
            drop(read);
            match changes {
                Some(changes) => changes,
                None => {
                    let built = build_index(conn, tenant, generation).await?;
                    *slot.kept.write().await = Some(built);
                    return Ok(());
                }
            }
        };
        if let Some(k) = slot.kept.write().await.as_mut() {
            changes.apply(k);
        }
        self.check_later(tenant, slot);
        Ok(())
    }

    /// After a commit of this process that moved the tenant's generation:
    /// if this process keeps the tenant's index, it catches up in the
    /// background, so the next suggestion finds it done rather than doing it.
    pub(crate) fn moved(&self, tenant: &str) {
        let Some(slot) = self.indexes.existing(tenant) else {
            return;
        };
        slot.moved.store(true, SeqCst);
        if slot.catching_up.swap(true, SeqCst) {
            return;
        }
        let (app, tenant) = (self.clone(), tenant.to_string());
        tokio::spawn(async move {
            loop {
                while slot.moved.swap(false, SeqCst) {
                    if let Err(e) = app.bring_up(&tenant, &slot, None).await {
                        tracing::warn!(%tenant, error = %e, "suggestion index catch-up failed");
                    }
                }
                slot.catching_up.store(false, SeqCst);
                // A commit after the last look, before the flag fell, is
                // this task's still — unless another task took it.
                if !slot.moved.load(SeqCst) || slot.catching_up.swap(true, SeqCst) {
                    break;
                }
            }
        });
    }

    /// Checks the tenant's index against the store in the background (one
    /// task a tenant at a time, at most every [`CHECK_INTERVAL`] while
    /// changes keep coming), rebuilding it if it is out of step.
    fn check_later(&self, tenant: &str, slot: &Slot) {
        slot.check_due.store(true, SeqCst);
        if slot.checking.swap(true, SeqCst) {
            return;
        }
        let (app, tenant, slot) = (self.clone(), tenant.to_string(), slot.clone());
        tokio::spawn(async move {
            let mut wait = CHECK_DELAY;
            loop {
                tokio::time::sleep(wait).await;
                wait = CHECK_INTERVAL;
                slot.check_due.store(false, SeqCst);
                if let Err(e) = app.check_and_rebuild(&tenant, &slot).await {
                    tracing::warn!(%tenant, error = %e, "suggestion index check failed");
                }
                if slot.check_due.load(SeqCst) {
                    continue;
                }
                slot.checking.store(false, SeqCst);
                if !slot.check_due.load(SeqCst) || slot.checking.swap(true, SeqCst) {
                    break;
                }
            }
        });
    }

    /// The check, a few times while the store keeps moving, and the rebuild
    /// it calls for: built without holding the index, then caught up and
    /// swapped in.
    async fn check_and_rebuild(&self, tenant: &str, slot: &Slot) -> Result<()> {
        let conn = self.db.conn();
        let mut outcome = self.check(tenant, slot).await?;
        // A store that keeps changing is checked a few times, then left to
        // the next change's check.
        for _ in 0..4 {
            if !matches!(outcome, Checked::Moved) {
                break;
            }
            tokio::time::sleep(CHECK_DELAY).await;
            outcome = self.check(tenant, slot).await?;
        }
        if !matches!(outcome, Checked::Rebuild) {
            return Ok(());
        }
        let generation = store::voice::generation(conn, tenant).await?;
        let mut fresh = build_index(conn, tenant, generation).await?;
        let _updating = slot.updating.lock().await;
        let generation = store::voice::generation(conn, tenant).await?;
        match read_changes(conn, tenant, &fresh, generation).await? {
            Some(changes) => changes.apply(&mut fresh),
            // More changes came during the build than are kept.
            None => fresh = build_index(conn, tenant, generation).await?,
        }
        *slot.kept.write().await = Some(fresh);
        Ok(())
    }

    /// The index's counts of items and links against the store's, both at
    /// one generation (if the store moved meanwhile, it says so).
    async fn check(&self, tenant: &str, slot: &Slot) -> Result<Checked> {
        let conn = self.db.conn();
        if slot.kept.read().await.is_none() {
            return Ok(Checked::InStep);
        }
        let before = store::voice::generation(conn, tenant).await?;
        let counts = store::voice::item_and_link_counts(conn, tenant).await?;
        if store::voice::generation(conn, tenant).await? != before {
            return Ok(Checked::Moved);
        }
        // What the counts include, if no catch-up has read it yet.
        self.bring_up(tenant, slot, Some(before)).await?;
        let read = slot.kept.read().await;
        let Some(k) = read.as_ref() else {
            return Ok(Checked::InStep);
        };
        let (items, links) = k.size();
        // Drift is due whatever the store does meanwhile.
        if k.drift() > MIN_DRIFT.max(items / 10) {
            return Ok(Checked::Rebuild);
        }
        if k.generation != before {
            return Ok(Checked::Moved);
        }
        Ok(if counts == (items as u64, links as u64) { Checked::InStep } else { Checked::Rebuild })
    }

    /// The closest themes for an item (not those it is in) or a text.
    pub(crate) async fn suggest_themes(
        &self,
        caller: &Caller,
        of: std::result::Result<Uuid, String>,
        k: usize,
    ) -> Result<Vec<(Uuid, String, f64)>> {
        let (conn, tenant) = (self.db.conn(), caller.tenant_id.as_str());
        let (text, exclude) = match of {
            // Its text and themes alone.
            Ok(item) => store::voice::item_texts(conn, tenant, &[item])
                .await?
                .pop()
                .map(|(_, text, themes)| (text, themes))
                .ok_or_else(|| Error::not_found("feedback item", item.to_string()))?,
            Err(text) => (text, vec![]),
        };
        // The settings and the generation: one read of the tenant's row.
        let (settings, generation) = store::tenants::voice_settings_and_generation(conn, tenant).await?;
        Ok(self.index_at(tenant, generation).await?.suggest(&text, &exclude, k, settings.min_similarity))
    }

    /// Unthemed items grouped by likeness: (items, top terms, accounts).
    pub(crate) async fn candidate_themes(
        &self,
        caller: &Caller,
        max: usize,
        min_items: usize,
    ) -> Result<Vec<(Candidate, i64)>> {
        let tenant = caller.tenant_id.as_str();
        let unthemed: Vec<Item> = store::voice::all_items(self.db.conn(), tenant)
            .await?
            .into_iter()
            .filter(|i| i.theme_ids.is_empty())
            .collect();
        let accounts: HashMap<Uuid, Uuid> = unthemed.iter().map(|i| (i.id, i.fields.account_id)).collect();
        let vectors: Vec<_> = {
            let index = self.index(tenant).await?;
            unthemed.iter().map(|i| (i.id, index.vector(&i.fields.text))).collect()
        };
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
                    let change = Change { themes: vec![theme.id], ..Change::default() };
                    store::voice::bump_generation(tx.conn(), tx.tenant(), &change).await?;
                    Ok(theme)
                },
            )
            .await?;
        self.moved(&caller.tenant_id);
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
                    let change = Change { themes: vec![next.id], ..Change::default() };
                    store::voice::bump_generation(tx.conn(), tx.tenant(), &change).await?;
                    Ok(true)
                },
            )
            .await?;
        self.moved(&caller.tenant_id);
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

/// A suggestion's hold on the tenant's index.
pub(crate) type IndexGuard = tokio::sync::OwnedRwLockReadGuard<Option<Index>, Index>;

/// The index itself out of its slot.
fn view(guard: tokio::sync::OwnedRwLockReadGuard<Option<Index>>) -> Result<IndexGuard> {
    tokio::sync::OwnedRwLockReadGuard::try_map(guard, |k| k.as_ref())
        .map_err(|_| Error::internal(anyhow::anyhow!("suggestion index: missing after its build")))
}

fn theme_doc(t: &Theme) -> ThemeDoc<'_> {
    ThemeDoc {
        id: t.id,
        name: &t.body.display_name,
        words: format!("{} {} {}", t.body.display_name, t.body.description, t.body.keywords.join(" ")),
    }
}

/// The index from scratch, at `generation` (read before the items, so a
/// later change moves it).
async fn build_index(conn: &impl ConnectionTrait, tenant: &str, generation: i64) -> Result<Index> {
    let items = store::voice::all_items(conn, tenant).await?;
    let themes = store::voice::all_themes(conn, tenant).await?;
    // Weighing every item is CPU work: off the request threads.
    tokio::task::spawn_blocking(move || {
        let docs: Vec<Doc<'_>> =
            items.iter().map(|i| Doc { id: i.id, text: &i.fields.text, themes: &i.theme_ids }).collect();
        let theme_docs: Vec<ThemeDoc<'_>> = themes.iter().map(theme_doc).collect();
        Index::build(generation, &docs, &theme_docs)
    })
    .await
    .map_err(|e| Error::internal(anyhow::anyhow!("suggestion index build: {e}")))
}

/// What the generations after an index's up to `generation` changed, read
/// from the store (each read at that generation or later: applying a
/// change twice does nothing).
struct Changes {
    generation: i64,
    /// The themes created or changed, and all their links now.
    themes: Vec<Theme>,
    theme_links: Vec<(Uuid, Uuid)>,
    /// New items: id, text, themes.
    items: Vec<(Uuid, String, Vec<Uuid>)>,
    /// The (item, theme) pairs linked or unlinked by hand, each with
    /// whether the store has it now: what was done to a pair in between
    /// (made, unmade, made again) is the store's to say, not the order the
    /// index happens to read it in.
    links: Vec<(Uuid, Uuid, bool)>,
}

/// What changed after `index`'s generation up to `generation`; none if the
/// store no longer keeps some of those generations (build it again).
async fn read_changes(
    conn: &impl ConnectionTrait,
    tenant: &str,
    index: &Index,
    generation: i64,
) -> Result<Option<Changes>> {
    let Some(log) = store::voice::changes_between(conn, tenant, index.generation, generation).await? else {
        return Ok(None);
    };
    let mut themes: Vec<Uuid> = log.iter().flat_map(|c| c.themes.iter().copied()).collect();
    themes.sort_unstable();
    themes.dedup();
    let new: Vec<Uuid> = log.iter().flat_map(|c| c.items.iter().copied()).filter(|id| !index.has_item(*id)).collect();
    let mut pairs: Vec<(Uuid, Uuid)> = log.iter().flat_map(|c| c.linked.iter().chain(&c.unlinked).copied()).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut touched: Vec<Uuid> = pairs.iter().map(|(i, _)| *i).collect();
    touched.dedup();
    let now = store::voice::themes_of(conn, tenant, &touched).await?;
    let links = pairs.into_iter().map(|(i, t)| (i, t, now.get(&i).is_some_and(|themes| themes.contains(&t)))).collect();
    Ok(Some(Changes {
        generation,
        theme_links: store::voice::links_of_themes(conn, tenant, &themes).await?,
        themes: store::voice::themes_by_ids(conn, tenant, &themes).await?,
        items: store::voice::item_texts(conn, tenant, &new).await?,
        links,
    }))
}

impl Changes {
    /// Applies them to the index in place (a reading at the generation or
    /// later: a change after it is read again by the next catch-up, which
    /// brings each pair it touches to the store's state then).
    fn apply(self, index: &mut Index) {
        for t in &self.themes {
            index.set_theme(&theme_doc(t));
        }
        let docs: Vec<Doc<'_>> = self.items.iter().map(|(id, text, themes)| Doc { id: *id, text, themes }).collect();
        index.add_items(&docs);
        for (item, theme) in self.theme_links {
            index.link(item, theme);
        }
        for (item, theme, linked) in self.links {
            if linked {
                index.link(item, theme);
            } else {
                index.unlink(item, theme);
            }
        }
        index.generation = index.generation.max(self.generation);
        if index.drift() > 0 && index.size().0 <= REFRESH_UP_TO {
            index.refresh();
        }
    }
}

#[cfg(test)]
#[path = "items_tests.rs"]
mod tests;
