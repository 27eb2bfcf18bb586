#!/usr/bin/env bash
# Install what the tests need, then lint, type-check and run the whole test suite
# against SQLite and a private PostgreSQL (and a private Samba AD DC, started by the
# tests themselves).
#
#   bash scripts/test.sh                 everything (what CI runs)
#   bash scripts/test.sh --quick         skip installs and slow tests: the inner loop
#   bash scripts/test.sh -- ARGS         extra pytest arguments (e.g. -k import)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --) shift; pytest_args+=("$@"); break ;;
    *) pytest_args+=("$1") ;;
    esac
    shift
done

if [ "$quick" -eq 0 ] || [ ! -x .venv/bin/python ]; then
    bash scripts/install-test-deps.sh
fi

echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy

# Known-vulnerable dependencies fail the run (docs/security.md, "Dependency audit").
echo "== dependency audit"
if [ "$quick" -eq 1 ]; then
    echo "skipped with --quick (it asks the package registry)"
else
    set +e
    .venv/bin/python scripts/audit_deps.py
    audit=$?
    set -e
    if [ "$audit" -eq 2 ] && [ "${CI:-}" != "true" ]; then
        echo "dependency audit skipped: the package registry did not answer (under CI this fails)" >&2
    elif [ "$audit" -ne 0 ]; then
        exit "$audit"
    fi
fi

run_dir=$(mktemp -d /tmp/reclaim-test.XXXXXX)
chmod 755 "$run_dir"
pg_port=$((54000 + RANDOM % 1000))
cleanup() {
    bash scripts/pg.sh stop "$run_dir/pg" || true
    rm -rf "$run_dir"
}
trap cleanup EXIT
echo "== postgresql (private, port $pg_port)"
RECLAIM_TEST_PG_URL=$(bash scripts/pg.sh start "$run_dir/pg" "$pg_port")
export RECLAIM_TEST_PG_URL

echo "== pytest"
marker=()
[ "$quick" -eq 1 ] && marker=(-m "not slow")
set +e
.venv/bin/python -m pytest "${marker[@]}" "${pytest_args[@]}"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure, not a pass" >&2
    exit 1
fi
exit "$status"
