//! The rules of playbooks, pure and unit-tested: what a playbook is
//! ([`playbook`]), whether an event triggers it and whether it may fire
//! ([`engine`]), how actions meet an account's touch mix ([`touch`]), how
//! templates are filled ([`template`]), and what a call to action is
//! ([`cta`]). The projection of other services' data conditions read is in
//! [`projection`]. Success plans, their result review and success models
//! are [`plan`].

/// A closed set of names: each value, its stored name, and back.
macro_rules! named {
    ($t:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub(crate) enum $t { $($v),+ }

        impl $t {
            pub(crate) const ALL: &[$t] = &[$($t::$v),+];

            pub(crate) fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),+ }
            }

            #[allow(dead_code, reason = "some are stored by rank, not parsed by name")]
            pub(crate) fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|x| x.as_str() == s)
            }
        }
    };
}

pub(crate) mod cta;
pub(crate) mod engine;
pub(crate) mod outreach;
pub(crate) mod plan;
pub(crate) mod playbook;
pub(crate) mod programme;
pub(crate) mod projection;
pub(crate) mod template;
pub(crate) mod touch;

pub(crate) use banso_proto::vocab::{LifecycleStage, TouchModel};
