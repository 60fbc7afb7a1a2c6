#!/usr/bin/env bash
# The chaos run: three ticketflow instances, a three-node NATS JetStream cluster (the event
# stream at three replicas) and a private PostgreSQL, all started in a temporary directory on
# loopback ports of their own, under a command load and hundreds of resuming WebSocket clients,
# while a seeded schedule of faults hits them; then a verifier reading PostgreSQL and JetStream
# directly. Exits non-zero on any violation, printing the seed that reproduces the schedule.
#   scripts/chaos.sh                                  # ~75 s of load, a random seed
#   scripts/chaos.sh --seed 42 --duration 600 --out bench/results/chaos-long
# The report (chaos.json, chaos.md) goes to --out, by default ${TMPDIR:-/tmp}/ticketflow-chaos-report.
# Other flags go to the runner (see `ticketflow-chaos --help`: --users, --sockets, --keep).
# Needs root (the private PostgreSQL runs as the postgres user) and PostgreSQL's server
# binaries (the newest /usr/lib/postgresql/<version>/bin; PG_BIN elsewhere). Never touches the machine's
# PostgreSQL on :5432 or the shared nats-server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}"

# For NATS_SERVER_BIN (and PostgreSQL installed); the shared services themselves go unused.
# shellcheck source=scripts/services.sh
. scripts/services.sh

out=${TMPDIR:-/tmp}/ticketflow-chaos-report
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done

cargo build -p ticketflow -p ticketflow-chaos
pg_version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$pg_version/bin} \
TICKETFLOW_BIN="$CARGO_TARGET_DIR/debug/ticketflow" \
    "$CARGO_TARGET_DIR/debug/ticketflow-chaos" --out "$out" "${args[@]}"
