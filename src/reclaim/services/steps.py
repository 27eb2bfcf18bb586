"""Executing a case's due steps: the loop around the executors.

:func:`process_case` asks the domain what is due (``next_step``), runs the matching
executor (``services.executors``), and repeats while something is due at once (a
timeout that releases is followed by the removal). The directory steps each executor
takes are filed in the case's history (``services.step_history``). Then it records when the case is
next due and gives its lease back. A failure is recorded on the case (``last_error``,
a backoff before the next try) and never stops other cases; only ``StopRun`` (the
directory or every channel refuses everything) and ``Unavailable`` (a service every
case needs is down, such as Graph's sign-in) end the caller's pass, through
:class:`~reclaim.services.runtime.StopSignal`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from reclaim.connectors.errors import Deferred, StopRun, Transient, Unavailable, WriteRefused
from reclaim.domain import case as dc
from reclaim.domain.case_steps import StepKind, next_step
from reclaim.services.cycle import GATED, due_at
from reclaim.services.executors import EXECUTORS
from reclaim.services.runtime import (
    MAX_FAILURES,
    REFUSED_WAIT,
    Runtime,
    StepReport,
    StopSignal,
    backoff,
)
from reclaim.services.step_history import file_steps
from reclaim.store import cases as store
from reclaim.workflows.step_log import collecting

log = logging.getLogger(__name__)

MAX_STEPS = 6  # per turn: enough for timeout → removal, and a guard against a loop


def process_case(rt: Runtime, case_id: int) -> list[StepReport]:
    """Run every step due now for one case; returns what happened.

    Raises :class:`StopSignal` after recording a ``StopRun``: the caller should stop
    sending for now. Any other failure is recorded on the case and reported.
    """
    reports: list[StepReport] = []
    stop: StopRun | Unavailable | None = None
    due_override: int | None = None
    errors: dict[str, object] = {}
    for _ in range(MAX_STEPS):
        with rt.read() as conn:
            stored = store.load_case(conn, case_id)
            if stored is None:
                return reports
            policy = rt.policy(conn, stored.case.policy)
        now = rt.now()
        step = next_step(stored.case, policy, now)
        if step.kind in (StepKind.WAIT, StepKind.DONE):
            break
        if step.kind in GATED and step.idempotency_key != stored.authorized_key:
            break  # waits for a plan (or an approval) to allow it
        try:
            with _steps_filed(rt, case_id):
                done = EXECUTORS[step.kind](rt, stored, policy, step, now)
        except store.StaleCase:
            continue  # someone answered or re-planned meanwhile: decide again
        except WriteRefused as exc:
            reports.append(_report(stored, step.kind, "refused", exc.detail))
            due_override = int(now.timestamp()) + REFUSED_WAIT
            errors = {"last_error": exc.detail}
            break
        except StopRun as exc:
            reports.append(_report(stored, step.kind, "stopped", exc.detail))
            due_override = int(now.timestamp()) + backoff(stored.failures + 1)
            errors = {"last_error": exc.detail}
            stop = exc
            break
        except Deferred as exc:  # quiet hours, daily limit: a rule, not a failure
            wait = max(1, int(exc.retry_after or 0))
            reports.append(_report(stored, step.kind, "deferred", exc.detail))
            due_override = int(now.timestamp()) + wait
            break
        except Transient as exc:  # an ask that could not be delivered yet
            failures = stored.failures + 1
            if failures >= MAX_FAILURES and step.kind is StepKind.ASK:
                why = f"gave up after {failures} tries: {exc.detail}"
                case = dc.mark_could_not_ask(stored.case, at=now, detail=why)
                with rt.begin() as conn:
                    store.save_case(conn, stored, case, failures=failures, last_error=why)
                reports.append(_report(stored, step.kind, "could_not_ask", why))
                continue
            wait = backoff(failures, exc.retry_after)
            reports.append(_report(stored, step.kind, "retry", f"{exc.detail} (again in {wait} s)"))
            due_override = int(now.timestamp()) + wait
            errors = {"failures": failures, "last_error": exc.detail}
            if isinstance(exc, Unavailable):  # e.g. sign-in down: every case would fail alike
                stop = exc
            break
        except Exception as exc:  # a bug or an unexpected peer reply: record, move on
            log.exception("case %s: step %s failed", case_id, step.kind.value)
            failures = stored.failures + 1
            detail = f"{type(exc).__name__}: {exc}"
            reports.append(_report(stored, step.kind, "error", detail))
            due_override = int(now.timestamp()) + backoff(failures)
            errors = {"failures": failures, "last_error": detail[:2000]}
            break
        reports.append(done.report)
        if done.due is not None:
            due_override = done.due
            break
    _settle(rt, case_id, due_override, errors)
    if stop is not None:
        raise StopSignal(stop.detail, reports) from stop
    return reports


@contextmanager
def _steps_filed(rt: Runtime, case_id: int) -> Iterator[None]:
    """Collect the directory steps this thread takes for the case; file them in its
    history afterwards, whatever the executor's outcome (a failure's steps say why)."""
    with collecting() as steps:
        try:
            yield
        finally:
            if steps:
                try:
                    with rt.begin() as conn:
                        file_steps(conn, case_id, steps)
                except Exception:  # the history is a record; never fail a step over it
                    log.exception(
                        "case %s: could not file %d directory step(s)", case_id, len(steps)
                    )


def _settle(rt: Runtime, case_id: int, due: int | None, errors: dict[str, object]) -> None:
    """Record when the case is next due and give the lease back."""
    for _ in range(3):
        with rt.begin() as conn:
            stored = store.load_case(conn, case_id)
            if stored is None:
                return
            if due is None:
                policy = rt.policy(conn, stored.case.policy)
                next_due = due_at(
                    stored.case, authorized_key=stored.authorized_key, policy=policy, now=rt.now()
                )
            else:
                next_due = due
            try:
                store.set_columns(
                    conn,
                    stored,
                    next_due_at=next_due,
                    lease_owner=None,
                    lease_until=None,
                    **errors,
                )
                return
            except store.StaleCase:
                continue


def _report(stored: store.StoredCase, kind: StepKind, result: str, detail: str) -> StepReport:
    return StepReport(stored.id, stored.case.policy, stored.case.user, kind.value, result, detail)
