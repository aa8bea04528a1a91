//! The rules of surveys, pure and unit-tested: what a survey asks and what
//! answer it takes ([`survey`]), the response token ([`token`]), who a
//! campaign invites and when ([`campaign`]), the estimates with their
//! intervals ([`stats`]), and the figures built from answers: results, the
//! perception gap, predictions, the band × category matrix ([`results`]).
//! The projection of Accounts' and Health's data is [`projection`].

/// A closed set of names: each value, its stored name, and back.
macro_rules! named {
    ($t:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub(crate) enum $t { $($v),+ }

        #[allow(dead_code, reason = "not every set is listed, printed and parsed")]
        impl $t {
            pub(crate) const ALL: &[$t] = &[$($t::$v),+];

            pub(crate) fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),+ }
            }

            pub(crate) fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|x| x.as_str() == s)
            }
        }
    };
}

pub(crate) mod axes;
pub(crate) mod campaign;
pub(crate) mod lexicon;
pub(crate) mod loops;
pub(crate) mod projection;
pub(crate) mod rank;
pub(crate) mod results;
pub(crate) mod routing;
pub(crate) mod stats;
pub(crate) mod suggest;
pub(crate) mod survey;
pub(crate) mod text;
pub(crate) mod token;
pub(crate) mod voice;

pub(crate) use banso_proto::vocab::{LifecycleStage, TouchModel};
