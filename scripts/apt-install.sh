#!/usr/bin/env bash
# apt-get install the given Debian packages without letting them start system-wide
# daemons (a policy-rc.d that exits 101 is in place for the duration). The tests run
# their own private servers; a system PostgreSQL or Samba would only take ports.
# Does not run apt-get update: the caller does that once. Run as root.
set -euo pipefail
[ $# -gt 0 ] || exit 0
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup=$(mktemp /usr/sbin/policy-rc.d.reclaim.XXXXXX)
    cp -p "$policy" "$backup"
fi
restore() { if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi; }
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 0755 "$policy"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
