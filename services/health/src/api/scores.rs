//! Account health on the wire.

use banso_kit::{Result, wire};
use banso_proto::{health as pb, types as tpb};
use uuid::Uuid;

use super::convert::band_to_proto;
use crate::{
    domain::{account::AccountRow, score::Contribution},
    store::health::StoredHealth,
};

pub(crate) fn get(r: &pb::GetAccountHealthRequest) -> Result<Uuid> {
    wire::uuid("account_id", &r.account_id)
}

fn contribution_to_proto(c: &Contribution) -> pb::Contribution {
    pb::Contribution {
        measure: c.measure.clone(),
        raw: c.raw,
        points: c.points,
        weight: c.weight,
        effective_weight: c.effective_weight,
        contribution: c.contribution,
    }
}

/// An account's health; `contributions` false leaves the explanation out.
pub(crate) fn to_proto(row: &AccountRow, h: &StoredHealth, contributions: bool) -> pb::AccountHealth {
    pb::AccountHealth {
        account_id: row.account_id.to_string(),
        score: h.score,
        band: band_to_proto(h.band) as i32,
        change_7d: h.change_7d,
        change_30d: h.change_30d,
        scorecard_id: h.scorecard_id.to_string(),
        scorecard_version: h.scorecard_version,
        contributions: if contributions { h.contributions.iter().map(contribution_to_proto).collect() } else { vec![] },
        compute_time: Some(wire::timestamp(h.compute_time)),
        arr: match (&row.arr_currency, row.arr_amount_minor) {
            (Some(c), Some(a)) => Some(tpb::Money { currency_code: c.clone(), amount_minor: a }),
            _ => None,
        },
    }
}
