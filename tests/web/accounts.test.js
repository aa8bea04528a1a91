// A browser-side client against the gateway, run in Node (global fetch):
// code generated from proto/ by protoc-gen-es, called through
// @connectrpc/connect-web's gRPC-Web transport and its Connect transport
// (JSON and binary). Run by tests/e2e/connect-web.sh, which generates ./gen.
//
//   BANSO_GATEWAY_URL=http://127.0.0.1:8080 BANSO_TOKEN=… node --test tests/web/

import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { AccountsService } from "./gen/banso/accounts/v1/accounts_service_pb.js";
import { LifecycleStage, TouchModel } from "./gen/banso/types/v1/types_pb.js";

const baseUrl = process.env.BANSO_GATEWAY_URL;
const token = process.env.BANSO_TOKEN;
assert.ok(baseUrl && token, "set BANSO_GATEWAY_URL and BANSO_TOKEN");

// The bearer token on every call, as a web app would add it.
const bearer = (next) => async (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

const transports = {
  "gRPC-Web": () => createGrpcWebTransport({ baseUrl, useBinaryFormat: true, interceptors: [bearer] }),
  "Connect JSON": () => createConnectTransport({ baseUrl, useBinaryFormat: false, interceptors: [bearer] }),
  "Connect binary": () => createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors: [bearer] }),
};

for (const [name, transport] of Object.entries(transports)) {
  test(`${name}: create two accounts, list them, read one, and an INVALID_ARGUMENT`, async () => {
    const client = createClient(AccountsService, transport());
    // The e2e tenant is shared with other suites: names unique to this run.
    const run = `web-${name.replace(/\W+/g, "-").toLowerCase()}-${process.pid}-${Date.now()}`;
    const created = [];
    for (const n of ["a", "b"]) {
      const account = await client.createAccount(
        {
          account: {
            name: `${run} ${n}`,
            externalId: `${run}-${n}`,
            industry: "software",
            employeeCount: 42n,
            lifecycleStage: LifecycleStage.ADOPTION,
            touchModel: TouchModel.TECH,
            tags: ["web", n],
          },
        },
        { timeoutMs: 10_000 },
      );
      assert.ok(account.id, "an id is assigned");
      assert.ok(account.etag, "an etag is assigned");
      assert.equal(account.name, `${run} ${n}`);
      assert.equal(account.employeeCount, 42n, "int64 survives the trip");
      assert.equal(account.lifecycleStage, LifecycleStage.ADOPTION);
      created.push(account);
    }

    const list = await client.listAccounts({ pageSize: 10, orderBy: "name", filter: { namePrefix: run } });
    assert.deepEqual(
      list.accounts.map((a) => a.name),
      [`${run} a`, `${run} b`],
    );
    assert.equal(list.nextPageToken, "");

    const got = await client.getAccount({ id: created[1].id });
    assert.equal(got.id, created[1].id);
    assert.equal(got.externalId, `${run}-b`);
    assert.deepEqual(got.tags, ["web", "b"]);
    assert.equal(got.touchModel, TouchModel.TECH);

    // Bad input: INVALID_ARGUMENT with the field named in a BadRequest detail.
    const err = await client.createAccount({ account: { name: "" } }).then(
      () => assert.fail("an account without a name was accepted"),
      (e) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.InvalidArgument, `${Code[err.code]}: ${err.rawMessage}`);
    assert.match(err.rawMessage, /name/);
    const detail = err.details.find((d) => "type" in d && d.type === "google.rpc.BadRequest");
    assert.ok(detail, `a google.rpc.BadRequest detail in ${JSON.stringify(err.details.map((d) => d.type))}`);
    assert.ok(detail.value.length > 0);

    // Another tenant's or a missing row: NOT_FOUND, not a transport error.
    const missing = await client.getAccount({ id: "00000000-0000-0000-0000-000000000000" }).then(
      () => assert.fail("a missing account was found"),
      (e) => ConnectError.from(e),
    );
    assert.equal(missing.code, Code.NotFound, `${Code[missing.code]}: ${missing.rawMessage}`);
  });
}

test("no token: UNAUTHENTICATED", async () => {
  const client = createClient(AccountsService, createGrpcWebTransport({ baseUrl }));
  const err = await client.listAccounts({}).then(
    () => assert.fail("a call without a token was answered"),
    (e) => ConnectError.from(e),
  );
  assert.equal(err.code, Code.Unauthenticated);
});

test("an unknown method: UNIMPLEMENTED", async () => {
  // A method the gateway does not serve, called the way connect-web would.
  const res = await fetch(`${baseUrl}/banso.accounts.v1.AccountsService/NoSuchMethod`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", authorization: `Bearer ${token}` },
    body: new Uint8Array([0, 0, 0, 0, 0]),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("grpc-status"), "12");
});

test("CORS: the allowed origin's preflight is answered", { skip: !process.env.BANSO_CORS_ORIGIN }, async () => {
  const origin = process.env.BANSO_CORS_ORIGIN;
  const preflight = (from) =>
    fetch(`${baseUrl}/banso.accounts.v1.AccountsService/ListAccounts`, {
      method: "OPTIONS",
      headers: {
        origin: from,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
      },
    });
  const ok = await preflight(origin);
  assert.equal(ok.headers.get("access-control-allow-origin"), origin);
  assert.match(ok.headers.get("access-control-allow-headers") ?? "", /x-grpc-web/);
  const other = await preflight("https://not-allowed.example");
  assert.equal(other.headers.get("access-control-allow-origin"), null);
});
