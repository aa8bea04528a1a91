//! What the Accounts service publishes: one builder per event, from the
//! domain objects as stored, in the API's own protos. A use case records
//! them through the outbox in the transaction of the change itself.

use banso_events::Payload;
use banso_proto::events as ev;

use crate::{
    api,
    domain::{Account, Contact, TenantSettings, activity::Activity, contract::ContractEvent, segment::Segment},
};

pub(crate) fn account_created(a: &Account) -> Payload {
    Payload::AccountCreated(ev::AccountCreated { account: Some(api::accounts::to_proto(a)) })
}

pub(crate) fn account_updated(a: &Account, changed: &[&str]) -> Payload {
    Payload::AccountUpdated(ev::AccountUpdated {
        account: Some(api::accounts::to_proto(a)),
        changed_fields: changed.iter().map(|s| s.to_string()).collect(),
    })
}

pub(crate) fn account_deleted(a: &Account) -> Payload {
    Payload::AccountDeleted(ev::AccountDeleted {
        account_id: a.id.to_string(),
        external_id: a.fields.external_id.clone().unwrap_or_default(),
    })
}

pub(crate) fn contact_changed(c: &Contact, change: ev::contact_changed::Change) -> Payload {
    Payload::ContactChanged(ev::ContactChanged { change: change as i32, contact: Some(api::contacts::to_proto(c)) })
}

pub(crate) fn contract_changed(e: &ContractEvent, a: &Account) -> Payload {
    Payload::ContractChanged(ev::ContractChanged {
        contract_event: Some(api::contracts::to_proto(e)),
        account: Some(api::accounts::to_proto(a)),
    })
}

pub(crate) fn activity_logged(a: &Activity) -> Payload {
    Payload::ActivityLogged(ev::ActivityLogged { activity: Some(api::activities::to_proto(a)) })
}

pub(crate) fn settings_changed(s: &TenantSettings) -> Payload {
    Payload::TenantSettingsChanged(ev::TenantSettingsChanged { settings: Some(api::settings::to_proto(s)) })
}

pub(crate) fn segment_changed(s: &Segment, change: ev::segment_changed::Change) -> Payload {
    Payload::SegmentChanged(ev::SegmentChanged { change: change as i32, segment: Some(api::segments::to_proto(s)) })
}
