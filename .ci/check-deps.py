#!/usr/bin/env python3
"""The dependency direction of the workspace, from `cargo metadata`.

- A service (a package under services/) never depends on another service,
  directly or through other workspace crates, as a normal, dev or build
  dependency.
- The shared crates (banso-proto, banso-kit, banso-events, banso-cel,
  banso-testkit) and any other workspace crate depend on no service.
- Only the banso binary (crates/cli), banso-bench and banso-tests may.

Prints every offending path of dependencies and exits 1; exits 0 otherwise.
Usage: check-deps.py [path/to/Cargo.toml]   (default: the workspace's)
"""

import json
import os
import subprocess
import sys

MAY_DEPEND_ON_SERVICES = {"banso", "banso-bench", "banso-tests"}
SHARED = {"banso-proto", "banso-kit", "banso-events", "banso-cel", "banso-testkit"}


def metadata(manifest):
    cmd = ["cargo", "metadata", "--format-version", "1", "--locked", "--no-deps", "--manifest-path", manifest]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    manifest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "Cargo.toml")
    meta = metadata(manifest)
    ws_root = meta["workspace_root"]
    members = {p["id"] for p in meta["packages"] if p["id"] in set(meta["workspace_members"])}
    packages = {p["name"]: p for p in meta["packages"] if p["id"] in members}
    services = {
        name
        for name, p in packages.items()
        if os.path.relpath(p["manifest_path"], ws_root).split(os.sep)[0] == "services"
    }
    missing = SHARED - packages.keys()
    if missing:
        print(f"check-deps: the shared crates {sorted(missing)} are not in the workspace any more; update .ci/check-deps.py")
        return 1
    if not services:
        print("check-deps: no package under services/: update .ci/check-deps.py")
        return 1

    # Edges between workspace packages, every kind (normal, dev, build).
    edges = {}
    for name, p in packages.items():
        for d in p["dependencies"]:
            if d["name"] in packages:
                kind = d["kind"] or "normal"
                edges.setdefault(name, []).append((d["name"], kind))

    problems = []
    for start in sorted(packages):
        if start in MAY_DEPEND_ON_SERVICES:
            continue
        # Every path from `start` to a service other than itself.
        seen = {start}
        stack = [(start, [])]
        while stack:
            node, path = stack.pop()
            for dep, kind in edges.get(node, []):
                step = path + [f"{node} -> {dep} ({kind})"]
                if dep in services and dep != start:
                    what = "service" if start in services else ("shared crate" if start in SHARED else "crate")
                    problems.append(f"{what} {start} depends on service {dep}: " + ", ".join(step))
                    continue
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, step))

    if problems:
        print("check-deps: FAILED: dependency direction broken (services never depend on each other; only "
              + ", ".join(sorted(MAY_DEPEND_ON_SERVICES)) + " may depend on a service):")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"check-deps: ok: {len(services)} services ({', '.join(sorted(services))}), none depends on another; "
          f"only {', '.join(sorted(MAY_DEPEND_ON_SERVICES & packages.keys()))} depend on services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
