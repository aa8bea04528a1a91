//! Bulk import (CRM sync): rows upserted by external_id, with their events,
//! row by row counted in one tally for both import streams.
//!
//! ImportAccounts is a pipeline: a task of its own parses the stream up to
//! [`READ_AHEAD`] chunks ahead; each chunk is prepared (looked up, encoded)
//! while the one before it is written, writes one at a time in stream order
//! (so the outbox keeps the rows' order); a chunk that names an external_id
//! of the write in flight waits for it (docs/benchmarks.md).

use std::collections::{HashMap, HashSet};

use banso_events::{Envelope, outbox::PgBatch};
use banso_kit::{Error, Result, auth::Caller, error::FieldViolation, fieldmask::FieldPath as _, shown, wire};
use futures::{Stream, StreamExt};
use tracing::Instrument;
use uuid::Uuid;

use super::{App, accounts::UpsertAccount};
use crate::{
    domain::{Account, AccountField, ContactFields, MixChange},
    events, store,
};

/// Row errors a response lists (its counts cover all rows).
const MAX_ERRORS: usize = 1_000;
/// Chunks of ImportAccounts rows parsed ahead of the writes.
const READ_AHEAD: usize = 2;

/// Rows of an import stream as the API parsed them: the valid ones, and the
/// refused ones with why.
pub(crate) struct Chunk<R> {
    /// Rows read, valid or not.
    pub rows: i64,
    pub valid: Vec<R>,
    pub refused: Vec<Refused>,
}

/// A row the API refused: its index in the stream, its external_id, why.
pub(crate) struct Refused {
    pub row: i64,
    pub external_id: String,
    pub violations: Vec<FieldViolation>,
}

/// A valid ImportAccounts row: a whole account with an external_id.
pub(crate) struct AccountRow {
    pub row: i64,
    pub fields: crate::domain::AccountFields,
}

/// Up to 1,000 rows of ImportAccounts.
pub(crate) type AccountChunk = Chunk<AccountRow>;

/// The account of a contact row: its id, or its external_id.
pub(crate) enum AccountRef {
    Id(Uuid),
    ExternalId(String),
}

/// A valid ImportContacts row: a whole contact with an external_id.
pub(crate) struct ContactRow {
    pub row: i64,
    pub account: AccountRef,
    pub fields: ContactFields,
}

/// One row's error in an import's response.
pub(crate) struct RowError {
    pub row: i64,
    pub external_id: String,
    pub field: String,
    pub description: String,
}

/// What an import stream did, row by row.
#[derive(Default)]
pub(crate) struct ImportTally {
    pub rows: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    /// In row order, at most [`MAX_ERRORS`].
    pub errors: Vec<RowError>,
}

/// What a chunk's write did: the chunk's rows and refused rows, and each
/// valid row's index, external_id and outcome.
type Written = (ImportTally, Vec<(i64, String, Result<RowOutcome>)>);

/// What became of one valid row.
#[derive(Debug)]
enum RowOutcome {
    Created,
    Updated,
    Unchanged,
}

impl ImportTally {
    /// A refused row: counted, and its errors listed up to the cap.
    fn refused(&mut self, row: i64, external_id: &str, violations: Vec<FieldViolation>) {
        self.failed += 1;
        for v in violations {
            if self.errors.len() < MAX_ERRORS {
                self.errors.push(RowError {
                    row,
                    external_id: external_id.to_owned(),
                    field: v.field,
                    description: v.description,
                });
            }
        }
    }

    /// The rows of a chunk the API refused.
    fn chunk<R>(&mut self, chunk: &mut Chunk<R>) {
        self.rows += chunk.rows;
        for r in std::mem::take(&mut chunk.refused) {
            self.refused(r.row, &r.external_id, r.violations);
        }
    }

    /// What the write did with one valid row.
    fn outcome(&mut self, row: i64, external_id: &str, outcome: Result<RowOutcome>) {
        match outcome {
            Ok(RowOutcome::Created) => self.created += 1,
            Ok(RowOutcome::Updated) => self.updated += 1,
            Ok(RowOutcome::Unchanged) => self.unchanged += 1,
            Err(Error::InvalidArgument(vs)) => self.refused(row, external_id, vs),
            Err(e) => self.refused(
                row,
                external_id,
                vec![FieldViolation { field: String::new(), description: e.to_string() }],
            ),
        }
    }

    /// The tally with its errors in row order.
    fn finish(mut self) -> Self {
        self.errors.sort_by_key(|e| e.row);
        self
    }
}

impl App {
    /// Upserts whole accounts by external_id, in stream order: a row whose
    /// external_id came earlier applies after it. What was sent before a
    /// broken stream is written, and the call fails.
    pub(crate) async fn import_accounts(
        &self,
        caller: &Caller,
        chunks: impl Stream<Item = Result<AccountChunk>> + Send + 'static,
    ) -> Result<ImportTally> {
        let tenant = caller.tenant_id.as_str();
        let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let _reader = AbortOnDrop(tokio::spawn(read_ahead(chunks, tx).instrument(tracing::Span::current())));
        let mut tally = ImportTally::default();
        let mut writing: Option<ChunkWrite> = None;
        while let Some(chunk) = rx.recv().await {
            let prepared = match chunk {
                Ok(chunk) => {
                    // The write in flight may create or change these rows: see it first.
                    if let Some(w) = writing.take_if(|w| w.touches(&chunk)) {
                        w.finish(&mut tally).await?;
                    }
                    self.prepare_import(tenant, &caller.subject, chunk).await
                }
                Err(e) => Err(e),
            };
            if let Some(w) = writing.take() {
                w.finish(&mut tally).await?;
            }
            writing = Some(ChunkWrite::start(self.clone(), prepared?));
        }
        if let Some(w) = writing {
            w.finish(&mut tally).await?;
        }
        Ok(tally.finish())
    }

    /// Upserts contacts by external_id, in stream order; a row whose account
    /// does not exist fails alone, and contacts do not move between accounts.
    pub(crate) async fn import_contacts(
        &self,
        caller: &Caller,
        chunks: impl Stream<Item = Result<Chunk<ContactRow>>>,
    ) -> Result<ImportTally> {
        let tenant = caller.tenant_id.as_str();
        let mut tally = ImportTally::default();
        let mut chunks = std::pin::pin!(chunks);
        while let Some(chunk) = chunks.next().await {
            let mut chunk = chunk?;
            tally.chunk(&mut chunk);
            let by_external_id: Vec<String> = chunk
                .valid
                .iter()
                .filter_map(|r| match &r.account {
                    AccountRef::ExternalId(e) => Some(e.clone()),
                    AccountRef::Id(_) => None,
                })
                .collect();
            let accounts = store::accounts::by_external_ids(self.db.conn(), tenant, &by_external_id).await?;
            for row in chunk.valid {
                let external_id = row.fields.external_id.clone().unwrap_or_default();
                let outcome = self.import_contact(tenant, &accounts, row.account, row.fields).await?;
                tally.outcome(row.row, &external_id, outcome);
            }
        }
        Ok(tally.finish())
    }

    /// One contact row: its lookups fail the call, its write only the row.
    async fn import_contact(
        &self,
        tenant: &str,
        accounts: &HashMap<String, Account>,
        account: AccountRef,
        fields: ContactFields,
    ) -> Result<Result<RowOutcome>> {
        let account_id = match account {
            AccountRef::Id(id) => id,
            AccountRef::ExternalId(e) => match accounts.get(&e) {
                Some(a) => a.id,
                None => return Ok(Err(Error::not_found("account", e))),
            },
        };
        let external_id = fields.external_id.clone().unwrap_or_default();
        Ok(match store::contacts::find_by_external_id(self.db.conn(), tenant, &external_id).await? {
            Some(c) if c.account_id != account_id => Err(Error::FailedPrecondition {
                reason: "CONTACT_ON_OTHER_ACCOUNT",
                message: format!(
                    "contact {} belongs to another account; contacts do not move between accounts",
                    shown(&external_id)
                ),
            }),
            Some(c) if c.fields == fields => Ok(RowOutcome::Unchanged),
            Some(c) => {
                self.change_contact(tenant, c.id, None, |f| *f = fields.clone()).await.map(|_| RowOutcome::Updated)
            }
            None => self.insert_contact(tenant, None, account_id, &fields).await.map(|_| RowOutcome::Created),
        })
    }

    /// The reading half of an import chunk: looks up its rows, settles the
    /// unchanged ones and encodes the new ones, writing nothing.
    async fn prepare_import(&self, tenant: &str, subject: &str, mut chunk: AccountChunk) -> Result<PreparedImport> {
        let mut tally = ImportTally::default();
        tally.chunk(&mut chunk);
        let n = chunk.valid.len();
        let mut p = PreparedImport {
            tenant: tenant.to_owned(),
            subject: subject.to_owned(),
            tally,
            index: chunk.valid.iter().map(|r| r.row).collect(),
            external_ids: chunk.valid.iter().map(|r| r.fields.external_id.clone().unwrap_or_default()).collect(),
            fields: chunk.valid.into_iter().map(|r| Some(r.fields)).collect(),
            results: (0..n).map(|_| None).collect(),
            pending: (0..n).collect(),
            first: None,
        };
        if !p.pending.is_empty() {
            p.first = Some(self.plan_round(&mut p).await?);
        }
        Ok(p)
    }

    /// The writing half: writes the prepared round, then the rows that
    /// repeat an external_id, a round at a time; the outcome of each row.
    async fn finish_import(&self, mut p: PreparedImport) -> Result<Written> {
        let mut next = p.first.take();
        while let Some(round) = next {
            self.apply_round(&mut p, round).await?;
            next = if p.pending.is_empty() { None } else { Some(self.plan_round(&mut p).await?) };
        }
        let outcomes = p
            .results
            .into_iter()
            .zip(p.index)
            .zip(p.external_ids)
            .map(|((r, row), ext)| {
                (row, ext, r.unwrap_or_else(|| Err(Error::internal(anyhow::anyhow!("an import row got no result")))))
            })
            .collect();
        Ok((p.tally, outcomes))
    }

    /// The next round of `p` (each external_id once), looked up and sorted:
    /// unchanged rows are settled, new ones encoded for their write.
    async fn plan_round(&self, p: &mut PreparedImport) -> Result<Round> {
        let mut seen = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) =
            p.pending.iter().partition(|i| seen.insert(p.external_ids[**i].as_str()));
        p.pending = later;
        let ids: Vec<String> = round.iter().map(|i| p.external_ids[*i].clone()).collect();
        let existing = store::accounts::by_external_ids(self.db.conn(), &p.tenant, &ids).await?;
        // The touch-mix rules apply to each row first, so a row the rules
        // already govern is unchanged, and a new account starts with the
        // rule's mix (its first history row says so).
        let policy = self.mix_policy(&p.tenant).await?;
        let t = wire::now();
        let mut updates = Vec::new();
        let mut creates = Vec::new();
        let mut accounts = Vec::new();
        let mut changes = Vec::new();
        for i in round {
            let mut fields =
                p.fields[i].take().ok_or_else(|| Error::internal(anyhow::anyhow!("an import row planned twice")))?;
            let rule = policy.apply(&mut fields);
            match existing.get(&p.external_ids[i]) {
                Some(current) if current.fields == fields => p.results[i] = Some(Ok(RowOutcome::Unchanged)),
                Some(current) => updates.push((i, current.id, fields)),
                None => {
                    let a = Account { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 };
                    changes.push(match rule {
                        Some(rule) => MixChange::rule(&a, &rule),
                        None => MixChange::manual(&a, &p.subject),
                    });
                    accounts.push(a);
                    creates.push(i);
                }
            }
        }
        let encoded = Encoded::new(&p.tenant, &changes, &accounts, banso_kit::db::is_postgres(self.db.conn()))?;
        Ok(Round { updates, creates, accounts, changes, encoded })
    }

    async fn apply_round(&self, p: &mut PreparedImport, round: Round) -> Result<()> {
        for (i, id, fields) in round.updates {
            let updated = self.change_account(&p.tenant, id, None, &p.subject, |f| {
                *f = fields.clone();
                Ok(())
            });
            p.results[i] = Some(updated.await.map(|_| RowOutcome::Updated));
        }
        match self.create_many(&p.tenant, &round.changes, &round.accounts, round.encoded).await {
            Ok(()) => {
                for i in round.creates {
                    p.results[i] = Some(Ok(RowOutcome::Created));
                }
            }
            // Another writer created some of them meanwhile: one by one.
            Err(Error::AlreadyExists(_)) => {
                for (i, a) in round.creates.into_iter().zip(round.accounts) {
                    let cmd = UpsertAccount {
                        mask: AccountField::ALL.to_vec(),
                        fields: a.fields.clone(),
                        create: Ok(a.fields),
                    };
                    let r = self.upsert(&p.tenant, &cmd, &p.subject).await;
                    p.results[i] =
                        Some(r.map(|(_, created)| if created { RowOutcome::Created } else { RowOutcome::Updated }));
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Creates new accounts in bulk: accounts, tags and events in one
    /// transaction. ALREADY_EXISTS (and nothing written) when an
    /// external_id is taken.
    async fn create_many(
        &self,
        tenant: &str,
        changes: &[MixChange],
        accounts: &[Account],
        encoded: Encoded,
    ) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        match encoded {
            Encoded::Postgres(w) => {
                let (rows, events) = *w;
                let tenant = tenant.to_owned();
                self.db
                    .write_pg(async move |conn| {
                        rows.insert(&mut *conn, &tenant).await?;
                        events.record(conn).await?;
                        Ok(())
                    })
                    .await
            }
            Encoded::Other => {
                let accounts = accounts.to_vec();
                let changes = changes.to_vec();
                self.db
                    .write(tenant, async move |tx| {
                        store::import::insert_many(tx.conn(), tx.tenant(), &accounts).await?;
                        store::touch_mix::record(tx.conn(), tx.tenant(), &changes).await?;
                        tx.emit_all(accounts.iter().map(events::account_created)).await
                    })
                    .await
            }
        }
    }
}

/// Sends the parsed chunks on, up to the channel's capacity ahead; ends
/// with the stream, after its first error, or when the import stops
/// listening.
async fn read_ahead(
    chunks: impl Stream<Item = Result<AccountChunk>>,
    tx: tokio::sync::mpsc::Sender<Result<AccountChunk>>,
) {
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let broken = chunk.is_err();
        if tx.send(chunk).await.is_err() || broken {
            return;
        }
    }
}

/// An import chunk looked up and sorted, its first round ready to write.
struct PreparedImport {
    tenant: String,
    /// Who imports: the setter of the touch mixes it writes.
    subject: String,
    /// The chunk's rows and refused rows.
    tally: ImportTally,
    /// Per valid row: its index in the stream, its external_id, its fields
    /// until a round takes them, its result once written.
    index: Vec<i64>,
    external_ids: Vec<String>,
    fields: Vec<Option<crate::domain::AccountFields>>,
    results: Vec<Option<Result<RowOutcome>>>,
    /// Rows for later rounds (their external_id came earlier).
    pending: Vec<usize>,
    first: Option<Round>,
}

/// One round of an import: each external_id at most once.
struct Round {
    /// Changed rows: index, the stored account's id, the new fields.
    updates: Vec<(usize, Uuid, crate::domain::AccountFields)>,
    /// Indexes of the new rows, and their accounts.
    creates: Vec<usize>,
    accounts: Vec<Account>,
    /// The first history row of each new account (its mix, who set it).
    changes: Vec<MixChange>,
    encoded: Encoded,
}

/// New accounts encoded for their write ahead of the transaction, so it
/// holds its connection only while the database works.
enum Encoded {
    /// Each column as one typed array, the events as outbox rows.
    Postgres(Box<(store::import::PgRows, PgBatch)>),
    /// Rows and events go through sea-orm in the transaction.
    Other,
}

impl Encoded {
    fn new(tenant: &str, changes: &[MixChange], accounts: &[Account], postgres: bool) -> Result<Encoded> {
        if !postgres || accounts.is_empty() {
            return Ok(Encoded::Other);
        }
        let envelopes: Vec<Envelope> = accounts
            .iter()
            .map(|a| banso_events::envelope::new(tenant, crate::NAME, events::account_created(a)))
            .collect();
        Ok(Encoded::Postgres(Box::new((store::import::PgRows::new(accounts, changes)?, PgBatch::new(&envelopes)))))
    }
}

/// A chunk being written, in a task of its own so the next chunk can be
/// prepared meanwhile; aborted if the call ends first.
struct ChunkWrite {
    external_ids: HashSet<String>,
    task: AbortOnDrop<Result<Written>>,
}

impl ChunkWrite {
    fn start(app: App, prepared: PreparedImport) -> ChunkWrite {
        let external_ids = prepared.external_ids.iter().cloned().collect();
        let task = tokio::spawn(async move { app.finish_import(prepared).await }.instrument(tracing::Span::current()));
        ChunkWrite { external_ids, task: AbortOnDrop(task) }
    }

    /// Whether `chunk` has rows this write may create or change.
    fn touches(&self, chunk: &AccountChunk) -> bool {
        chunk.valid.iter().any(|r| self.external_ids.contains(r.fields.external_id.as_deref().unwrap_or_default()))
    }

    /// Waits for the write and counts the chunk.
    async fn finish(mut self, tally: &mut ImportTally) -> Result<()> {
        let (chunk, outcomes) = (&mut self.task.0).await.map_err(Error::internal)??;
        tally.rows += chunk.rows;
        tally.failed += chunk.failed;
        tally.errors.extend(chunk.errors.into_iter().take(MAX_ERRORS.saturating_sub(tally.errors.len())));
        for (row, external_id, outcome) in outcomes {
            tally.outcome(row, &external_id, outcome);
        }
        Ok(())
    }
}

/// Aborts a task when dropped (the call it works for ended).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use banso_events::outbox::{self, OutboxSignal};
    use banso_kit::auth::Role;
    use chrono::NaiveDate;
    use sea_orm::{EntityTrait, PaginatorTrait};

    use super::*;
    use crate::{
        app::CreateAccount,
        domain::{AccountFields, LifecycleStage, Money, TouchModel},
        store::entities::{account, account_tag},
    };

    fn fields(external_id: &str, tags: &[&str]) -> AccountFields {
        AccountFields {
            name: format!("株式会社 {external_id}"),
            external_id: Some(external_id.to_owned()),
            industry: "manufacturing".into(),
            employee_count: None,
            revenue_band: "1-10M".into(),
            region: "Kanto".into(),
            plan_tier: "growth".into(),
            lifecycle_stage: LifecycleStage::Adoption,
            touch_model: TouchModel::Low,
            touch_mix: crate::domain::single_mix(TouchModel::Low),
            touch_mix_manual: false,
            owner_id: "u-1".into(),
            arr: Some(Money { currency_code: "JPY".into(), amount_minor: 1_200_000 }),
            contract_start_date: None,
            renewal_date: NaiveDate::from_ymd_opt(2027, 3, 31),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            custom_attributes: Default::default(),
        }
    }

    /// A bulk create that runs into an existing external_id fails as
    /// ALREADY_EXISTS (so the import retries its rows one by one) and leaves
    /// nothing behind: no account, tag or event of the batch.
    #[tokio::test]
    async fn a_bulk_create_that_collides_writes_nothing() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
        let app = App::new(banso_events::Db::new(conn.clone(), OutboxSignal::default(), crate::NAME));
        let caller = Caller { tenant_id: "acme".into(), subject: "test".into(), roles: vec![Role::Admin] };
        app.create_account(&caller, CreateAccount { request_id: None, fields: fields("crm-1", &[]) }).await.unwrap();
        let t = wire::now();
        let batch: Vec<Account> = [fields("crm-2", &["vip", "apac"]), fields("crm-1", &["vip"])]
            .into_iter()
            .map(|fields| Account { id: Uuid::now_v7(), fields, create_time: t, update_time: t, version: 1 })
            .collect();
        let changes: Vec<MixChange> = batch.iter().map(|a| MixChange::manual(a, "test")).collect();
        let encoded = Encoded::new("acme", &changes, &batch, banso_kit::db::is_postgres(&conn)).unwrap();
        let err = app.create_many("acme", &changes, &batch, encoded).await.unwrap_err();
        assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
        assert_eq!(account::Entity::find().count(&conn).await.unwrap(), 1);
        assert_eq!(account_tag::Entity::find().count(&conn).await.unwrap(), 0);
        assert_eq!(outbox::entity::Entity::find().count(&conn).await.unwrap(), 1);

        // The import itself gets the rows right: crm-2 created, crm-1 updated.
        let valid = vec![
            AccountRow { row: 0, fields: fields("crm-2", &["vip", "apac"]) },
            AccountRow { row: 1, fields: fields("crm-1", &["vip"]) },
        ];
        let chunk = Chunk { rows: 2, valid, refused: Vec::new() };
        let tally = app.import_accounts(&caller, futures::stream::iter([Ok(chunk)])).await.unwrap();
        assert_eq!((tally.rows, tally.created, tally.updated, tally.failed), (2, 1, 1, 0));
        let stored = store::accounts::find_by_external_id(&conn, "acme", "crm-2").await.unwrap().unwrap();
        assert_eq!(stored.fields, fields("crm-2", &["vip", "apac"]), "every column round-trips");
        assert_eq!(account_tag::Entity::find().count(&conn).await.unwrap(), 3);
        assert_eq!(outbox::entity::Entity::find().count(&conn).await.unwrap(), 3);
    }
}
