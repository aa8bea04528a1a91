//! What the benchmarks need of Feedback beyond its gRPC API (feature
//! `bench`): the public answer path's parts, called in-process, so
//! `banso-bench feedback --breakdown` can measure where an answer's time
//! goes — the token, the reads before the transaction, the transaction with
//! and without its SurveyAnswered — beside the whole path.
//!
//! [`AnswerPath::submit`] is the use case itself (`App::submit_answer`,
//! its answers written in rounds by group commit); [`AnswerPath::read`] and
//! [`AnswerPath::write`] are one answer's reads and transaction on their
//! own, with the same store functions (the path before group commit), to
//! show what a round saves.

use banso_events::{
    Db, Runtime,
    outbox::{OutboxSignal, Relay},
};
use banso_kit::{config::Config, wire};
use uuid::Uuid;

use crate::{
    FeedbackSettings, NAME,
    app::App,
    domain::{
        survey::{Kind, NpsCategory, Submission, check_submission, nps_category},
        token::Signer,
    },
    events,
    store::{self, answers::Answer},
};

/// The public answer path over Feedback's database, outside the server.
///
/// Its pool is the service's size (`BANSO_DB_MAX_CONNECTIONS`) but its own,
/// and it runs a relay of its own woken by its commits, as the service's is
/// by the service's (the two take turns through the outbox lease, as two
/// replicas' do).
pub struct AnswerPath {
    app: App,
}

/// An answer read and checked, ready for its transaction.
pub struct Prepared {
    tenant: String,
    answer: Answer,
    category: Option<NpsCategory>,
}

fn submission(score: i32, comment: &str) -> Submission {
    Submission { score: Some(score), comment: comment.to_string(), answers: Vec::new(), perception_agreement: None }
}

impl AnswerPath {
    /// Opens Feedback's database as `cfg` names it (the service's own
    /// settings, token secret included), with a relay to `runtime`'s bus.
    pub async fn open(cfg: &Config, runtime: &Runtime) -> anyhow::Result<AnswerPath> {
        let settings = FeedbackSettings::from_config(cfg)?;
        let conn = banso_kit::db::open::<crate::migration::Migrator>(cfg, NAME).await?;
        let signal = OutboxSignal::default();
        Relay::new(conn.clone(), runtime.bus.clone(), NAME, signal.clone(), Default::default())
            .supervise(&runtime.supervisor, "banso.feedback.bench");
        let app = App::new(Db::new(conn, signal, NAME), Signer::new(settings.token_secret.expose().as_bytes()), "");
        Ok(AnswerPath { app })
    }

    /// Verifies `token` (HMAC-SHA256, expiry) as the public path does first.
    pub fn verify(&self, token: &str) -> bool {
        self.app.signer.read(token, wire::now()).is_ok()
    }

    /// SubmitSurveyAnswer without gRPC: the use case, whole.
    pub async fn submit(&self, token: &str, score: i32, comment: &str) -> anyhow::Result<Uuid> {
        Ok(self.app.submit_answer(token, submission(score, comment)).await?.0)
    }

    /// The first half of the use case: the token, the invitation, the
    /// survey and the account's projection (its account row and its
    /// signals), and the answer checked against the survey.
    pub async fn read(&self, token: &str, score: i32, comment: &str) -> anyhow::Result<Prepared> {
        let claims = self.app.signer.read(token, wire::now()).map_err(|e| anyhow::anyhow!("token refused: {e:?}"))?;
        let conn = self.app.db.conn();
        let (invitation, sent) = store::campaigns::find_invitation(conn, &claims.tenant, claims.invitation)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no invitation {}", claims.invitation))?;
        anyhow::ensure!(invitation.answer_time.is_none(), "invitation {} is answered", invitation.id);
        let survey = store::surveys::find(conn, &claims.tenant, invitation.survey_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no survey {}", invitation.survey_id))?;
        let s = submission(score, comment);
        let bad = check_submission(&survey, &s);
        anyhow::ensure!(bad.is_empty(), "the answer does not fit the survey: {bad:?}");
        let snapshot =
            store::projection::get(conn, &claims.tenant, invitation.account_id).await?.map_or(sent, |a| a.snapshot());
        let answer = Answer {
            id: Uuid::now_v7(),
            invitation_id: invitation.id,
            survey_id: survey.id,
            campaign_id: invitation.campaign_id,
            kind: survey.body.kind,
            account_id: invitation.account_id,
            contact_id: invitation.contact_id,
            score: s.score,
            perception: s.perception_agreement,
            comment: s.comment,
            answers: s.answers,
            answer_time: wire::now(),
            snapshot,
        };
        let category =
            (survey.body.kind == Kind::Nps).then(|| answer.score.map(|x| nps_category(f64::from(x)))).flatten();
        Ok(Prepared { tenant: claims.tenant, answer, category })
    }

    /// The second half: one transaction that claims the invitation, inserts
    /// the answer and, with `emit`, records SurveyAnswered in the outbox.
    pub async fn write(&self, p: &Prepared, emit: bool) -> anyhow::Result<()> {
        let a = &p.answer;
        self.app
            .db
            .write(&p.tenant, async |tx| {
                let claimed =
                    store::campaigns::claim_answers(tx.conn(), tx.tenant(), &[a.invitation_id], a.answer_time).await?;
                if claimed.is_empty() {
                    return Err(banso_kit::Error::internal(anyhow::anyhow!(
                        "invitation {} was answered",
                        a.invitation_id
                    )));
                }
                store::answers::insert(tx.conn(), tx.tenant(), std::slice::from_ref(a)).await?;
                if emit {
                    tx.emit(events::survey_answered(a, p.category)).await?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
