"""Sizes of the fault runs, and where their figures go.

Quick variants run in the default test command; ``RECLAIM_FAULTS_HEAVY=1`` turns on the
heavy ones (2,000 cases, 20 kills). ``RECLAIM_FAULTS_CASES`` / ``RECLAIM_FAULTS_KILLS``
shrink or grow the heavy run (to validate ``python -m tests.faults.report`` quickly).
Each run appends one JSON line of figures to ``RECLAIM_FAULTS_FIGURES`` when set; the
report command turns those lines into the table in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

HEAVY = os.environ.get("RECLAIM_FAULTS_HEAVY") == "1"
heavy_only = pytest.mark.skipif(not HEAVY, reason="heavy fault run: set RECLAIM_FAULTS_HEAVY=1")


@dataclass(frozen=True)
class KillPlan:
    """How many cases a kill run opens, how many times it kills a worker, with which seed."""

    cases: int
    kills: int
    seed: int


def kill_plan(*, heavy: bool) -> KillPlan:
    """The sizes for a quick or heavy kill run; the seed is fresh unless
    ``RECLAIM_FAULTS_SEED`` fixes it (to replay a failure)."""
    if heavy:
        cases = int(os.environ.get("RECLAIM_FAULTS_CASES", "2000"))
        kills = int(os.environ.get("RECLAIM_FAULTS_KILLS", "20"))
    else:
        cases, kills = 200, 3
    seed = int(os.environ.get("RECLAIM_FAULTS_SEED") or random.SystemRandom().randrange(10**6))
    print(f"fault run: {cases} cases, {kills} SIGKILLs, seed {seed} (RECLAIM_FAULTS_SEED={seed})")
    return KillPlan(cases, kills, seed)


@dataclass(frozen=True)
class Figures:
    """One row of the reliability table."""

    fault: str
    peer: str
    database: str
    injected: int  # how many times the fault was injected
    cases: int  # cases processed (opened and brought to an end)
    consented: int  # cases whose removal was consented to
    removals: int  # effective removals counted at the peer
    duplicates: int  # consented cases removed more than once
    lost: int  # answers missing, or consented cases not removed
    seed: int | None = None
    seconds: float | None = None  # kill runs only


def record(figures: Figures) -> None:
    """Append ``figures`` to the figures file, if the report command asked for one."""
    target = os.environ.get("RECLAIM_FAULTS_FIGURES")
    if target:
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(figures)) + "\n")
