//! What a survey asks, and which answers it takes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

named!(Kind { Ces = "ces", Outcome = "outcome", Nps = "nps", Csat = "csat", Custom = "custom" });
named!(QuestionType { Scale = "scale", Choice = "choice", Text = "text" });
named!(Language { En = "en", Ja = "ja" });
named!(NpsCategory { Detractor = "detractor", Passive = "passive", Promoter = "promoter" });

/// Most custom questions a survey has.
pub(crate) const MAX_QUESTIONS: usize = 20;
/// Longest comment or text answer, in characters.
pub(crate) const MAX_ANSWER_TEXT: usize = 2000;

impl Kind {
    /// The main question's scale, inclusive; `None` for CUSTOM.
    pub(crate) fn scale(self) -> Option<(i32, i32)> {
        match self {
            Kind::Ces => Some((1, 7)),
            Kind::Outcome | Kind::Csat => Some((1, 5)),
            Kind::Nps => Some((0, 10)),
            Kind::Custom => None,
        }
    }

    /// The main question when the survey gives none. `{outcome}` is the
    /// outcome asked about (OUTCOME).
    pub(crate) fn default_question(self, language: Language) -> &'static str {
        match (self, language) {
            (Kind::Ces, Language::En) => "The company made it easy for me to handle my issue.",
            (Kind::Ces, Language::Ja) => "この会社は、私の用件を簡単に解決できるようにしてくれた。",
            (Kind::Outcome, Language::En) => "Did you reach {outcome}?",
            (Kind::Outcome, Language::Ja) => "{outcome}を達成できましたか？",
            (Kind::Nps, Language::En) => "How likely are you to recommend us to a friend or colleague?",
            (Kind::Nps, Language::Ja) => "この製品を友人や同僚に薦める可能性はどのくらいありますか？",
            (Kind::Csat, Language::En) => "How satisfied are you with us?",
            (Kind::Csat, Language::Ja) => "当社にどのくらい満足していますか？",
            (Kind::Custom, _) => "",
        }
    }
}

/// The outcome asked about when neither a success plan nor the survey names one.
pub(crate) fn default_outcome(language: Language) -> &'static str {
    match language {
        Language::En => "the result you bought the product for",
        Language::Ja => "製品を導入した目的の成果",
    }
}

/// NPS: promoter 9–10, passive 7–8, detractor 0–6.
pub(crate) fn nps_category(score: f64) -> NpsCategory {
    if score >= 9.0 {
        NpsCategory::Promoter
    } else if score >= 7.0 {
        NpsCategory::Passive
    } else {
        NpsCategory::Detractor
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Question {
    /// "q1", "q2", … in order.
    pub id: String,
    pub text: String,
    pub kind: QuestionType,
    pub scale: (i32, i32),
    pub choices: Vec<String>,
    pub multiple: bool,
    pub required: bool,
}

/// What a person writes of a survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub display_name: String,
    pub kind: Kind,
    /// Empty: the kind's default.
    pub question: String,
    pub default_outcome: String,
    pub questions: Vec<Question>,
    /// Empty: no perception question.
    pub perception_statement: String,
    pub language: Language,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Survey {
    pub id: Uuid,
    pub body: Body,
    pub create_time: DateTime<Utc>,
}

impl Survey {
    pub(crate) fn has_statement(&self) -> bool {
        !self.body.perception_statement.is_empty()
    }

    /// The main question as the customer reads it, `outcome` filled in.
    pub(crate) fn question(&self, outcome: &str) -> String {
        let q = if self.body.question.is_empty() {
            self.body.kind.default_question(self.body.language)
        } else {
            &self.body.question
        };
        q.replace("{outcome}", outcome)
    }

    /// The outcome asked about: the account's success plan's, else the
    /// survey's, else the default.
    pub(crate) fn outcome(&self, from_plan: Option<&str>) -> String {
        match from_plan.filter(|s| !s.trim().is_empty()) {
            Some(o) => o.to_string(),
            None if !self.body.default_outcome.is_empty() => self.body.default_outcome.clone(),
            None => default_outcome(self.body.language).to_string(),
        }
    }
}

/// One custom question's answer as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct QuestionAnswer {
    pub question_id: String,
    pub scale: Option<i32>,
    pub choices: Vec<String>,
    pub text: String,
}

/// An answer as submitted with a token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Submission {
    pub score: Option<i32>,
    pub comment: String,
    pub answers: Vec<QuestionAnswer>,
    pub perception_agreement: Option<i32>,
}

/// Every way `s` does not fit `survey`: (field, description), all at once.
pub(crate) fn check_submission(survey: &Survey, s: &Submission) -> Vec<(String, String)> {
    let mut bad = Vec::new();
    let kind = survey.body.kind;
    match (kind.scale(), s.score) {
        (Some((lo, hi)), Some(x)) if !(lo..=hi).contains(&x) => {
            bad.push(("score".into(), format!("must be {lo} to {hi} for a {} survey, got {x}", kind.as_str())));
        }
        (Some((lo, hi)), None) => bad.push(("score".into(), format!("is required: {lo} to {hi}"))),
        (None, Some(x)) => bad.push(("score".into(), format!("a custom survey has no main question, got {x}"))),
        _ => {}
    }
    match (survey.has_statement(), s.perception_agreement) {
        (true, Some(x)) if !(1..=5).contains(&x) => {
            bad.push(("perception_agreement".into(), format!("must be 1 to 5, got {x}")));
        }
        (false, Some(x)) => {
            bad.push(("perception_agreement".into(), format!("the survey has no perception statement, got {x}")));
        }
        _ => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, a) in s.answers.iter().enumerate() {
        let field = format!("answers[{i}]");
        let Some(q) = survey.body.questions.iter().find(|q| q.id == a.question_id) else {
            bad.push((format!("{field}.question_id"), format!("the survey has no question {:?}", a.question_id)));
            continue;
        };
        if !seen.insert(q.id.clone()) {
            bad.push((format!("{field}.question_id"), format!("question {} is answered twice", q.id)));
            continue;
        }
        match q.kind {
            QuestionType::Scale => match a.scale {
                Some(x) if (q.scale.0..=q.scale.1).contains(&x) => {}
                Some(x) => {
                    bad.push((format!("{field}.scale"), format!("must be {} to {}, got {x}", q.scale.0, q.scale.1)))
                }
                None => bad.push((format!("{field}.scale"), format!("question {} takes a scale value", q.id))),
            },
            QuestionType::Choice => {
                if a.choices.is_empty() {
                    bad.push((format!("{field}.choices"), format!("question {} takes a choice", q.id)));
                } else if a.choices.len() > 1 && !q.multiple {
                    bad.push((
                        format!("{field}.choices"),
                        format!("question {} takes one choice, got {}", q.id, a.choices.len()),
                    ));
                }
                for c in &a.choices {
                    if !q.choices.contains(c) {
                        bad.push((format!("{field}.choices"), format!("{c:?} is not a choice of question {}", q.id)));
                    }
                }
            }
            // Its length and characters are the wire's to check (in characters).
            QuestionType::Text => {}
        }
    }
    for q in survey.body.questions.iter().filter(|q| q.required) {
        // A required text question answered with nothing but spaces is not answered.
        let answered = s
            .answers
            .iter()
            .any(|a| a.question_id == q.id && (q.kind != QuestionType::Text || !a.text.trim().is_empty()));
        if !answered {
            bad.push(("answers".into(), format!("question {} is required", q.id)));
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(kind: Kind, statement: &str, questions: Vec<Question>) -> Survey {
        Survey {
            id: Uuid::nil(),
            body: Body {
                display_name: "s".into(),
                kind,
                question: String::new(),
                default_outcome: String::new(),
                questions,
                perception_statement: statement.into(),
                language: Language::En,
            },
            create_time: DateTime::UNIX_EPOCH,
        }
    }

    fn submission(score: Option<i32>) -> Submission {
        Submission { score, comment: String::new(), answers: vec![], perception_agreement: None }
    }

    /// The source's NPS categories: 0–6, 7–8, 9–10.
    #[test]
    fn nps_categories() {
        let cats: Vec<_> = (0..=10).map(|x| nps_category(f64::from(x))).collect();
        assert!(cats[..7].iter().all(|c| *c == NpsCategory::Detractor));
        assert_eq!(&cats[7..9], &[NpsCategory::Passive, NpsCategory::Passive]);
        assert_eq!(&cats[9..], &[NpsCategory::Promoter, NpsCategory::Promoter]);
        assert_eq!(nps_category(8.9), NpsCategory::Passive);
    }

    /// Each kind's scale is enforced at both ends; CUSTOM takes no score.
    #[test]
    fn scores_are_on_the_kinds_scale() {
        for (kind, lo, hi) in [(Kind::Ces, 1, 7), (Kind::Outcome, 1, 5), (Kind::Nps, 0, 10), (Kind::Csat, 1, 5)] {
            let s = survey(kind, "", vec![]);
            assert!(check_submission(&s, &submission(Some(lo))).is_empty());
            assert!(check_submission(&s, &submission(Some(hi))).is_empty());
            for bad in [lo - 1, hi + 1] {
                let v = check_submission(&s, &submission(Some(bad)));
                assert_eq!(v.len(), 1, "{kind:?} {bad}");
                assert!(v[0].1.contains(&bad.to_string()), "{v:?}");
            }
            assert_eq!(check_submission(&s, &submission(None))[0].0, "score");
        }
        let custom = survey(Kind::Custom, "", vec![]);
        assert!(check_submission(&custom, &submission(None)).is_empty());
        assert_eq!(check_submission(&custom, &submission(Some(3)))[0].0, "score");
    }

    #[test]
    fn custom_answers_are_checked_against_their_questions() {
        let q = |id: &str, kind, required| Question {
            id: id.into(),
            text: "t".into(),
            kind,
            scale: (1, 5),
            choices: vec!["a".into(), "b".into()],
            multiple: false,
            required,
        };
        let s = survey(
            Kind::Custom,
            "works as if in our shoes",
            vec![
                q("q1", QuestionType::Scale, true),
                q("q2", QuestionType::Choice, false),
                q("q3", QuestionType::Text, false),
            ],
        );
        let a = |id: &str, scale, choices: &[&str], text: &str| QuestionAnswer {
            question_id: id.into(),
            scale,
            choices: choices.iter().map(|c| c.to_string()).collect(),
            text: text.into(),
        };
        let ok = Submission {
            score: None,
            comment: "ok".into(),
            answers: vec![a("q1", Some(5), &[], ""), a("q2", None, &["b"], ""), a("q3", None, &[], "日本語の回答")],
            perception_agreement: Some(4),
        };
        assert!(check_submission(&s, &ok).is_empty());
        let bad = Submission {
            score: None,
            comment: String::new(),
            answers: vec![
                a("q2", None, &["a", "c"], ""),
                a("q3", None, &[], &"あ".repeat(MAX_ANSWER_TEXT + 1)),
                a("q9", None, &[], ""),
                a("q2", None, &["a"], ""),
            ],
            perception_agreement: Some(6),
        };
        let v = check_submission(&s, &bad);
        let fields: Vec<_> = v.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "perception_agreement",
                "answers[0].choices",
                "answers[0].choices",
                "answers[2].question_id",
                "answers[3].question_id",
                "answers"
            ],
            "{v:?}"
        );
        let fits = Submission {
            answers: vec![a("q1", Some(1), &[], ""), a("q3", None, &[], &"あ".repeat(MAX_ANSWER_TEXT))],
            perception_agreement: None,
            ..ok
        };
        assert!(check_submission(&s, &fits).is_empty());
    }

    #[test]
    fn the_outcome_comes_from_the_plan_then_the_survey_then_the_default() {
        let mut s = survey(Kind::Outcome, "", vec![]);
        assert_eq!(
            s.question(&s.outcome(Some("20% fewer support tickets"))),
            "Did you reach 20% fewer support tickets?"
        );
        assert_eq!(s.outcome(None), "the result you bought the product for");
        s.body.default_outcome = "faster closing".into();
        assert_eq!(s.outcome(Some("  ")), "faster closing");
        s.body.language = Language::Ja;
        s.body.default_outcome.clear();
        assert_eq!(s.question(&s.outcome(Some("月次決算の短縮"))), "月次決算の短縮を達成できましたか？");
    }
}
