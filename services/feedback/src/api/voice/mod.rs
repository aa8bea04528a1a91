//! The voice of the customer on the wire: one tonic impl whose methods
//! each hand their request to the door of its part — items and themes
//! ([`items`]), target selection ([`rank`]), closing the loop ([`loops`]),
//! routing to departments ([`routing`]), CS = CO + CX ([`axes`]).

mod axes;
mod items;
mod loops;
mod rank;
mod routing;

use banso_kit::{rpc::Rpc, server::Kit};
use banso_proto::feedback as pb;
use tonic::{Request, Streaming};

use crate::app::App;

pub struct VoiceApi {
    app: App,
    kit: Kit,
}

impl VoiceApi {
    pub(crate) fn new(app: App, kit: Kit) -> Self {
        VoiceApi { app, kit }
    }
}

#[tonic::async_trait]
impl pb::voice_service_server::VoiceService for VoiceApi {
    async fn create_feedback_item(&self, req: Request<pb::CreateFeedbackItemRequest>) -> Rpc<pb::FeedbackItem> {
        items::create_feedback_item(&self.app, &self.kit, req).await
    }

    async fn import_feedback_items(
        &self,
        req: Request<Streaming<pb::ImportFeedbackItemsRequest>>,
    ) -> Rpc<pb::ImportFeedbackItemsResponse> {
        items::import_feedback_items(&self.app, &self.kit, req).await
    }

    async fn get_feedback_item(&self, req: Request<pb::GetFeedbackItemRequest>) -> Rpc<pb::FeedbackItem> {
        items::get_feedback_item(&self.app, &self.kit, req).await
    }

    async fn list_feedback_items(
        &self,
        req: Request<pb::ListFeedbackItemsRequest>,
    ) -> Rpc<pb::ListFeedbackItemsResponse> {
        items::list_feedback_items(&self.app, &self.kit, req).await
    }

    async fn assign_theme(&self, req: Request<pb::AssignThemeRequest>) -> Rpc<pb::FeedbackItem> {
        items::assign_theme(&self.app, &self.kit, req).await
    }

    async fn unassign_theme(&self, req: Request<pb::UnassignThemeRequest>) -> Rpc<pb::FeedbackItem> {
        items::unassign_theme(&self.app, &self.kit, req).await
    }

    async fn suggest_themes(&self, req: Request<pb::SuggestThemesRequest>) -> Rpc<pb::SuggestThemesResponse> {
        items::suggest_themes(&self.app, &self.kit, req).await
    }

    async fn suggest_candidate_themes(
        &self,
        req: Request<pb::SuggestCandidateThemesRequest>,
    ) -> Rpc<pb::SuggestCandidateThemesResponse> {
        items::suggest_candidate_themes(&self.app, &self.kit, req).await
    }

    async fn create_theme(&self, req: Request<pb::CreateThemeRequest>) -> Rpc<pb::Theme> {
        items::create_theme(&self.app, &self.kit, req).await
    }

    async fn get_theme(&self, req: Request<pb::GetThemeRequest>) -> Rpc<pb::Theme> {
        items::get_theme(&self.app, &self.kit, req).await
    }

    async fn list_themes(&self, req: Request<pb::ListThemesRequest>) -> Rpc<pb::ListThemesResponse> {
        items::list_themes(&self.app, &self.kit, req).await
    }

    async fn update_theme(&self, req: Request<pb::UpdateThemeRequest>) -> Rpc<pb::Theme> {
        items::update_theme(&self.app, &self.kit, req).await
    }

    async fn record_decision(&self, req: Request<pb::RecordDecisionRequest>) -> Rpc<pb::Theme> {
        loops::record_decision(&self.app, &self.kit, req).await
    }

    async fn acknowledge_theme(&self, req: Request<pb::AcknowledgeThemeRequest>) -> Rpc<pb::Theme> {
        loops::acknowledge_theme(&self.app, &self.kit, req).await
    }

    async fn set_roadmap_status(&self, req: Request<pb::SetRoadmapStatusRequest>) -> Rpc<pb::Theme> {
        loops::set_roadmap_status(&self.app, &self.kit, req).await
    }

    async fn rank_themes(&self, req: Request<pb::RankThemesRequest>) -> Rpc<pb::RankThemesResponse> {
        rank::rank_themes(&self.app, &self.kit, req).await
    }

    async fn get_reach(&self, req: Request<pb::GetReachRequest>) -> Rpc<pb::Reach> {
        loops::get_reach(&self.app, &self.kit, req).await
    }

    async fn create_subscription(&self, req: Request<pb::CreateSubscriptionRequest>) -> Rpc<pb::Subscription> {
        routing::create_subscription(&self.app, &self.kit, req).await
    }

    async fn list_subscriptions(
        &self,
        req: Request<pb::ListSubscriptionsRequest>,
    ) -> Rpc<pb::ListSubscriptionsResponse> {
        routing::list_subscriptions(&self.app, &self.kit, req).await
    }

    async fn delete_subscription(
        &self,
        req: Request<pb::DeleteSubscriptionRequest>,
    ) -> Rpc<pb::DeleteSubscriptionResponse> {
        routing::delete_subscription(&self.app, &self.kit, req).await
    }

    async fn list_notices(&self, req: Request<pb::ListNoticesRequest>) -> Rpc<pb::ListNoticesResponse> {
        routing::list_notices(&self.app, &self.kit, req).await
    }

    async fn get_success_axes(&self, req: Request<pb::GetSuccessAxesRequest>) -> Rpc<pb::SuccessAxes> {
        axes::get_success_axes(&self.app, &self.kit, req).await
    }

    async fn get_voice_settings(&self, req: Request<pb::GetVoiceSettingsRequest>) -> Rpc<pb::VoiceSettings> {
        items::get_voice_settings(&self.app, &self.kit, req).await
    }

    async fn update_voice_settings(&self, req: Request<pb::UpdateVoiceSettingsRequest>) -> Rpc<pb::VoiceSettings> {
        items::update_voice_settings(&self.app, &self.kit, req).await
    }
}
