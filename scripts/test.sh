#!/usr/bin/env bash
# The single test entry point, for people and CI alike (`make test` calls it).
#
# Usage: scripts/test.sh [pytest args...]
#
# Starts a throwaway PostgreSQL cluster (installing the server with apt-get when
# it is missing and we are root), exports DLTUNE_TEST_POSTGRES_URL for the tests,
# finds Chromium for the dashboard's browser tests (installing Debian's chromium
# the same way) and exports DLTUNE_TEST_CHROMIUM, runs pytest from .venv and
# stops the cluster on exit.
#
# Environment:
#   DLTUNE_TEST_POSTGRES_URL=URL    use this server; start none
#   DLTUNE_TEST_SLOW=1              run tests marked slow too (always when CI=true)
#   DLTUNE_TEST_BARE=1              also run scripts/check_bare_install.sh (always when CI=true)
#   DLTUNE_TEST_NO_PG_INSTALL=1     never apt-get install PostgreSQL
#   DLTUNE_TEST_PG_SEARCH=GLOBS     where to look for initdb/pg_ctl after PATH
#                                   (default: /usr/lib/postgresql/*/bin)
#   DLTUNE_TEST_REQUIRE_POSTGRES=1  fail, instead of skipping the PostgreSQL tests,
#                                   when no server can be had
#   DLTUNE_TEST_CHROMIUM=PATH       drive this Chromium in the browser tests
#   DLTUNE_TEST_NO_CHROMIUM_INSTALL=1  never apt-get install chromium
#   DLTUNE_TEST_REQUIRE_CHROMIUM=1  fail, instead of skipping the browser tests,
#                                   when no Chromium can be had
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python

log() { echo "test.sh: $*" >&2; }
is_ci() { [[ ${CI:-} == true ]]; }
is_root() { [[ $(id -u) == 0 ]]; }

banner() {
    local title=$1 reason=$2
    {
        echo
        echo "################################################################################"
        echo "#"
        echo "#   $title: $reason"
        echo "#"
        echo "#   To run them, install PostgreSQL (apt-get install postgresql) so that"
        echo "#   initdb and pg_ctl are found, or point the tests at a server with"
        echo "#   DLTUNE_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST:PORT/DB"
        echo "#"
        echo "################################################################################"
        echo
    } >&2
}

# --- state shared with the EXIT trap -----------------------------------------
PG_TMP=""
PG_CTL=""
PG_INITDB=""
INSTALL_LOG=""
SKIP_REASON=""
CHROMIUM_LOG=""
CHROMIUM_SKIP_REASON=""

# Run a command as the server's owner: initdb and postgres refuse to run as root.
as_pg() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            (cd "$PG_TMP" && runuser -u postgres -- "$@")
        else
            (cd "$PG_TMP" && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
        fi
    else
        (cd "$PG_TMP" && "$@")
    fi
}

# shellcheck disable=SC2317  # only ever called by the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n $PG_TMP ]]; then
        if [[ -f $PG_TMP/data/postmaster.pid ]]; then
            as_pg "$PG_CTL" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 \
                || log "warning: could not stop the PostgreSQL cluster in $PG_TMP"
        fi
        rm -rf "$PG_TMP"
    fi
    if [[ -n $INSTALL_LOG && -z $SKIP_REASON ]]; then
        rm -f "$INSTALL_LOG"
    fi
    if [[ -n $CHROMIUM_LOG && -z $CHROMIUM_SKIP_REASON ]]; then
        rm -f "$CHROMIUM_LOG"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- venv ---------------------------------------------------------------------
if [[ ! -x $PY ]]; then
    log "no .venv yet; creating it with 'make venv'"
    make -C "$ROOT" --no-print-directory venv
fi

# --- bare core install --------------------------------------------------------
# Before pytest, so that pytest's summary closes the output; before PostgreSQL,
# so that no server idles while it runs.
bare_rc=0
if is_ci || [[ ${DLTUNE_TEST_BARE:-0} == 1 ]]; then
    "$ROOT/scripts/check_bare_install.sh" || bare_rc=$?
fi

# --- Chromium (the dashboard's browser tests) ---------------------------------
# Playwright drives the system's Chromium: no browser is ever downloaded. Before
# PostgreSQL, so that no server idles while apt-get runs.

chromium_banner() {
    local title=$1 reason=$2
    {
        echo
        echo "################################################################################"
        echo "#"
        echo "#   $title: $reason"
        echo "#"
        echo "#   To run them, install Chromium (apt-get install chromium) so that"
        echo "#   'chromium' is on PATH, or point the tests at one with"
        echo "#   DLTUNE_TEST_CHROMIUM=/path/to/chromium"
        echo "#"
        echo "################################################################################"
        echo
    } >&2
}

# Sets CHROMIUM to a Chromium that starts, from PATH.
find_chromium() {
    local name
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1 && "$name" --version >/dev/null 2>&1; then
            CHROMIUM=$(command -v "$name")
            return 0
        fi
    done
    return 1
}

install_chromium() {
    local missing="Chromium not found on PATH (chromium, chromium-browser)"
    local sudo=()
    if [[ ${DLTUNE_TEST_NO_CHROMIUM_INSTALL:-0} == 1 ]]; then
        CHROMIUM_SKIP_REASON="$missing, and DLTUNE_TEST_NO_CHROMIUM_INSTALL=1 forbids installing it"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        CHROMIUM_SKIP_REASON="$missing, and there is no apt-get to install it with"
        return 1
    fi
    if ! is_root; then
        # CI always tries: its runners usually grant password-less sudo.
        if is_ci && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            CHROMIUM_SKIP_REASON="$missing, and installing it needs root"
            return 1
        fi
    fi
    CHROMIUM_LOG=$(mktemp /tmp/dltune-chromium-install.XXXXXX.log)
    log "Chromium not found; installing it with apt-get (log: $CHROMIUM_LOG)"
    if ! {
        ${sudo[@]+"${sudo[@]}"} apt-get -o DPkg::Lock::Timeout=300 update \
            && ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get \
                -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium
    } >>"$CHROMIUM_LOG" 2>&1; then
        tail -n 20 "$CHROMIUM_LOG" >&2 || true
        CHROMIUM_SKIP_REASON="$missing, and 'apt-get install chromium' failed (see $CHROMIUM_LOG)"
        return 1
    fi
    if ! find_chromium; then
        CHROMIUM_SKIP_REASON="$missing, even after 'apt-get install chromium' (see $CHROMIUM_LOG)"
        return 1
    fi
}

CHROMIUM=""
if [[ -n ${DLTUNE_TEST_CHROMIUM:-} ]]; then
    log "using DLTUNE_TEST_CHROMIUM=$DLTUNE_TEST_CHROMIUM from the environment"
elif find_chromium || install_chromium; then
    export DLTUNE_TEST_CHROMIUM=$CHROMIUM
    log "browser tests drive $("$CHROMIUM" --version 2>/dev/null | head -n 1) at $CHROMIUM"
else
    export DLTUNE_TEST_CHROMIUM_SKIP_REASON=$CHROMIUM_SKIP_REASON
    if [[ ${DLTUNE_TEST_REQUIRE_CHROMIUM:-0} == 1 ]]; then
        chromium_banner "NO CHROMIUM, AND DLTUNE_TEST_REQUIRE_CHROMIUM=1" "$CHROMIUM_SKIP_REASON"
        exit 1
    fi
    chromium_banner "BROWSER TESTS WILL BE SKIPPED" "$CHROMIUM_SKIP_REASON"
fi

# --- PostgreSQL ---------------------------------------------------------------

# Sets PG_INITDB and PG_CTL, from PATH first, then the newest of the search dirs.
find_pg_bins() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        PG_INITDB=$(command -v initdb)
        PG_CTL=$(command -v pg_ctl)
        return 0
    fi
    local search=${DLTUNE_TEST_PG_SEARCH-/usr/lib/postgresql/*/bin}
    local dir found=()
    # The unquoted expansion is meant: DLTUNE_TEST_PG_SEARCH holds globs.
    for dir in $search; do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            found+=("$dir")
        fi
    done
    if ((${#found[@]} == 0)); then
        return 1
    fi
    dir=$(printf '%s\n' "${found[@]}" | sort -rV | head -n 1)
    PG_INITDB=$dir/initdb
    PG_CTL=$dir/pg_ctl
}

install_pg() {
    local missing="PostgreSQL server binaries (initdb, pg_ctl) not found"
    if [[ ${DLTUNE_TEST_NO_PG_INSTALL:-0} == 1 ]]; then
        SKIP_REASON="$missing, and DLTUNE_TEST_NO_PG_INSTALL=1 forbids installing them"
        return 1
    fi
    if ! is_root; then
        SKIP_REASON="$missing, and installing them needs root"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        SKIP_REASON="$missing, and there is no apt-get to install them with"
        return 1
    fi
    INSTALL_LOG=$(mktemp /tmp/dltune-pg-install.XXXXXX.log)
    log "PostgreSQL server not found; installing it with apt-get (log: $INSTALL_LOG)"
    # Keep the package from creating (and starting) Debian's default cluster:
    # we start a throwaway cluster of our own.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" \
        >/etc/postgresql-common/createcluster.d/50-dltune-no-main-cluster.conf
    if ! {
        apt-get -o DPkg::Lock::Timeout=300 update \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
                install -y --no-install-recommends postgresql
    } >>"$INSTALL_LOG" 2>&1; then
        tail -n 20 "$INSTALL_LOG" >&2 || true
        SKIP_REASON="$missing, and 'apt-get install postgresql' failed (see $INSTALL_LOG)"
        return 1
    fi
    if ! find_pg_bins; then
        SKIP_REASON="$missing, even after 'apt-get install postgresql' (see $INSTALL_LOG)"
        return 1
    fi
}

free_port() {
    "$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

start_pg() {
    if is_root && ! id -u postgres >/dev/null 2>&1; then
        SKIP_REASON="running as root, but there is no 'postgres' user to run the server as"
        return 1
    fi
    PG_TMP=$(mktemp -d /tmp/dltune-pg.XXXXXX)
    if is_root; then
        chown postgres: "$PG_TMP"
    fi
    if ! as_pg "$PG_INITDB" -D "$PG_TMP/data" -A trust -U postgres --no-sync \
        --encoding=UTF8 --no-locale >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        SKIP_REASON="initdb ($PG_INITDB) failed"
        return 1
    fi
    local attempt port=""
    # A free port can be taken by someone else before the server binds it: retry.
    for attempt in 1 2 3; do
        port=$(free_port)
        if as_pg "$PG_CTL" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
            -o "-h 127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c max_connections=200" \
            start >/dev/null; then
            break
        fi
        port=""
        log "PostgreSQL did not start (attempt $attempt); server log:"
        tail -n 20 "$PG_TMP/server.log" >&2 || true
    done
    if [[ -z $port ]]; then
        SKIP_REASON="pg_ctl start failed 3 times (see the server log above)"
        return 1
    fi
    if ! "$PY" - "$port" <<'EOF'
import sys

import psycopg

with psycopg.connect(
    host="127.0.0.1", port=int(sys.argv[1]), user="postgres", dbname="postgres",
    autocommit=True, connect_timeout=10,
) as conn:
    conn.execute("CREATE DATABASE dltune_test")
EOF
    then
        SKIP_REASON="could not create database dltune_test on the throwaway server"
        return 1
    fi
    export DLTUNE_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/dltune_test"
    log "throwaway PostgreSQL ($("$PG_CTL" --version)) at $DLTUNE_TEST_POSTGRES_URL"
}

if [[ -n ${DLTUNE_TEST_POSTGRES_URL:-} ]]; then
    log "using DLTUNE_TEST_POSTGRES_URL from the environment"
elif { find_pg_bins || install_pg; } && start_pg; then
    :
else
    export DLTUNE_TEST_POSTGRES_SKIP_REASON=$SKIP_REASON
    if [[ ${DLTUNE_TEST_REQUIRE_POSTGRES:-0} == 1 ]]; then
        banner "NO POSTGRESQL SERVER, AND DLTUNE_TEST_REQUIRE_POSTGRES=1" "$SKIP_REASON"
        exit 1
    fi
    banner "POSTGRESQL TESTS WILL BE SKIPPED" "$SKIP_REASON"
fi

# --- pytest -------------------------------------------------------------------
pytest_args=()
if ! is_ci && [[ ${DLTUNE_TEST_SLOW:-0} != 1 ]]; then
    # Listed first so that a -m given by the caller wins.
    pytest_args+=(-m "not slow")
fi

rc=0
"$PY" -m pytest ${pytest_args[@]+"${pytest_args[@]}"} "$@" || rc=$?

if ((rc == 5)); then
    {
        echo
        echo "test.sh: FAILURE: pytest collected no tests (exit code 5)."
        echo "test.sh: A run that tests nothing is not a pass; check the paths and -m/-k given."
    } >&2
fi
if ((rc == 0 && bare_rc != 0)); then
    echo "test.sh: FAILURE: the bare core install check failed (see above)." >&2
    rc=$bare_rc
fi
exit "$rc"
