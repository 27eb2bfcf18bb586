#!/usr/bin/env bash
# README command 1: install Reclaim into .venv and run the demo on the embedded
# default (SQLite in a new temporary folder, generated organization). Extra
# arguments go to 'reclaim demo' (e.g. --data-dir ./demo --users 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv
.venv/bin/python -m pip install -q -e .
exec .venv/bin/reclaim demo "$@"
