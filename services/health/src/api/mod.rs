//! The gRPC door of the health service: per RPC its access rule, its parse
//! (`api/<resource>.rs`), its use case (`app/`), its reply.

mod backtest;
mod churn;
pub(crate) mod convert;
mod ingest;
mod jobs;
mod measures;
mod portfolio;
mod scorecards;
mod scores;

use banso_kit::{
    auth::Access,
    rpc::{Rpc, handle},
};
use banso_proto::health as pb;
use tonic::{Request, Streaming};

use crate::app::App;

pub(crate) struct HealthApi {
    app: App,
}

impl HealthApi {
    pub(crate) fn new(app: App) -> Self {
        HealthApi { app }
    }
}

#[tonic::async_trait]
impl pb::health_service_server::HealthService for HealthApi {
    async fn ingest_usage(&self, req: Request<Streaming<pb::IngestUsageRequest>>) -> Rpc<pb::IngestUsageResponse> {
        handle(req, Access::Write, async |caller, stream| ingest::stream(&self.app, &caller, stream).await).await
    }

    async fn batch_ingest_usage(&self, req: Request<pb::BatchIngestUsageRequest>) -> Rpc<pb::IngestUsageResponse> {
        handle(req, Access::Write, async |caller, r| {
            let batch = ingest::one_batch(&r)?;
            let mut reply = pb::IngestUsageResponse::default();
            ingest::merge(&mut reply, self.app.ingest_batch(&caller, batch).await?);
            Ok(reply)
        })
        .await
    }

    async fn set_measure_value(&self, req: Request<pb::SetMeasureValueRequest>) -> Rpc<pb::SetMeasureValueResponse> {
        handle(req, Access::Write, async |caller, r| {
            let cmd = measures::set(r)?;
            Ok(measures::to_proto(&self.app.set_measure_value(&caller, cmd).await?))
        })
        .await
    }

    async fn create_scorecard(&self, req: Request<pb::CreateScorecardRequest>) -> Rpc<pb::Scorecard> {
        handle(req, Access::Admin, async |caller, r| {
            let cmd = scorecards::create(r)?;
            Ok(scorecards::to_proto(&self.app.create_scorecard(&caller, cmd).await?))
        })
        .await
    }

    async fn get_scorecard(&self, req: Request<pb::GetScorecardRequest>) -> Rpc<pb::Scorecard> {
        handle(req, Access::Read, async |caller, r| {
            let (id, version) = scorecards::get(&r)?;
            Ok(scorecards::to_proto(&self.app.get_scorecard(&caller, id, version).await?))
        })
        .await
    }

    async fn list_scorecards(&self, req: Request<pb::ListScorecardsRequest>) -> Rpc<pb::ListScorecardsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let page = scorecards::list(&r)?;
            Ok(scorecards::list_to_proto(self.app.list_scorecards(&caller, page).await?))
        })
        .await
    }

    async fn update_scorecard(&self, req: Request<pb::UpdateScorecardRequest>) -> Rpc<pb::Scorecard> {
        handle(req, Access::Admin, async |caller, r| {
            let cmd = scorecards::update(r)?;
            Ok(scorecards::to_proto(&self.app.update_scorecard(&caller, cmd).await?))
        })
        .await
    }

    async fn get_account_health(&self, req: Request<pb::GetAccountHealthRequest>) -> Rpc<pb::AccountHealth> {
        handle(req, Access::Read, async |caller, r| {
            let account = scores::get(&r)?;
            let (row, health) = self.app.get_account_health(&caller, account).await?;
            Ok(scores::to_proto(&row, &health, true))
        })
        .await
    }

    async fn list_account_health(
        &self,
        req: Request<pb::ListAccountHealthRequest>,
    ) -> Rpc<pb::ListAccountHealthResponse> {
        handle(req, Access::Read, async |caller, r| {
            let query = portfolio::list(r)?;
            let skip_contributions = query.skip_contributions;
            Ok(portfolio::list_to_proto(self.app.list_account_health(&caller, query).await?, skip_contributions))
        })
        .await
    }

    async fn get_health_distribution(
        &self,
        req: Request<pb::GetHealthDistributionRequest>,
    ) -> Rpc<pb::GetHealthDistributionResponse> {
        handle(req, Access::Read, async |caller, r| {
            let (filter, group_by) = portfolio::distribution(r)?;
            portfolio::distribution_to_proto(&self.app.get_health_distribution(&caller, filter, group_by).await?)
        })
        .await
    }

    async fn get_health_history(&self, req: Request<pb::GetHealthHistoryRequest>) -> Rpc<pb::GetHealthHistoryResponse> {
        handle(req, Access::Read, async |caller, r| {
            let query = portfolio::history(r)?;
            Ok(portfolio::history_to_proto(self.app.get_health_history(&caller, query).await?))
        })
        .await
    }

    async fn start_recompute(&self, req: Request<pb::StartRecomputeRequest>) -> Rpc<pb::RecomputeJob> {
        handle(req, Access::Admin, async |caller, r| {
            let request_id = jobs::start(&r)?;
            Ok(jobs::to_proto(&self.app.start_recompute(&caller, request_id).await?))
        })
        .await
    }

    async fn get_recompute_job(&self, req: Request<pb::GetRecomputeJobRequest>) -> Rpc<pb::RecomputeJob> {
        handle(req, Access::Read, async |caller, r| {
            let id = jobs::get(&r)?;
            Ok(jobs::to_proto(&self.app.get_recompute_job(&caller, id).await?))
        })
        .await
    }

    async fn backtest_scorecard(&self, req: Request<pb::BacktestScorecardRequest>) -> Rpc<pb::Backtest> {
        handle(req, Access::Read, async |caller, r| {
            let query = backtest::parse(&r)?;
            Ok(backtest::to_proto(&self.app.backtest_scorecard(&caller, query).await?))
        })
        .await
    }

    async fn start_backtest(&self, req: Request<pb::StartBacktestRequest>) -> Rpc<pb::BacktestJob> {
        handle(req, Access::Write, async |caller, r| {
            let (query, request_id) = backtest::start(&r)?;
            Ok(backtest::job_to_proto(&self.app.start_backtest(&caller, query, request_id).await?))
        })
        .await
    }

    async fn train_churn_model(&self, req: Request<pb::TrainChurnModelRequest>) -> Rpc<pb::ChurnModel> {
        handle(req, Access::Admin, async |caller, r| {
            let query = churn::train(&r)?;
            Ok(churn::model_to_proto(&self.app.train_churn_model(&caller, query).await?))
        })
        .await
    }

    async fn get_account_predictions(
        &self,
        req: Request<pb::GetAccountPredictionsRequest>,
    ) -> Rpc<pb::AccountPredictions> {
        handle(req, Access::Read, async |caller, r| {
            let account = churn::predictions(&r)?;
            Ok(churn::predictions_to_proto(account, &self.app.get_account_predictions(&caller, account).await?))
        })
        .await
    }

    async fn suggest_scorecard_weights(
        &self,
        req: Request<pb::SuggestScorecardWeightsRequest>,
    ) -> Rpc<pb::ScorecardWeightSuggestion> {
        handle(req, Access::Read, async |caller, r| {
            let version = churn::get(&pb::GetChurnModelRequest { version: r.model_version })
                .map_err(|_| banso_kit::Error::invalid("model_version", "must be 0 (the latest) or positive"))?;
            Ok(churn::suggestion_to_proto(&self.app.suggest_weights(&caller, version).await?))
        })
        .await
    }

    async fn forecast_renewals(&self, req: Request<pb::ForecastRenewalsRequest>) -> Rpc<pb::RenewalForecast> {
        handle(req, Access::Read, async |caller, r| {
            let (window, segment_by) = churn::forecast(&r)?;
            Ok(churn::forecast_to_proto(self.app.forecast_renewals(&caller, window, segment_by).await?))
        })
        .await
    }

    async fn get_churn_model(&self, req: Request<pb::GetChurnModelRequest>) -> Rpc<pb::ChurnModel> {
        handle(req, Access::Read, async |caller, r| {
            let version = churn::get(&r)?;
            Ok(churn::model_to_proto(&self.app.get_churn_model(&caller, version).await?))
        })
        .await
    }

    async fn list_churn_models(&self, req: Request<pb::ListChurnModelsRequest>) -> Rpc<pb::ListChurnModelsResponse> {
        handle(req, Access::Read, async |caller, r| {
            let page = churn::list(&r)?;
            Ok(churn::list_to_proto(self.app.list_churn_models(&caller, page).await?))
        })
        .await
    }

    async fn get_backtest_job(&self, req: Request<pb::GetBacktestJobRequest>) -> Rpc<pb::BacktestJob> {
        handle(req, Access::Read, async |caller, r| {
            let id = backtest::get_job(&r)?;
            Ok(backtest::job_to_proto(&self.app.get_backtest_job(&caller, id).await?))
        })
        .await
    }
}
