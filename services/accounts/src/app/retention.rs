//! Retention KPIs of a period, for the tenant or one segment.

use banso_kit::{Error, Result, auth::Caller};
use uuid::Uuid;

use super::App;
use crate::{
    domain::retention::{self, PeriodSpec, RetentionMetrics},
    store,
};

/// GetRetentionMetrics: a period, a currency (the tenant's default when
/// `None`), optionally a segment.
pub(crate) struct MetricsQuery {
    pub period: PeriodSpec,
    pub currency_code: Option<String>,
    pub segment_id: Option<Uuid>,
}

impl App {
    /// The metrics, and the currency they are in.
    pub(crate) async fn retention_metrics(
        &self,
        caller: &Caller,
        q: MetricsQuery,
    ) -> Result<(RetentionMetrics, String)> {
        let tenant = &caller.tenant_id;
        let settings = store::settings::get(self.db.conn(), tenant).await?;
        // Fiscal periods are cut by the tenant's fiscal year.
        let period = q
            .period
            .resolve(settings.fiscal_year_start_month)
            .map_err(|(field, e)| Error::invalid(format!("{field}.{}", e.field()), e.to_string()))?;
        let currency = q.currency_code.unwrap_or(settings.default_currency_code);
        let mut movements = store::contracts::movements(self.db.conn(), tenant, &currency).await?;
        if let Some(segment_id) = q.segment_id {
            let members = self.segment_members(tenant, segment_id).await?;
            movements.retain(|m| members.contains(&m.account_id));
        }
        let metrics = retention::compute(&movements, period)
            .map_err(|e| Error::FailedPrecondition { reason: "AMOUNT_OUT_OF_RANGE", message: e.to_string() })?;
        Ok((metrics, currency))
    }
}
