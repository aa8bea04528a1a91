//! CS = CO + CX: reads the scope's accounts and their evidence in the
//! range and hands them to [`crate::domain::axes`].

use std::collections::HashMap;

use banso_kit::{Result, auth::Caller};
use chrono::Duration;
use uuid::Uuid;

use crate::{
    app::{
        App,
        reports::{Range, Scope},
    },
    domain::{
        axes::{Evidence, SuccessAxes, success_axes},
        survey::Kind,
    },
    store,
};

/// The range when none is asked for: a year back from its end.
const DEFAULT_RANGE_DAYS: i64 = 365;

impl App {
    /// The accounts of a segment (every live account without one) on the
    /// outcome and experience axes, and the coverage of the CX dimensions
    /// per journey phase by their items in the range.
    pub(crate) async fn success_axes(
        &self,
        caller: &Caller,
        segment: Option<Uuid>,
        range: Range,
    ) -> Result<SuccessAxes> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        let members = match segment {
            Some(id) => self.scope_accounts(tenant, Scope::Segment(id)).await?,
            None => None,
        };
        let (from, to) = range.resolve(Some(Duration::days(DEFAULT_RANGE_DAYS)));
        let mut scope: HashMap<Uuid, (String, Evidence)> = store::projection::accounts(conn, tenant, None)
            .await?
            .into_iter()
            .filter(|p| members.as_ref().is_none_or(|m| m.contains(&p.account.id)))
            .map(|p| (p.account.id, (p.account.name, Evidence::default())))
            .collect();
        for (account, attainment) in store::axes::attainments(conn, tenant, from, to).await? {
            if let Some((_, e)) = scope.get_mut(&account) {
                e.attainments.push(attainment);
            }
        }
        for (account, kind, score) in store::axes::scores(conn, tenant, from, to).await? {
            if let Some((_, e)) = scope.get_mut(&account) {
                match kind {
                    Kind::Ces => e.ces_answers.push(score),
                    Kind::Outcome => e.outcome_answers.push(score),
                    Kind::Nps | Kind::Csat | Kind::Custom => {}
                }
            }
        }
        let mut covered = Vec::new();
        for item in store::axes::cx_items(conn, tenant, from, to).await? {
            if let Some((_, e)) = scope.get_mut(&item.account_id) {
                e.cx_severities.push(item.severity);
                covered.push((Some(item.dimension), item.phase));
            }
        }
        Ok(success_axes(scope.into_iter().map(|(id, (name, e))| (id, name, e)), covered))
    }
}
