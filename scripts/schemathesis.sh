#!/usr/bin/env bash
# schemathesis (PyPI) against the API's OpenAPI description on a live server: a debug server
# in the embedded mode on a temporary data directory, a registered user's bearer token, a
# project, a member and a ticket for the operations to work on; then every operation fuzzed,
# checked for no 5xx and for status codes, content types, headers and bodies the description
# allows. Bounded: deterministic cases, at most max-examples per operation and phase
# (scripts/schemathesis.toml); about a minute.
#   scripts/schemathesis.sh                        # builds the server first
#   TICKETFLOW_BIN=path/to/ticketflow scripts/schemathesis.sh
# schemathesis lives in a venv of its own, made once and reused:
# ${XDG_CACHE_HOME:-~/.cache}/ticketflow/venv-schemathesis.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ticketflow/venv-schemathesis"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $SCHEMATHESIS_VERSION\$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
python="$venv/bin/python"

bin="${TICKETFLOW_BIN:-}"
if [ -z "$bin" ]; then
    cargo build -p ticketflow
    bin="${CARGO_TARGET_DIR:-$HOME/.cache/ticketflow/target}/debug/ticketflow"
fi

data=$(mktemp -d)
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
secret=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
# Embedded whatever the caller's environment names (scripts/services.sh exports NATS_URL); the
# secret by variable, not flag, so it stays out of the process list.
env -u DATABASE_URL -u NATS_URL JWT_SECRET="$secret" \
    "$bin" serve --data-dir "$data" --bind-addr "127.0.0.1:$port" >"$data/server.log" 2>&1 &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap stop EXIT

# Ready, users, resources: the token is printed, the ids go to the dictionaries'
# files beside the configuration.
cp scripts/schemathesis.toml "$data/"
token=$("$python" - "$base" "$server" "$data" <<'EOF'
import json, os, sys, time, urllib.error, urllib.request

base, server, dictionaries = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)

deadline = time.monotonic() + 30
while True:
    try:
        call("GET", "/api/openapi.json")
        break
    except (urllib.error.URLError, ConnectionError):
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            sys.exit("the server exited; its log:")
        if time.monotonic() > deadline:
            sys.exit(f"no server at {base} after 30 s; its log:")
        time.sleep(0.1)

def user(name):
    password = f"{name}-password"
    created = call("POST", "/api/auth/register", {"username": name, "password": password})
    tokens = call("POST", "/api/auth/login", {"username": name, "password": password})
    return created["id"], tokens["access_token"]

_, token = user("fuzzer")
member_id, member_token = user("member")
project = call("POST", "/api/projects", {"key": "FUZZ", "name": "Fuzzed"}, token)["id"]
call("POST", f"/api/projects/{project}/members", {"username": "member"}, token)
ticket = call("POST", f"/api/projects/{project}/tickets",
              {"title": "Fuzzed ticket", "assignee_id": member_id, "labels": ["x"]}, token)["id"]
call("POST", f"/api/tickets/{ticket}/comments", {"body": "@fuzzer look"}, member_token)
for name, value in [("projects", project), ("tickets", ticket), ("members", member_id)]:
    with open(os.path.join(dictionaries, f"{name}.dict"), "w") as file:
        print(f'"{value}"', file=file)
print(token)
EOF
) || { cat "$data/server.log" >&2; exit 1; }

fuzz() {
    TICKETFLOW_FUZZ_TOKEN="$token" "$venv/bin/schemathesis" --config-file "$data/schemathesis.toml" \
        run "$base/api/openapi.json" --no-color ${SCHEMATHESIS_ARGS:-} 2>&1 | tee "$data/run.log"
}
# CPython 3.11.7's ast module (used by hypothesis) sometimes fails with "AST constructor
# recursion depth mismatch" (CPython gh-106905): a fault of the interpreter, not of the API,
# so that one error, and only it, gets a second run. The cases are deterministic; a real
# failure fails again.
if ! fuzz; then
    grep -q "AST constructor recursion depth mismatch" "$data/run.log" || exit 1
    echo "schemathesis: the interpreter's AST error (CPython gh-106905); running once more" >&2
    fuzz
fi
