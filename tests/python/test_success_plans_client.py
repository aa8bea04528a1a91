"""Success plans through a Python client generated from proto/, against the
same `banso up`: an account made in Accounts reaches Playbooks over the bus,
and the source's result review comes out exactly.
"""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import field_mask_pb2

from banso.accounts.v1 import accounts_service_pb2 as svc
from banso.playbooks.v1 import success_plan_pb2 as sp
from banso.playbooks.v1 import success_plan_pb2_grpc
from banso.types.v1 import types_pb2
from test_accounts_client import error_reason, new_account, rpc_error, violations


@pytest.fixture(scope="module")
def plans(channel):
    return success_plan_pb2_grpc.SuccessPlansServiceStub(channel)


def known_account(accounts, plans, md) -> str:
    """An account made in Accounts, once Playbooks' projection has it."""
    account = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account("離職率の改善")), metadata=md)
    deadline = time.monotonic() + 30
    while True:
        try:
            plans.ListSuccessPlans(sp.ListSuccessPlansRequest(account_id=account.id), metadata=md)
            probe = sp.CreateSuccessPlanRequest(plan=sp.SuccessPlan(account_id=account.id, display_name="probe"))
            plan = plans.CreateSuccessPlan(probe, metadata=md)
            return account.id, plan
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_source_example_through_grpcio(accounts, plans, admin_md):
    account_id, _ = known_account(accounts, plans, admin_md)
    plan = plans.CreateSuccessPlan(
        sp.CreateSuccessPlanRequest(
            plan=sp.SuccessPlan(
                account_id=account_id,
                display_name="新入社員の定着",
                checkpoints=[
                    sp.Checkpoint(
                        metric="staff turnover",
                        unit="%",
                        direction=sp.DIRECTION_LOWER_IS_BETTER,
                        kind=sp.CHECKPOINT_KIND_RATE,
                        baseline=30,
                        target=21,
                        due_date=types_pb2.Date(year=2030, month=3, day=31),
                        assumption="half of the leavers leave in their first 3 months",
                    )
                ],
                deliverables=[
                    sp.Deliverable(
                        title="onboarding buddies",
                        responsible=sp.PARTY_CUSTOMER,
                        status=sp.DELIVERABLE_STATUS_DONE,
                        quality_rating=4,
                        tasks=[sp.PlanTask(title="pair", done=True), sp.PlanTask(title="review", done=True)],
                    ),
                    sp.Deliverable(
                        title="1:1 cadence",
                        responsible=sp.PARTY_CUSTOMER,
                        status=sp.DELIVERABLE_STATUS_IN_PROGRESS,
                        tasks=[sp.PlanTask(title=t, done=d) for t, d in (("a", True), ("b", False), ("c", False))],
                    ),
                ],
            )
        ),
        metadata=admin_md,
    )
    err = rpc_error(
        plans.ConcludeResultReview,
        sp.ConcludeResultReviewRequest(plan_id=plan.id, analysis="a", next_step="b"),
        metadata=admin_md,
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(err) == "REVIEW_FACTS_MISSING"

    plans.RecordCheckpointReading(
        sp.RecordCheckpointReadingRequest(
            plan_id=plan.id, checkpoint_id=plan.checkpoints[0].id, reading=sp.Reading(value=25)
        ),
        metadata=admin_md,
    )
    review = plans.GetResultReview(sp.GetResultReviewRequest(plan_id=plan.id), metadata=admin_md)
    result = review.results[0]
    assert f"{result.attainment * 100:.1f}" == "55.6"
    assert (result.change, result.shortfall) == (-5, 4)
    assert review.execution.quantity == pytest.approx(4 / 7)
    assert review.conclusion == sp.REVIEW_CONCLUSION_RAISE_EXECUTION

    done = plans.ConcludeResultReview(
        sp.ConcludeResultReviewRequest(plan_id=plan.id, analysis="事実: 25%", next_step="全チームで実施"),
        metadata=admin_md,
    )
    assert done.state == sp.PLAN_STATE_CONCLUDED
    assert done.review.analysis == "事実: 25%"


def test_bad_fields_are_named_and_other_tenants_see_nothing(accounts, plans, admin_md, md_for):
    account_id, plan = known_account(accounts, plans, admin_md)
    bad = sp.Deliverable(title="cleansing", responsible=sp.PARTY_VENDOR, nature=sp.PARTY_CUSTOMER, quality_rating=6)
    err = rpc_error(
        plans.UpdateSuccessPlan,
        sp.UpdateSuccessPlanRequest(
            plan=sp.SuccessPlan(
                id=plan.id,
                deliverables=[bad],
                checkpoints=[
                    sp.Checkpoint(
                        metric="cost",
                        direction=sp.DIRECTION_LOWER_IS_BETTER,
                        kind=sp.CHECKPOINT_KIND_COST,
                        baseline=5,
                        target=9,
                    )
                ],
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["deliverables", "checkpoints"]),
        ),
        metadata=admin_md,
    )
    got = violations(err)
    for field in (
        "plan.deliverables[0].proxy_reason",
        "plan.deliverables[0].proxy_end_date",
        "plan.deliverables[0].quality_rating",
        "plan.checkpoints[0].target",
    ):
        assert field in got, got
    other = md_for("globex", "admin")
    err = rpc_error(plans.GetSuccessPlan, sp.GetSuccessPlanRequest(id=plan.id), metadata=other)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert account_id
