//! Surveys.

use banso_events::db::{Identified, RequestKey, remembered};
use banso_kit::{Result, auth::Caller, wire};
use uuid::Uuid;

use super::App;
use crate::{
    domain::survey::{Body, Kind, Survey},
    store::{
        self,
        answers::{Answer, AnswerFilter},
    },
};

const OP_CREATE_SURVEY: &str = "CreateSurvey";

impl Identified for Survey {
    fn resource_id(&self) -> String {
        self.id.to_string()
    }
}

impl App {
    pub(crate) async fn create_survey(
        &self,
        caller: &Caller,
        request_id: Option<String>,
        body: Body,
    ) -> Result<Survey> {
        let key = request_id.as_deref().map(|request_id| RequestKey { operation: OP_CREATE_SURVEY, request_id });
        let s = self.scope(&caller.tenant_id);
        self.db
            .create_once(
                &caller.tenant_id,
                key,
                async move |id| store::surveys::get(&s.conn, &s.tenant, remembered(id)?).await,
                async move |tx| {
                    let survey = Survey { id: Uuid::now_v7(), body, create_time: wire::now() };
                    store::surveys::insert(tx.conn(), tx.tenant(), &survey).await?;
                    Ok(survey)
                },
            )
            .await
    }

    pub(crate) async fn get_survey(&self, caller: &Caller, id: Uuid) -> Result<Survey> {
        store::surveys::get(self.db.conn(), &caller.tenant_id, id).await
    }

    pub(crate) async fn list_surveys(
        &self,
        caller: &Caller,
        kind: Option<Kind>,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Survey>> {
        store::surveys::list(self.db.conn(), &caller.tenant_id, kind, after, limit).await
    }

    /// A survey's answers, newest first: NOT_FOUND for a survey, or a
    /// campaign filtered on, that is not the tenant's (or a campaign of
    /// another survey).
    pub(crate) async fn list_answers(
        &self,
        caller: &Caller,
        survey: Uuid,
        filter: AnswerFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Answer>> {
        let conn = self.db.conn();
        store::surveys::get(conn, &caller.tenant_id, survey).await?;
        if let Some(c) = filter.campaign {
            let (campaign, _) = store::campaigns::get(conn, &caller.tenant_id, c).await?;
            if campaign.survey_id != survey {
                return Err(banso_kit::Error::not_found("campaign", c.to_string()));
            }
        }
        store::answers::list(conn, &caller.tenant_id, survey, filter, before, limit).await
    }
}
