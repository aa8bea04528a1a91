#!/usr/bin/env bash
# Renders every Kustomize overlay of deploy/kustomize and validates it offline:
#   1. kustomize build (`kubectl kustomize`, or a standalone `kustomize` v5),
#   2. kubernetes-validate --strict against the Kubernetes versions in
#      BANSO_K8S_VERSIONS (default "1.31.0 1.37.0"): schema, unknown fields,
#   3. Banso's own rules (below), for every Banso Deployment: shutdown
#      timing, probes (gRPC for the services, HTTP /healthz for the gateway),
#      hardening, secrets, ports, the token-verification mode of each
#      overlay, service settings, a Service of its own; for every service in
#      BANSO_SERVICES (default "accounts health") and for the gateway a
#      ServiceAccount, Deployment and Service in every overlay, plus an HPA
#      and a PDB where the overlay autoscales (production); the gateway's
#      upstream URLs naming the services' Services; Ingress backends; and
#      NetworkPolicies that keep the services' gRPC port to the gateway and
#      the services (never a rule on it without `from`).
#
# Installs nothing. Needs, on PATH (or in .ci/.venv, as .ci/run installs them):
#   kubectl >= 1.27 (kustomize v5) or kustomize v5
#   kubernetes-validate   pip install kubernetes-validate==1.37.0
#   python3 with PyYAML   (a dependency of kubernetes-validate)
#
# Usage: bash deploy/check.sh [-v]      (-v also prints every rendered manifest)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kdir="$here/kustomize"
versions=${BANSO_K8S_VERSIONS:-"1.31.0 1.37.0"}
# Every service that must be deployed (`banso serve <service>`, Deployment
# banso-<service>). Add a service here when you add it to the base. The
# gateway (`banso serve gateway`, Deployment banso-gateway) is always
# deployed and checked by rules of its own; it is not a service.
services=${BANSO_SERVICES:-"accounts health"}
verbose=${1:-}

die() { echo "deploy/check.sh: $*" >&2; exit 2; }

# --- tools ------------------------------------------------------------------
# The virtualenv that .ci/run creates (kubernetes-validate, PyYAML, maybe
# kubectl), when the tools are not on PATH already.
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
echo "services:  ${services} (and the gateway)"
# A reminder, not a failure: a service crate that is not (yet) in the list.
for d in "$here"/../services/*/; do
  s=$(basename "$d")
  [ -f "$d/Cargo.toml" ] || continue
  [ "$s" = gateway ] && continue
  case " $services " in *" $s "*) ;; *) echo "note:      services/$s is not in BANSO_SERVICES: it is not deployed" ;; esac
done

# --- what to render -----------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name  directory  expected token-verification mode  replica count set by
targets=(
  "dev               $kdir/overlays/dev         hs256       replicas"
  "production        $kdir/overlays/production  public-key  autoscaler"
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
targets+=("dev+components    $work/dev-with-components  hs256  replicas")

passed=0
failed=0
for t in "${targets[@]}"; do
  read -r name dir mode scaling <<<"$t"
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
  if ! python3 - "$out" "$mode" "$scaling" "$services" <<'PY'
import re, sys, yaml

path, mode, scaling, services = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
GATEWAY = "gateway"  # `banso serve gateway`: a role of the binary, not a service
roles = services + [GATEWAY]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
def err(msg): errors.append(msg)

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
deployments = by_kind.get("Deployment", {})
hpas = by_kind.get("HorizontalPodAutoscaler", {})
pdbs = by_kind.get("PodDisruptionBudget", {})

def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}

def pod_labels(dep):
    return dep["spec"]["template"]["metadata"].get("labels", {})

def selects(selector, labels):
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    if selector is None:
        return False
    if selector.get("matchLabels", {}).items() - labels.items():
        return False
    for e in selector.get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values: return False
        if op == "NotIn" and key in labels and labels[key] in values: return False
        if op == "Exists" and key not in labels: return False
        if op == "DoesNotExist" and key in labels: return False
    return True

def quantity(q):
    """A Kubernetes quantity as a float (cores or bytes)."""
    m = re.fullmatch(r"([0-9.]+(?:[eE][-+]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?", str(q))
    if not m:
        return None
    mult = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}[m.group(2)]
    return float(m.group(1)) * mult

def port_of(addr_value, default):
    return int((addr_value or f"0.0.0.0:{default}").rsplit(":", 1)[1])

def url_port(url, default):
    m = re.match(r"[a-z]+://(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*)(?::(\d+))?", url or "")
    return int(m.group(1)) if m and m.group(1) else default

# Service-specific settings, checked as the binary checks them (literal values).
def check_health_settings(where, env, num_opt):
    window = num_opt("BANSO_HEALTH_LATE_WINDOW_HOURS", 168)
    if window is not None and not (1 <= window <= 2160 and window == int(window)):
        err(f"{where}: BANSO_HEALTH_LATE_WINDOW_HOURS {window:g} is not 1 to 2160 hours")
    step = num_opt("BANSO_HEALTH_SCORE_STEP", 5)
    if step is not None and not (0 <= step <= 100):
        err(f"{where}: BANSO_HEALTH_SCORE_STEP {step:g} is not 0 to 100")
    retention = num_opt("BANSO_HEALTH_RAW_RETENTION_DAYS", None)
    if retention is not None:
        if retention < 1 or retention != int(retention):
            err(f"{where}: BANSO_HEALTH_RAW_RETENTION_DAYS {retention:g} is not a whole number of days >= 1")
        elif window is not None and retention * 24 < window:
            err(f"{where}: BANSO_HEALTH_RAW_RETENTION_DAYS {retention:g} ({retention * 24:g} h) is shorter than "
                f"BANSO_HEALTH_LATE_WINDOW_HOURS {window:g}: events still accepted would already be pruned")
service_settings = {"health": check_health_settings}

secret_keys = set()
servers = {}  # Deployment name -> its `serve` container
serving = {}  # Deployment name -> (port name, port) it serves on: grpc, or http for the gateway
upstreams = {n: [] for n in deployments}  # gateway Deployment -> [(service, variable, host, port)]
for name, dep in deployments.items():
    where = f"Deployment/{name}"
    pod = dep["spec"]["template"]["spec"]
    labels = pod_labels(dep)
    if dep["spec"]["selector"]["matchLabels"].items() - labels.items():
        err(f"{where}: selector does not match the pod template's labels")
    # The overlays' and components' patches select Deployments by this label.
    for what, ls in [("metadata.labels", dep["metadata"].get("labels", {})), ("pod template labels", labels)]:
        if ls.get("app.kubernetes.io/part-of") != "banso":
            err(f"{where}: {what} lack app.kubernetes.io/part-of=banso (the overlays' patches select on it)")
    if labels.get("app") != name:
        err(f"{where}: pod label app must be {name!r} (the spread patch and OTEL_SERVICE_NAME use it)")
    psc = pod.get("securityContext", {})
    if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == 65532):
        err(f"{where}: pod must run as non-root user 65532")
    if pod.get("automountServiceAccountToken") is not False:
        err(f"{where}: automountServiceAccountToken must be false")
    # Service links put <SERVICE>_PORT, <SERVICE>_SERVICE_HOST, … of every
    # Service into the environment: for banso-gateway that is BANSO_GATEWAY_PORT
    # and the like, in the namespace where Banso reads its settings.
    if pod.get("enableServiceLinks") is not False:
        err(f"{where}: enableServiceLinks must be false (Service links would add BANSO_* variables)")
    sa = pod.get("serviceAccountName")
    if sa != name or sa not in by_kind.get("ServiceAccount", {}):
        err(f"{where}: serviceAccountName must be its own ServiceAccount {name!r} (got {sa!r})")
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
        if sc.get("capabilities", {}).get("add"):
            err(f"{cw}: must add no capabilities")
        if sc.get("privileged"):
            err(f"{cw}: must not be privileged")
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
        res = c.get("resources") or {}
        if not res.get("requests") or not res.get("limits"):
            err(f"{cw}: needs resources.requests and resources.limits")
        else:
            for r in ("cpu", "memory"):
                req, lim = res["requests"].get(r), res["limits"].get(r)
                if req is None or (lim is None and r == "memory"):
                    err(f"{cw}: needs a {r} request" + (" and limit" if r == "memory" else ""))
                elif lim is not None:
                    rq, lq = quantity(req), quantity(lim)
                    if rq is None or lq is None:
                        err(f"{cw}: cannot read {r} quantities {req!r}/{lim!r}")
                    elif rq > lq:
                        err(f"{cw}: {r} request {req} is above its limit {lim}")

    server = [c for c in pod["containers"] if (c.get("args") or [None])[0] == "serve"]
    if len(server) != 1 or len(server[0].get("args", [])) < 2:
        err(f"{where}: expected one container running `banso serve <service>`")
        continue
    c = server[0]
    servers[name] = c
    env = env_of(c)
    service = c["args"][1]
    gateway = service == GATEWAY
    if c["name"] != "server":
        err(f"{where}: the serve container must be named `server` (the patches merge into that name)")
    if name != f"banso-{service}":
        err(f"{where}: runs `banso serve {service}`, so it must be named banso-{service}")
    if service not in roles:
        err(f"{where}: service {service!r} is not in BANSO_SERVICES ({' '.join(services)}) of deploy/check.sh")
    # The network-policy component tells the gateway from the services by this label.
    want_component = "gateway" if gateway else "service"
    for what, ls in [("metadata.labels", dep["metadata"].get("labels", {})), ("pod template labels", labels)]:
        if ls.get("app.kubernetes.io/component") != want_component:
            err(f"{where}: {what} need app.kubernetes.io/component={want_component} (the NetworkPolicies and patches select on it)")
    def num(var):
        v = env.get(var, {}).get("value")
        if v is None:
            err(f"{where}: {var} must be set to a literal value")
            return 0.0
        return float(v)
    def num_opt(var, default):
        if var not in env:
            return default
        v = env[var].get("value")
        try:
            return float(v)
        except (TypeError, ValueError):
            err(f"{where}: {var} must be a literal number, not {v!r}")
            return None
    delay, grace = num("BANSO_SHUTDOWN_DELAY_SECS"), num("BANSO_SHUTDOWN_GRACE_SECS")
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if tgps < delay + grace + 5:
        err(f"{where}: terminationGracePeriodSeconds {tgps} leaves under 5 s after "
            f"BANSO_SHUTDOWN_DELAY_SECS {delay:g} + BANSO_SHUTDOWN_GRACE_SECS {grace:g}")
    if env.get("BANSO_LOG_FORMAT", {}).get("value") != "json":
        err(f"{where}: BANSO_LOG_FORMAT must be json")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    admin_port = port_of(env.get("BANSO_ADMIN_ADDR", {}).get("value"), 9090)
    if gateway:
        # The door: HTTP on BANSO_GATEWAY_ADDR, probed over HTTP.
        http_port = port_of(env.get("BANSO_GATEWAY_ADDR", {}).get("value"), 8080)
        serving[name] = ("http", http_port)
        if ports.get("http") != http_port or ports.get("metrics") != admin_port:
            err(f"{where}: ports http/metrics {ports} differ from BANSO_GATEWAY_ADDR/BANSO_ADMIN_ADDR ({http_port}/{admin_port})")
        if "grpc" in ports:
            err(f"{where}: the gateway serves no gRPC port of its own (only HTTP: REST, gRPC-Web, tracking)")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            p = c.get(probe)
            if p is None and probe == "startupProbe":
                continue
            get = (p or {}).get("httpGet")
            if not get or get.get("path") != "/healthz" or get.get("port") not in ("http", http_port):
                err(f"{where}: {probe} must be an HTTP GET of /healthz on port http ({http_port})")
            elif get.get("scheme", "HTTP") != "HTTP":
                err(f"{where}: {probe} must use plain HTTP (TLS ends at the Ingress)")
    else:
        grpc_port = port_of(env.get("BANSO_GRPC_ADDR", {}).get("value"), 50051)
        serving[name] = ("grpc", grpc_port)
        if ports.get("grpc") != grpc_port or ports.get("metrics") != admin_port:
            err(f"{where}: ports grpc/metrics {ports} differ from BANSO_GRPC_ADDR/BANSO_ADMIN_ADDR ({grpc_port}/{admin_port})")
        want_service = f"banso.{service}.v1.{service.capitalize()}Service"
        for probe, want in [("startupProbe", None), ("livenessProbe", ""), ("readinessProbe", want_service)]:
            p = c.get(probe)
            if not p or "grpc" not in p or p["grpc"].get("port") != grpc_port:
                err(f"{where}: {probe} must be a gRPC probe on port {grpc_port}")
            elif want is not None and p["grpc"].get("service", "") != want:
                err(f"{where}: {probe} must check service {want!r}, not {p['grpc'].get('service', '')!r}")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(admin_port):
        err(f"{where}: prometheus.io/scrape and prometheus.io/port={admin_port} annotations are missing")
    has_pub = "BANSO_JWT_PUBLIC_KEY" in env or "BANSO_JWT_PUBLIC_KEY_FILE" in env
    has_hs = "BANSO_JWT_HS256_SECRET" in env
    if mode == "hs256" and (has_pub or not has_hs):
        err(f"{where}: a development overlay verifies tokens with BANSO_JWT_HS256_SECRET only")
    if mode == "public-key" and not has_pub:
        err(f"{where}: a production overlay verifies users' tokens with BANSO_JWT_PUBLIC_KEY")
    # Production: HS256 only beside the public key, for the service tokens
    # the gateway's tracking API signs (components/tracking-tokens); that
    # every Deployment has the same secret is checked below.
    if mode == "public-key" and has_hs and "banso-gateway" not in deployments:
        err(f"{where}: BANSO_JWT_HS256_SECRET in a production overlay is only for the gateway's tracking "
            f"tokens (components/tracking-tokens), and this output has no banso-gateway")
    if gateway:
        # Stateless: no database, no bus, no page tokens, no migrations.
        for var in ("BANSO_DATABASE_URL", "BANSO_PAGE_TOKEN_SECRET", "BANSO_NATS_URL"):
            if var in env:
                err(f"{where}: the gateway keeps no state: {var} does not belong on it")
        if pod.get("initContainers"):
            err(f"{where}: the gateway has no migrations: no init containers")
        # Every service is reached at its Service's gRPC port.
        for s in services:
            var = f"BANSO_GATEWAY_{s.upper()}_URL"
            url = env.get(var, {}).get("value") if var in env else f"http://banso-{s}:50051"
            if url is None:
                err(f"{where}: {var} must be a literal URL")
                continue
            m = re.fullmatch(r"http://([a-z0-9-]+)(?:\.[a-z0-9.-]*)?:(\d+)/?", url)
            if not m:
                err(f"{where}: {var} {url!r} is not http://<service>[.<namespace>…]:<port>")
                continue
            upstreams[name].append((s, var, m.group(1), int(m.group(2))))
    else:
        if "BANSO_DATABASE_URL" not in env or "BANSO_PAGE_TOKEN_SECRET" not in env:
            err(f"{where}: BANSO_DATABASE_URL and BANSO_PAGE_TOKEN_SECRET must come from banso-secrets")
        if not env.get("BANSO_NATS_URL", {}).get("value", "").startswith("nats://"):
            err(f"{where}: BANSO_NATS_URL must name NATS (nats://...): pods in separate processes exchange events only through it")
        if not any(ic.get("args", [])[:2] == ["migrate", service] for ic in pod.get("initContainers", [])):
            err(f"{where}: an init container must run `banso migrate {service}`")
    # A setting of one service on another's Deployment is a mistake (it is ignored there).
    for other in roles:
        if other != service:
            for var in env:
                if var.startswith(f"BANSO_{other.upper()}_"):
                    err(f"{where}: {var} is a setting of the {other} service, not of {service}")
    if service in service_settings:
        service_settings[service](where, env, num_opt)

    # Who owns the replica count.
    own_hpas = [h for h in hpas.values() if h["spec"].get("scaleTargetRef", {}).get("kind") == "Deployment"
                and h["spec"]["scaleTargetRef"].get("name") == name]
    if own_hpas and "replicas" in dep["spec"]:
        err(f"{where}: has an autoscaler, so spec.replicas must be left out (kubectl apply would reset it)")
    if scaling == "replicas" and "replicas" not in dep["spec"]:
        err(f"{where}: this overlay sets replica counts: add {name} to its `replicas:` list")
    if scaling == "autoscaler":
        if len(own_hpas) != 1:
            err(f"{where}: needs exactly one HorizontalPodAutoscaler, found {len(own_hpas)}")
        elif own_hpas[0]["spec"].get("minReplicas", 1) < 2:
            err(f"{where}: HorizontalPodAutoscaler minReplicas must be >= 2 (one replica cannot survive a drain)")
        own_pdbs = [p for p in pdbs.values() if selects(p["spec"].get("selector"), labels)]
        if len(own_pdbs) != 1:
            err(f"{where}: needs exactly one PodDisruptionBudget selecting its pods, found {len(own_pdbs)}")
        keys = {t.get("topologyKey") for t in pod.get("topologySpreadConstraints", [])}
        if "kubernetes.io/hostname" not in keys:
            err(f"{where}: needs a topologySpreadConstraint over kubernetes.io/hostname")

# Every service of the list, and the gateway, is deployed with its own objects.
for s in roles:
    n = f"banso-{s}"
    for kind in ("ServiceAccount", "Deployment", "Service"):
        if n not in by_kind.get(kind, {}):
            err(f"{'gateway' if s == GATEWAY else 'service ' + s}: {kind}/{n} is missing")
    if scaling == "autoscaler" and n not in hpas:
        err(f"{n}: HorizontalPodAutoscaler/{n} is missing")
    if scaling == "autoscaler" and n not in pdbs:
        err(f"{n}: PodDisruptionBudget/{n} is missing")

# Every Deployment has its Service: the same name, selecting its pods, with
# a port of the serving port's name (grpc; http for the gateway) targeting it.
services_out = by_kind.get("Service", {})
for name, dep in deployments.items():
    if name not in serving:
        continue
    pname, pnum = serving[name]
    svc = services_out.get(name)
    if svc is None:
        err(f"Deployment/{name}: has no Service/{name}")
        continue
    if not selects({"matchLabels": svc["spec"].get("selector", {})}, pod_labels(dep)):
        err(f"Service/{name}: does not select the pods of Deployment/{name}")
    if not any(p.get("name") == pname and p.get("targetPort") in (pname, pnum) for p in svc["spec"]["ports"]):
        err(f"Service/{name}: needs a port named {pname} with targetPort {pname}")
gw_svc = services_out.get("banso-gateway")
if gw_svc and not any(p.get("name") == "http" and p.get("port") == 80 for p in gw_svc["spec"]["ports"]):
    err("Service/banso-gateway: needs port 80 named http (what an Ingress and in-cluster callers use)")

for name, svc in services_out.items():
    sel = svc["spec"].get("selector", {})
    pods = [d for d in deployments.values() if sel and selects({"matchLabels": sel}, pod_labels(d))]
    if len(pods) != 1:
        err(f"Service/{name}: selector {sel} matches {len(pods)} Deployments, not 1")
        continue
    names = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    for p in svc["spec"]["ports"]:
        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
            err(f"Service/{name}: targetPort {p['targetPort']!r} is no container port name")

# The gateway reaches every service at its Service's gRPC port.
for gw, ups in upstreams.items():
    for s, var, host, port in ups:
        svc = services_out.get(host)
        if svc is None:
            err(f"Deployment/{gw}: {var} names host {host!r}, which is no Service in this output")
        elif not any(p.get("name") == "grpc" and p.get("port") == port for p in svc["spec"]["ports"]):
            err(f"Deployment/{gw}: {var} uses port {port}, not the grpc port of Service/{host}")
        elif host != f"banso-{s}":
            err(f"Deployment/{gw}: {var} points at Service/{host}, not banso-{s}")

# Ingresses: only to the gateway, to a port the Service has, with TLS.
for name, ing in by_kind.get("Ingress", {}).items():
    where = f"Ingress/{name}"
    backends = [p["backend"] for r in ing["spec"].get("rules", []) for p in r.get("http", {}).get("paths", [])]
    if ing["spec"].get("defaultBackend"):
        backends.append(ing["spec"]["defaultBackend"])
    for b in backends:
        ref = b.get("service")
        if not ref:
            continue
        svc = services_out.get(ref["name"])
        port = ref.get("port", {})
        if svc is None:
            err(f"{where}: backend Service {ref['name']!r} is not in this output")
            continue
        match = [p for p in svc["spec"]["ports"] if p.get("name") == port.get("name") or p.get("port") == port.get("number")]
        if not match:
            err(f"{where}: Service/{ref['name']} has no port {port}")
        elif ref["name"] != "banso-gateway" or match[0].get("name") != "http":
            err(f"{where}: routes to Service/{ref['name']} port {match[0].get('name')}: only the gateway's http port is for outside callers")
    hosts = {r.get("host") for r in ing["spec"].get("rules", [])}
    tls_hosts = {h for t in ing["spec"].get("tls", []) if t.get("secretName") for h in t.get("hosts", [])}
    if not ing["spec"].get("tls") or hosts - tls_hosts:
        err(f"{where}: every host needs TLS (spec.tls with a secretName): tokens and write keys cross it")

for name, h in hpas.items():
    ref = h["spec"]["scaleTargetRef"]
    if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
        err(f"HorizontalPodAutoscaler/{name}: refers to no Deployment in the output")
for name, p in pdbs.items():
    n = sum(selects(p["spec"].get("selector"), pod_labels(d)) for d in deployments.values())
    if n != 1:
        err(f"PodDisruptionBudget/{name}: selects the pods of {n} Deployments, not 1")

# Settings the Deployments must share: one token configuration (the gateway
# verifies the same tokens and signs the tracking API's with the same
# secret); among the services also one NATS (and subject namespace) to
# exchange events, one database and one page-token secret.
service_servers = {n: c for n, c in servers.items() if serving.get(n, ("grpc",))[0] == "grpc"}
shared = [(var, servers) for var in ("BANSO_JWT_ALGORITHM", "BANSO_JWT_ISSUER", "BANSO_JWT_AUDIENCE",
                                     "BANSO_JWT_PUBLIC_KEY", "BANSO_JWT_HS256_SECRET")]
shared += [(var, service_servers) for var in ("BANSO_NATS_URL", "BANSO_NATS_NAMESPACE", "BANSO_DATABASE_URL",
                                              "BANSO_PAGE_TOKEN_SECRET")]
for var, among in shared:
    seen = {}
    for n, c in among.items():
        e = env_of(c).get(var)
        seen.setdefault(repr(e and {k: v for k, v in e.items() if k != "name"}), []).append(n)
    if len(seen) > 1:
        err(f"{var} differs between the Deployments: " + "; ".join(f"{', '.join(ns)}: {v}" for v, ns in seen.items()))

# Components apply to every Deployment or to none.
otel = {n for n, c in servers.items() if "OTEL_EXPORTER_OTLP_ENDPOINT" in env_of(c)}
if otel and otel != set(servers):
    err(f"OTEL_EXPORTER_OTLP_ENDPOINT is set on {sorted(otel)} but not on {sorted(set(servers) - otel)}")
policies = by_kind.get("NetworkPolicy", {})
if policies:
    def admits_port(r, port, name, protocol="TCP"):
        """Whether one NetworkPolicy rule lets `port` through (a rule without ports allows every port)."""
        ps = r.get("ports")
        if not ps:
            return True
        for p in ps:
            if p.get("protocol", "TCP") == protocol and p.get("port") in (None, port, name):
                return True
            end = p.get("endPort")
            if end and p.get("protocol", "TCP") == protocol and isinstance(p.get("port"), int) and p["port"] <= port <= end:
                return True
        return False
    def allows(rules, port, name, protocol="TCP"):
        return any(admits_port(r, port, name, protocol) for r in rules)
    def too_wide(peer):
        """A `from` peer that admits every pod (of the namespace or the cluster) or every address."""
        if "ipBlock" in peer:
            return peer["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0")
        if "namespaceSelector" in peer and not any(peer["namespaceSelector"].values()):
            return True
        return "podSelector" in peer and not any(peer["podSelector"].values()) and "namespaceSelector" not in peer
    def peer_admits(peer, labels):
        """Whether a `from` peer admits a pod of this namespace with `labels`."""
        if "ipBlock" in peer:
            return False  # pod addresses are not known here
        ns = peer.get("namespaceSelector")
        if ns is not None and any(ns.values()):
            return False  # other namespaces: this namespace's labels are not known here
        pod = peer.get("podSelector")
        return pod is None or not any(pod.values()) or selects(pod, labels)
    def ingress_of(name):
        mine = [p for p in policies.values() if selects(p["spec"].get("podSelector"), pod_labels(deployments[name]))]
        return [p for p in mine if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])], \
               [p for p in mine if "Egress" in p["spec"].get("policyTypes", [])]
    for name, c in servers.items():
        where = f"Deployment/{name}"
        ingress, egress = ingress_of(name)
        if not ingress:
            err(f"{where}: no NetworkPolicy selects its pods, while this output has NetworkPolicies")
        rules = [(p["metadata"]["name"], r) for p in ingress for r in p["spec"].get("ingress", [])]
        for pname, port in [(p["name"], p["containerPort"]) for p in c.get("ports", [])]:
            if ingress and not allows([r for _, r in rules], port, pname):
                err(f"{where}: its NetworkPolicies do not admit port {pname} ({port})")
        kind, port = serving.get(name, (None, None))
        if kind == "grpc":
            # The services' gRPC port: only named callers, never everyone.
            for pol, r in rules:
                if not admits_port(r, port, "grpc"):
                    continue
                if not r.get("from"):
                    err(f"NetworkPolicy/{pol}: an ingress rule admits the gRPC port ({port}) of {name} "
                        f"without `from`: only the gateway and the services may call the services")
                for peer in r.get("from", []):
                    if too_wide(peer):
                        err(f"NetworkPolicy/{pol}: `from` peer {peer} admits everyone to the gRPC port of {name}")
            # ... and those callers are admitted: the gateway and every other service.
            callers = [n for n in servers if n != name]
            for caller in callers:
                ok = any(admits_port(r, port, "grpc") and (not r.get("from") or any(peer_admits(peer, pod_labels(deployments[caller])) for peer in r["from"]))
                         for _, r in rules)
                if ingress and not ok:
                    err(f"{where}: its NetworkPolicies do not let {caller} reach its gRPC port ({port})")
        if egress:
            # Egress restricted: the database (PostgreSQL's default port; the
            # URL itself is a secret), NATS and DNS must stay reachable; the
            # gateway needs DNS and the services' gRPC port.
            out_rules = [r for p in egress for r in p["spec"].get("egress", [])]
            if kind == "http":
                needs = [("DNS", 53, "UDP")] + [(f"{s} ({var})", port, "TCP") for s, var, _, port in upstreams.get(name, [])]
            else:
                nats = url_port(env_of(c).get("BANSO_NATS_URL", {}).get("value"), 4222)
                needs = [("PostgreSQL", 5432, "TCP"), ("NATS", nats, "TCP"), ("DNS", 53, "UDP")]
            for what, port, proto in needs:
                if not allows(out_rules, port, None, proto):
                    err(f"{where}: its NetworkPolicies block egress to {what} ({proto} {port})")

for e in errors:
    print(f"   rule: {e}")
if errors:
    sys.exit(1)
summary = f"{len(deployments)} Deployment(s): {', '.join(sorted(deployments))}; tokens: {mode}"
if hpas:
    conns = 0
    for h in hpas.values():
        c = servers.get(h["spec"]["scaleTargetRef"]["name"])
        # The gateway opens no database.
        uses_db = c is not None and "BANSO_DATABASE_URL" in env_of(c)
        pool = int(env_of(c).get("BANSO_DB_MAX_CONNECTIONS", {}).get("value", 10)) if uses_db else 0
        conns += h["spec"]["maxReplicas"] * pool
    summary += f"; at most {conns} database connections at maxReplicas"
print(f"   rules: ok ({summary}; Secret banso-secrets keys: {', '.join(sorted(secret_keys))})")
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
