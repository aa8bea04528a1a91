//! What the Accounts service publishes: one builder per event, from the
//! domain objects as stored. The store records them through the outbox in
//! the transaction of the change itself.

use banso_events::Payload;
use banso_proto::events as ev;

use crate::{
    convert,
    domain::{Account, Contact, TenantSettings, activity::Activity, contract::ContractEvent, segment::Segment},
};

pub fn account_created(a: &Account) -> Payload {
    Payload::AccountCreated(ev::AccountCreated { account: Some(convert::account_to_proto(a)) })
}

pub fn account_updated(a: &Account, changed: &[&str]) -> Payload {
    Payload::AccountUpdated(ev::AccountUpdated {
        account: Some(convert::account_to_proto(a)),
        changed_fields: changed.iter().map(|s| s.to_string()).collect(),
    })
}

pub fn account_deleted(a: &Account) -> Payload {
    Payload::AccountDeleted(ev::AccountDeleted {
        account_id: a.id.to_string(),
        external_id: a.fields.external_id.clone().unwrap_or_default(),
    })
}

pub fn contact_changed(c: &Contact, change: ev::contact_changed::Change) -> Payload {
    Payload::ContactChanged(ev::ContactChanged { change: change as i32, contact: Some(convert::contact_to_proto(c)) })
}

pub fn contract_changed(e: &ContractEvent, a: &Account) -> Payload {
    Payload::ContractChanged(ev::ContractChanged {
        contract_event: Some(convert::contract_event_to_proto(e)),
        account: Some(convert::account_to_proto(a)),
    })
}

pub fn activity_logged(a: &Activity) -> Payload {
    Payload::ActivityLogged(ev::ActivityLogged { activity: Some(convert::activity_to_proto(a)) })
}

pub fn settings_changed(s: &TenantSettings) -> Payload {
    Payload::TenantSettingsChanged(ev::TenantSettingsChanged { settings: Some(convert::settings_to_proto(s)) })
}

pub fn segment_changed(s: &Segment, change: ev::segment_changed::Change) -> Payload {
    Payload::SegmentChanged(ev::SegmentChanged { change: change as i32, segment: Some(convert::segment_to_proto(s)) })
}
