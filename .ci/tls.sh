#!/usr/bin/env bash
# TLS to every dependency, for real: makes a private CA with openssl, turns
# on TLS in the local PostgreSQL (plain connections keep working for the
# other steps), starts a private nats-server that requires TLS and a token,
# and runs the TLS tests and the NATS event suites over it.
#   bash .ci/tls.sh        (.ci/run calls it; needs openssl, psql, nats-server)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PG_URL="${BANSO_CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NATS_BIN="${BANSO_TEST_NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
die() { printf '\ntls: FAILED: %s\n' "$*" >&2; exit 1; }
command -v openssl >/dev/null || die "openssl is not installed"
[ -x "$NATS_BIN" ] || die "nats-server not found ($NATS_BIN)"

work=$(mktemp -d)
nats_pid=""
cleanup() { [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# --- a CA, a server certificate for 127.0.0.1/localhost, and a CA that signed nothing
ca() { # ca <name>
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=banso-ci-$1" \
    -keyout "$work/$1.key" -out "$work/$1.crt" 2>/dev/null
}
ca ca
ca wrong-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial -days 30 \
  -extfile "$work/server.ext" -out "$work/server.crt" 2>/dev/null
echo "tls: CA and server certificate (SAN 127.0.0.1, localhost) in $work"

# --- PostgreSQL: ssl=on with that certificate --------------------------------
pgdir=$(psql "$PG_URL" -qtAc 'show data_directory') || die "cannot ask PostgreSQL for its data directory"
pguser=$(stat -c %U "$pgdir")
install -m 0644 -o "$pguser" "$work/server.crt" "$pgdir/banso-ci-server.crt"
install -m 0600 -o "$pguser" "$work/server.key" "$pgdir/banso-ci-server.key"
psql "$PG_URL" -qc "alter system set ssl_cert_file = '$pgdir/banso-ci-server.crt'" \
  -c "alter system set ssl_key_file = '$pgdir/banso-ci-server.key'" -c "alter system set ssl = on" \
  -c "select pg_reload_conf()" >/dev/null || die "cannot turn on TLS in PostgreSQL"
for _ in $(seq 1 20); do [ "$(psql "$PG_URL" -qtAc 'show ssl')" = on ] && break; sleep 0.5; done
[ "$(psql "$PG_URL" -qtAc 'show ssl')" = on ] || die "PostgreSQL did not turn TLS on (see its log)"
psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=verify-full&sslrootcert=$work/ca.crt" -qtAc \
  'select ssl from pg_stat_ssl where pid = pg_backend_pid()' | grep -qx t || die "psql cannot connect with verify-full"
echo "tls: PostgreSQL serves TLS (psql verify-full: ok)"

# --- a private NATS with TLS, a token and JetStream ---------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="banso-ci-$(openssl rand -hex 12)"
cat > "$work/nats.conf" <<CONF
listen: 127.0.0.1:$port
jetstream { store_dir: "$work/js" }
tls { cert_file: "$work/server.crt", key_file: "$work/server.key", timeout: 5 }
authorization { token: "$token" }
CONF
"$NATS_BIN" -c "$work/nats.conf" > "$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 1 50); do
  if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -n 1 <&3" 2>/dev/null | grep -q '"tls_required":true'; then break; fi
  sleep 0.2
done
timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -n 1 <&3" 2>/dev/null | grep -q '"tls_required":true' ||
  { cat "$work/nats.log"; die "the TLS nats-server did not start"; }
echo "tls: nats-server with TLS and a token on 127.0.0.1:$port"

export BANSO_TEST_TLS_CA="$work/ca.crt" BANSO_TEST_TLS_WRONG_CA="$work/wrong-ca.crt"
export BANSO_TEST_PG_TLS_URL="$PG_URL"
export BANSO_TEST_NATS_TLS_URL="tls://127.0.0.1:$port" BANSO_TEST_NATS_TLS_TOKEN="$token"
log="$work/tests.log"
# The TLS tests themselves (PostgreSQL, NATS, OTLP), uncaptured so that a
# test that skipped itself shows its SKIPPED line to the check below.
# `--workspace --test X` (not `-p`) keeps the workspace's feature set, so
# nothing the test steps before built is compiled again.
cargo test --workspace --locked --test tls --test nats_tls -- --nocapture 2>&1 | tee "$log"
# The NATS event suites (relay, consumers, dead letters; Accounts' and
# Health's events) over TLS with the token.
export BANSO_TEST_NATS_URL="tls://127.0.0.1:$port" BANSO_TEST_NATS_CA_FILE="$work/ca.crt" BANSO_TEST_NATS_TOKEN="$token"
cargo test --workspace --locked --test delivery nats_bus 2>&1 | tee -a "$log"
cargo test --workspace --locked --test api events 2>&1 | tee -a "$log"
# Health consuming Accounts' events (spawned services share the test bus).
cargo test --workspace --locked --test health_portfolio 2>&1 | tee -a "$log"
unset BANSO_TEST_NATS_URL BANSO_TEST_NATS_CA_FILE BANSO_TEST_NATS_TOKEN
if grep -q "SKIPPED" "$log"; then die "a TLS suite skipped itself"; fi
grep -q "^test result: FAILED" "$log" && die "TLS tests failed"
echo "tls: $(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) p += $i } END { print p + 0 }' "$log") passed"
