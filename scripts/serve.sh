#!/usr/bin/env bash
# Runs ticketflow locally against real PostgreSQL and NATS (started by scripts/services.sh if
# they aren't up): `scripts/serve.sh [serve flags...]`, e.g. `scripts/serve.sh --roles api,relay`.
# DATABASE_URL defaults to the local database "ticketflow", created if missing. JWT_SECRET, if
# unset, is generated once and kept beside the tools dir, so tokens survive restarts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/services.sh
. scripts/services.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ticketflow}"
export NATS_URL

# Create the database when DATABASE_URL names one on the local server; anything else is the
# user's own to provide.
local_db='^postgres(ql)?://([^@/]*@)?(127\.0\.0\.1|localhost)(:5432)?/([A-Za-z0-9_]+)([?].*)?$'
if [[ $DATABASE_URL =~ $local_db ]]; then
    db=${BASH_REMATCH[5]}
    if [ -z "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "select 1 from pg_database where datname = '$db'")" ]; then
        printf 'serve: creating database %s\n' "$db" >&2
        psql -h 127.0.0.1 -U postgres -d postgres -qc "create database \"$db\""
    fi
fi

if [ -z "${JWT_SECRET:-}" ]; then
    secret_file="${TICKETFLOW_TOOLS_DIR:-${TICKETFLOW_CACHE_DIR:-$HOME/.cache/ticketflow}/tools}/../jwt_secret"
    if [ ! -s "$secret_file" ]; then
        mkdir -p "$(dirname "$secret_file")"
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret_file")
        printf 'serve: generated a JWT secret in %s\n' "$secret_file" >&2
    fi
    JWT_SECRET=$(cat "$secret_file")
fi
export JWT_SECRET

exec cargo run --release -p ticketflow -- serve "$@"
