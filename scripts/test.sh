#!/usr/bin/env bash
# The one command that checks ticketflow on a fresh machine: formatting, unused dependencies,
# lints, then every test against real PostgreSQL and NATS (started by scripts/services.sh if
# they aren't up), then the integration suite again in the embedded mode, then a short chaos
# run and each fuzz target for a bounded time (scripts/fuzz.sh), then the TypeScript client's
# and the web app's checks and tests (in chromium) against the server just built.
#   scripts/test.sh                 # everything
#   scripts/test.sh -- append       # extra args go to `cargo test` (here: a test-name filter)
# Builds go to ${CARGO_TARGET_DIR:-~/.cache/ticketflow/target}, outside the clone, so a fresh
# clone (CI's) reuses earlier builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '==> %s\n' "$*" >&2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}"

# The cached target dir outlives clones and grows: test binaries relinked under a new hash (their
# dependencies or features changed) leave the old ones behind, 300 MB each, and they once filled
# a disk. When space runs short, what is cheap to make again goes: incremental caches and test
# binaries not relinked for a day.
free_gb=$(df -P -BG "$(dirname "$CARGO_TARGET_DIR")" 2>/dev/null | awk 'NR == 2 { sub(/G/, "", $4); print $4 }')
if [ "${free_gb:-100}" -lt 15 ] && [ -d "$CARGO_TARGET_DIR/debug" ]; then
    step "only ${free_gb} GB free: pruning $CARGO_TARGET_DIR"
    rm -rf "$CARGO_TARGET_DIR/debug/incremental"
    find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -perm -u+x -mtime +0 \
        -regextype posix-extended -regex '.*/[a-z0-9_]+-[0-9a-f]{16}' -delete
fi

# Cheapest checks first, so a formatting slip fails in a second rather than after a build.
step "cargo fmt --all -- --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

# Every crate lists only the dependencies its code uses (installed once, into ~/.cargo/bin).
step "cargo machete"
command -v cargo-machete >/dev/null 2>&1 || cargo install --locked cargo-machete --version 0.9.2
cargo machete

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "services (PostgreSQL, nats-server)"
# shellcheck source=scripts/services.sh
. scripts/services.sh

step "cargo test --workspace --all-targets $*  (integration suite on PostgreSQL + NATS)"
cargo test --workspace --all-targets --no-fail-fast "$@"

# The same HTTP/WebSocket tests again, each server embedded: SQLite files in a data directory of
# its own and the in-process broker (tests that need several instances say so and stop early).
step "cargo test -p ticketflow --tests $*  (integration suite embedded)"
TICKETFLOW_TEST_MODE=embedded cargo test -p ticketflow --tests --no-fail-fast "$@"

# The API against its OpenAPI description: schemathesis on a live embedded server, bounded.
step "scripts/schemathesis.sh  (the API against /api/openapi.json)"
scripts/schemathesis.sh

# The analysts' path: a Parquet export read back with pyarrow, and the cycle-time example over
# the JetStream stream, on a live server (PostgreSQL + NATS) filled with known tickets.
step "scripts/analytics.sh  (export read by pyarrow, examples/analytics)"
scripts/analytics.sh

# A short chaos run: three instances, a NATS cluster and a private PostgreSQL under load and
# faults, then its verifier (see README, Chaos run). A failure prints the seed that reproduces it.
step "scripts/chaos.sh  (short schedule)"
chaos_out=$(mktemp -d)
scripts/chaos.sh --duration 75 --out "$chaos_out"
rm -rf "$chaos_out"

# The fuzz targets (a workspace of their own, fuzz/), each for a bounded time from its corpus.
step "scripts/fuzz.sh ${TICKETFLOW_FUZZ_SECONDS:-20}  (every fuzz target)"
scripts/fuzz.sh "${TICKETFLOW_FUZZ_SECONDS:-20}"

step "ticketflow-bench --quick (keeps the benchmark tool working; asserts nothing about speed)"
cargo build -p ticketflow -p ticketflow-bench
results=$(mktemp -d)
"$CARGO_TARGET_DIR/debug/ticketflow-bench" --quick --server-bin "$CARGO_TARGET_DIR/debug/ticketflow" --out "$results" >/dev/null
rm -rf "$results"

# The frontends against the server this checkout just built. Node.js and Debian's chromium
# (never a downloaded browser build) are installed when absent; npm packages come from the
# committed lockfiles.
server_bin="$CARGO_TARGET_DIR/debug/ticketflow"
missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

# The TypeScript client (embedded, and on PostgreSQL + NATS): strict typecheck, lint, tests.
step "clients/ts: npm ci, check, test (against $server_bin)"
(
    cd clients/ts
    npm ci --no-audit --no-fund
    npm run check
    TICKETFLOW_BIN="$server_bin" TICKETFLOW_TEST_DATABASE_URL="$TEST_DATABASE_URL" npm test
)

# The web app: typecheck, lint, the committed build (web/dist, embedded in the binary) equal to
# a fresh one, then the browser tests in chromium against the binary serving it.
step "web: npm ci, check, check-dist, browser tests (against $server_bin)"
(
    cd web
    npm ci --no-audit --no-fund
    npm run check
    npm run check-dist
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 TICKETFLOW_BIN="$server_bin" npm run e2e
)
