#!/usr/bin/env bash
# End-to-end checks against a real `banso up`: real clients over the
# gateway (REST/OpenAPI, gRPC-Web/Connect, Segment's SDKs).
#
#   cargo build -p banso && bash .ci/e2e.sh [script...]
#
# Starts `banso up` on free ports with a fresh data directory, then runs
# every executable tests/e2e/*.sh (or the scripts named) with:
#   BANSO_GATEWAY_URL  http://127.0.0.1:<port>  (REST, gRPC-Web, tracking)
#   BANSO_GRPC_URL     http://127.0.0.1:<port>
#   BANSO_TOKEN        an admin token of tenant $BANSO_TENANT
#   BANSO_TENANT       e2e
#   BANSO_ROOT         the repository
#   BANSO_CORS_ORIGIN  an origin the gateway allows (CORS)
# Each script exits non-zero on failure. Prints a summary; exits 1 if any failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BANSO_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/banso}"
[[ -x "$bin" ]] || { echo "e2e: no banso binary at $bin (cargo build -p banso)" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
grpc_port=$(free_port); gw_port=$(free_port)
export BANSO_TENANT=e2e BANSO_ROOT="$root"
# The browser origin the gateway allows (tests/e2e/connect-web.sh sends it).
export BANSO_CORS_ORIGIN="http://localhost:5173"
export BANSO_GATEWAY_URL="http://127.0.0.1:$gw_port" BANSO_GRPC_URL="http://127.0.0.1:$grpc_port"

# Only the harness's own settings reach the server.
env -u BANSO_DATABASE_URL -u BANSO_NATS_URL BANSO_LOG="${BANSO_LOG:-warn}" \
  BANSO_GATEWAY_CORS_ORIGINS="$BANSO_CORS_ORIGIN" BANSO_GATEWAY_RATE_LIMIT=0 \
  "$bin" up --data-dir "$work/data" --grpc-addr "127.0.0.1:$grpc_port" --admin-addr off \
  --gateway-addr "127.0.0.1:$gw_port" --tenant "$BANSO_TENANT" >"$work/up.out" 2>"$work/up.err" &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  curl -fsS "$BANSO_GATEWAY_URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/up.err" >&2; echo "e2e: banso up exited" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$BANSO_GATEWAY_URL/healthz" >/dev/null || { cat "$work/up.err" >&2; echo "e2e: gateway not up" >&2; exit 1; }
BANSO_TOKEN="$("$bin" token --data-dir "$work/data" --tenant "$BANSO_TENANT" --role admin)"
export BANSO_TOKEN

scripts=("$@")
if [[ ${#scripts[@]} -eq 0 ]]; then
  mapfile -t scripts < <(find "$root/tests/e2e" -maxdepth 1 -name '*.sh' -perm -u+x | sort)
fi
failed=()
for s in "${scripts[@]}"; do
  printf '\n--- e2e: %s\n' "$(basename "$s")"
  if bash "$s"; then echo "--- e2e: $(basename "$s") passed"; else failed+=("$(basename "$s")"); fi
done
kill -0 "$pid" 2>/dev/null || { cat "$work/up.err" >&2; echo "e2e: banso up died during the run" >&2; exit 1; }
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "e2e: FAILED: ${failed[*]}" >&2
  tail -n 50 "$work/up.err" >&2
  exit 1
fi
echo "e2e: ${#scripts[@]} suites passed"
