"""Feedback through a Python client generated from proto/, against the same
`banso up`: surveys and campaigns with a token; the answers through
SurveyResponseServiceStub with no credentials at all, as a customer's
browser or mail link would; the results' NPS computed from them.
"""

from __future__ import annotations

import time

import grpc
import pytest

from banso.accounts.v1 import accounts_service_pb2 as svc, contact_pb2
from banso.feedback.v1 import survey_pb2 as fb
from banso.feedback.v1 import survey_pb2_grpc
from test_accounts_client import error_reason, new_account, rpc_error, unique_tag, violations

# A tenant of its own: its results hold this module's answers alone.
TENANT = "feedback-py"


@pytest.fixture(scope="module")
def surveys(channel):
    return survey_pb2_grpc.SurveysServiceStub(channel)


@pytest.fixture(scope="module")
def answers(channel):
    """The public answer path: the stub is called without any metadata."""
    return survey_pb2_grpc.SurveyResponseServiceStub(channel)


@pytest.fixture(scope="module")
def md(md_for):
    return md_for(TENANT, "admin")


def account_with_contacts(accounts, md, n: int) -> tuple[str, list[str]]:
    account = accounts.CreateAccount(
        svc.CreateAccountRequest(account=new_account("株式会社フィードバック", external_id=unique_tag("fb"))), metadata=md
    )
    contacts = []
    for i in range(n):
        c = accounts.CreateContact(
            svc.CreateContactRequest(
                contact=contact_pb2.Contact(
                    account_id=account.id,
                    name=f"担当者 {i}",
                    email=f"person{i}.{unique_tag('c')}@example.jp",
                    level=contact_pb2.CONTACT_LEVEL_MANAGER,
                )
            ),
            metadata=md,
        )
        contacts.append(c.id)
    return account.id, contacts


def campaign_once_known(surveys, md, survey_id: str, account_ids: list[str]) -> fb.Campaign:
    """CreateCampaign is NOT_FOUND until Feedback's projection knows every
    account (it learns of them from Accounts' events)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return surveys.CreateCampaign(
                fb.CreateCampaignRequest(
                    campaign=fb.Campaign(survey_id=survey_id, display_name="四半期 NPS", account_ids=account_ids)
                ),
                metadata=md,
            )
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_answers_without_credentials_make_the_results_nps(accounts, surveys, answers, md):
    account_id, contacts = account_with_contacts(accounts, md, 3)
    # A sentinel made after the contacts: once Feedback knows it, it knows
    # them (one tenant's events arrive in order).
    sentinel = accounts.CreateAccount(
        svc.CreateAccountRequest(account=new_account("番兵", external_id=unique_tag("fb"))), metadata=md
    )
    survey = surveys.CreateSurvey(
        fb.CreateSurveyRequest(survey=fb.Survey(display_name="関係性 NPS", kind=fb.SURVEY_KIND_NPS, language="ja")),
        metadata=md,
    )
    campaign = campaign_once_known(surveys, md, survey.id, [account_id, sentinel.id])
    assert (campaign.counts.invited, campaign.counts.accounts_without_contacts) == (3, 1)
    invitations = surveys.ListInvitations(fb.ListInvitationsRequest(campaign_id=campaign.id), metadata=md).invitations
    token = {i.contact_id: i.token for i in invitations}
    assert sorted(token) == sorted(contacts)

    # No credentials: the token alone. The form, then an answer per contact.
    form = answers.GetSurveyForm(fb.GetSurveyFormRequest(token=token[contacts[0]]))
    assert (form.kind, form.scale_min, form.scale_max, form.language) == (fb.SURVEY_KIND_NPS, 0, 10, "ja")
    categories = []
    for contact, score in zip(contacts, (10, 9, 3)):
        r = answers.SubmitSurveyAnswer(fb.SubmitSurveyAnswerRequest(token=token[contact], score=score, comment="ありがとう"))
        assert r.answer_id
        categories.append(r.nps_category)
    assert categories == [fb.NPS_CATEGORY_PROMOTER, fb.NPS_CATEGORY_PROMOTER, fb.NPS_CATEGORY_DETRACTOR]

    # 2 promoters, 1 detractor of 3: NPS = 66.7 % − 33.3 % = 33.3.
    results = surveys.GetSurveyResults(fb.GetSurveyResultsRequest(survey_id=survey.id), metadata=md)
    total = results.total
    assert (total.answers, total.promoters, total.passives, total.detractors) == (3, 2, 0, 1)
    assert total.nps.n == 3
    assert total.nps.HasField("value")
    assert total.nps.value == pytest.approx(100 / 3, abs=0.01)
    assert total.nps.low < total.nps.value < total.nps.high

    # A token answers once: the second answer is FAILED_PRECONDITION.
    err = rpc_error(answers.SubmitSurveyAnswer, fb.SubmitSurveyAnswerRequest(token=token[contacts[0]], score=0))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err) == "TOKEN_USED"
    again = surveys.GetSurveyResults(fb.GetSurveyResultsRequest(survey_id=survey.id), metadata=md)
    assert again.total.answers == 3


def test_the_answer_path_needs_a_token_and_nothing_else_is_public(surveys, answers):
    # A forged token is INVALID_ARGUMENT naming `token`, never UNAUTHENTICATED.
    err = rpc_error(answers.SubmitSurveyAnswer, fb.SubmitSurveyAnswerRequest(token="forged.token", score=5))
    assert list(violations(err)) == ["token"]
    err = rpc_error(answers.GetSurveyForm, fb.GetSurveyFormRequest(token=""))
    assert list(violations(err)) == ["token"]
    # The surveys themselves need a bearer token.
    err = rpc_error(surveys.ListSurveys, fb.ListSurveysRequest())
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
