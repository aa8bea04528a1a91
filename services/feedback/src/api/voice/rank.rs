//! Target selection on the wire: RankThemes.

use banso_kit::{
    Violations,
    auth::Access,
    rpc::{Rpc, handle},
    server::Kit,
    wire,
};
use banso_proto::{feedback as pb, types::Money};
use tonic::Request;

use crate::{
    app::{
        App,
        voice::rank::{RankThemes, Ranking},
    },
    domain::rank::{MAX_WEIGHT, Quadrant, Ranked, Weights, WeightsGiven},
};

pub(super) async fn rank_themes(
    app: &App,
    _kit: &Kit,
    req: Request<pb::RankThemesRequest>,
) -> Rpc<pb::RankThemesResponse> {
    handle(req, Access::Read, async |caller, r| {
        let cmd = parse(&r)?;
        Ok(to_proto(app.rank_themes(&caller, cmd).await?))
    })
    .await
}

fn parse(r: &pb::RankThemesRequest) -> banso_kit::Result<RankThemes> {
    let mut v = Violations::new();
    let segment = v.take(wire::optional_uuid("segment_id", &r.segment_id)).flatten();
    let weights = r.weights.as_ref().map(|w| weights_given(&mut v, "weights", w)).unwrap_or_default();
    v.finish()?;
    Ok(RankThemes { segment, weights })
}

/// The weights given, each finite and 0–10.
pub(super) fn weights_given(v: &mut Violations, field: &str, w: &pb::RankWeights) -> WeightsGiven {
    let mut one = |name: &str, x: Option<f64>| {
        let x = x?;
        if x.is_finite() && (0.0..=MAX_WEIGHT).contains(&x) {
            Some(x)
        } else {
            v.add(format!("{field}.{name}"), format!("must be 0 to {MAX_WEIGHT}, got {x}"));
            None
        }
    };
    WeightsGiven {
        impact: one("impact", w.impact),
        contribution: one("contribution", w.contribution),
        cost: one("cost", w.cost),
        arr: one("arr", w.arr),
    }
}

pub(super) fn weights_to_proto(w: &Weights) -> pb::RankWeights {
    pb::RankWeights { impact: Some(w.impact), contribution: Some(w.contribution), cost: Some(w.cost), arr: Some(w.arr) }
}

fn quadrant_to_proto(q: Quadrant) -> pb::Quadrant {
    match q {
        Quadrant::ActNow => pb::Quadrant::ActNow,
        Quadrant::WidenConsultation => pb::Quadrant::WidenConsultation,
        Quadrant::BuildCapability => pb::Quadrant::BuildCapability,
        Quadrant::Last => pb::Quadrant::Last,
    }
}

fn money(xs: &[(String, i64)]) -> Vec<Money> {
    xs.iter().map(|(code, minor)| Money { currency_code: code.clone(), amount_minor: *minor }).collect()
}

fn ranked_to_proto(r: &Ranked) -> pb::RankedTheme {
    let f = &r.factors;
    pb::RankedTheme {
        theme_id: r.theme_id.to_string(),
        display_name: r.display_name.clone(),
        accounts: f.accounts,
        segment_accounts: f.segment_accounts,
        contacts: f.contacts,
        segment_contacts: f.segment_contacts,
        generality: f.generality,
        span_days: f.span_days,
        month_coverage: f.month_coverage,
        longevity: f.longevity,
        mean_severity: f.mean_severity,
        at_risk_share: f.at_risk_share,
        lenses: f.lenses,
        severity: f.severity,
        impact: f.impact,
        quadrant: quadrant_to_proto(f.quadrant) as i32,
        champion_share: f.champion_share,
        relationship: f.relationship,
        opportunity: f.opportunity,
        ease: f.ease,
        contribution: f.contribution,
        cost: f.cost,
        priority: f.priority,
        arr: money(&r.arr),
        arr_at_risk: money(&r.arr_at_risk),
    }
}

fn to_proto(r: Ranking) -> pb::RankThemesResponse {
    pb::RankThemesResponse {
        themes: r.themes.iter().map(ranked_to_proto).collect(),
        weights: Some(weights_to_proto(&r.weights)),
    }
}
