"""The Accounts API through a Python client generated from proto/.

Every test runs against one `banso up` process (see conftest.py); tests keep
to their own accounts by tagging them with a unique tag.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from banso.accounts.v1 import account_pb2, accounts_service_pb2 as svc, contact_pb2, tenant_settings_pb2
from banso.types.v1 import types_pb2

ERROR_DOMAIN = "banso.dev"


# ----- helpers -----


def unique_tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_account(name: str = "株式会社サンプル", **overrides) -> account_pb2.Account:
    a = account_pb2.Account(
        name=name,
        industry="製造業",
        region="関東",
        plan_tier="Enterprise",
        revenue_band="1B-10B JPY",
        employee_count=1200,
        lifecycle_stage=types_pb2.LIFECYCLE_STAGE_ONBOARDING,
        touch_model=types_pb2.TOUCH_MODEL_HIGH,
        owner_id="csm-tanaka",
        arr=types_pb2.Money(currency_code="JPY", amount_minor=12_000_000),
        contract_start_date=types_pb2.Date(year=2025, month=4, day=1),
        renewal_date=types_pb2.Date(year=2026, month=3, day=31),
        tags=["製造", "enterprise"],
    )
    a.custom_attributes["seats"].int_value = 250
    a.custom_attributes["kickoff"].date_value.CopyFrom(types_pb2.Date(year=2025, month=4, day=15))
    for k, v in overrides.items():
        if isinstance(v, list):
            del getattr(a, k)[:]
            getattr(a, k).extend(v)
        elif hasattr(v, "CopyFrom"):
            getattr(a, k).CopyFrom(v)
        else:
            setattr(a, k, v)
    return a


def rpc_error(fn, *args, **kwargs) -> grpc.RpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def status_details(err: grpc.RpcError) -> dict[str, object]:
    """The google.rpc.Status details from the grpc-status-details-bin trailer,
    unpacked by type: {"BadRequest": ..., "ErrorInfo": ...}."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no grpc-status-details-bin trailer on {err.code()}: {err.details()}"
    assert status.code == err.code().value[0], "google.rpc.Status code differs from the gRPC status code"
    assert status.message == err.details()
    out: dict[str, object] = {}
    for any_ in status.details:
        for cls in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo):
            if any_.Is(cls.DESCRIPTOR):
                msg = cls()
                any_.Unpack(msg)
                out[cls.DESCRIPTOR.name] = msg
    return out


def error_reason(err: grpc.RpcError) -> str:
    info = status_details(err).get("ErrorInfo")
    assert info is not None, f"no ErrorInfo in {err.code()}: {err.details()}"
    assert info.domain == ERROR_DOMAIN
    return info.reason


def violations(err: grpc.RpcError) -> dict[str, str]:
    """{field: description} of the BadRequest detail of an INVALID_ARGUMENT."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{err.code()}: {err.details()}"
    bad = status_details(err).get("BadRequest")
    assert bad is not None, f"INVALID_ARGUMENT without BadRequest: {err.details()}"
    out = {}
    for v in bad.field_violations:
        assert v.field not in out, f"field {v.field} reported twice"
        assert v.description, f"violation of {v.field} has no description"
        out[v.field] = v.description
    return out


def list_all(accounts, md, **request) -> tuple[list[account_pb2.Account], int]:
    """Every account of a ListAccounts query, following next_page_token;
    also the number of pages."""
    out: list[account_pb2.Account] = []
    token = ""
    pages = 0
    while True:
        resp = accounts.ListAccounts(svc.ListAccountsRequest(page_token=token, **request), metadata=md)
        pages += 1
        out.extend(resp.accounts)
        token = resp.next_page_token
        if not token:
            return out, pages
        assert pages < 100, "ListAccounts does not stop paging"


# ----- create, get -----


def test_create_and_get_round_trip_japanese_account(accounts, admin_md):
    sent = new_account(tags=["製造", "enterprise", "製造"], external_id=f"crm-{uuid.uuid4().hex}")
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=sent), metadata=admin_md)

    assert uuid.UUID(created.id).version == 7
    assert created.name == "株式会社サンプル"
    assert created.external_id == sent.external_id
    assert created.industry == "製造業"
    assert created.region == "関東"
    assert created.HasField("employee_count") and created.employee_count == 1200
    assert created.lifecycle_stage == types_pb2.LIFECYCLE_STAGE_ONBOARDING
    assert created.touch_model == types_pb2.TOUCH_MODEL_HIGH
    assert created.arr == types_pb2.Money(currency_code="JPY", amount_minor=12_000_000)
    assert created.contract_start_date == types_pb2.Date(year=2025, month=4, day=1)
    assert created.renewal_date == types_pb2.Date(year=2026, month=3, day=31)
    assert list(created.tags) == ["製造", "enterprise"], "duplicate tags are dropped, order kept"
    assert created.custom_attributes["seats"].int_value == 250
    assert created.custom_attributes["kickoff"].date_value == types_pb2.Date(year=2025, month=4, day=15)
    assert created.etag
    assert created.create_time.seconds > 0
    assert created.update_time == created.create_time

    got = accounts.GetAccount(svc.GetAccountRequest(id=created.id), metadata=admin_md)
    assert got == created


def test_output_only_fields_are_ignored_on_create(accounts, admin_md):
    sent = new_account(name="出力専用テスト株式会社", id=str(uuid.uuid4()), etag="bogus")
    sent.create_time.FromSeconds(1)
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=sent), metadata=admin_md)
    assert created.id != sent.id
    assert created.etag != "bogus"
    assert created.create_time.seconds > 1


def test_employee_count_presence(accounts, admin_md):
    a = new_account(name="人数不明合同会社")
    a.ClearField("employee_count")
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=a), metadata=admin_md)
    assert not created.HasField("employee_count")
    zero = accounts.CreateAccount(
        svc.CreateAccountRequest(account=new_account(name="ゼロ人株式会社", employee_count=0)), metadata=admin_md
    )
    assert zero.HasField("employee_count") and zero.employee_count == 0


# ----- list, filter, paging -----


def test_list_with_filter_pages_through_all(accounts, admin_md):
    tag = unique_tag("paging")
    expansion = []
    for i in range(7):
        a = accounts.CreateAccount(
            svc.CreateAccountRequest(
                account=new_account(
                    name=f"株式会社ページ{i:02d}",
                    lifecycle_stage=types_pb2.LIFECYCLE_STAGE_EXPANSION,
                    tags=[tag],
                )
            ),
            metadata=admin_md,
        )
        expansion.append(a.id)
    for i in range(3):
        accounts.CreateAccount(
            svc.CreateAccountRequest(
                account=new_account(
                    name=f"株式会社オンボード{i}",
                    lifecycle_stage=types_pb2.LIFECYCLE_STAGE_ONBOARDING,
                    tags=[tag],
                )
            ),
            metadata=admin_md,
        )

    flt = svc.AccountFilter(lifecycle_stages=[types_pb2.LIFECYCLE_STAGE_EXPANSION], tag=tag)
    first = accounts.ListAccounts(svc.ListAccountsRequest(page_size=3, filter=flt), metadata=admin_md)
    assert len(first.accounts) == 3
    assert first.next_page_token

    got, pages = list_all(accounts, admin_md, page_size=3, filter=flt)
    assert pages == 3  # 3 + 3 + 1
    ids = [a.id for a in got]
    assert len(ids) == len(set(ids)), "an account appeared on two pages"
    assert ids == expansion, "default order is create_time, oldest first"
    assert all(a.lifecycle_stage == types_pb2.LIFECYCLE_STAGE_EXPANSION for a in got)

    # Both stages, ordered by name descending.
    both = svc.AccountFilter(
        lifecycle_stages=[types_pb2.LIFECYCLE_STAGE_EXPANSION, types_pb2.LIFECYCLE_STAGE_ONBOARDING], tag=tag
    )
    got, pages = list_all(accounts, admin_md, page_size=4, filter=both, order_by="name desc")
    assert len(got) == 10 and pages == 3
    names = [a.name for a in got]
    assert names == sorted(names, reverse=True)

    # Exactly one full page: the server may or may not hand out a token, but
    # the next page must then be empty and final.
    got, _ = list_all(accounts, admin_md, page_size=7, filter=flt)
    assert [a.id for a in got] == expansion


def test_list_filter_by_name_prefix_and_arr(accounts, admin_md):
    tag = unique_tag("arr")
    for name, arr in (("株式会社アルファ", 5_000_000), ("株式会社ベータ", 20_000_000), ("合同会社ガンマ", 50_000_000)):
        accounts.CreateAccount(
            svc.CreateAccountRequest(
                account=new_account(name=name, tags=[tag], arr=types_pb2.Money(currency_code="JPY", amount_minor=arr))
            ),
            metadata=admin_md,
        )
    got, _ = list_all(accounts, admin_md, filter=svc.AccountFilter(tag=tag, name_prefix="株式会社"), order_by="name")
    assert [a.name for a in got] == sorted(["株式会社アルファ", "株式会社ベータ"])

    got, _ = list_all(
        accounts,
        admin_md,
        filter=svc.AccountFilter(tag=tag, arr_min=types_pb2.Money(currency_code="JPY", amount_minor=10_000_000)),
        order_by="arr desc",
    )
    assert [a.arr.amount_minor for a in got] == [50_000_000, 20_000_000]

    # Other currencies never match a JPY bound.
    got, _ = list_all(
        accounts, admin_md, filter=svc.AccountFilter(tag=tag, arr_min=types_pb2.Money(currency_code="USD", amount_minor=0))
    )
    assert got == []


def test_page_token_is_bound_to_its_filter(accounts, admin_md):
    tag = unique_tag("bound")
    for i in range(3):
        accounts.CreateAccount(
            svc.CreateAccountRequest(account=new_account(name=f"株式会社トークン{i}", tags=[tag])), metadata=admin_md
        )
    first = accounts.ListAccounts(
        svc.ListAccountsRequest(page_size=1, filter=svc.AccountFilter(tag=tag)), metadata=admin_md
    )
    assert first.next_page_token
    err = rpc_error(
        accounts.ListAccounts,
        svc.ListAccountsRequest(
            page_size=1, page_token=first.next_page_token, filter=svc.AccountFilter(tag=tag, region="関西")
        ),
        metadata=admin_md,
    )
    assert "page_token" in violations(err)

    err = rpc_error(
        accounts.ListAccounts, svc.ListAccountsRequest(page_token="not-a-token"), metadata=admin_md
    )
    assert "page_token" in violations(err)


# ----- update, etag -----


def test_update_with_field_mask_and_etag(accounts, admin_md):
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account()), metadata=admin_md)

    # Only the masked fields are read: lifecycle_stage is UNSPECIFIED here
    # (invalid if it were looked at) and must stay as it was.
    patch = account_pb2.Account(
        id=created.id,
        etag=created.etag,
        name="株式会社サンプル・ホールディングス",
        arr=types_pb2.Money(currency_code="JPY", amount_minor=15_000_000),
        renewal_date=types_pb2.Date(year=2027, month=3, day=31),
    )
    updated = accounts.UpdateAccount(
        svc.UpdateAccountRequest(
            account=patch, update_mask=field_mask_pb2.FieldMask(paths=["name", "arr", "renewal_date"])
        ),
        metadata=admin_md,
    )
    assert updated.id == created.id
    assert updated.name == "株式会社サンプル・ホールディングス"
    assert updated.arr.amount_minor == 15_000_000
    assert updated.renewal_date == types_pb2.Date(year=2027, month=3, day=31)
    # Untouched fields keep their values.
    assert updated.lifecycle_stage == created.lifecycle_stage
    assert updated.touch_model == created.touch_model
    assert updated.industry == created.industry
    assert updated.contract_start_date == created.contract_start_date
    assert list(updated.tags) == list(created.tags)
    assert dict(updated.custom_attributes) == dict(created.custom_attributes)
    assert updated.create_time == created.create_time
    assert updated.etag != created.etag

    again = accounts.GetAccount(svc.GetAccountRequest(id=created.id), metadata=admin_md)
    assert again == updated

    # Clearing an optional field through the mask.
    cleared = accounts.UpdateAccount(
        svc.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, etag=updated.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["employee_count", "tags"]),
        ),
        metadata=admin_md,
    )
    assert not cleared.HasField("employee_count")
    assert list(cleared.tags) == []


def test_stale_etag_is_aborted(accounts, admin_md):
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account()), metadata=admin_md)
    mask = field_mask_pb2.FieldMask(paths=["lifecycle_stage"])
    first = accounts.UpdateAccount(
        svc.UpdateAccountRequest(
            account=account_pb2.Account(
                id=created.id, etag=created.etag, lifecycle_stage=types_pb2.LIFECYCLE_STAGE_ADOPTION
            ),
            update_mask=mask,
        ),
        metadata=admin_md,
    )
    stale = svc.UpdateAccountRequest(
        account=account_pb2.Account(id=created.id, etag=created.etag, lifecycle_stage=types_pb2.LIFECYCLE_STAGE_RENEWAL),
        update_mask=mask,
    )
    err = rpc_error(accounts.UpdateAccount, stale, metadata=admin_md)
    assert err.code() == grpc.StatusCode.ABORTED, f"{err.code()}: {err.details()}"
    assert error_reason(err) == "ETAG_MISMATCH"
    assert accounts.GetAccount(svc.GetAccountRequest(id=created.id), metadata=admin_md) == first

    # Delete with the stale etag is ABORTED too; with the current one it works.
    err = rpc_error(accounts.DeleteAccount, svc.DeleteAccountRequest(id=created.id, etag=created.etag), metadata=admin_md)
    assert err.code() == grpc.StatusCode.ABORTED
    accounts.DeleteAccount(svc.DeleteAccountRequest(id=created.id, etag=first.etag), metadata=admin_md)
    err = rpc_error(accounts.GetAccount, svc.GetAccountRequest(id=created.id), metadata=admin_md)
    assert err.code() == grpc.StatusCode.NOT_FOUND


# ----- INVALID_ARGUMENT with BadRequest -----


def test_invalid_create_names_every_bad_field(accounts, admin_md):
    bad = new_account(
        name="   ",
        lifecycle_stage=types_pb2.LIFECYCLE_STAGE_UNSPECIFIED,
        arr=types_pb2.Money(currency_code="XYZ", amount_minor=1000),
        contract_start_date=types_pb2.Date(year=2025, month=2, day=30),
        renewal_date=types_pb2.Date(year=1800, month=1, day=1),
        employee_count=-5,
        tags=["ok", ""],
    )
    bad.custom_attributes["Bad-Name"].string_value = "x"
    err = rpc_error(accounts.CreateAccount, svc.CreateAccountRequest(account=bad), metadata=admin_md)
    assert error_reason(err) == "INVALID_ARGUMENT"
    got = violations(err)
    assert set(got) == {
        "account.name",
        "account.lifecycle_stage",
        "account.arr.currency_code",
        "account.contract_start_date",
        "account.renewal_date.year",
        "account.employee_count",
        "account.tags[1]",
        'account.custom_attributes["Bad-Name"]',
    }, got


def test_invalid_money_and_renewal_order(accounts, admin_md):
    bad = new_account(
        arr=types_pb2.Money(currency_code="JPY", amount_minor=-1),
        contract_start_date=types_pb2.Date(year=2026, month=4, day=1),
        renewal_date=types_pb2.Date(year=2026, month=3, day=31),
    )
    err = rpc_error(accounts.CreateAccount, svc.CreateAccountRequest(account=bad), metadata=admin_md)
    assert set(violations(err)) == {"account.arr.amount_minor", "account.renewal_date"}

    long_name = "あ" * 201  # 201 characters, 603 bytes
    err = rpc_error(
        accounts.CreateAccount, svc.CreateAccountRequest(account=new_account(name=long_name)), metadata=admin_md
    )
    assert set(violations(err)) == {"account.name"}
    ok = accounts.CreateAccount(
        svc.CreateAccountRequest(account=new_account(name="あ" * 200)), metadata=admin_md
    )
    assert ok.name == "あ" * 200, "the limit counts characters, not bytes"


def test_invalid_update_mask_and_ids(accounts, admin_md):
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account()), metadata=admin_md)
    err = rpc_error(
        accounts.UpdateAccount,
        svc.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, name="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["name", "id"]),
        ),
        metadata=admin_md,
    )
    assert set(violations(err)) == {"update_mask"}

    err = rpc_error(
        accounts.UpdateAccount,
        svc.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, name=""), update_mask=field_mask_pb2.FieldMask(paths=["name"])
        ),
        metadata=admin_md,
    )
    assert set(violations(err)) == {"account.name"}

    err = rpc_error(accounts.GetAccount, svc.GetAccountRequest(id="not-a-uuid"), metadata=admin_md)
    assert set(violations(err)) == {"id"}
    err = rpc_error(accounts.GetAccount, svc.GetAccountRequest(), metadata=admin_md)
    assert set(violations(err)) == {"id"}
    err = rpc_error(accounts.CreateAccount, svc.CreateAccountRequest(), metadata=admin_md)
    assert set(violations(err)) == {"account"}


def test_invalid_list_request(accounts, admin_md):
    err = rpc_error(
        accounts.ListAccounts,
        svc.ListAccountsRequest(
            page_size=-1,
            order_by="id",
            filter=svc.AccountFilter(
                lifecycle_stages=[types_pb2.LIFECYCLE_STAGE_UNSPECIFIED],
                renewal_date_from=types_pb2.Date(year=2026, month=1, day=1),
                renewal_date_to=types_pb2.Date(year=2025, month=1, day=1),
            ),
        ),
        metadata=admin_md,
    )
    assert set(violations(err)) == {
        "page_size",
        "order_by",
        "filter.lifecycle_stages[0]",
        "filter.renewal_date_to",
    }


def test_invalid_request_id(accounts, admin_md):
    err = rpc_error(
        accounts.CreateAccount,
        svc.CreateAccountRequest(account=new_account(), request_id="空白 を含む"),
        metadata=admin_md,
    )
    assert set(violations(err)) == {"request_id"}


# ----- authentication, authorization, tenancy -----


def test_no_token_is_unauthenticated(accounts):
    err = rpc_error(accounts.ListAccounts, svc.ListAccountsRequest())
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, f"{err.code()}: {err.details()}"


@pytest.mark.parametrize(
    "value",
    ["Bearer not.a.jwt", "Bearer ", "Basic dXNlcjpwYXNz"],
    ids=["garbage-jwt", "empty-bearer", "basic-auth"],
)
def test_bad_token_is_unauthenticated(accounts, value):
    err = rpc_error(accounts.ListAccounts, svc.ListAccountsRequest(), metadata=(("authorization", value),))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, f"{err.code()}: {err.details()}"


def test_token_signed_with_another_secret_is_unauthenticated(accounts, banso_server):
    # Right shape, wrong signature: the printed token with its signature mangled.
    header, payload, sig = banso_server.token.split(".")
    forged = ".".join([header, payload, sig[::-1]])
    err = rpc_error(
        accounts.ListAccounts, svc.ListAccountsRequest(), metadata=(("authorization", f"Bearer {forged}"),)
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_viewer_reads_but_cannot_write(accounts, admin_md, md_for):
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account()), metadata=admin_md)
    viewer = md_for("default", "viewer")

    assert accounts.GetAccount(svc.GetAccountRequest(id=created.id), metadata=viewer) == created
    accounts.ListAccounts(svc.ListAccountsRequest(page_size=1), metadata=viewer)

    err = rpc_error(accounts.CreateAccount, svc.CreateAccountRequest(account=new_account()), metadata=viewer)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED, f"{err.code()}: {err.details()}"
    assert error_reason(err) == "PERMISSION_DENIED"

    err = rpc_error(
        accounts.UpdateAccount,
        svc.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, name="閲覧者の変更"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=viewer,
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = rpc_error(accounts.DeleteAccount, svc.DeleteAccountRequest(id=created.id), metadata=viewer)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert accounts.GetAccount(svc.GetAccountRequest(id=created.id), metadata=admin_md) == created


def test_csm_can_write(accounts, md_for):
    csm = md_for("default", "csm")
    created = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account(name="CSM作成株式会社")), metadata=csm)
    assert created.name == "CSM作成株式会社"


def test_other_tenant_sees_not_found(accounts, admin_md, md_for):
    tag = unique_tag("tenant")
    created = accounts.CreateAccount(
        svc.CreateAccountRequest(account=new_account(tags=[tag])), metadata=admin_md
    )
    other = md_for("other", "admin")

    err = rpc_error(accounts.GetAccount, svc.GetAccountRequest(id=created.id), metadata=other)
    assert err.code() == grpc.StatusCode.NOT_FOUND, f"{err.code()}: {err.details()}"
    assert error_reason(err) == "NOT_FOUND"

    err = rpc_error(
        accounts.UpdateAccount,
        svc.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, name="乗っ取り"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=other,
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(accounts.DeleteAccount, svc.DeleteAccountRequest(id=created.id), metadata=other)
    assert err.code() == grpc.StatusCode.NOT_FOUND

    got, _ = list_all(accounts, other, filter=svc.AccountFilter(tag=tag))
    assert got == []
    # The account is untouched in its own tenant.
    assert accounts.GetAccount(svc.GetAccountRequest(id=created.id), metadata=admin_md) == created


# ----- idempotency -----


def test_create_with_request_id_is_idempotent(accounts, admin_md, md_for):
    tag = unique_tag("idem")
    request_id = f"req-{uuid.uuid4()}"
    req = svc.CreateAccountRequest(account=new_account(name="株式会社冪等", tags=[tag]), request_id=request_id)

    first = accounts.CreateAccount(req, metadata=admin_md)
    second = accounts.CreateAccount(req, metadata=admin_md)
    assert second.id == first.id
    assert second == first

    got, _ = list_all(accounts, admin_md, filter=svc.AccountFilter(tag=tag))
    assert [a.id for a in got] == [first.id], "the retry wrote a second account"

    # Without a request_id every call creates.
    plain = svc.CreateAccountRequest(account=new_account(name="株式会社冪等", tags=[tag]))
    a = accounts.CreateAccount(plain, metadata=admin_md)
    b = accounts.CreateAccount(plain, metadata=admin_md)
    assert len({first.id, a.id, b.id}) == 3

    # The same key in another tenant is another key.
    other = accounts.CreateAccount(req, metadata=md_for("other", "admin"))
    assert other.id != first.id


# ----- the rest of the service, briefly -----


def test_batch_get_keeps_request_order(accounts, admin_md, md_for):
    a = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account(name="一番")), metadata=admin_md)
    b = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account(name="二番")), metadata=admin_md)
    got = accounts.BatchGetAccounts(svc.BatchGetAccountsRequest(ids=[b.id, a.id, b.id]), metadata=admin_md)
    assert [x.id for x in got.accounts] == [b.id, a.id, b.id]

    missing = str(uuid.uuid4())
    err = rpc_error(accounts.BatchGetAccounts, svc.BatchGetAccountsRequest(ids=[a.id, missing]), metadata=admin_md)
    assert err.code() == grpc.StatusCode.NOT_FOUND and missing in err.details()
    err = rpc_error(accounts.BatchGetAccounts, svc.BatchGetAccountsRequest(ids=[a.id]), metadata=md_for("other"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(accounts.BatchGetAccounts, svc.BatchGetAccountsRequest(ids=["x", a.id, "y"]), metadata=admin_md)
    assert set(violations(err)) == {"ids[0]", "ids[2]"}


def test_upsert_creates_then_updates_by_external_id(accounts, admin_md):
    external_id = f"sfdc-{uuid.uuid4().hex}"
    first = accounts.UpsertAccount(
        svc.UpsertAccountRequest(account=new_account(name="株式会社アップサート", external_id=external_id)),
        metadata=admin_md,
    )
    assert first.created
    second = accounts.UpsertAccount(
        svc.UpsertAccountRequest(
            account=account_pb2.Account(external_id=external_id, lifecycle_stage=types_pb2.LIFECYCLE_STAGE_ADOPTION),
            update_mask=field_mask_pb2.FieldMask(paths=["lifecycle_stage"]),
        ),
        metadata=admin_md,
    )
    assert not second.created
    assert second.account.id == first.account.id
    assert second.account.name == "株式会社アップサート"
    assert second.account.lifecycle_stage == types_pb2.LIFECYCLE_STAGE_ADOPTION

    err = rpc_error(
        accounts.CreateAccount,
        svc.CreateAccountRequest(account=new_account(external_id=external_id)),
        metadata=admin_md,
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    err = rpc_error(accounts.UpsertAccount, svc.UpsertAccountRequest(account=new_account()), metadata=admin_md)
    assert set(violations(err)) == {"account.external_id"}


def test_contacts_of_an_account(accounts, admin_md):
    account = accounts.CreateAccount(svc.CreateAccountRequest(account=new_account()), metadata=admin_md)
    taro = accounts.CreateContact(
        svc.CreateContactRequest(
            contact=contact_pb2.Contact(
                account_id=account.id,
                name="山田 太郎",
                email="Taro.Yamada@example.co.jp",
                title="情報システム部長",
                level=contact_pb2.CONTACT_LEVEL_EXECUTIVE,
                decision_maker=True,
            ),
            request_id=f"req-{uuid.uuid4()}",
        ),
        metadata=admin_md,
    )
    hanako = accounts.CreateContact(
        svc.CreateContactRequest(
            contact=contact_pb2.Contact(
                account_id=account.id, name="佐藤 花子", level=contact_pb2.CONTACT_LEVEL_PRACTITIONER, champion=True
            )
        ),
        metadata=admin_md,
    )
    listed = accounts.ListContacts(svc.ListContactsRequest(account_id=account.id), metadata=admin_md)
    assert [c.id for c in listed.contacts] == [taro.id, hanako.id]
    champions = accounts.ListContacts(
        svc.ListContactsRequest(account_id=account.id, champions_only=True), metadata=admin_md
    )
    assert [c.id for c in champions.contacts] == [hanako.id]
    by_email = accounts.ListContacts(
        svc.ListContactsRequest(email="taro.yamada@EXAMPLE.co.jp"), metadata=admin_md
    )
    assert [c.id for c in by_email.contacts] == [taro.id]

    updated = accounts.UpdateContact(
        svc.UpdateContactRequest(
            contact=contact_pb2.Contact(id=hanako.id, etag=hanako.etag, level=contact_pb2.CONTACT_LEVEL_MANAGER),
            update_mask=field_mask_pb2.FieldMask(paths=["level"]),
        ),
        metadata=admin_md,
    )
    assert updated.level == contact_pb2.CONTACT_LEVEL_MANAGER and updated.champion
    err = rpc_error(
        accounts.UpdateContact,
        svc.UpdateContactRequest(
            contact=contact_pb2.Contact(id=hanako.id, etag=hanako.etag, name="古い"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=admin_md,
    )
    assert err.code() == grpc.StatusCode.ABORTED

    err = rpc_error(
        accounts.CreateContact,
        svc.CreateContactRequest(contact=contact_pb2.Contact(account_id=str(uuid.uuid4()), name="迷子")),
        metadata=admin_md,
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(
        accounts.CreateContact,
        svc.CreateContactRequest(contact=contact_pb2.Contact(account_id="nope", name="", email="not-an-email")),
        metadata=admin_md,
    )
    assert set(violations(err)) == {"contact.account_id", "contact.name", "contact.email"}

    # Deleting the account deletes its contacts.
    accounts.DeleteAccount(svc.DeleteAccountRequest(id=account.id), metadata=admin_md)
    err = rpc_error(accounts.GetContact, svc.GetContactRequest(id=taro.id), metadata=admin_md)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_tenant_settings_need_admin(accounts, md_for):
    admin = md_for("settings-tenant", "admin")
    defaults = accounts.GetTenantSettings(svc.GetTenantSettingsRequest(), metadata=admin)
    assert (defaults.time_zone, defaults.fiscal_year_start_month, defaults.default_currency_code) == ("UTC", 1, "USD")

    err = rpc_error(
        accounts.UpdateTenantSettings,
        svc.UpdateTenantSettingsRequest(settings=tenant_settings_pb2.TenantSettings(time_zone="Asia/Tokyo")),
        metadata=md_for("settings-tenant", "csm"),
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    japan = tenant_settings_pb2.TenantSettings(
        time_zone="Asia/Tokyo", fiscal_year_start_month=4, default_currency_code="JPY", etag=defaults.etag
    )
    updated = accounts.UpdateTenantSettings(svc.UpdateTenantSettingsRequest(settings=japan), metadata=admin)
    assert (updated.time_zone, updated.fiscal_year_start_month, updated.default_currency_code) == ("Asia/Tokyo", 4, "JPY")
    assert accounts.GetTenantSettings(svc.GetTenantSettingsRequest(), metadata=md_for("settings-tenant", "viewer")) == updated

    err = rpc_error(accounts.UpdateTenantSettings, svc.UpdateTenantSettingsRequest(settings=japan), metadata=admin)
    assert err.code() == grpc.StatusCode.ABORTED
    err = rpc_error(
        accounts.UpdateTenantSettings,
        svc.UpdateTenantSettingsRequest(
            settings=tenant_settings_pb2.TenantSettings(
                time_zone="Tokyo", fiscal_year_start_month=13, default_currency_code="YEN"
            )
        ),
        metadata=admin,
    )
    assert set(violations(err)) == {
        "settings.time_zone",
        "settings.fiscal_year_start_month",
        "settings.default_currency_code",
    }
