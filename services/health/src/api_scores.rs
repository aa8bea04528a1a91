//! Scorecards and account health over gRPC: conversions and validation.

use banso_kit::{Result, Violations, wire::timestamp};
use banso_proto::health as pb;

use crate::{
    domain::{
        score::Contribution,
        scorecard::{
            Bands, Direction, MissingData, Normalisation, Scope, ScorecardDef, Threshold, WeightedMeasure, validate,
        },
    },
    store::scores::StoredScorecard,
};

pub(crate) fn etag(version: i64) -> String {
    format!("v{version}")
}

/// The domain scorecard of a proto one, every bad field named under `scorecard.`.
pub(crate) fn def_from_proto(p: &pb::Scorecard) -> Result<ScorecardDef> {
    let mut v = Violations::new();
    let scope = match p.scope.as_ref().and_then(|s| s.kind.as_ref()) {
        None => Scope::All,
        Some(pb::scope::Kind::SegmentId(s)) => Scope::Segment(s.clone()),
        Some(pb::scope::Kind::LifecycleStage(s)) => Scope::LifecycleStage(s.clone()),
        Some(pb::scope::Kind::TouchModel(s)) => Scope::TouchModel(s.clone()),
    };
    let mut measures = Vec::with_capacity(p.measures.len());
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
            Ok(_) => Direction::HigherIsBetter,
            Err(_) => {
                v.add(format!("scorecard.measures[{i}].direction"), format!("{} is not a Direction", m.direction));
                Direction::HigherIsBetter
            }
        };
        let missing = match pb::MissingData::try_from(m.missing) {
            Ok(pb::MissingData::CountAsZero) => MissingData::CountAsZero,
            Ok(_) => MissingData::SkipAndReweight,
            Err(_) => {
                v.add(format!("scorecard.measures[{i}].missing"), format!("{} is not a MissingData", m.missing));
                MissingData::SkipAndReweight
            }
        };
        measures.push(WeightedMeasure {
            measure: m.measure.clone(),
            weight: m.weight,
            normalisation,
            direction,
            missing,
        });
    }
    let bands =
        p.bands.as_ref().map(|b| Bands { yellow_from: b.yellow_from, green_from: b.green_from }).unwrap_or_default();
    let def = ScorecardDef { name: p.name.trim().to_owned(), scope, measures, bands };
    for (field, description) in validate(&def) {
        v.add(format!("scorecard.{field}"), description);
    }
    v.finish()?;
    Ok(def)
}

pub(crate) fn scorecard_to_proto(c: &StoredScorecard) -> pb::Scorecard {
    let d = &c.def;
    pb::Scorecard {
        id: c.id.to_string(),
        version: c.version,
        name: d.name.clone(),
        scope: Some(pb::Scope {
            kind: match &d.scope {
                Scope::All => None,
                Scope::Segment(s) => Some(pb::scope::Kind::SegmentId(s.clone())),
                Scope::LifecycleStage(s) => Some(pb::scope::Kind::LifecycleStage(s.clone())),
                Scope::TouchModel(s) => Some(pb::scope::Kind::TouchModel(s.clone())),
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
        create_time: Some(timestamp(c.create_time)),
        update_time: Some(timestamp(c.update_time)),
        etag: etag(c.version),
    }
}

pub(crate) fn contribution_to_proto(c: &Contribution) -> pb::Contribution {
    pb::Contribution {
        measure: c.measure.clone(),
        raw: c.raw,
        points: c.points,
        weight: c.weight,
        effective_weight: c.effective_weight,
        contribution: c.contribution,
    }
}

/// Merges the masked fields of `p` into `current` (as a proto), for validation.
pub(crate) fn merged(current: &pb::Scorecard, p: &pb::Scorecard, paths: &[&str]) -> pb::Scorecard {
    let mut out = current.clone();
    for path in paths {
        match *path {
            "name" => out.name = p.name.clone(),
            "scope" => out.scope = p.scope.clone(),
            "measures" => out.measures = p.measures.clone(),
            "bands" => out.bands = p.bands,
            other => unreachable!("{other} is checked against the updatable fields"),
        }
    }
    out
}
