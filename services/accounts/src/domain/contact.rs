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

pub const CONTACT_UPDATABLE: &[&str] =
    &["name", "email", "title", "department", "level", "champion", "decision_maker", "external_id"];

impl ContactFields {
    pub fn apply(&mut self, new: ContactFields, paths: &[&str]) {
        for p in paths {
            match *p {
                "name" => self.name = new.name.clone(),
                "email" => self.email = new.email.clone(),
                "title" => self.title = new.title.clone(),
                "department" => self.department = new.department.clone(),
                "level" => self.level = new.level,
                "champion" => self.champion = new.champion,
                "decision_maker" => self.decision_maker = new.decision_maker,
                "external_id" => self.external_id = new.external_id.clone(),
                other => unreachable!("path {other} is checked against CONTACT_UPDATABLE"),
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
}
