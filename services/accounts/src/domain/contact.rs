use banso_events::db::{Identified, Versioned};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A stakeholder's level in the customer's organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactLevel {
    Executive,
    Manager,
    Practitioner,
}

impl ContactLevel {
    pub const ALL: [ContactLevel; 3] = [ContactLevel::Executive, ContactLevel::Manager, ContactLevel::Practitioner];

    pub fn as_str(self) -> &'static str {
        match self {
            ContactLevel::Executive => "executive",
            ContactLevel::Manager => "manager",
            ContactLevel::Practitioner => "practitioner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Everything about a contact that a client sets (account_id is fixed at create).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactFields {
    pub name: String,
    pub email: String,
    pub title: String,
    pub department: String,
    pub level: Option<ContactLevel>,
    pub champion: bool,
    pub decision_maker: bool,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: Uuid,
    pub account_id: Uuid,
    pub fields: ContactFields,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

impl Versioned for Contact {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = now;
    }
}

impl Identified for Contact {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

banso_kit::field_paths! {
    /// What UpdateContact may change (account_id is fixed at create).
    pub enum ContactField {
        Name = "name",
        Email = "email",
        Title = "title",
        Department = "department",
        Level = "level",
        Champion = "champion",
        DecisionMaker = "decision_maker",
        ExternalId = "external_id",
    }
}

impl ContactFields {
    /// Copies the fields named in `mask` from `new`.
    pub fn apply(&mut self, new: &ContactFields, mask: &[ContactField]) {
        for field in mask {
            match field {
                ContactField::Name => self.name = new.name.clone(),
                ContactField::Email => self.email = new.email.clone(),
                ContactField::Title => self.title = new.title.clone(),
                ContactField::Department => self.department = new.department.clone(),
                ContactField::Level => self.level = new.level,
                ContactField::Champion => self.champion = new.champion,
                ContactField::DecisionMaker => self.decision_maker = new.decision_maker,
                ContactField::ExternalId => self.external_id = new.external_id.clone(),
            }
        }
    }
}

/// Filters of ListContacts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFilter {
    pub account_id: Option<Uuid>,
    pub level: Option<ContactLevel>,
    pub champions_only: bool,
    pub decision_makers_only: bool,
    /// Lower-cased.
    pub email: Option<String>,
    /// Exactly this external_id.
    pub external_id: Option<String>,
}
