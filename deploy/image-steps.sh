#!/bin/sh
# The build steps of deploy/Dockerfile, one per RUN, in a script so that
# .ci/check-image.sh runs exactly the same commands (it has no Docker engine)
# and the two cannot drift.
#
#   plan <recipe>          planner stage: cargo-chef's recipe of the workspace
#                          (every manifest, the lockfile, the target layout)
#   skeleton <recipe>      build stage: the recipe turned back into a workspace
#                          whose sources are stubs (`cook --no-build`); the
#                          Dockerfile then COPYs vendor/ verbatim over it, so
#                          the crates Cargo.toml [patch]es in are real code
#   dependencies           compiles every dependency against the stubs (the
#                          cached layer: it changes only with a manifest, the
#                          lockfile or vendor/)
#   binary                 the real sources: builds and installs `banso`
set -eu

step=${1:?usage: image-steps.sh plan|skeleton|dependencies|binary [recipe]}
recipe=${2:-/recipe.json}
case "$step" in
  plan)
    cargo chef prepare --recipe-path "$recipe"
    ;;
  skeleton)
    cargo chef cook --release --locked --no-build --recipe-path "$recipe"
    ;;
  dependencies)
    cargo build --release --locked -p banso
    ;;
  binary)
    # COPY keeps the files' own modification times, which can be older than
    # the stubs' build, and cargo would keep the stubs' artifacts: touch
    # every source (not a list of folders, which a new member could escape),
    # but not vendor/, whose cached build is already the real code.
    find . -path ./target -prune -o -path ./vendor -prune -o -type f -exec touch {} +
    cargo build --release --locked --offline -p banso
    # The shipped binary keeps its symbol table, so a backtrace
    # (RUST_BACKTRACE=1) names every function, but not the DWARF line tables
    # ([profile.release] debug = "line-tables-only"): those go to
    # /out-debug/banso.debug (the debug-symbols stage), and a .gnu_debuglink
    # section names it with its CRC. std's backtrace, gdb and addr2line follow
    # that link (next to the binary, in .debug/, or under /usr/lib/debug/), and
    # then print file:line and the inlined frames too.
    install -D -m 0755 target/release/banso /out/usr/local/bin/banso
    mkdir -p /out-debug
    objcopy --only-keep-debug /out/usr/local/bin/banso /out-debug/banso.debug
    objcopy --strip-debug --add-gnu-debuglink=/out-debug/banso.debug /out/usr/local/bin/banso
    mkdir -p /out/data
    /out/usr/local/bin/banso --version
    ;;
  *)
    echo "image-steps.sh: unknown step $step" >&2
    exit 2
    ;;
esac
