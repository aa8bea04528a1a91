//! The words of the domain every service shares, as Rust types without the
//! wire's UNSPECIFIED: where an account stands (its lifecycle stage) and how
//! the CS team runs alongside it (its touch model). Accounts keeps them;
//! Health and the services to come read them from its events and filter by
//! them. Each has one name the storage and CEL use (`"onboarding"`) and one
//! conversion from and to the proto enum, written once here.

use serde::{Deserialize, Serialize};

use crate::types;

/// Where an account stands in its life as a customer (DOMAIN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStage {
    Onboarding,
    Adoption,
    Expansion,
    Renewal,
    Churned,
}

impl LifecycleStage {
    pub const ALL: [LifecycleStage; 5] = [
        LifecycleStage::Onboarding,
        LifecycleStage::Adoption,
        LifecycleStage::Expansion,
        LifecycleStage::Renewal,
        LifecycleStage::Churned,
    ];

    /// The name storage, CEL (`account.lifecycle_stage == 'renewal'`) and
    /// distributions use.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Onboarding => "onboarding",
            LifecycleStage::Adoption => "adoption",
            LifecycleStage::Expansion => "expansion",
            LifecycleStage::Renewal => "renewal",
            LifecycleStage::Churned => "churned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn to_proto(self) -> types::LifecycleStage {
        match self {
            LifecycleStage::Onboarding => types::LifecycleStage::Onboarding,
            LifecycleStage::Adoption => types::LifecycleStage::Adoption,
            LifecycleStage::Expansion => types::LifecycleStage::Expansion,
            LifecycleStage::Renewal => types::LifecycleStage::Renewal,
            LifecycleStage::Churned => types::LifecycleStage::Churned,
        }
    }

    /// A stage of the wire; `None` for UNSPECIFIED and unknown values.
    pub fn from_proto(v: i32) -> Option<Self> {
        match types::LifecycleStage::try_from(v).ok()? {
            types::LifecycleStage::Onboarding => Some(LifecycleStage::Onboarding),
            types::LifecycleStage::Adoption => Some(LifecycleStage::Adoption),
            types::LifecycleStage::Expansion => Some(LifecycleStage::Expansion),
            types::LifecycleStage::Renewal => Some(LifecycleStage::Renewal),
            types::LifecycleStage::Churned => Some(LifecycleStage::Churned),
            types::LifecycleStage::Unspecified => None,
        }
    }

    /// The values a request may send, for messages: `LIFECYCLE_STAGE_ONBOARDING, …`.
    pub fn wire_names() -> String {
        Self::ALL.map(|s| s.to_proto().as_str_name()).join(", ")
    }
}

/// How the CS team runs alongside the account (DOMAIN.md: touch models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchModel {
    High,
    Low,
    Tech,
}

impl TouchModel {
    pub const ALL: [TouchModel; 3] = [TouchModel::High, TouchModel::Low, TouchModel::Tech];

    /// The name storage, CEL and distributions use.
    pub fn as_str(self) -> &'static str {
        match self {
            TouchModel::High => "high",
            TouchModel::Low => "low",
            TouchModel::Tech => "tech",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn to_proto(self) -> types::TouchModel {
        match self {
            TouchModel::High => types::TouchModel::High,
            TouchModel::Low => types::TouchModel::Low,
            TouchModel::Tech => types::TouchModel::Tech,
        }
    }

    /// A touch model of the wire; `None` for UNSPECIFIED and unknown values.
    pub fn from_proto(v: i32) -> Option<Self> {
        match types::TouchModel::try_from(v).ok()? {
            types::TouchModel::High => Some(TouchModel::High),
            types::TouchModel::Low => Some(TouchModel::Low),
            types::TouchModel::Tech => Some(TouchModel::Tech),
            types::TouchModel::Unspecified => None,
        }
    }

    /// The values a request may send, for messages: `TOUCH_MODEL_HIGH, …`.
    pub fn wire_names() -> String {
        Self::ALL.map(|t| t.to_proto().as_str_name()).join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_and_unspecified_is_none() {
        for s in LifecycleStage::ALL {
            assert_eq!(LifecycleStage::from_proto(s.to_proto() as i32), Some(s));
            assert_eq!(LifecycleStage::parse(s.as_str()), Some(s));
        }
        for t in TouchModel::ALL {
            assert_eq!(TouchModel::from_proto(t.to_proto() as i32), Some(t));
            assert_eq!(TouchModel::parse(t.as_str()), Some(t));
        }
        for unknown in [0, 99, -1] {
            assert_eq!(LifecycleStage::from_proto(unknown), None);
            assert_eq!(TouchModel::from_proto(unknown), None);
        }
        assert!(LifecycleStage::wire_names().starts_with("LIFECYCLE_STAGE_ONBOARDING, "));
    }
}
