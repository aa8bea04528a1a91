//! The rules of playbooks, pure and unit-tested: what a playbook is
//! ([`playbook`]), whether an event triggers it and whether it may fire
//! ([`engine`]), how actions meet an account's touch mix ([`touch`]), how
//! templates are filled ([`template`]), and what a call to action is
//! ([`cta`]). The projection of other services' data conditions read is in
//! [`projection`].

pub(crate) mod cta;
pub(crate) mod engine;
pub(crate) mod outreach;
pub(crate) mod playbook;
pub(crate) mod programme;
pub(crate) mod projection;
pub(crate) mod template;
pub(crate) mod touch;

pub(crate) use banso_proto::vocab::{LifecycleStage, TouchModel};
