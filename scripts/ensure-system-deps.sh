#!/usr/bin/env bash
# Make sure the system programs the test suite drives are installed:
#   - a PostgreSQL server (initdb, pg_ctl) for the throwaway cluster of tests/support/postgres.py
#   - Debian's chromium at /usr/bin/chromium for the browser tests (tests/support/browser.py)
#   - nats-server for the NATS JetStream job queue and stream tests (tests/support/nats.py)
# Missing ones are installed with apt-get (sudo when not root); when that is impossible we fail,
# naming the Debian package, because a missing component must never turn into silently skipped tests.
set -euo pipefail

missing=()

have_postgres() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && return 0
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}

have_postgres || missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || missing+=(nats-server)

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo_cmd=(sudo -n)
    else
        echo "ensure-system-deps: missing Debian package(s): ${missing[*]}." >&2
        echo "Not root and no sudo: install them with 'apt-get install ${missing[*]}' as root." >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-system-deps: missing Debian package(s): ${missing[*]}, and apt-get is not available." >&2
    echo "Install the PostgreSQL server, chromium and nats-server with your system's package manager." >&2
    exit 1
fi

echo "ensure-system-deps: missing Debian package(s) ${missing[*]}: installing them with apt-get" >&2
apt_opts=(-y -q -o DPkg::Lock::Timeout=600)
if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update \
   || ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install \
        --no-install-recommends "${missing[@]}"; then
    echo "ensure-system-deps: could not install Debian package(s): ${missing[*]}." >&2
    exit 1
fi

# Check again: the packages must have delivered what the tests look for.
still=()
have_postgres || still+=(postgresql)
[[ -x /usr/bin/chromium ]] || still+=(chromium)
if [[ ${#still[@]} -ne 0 ]]; then
    echo "ensure-system-deps: still missing after apt-get: Debian package(s) ${still[*]}." >&2
    exit 1
fi
