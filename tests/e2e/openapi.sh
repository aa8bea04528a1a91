#!/usr/bin/env bash
# The OpenAPI document: the served one is the checked-in docs/openapi.json,
# it is a valid OpenAPI 3.1 document, and schemathesis finds no server error
# and no response outside the schema over every operation.
set -euo pipefail
root="${BANSO_ROOT:?}"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT

curl -fsS "$BANSO_GATEWAY_URL/openapi.json" -o "$work/openapi.json"
if ! diff -q "$work/openapi.json" "$root/docs/openapi.json" >/dev/null; then
  diff -u "$root/docs/openapi.json" "$work/openapi.json" | head -n 40
  echo "openapi: docs/openapi.json is stale; run: target/debug/banso openapi > docs/openapi.json" >&2
  exit 1
fi
python -m openapi_spec_validator "$work/openapi.json"

# Some data for the GETs to find.
for i in 1 2; do
  curl -fsS -X POST "$BANSO_GATEWAY_URL/v1/accounts" -H "authorization: Bearer $BANSO_TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"Seed $i\",\"externalId\":\"seed-$i\",\"lifecycleStage\":\"LIFECYCLE_STAGE_ADOPTION\",\"touchModel\":\"TOUCH_MODEL_TECH\"}" >/dev/null
done

# Every operation, generated input (valid and not), checked for 5xx and
# for responses the schema does not describe. Bounded to keep CI short.
cd "$work"  # schemathesis keeps a cache in its working directory
schemathesis run "$work/openapi.json" \
  --url "$BANSO_GATEWAY_URL" \
  --header "Authorization: Bearer $BANSO_TOKEN" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --phases examples,coverage,fuzzing,stateful \
  --seed 1 \
  --no-color \
  --report junit --report-dir "$work/report"

# The survey answer path takes no token ("security": [] in the document):
# the same checks with no Authorization header at all. Whatever token the
# path carries, an answer the schema describes and never a server error.
schemathesis run "$work/openapi.json" \
  --url "$BANSO_GATEWAY_URL" \
  --include-path-regex '^/v1/public/' \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --phases examples,coverage,fuzzing \
  --seed 1 \
  --no-color \
  --report junit --report-dir "$work/report-public"

# Random tokens, in the tokens' own shape or not: 400 naming `token` alone,
# without a token and with one (never 401, never 5xx).
for i in $(seq 1 10); do
  token=$(python -c 'import secrets, sys; n = int(sys.argv[1]); print(secrets.token_urlsafe(25 + n) + ("." + secrets.token_urlsafe(16) if n % 2 else ""))' "$i")
  for call in "GET /v1/public/surveyForms/$token" "POST /v1/public/surveyForms/$token:answer"; do
    read -r method path <<<"$call"
    body=()
    [[ $method == POST ]] && body=(-H 'content-type: application/json' -d '{"score": 5}')
    for auth in "" "authorization: Bearer $BANSO_TOKEN"; do
      status=$(curl -sS -o "$work/public.json" -w '%{http_code}' -X "$method" "$BANSO_GATEWAY_URL$path" \
        ${auth:+-H "$auth"} "${body[@]}")
      if [[ "$status" != 400 ]] || ! python -c 'import json, sys; e = json.load(open(sys.argv[1]))["errors"]; sys.exit([x["field"] for x in e] != ["token"])' "$work/public.json"; then
        echo "openapi: $method $path ${auth:+(with a bearer token) }answered $status: $(cat "$work/public.json")" >&2
        exit 1
      fi
    done
  done
done
echo "openapi: the public answer path answered 40 random tokens 400 (token)"
