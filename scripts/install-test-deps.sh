#!/usr/bin/env bash
# Install everything the test suite needs on a Debian machine: system packages
# (PostgreSQL, Samba AD DC) and the project with its test extras in .venv.
#
# Safe to run again: it installs only what is missing. Needs root for apt (uses sudo
# when not root and sudo exists).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "install-test-deps: need root for: $*" >&2; return 1; fi
}

missing() {
    local out=() pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = "installed" ] || out+=("$pkg")
    done
    echo "${out[@]:-}"
}

# PostgreSQL is started privately by scripts/pg.sh (apt-install.sh keeps the package's
# own cluster from starting); Samba has its own installer for its extra care.
# chromium: the browser tests drive Debian's build through Playwright (never
# 'playwright install', which would download a browser).
apt_packages=(postgresql chromium)
need=$(missing "${apt_packages[@]}" samba samba-ad-dc samba-ad-provision winbind ldap-utils)
if [ -n "$need" ]; then
    echo "install-test-deps: apt-get update, then install: $need"
    as_root apt-get update -qq
    need_here=$(missing "${apt_packages[@]}")
    if [ -n "$need_here" ]; then
        # shellcheck disable=SC2086
        as_root bash scripts/apt-install.sh $need_here
    fi
    as_root bash scripts/install-samba.sh
fi

. scripts/venv.sh
ensure_venv
.venv/bin/python -m pip install -q -e '.[test]'
echo "install-test-deps: done"
