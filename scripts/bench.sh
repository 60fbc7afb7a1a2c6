#!/usr/bin/env bash
# Runs the benchmark suite: builds the server and the load generator in release mode, starts
# PostgreSQL and nats-server if they aren't up (scripts/services.sh), runs every scenario, and
# writes a results table (Markdown and JSON) to bench/results/.
#   scripts/bench.sh                    # the full suite (about 5 minutes)
#   scripts/bench.sh --only commands    # one scenario (repeatable)
#   scripts/bench.sh --quick            # a few seconds per scenario, to check the tool works
# Extra arguments go to ticketflow-bench (see `--help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}"

# shellcheck source=scripts/services.sh
. scripts/services.sh

# 10,000 sockets on each side of loopback need as many descriptors per process.
ulimit -n "$(ulimit -Hn)"

cargo build --release -p ticketflow -p ticketflow-bench
exec "$CARGO_TARGET_DIR/release/ticketflow-bench" "$@"
