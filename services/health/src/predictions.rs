//! Each account's stored probability of a model's target, and the bucket
//! moves published as events: the one write of predictions, shared by a
//! training (every live account, in the transaction that keeps the model)
//! and the live scorer (the accounts whose measures moved, in the
//! transaction that stores their scores).

use std::collections::HashMap;

use banso_events::db::Tx;
use banso_kit::Result;
use uuid::Uuid;

use crate::{
    domain::churn_model::{Held, Scored, Target, Trained},
    events, store,
};

/// The stored predictions of `target`: of `accounts`, or of every account.
pub(crate) async fn held(
    conn: &impl sea_orm::ConnectionTrait,
    tenant: &str,
    target: Target,
    accounts: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, Held>> {
    match target {
        Target::Churn => store::churn_risk::held(conn, tenant, accounts).await,
        t => store::expansion_signal::held(conn, tenant, t, accounts).await,
    }
}

/// The accounts of `scored` whose bucket differs from the one `held` (or
/// that had none): each moves its ChurnRiskChanged or
/// ExpansionSignalChanged.
pub(crate) fn moves<'a>(held: &HashMap<Uuid, Held>, scored: &'a [Scored]) -> Vec<&'a Scored> {
    scored.iter().filter(|(a, _, b, _)| held.get(a).map(|h| h.bucket) != Some(*b)).collect()
}

/// Stores `scored` as model `version` (`model`) scored it, and publishes
/// every bucket move against `held` through the outbox, in `tx`. Returns
/// the moves published.
pub(crate) async fn record(
    tx: &Tx,
    model: &Trained,
    version: i64,
    scored: &[Scored],
    held: &HashMap<Uuid, Held>,
) -> Result<u64> {
    if scored.is_empty() {
        return Ok(0);
    }
    match model.target {
        Target::Churn => store::churn_risk::upsert(tx.conn(), tx.tenant(), version, scored).await?,
        t => store::expansion_signal::upsert(tx.conn(), tx.tenant(), t, version, scored).await?,
    }
    let payloads: Vec<_> = moves(held, scored)
        .into_iter()
        .map(|(a, p, _, reasons)| {
            let old = held.get(a).map(|h| h.bucket);
            match model.target {
                Target::Churn => events::churn_risk_changed(*a, old, *p, model, version, reasons.clone()),
                _ => events::expansion_signal_changed(*a, old, *p, model, version, reasons.clone()),
            }
        })
        .collect();
    let n = payloads.len() as u64;
    if n > 0 {
        tx.emit_all(payloads).await?;
    }
    Ok(n)
}
