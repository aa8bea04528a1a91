//! Recompute jobs on the wire.

use banso_kit::{Result, idempotency, wire};
use banso_proto::health as pb;
use uuid::Uuid;

use crate::store::jobs::{Job, JobState};

/// StartRecompute's optional request id.
pub(crate) fn start(r: &pb::StartRecomputeRequest) -> Result<Option<&str>> {
    idempotency::optional("request_id", &r.request_id)
}

pub(crate) fn get(r: &pb::GetRecomputeJobRequest) -> Result<Uuid> {
    wire::uuid("id", &r.id)
}

pub(crate) fn to_proto(j: &Job) -> pb::RecomputeJob {
    use pb::recompute_job::State;
    pb::RecomputeJob {
        id: j.id.to_string(),
        state: match j.state {
            JobState::Queued => State::Queued,
            JobState::Running => State::Running,
            JobState::Succeeded => State::Succeeded,
            JobState::Failed => State::Failed,
        } as i32,
        trigger: j.trigger.as_str().to_owned(),
        accounts_total: j.accounts_total,
        accounts_done: j.accounts_done,
        accounts_scored: j.accounts_scored,
        scores_changed: j.scores_changed,
        create_time: Some(wire::timestamp(j.create_time)),
        start_time: j.start_time.map(wire::timestamp),
        end_time: j.end_time.map(wire::timestamp),
        error: j.error.clone(),
    }
}
