//! The enums Health shares with its protos, each converted in one place.

use banso_proto::{health as pb, types as tpb};

use crate::domain::{
    account::{LifecycleStage, TouchModel},
    score::Band,
};

pub(crate) fn band_to_proto(b: Band) -> pb::Band {
    match b {
        Band::Red => pb::Band::Red,
        Band::Yellow => pb::Band::Yellow,
        Band::Green => pb::Band::Green,
    }
}

/// A band of the wire; `None` for UNSPECIFIED and unknown values.
pub(crate) fn band_from_proto(v: i32) -> Option<Band> {
    match pb::Band::try_from(v).ok()? {
        pb::Band::Red => Some(Band::Red),
        pb::Band::Yellow => Some(Band::Yellow),
        pb::Band::Green => Some(Band::Green),
        pb::Band::Unspecified => None,
    }
}

pub(crate) fn stage_to_proto(s: LifecycleStage) -> tpb::LifecycleStage {
    match s {
        LifecycleStage::Onboarding => tpb::LifecycleStage::Onboarding,
        LifecycleStage::Adoption => tpb::LifecycleStage::Adoption,
        LifecycleStage::Expansion => tpb::LifecycleStage::Expansion,
        LifecycleStage::Renewal => tpb::LifecycleStage::Renewal,
        LifecycleStage::Churned => tpb::LifecycleStage::Churned,
    }
}

/// A lifecycle stage of the wire (Health's requests and Accounts' events);
/// `None` for UNSPECIFIED and unknown values.
pub(crate) fn stage_from_proto(v: i32) -> Option<LifecycleStage> {
    match tpb::LifecycleStage::try_from(v).ok()? {
        tpb::LifecycleStage::Onboarding => Some(LifecycleStage::Onboarding),
        tpb::LifecycleStage::Adoption => Some(LifecycleStage::Adoption),
        tpb::LifecycleStage::Expansion => Some(LifecycleStage::Expansion),
        tpb::LifecycleStage::Renewal => Some(LifecycleStage::Renewal),
        tpb::LifecycleStage::Churned => Some(LifecycleStage::Churned),
        tpb::LifecycleStage::Unspecified => None,
    }
}

pub(crate) fn touch_to_proto(t: TouchModel) -> tpb::TouchModel {
    match t {
        TouchModel::High => tpb::TouchModel::High,
        TouchModel::Low => tpb::TouchModel::Low,
        TouchModel::Tech => tpb::TouchModel::Tech,
    }
}

/// A touch model of the wire; `None` for UNSPECIFIED and unknown values.
pub(crate) fn touch_from_proto(v: i32) -> Option<TouchModel> {
    match tpb::TouchModel::try_from(v).ok()? {
        tpb::TouchModel::High => Some(TouchModel::High),
        tpb::TouchModel::Low => Some(TouchModel::Low),
        tpb::TouchModel::Tech => Some(TouchModel::Tech),
        tpb::TouchModel::Unspecified => None,
    }
}

/// The values a request may name, for messages: `LIFECYCLE_STAGE_ONBOARDING, …`.
pub(crate) fn stage_names() -> String {
    LifecycleStage::ALL.map(|s| stage_to_proto(s).as_str_name()).join(", ")
}

/// As [`stage_names`], for touch models.
pub(crate) fn touch_names() -> String {
    TouchModel::ALL.map(|t| touch_to_proto(t).as_str_name()).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips() {
        for s in LifecycleStage::ALL {
            assert_eq!(stage_from_proto(stage_to_proto(s) as i32), Some(s));
        }
        for t in TouchModel::ALL {
            assert_eq!(touch_from_proto(touch_to_proto(t) as i32), Some(t));
        }
        for b in Band::ALL {
            assert_eq!(band_from_proto(band_to_proto(b) as i32), Some(b));
        }
        for unknown in [0, 99, -1] {
            assert_eq!(stage_from_proto(unknown), None);
            assert_eq!(touch_from_proto(unknown), None);
            assert_eq!(band_from_proto(unknown), None);
        }
    }
}
