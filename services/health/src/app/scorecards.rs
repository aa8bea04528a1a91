//! Scorecards: created once per request id, updated as new versions; either
//! way the recompute that rescores the tenant is queued in the same
//! transaction, so no version exists without the job that applies it.

use banso_events::db::RequestKey;
use banso_kit::{Result, Violations, auth::Caller, paging::QueryKey, wire};
use uuid::Uuid;

use super::{App, PageRequest};
use crate::{
    domain::scorecard::{Bands, Scope, ScorecardDef, WeightedMeasure, validate},
    store::{self, jobs::Trigger, scorecards::StoredScorecard},
};

/// CreateScorecard: a valid scorecard, and the request's idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreateScorecard {
    pub def: ScorecardDef,
    pub request_id: Option<String>,
}

/// The fields UpdateScorecard's mask names, with their new values (fields
/// not named stay as stored).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScorecardChanges {
    pub name: Option<String>,
    pub scope: Option<Scope>,
    pub measures: Option<Vec<WeightedMeasure>>,
    pub bands: Option<Bands>,
}

impl ScorecardChanges {
    fn apply(&self, def: &mut ScorecardDef) {
        if let Some(name) = &self.name {
            def.name = name.clone();
        }
        if let Some(scope) = &self.scope {
            def.scope = scope.clone();
        }
        if let Some(measures) = &self.measures {
            def.measures = measures.clone();
        }
        if let Some(bands) = self.bands {
            def.bands = bands;
        }
    }
}

/// UpdateScorecard: which scorecard, the version the caller read (if it
/// says), the changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UpdateScorecard {
    pub id: Uuid,
    pub etag: Option<i64>,
    pub changes: ScorecardChanges,
}

/// `def` if it breaks no rule of [`validate`], else INVALID_ARGUMENT naming
/// every bad field under `scorecard.`.
pub(crate) fn valid(def: ScorecardDef) -> Result<ScorecardDef> {
    let mut v = Violations::new();
    for (field, description) in validate(&def) {
        v.add(format!("scorecard.{field}"), description);
    }
    v.finish()?;
    Ok(def)
}

impl App {
    /// Creates a scorecard (version 1) and queues the recompute that scores
    /// its accounts, in one transaction; a `request_id` seen before returns
    /// the scorecard it created.
    pub(crate) async fn create_scorecard(&self, caller: &Caller, cmd: CreateScorecard) -> Result<StoredScorecard> {
        let tenant = caller.tenant_id.as_str();
        let key = cmd.request_id.as_deref().map(|request_id| RequestKey { operation: "CreateScorecard", request_id });
        let (conn, owner) = (self.db.conn().clone(), caller.tenant_id.clone());
        let card = self
            .db
            .create_once(
                tenant,
                key,
                // Owned captures, as in `update_scorecard`.
                async move |id: &str| {
                    let id = banso_events::db::remembered(id)?;
                    store::scorecards::get_version(&conn, &owner, id, None).await
                },
                async |tx| {
                    let now = wire::now();
                    let card = StoredScorecard {
                        id: Uuid::now_v7(),
                        version: 1,
                        def: cmd.def.clone(),
                        create_time: now,
                        update_time: now,
                    };
                    store::scorecards::create(tx.conn(), tenant, &card).await?;
                    store::jobs::queue(tx.conn(), tenant, Trigger::Scorecard).await?;
                    Ok(card)
                },
            )
            .await?;
        self.recompute.wake();
        Ok(card)
    }

    /// A scorecard's current version, or a past one.
    pub(crate) async fn get_scorecard(
        &self,
        caller: &Caller,
        id: Uuid,
        version: Option<i64>,
    ) -> Result<StoredScorecard> {
        store::scorecards::get_version(self.db.conn(), &caller.tenant_id, id, version).await
    }

    /// Current versions, oldest first, a page at a time.
    pub(crate) async fn list_scorecards(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<(Vec<StoredScorecard>, String)> {
        let key = QueryKey::new("ListScorecards", &caller.tenant_id);
        let after: Option<Uuid> = self.page_tokens.decode(&key, &page.token)?;
        let rows = store::scorecards::list(self.db.conn(), &caller.tenant_id, after, Some(page.size + 1)).await?;
        self.page_tokens.page(&key, rows, page.size, |last| last.id)
    }

    /// Makes the changed scorecard its next version and queues the
    /// recompute that applies it, in one transaction (a change that changes
    /// nothing writes nothing). With an etag, a stale one is ABORTED;
    /// without, a lost race is retried ([`banso_events::Db::update_versioned`]).
    pub(crate) async fn update_scorecard(&self, caller: &Caller, cmd: UpdateScorecard) -> Result<StoredScorecard> {
        // The closures own what they use: a future of a closure called more
        // than once that borrowed the caller's values could not be proven
        // `Send` for every lifetime (rust-lang/rust#110338).
        let tenant = caller.tenant_id.clone();
        let conn = self.db.conn().clone();
        let (id, changes) = (cmd.id, cmd.changes);
        let card = self
            .db
            .update_versioned(
                &caller.tenant_id,
                &format!("scorecard {id}"),
                cmd.etag,
                {
                    let tenant = tenant.clone();
                    async move || store::scorecards::get_version(&conn, &tenant, id, None).await
                },
                |card| {
                    let mut def = card.def.clone();
                    changes.apply(&mut def);
                    card.def = valid(def)?;
                    Ok(())
                },
                async move |tx, current, next| {
                    if !store::scorecards::update(tx.conn(), &tenant, current, next).await? {
                        return Ok(false);
                    }
                    store::jobs::queue(tx.conn(), &tenant, Trigger::Scorecard).await?;
                    Ok(true)
                },
            )
            .await?;
        self.recompute.wake();
        Ok(card)
    }
}

#[cfg(test)]
mod tests {
    use banso_kit::auth::Role;
    use sea_orm::ConnectionTrait;

    use super::*;
    use crate::domain::scorecard::{Direction, MissingData, Normalisation};

    fn caller() -> Caller {
        Caller { tenant_id: "acme".into(), subject: "test".into(), roles: vec![Role::Admin] }
    }

    fn def(name: &str) -> ScorecardDef {
        ScorecardDef {
            name: name.into(),
            scope: Scope::All,
            measures: vec![WeightedMeasure {
                measure: "external:nps".into(),
                weight: 1.0,
                normalisation: Normalisation::Linear { min: 0.0, max: 100.0 },
                direction: Direction::HigherIsBetter,
                missing: MissingData::SkipAndReweight,
            }],
            bands: Bands::default(),
        }
    }

    /// The new version and its recompute job commit together: when the job
    /// cannot be queued (its table is gone, as a crash between two
    /// transactions would have left it), no new version is written either.
    #[tokio::test]
    async fn a_new_version_never_exists_without_its_recompute_job() {
        let guard = banso_testkit::fresh_database().await.unwrap();
        let app = crate::testing::app(&guard).await;
        let card = app.create_scorecard(&caller(), CreateScorecard { def: def("v1"), request_id: None }).await.unwrap();
        let renamed = ScorecardChanges { name: Some("v2".into()), ..Default::default() };
        let update = UpdateScorecard { id: card.id, etag: None, changes: renamed };

        let conn = app.db.conn();
        conn.execute_unprepared("ALTER TABLE recompute_jobs RENAME TO recompute_jobs_away").await.unwrap();
        let failed = app.update_scorecard(&caller(), update.clone()).await;
        assert!(failed.is_err(), "the job cannot be queued: {failed:?}");
        let now = app.get_scorecard(&caller(), card.id, None).await.unwrap();
        assert_eq!((now.version, now.def.name.as_str()), (1, "v1"), "no version without its job");
        assert!(app.get_scorecard(&caller(), card.id, Some(2)).await.is_err());

        conn.execute_unprepared("ALTER TABLE recompute_jobs_away RENAME TO recompute_jobs").await.unwrap();
        let v2 = app.update_scorecard(&caller(), update).await.unwrap();
        assert_eq!(v2.version, 2);
        let jobs = conn
            .query_all_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                "SELECT trigger FROM recompute_jobs WHERE state = 'queued'",
            ))
            .await
            .unwrap();
        let triggers: Vec<String> = jobs.iter().map(|r| r.try_get("", "trigger").unwrap()).collect();
        assert_eq!(triggers, ["scorecard"], "one queued job covers the create and the update");
    }
}
