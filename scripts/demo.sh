#!/usr/bin/env bash
# README command 1: install Reclaim into .venv and run the demo: the whole Entra ID loop
# (directory sync, verdicts, plans, questions, simulated answers, removals through Graph)
# against the bundled Graph-compatible server on a generated tenant, with SQLite in a new
# temporary folder. No configuration, no network beyond 127.0.0.1. Extra arguments go to
# 'reclaim demo' (e.g. --data-dir ./demo --users 500 --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
ensure_venv
.venv/bin/python -m pip install -q -e .
exec .venv/bin/reclaim demo "$@"
