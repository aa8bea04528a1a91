#!/usr/bin/env bash
# Segment's official SDKs against the gateway's tracking API, each pointed at
# it by the host alone (docs/tracking.md): @segment/analytics-node and
# segment-analytics-python send group, identify, track and page/screen in
# batches with a write key created through the REST API; then the effects
# are read back through the API (the accounts by external id, the contacts,
# the usage in Health through a scorecard over this run's accounts).
set -euo pipefail
root="${BANSO_ROOT:?}"
here="$root/tests/e2e/segment"
: "${BANSO_GATEWAY_URL:?}" "${BANSO_TOKEN:?}"
py="$(command -v python || command -v python3)"

export SEGMENT_RUN="r$(date +%s)$RANDOM"
BANSO_WRITE_KEY="$("$py" "$here/check.py" key)"
export BANSO_WRITE_KEY
"$py" "$here/check.py" scorecard

node "$here/send.mjs"
"$py" "$here/send.py"

"$py" "$here/check.py" verify node
"$py" "$here/check.py" verify python
echo "segment: both SDKs' calls landed"
