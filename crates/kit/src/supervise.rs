//! Background tasks under one supervisor: the outbox relay, consumers, the
//! live scorer, rollups, jobs, housekeeping — every long-running task of a
//! service runs through [`Supervisor::spawn`].
//!
//! A task that dies (returns an error, returns at all before shutdown, or
//! panics) is logged with its name and cause, counted in
//! `banso_task_restarts_total{task}`, and started again after an
//! exponential backoff (100 ms doubling to 30 s, reset once a run lasted a
//! minute). While any task of a service is down, that service reports
//! NOT_SERVING on `grpc.health.v1` (the server watches [`Supervisor::watch`]);
//! it reports SERVING again once the restarted task has run for
//! [`UP_AFTER`] without dying, so a task that crashes at once keeps its
//! service out of rotation instead of flapping it.
//!
//! The same map holds a service's failing dependencies
//! ([`Supervisor::set_condition`]: its database unreachable, its bus
//! disconnected too long), so readiness has one source of truth.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::Arc,
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub const TASK_RESTARTS_TOTAL: &str = "banso_task_restarts_total";
pub const TASKS_DOWN: &str = "banso_tasks_down";

/// How long a restarted task must run before its service is SERVING again.
pub const UP_AFTER: Duration = Duration::from_secs(1);
/// A run this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The tasks that are down, by the gRPC service they belong to.
pub type Down = BTreeMap<&'static str, BTreeSet<String>>;

/// Runs a process's background tasks and knows which are down.
#[derive(Clone)]
pub struct Supervisor {
    shutdown: CancellationToken,
    down: Arc<watch::Sender<Down>>,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken) -> Self {
        Supervisor { shutdown, down: Arc::new(watch::Sender::new(Down::new())) }
    }

    /// The token that stops every task (and the server).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Changes to the set of tasks that are down.
    pub fn watch(&self) -> watch::Receiver<Down> {
        self.down.subscribe()
    }

    /// Whether a task of `service` is down now.
    pub fn is_down(&self, service: &str) -> bool {
        self.down.borrow().get(service).is_some_and(|t| !t.is_empty())
    }

    /// Runs `run` as task `name` of the gRPC service `service` until
    /// shutdown, starting it again whenever it dies. `run` gets the shutdown
    /// token and should return `Ok(())` once it fires.
    pub fn spawn<F, Fut>(
        &self,
        service: &'static str,
        name: impl Into<String>,
        mut run: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let this = self.clone();
        metrics::counter!(TASK_RESTARTS_TOTAL, "task" => name.clone()).increment(0);
        metrics::gauge!(TASKS_DOWN, "service" => service).set(0.0);
        tokio::spawn(async move {
            let mut failures = 0u32;
            let mut marked_down = false;
            loop {
                if this.shutdown.is_cancelled() {
                    this.mark(service, &name, false);
                    return;
                }
                let started = tokio::time::Instant::now();
                let span = tracing::info_span!("task", task = %name);
                let mut handle = tokio::spawn(run(this.shutdown.clone()).instrument(span));
                let outcome = if marked_down {
                    tokio::select! {
                        r = &mut handle => r,
                        _ = tokio::time::sleep(UP_AFTER) => {
                            this.mark(service, &name, false);
                            handle.await
                        }
                    }
                } else {
                    handle.await
                };
                if this.shutdown.is_cancelled() {
                    this.mark(service, &name, false);
                    return;
                }
                let cause = match outcome {
                    Ok(Ok(())) => "it returned before shutdown".to_owned(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) if e.is_panic() => format!("panic: {}", panic_message(e.into_panic().as_ref())),
                    Err(e) => e.to_string(),
                };
                if started.elapsed() >= STABLE_AFTER {
                    failures = 0;
                }
                failures += 1;
                let wait = backoff(failures);
                tracing::error!(task = %name, service, cause, retry_in_ms = wait.as_millis() as u64, "background task died; restarting");
                metrics::counter!(TASK_RESTARTS_TOTAL, "task" => name.clone()).increment(1);
                this.mark(service, &name, true);
                marked_down = true;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = this.shutdown.cancelled() => {}
                }
            }
        })
    }

    /// Marks `service` NOT_SERVING for `reason` (a dependency it cannot do
    /// without: "database unreachable", "bus disconnected"), or clears it.
    /// Health and `/readyz` follow it as they follow dead tasks; each flip is
    /// logged once.
    pub fn set_condition(&self, service: &'static str, reason: &str, failing: bool) {
        let changed = self.down.send_if_modified(|all| {
            let reasons = all.entry(service).or_default();
            if failing { reasons.insert(reason.to_owned()) } else { reasons.remove(reason) }
        });
        if changed && failing {
            tracing::warn!(service, reason, "not ready");
        } else if changed {
            tracing::info!(service, reason, "ready again");
        }
    }

    /// Why some service is not ready (`service: reason` lines), or `None`
    /// when every one is.
    pub fn not_ready(&self) -> Option<String> {
        let down = self.down.borrow();
        let lines: Vec<String> =
            down.iter().flat_map(|(service, reasons)| reasons.iter().map(move |r| format!("{service}: {r}"))).collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn mark(&self, service: &'static str, task: &str, down: bool) {
        self.down.send_if_modified(|all| {
            let tasks = all.entry(service).or_default();
            let changed = if down { tasks.insert(task.to_owned()) } else { tasks.remove(task) };
            metrics::gauge!(TASKS_DOWN, "service" => service).set(tasks.len() as f64);
            changed
        });
    }
}

fn backoff(failures: u32) -> Duration {
    BACKOFF_FIRST.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1))).min(BACKOFF_MAX)
}

/// The text of a panic's payload (`panic!("…")` carries a `&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(100), BACKOFF_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_task_is_restarted_and_its_service_is_down_meanwhile() {
        let sup = Supervisor::new(CancellationToken::new());
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        sup.spawn("svc", "flaky", move |stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("first run panics"),
                    1 => anyhow::bail!("second run fails"),
                    _ => {
                        stop.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        let mut watch = sup.watch();
        // Down after the panic…
        watch.wait_for(|d| d.get("svc").is_some_and(|t| t.contains("flaky"))).await.unwrap();
        assert!(sup.is_down("svc"));
        // …and up once the third run has lasted UP_AFTER.
        watch.wait_for(|d| d.get("svc").is_some_and(|t| t.is_empty())).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert!(!sup.is_down("svc"));
        sup.shutdown().cancel();
    }
}
