#!/usr/bin/env bash
# The analysts' path end to end, on a real server over PostgreSQL + NATS (a database and a
# NATS prefix of its own, both removed afterwards): tickets with known histories are created
# through the API; `ticketflow events export --format parquet` is read back with pyarrow
# (column types, and every row against the events feed); then the example
# examples/analytics/cycle_time.py reads the JetStream stream and its report is checked
# against the known cycle times, per ticket, per project and per assignee.
#   scripts/analytics.sh                        # builds the server first
#   TICKETFLOW_BIN=path/to/ticketflow scripts/analytics.sh
# pyarrow and nats-py (PyPI wheels) live in a venv of their own, made once and reused:
# ${XDG_CACHE_HOME:-~/.cache}/ticketflow/venv-analytics.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYARROW_VERSION=26.0.1
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ticketflow/venv-analytics"
python="$venv/bin/python"
if ! "$python" -c "import pyarrow, nats; assert pyarrow.__version__ == '$PYARROW_VERSION'" 2>/dev/null ||
    ! "$venv/bin/pip" freeze 2>/dev/null | grep -qxF -f examples/analytics/requirements.txt; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: \
        "pyarrow==$PYARROW_VERSION" -r examples/analytics/requirements.txt
fi

bin="${TICKETFLOW_BIN:-}"
if [ -z "$bin" ]; then
    cargo build -p ticketflow
    bin="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}/debug/ticketflow"
fi

# shellcheck source=scripts/services.sh
. scripts/services.sh
run_id="analytics_$$_$RANDOM"
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
psql -w -q -d "$admin_url" -c "CREATE DATABASE $run_id"
database_url="${admin_url%/*}/$run_id"

work=$(mktemp -d)
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
secret=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
DATABASE_URL="$database_url" NATS_URL="$NATS_URL" NATS_PREFIX="$run_id" JWT_SECRET="$secret" \
    "$bin" serve --bind-addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    "$python" - "$NATS_URL" "$run_id" <<'PY' || true
import asyncio, sys
import nats
sys.path.insert(0, "examples/analytics")
from cycle_time import stream_name

async def main(url, prefix):
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream_name(prefix))
    finally:
        await nc.close()

asyncio.run(main(*sys.argv[1:]))
PY
    psql -w -q -d "$admin_url" -c "DROP DATABASE IF EXISTS $run_id WITH (FORCE)" || true
    rm -rf "$work"
}
trap stop EXIT
fail() { echo "analytics: $*; the server's log:" >&2; cat "$work/server.log" >&2; exit 1; }

events=$("$python" scripts/analytics_check.py fill "$base" "$work/known.json") || fail "filling"

DATABASE_URL="$database_url" RUST_LOG=warn "$bin" events export --format parquet --output "$work/events.parquet" ||
    fail "exporting"
"$python" scripts/analytics_check.py parquet "$work/events.parquet" "$work/known.json" ||
    fail "the Parquet export"

"$python" scripts/analytics_check.py stream "$NATS_URL" "$run_id" "$events" || fail "publishing"
"$python" examples/analytics/cycle_time.py --nats-url "$NATS_URL" --prefix "$run_id" --json \
    >"$work/report.json" || fail "the cycle-time example"
"$python" scripts/analytics_check.py report "$work/report.json" "$work/known.json" ||
    fail "the cycle-time report"
"$python" examples/analytics/cycle_time.py --nats-url "$NATS_URL" --prefix "$run_id"
