#!/usr/bin/env bash
# Renders the Kustomize targets of deploy/kustomize and validates them offline:
#   1. kustomize build (`kubectl kustomize`, or a standalone `kustomize` v5);
#   2. kubernetes-validate --strict against BANSO_K8S_VERSIONS (default
#      "1.31.0 1.37.0"). Custom resources (PodMonitor, HTTPRoute) have no
#      schema there: they are left out of this step, said so, and checked by
#      rule r9 instead;
#   3. Banso's rules, each tagged in its messages:
#      r1 network policy: default-deny (ingress+egress) present when any
#         NetworkPolicy is; no ingress rule without `from`, no empty `from` entry
#      r2 terminationGracePeriodSeconds >= delay + request timeout + 5 and
#         >= delay + shutdown grace + 5; grace >= request timeout (values from
#         env and from the ConfigMaps of envFrom)
#      r3 connection budget: sum over services of (max replicas + surge) x
#         BANSO_DB_MAX_CONNECTIONS, + 1 per migrate container, <= the declared
#         banso.dev/postgres-max-connections annotation
#      r4 liveness is an HTTP GET of /livez on the admin port; a startup probe
#      r5 BANSO_MIGRATE_ON_START=false on serve; migrations only in a Job using
#         BANSO_MIGRATE_DATABASE_URL(_FILE); no DDL URL on the servers
#      r6 no secret as an env value or ConfigMap literal: *_FILE only
#      r7 app.kubernetes.io/name|component|version on every workload and pod
#      r8 BANSO_MAX_CONNECTION_AGE_SECS (> 0) and its grace on every service
#      r9 hardening, Services, custom resources' shape
#
# Usage: bash deploy/check.sh [-v]        (-v prints every rendered manifest)
#        bash deploy/check.sh --self-test  (only: every fixture under
#        deploy/check-fixtures/<rule>-*/ must fail with that rule; the
#        default run ends with it too)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kdir="$here/kustomize"
versions=${BANSO_K8S_VERSIONS:-"1.31.0 1.37.0"}
arg=${1:-}

die() { echo "deploy/check.sh: $*" >&2; exit 2; }

# --- tools ------------------------------------------------------------------
if ! command -v kubernetes-validate >/dev/null 2>&1 && [ -x "$here/../.ci/.venv/bin/kubernetes-validate" ]; then
  PATH="$(cd "$here/../.ci/.venv/bin" && pwd):$PATH"
fi
render=()
kustomize_major() { sed -nE 's/.*[Kk]ustomize[^v]*v([0-9]+)\..*/\1/p; s/^v([0-9]+)\..*/\1/p' | head -n1; }
if command -v kubectl >/dev/null 2>&1; then
  major=$(kubectl version --client 2>/dev/null | kustomize_major || true)
  if [ "${major:-0}" -ge 5 ] 2>/dev/null; then render=(kubectl kustomize); fi
fi
if [ ${#render[@]} -eq 0 ] && command -v kustomize >/dev/null 2>&1; then
  major=$(kustomize version 2>/dev/null | kustomize_major || true)
  if [ "${major:-0}" -ge 5 ] 2>/dev/null; then render=(kustomize build); fi
fi
[ ${#render[@]} -gt 0 ] || die "no Kustomize v5 renderer: need kubectl >= 1.27 or kustomize v5 on PATH (Debian's kubectl 1.20 is too old)"
command -v kubernetes-validate >/dev/null 2>&1 || die "kubernetes-validate not found on PATH: pip install -r deploy/requirements.txt"
python3 -c 'import yaml' 2>/dev/null || die "python3 cannot import yaml: pip install pyyaml"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rules="$work/rules.py"
cat > "$rules" <<'PY'
import math, re, sys, yaml

path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
def err(rule, msg): errors.append(f"[{rule}] {msg}")

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
configmaps = by_kind.get("ConfigMap", {})
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
SECRETISH = re.compile(r"(_TOKEN|_PASSWORD|_SECRET|_SEED|_PRIVATE_KEY)$")

def pod_of(w):
    return w["spec"]["template"]

def resolved_env(c):
    """name -> entry: envFrom ConfigMaps first, env wins (as the kubelet does)."""
    out = {}
    for ef in c.get("envFrom", []):
        ref = ef.get("configMapRef")
        if ref:
            cm = configmaps.get(ref["name"])
            if cm is None:
                err("r9", f"container {c['name']}: envFrom ConfigMap {ref['name']!r} is not in this output")
                continue
            for k, v in (cm.get("data") or {}).items():
                out[k] = {"name": k, "value": v, "from": f"ConfigMap/{ref['name']}"}
        if ef.get("secretRef"):
            err("r6", f"container {c['name']}: envFrom secretRef puts a whole Secret into the environment: mount it")
    for e in c.get("env", []):
        out[e["name"]] = e
    return out

def num(env, var, where, rule, default=None):
    e = env.get(var)
    if e is None or "value" not in e:
        if default is None:
            err(rule, f"{where}: {var} must be set to a literal value (env or banso ConfigMap)")
        return default
    try:
        return float(e["value"])
    except ValueError:
        err(rule, f"{where}: {var} {e['value']!r} is not a number")
        return default

def secret_literal(name, value):
    if name.endswith("_FILE"):
        return False
    if SECRETISH.search(name):
        return True
    if name.endswith("_URL") and re.match(r"^[a-z+]+://[^/@]*:[^/@]*@", value or ""):
        return True
    return bool(name.endswith("_URL") and re.search(r"[?&](password|token)=", value or ""))

def selects(sel, labels):
    if sel is None:
        return False
    if (sel.get("matchLabels") or {}).items() - labels.items():
        return False
    for e in sel.get("matchExpressions", []):
        k, op, vs = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(k) not in vs: return False
        if op == "NotIn" and labels.get(k) in vs: return False
        if op == "Exists" and k not in labels: return False
        if op == "DoesNotExist" and k in labels: return False
    return True

# r6 on every ConfigMap literal.
for name, cm in configmaps.items():
    for k, v in (cm.get("data") or {}).items():
        if secret_literal(k, v):
            err("r6", f"ConfigMap/{name}: {k} looks like a secret: put it in banso-secrets and use {k}_FILE")

servers, jobs_conns, services = {}, 0, []
for kind in WORKLOADS:
    for name, w in by_kind.get(kind, {}).items():
        where = f"{kind}/{name}"
        tpl = pod_of(w)
        pod = tpl["spec"]
        # r7: recommended labels.
        for what, ls in (("metadata.labels", w["metadata"].get("labels", {})), ("pod template labels", tpl["metadata"].get("labels", {}))):
            for key in ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/version"):
                if not ls.get(key):
                    err("r7", f"{where}: {what} lack {key}")
        banso = w["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "banso"
        for c in pod.get("initContainers", []) + pod["containers"]:
            cw = f"{where} container {c['name']}"
            env = resolved_env(c)
            # r6: secrets only as files.
            for e in c.get("env", []):
                if "value" in e and secret_literal(e["name"], e["value"]):
                    err("r6", f"{cw}: {e['name']} is a secret as a literal env value: mount it and set {e['name']}_FILE")
                if e.get("valueFrom", {}).get("secretKeyRef") and banso:
                    err("r6", f"{cw}: {e['name']} reads a Secret into the environment: mount it and set {e['name']}_FILE")
            if not banso:
                continue
            args = c.get("args") or []
            if args[:1] == ["migrate"]:
                # r5: the migrate Job uses the DDL URL.
                if kind != "Job":
                    err("r5", f"{cw}: `banso migrate` belongs in the migrate Job, not in a {kind} (it would run on every replica)")
                if not ({"BANSO_MIGRATE_DATABASE_URL_FILE", "BANSO_MIGRATE_DATABASE_URL"} & env.keys()):
                    err("r5", f"{cw}: `banso migrate` needs BANSO_MIGRATE_DATABASE_URL_FILE (the DDL-capable URL)")
                jobs_conns += 1 * w["spec"].get("parallelism", 1)
            # r9: hardening.
            sc = c.get("securityContext", {})
            for key, want in (("runAsNonRoot", True), ("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)):
                if sc.get(key) is not want:
                    err("r9", f"{cw}: securityContext.{key} must be {str(want).lower()}")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                err("r9", f"{cw}: must drop ALL capabilities")
            if (sc.get("seccompProfile") or pod.get("securityContext", {}).get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                err("r9", f"{cw}: seccompProfile must be RuntimeDefault")
            if args[:1] == ["serve"] and len(args) > 1:
                servers[name] = (w, c, env)
        if banso and pod.get("automountServiceAccountToken") is not False:
            err("r9", f"{where}: automountServiceAccountToken must be false")
        for v in pod.get("volumes", []):
            for src in (v.get("projected", {}).get("sources") or []):
                if "secret" in src and v["projected"].get("defaultMode", 0o644) & 0o007:
                    err("r9", f"{where}: secret volume {v['name']} is readable by others (defaultMode 0440)")

annotated = [cm for cm in configmaps.values() if "banso.dev/postgres-max-connections" in cm["metadata"].get("annotations", {})]
hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()}
budget = []
for name, (w, c, env) in servers.items():
    where = f"Deployment/{name}"
    pod = pod_of(w)["spec"]
    gateway = c["args"][1] == "gateway"
    # r2: shutdown timing.
    delay = num(env, "BANSO_SHUTDOWN_DELAY_SECS", where, "r2", 0.0)
    grace = num(env, "BANSO_SHUTDOWN_GRACE_SECS", where, "r2")
    timeout = num(env, "BANSO_REQUEST_TIMEOUT_SECS", where, "r2")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if grace is not None and timeout is not None:
        if tgps < delay + timeout + 5:
            err("r2", f"{where}: terminationGracePeriodSeconds {tgps} < BANSO_SHUTDOWN_DELAY_SECS {delay:g} + BANSO_REQUEST_TIMEOUT_SECS {timeout:g} + 5")
        if tgps < delay + grace + 5:
            err("r2", f"{where}: terminationGracePeriodSeconds {tgps} < BANSO_SHUTDOWN_DELAY_SECS {delay:g} + BANSO_SHUTDOWN_GRACE_SECS {grace:g} + 5")
        if grace < timeout:
            err("r2", f"{where}: BANSO_SHUTDOWN_GRACE_SECS {grace:g} < BANSO_REQUEST_TIMEOUT_SECS {timeout:g}: a call accepted before the drain could be cut off")
    # r4: probes.
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    admin = int(env.get("BANSO_ADMIN_ADDR", {}).get("value", "0.0.0.0:9090").rsplit(":", 1)[1])
    if ports.get("admin") != admin:
        err("r4", f"{where}: needs a container port named admin = BANSO_ADMIN_ADDR's port {admin}")
    for probe in ("livenessProbe", "startupProbe"):
        get = (c.get(probe) or {}).get("httpGet")
        if not get or get.get("path") != "/livez" or get.get("port") not in ("admin", admin):
            err("r4", f"{where}: {probe} must be an HTTP GET of /livez on the admin port (not gRPC: that passes the concurrency limit)")
    if not c.get("readinessProbe"):
        err("r4", f"{where}: needs a readinessProbe")
    # r5: never migrate in serve.
    if env.get("BANSO_MIGRATE_ON_START", {}).get("value", "") .lower() != "false" and not gateway:
        err("r5", f"{where}: BANSO_MIGRATE_ON_START must be false (migrations run in the migrate Job)")
    for var in ("BANSO_MIGRATE_DATABASE_URL", "BANSO_MIGRATE_DATABASE_URL_FILE"):
        if var in env:
            err("r5", f"{where}: {var} is the DDL-capable URL: only the migrate Job has it")
    if gateway:
        continue
    services.append(name)
    # r8: connection age.
    age = num(env, "BANSO_MAX_CONNECTION_AGE_SECS", where, "r8")
    if age is not None and age <= 0:
        err("r8", f"{where}: BANSO_MAX_CONNECTION_AGE_SECS {age:g} must be > 0")
    num(env, "BANSO_MAX_CONNECTION_AGE_GRACE_SECS", where, "r8")
    # r3: what this service may hold at most.
    if {"BANSO_DATABASE_URL", "BANSO_DATABASE_URL_FILE"} & env.keys():
        pool = num(env, "BANSO_DB_MAX_CONNECTIONS", where, "r3", 10.0)
        h = hpas.get(name)
        replicas = h["spec"]["maxReplicas"] if h else w["spec"].get("replicas", 1)
        surge = (w["spec"].get("strategy", {}).get("rollingUpdate") or {}).get("maxSurge", "25%")
        extra = math.ceil(replicas * int(surge[:-1]) / 100) if isinstance(surge, str) else int(surge)
        budget.append((name, replicas, extra, pool))

if budget:
    declared = [int(cm["metadata"]["annotations"]["banso.dev/postgres-max-connections"]) for cm in annotated]
    total = sum((r + e) * p for _, r, e, p in budget) + jobs_conns
    detail = " + ".join(f"{n} ({r}+{e} surge) x {p:g}" for n, r, e, p in budget) + f" + migrate {jobs_conns}"
    if not declared:
        err("r3", "no banso.dev/postgres-max-connections annotation on a ConfigMap: declare PostgreSQL's max_connections in the overlay")
    elif total > min(declared):
        err("r3", f"connection budget: {detail} = {total:g} > declared banso.dev/postgres-max-connections {min(declared)}: lower pools or replicas, or use PgBouncer")
    else:
        print(f"   budget: {detail} = {total:g} <= {min(declared)}")

# r1: network policy.
policies = by_kind.get("NetworkPolicy", {})
if policies:
    if not any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies.values()):
        err("r1", "NetworkPolicies without a default-deny (podSelector {}, policyTypes Ingress and Egress, no rules)")
    for name, p in policies.items():
        for i, r in enumerate(p["spec"].get("ingress") or []):
            if not r.get("from"):
                err("r1", f"NetworkPolicy/{name}: ingress rule {i} has no `from`: it admits every source")
            for peer in r.get("from") or []:
                if not peer or all(not v for v in peer.values()):
                    err("r1", f"NetworkPolicy/{name}: ingress rule {i} has an empty `from` entry: it admits every source")
                elif peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0"):
                    err("r1", f"NetworkPolicy/{name}: ingress rule {i} admits 0.0.0.0/0")

# r9: Services select their pods; custom resources' shape.
for name, svc in by_kind.get("Service", {}).items():
    sel = svc["spec"].get("selector", {})
    if not any(selects({"matchLabels": sel}, pod_of(w)["metadata"].get("labels", {}))
               for k in WORKLOADS for w in by_kind.get(k, {}).values()):
        err("r9", f"Service/{name}: selector {sel} matches no workload")
for name, pm in by_kind.get("PodMonitor", {}).items():
    eps = pm["spec"].get("podMetricsEndpoints") or []
    if not eps or any(e.get("port") != "admin" or e.get("path", "/metrics") != "/metrics" for e in eps):
        err("r9", f"PodMonitor/{name}: must scrape port admin path /metrics")
    if not any(selects(pm["spec"].get("selector"), pod_of(w)["metadata"].get("labels", {})) for w, _, _ in servers.values()):
        err("r9", f"PodMonitor/{name}: selects no banso pod")
# r9: each service reachable where the gateway looks for it, and its own settings.
for name in services:
    svc = by_kind.get("Service", {}).get(name)
    if svc is None or not any(p.get("name") == "grpc" and p.get("port") == 50051 for p in svc["spec"]["ports"]):
        err("r9", f"Deployment/{name}: needs Service/{name} with port grpc 50051 (the gateway's default upstream)")
for name, (w, c, env) in servers.items():
    for var, e in env.items():
        m = re.fullmatch(r"BANSO_GATEWAY_([A-Z]+)_URL", var)
        if m and not re.fullmatch(rf"http://banso-{m.group(1).lower()}(\.[a-z0-9.-]+)?:50051/?", e.get("value", "")):
            err("r9", f"Deployment/{name}: {var} {e.get('value')!r} is not http://banso-{m.group(1).lower()}:50051")
    if "BANSO_HEALTH_LATE_WINDOW_HOURS" in env:
        window = num(env, "BANSO_HEALTH_LATE_WINDOW_HOURS", name, "r9", 168.0)
        retention = num(env, "BANSO_HEALTH_RAW_RETENTION_DAYS", name, "r9", 400.0)
        if not 1 <= window <= 2160 or retention * 24 < window:
            err("r9", f"Deployment/{name}: BANSO_HEALTH_LATE_WINDOW_HOURS {window:g} must be 1 to 2160 and within BANSO_HEALTH_RAW_RETENTION_DAYS {retention:g} x 24")

# r9: autoscaled Deployments keep two pods through a drain.
pdbs = by_kind.get("PodDisruptionBudget", {})
for name, h in hpas.items():
    w = by_kind.get("Deployment", {}).get(name)
    if w is None:
        err("r9", f"HorizontalPodAutoscaler/{name}: refers to no Deployment in this output")
        continue
    if h["spec"].get("minReplicas", 1) < 2:
        err("r9", f"HorizontalPodAutoscaler/{name}: minReplicas must be >= 2")
    if "replicas" in w["spec"]:
        err("r9", f"Deployment/{name}: has an autoscaler, so spec.replicas must be left out")
    if not any(selects(p["spec"].get("selector"), pod_of(w)["metadata"].get("labels", {})) for p in pdbs.values()):
        err("r9", f"Deployment/{name}: autoscaled but no PodDisruptionBudget selects its pods")
# r9: Ingresses only to the gateway's http port, every host with TLS.
for name, ing in by_kind.get("Ingress", {}).items():
    for r in ing["spec"].get("rules", []):
        for p in r.get("http", {}).get("paths", []):
            ref = p["backend"].get("service", {})
            if ref.get("name") != "banso-gateway" or ref.get("port", {}).get("name") != "http":
                err("r9", f"Ingress/{name}: routes to {ref}: only the gateway's http port is for outside callers")
    hosts = {r.get("host") for r in ing["spec"].get("rules", [])}
    tls = {h for t in ing["spec"].get("tls", []) if t.get("secretName") for h in t.get("hosts", [])}
    if hosts - tls:
        err("r9", f"Ingress/{name}: hosts {sorted(hosts - tls)} without TLS")
for kind in ("HTTPRoute", "GRPCRoute"):
    for name, rt in by_kind.get(kind, {}).items():
        if not rt["spec"].get("parentRefs"):
            err("r9", f"{kind}/{name}: needs parentRefs (a Gateway with a TLS listener)")
        for rule in rt["spec"].get("rules", []):
            for b in rule.get("backendRefs", []):
                svc = by_kind.get("Service", {}).get(b["name"])
                if svc is None or not any(p["port"] == b.get("port") for p in svc["spec"]["ports"]):
                    err("r9", f"{kind}/{name}: backend {b['name']}:{b.get('port')} is no Service port in this output")

for e in errors:
    print(f"   rule {e}")
if errors:
    sys.exit(1)
print(f"   rules: ok ({len(servers)} servers: {', '.join(sorted(servers))})")
PY

# Custom resources kubernetes-validate has no schema for: checked by r9.
CRD_GROUPS='^apiVersion: (monitoring\.coreos\.com|gateway\.networking\.k8s\.io)/'

# check NAME DIR [quiet]: render, validate, apply the rules. Returns 1 on failure.
check() {
  local name=$1 dir=$2 out="$work/$1.yaml"
  echo "== $name"
  if ! "${render[@]}" "$dir" > "$out" 2> "$work/$name.err"; then
    sed 's/^/   /' "$work/$name.err"; echo "FAIL $name: kustomize could not render $dir"; return 1
  fi
  [ "$arg" = "-v" ] && cat "$out"
  local ok=0 kargs=() skipped
  for v in $versions; do kargs+=(-k "$v"); done
  python3 - "$out" "$work/$name.core.yaml" "$CRD_GROUPS" > "$work/$name.skipped" <<'PY'
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
core = [d for d in docs if not re.match(sys.argv[3], "apiVersion: " + d["apiVersion"] + "/")]
yaml.safe_dump_all(core, open(sys.argv[2], "w"))
print(" ".join(f"{d['kind']}/{d['metadata']['name']}" for d in docs if d not in core))
PY
  skipped=$(cat "$work/$name.skipped")
  if kubernetes-validate --strict --quiet "${kargs[@]}" "$work/$name.core.yaml"; then
    echo "   schema: $(grep -c '^kind:' "$work/$name.core.yaml") resources valid (strict, Kubernetes ${versions// /, })"
  else
    ok=1
  fi
  [ -n "$skipped" ] && echo "   schema: skipped (custom resources, no schema offline; shape checked by r9): $skipped"
  python3 "$rules" "$out" || ok=1
  [ "$ok" = 0 ] && echo "PASS $name" || echo "FAIL $name"
  return $ok
}

# A kustomization on top of RESOURCE with the given components.
stack() {
  local dir="$work/$1" base=$2; shift 2
  mkdir -p "$dir"
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources: [$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$base" "$dir")]"
    echo "components:"
    for c in "$@"; do echo "  - $(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$kdir/components/$c" "$dir")"; done
  } > "$dir/kustomization.yaml"
  echo "$dir"
}

self_test() {
  # Every fixture renders something that one rule must reject: the FAIL and
  # that rule's tag are expected; a PASS, or only other rules, is a failure.
  bad=0 n=0
  for f in "$here"/check-fixtures/*/; do
    f=${f%/}; rule=$(basename "$f" | cut -d- -f1); n=$((n + 1))
    if check "self-test $(basename "$f")" "$f" > "$work/self.log" 2>&1; then
      echo "SELF-TEST FAIL $(basename "$f"): passed, but rule $rule should have fired"; bad=$((bad + 1))
    elif ! grep -q "rule \[$rule\]" "$work/self.log"; then
      cat "$work/self.log"; echo "SELF-TEST FAIL $(basename "$f"): failed, but not by rule $rule"; bad=$((bad + 1))
    else
      echo "self-test ok $(basename "$f"): $(grep -m1 "rule \[$rule\]" "$work/self.log" | sed 's/^ *//')"
    fi
  done
  echo; echo "deploy self-test: $((n - bad)) of $n fixtures rejected by their rule"
  [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]
}
if [ "$arg" = "--self-test" ]; then self_test; exit; fi

echo "renderer:  ${render[*]}; validator: kubernetes-validate $(kubernetes-validate --version)"
# A reminder, not a failure: a service crate without a base file.
for d in "$here"/../services/*/; do
  s=$(basename "$d")
  [ -f "$d/Cargo.toml" ] && [ ! -f "$kdir/base/$s.yaml" ] && echo "note:      services/$s has no deploy/kustomize/base/$s.yaml: it is not deployed"
done
passed=0 failed=0
run() { if check "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; echo; }
run dev "$kdir/overlays/dev"
run production "$kdir/overlays/production"
# Every component on top of an overlay that lacks it.
run dev+components "$(stack dev+components "$kdir/overlays/dev" network-policy otel pod-monitor gateway-api gateway-ingress dependency-tls oidc)"
run production+components "$(stack production+components "$kdir/overlays/production" gateway-api gateway-ingress)"
echo "deploy: $passed passed, $failed failed"
# The rules must still catch what they are for (the default run includes it,
# so .ci/run's `bash deploy/check.sh` covers it).
echo; self_test || failed=$((failed + 1))
[ "$failed" -eq 0 ]
