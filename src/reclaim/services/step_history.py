"""Filing a case's directory steps in its history.

The adapters record each Graph or LDAP call as a step (``reclaim.workflows.step_log``);
while a case runs, :func:`reclaim.workflows.step_log.collecting` gathers the steps taken
for it, and :func:`file_steps` appends them to the ``steps`` list in the data of the
case's newest history event: the transition they led to (``removed``, ``failed``,
``retry_later`` ...), or, when the step changed nothing (the run stopped, a write was
refused), the event the case was still standing on. The history thus reads like the
reference pack's execution log: each state, then the calls made from it, in order,
with input, outcome and milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import Connection, select, update

from reclaim.domain.case import Case
from reclaim.store.tables import case_events
from reclaim.workflows.step_log import StepRecord

MAX_STEPS_PER_EVENT = 200  # a runaway loop must not grow one event without bound


def file_steps(conn: Connection, case_id: int, steps: Sequence[StepRecord]) -> None:
    """Append ``steps`` to the newest history event of case ``case_id``."""
    if not steps:
        return
    row = conn.execute(
        select(case_events.c.id, case_events.c.data)
        .where(case_events.c.case_id == case_id)
        .order_by(case_events.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return
    data = json.loads(row.data)
    kept = list(data.get("steps", [])) + [dict(s) for s in steps]
    if len(kept) > MAX_STEPS_PER_EVENT:
        dropped = len(kept) - MAX_STEPS_PER_EVENT
        kept = kept[-MAX_STEPS_PER_EVENT:]
        data["steps_dropped"] = int(data.get("steps_dropped", 0)) + dropped
    data["steps"] = kept
    conn.execute(
        update(case_events)
        .where(case_events.c.id == row.id)
        .values(data=json.dumps(data, sort_keys=True, default=str))
    )


def with_steps(case: Case, steps: Sequence[StepRecord]) -> Case:
    """``case`` with ``steps`` in the data of its newest event: for a transition not saved
    yet, so the steps go in with it (what :func:`file_steps` does after the save)."""
    if not steps:
        return case
    last = case.history[-1]
    kept = list(last.data.get("steps", [])) + [dict(s) for s in steps]  # type: ignore[call-overload]
    data = {**last.data, "steps": kept[-MAX_STEPS_PER_EVENT:]}
    return replace(case, history=(*case.history[:-1], replace(last, data=data)))
