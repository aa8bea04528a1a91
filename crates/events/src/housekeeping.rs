//! The hourly pruning every service needs, written once: inbox claims (a
//! redelivery comes within minutes; a month is far past it), `request_id`
//! keys (a retry comes within minutes; a week), and whatever tables of its
//! own the service prunes, each in batches until done.

use std::time::Duration;

use banso_kit::supervise::Supervisor;
use futures::future::BoxFuture;
use sea_orm::DatabaseConnection;

/// How long an inbox claim is kept.
pub const INBOX_RETENTION: chrono::Duration = chrono::Duration::days(30);
/// How long a `request_id` key is kept.
pub const REQUEST_ID_RETENTION: chrono::Duration = chrono::Duration::days(7);
/// How often the pruning runs.
const EVERY: Duration = Duration::from_secs(3600);

/// A service's own pruning step: deletes one batch, returns how many rows
/// went (0 when done).
pub type Step = Box<dyn Fn(DatabaseConnection) -> BoxFuture<'static, anyhow::Result<u64>> + Send + Sync>;

/// Runs the pruning of service `name` (`accounts`; the task is
/// `accounts-housekeeping`) under the supervisor, reporting to the gRPC
/// service `service`, at start and then every hour: each of `steps` (named,
/// for the log) until it deletes nothing, then the inbox and the
/// `request_id` keys.
pub fn supervise(
    supervisor: &Supervisor,
    service: &'static str,
    name: &str,
    conn: DatabaseConnection,
    steps: Vec<(&'static str, Step)>,
) {
    let steps = std::sync::Arc::new(steps);
    supervisor.spawn(service, format!("{name}-housekeeping"), move |shutdown| {
        let (conn, steps) = (conn.clone(), steps.clone());
        async move {
            loop {
                for (what, step) in steps.iter() {
                    loop {
                        match step(conn.clone()).await {
                            Ok(n) if n > 0 && !shutdown.is_cancelled() => tracing::debug!(what, deleted = n, "pruned"),
                            Ok(_) => break,
                            Err(e) => {
                                tracing::warn!(what, error = %e, "pruning failed");
                                break;
                            }
                        }
                    }
                }
                match crate::inbox::prune(&conn, INBOX_RETENTION).await {
                    Ok(n) if n > 0 => tracing::debug!(deleted = n, "pruned inbox claims"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning the inbox failed"),
                }
                match banso_kit::idempotency::prune(&conn, REQUEST_ID_RETENTION).await {
                    Ok(n) if n > 0 => tracing::debug!(deleted = n, "pruned request ids"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning request ids failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use sea_orm_migration::{MigrationTrait, MigratorTrait};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{envelope, envelope::Payload, inbox};

    struct Migrator;

    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            vec![Box::new(banso_kit::idempotency::Migration), Box::new(inbox::Migration)]
        }
    }

    /// At start: a service's step runs until it deletes nothing, and inbox
    /// claims past the retention go while younger ones stay.
    #[tokio::test]
    async fn steps_run_to_the_end_and_old_inbox_claims_go() {
        let db = banso_testkit::fresh_database().await.unwrap();
        let conn = db.connect::<Migrator>("housekeeping").await.unwrap();
        let (old, new) = (
            envelope::new("t1", "test", Payload::AccountDeleted(Default::default())),
            envelope::new("t1", "test", Payload::AccountDeleted(Default::default())),
        );
        assert!(inbox::claim(&conn, "c", &old).await.unwrap());
        assert!(inbox::claim(&conn, "c", &new).await.unwrap());
        let aged = chrono::Utc::now() - INBOX_RETENTION - chrono::Duration::days(1);
        inbox::entity::Entity::update_many()
            .col_expr(inbox::entity::Column::ProcessedTime, sea_orm::sea_query::Expr::value(aged))
            .filter(inbox::entity::Column::EventId.eq(old.id.clone()))
            .exec(&conn)
            .await
            .unwrap();
        // A step with three batches to delete.
        let left = Arc::new(AtomicU64::new(3));
        let calls = Arc::new(AtomicU64::new(0));
        let (l, c) = (left.clone(), calls.clone());
        let step: Step = Box::new(move |_| {
            let (l, c) = (l.clone(), c.clone());
            Box::pin(async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(if l.load(Ordering::SeqCst) > 0 { l.fetch_sub(1, Ordering::SeqCst).min(1) } else { 0 })
            })
        });
        let shutdown = CancellationToken::new();
        let supervisor = Supervisor::new(shutdown.clone());
        supervise(&supervisor, "test.v1.Test", "test", conn.clone(), vec![("things", step)]);
        banso_testkit::eventually("the first round", Duration::from_secs(10), || {
            let conn = conn.clone();
            async move { (inbox::entity::Entity::find().count(&conn).await.ok()? == 1).then_some(()) }
        })
        .await;
        assert_eq!(left.load(Ordering::SeqCst), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 4, "three batches, then one that deleted nothing");
        shutdown.cancel();
    }
}
