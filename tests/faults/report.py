"""Run the fault suite with its heavy variants and write the figures into
docs/reliability.md (between the ``faults-table`` markers).

    python -m tests.faults.report                 # the full heavy run (2,000 cases, 20 kills)
    python -m tests.faults.report --cases 300 --kills 4   # a shorter run, same table
    python -m tests.faults.report --seed 12345    # replay the kill points of a run
    python -m tests.faults.report -k kill         # other options go to pytest

PostgreSQL: uses ``RECLAIM_TEST_PG_URL`` when set, else starts a private server with
scripts/pg.sh (stopped again at the end). The Samba DC is started by the tests. Exits
non-zero, without touching the document, when a test failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- faults-table:begin -->", "<!-- faults-table:end -->"
COLUMNS = (
    ("fault", "Fault injected"),
    ("peer", "Peer"),
    ("database", "Store"),
    ("injected", "Times"),
    ("cases", "Cases"),
    ("consented", "Consented"),
    ("removals", "Removals"),
    ("duplicates", "Duplicates"),
    ("lost", "Lost"),
    ("seed", "Seed"),
    ("seconds", "Seconds"),
)


def table(rows: list[dict[str, object]]) -> str:
    """The Markdown table for the figures, one row per fault run."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        cells = ["" if row.get(key) is None else str(row[key]) for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(doc: Path, rows: list[dict[str, object]], *, command: str) -> None:
    """Replace what stands between the markers in ``doc`` with the table."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: markers {BEGIN} / {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = f"\n_Produced by `{command}` on {when}._\n\n{table(rows)}\n"
    doc.write_text(head + BEGIN + body + END + tail, encoding="utf-8")


def start_pg(folder: Path) -> str:
    """A private PostgreSQL (scripts/pg.sh), for when none is given."""
    port = 55000 + os.getpid() % 900
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg.sh"), "start", str(folder / "pg"), str(port)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Run tests/faults heavy, then write the figures table (see the module doc)."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report")
    parser.add_argument("--cases", type=int, help="cases per kill run (default 2000)")
    parser.add_argument("--kills", type=int, help="SIGKILLs per kill run (default 20)")
    parser.add_argument("--seed", type=int, help="replay a run's kill points")
    parser.add_argument("--doc", type=Path, default=DOC)
    args, pytest_args = parser.parse_known_args(argv)  # the rest goes to pytest

    env = dict(os.environ, RECLAIM_FAULTS_HEAVY="1")
    for name, value in (("CASES", args.cases), ("KILLS", args.kills), ("SEED", args.seed)):
        if value is not None:
            env[f"RECLAIM_FAULTS_{name}"] = str(value)
    with tempfile.TemporaryDirectory(prefix="reclaim-faults-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # PostgreSQL runs as 'postgres' and must reach its folder
        figures = work / "figures.jsonl"
        env["RECLAIM_FAULTS_FIGURES"] = str(figures)
        own_pg = not env.get("RECLAIM_TEST_PG_URL")
        if own_pg:
            env["RECLAIM_TEST_PG_URL"] = start_pg(work)
        try:
            status = subprocess.call(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                 str(ROOT / "tests" / "faults"), *pytest_args],
                cwd=ROOT, env=env,
            )  # fmt: skip
        finally:
            if own_pg:
                subprocess.run(
                    ["bash", str(ROOT / "scripts" / "pg.sh"), "stop", str(work / "pg")],
                    check=False,
                )
        rows = (
            [json.loads(line) for line in figures.read_text().splitlines()]
            if figures.exists()
            else []
        )
    if status != 0:
        print(f"fault suite failed (pytest exit {status}); {args.doc} left as it was")
        return status or 1
    if not rows:
        print("no figures were recorded; is RECLAIM_FAULTS_FIGURES honoured?")
        return 1
    shown = " ".join(
        ["python -m tests.faults.report", *(argv if argv is not None else sys.argv[1:])]
    )
    write_table(args.doc, rows, command=shown.strip())
    print(f"{len(rows)} fault runs written to {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
