#!/usr/bin/env bash
# Install Samba AD DC from Debian for the integration tests, without starting daemons.
#
# The tests run their own throwaway domain controller in a private folder
# (src/reclaim/testing/samba.py); the system-wide samba/winbind/smbd services must
# never start, or they would grab ports 389/636 on every address.
#
# Idempotent: exits at once when everything is already installed. Does NOT run
# `apt-get update`: the caller does that once for all installers. Run as root.
set -euo pipefail

packages=(samba samba-ad-dc samba-ad-provision winbind ldap-utils)
# samba-ad-provision is only "Recommended" by samba-ad-dc but provisioning fails
# without it, hence --no-install-recommends plus the explicit name.

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ] && command -v samba >/dev/null && command -v samba-tool >/dev/null; then
    echo "install-samba: already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-samba: must run as root (missing: ${missing[*]})" >&2
    exit 1
fi

# policy-rc.d exiting 101 tells invoke-rc.d "do not start anything". Keep whatever
# the machine had (Docker images ship one) and put it back afterwards.
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.reclaim.XXXXXX)
    cp -p "$policy" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then
        mv -f "$backup" "$policy"
    else
        rm -f "$policy"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# Written by reclaim scripts/install-samba.sh for the duration of an install.\nexit 101\n' >"$policy"
chmod 0755 "$policy"

echo "install-samba: installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${packages[@]}"

samba --version
