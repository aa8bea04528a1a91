//! The voice of the customer's use cases: items and themes ([`items`]),
//! target selection ([`rank`]), closing the loop ([`loops`]), routing to
//! departments ([`routing`]), CS = CO + CX ([`axes`]).

pub(crate) mod axes;
pub(crate) mod items;
pub(crate) mod loops;
pub(crate) mod rank;
pub(crate) mod routing;
