//! CS = CO + CX on the wire: GetSuccessAxes.

use banso_kit::{
    Violations,
    auth::Access,
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::feedback as pb;
use tonic::Request;

use crate::{
    api::convert::range,
    app::App,
    domain::axes::{AccountAxes, Cell, SuccessAxes},
    events::{cx_to_proto, phase_to_proto},
};

pub(super) async fn get_success_axes(
    app: &App,
    _kit: &Kit,
    req: Request<pb::GetSuccessAxesRequest>,
) -> Rpc<pb::SuccessAxes> {
    handle(req, Access::Read, async |caller, r| {
        let mut v = Violations::new();
        let segment = v.take(wire::optional_uuid("segment_id", &r.segment_id));
        let range = range(&mut v, r.start_time.as_ref(), r.end_time.as_ref());
        let segment = v.finish_with(segment)?;
        Ok(to_proto(app.success_axes(&caller, segment, range).await?))
    })
    .await
}

fn account_to_proto(a: AccountAxes) -> pb::AccountAxes {
    pb::AccountAxes {
        account_id: a.account_id.to_string(),
        display_name: a.display_name,
        outcome: a.axes.outcome,
        outcome_source: a.axes.outcome_source.map(|s| s.as_str().to_string()).unwrap_or_default(),
        experience: a.axes.experience,
        outcome_evidence: a.axes.outcome_evidence,
        experience_evidence: a.axes.experience_evidence,
    }
}

fn cell_to_proto(c: &Cell) -> pb::CoverageCell {
    pb::CoverageCell { dimension: cx_to_proto(Some(c.dimension)), phase: phase_to_proto(Some(c.phase)), items: c.items }
}

fn to_proto(s: SuccessAxes) -> pb::SuccessAxes {
    pb::SuccessAxes {
        coverage: s.coverage.iter().map(cell_to_proto).collect(),
        accounts: s.accounts.into_iter().map(account_to_proto).collect(),
        mean_outcome: s.mean_outcome,
        mean_experience: s.mean_experience,
        uncovered_cells: s.uncovered_cells,
    }
}
