//! Scorecards on the wire: requests parsed into commands, stored versions
//! into replies.

use banso_kit::{Result, Violations, etag, fieldmask, idempotency, paging, wire};
use banso_proto::health as pb;
use uuid::Uuid;

use crate::{
    app::{
        PageRequest,
        scorecards::{CreateScorecard, ScorecardChanges, UpdateScorecard},
    },
    domain::scorecard::{
        Bands, Direction, MissingData, Normalisation, Scope, ScorecardDef, Threshold, WeightedMeasure, validate,
    },
    store::scorecards::StoredScorecard,
};

banso_kit::field_paths! {
    /// What UpdateScorecard's mask may name.
    pub(crate) enum ScorecardField { Name = "name", Scope = "scope", Measures = "measures", Bands = "bands" }
}

fn name(p: &pb::Scorecard) -> String {
    p.name.trim().to_owned()
}

/// The scope; a bad one is a violation (and `None`).
fn scope(v: &mut Violations, p: &pb::Scorecard) -> Option<Scope> {
    use pb::scope::Kind;
    match p.scope.as_ref().and_then(|s| s.kind.as_ref()) {
        None => Some(Scope::All),
        Some(Kind::SegmentId(s)) => {
            v.take(wire::uuid("scorecard.scope.segment_id", s)).map(|id| Scope::Segment(id.to_string()))
        }
        Some(Kind::LifecycleStage(s)) => {
            wire::lifecycle_stage(v, "scorecard.scope.lifecycle_stage", *s).map(Scope::LifecycleStage)
        }
        Some(Kind::TouchModel(t)) => wire::touch_model(v, "scorecard.scope.touch_model", *t).map(Scope::TouchModel),
    }
}

/// The measures as written; each bad enum or missing normalisation is a
/// violation (the measure then takes a stand-in, so the scorecard's other
/// rules can still be checked and every bad field named at once).
fn measures(v: &mut Violations, p: &pb::Scorecard) -> Vec<WeightedMeasure> {
    let mut out = Vec::with_capacity(p.measures.len());
    for (i, m) in p.measures.iter().enumerate() {
        let normalisation = match m.normalisation.as_ref().and_then(|n| n.kind.as_ref()) {
            Some(pb::normalisation::Kind::Thresholds(t)) => Normalisation::Thresholds(
                t.thresholds.iter().map(|x| Threshold { at: x.at, points: x.points }).collect(),
            ),
            Some(pb::normalisation::Kind::Linear(l)) => Normalisation::Linear { min: l.min, max: l.max },
            Some(pb::normalisation::Kind::Percentile(_)) => Normalisation::Percentile,
            None => {
                v.add(
                    format!("scorecard.measures[{i}].normalisation"),
                    "is required: thresholds, linear or percentile",
                );
                Normalisation::Percentile
            }
        };
        let direction = match pb::Direction::try_from(m.direction) {
            Ok(pb::Direction::LowerIsBetter) => Direction::LowerIsBetter,
            Ok(pb::Direction::Unspecified | pb::Direction::HigherIsBetter) => Direction::HigherIsBetter,
            Err(_) => {
                v.add(format!("scorecard.measures[{i}].direction"), format!("{} is not a Direction", m.direction));
                Direction::HigherIsBetter
            }
        };
        let missing = match pb::MissingData::try_from(m.missing) {
            Ok(pb::MissingData::CountAsZero) => MissingData::CountAsZero,
            Ok(pb::MissingData::Unspecified | pb::MissingData::SkipAndReweight) => MissingData::SkipAndReweight,
            Err(_) => {
                v.add(format!("scorecard.measures[{i}].missing"), format!("{} is not a MissingData", m.missing));
                MissingData::SkipAndReweight
            }
        };
        out.push(WeightedMeasure { measure: m.measure.clone(), weight: m.weight, normalisation, direction, missing });
    }
    out
}

fn bands(p: &pb::Scorecard) -> Bands {
    p.bands.map(|b| Bands { yellow_from: b.yellow_from, green_from: b.green_from }).unwrap_or_default()
}

pub(crate) fn create(r: pb::CreateScorecardRequest) -> Result<CreateScorecard> {
    let mut v = Violations::new();
    let request_id = v.take(idempotency::optional("request_id", &r.request_id)).map(|k| k.map(str::to_owned));
    let Some(p) = r.scorecard else {
        v.add("scorecard", "is required");
        return v.finish_with(None);
    };
    let scope = scope(&mut v, &p);
    let def = ScorecardDef {
        name: name(&p),
        scope: scope.clone().unwrap_or_default(),
        measures: measures(&mut v, &p),
        bands: bands(&p),
    };
    // The rules of the whole scorecard, beside the fields' own violations.
    for (field, description) in validate(&def) {
        v.add(format!("scorecard.{field}"), description);
    }
    let (request_id, _) = v.finish_with((request_id, scope))?;
    Ok(CreateScorecard { def, request_id })
}

pub(crate) fn get(r: &pb::GetScorecardRequest) -> Result<(Uuid, Option<i64>)> {
    let mut v = Violations::new();
    let id = v.take(wire::uuid("id", &r.id));
    v.check(r.version < 0, "version", format!("must not be negative, got {}", r.version));
    let id = v.finish_with(id)?;
    Ok((id, (r.version > 0).then_some(r.version)))
}

pub(crate) fn list(r: &pb::ListScorecardsRequest) -> Result<PageRequest> {
    Ok(PageRequest { size: paging::page_size(r.page_size)?, token: r.page_token.clone() })
}

/// The masked fields of the request's scorecard (the others are not read);
/// the rules of the scorecard they make with the stored one are checked
/// when they are applied ([`crate::app::scorecards::valid`]).
pub(crate) fn update(r: pb::UpdateScorecardRequest) -> Result<UpdateScorecard> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<ScorecardField>("update_mask", r.update_mask.as_ref()));
    let Some(p) = r.scorecard else {
        v.add("scorecard", "is required");
        return v.finish_with(None);
    };
    let id = v.take(wire::uuid("scorecard.id", &p.id));
    let etag = v.take(etag::parse("scorecard.etag", &p.etag));
    let mut changes = ScorecardChanges::default();
    let mut scope_ok = Some(());
    for field in mask.iter().flatten() {
        match field {
            ScorecardField::Name => changes.name = Some(name(&p)),
            ScorecardField::Scope => {
                changes.scope = scope(&mut v, &p);
                scope_ok = changes.scope.as_ref().map(|_| ());
            }
            ScorecardField::Measures => changes.measures = Some(measures(&mut v, &p)),
            ScorecardField::Bands => changes.bands = Some(bands(&p)),
        }
    }
    let (id, etag, _, _) = v.finish_with((id, etag, mask, scope_ok))?;
    Ok(UpdateScorecard { id, etag, changes })
}

pub(crate) fn to_proto(c: &StoredScorecard) -> pb::Scorecard {
    let d = &c.def;
    pb::Scorecard {
        id: c.id.to_string(),
        version: c.version,
        name: d.name.clone(),
        scope: Some(pb::Scope {
            kind: match &d.scope {
                Scope::All => None,
                Scope::Segment(s) => Some(pb::scope::Kind::SegmentId(s.clone())),
                Scope::LifecycleStage(s) => Some(pb::scope::Kind::LifecycleStage(s.to_proto() as i32)),
                Scope::TouchModel(t) => Some(pb::scope::Kind::TouchModel(t.to_proto() as i32)),
            },
        }),
        measures: d
            .measures
            .iter()
            .map(|m| pb::WeightedMeasure {
                measure: m.measure.clone(),
                weight: m.weight,
                normalisation: Some(pb::Normalisation {
                    kind: Some(match &m.normalisation {
                        Normalisation::Thresholds(t) => {
                            pb::normalisation::Kind::Thresholds(pb::normalisation::Thresholds {
                                thresholds: t
                                    .iter()
                                    .map(|x| pb::normalisation::Threshold { at: x.at, points: x.points })
                                    .collect(),
                            })
                        }
                        Normalisation::Linear { min, max } => {
                            pb::normalisation::Kind::Linear(pb::normalisation::Linear { min: *min, max: *max })
                        }
                        Normalisation::Percentile => {
                            pb::normalisation::Kind::Percentile(pb::normalisation::Percentile {})
                        }
                    }),
                }),
                direction: match m.direction {
                    Direction::HigherIsBetter => pb::Direction::HigherIsBetter,
                    Direction::LowerIsBetter => pb::Direction::LowerIsBetter,
                } as i32,
                missing: match m.missing {
                    MissingData::SkipAndReweight => pb::MissingData::SkipAndReweight,
                    MissingData::CountAsZero => pb::MissingData::CountAsZero,
                } as i32,
            })
            .collect(),
        bands: Some(pb::Bands { yellow_from: d.bands.yellow_from, green_from: d.bands.green_from }),
        create_time: Some(wire::timestamp(c.create_time)),
        update_time: Some(wire::timestamp(c.update_time)),
        etag: etag::of(c.version),
    }
}

pub(crate) fn list_to_proto((rows, next_page_token): (Vec<StoredScorecard>, String)) -> pb::ListScorecardsResponse {
    pb::ListScorecardsResponse { scorecards: rows.iter().map(to_proto).collect(), next_page_token }
}
