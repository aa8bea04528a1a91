#!/usr/bin/env bash
# Renders every Kustomize overlay of deploy/kustomize and validates it offline:
#   1. kustomize build (`kubectl kustomize`, or a standalone `kustomize` v5),
#   2. kubernetes-validate --strict against the Kubernetes versions in
#      BANSO_K8S_VERSIONS (default "1.31.0 1.37.0"): schema, unknown fields,
#   3. Banso's own rules (below): shutdown timing, gRPC probes, hardening,
#      secrets, ports, the token-verification mode of each overlay.
#
# Installs nothing. Needs, on PATH:
#   kubectl >= 1.27 (kustomize v5) or kustomize v5
#   kubernetes-validate   pip install kubernetes-validate==1.37.0
#   python3 with PyYAML   (a dependency of kubernetes-validate)
#
# Usage: bash deploy/check.sh [-v]      (-v also prints every rendered manifest)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kdir="$here/kustomize"
versions=${BANSO_K8S_VERSIONS:-"1.31.0 1.37.0"}
verbose=${1:-}

die() { echo "deploy/check.sh: $*" >&2; exit 2; }

# --- tools ------------------------------------------------------------------
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
if [ ${#render[@]} -eq 0 ]; then
  die "no Kustomize v5 renderer: need kubectl >= 1.27 (\`kubectl kustomize\`) or a standalone kustomize v5 on PATH.
  Found: kubectl: $(command -v kubectl >/dev/null 2>&1 && kubectl version --client 2>/dev/null | tr '\n' ' ' || echo none); kustomize: $(command -v kustomize || echo none).
  (Debian's kubernetes-client package is kubectl 1.20 with kustomize v2: too old for components.)"
fi
command -v kubernetes-validate >/dev/null 2>&1 ||
  die "kubernetes-validate not found on PATH: pip install kubernetes-validate==1.37.0"
python3 -c 'import yaml' 2>/dev/null ||
  die "python3 cannot import yaml: pip install pyyaml (kubernetes-validate depends on it)"

echo "renderer:  ${render[*]} ($("${render[0]}" version --client 2>/dev/null | grep -i kustomize || "${render[0]}" version 2>/dev/null | head -n1))"
echo "validator: kubernetes-validate $(kubernetes-validate --version), Kubernetes ${versions}"

# --- what to render -----------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name  directory  expected token-verification mode
targets=(
  "dev               $kdir/overlays/dev         hs256"
  "production        $kdir/overlays/production  public-key"
)
# Every component on top of dev as well, so each also applies to a base that
# production does not use.
mkdir -p "$work/dev-with-components"
rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$kdir" "$work/dev-with-components")
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - $rel/overlays/dev"
  echo "components:"
  for c in "$kdir"/components/*/; do echo "  - $rel/components/$(basename "$c")"; done
} > "$work/dev-with-components/kustomization.yaml"
targets+=("dev+components    $work/dev-with-components  hs256")

passed=0
failed=0
for t in "${targets[@]}"; do
  read -r name dir mode <<<"$t"
  out="$work/$name.yaml"
  echo
  echo "== $name"
  if ! "${render[@]}" "$dir" > "$out" 2> "$work/$name.err"; then
    sed 's/^/   /' "$work/$name.err"
    echo "FAIL $name: kustomize could not render $dir"
    failed=$((failed + 1))
    continue
  fi
  [ "$verbose" = "-v" ] && cat "$out"
  ok=1
  kargs=()
  for v in $versions; do kargs+=(-k "$v"); done
  if kubernetes-validate --strict --quiet "${kargs[@]}" "$out"; then
    echo "   schema: $(grep -c '^kind:' "$out") resources valid against Kubernetes ${versions// /, } (strict)"
  else
    ok=0
  fi
  if ! python3 - "$out" "$mode" <<'PY'
import re, sys, yaml

path, mode = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
def err(msg): errors.append(msg)

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}

secret_keys = set()
for name, dep in by_kind.get("Deployment", {}).items():
    where = f"Deployment/{name}"
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    if dep["spec"]["selector"]["matchLabels"].items() - labels.items():
        err(f"{where}: selector does not match the pod template's labels")
    psc = pod.get("securityContext", {})
    if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == 65532):
        err(f"{where}: pod must run as non-root user 65532")
    if pod.get("automountServiceAccountToken") is not False:
        err(f"{where}: automountServiceAccountToken must be false")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    containers = pod.get("initContainers", []) + pod["containers"]
    for c in containers:
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext", {})
        for key, want in [("runAsNonRoot", True), ("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)]:
            if sc.get(key) is not want:
                err(f"{cw}: securityContext.{key} must be {str(want).lower()}")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            err(f"{cw}: must drop ALL capabilities")
        if (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            err(f"{cw}: seccompProfile must be RuntimeDefault")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        if "emptyDir" not in volumes.get(mounts.get("/tmp", ""), {}):
            err(f"{cw}: /tmp must be an emptyDir (the root file system is read-only)")
        img = c.get("image", "")
        if ":" not in img.rsplit("/", 1)[-1] and "@" not in img:
            err(f"{cw}: image {img!r} has no tag")
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                if ref["name"] != "banso-secrets":
                    err(f"{cw}: {e['name']} reads Secret {ref['name']!r}, not banso-secrets")
                secret_keys.add(ref["key"])
        if "resources" not in c or not c["resources"].get("requests") or not c["resources"].get("limits"):
            err(f"{cw}: needs resources.requests and resources.limits")

    server = [c for c in pod["containers"] if (c.get("args") or [None])[0] == "serve"]
    if len(server) != 1:
        err(f"{where}: expected one container running `banso serve <service>`")
        continue
    c = server[0]
    env = env_of(c)
    service = c["args"][1]
    def num(var):
        v = env.get(var, {}).get("value")
        if v is None:
            err(f"{where}: {var} must be set to a literal value")
            return 0.0
        return float(v)
    delay, grace = num("BANSO_SHUTDOWN_DELAY_SECS"), num("BANSO_SHUTDOWN_GRACE_SECS")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if tgps < delay + grace + 5:
        err(f"{where}: terminationGracePeriodSeconds {tgps} leaves under 5 s after "
            f"BANSO_SHUTDOWN_DELAY_SECS {delay:g} + BANSO_SHUTDOWN_GRACE_SECS {grace:g}")
    if env.get("BANSO_LOG_FORMAT", {}).get("value") != "json":
        err(f"{where}: BANSO_LOG_FORMAT must be json")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    grpc_port = int(env.get("BANSO_GRPC_ADDR", {}).get("value", "0.0.0.0:50051").rsplit(":", 1)[1])
    admin_port = int(env.get("BANSO_ADMIN_ADDR", {}).get("value", "0.0.0.0:9090").rsplit(":", 1)[1])
    if ports.get("grpc") != grpc_port or ports.get("metrics") != admin_port:
        err(f"{where}: ports grpc/metrics {ports} differ from BANSO_GRPC_ADDR/BANSO_ADMIN_ADDR ({grpc_port}/{admin_port})")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(admin_port):
        err(f"{where}: prometheus.io/scrape and prometheus.io/port={admin_port} annotations are missing")
    want_service = f"banso.{service}.v1.{service.capitalize()}Service"
    for probe, want in [("startupProbe", None), ("livenessProbe", ""), ("readinessProbe", want_service)]:
        p = c.get(probe)
        if not p or "grpc" not in p or p["grpc"].get("port") != grpc_port:
            err(f"{where}: {probe} must be a gRPC probe on port {grpc_port}")
        elif want is not None and p["grpc"].get("service", "") != want:
            err(f"{where}: {probe} must check service {want!r}, not {p['grpc'].get('service', '')!r}")
    has_pub = "BANSO_JWT_PUBLIC_KEY" in env or "BANSO_JWT_PUBLIC_KEY_FILE" in env
    has_hs = "BANSO_JWT_HS256_SECRET" in env
    if mode == "hs256" and (has_pub or not has_hs):
        err(f"{where}: a development overlay verifies tokens with BANSO_JWT_HS256_SECRET only")
    if mode == "public-key" and (has_hs or not has_pub):
        err(f"{where}: a production overlay verifies tokens with BANSO_JWT_PUBLIC_KEY only, never HS256")
    if "BANSO_DATABASE_URL" not in env or "BANSO_PAGE_TOKEN_SECRET" not in env:
        err(f"{where}: BANSO_DATABASE_URL and BANSO_PAGE_TOKEN_SECRET must come from banso-secrets")
    if not any(ic.get("args", [])[:2] == ["migrate", service] for ic in pod.get("initContainers", [])):
        err(f"{where}: an init container must run `banso migrate {service}`")
    if any(h.get("spec", {}).get("scaleTargetRef", {}).get("name") == name
           for h in by_kind.get("HorizontalPodAutoscaler", {}).values()) and "replicas" in dep["spec"]:
        err(f"{where}: has an autoscaler, so spec.replicas must be left out (kubectl apply would reset it)")

for name, svc in by_kind.get("Service", {}).items():
    sel = svc["spec"].get("selector", {})
    pods = [d for d in by_kind.get("Deployment", {}).values()
            if sel and not (sel.items() - d["spec"]["template"]["metadata"].get("labels", {}).items())]
    if len(pods) != 1:
        err(f"Service/{name}: selector {sel} matches {len(pods)} Deployments, not 1")
        continue
    names = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    for p in svc["spec"]["ports"]:
        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
            err(f"Service/{name}: targetPort {p['targetPort']!r} is no container port name")

for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
    for name, o in by_kind.get(kind, {}).items():
        if kind == "HorizontalPodAutoscaler":
            ok = o["spec"]["scaleTargetRef"]["name"] in by_kind.get("Deployment", {})
        else:
            sel = o["spec"]["selector"]["matchLabels"].items()
            ok = any(not (sel - d["spec"]["template"]["metadata"].get("labels", {}).items())
                     for d in by_kind.get("Deployment", {}).values())
        if not ok:
            err(f"{kind}/{name}: refers to no Deployment in the output")

for e in errors:
    print(f"   rule: {e}")
if errors:
    sys.exit(1)
print(f"   rules: ok ({len(by_kind.get('Deployment', {}))} Deployment(s); tokens: {mode}; "
      f"Secret banso-secrets keys: {', '.join(sorted(secret_keys))})")
PY
  then
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
done

echo
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
