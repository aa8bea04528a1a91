//! The enums of Health's protos, each converted in one place (the lifecycle
//! stage and touch model are the shared `banso_proto::vocab`).

use banso_proto::health as pb;

use crate::domain::score::Band;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips() {
        for b in Band::ALL {
            assert_eq!(band_from_proto(band_to_proto(b) as i32), Some(b));
        }
        for unknown in [0, 99, -1] {
            assert_eq!(band_from_proto(unknown), None);
        }
    }
}
