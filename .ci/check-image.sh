#!/usr/bin/env bash
# Checks deploy/Dockerfile without a Docker engine (none here, and base
# images cannot be pulled):
#   1. dockerfile-utils (npm, pinned in package.json) lints it: no finding.
#   2. Its shape: every RUN is `sh deploy/image-steps.sh <step>` (the one place
#      the build's commands live, so this replay cannot drift from them); every
#      path it COPYs from the build context exists and is not excluded by
#      .dockerignore, nor is anything the build needs (workspace members,
#      vendor/, proto/, the root manifests).
#   3. Its dependency-caching stages are replayed in a temporary folder with
#      the same commands: each stage's instructions are read from the
#      Dockerfile in order, each RUN runs its image-steps.sh step, each COPY
#      from the context copies; the build stage stops before the step that
#      compiles (`dependencies`) and runs `cargo metadata --locked` there
#      instead. It must resolve, and every [patch] path and everything under
#      vendor/ must be byte-identical to the repository: a stage that stubs a
#      patched crate (as the hand-written skeleton before cargo-chef did, with
#      vendor/sqlx-core) fails here.
# Every failure is reported with what and where; the exit status is non-zero
# if any.
# Usage: bash .ci/check-image.sh [Dockerfile]     (cargo-chef is installed into .ci/.tools)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dockerfile=$(realpath "${1:-deploy/Dockerfile}")
die() { printf 'check-image: FAILED: %s\n' "$*" >&2; exit 1; }

# Every failure is reported, then the script exits non-zero once at the end.
status=0
fail() { printf 'check-image: FAILED: %s\n' "$*" >&2; status=1; }

# --- 1. lint -------------------------------------------------------------------
lint="$root/node_modules/.bin/dockerfile-utils"
[ -x "$lint" ] || die "dockerfile-utils is not installed (npm install)"
findings=$("$lint" lint "$dockerfile" 2>&1 || true)
if [ -n "$findings" ]; then
  echo "$findings"
  fail "dockerfile-utils lint has findings in $dockerfile"
else
  echo "check-image: dockerfile-utils $("$lint" --version 2>/dev/null | head -n1): no findings"
fi

# --- cargo-chef, at the Dockerfile's pinned version ---------------------------
chef_version=$(sed -nE 's/^ARG CARGO_CHEF_VERSION=([0-9.]+)$/\1/p' "$dockerfile")
tools="$root/.ci/.tools"
if [ -z "$chef_version" ]; then
  fail "$dockerfile pins no cargo-chef (ARG CARGO_CHEF_VERSION=x.y.z)"
elif ! "$tools/bin/cargo-chef" --version 2>/dev/null | grep -qx "cargo-chef $chef_version"; then
  echo "check-image: installing cargo-chef $chef_version into .ci/.tools"
  cargo install --quiet --locked --root "$tools" cargo-chef --version "$chef_version" ||
    die "cannot install cargo-chef $chef_version"
fi
export PATH="$tools/bin:$PATH"

# --- 2 and 3: the context and the replay ---------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$dockerfile" "$root" "$work" <<'PY' || status=1
import fnmatch, json, os, re, shlex, shutil, subprocess, sys, tomllib

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

# The Dockerfile's stages and instructions (continuation lines joined; a
# heredoc's body belongs to its RUN).
stages, current = {}, None
lines = iter(re.sub(r"\\\n", " ", open(dockerfile).read()).splitlines())
for raw in lines:
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    word = word.upper()
    heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", rest) if word == "RUN" else None
    if heredoc:
        body = []
        for more in lines:
            if more.strip() == heredoc.group(1):
                break
            body.append(more)
        rest = rest + "\n" + "\n".join(body)
    if word == "FROM":
        m = re.search(r"\bAS\s+(\S+)", rest, re.I)
        current = m.group(1) if m else rest
        stages[current] = []
    elif current:
        stages[current].append((word, rest.strip()))

def copy_from_context(args, into):
    *srcs, dst = [a for a in shlex.split(args) if not a.startswith("--")]
    for src in srcs:
        whole = src in (".", "./")
        s = context if whole else os.path.join(context, src.rstrip("/"))
        d = into if whole else os.path.join(into, dst)
        if os.path.isdir(s):
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            if dst.endswith("/"):
                d = os.path.join(d, os.path.basename(s))
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d)

CHEF_INSTALL = re.compile(r'cargo install --locked cargo-chef --version "?\$\{?CARGO_CHEF_VERSION\}?"?')
STEP = re.compile(r"sh deploy/image-steps\.sh (plan|skeleton|dependencies|binary)(?: (\S+))?")

# Before any replay: the Dockerfile's shape. Every RUN of a stage built from
# the context is a step of deploy/image-steps.sh (anything else could not be
# replayed here, and could drift), every COPY from the context finds its
# source, and the planner and build stages are there.
for stage, instrs in stages.items():
    for word, args in instrs:
        # The toolchain stage's one other command: cargo-chef at the pinned
        # version, which this script installs the same way into .ci/.tools.
        if word == "RUN" and stage not in ("planner", "build") and CHEF_INSTALL.fullmatch(args):
            continue
        if word == "RUN" and not STEP.fullmatch(args):
            first = args.splitlines()[0] + (" …" if "\n" in args else "")
            errors.append(f"{stage}: RUN {first}: not a step of deploy/image-steps.sh, so it cannot be replayed "
                          "without Docker (and could drift from the check); put the command in that script")
        if word in ("COPY", "ADD") and "--from=" not in args:
            for src in [a for a in shlex.split(args) if not a.startswith("--")][:-1]:
                if src not in (".", "./") and not os.path.exists(os.path.join(context, src.rstrip("/"))):
                    errors.append(f"{stage}: {word} {src}: not in the build context (missing, or excluded by .dockerignore)")
for stage in ("planner", "build"):
    if stage not in stages:
        errors.append(f"no `{stage}` stage (found: {', '.join(stages) or 'none'})")
if "build" in stages and not any(w == "RUN" and STEP.fullmatch(a) and STEP.fullmatch(a).group(1) == "dependencies"
                                 for w, a in stages["build"]):
    errors.append("the build stage has no `sh deploy/image-steps.sh dependencies` step (the cached dependency layer)")

# What the final `COPY . .` must bring: every workspace member, vendor/,
# proto/ (crates/proto's build.rs compiles it) and the root manifests.
members = json.loads(subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=root,
                                    check=True, capture_output=True, text=True).stdout)["packages"]
needed_dirs = {os.path.relpath(os.path.dirname(p["manifest_path"]), root) for p in members} | {"vendor", "proto"}
needed_files = {"Cargo.toml", "Cargo.lock", "deploy/image-steps.sh"}
excluded = [f for f in files if f and (f in needed_files or any(f.startswith(d + "/") for d in needed_dirs)) and ignored(f)]
if excluded:
    more = f" (and {len(excluded) - 10} more)" if len(excluded) > 10 else ""
    errors.append(".dockerignore excludes files the build needs: " + ", ".join(excluded[:10]) + more)

def replay(stage, into, stop_at=None):
    """Runs a stage's COPYs from the context and its image-steps.sh steps in
    `into`, up to (not including) the step `stop_at`. True if it got there."""
    for word, args in stages[stage]:
        if word == "COPY" and "--from=" not in args:
            copy_from_context(args, into)
        elif word == "RUN":
            step, recipe = STEP.fullmatch(args).groups()
            if step == stop_at:
                return True
            print(f"check-image: {stage}: image-steps.sh {step}", flush=True)
            argv = ["sh", os.path.join(into, "deploy/image-steps.sh"), step]
            if recipe:
                argv.append(os.path.join(work, recipe.lstrip("/")))  # the recipe, at its path under the work folder
            if subprocess.run(argv, cwd=into).returncode != 0:
                errors.append(f"{stage}: image-steps.sh {step} failed (its output is above)")
                return False
    return stop_at is None

if not errors:
    planner = os.path.join(work, "planner")
    build = os.path.join(work, "build")
    os.makedirs(planner)
    os.makedirs(build)
    replay("planner", planner)
    if not errors and not os.path.exists(os.path.join(work, "recipe.json")):
        errors.append("the planner stage wrote no /recipe.json")
    if not errors:
        replay("build", build, stop_at="dependencies")

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
exit "$status"
