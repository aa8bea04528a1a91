#!/usr/bin/env bash
# Checks deploy/Dockerfile without a Docker engine (none here, and base
# images cannot be pulled):
#   1. dockerfile-utils (npm, pinned in package.json) lints it: no finding.
#   2. Every path it COPYs from the build context exists and is not excluded
#      by .dockerignore.
#   3. Its dependency-caching stages are replayed in a temporary folder with
#      the same commands: the build stage's instructions are read from the
#      Dockerfile in order, each `RUN sh deploy/image-steps.sh <step>` runs that
#      step, each `COPY` from the context copies; the replay stops before the
#      step that compiles (`dependencies`) and runs `cargo metadata --locked`
#      there instead. It must resolve, and every [patch] path and everything
#      under vendor/ must be byte-identical to the repository: a stage that
#      stubs a patched crate fails here.
# Usage: bash .ci/check-image.sh [Dockerfile]     (cargo-chef is installed into .ci/.tools)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dockerfile=$(realpath "${1:-deploy/Dockerfile}")
die() { printf 'check-image: FAILED: %s\n' "$*" >&2; exit 1; }

# --- 1. lint -------------------------------------------------------------------
lint="$root/node_modules/.bin/dockerfile-utils"
[ -x "$lint" ] || die "dockerfile-utils is not installed (npm install)"
findings=$("$lint" lint "$dockerfile" 2>&1 || true)
[ -z "$findings" ] || { echo "$findings"; die "dockerfile-utils lint has findings"; }
echo "check-image: dockerfile-utils $("$lint" --version 2>/dev/null | head -n1): no findings"

# --- cargo-chef, at the Dockerfile's pinned version ---------------------------
chef_version=$(sed -nE 's/^ARG CARGO_CHEF_VERSION=([0-9.]+)$/\1/p' "$dockerfile")
[ -n "$chef_version" ] || die "the Dockerfile pins no CARGO_CHEF_VERSION"
tools="$root/.ci/.tools"
if ! "$tools/bin/cargo-chef" --version 2>/dev/null | grep -qx "cargo-chef $chef_version"; then
  echo "check-image: installing cargo-chef $chef_version into .ci/.tools"
  cargo install --quiet --locked --root "$tools" cargo-chef --version "$chef_version" || die "cannot install cargo-chef $chef_version"
fi
export PATH="$tools/bin:$PATH"

# --- 2 and 3: the context and the replay ---------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$dockerfile" "$root" "$work" <<'PY'
import fnmatch, os, re, shlex, shutil, subprocess, sys, tomllib

dockerfile, root, work = sys.argv[1:4]
errors = []

# The build context: the repository's files (tracked and untracked, not
# git-ignored) minus what .dockerignore excludes.
ignore = []
for line in open(os.path.join(root, ".dockerignore")):
    line = line.strip()
    if line and not line.startswith("#"):
        ignore.append(line.rstrip("/"))
def ignored(path):
    parts = path.split("/")
    for pat in ignore:
        if pat.startswith("**/"):
            if any(fnmatch.fnmatch(part, pat[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1)):
            return True
    return False
files = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       check=True, capture_output=True).stdout.decode().split("\0")
context = os.path.join(work, "context")
for f in files:
    if not f or ignored(f) or not os.path.exists(os.path.join(root, f)):
        continue
    dst = os.path.join(context, f)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copy2(os.path.join(root, f), dst)

# The Dockerfile's stages and instructions (continuation lines joined).
stages, current = {}, None
text = re.sub(r"\\\n", " ", open(dockerfile).read())
for raw in text.splitlines():
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        m = re.search(r"\bAS\s+(\S+)", rest, re.I)
        current = m.group(1) if m else rest
        stages[current] = []
    elif current:
        stages[current].append((word, rest.strip()))

def copy_from_context(args, into):
    args = [a for a in shlex.split(args) if not a.startswith("--")]
    *srcs, dst = args
    for src in srcs:
        s = os.path.join(context, src.rstrip("/") if src not in (".", "./") else "")
        if not os.path.exists(s):
            errors.append(f"COPY {src}: not in the build context (missing, or excluded by .dockerignore)")
            continue
        d = os.path.join(into, dst)
        if os.path.isdir(s):
            shutil.copytree(s, d if src not in (".", "./") else into, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(d) if dst.endswith("/") is False else d, exist_ok=True)
            shutil.copy2(s, d if not dst.endswith("/") else os.path.join(d, os.path.basename(s)))

def run_step(cmd, cwd):
    m = re.fullmatch(r"sh deploy/image-steps\.sh (\w+)(?: (\S+))?", cmd)
    if not m:
        errors.append(f"RUN {cmd!r}: only `sh deploy/image-steps.sh <step>` can be replayed; put the command in that script")
        return None
    step, recipe = m.group(1), m.group(2)
    if recipe:
        recipe = os.path.join(work, recipe.lstrip("/"))
    return step, recipe

# Every COPY from the context, in every stage, must find its source.
for stage, instrs in stages.items():
    for word, args in instrs:
        if word in ("COPY", "ADD") and "--from=" not in args:
            for src in [a for a in shlex.split(args) if not a.startswith("--")][:-1]:
                if src not in (".", "./") and not os.path.exists(os.path.join(context, src.rstrip("/"))):
                    errors.append(f"{stage}: {word} {src}: not in the build context (missing, or excluded by .dockerignore)")

# planner: COPY . . then the plan step, in a folder of its own.
planner = os.path.join(work, "planner")
os.makedirs(planner)
for word, args in stages.get("planner", []):
    if word == "COPY":
        copy_from_context(args, planner)
    elif word == "RUN":
        parsed = run_step(args, planner)
        if parsed:
            step, recipe = parsed
            print(f"check-image: planner: {step}", flush=True)
            subprocess.run(["sh", os.path.join(planner, "deploy/image-steps.sh"), step, recipe], cwd=planner, check=True)
if not os.path.exists(os.path.join(work, "recipe.json")):
    errors.append("the planner stage wrote no /recipe.json")

# build: replay until the step that compiles.
build = os.path.join(work, "build")
os.makedirs(build)
reached = False
for word, args in stages.get("build", []):
    if word == "COPY" and "--from=" not in args:
        copy_from_context(args, build)
    elif word == "COPY":
        pass  # the recipe, already at its path under the work folder
    elif word == "RUN":
        parsed = run_step(args, build)
        if not parsed:
            continue
        step, recipe = parsed
        if step == "dependencies":
            reached = True
            break
        print(f"check-image: build: {step}", flush=True)
        subprocess.run(["sh", os.path.join(build, "deploy/image-steps.sh"), step, recipe], cwd=build, check=True)
if not reached:
    errors.append("the build stage has no `dependencies` step")

if not errors:
    # What the dependency build sees must resolve as the lockfile says ...
    r = subprocess.run(["cargo", "metadata", "--locked", "--format-version", "1"], cwd=build, capture_output=True, text=True)
    if r.returncode != 0:
        errors.append("cargo metadata --locked fails in the dependency stage:\n" + r.stderr[-2000:])
    # ... with every patched and vendored crate as the repository has it.
    manifest = tomllib.load(open(os.path.join(root, "Cargo.toml"), "rb"))
    paths = {"vendor"}
    for registry in manifest.get("patch", {}).values():
        for spec in registry.values():
            if isinstance(spec, dict) and "path" in spec:
                paths.add(spec["path"])
    for p in sorted(paths):
        r = subprocess.run(["diff", "-r", "-q", os.path.join(context, p), os.path.join(build, p)], capture_output=True, text=True)
        if r.returncode != 0:
            errors.append(f"{p} in the dependency stage differs from the repository:\n" + (r.stdout + r.stderr)[-1500:])
        else:
            print(f"check-image: {p}: byte-identical to the repository", flush=True)

if errors:
    for e in errors:
        print("check-image: " + e, file=sys.stderr)
    sys.exit(1)
print("check-image: the dependency stage resolves (cargo metadata --locked) with the patched crates intact")
PY
