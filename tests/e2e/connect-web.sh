#!/usr/bin/env bash
# The real-client proof of gRPC-Web and Connect: JavaScript generated from
# proto/ by protoc-gen-es (buf generate with the local plugin from
# node_modules; no remote plugins), and @connectrpc/connect-web's gRPC-Web
# and Connect transports, run by Node's test runner against the gateway.
set -euo pipefail
root="${BANSO_ROOT:?}"
: "${BANSO_GATEWAY_URL:?}" "${BANSO_TOKEN:?}"
web="$root/tests/web"
bin="$root/node_modules/.bin"
for tool in buf protoc-gen-es; do
  [[ -x "$bin/$tool" ]] || { echo "connect-web: $bin/$tool is missing; run npm install at the repository root" >&2; exit 1; }
done

# Generated at test time into tests/web/gen (git-ignored), from the protos as they are.
PATH="$bin:$PATH" buf generate "$root/proto" --template "$web/buf.gen.yaml" --output "$web"

# The origin .ci/e2e.sh allows (BANSO_GATEWAY_CORS_ORIGINS), for the preflight check.
export BANSO_CORS_ORIGIN="${BANSO_CORS_ORIGIN:-http://localhost:5173}"
node --test "$web/accounts.test.js"
