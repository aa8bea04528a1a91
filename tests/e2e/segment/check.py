"""The REST side of tests/e2e/segment.sh: a write key created through the
API, a segment and scorecard that show the tracked usage, and the effects of
each SDK's calls read back (the account by external id, the contact, the
usage in Health). Standard library only.

    python check.py key                       prints a new write key
    python check.py scorecard                 a scorecard over this run's accounts
    python check.py verify node|python        the effects of one SDK's calls
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

GATEWAY = os.environ["BANSO_GATEWAY_URL"].rstrip("/")
TOKEN = os.environ["BANSO_TOKEN"]
RUN = os.environ["SEGMENT_RUN"]
WAIT_S = 60.0


def call(method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(GATEWAY + path, data=data, method=method)
    req.add_header("authorization", f"Bearer {TOKEN}")
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        raise SystemExit(f"check.py: {method} {path}: HTTP {e.code}: {e.read().decode(errors='replace')}")


def fail(why: str) -> None:
    raise SystemExit(f"check.py: {why}")


def key() -> None:
    r = call("POST", "/v1/writeKeys", {"displayName": f"e2e Segment SDKs {RUN}"})
    k, stored = r.get("key", ""), r.get("writeKey", {})
    if not k.startswith(f"bk.{os.environ.get('BANSO_TENANT', '')}.") or not stored.get("id"):
        fail(f"unexpected CreateWriteKey reply: {r}")
    # The key is shown once: the list holds only its prefix.
    listed = call("GET", "/v1/writeKeys?pageSize=1000")
    if k in json.dumps(listed) or not any(w["id"] == stored["id"] for w in listed.get("writeKeys", [])):
        fail("ListWriteKeys leaks the key or misses it")
    print(k)


def scorecard() -> None:
    seg = call(
        "POST",
        "/v1/segments",
        {"displayName": f"Segment SDKs {RUN}", "expression": f"account.external_id.startsWith('seg-e2e-{RUN}-')"},
    )
    linear = {"linear": {"min": 0, "max": 100}}
    measures = ["events_1d:report_exported", "events_1d:page:pricing", "events_1d:screen:home", "active_users_1d"]
    call(
        "POST",
        "/v1/health/scorecards",
        {
            "name": f"Segment SDKs {RUN}",
            "scope": {"segmentId": seg["id"]},
            "measures": [{"measure": m, "weight": 1, "normalisation": linear} for m in measures],
        },
    )


def account(external_id: str) -> dict:
    token = ""
    while True:
        q = urllib.parse.urlencode({"pageSize": 1000, "pageToken": token})
        page = call("GET", f"/v1/accounts?{q}")
        for a in page.get("accounts", []):
            if a.get("externalId") == external_id:
                return a
        token = page.get("nextPageToken", "")
        if not token:
            fail(f"no account with external id {external_id}")


def raw(health: dict, measure: str) -> float | None:
    for c in health.get("contributions", []):
        if c.get("measure") == measure:
            return c.get("raw")
    return None


def verify(sdk: str) -> None:
    want = {
        "node": {"name": "Node Co", "industry": "Software", "employeeCount": "42", "planTier": "Pro",
                 "contact": ("Nora Node", f"nora-{RUN}@node.example", "Engineer"),
                 "usage": {"events_1d:report_exported": 2, "events_1d:page:pricing": 1}},
        "python": {"name": "Python KK", "industry": "Retail", "employeeCount": "7", "planTier": "Starter",
                   "contact": ("Pia Python", f"pia-{RUN}@python.example", "Analyst"),
                   "usage": {"events_1d:report_exported": 2, "events_1d:screen:home": 1}},
    }[sdk]
    a = account(f"seg-e2e-{RUN}-{sdk}")
    for field in ("name", "industry", "employeeCount", "planTier"):
        if str(a.get(field)) != want[field]:
            fail(f"{sdk}: account {field} is {a.get(field)!r}, want {want[field]!r}: {a}")
    user = f"{sdk}-user-{RUN}"
    contacts = call("GET", "/v1/contacts?" + urllib.parse.urlencode({"externalId": user})).get("contacts", [])
    if len(contacts) != 1:
        fail(f"{sdk}: {len(contacts)} contacts with external id {user}")
    c = contacts[0]
    got = (c.get("name"), c.get("email"), c.get("title"))
    if c.get("accountId") != a["id"] or got != want["contact"]:
        fail(f"{sdk}: contact {c}, want {want['contact']} on account {a['id']}")

    # The usage reached Health: the scorecard over this run's accounts shows it.
    deadline = time.monotonic() + WAIT_S
    last: dict = {}
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{GATEWAY}/v1/health/accounts/{a['id']}")
        req.add_header("authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                last = json.loads(res.read())
        except urllib.error.HTTPError as e:
            if e.code != 404:  # 404: not scored yet
                fail(f"{sdk}: GET account health: HTTP {e.code}: {e.read().decode(errors='replace')}")
        if all(raw(last, m) == n for m, n in want["usage"].items()):
            print(f"check.py: {sdk}: account, contact and usage landed")
            return
        time.sleep(0.5)
    fail(f"{sdk}: usage not in Health after {WAIT_S}s, want {want['usage']}: {last}")


if __name__ == "__main__":
    cmd = sys.argv[1:]
    if cmd == ["key"]:
        key()
    elif cmd == ["scorecard"]:
        scorecard()
    elif len(cmd) == 2 and cmd[0] == "verify" and cmd[1] in ("node", "python"):
        verify(cmd[1])
    else:
        fail(f"usage: check.py key | scorecard | verify node|python (got {cmd})")
