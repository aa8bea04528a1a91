//! The event envelope and its subject.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use banso_proto::events::{Envelope, envelope::Payload};

/// The snake_case type of a payload: the third token of its subject.
pub fn type_of(payload: &Payload) -> &'static str {
    match payload {
        Payload::AccountCreated(_) => "account_created",
        Payload::AccountUpdated(_) => "account_updated",
        Payload::AccountDeleted(_) => "account_deleted",
        Payload::ContactChanged(_) => "contact_changed",
        Payload::ContractChanged(_) => "contract_changed",
        Payload::ActivityLogged(_) => "activity_logged",
        Payload::TenantSettingsChanged(_) => "tenant_settings_changed",
        Payload::SegmentChanged(_) => "segment_changed",
        Payload::HealthScoreChanged(_) => "health_score_changed",
        Payload::UsageSeen(_) => "usage_seen",
        Payload::ChurnRiskChanged(_) => "churn_risk_changed",
        Payload::ExpansionSignalChanged(_) => "expansion_signal_changed",
        Payload::AccountsToScore(_) => "accounts_to_score",
        Payload::CtaOpened(_) => "cta_opened",
        Payload::CtaUpdated(_) => "cta_updated",
        Payload::CtaClosed(_) => "cta_closed",
        Payload::OutreachSent(_) => "outreach_sent",
        Payload::OutreachFailed(_) => "outreach_failed",
        Payload::PlaybookFired(_) => "playbook_fired",
        Payload::PlanCreated(_) => "plan_created",
        Payload::CheckpointRecorded(_) => "checkpoint_recorded",
        Payload::ReviewConcluded(_) => "review_concluded",
        Payload::SurveyAnswered(_) => "survey_answered",
        Payload::SurveyInvitationIssued(_) => "survey_invitation_issued",
        Payload::FeedbackReceived(_) => "feedback_received",
        Payload::FeedbackImported(_) => "feedback_imported",
        Payload::ThemeStatusChanged(_) => "theme_status_changed",
        Payload::LoopClosed(_) => "loop_closed",
        Payload::NoticeIssued(_) => "notice_issued",
    }
}

/// Every event type there is: the fields of the envelope's `payload` oneof,
/// read from the descriptors, so a new event needs no list kept here.
pub fn all_types() -> &'static [String] {
    static TYPES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        use prost::Message as _;
        let Ok(set) = prost_types::FileDescriptorSet::decode(banso_proto::FILE_DESCRIPTOR_SET) else {
            return Vec::new();
        };
        set.file
            .iter()
            .filter(|f| f.package() == "banso.events.v1")
            .flat_map(|f| f.message_type.iter())
            .filter(|m| m.name() == "Envelope")
            .flat_map(|m| m.field.iter().filter(|f| f.oneof_index.is_some()).map(|f| f.name().to_owned()))
            .collect()
    })
}

/// The account an event is about; `None` for a tenant-wide event. Every
/// payload is named, so a new event must say which it is: its partition
/// ([`crate::partition::partition_of_event`]) follows from it.
pub fn account_of(envelope: &Envelope) -> Option<&str> {
    let id = match envelope.payload.as_ref()? {
        Payload::AccountCreated(e) => e.account.as_ref().map(|a| a.id.as_str()),
        Payload::AccountUpdated(e) => e.account.as_ref().map(|a| a.id.as_str()),
        Payload::AccountDeleted(e) => Some(e.account_id.as_str()),
        Payload::ContactChanged(e) => e.contact.as_ref().map(|c| c.account_id.as_str()),
        Payload::ContractChanged(e) => e.account.as_ref().map(|a| a.id.as_str()),
        Payload::ActivityLogged(e) => e.activity.as_ref().map(|a| a.account_id.as_str()),
        Payload::TenantSettingsChanged(_) | Payload::SegmentChanged(_) => None,
        Payload::HealthScoreChanged(e) => Some(e.account_id.as_str()),
        Payload::UsageSeen(e) => Some(e.account_id.as_str()),
        Payload::ChurnRiskChanged(e) => Some(e.account_id.as_str()),
        Payload::ExpansionSignalChanged(e) => Some(e.account_id.as_str()),
        // Its accounts share one partition: the first names it.
        Payload::AccountsToScore(e) => e.account_ids.first().map(String::as_str),
        Payload::CtaOpened(e) => e.cta.as_ref().map(|c| c.account_id.as_str()),
        Payload::CtaUpdated(e) => e.cta.as_ref().map(|c| c.account_id.as_str()),
        Payload::CtaClosed(e) => e.cta.as_ref().map(|c| c.account_id.as_str()),
        Payload::OutreachSent(e) => Some(e.account_id.as_str()),
        Payload::OutreachFailed(e) => Some(e.account_id.as_str()),
        Payload::PlaybookFired(e) => Some(e.account_id.as_str()),
        Payload::PlanCreated(e) => e.plan.as_ref().map(|p| p.account_id.as_str()),
        Payload::CheckpointRecorded(e) => Some(e.account_id.as_str()),
        Payload::ReviewConcluded(e) => Some(e.account_id.as_str()),
        Payload::SurveyAnswered(e) => Some(e.account_id.as_str()),
        Payload::SurveyInvitationIssued(e) => Some(e.account_id.as_str()),
        Payload::FeedbackReceived(e) => e.item.as_ref().map(|i| i.account_id.as_str()),
        // An import's items are of many accounts: the tenant's.
        Payload::FeedbackImported(_) => None,
        // A theme is the tenant's, not an account's.
        Payload::ThemeStatusChanged(_) => None,
        Payload::LoopClosed(e) => Some(e.account_id.as_str()),
        // A department's notice is the tenant's.
        Payload::NoticeIssued(_) => None,
    }?;
    (!id.is_empty()).then_some(id)
}

/// `banso.<source>.<type>`; on a partitioned bus the bus adds `.p<k>`.
pub fn subject(envelope: &Envelope) -> String {
    format!("banso.{}.{}", envelope.source, envelope.r#type)
}

/// The subjects of everything `source` publishes: `banso.<source>.>`.
pub fn all_of(source: &str) -> String {
    format!("banso.{source}.>")
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// A new envelope for `payload`, stamped now, carrying the current trace.
pub fn new(tenant_id: &str, source: &str, payload: Payload) -> Envelope {
    let now = chrono::Utc::now();
    let mut trace_context = HashMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MapInjector(&mut trace_context)));
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant_id.to_owned(),
        occurred_at: Some(pbjson_types::Timestamp {
            seconds: now.timestamp(),
            nanos: now.timestamp_subsec_nanos() as i32,
        }),
        source: source.to_owned(),
        r#type: type_of(&payload).to_owned(),
        trace_context,
        payload: Some(payload),
    }
}

/// A span for handling `envelope`, a child of the trace that produced it, so
/// producer → relay → consumer is one trace.
pub fn span(kind: &'static str, consumer: &str, envelope: &Envelope) -> tracing::Span {
    let span = tracing::info_span!(
        "event",
        otel.name = %format!("{kind} {}", subject(envelope)),
        otel.kind = if kind == "publish" { "producer" } else { "consumer" },
        messaging.system = "banso",
        messaging.operation = kind,
        messaging.destination = %subject(envelope),
        messaging.message.id = %envelope.id,
        consumer = consumer,
        tenant_id = %envelope.tenant_id,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&MapExtractor(&envelope.trace_context)));
    let _ = span.set_parent(parent);
    span
}

/// Does `subject` match `pattern` (NATS wildcards: `*` one token, `>` the rest)?
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_type_is_listed() {
        let types = all_types();
        for p in [
            Payload::AccountCreated(Default::default()),
            Payload::HealthScoreChanged(Default::default()),
            Payload::SegmentChanged(Default::default()),
        ] {
            assert!(types.iter().any(|t| t == type_of(&p)), "{} missing from {types:?}", type_of(&p));
        }
    }

    #[test]
    fn subjects_and_wildcards() {
        assert!(subject_matches("banso.accounts.>", "banso.accounts.account_created"));
        assert!(subject_matches("banso.*.account_created", "banso.accounts.account_created"));
        assert!(subject_matches("banso.accounts.account_created", "banso.accounts.account_created"));
        assert!(!subject_matches("banso.accounts.>", "banso.accounts"));
        assert!(!subject_matches("banso.health.>", "banso.accounts.account_created"));
        assert!(!subject_matches("banso.accounts.account_created", "banso.accounts.account_updated"));
    }

    #[test]
    fn new_envelopes_name_their_type_and_subject() {
        let e = new(
            "acme",
            "accounts",
            Payload::AccountDeleted(banso_proto::events::AccountDeleted {
                account_id: "x".into(),
                external_id: "".into(),
            }),
        );
        assert_eq!(subject(&e), "banso.accounts.account_deleted");
        assert_eq!(uuid::Uuid::parse_str(&e.id).unwrap().get_version_num(), 7);
    }
}
