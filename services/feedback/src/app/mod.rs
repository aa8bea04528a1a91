//! The use cases of the Feedback service, a file a resource: one
//! `pub(crate) async fn` each, one transaction each through
//! [`banso_events::Db`].

pub(crate) mod answers;
pub(crate) mod campaigns;
pub(crate) mod reports;
pub(crate) mod sender;
mod settings;
mod surveys;
pub(crate) mod voice;

use std::sync::Arc;

use banso_events::{
    Db,
    group::{GroupCommit, GroupConfig},
};
use sea_orm::DatabaseConnection;

use crate::domain::token::Signer;

/// The service's use cases over its database.
#[derive(Clone)]
pub(crate) struct App {
    pub db: Db,
    pub signer: Arc<Signer>,
    /// Each tenant's theme suggestion index.
    pub indexes: Arc<voice::items::Indexes>,
    /// Prefixed to an invitation's answer path ("" leaves it relative).
    pub answer_base_url: Arc<str>,
    /// The customers' answers, written in rounds (group commit).
    pub answers: GroupCommit<answers::Answers>,
}

/// What makes an invitation's token and answer link.
#[derive(Clone)]
pub(crate) struct Links {
    pub signer: Arc<Signer>,
    /// Prefixed to an invitation's answer path ("" leaves it relative).
    pub base_url: Arc<str>,
}

impl Links {
    pub(crate) fn token(&self, tenant: &str, i: &crate::domain::campaign::Invitation) -> String {
        self.signer.sign(&crate::domain::token::Claims {
            tenant: tenant.to_string(),
            invitation: i.id,
            expire_time: i.expire_time,
        })
    }

    pub(crate) fn answer_url(&self, token: &str) -> String {
        format!("{}/v1/public/surveyForms/{token}", self.base_url)
    }
}

impl App {
    pub(crate) fn new(db: Db, signer: Signer, answer_base_url: &str) -> App {
        let answers = GroupCommit::new(db.clone(), answers::Answers, "feedback-answers", GroupConfig::for_db(&db));
        App {
            db,
            signer: Arc::new(signer),
            indexes: Default::default(),
            answer_base_url: answer_base_url.into(),
            answers,
        }
    }

    pub(crate) fn links(&self) -> Links {
        Links { signer: self.signer.clone(), base_url: self.answer_base_url.clone() }
    }

    /// What a closure given to [`Db`] reads with, owned (see Accounts' `Scope`).
    fn scope(&self, tenant: &str) -> Scope {
        Scope { conn: self.db.conn().clone(), tenant: tenant.to_owned() }
    }
}

#[derive(Clone)]
struct Scope {
    conn: DatabaseConnection,
    tenant: String,
}
