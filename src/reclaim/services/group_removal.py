"""Removing a group of cases in one go: the worker's path for a policy's due removals.

A case's own turn (:func:`reclaim.services.steps.process_case`) costs about ten short
store transactions and three directory calls; at Graph's write ceiling raised tenfold a
worker could not keep up (bench/graph_reclaim.py). Here up to 20 cases
(:data:`reclaim.runner.GROUP_SIZE`) of one policy whose next step is a *first* removal
attempt share each stage:

1. one read: the cases, that nothing was written under their keys yet, and the usage
   re-check for all of them (anyone who used the app again goes the per-case way,
   which cancels them);
2. the directory prepares the batch (Graph: the group is writable, UPNs resolved in
   ``$batch`` reads);
3. one write transaction through the write gate (:meth:`WriteGate.admit_removals`):
   dry-run, kill switch, protection and caps checked, every write recorded ahead as
   ``sending`` with its case's ``removal_sent`` step;
4. the kill switch read once more, then one ``$batch`` of DELETEs (``remove_batch``);
5. one transaction recording every outcome (the same mapping as the per-case path,
   :mod:`reclaim.services.removal_results`), the steps taken for each case in its
   history, when it is next due, and its lease given back.

The Graph ``DELETE`` is the membership check: 204 means the user was a member and is
not any more; a 404 is verified by reading the user's groups (the client does this),
and, as on the per-case path after a write was sent, recorded as ``already_removed``.

Anything unusual leaves the group for the per-case path, which handles every state:
a case that is not a fresh removal, a user who cannot be resolved, a write the gate
refuses, a case changed by someone else meanwhile (a stale version rolls the stage's
transaction back). A crash between 4 and 5 leaves the writes ``sending``, which the
per-case path resolves by reading membership, never by sending blindly.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

from reclaim.connectors.errors import ConnectorError, StopRun, WriteRefused
from reclaim.domain import case as dc
from reclaim.domain.case_steps import (
    RecheckResult,
    StepKind,
    next_step,
    ready_for_removal,
    recheck_before_removal,
)
from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy
from reclaim.services.cycle import due_at
from reclaim.services.removal_results import Answer, Settled, record, settle
from reclaim.services.runtime import REFUSED_WAIT, Runtime, StepReport, StopSignal, backoff
from reclaim.services.step_history import file_steps, with_steps
from reclaim.services.steps import process_case
from reclaim.store import cases as store
from reclaim.store.case_claims import release
from reclaim.store.rechecks import last_uses
from reclaim.store.writes import existing_writes, finish_write
from reclaim.workflows.directory import BatchRemoval, BatchRemover
from reclaim.workflows.gate import Write
from reclaim.workflows.step_log import collecting

log = logging.getLogger(__name__)


def groups_removals(rt: Runtime, policy: Policy) -> bool:
    """Whether the policy's directory takes grouped removals (a :class:`BatchRemover`)."""
    try:
        return isinstance(rt.directories(policy), BatchRemover)
    except StopRun:  # the workflow cannot start: the per-case path records why
        return False


@dataclass
class _Member:
    """A case in the group, as it moves through the stages."""

    stored: store.StoredCase
    answer: Answer | None = None
    steps: tuple[dict[str, object], ...] = ()


def process_removals(rt: Runtime, case_ids: Sequence[int]) -> list[StepReport]:
    """Remove the cases ``case_ids`` (leased to this worker, one policy) as one group
    where they qualify, each of the others by :func:`process_case`; returns the reports.

    Raises :class:`StopSignal` like :func:`process_case` when the directory stops the
    pass; the cases not handled yet are given back.
    """
    reports: list[StepReport] = []
    rest: list[int] = []
    try:
        reports += _grouped(rt, list(case_ids), rest)
    except StopSignal as exc:
        _give_back(rt, rest)
        raise StopSignal(str(exc), reports + exc.reports) from exc
    except Exception:  # a bug or an unexpected peer reply: never lose the pass over it
        log.exception("grouped removal of %d case(s) failed; taking them one by one", len(case_ids))
        # Each case's own path reads what was recorded (a write left ``sending`` is
        # resolved by reading membership) and records the error on the case if it recurs.
        rest = list(case_ids)
    for n, case_id in enumerate(rest):
        try:
            reports += process_case(rt, case_id)
        except StopSignal as exc:
            _give_back(rt, rest[n + 1 :])
            raise StopSignal(str(exc), reports + exc.reports) from exc
    return reports


def _give_back(rt: Runtime, ids: Sequence[int]) -> None:
    if ids:
        with rt.begin() as conn:
            release(conn, ids, owner=rt.owner)


def _grouped(rt: Runtime, ids: list[int], rest: list[int]) -> list[StepReport]:
    """Stages 1-5 of the module docstring for the qualifying cases; the others, and all
    of them when a stage cannot go on as a group, are appended to ``rest``."""
    now = rt.now()
    group, policy = _fresh_removals(rt, ids, rest, now)
    if not group or policy is None:
        return []
    port = rt.directories(policy)
    assert isinstance(port, BatchRemover)  # the worker groups only for such ports
    users = [m.stored.case.user for m in group]
    try:
        unresolved = port.prepare_batch(policy=policy, users=users)
    except ConnectorError:  # e.g. an unwritable group: each case records it on its own
        rest += [m.stored.id for m in group]
        return []
    group = _split(group, rest, lambda m: user_key(m.stored.case.user) not in unresolved)
    if not group:
        return []
    try:
        group = _record_ahead(rt, policy, port, group, rest, now)
    except (store.StaleCase, dc.CaseError):  # changed meanwhile: decide again, one by one
        rest += [m.stored.id for m in group]
        return []
    if not group:
        return []
    with rt.read() as conn:
        paused = rt.gate.paused(conn)
    if paused:
        return _refused(rt, group, now, "paused at the moment of the write; not sent")
    try:
        answers: dict[str, BatchRemoval] = port.remove_batch(
            policy=policy,
            users=[m.stored.case.user for m in group],
            keys={m.stored.case.user: m.stored.remove_key for m in group},
            allowed=lambda: _allowed(rt),
        )
    except WriteRefused as exc:  # the connector's own kill-switch or dry-run check
        return _refused(rt, group, now, exc.detail, finished=False)
    except ConnectorError as exc:  # the whole batch ended alike (sign-in down, ...)
        answers = {user_key(m.stored.case.user): BatchRemoval(exc, []) for m in group}
    for m in group:
        found = answers.get(user_key(m.stored.case.user))
        m.answer = found.answer if found else ConnectorError("no answer for this user")
        m.steps = tuple(found.steps) if found else ()
    return _record_outcomes(rt, policy, group, rest, now)


def _allowed(rt: Runtime) -> bool:
    """The kill switch, read afresh: asked before each write a directory sends alone."""
    with rt.read() as conn:
        return not rt.gate.paused(conn)


def _split(group: list[_Member], rest: list[int], keep: Callable[[_Member], bool]) -> list[_Member]:
    kept = [m for m in group if keep(m)]
    rest += [m.stored.id for m in group if not keep(m)]
    return kept


def _fresh_removals(
    rt: Runtime, ids: list[int], rest: list[int], now: dt.datetime
) -> tuple[list[_Member], Policy | None]:
    """Stage 1: the cases whose next step is a first removal attempt, with no use since."""
    with rt.read() as conn:
        loaded = store.load_cases(conn, ids)
        if not loaded:
            return [], None
        policy = rt.policy(conn, loaded[0].case.policy)
        sent = existing_writes(conn, [s.remove_key for s in loaded])
        last = last_uses(
            conn, app_ids=rt.app_ids(conn, policy), user_ids=[s.user_id for s in loaded]
        )
    rest += sorted(set(ids) - {s.id for s in loaded})
    if not groups_removals(rt, policy):
        rest += [s.id for s in loaded]
        return [], None
    group = []
    for stored in loaded:
        step = next_step(stored.case, policy, now).kind
        fresh = (
            stored.case.policy == policy.name
            and step is StepKind.REMOVE
            and stored.authorized_key == stored.remove_key
            and stored.case.attempts == 0
            and stored.remove_key not in sent
            and recheck_before_removal(stored.case, last.get(stored.user_id)).result
            is RecheckResult.PROCEED
        )
        if fresh:
            group.append(_Member(stored))
        else:
            rest.append(stored.id)
    return group, policy


def _record_ahead(
    rt: Runtime,
    policy: Policy,
    port: BatchRemover,
    group: list[_Member],
    rest: list[int],
    now: dt.datetime,
) -> list[_Member]:
    """Stage 3: through the gate, in one transaction; refused cases go per case."""
    now_s = int(now.timestamp())
    by_key = {m.stored.remove_key: m for m in group}
    writes = [
        Write(policy, m.stored.case.user, m.stored.remove_key, m.stored.id, m.stored.plan_id)
        for m in group
    ]
    workflow = str(getattr(port, "name", policy.workflow.value))
    with rt.begin() as conn:
        admitted, refused = rt.gate.admit_removals(conn, writes, workflow=workflow, now=now_s)
        for write in admitted:
            m = by_key[write.key]
            pending = ready_for_removal(m.stored.case, policy=policy, at=now)
            m.stored = store.save_case(conn, m.stored, dc.removal_sent(pending, at=now))
    rest += [by_key[k].stored.id for k in refused]
    return [by_key[w.key] for w in admitted]


def _refused(
    rt: Runtime, group: list[_Member], now: dt.datetime, why: str, *, finished: bool = True
) -> list[StepReport]:
    """The kill switch came on after the writes were recorded: none is sent; each case
    waits like a refused one on the per-case path (``finished``: close the write records)."""
    now_s = int(now.timestamp())
    with rt.begin() as conn:
        for m in group:
            if finished:
                finish_write(conn, m.stored.remove_key, result="refused", detail=why, now=now_s)
            store.set_columns(
                conn,
                m.stored,
                next_due_at=now_s + REFUSED_WAIT,
                last_error=why,
                lease_owner=None,
                lease_until=None,
            )
    return [_report(m.stored, "refused", why) for m in group]


def _record_outcomes(
    rt: Runtime, policy: Policy, group: list[_Member], rest: list[int], now: dt.datetime
) -> list[StepReport]:
    """Stage 5: every outcome in one transaction; StopSignal when the directory stopped."""
    now_s = int(now.timestamp())
    refused = [m for m in group if isinstance(m.answer, WriteRefused)]
    group = [m for m in group if not isinstance(m.answer, WriteRefused)]
    settled: list[tuple[_Member, Settled]] = []
    for m in group:  # before the transaction: settling may write direct licenses on its own
        assert m.answer is not None
        with collecting() as more:  # the steps of those writes, for the case history
            settled.append((m, settle(rt, m.stored, policy, now, m.answer)))
        m.steps += tuple(more)
    stop: StopRun | None = None
    try:
        with rt.begin() as conn:
            for m in refused:  # not sent: the write is closed, the case waits, as on a pause
                why = cast(WriteRefused, m.answer).detail
                finish_write(conn, m.stored.remove_key, result="refused", detail=why, now=now_s)
                file_steps(conn, m.stored.id, list(m.steps))
                store.set_columns(
                    conn, m.stored, next_due_at=now_s + REFUSED_WAIT, last_error=why, **_NO_LEASE
                )
            for m, s in settled:
                if s.stop is not None:
                    stop = s.stop
                    due: int | None = now_s + backoff(m.stored.failures + 1)
                    file_steps(conn, m.stored.id, list(m.steps))
                else:
                    assert s.case is not None
                    moved = with_steps(s.case, list(m.steps))
                    s = replace(s, case=moved)
                    due = due_at(
                        moved, authorized_key=m.stored.authorized_key, policy=policy, now=now
                    )
                record(conn, m.stored, s, now=now_s, next_due_at=due, **_NO_LEASE)
    except store.StaleCase:  # someone changed a case meanwhile: each decides again alone
        log.info("grouped removal: a case changed meanwhile; settling %d one by one", len(group))
        rest += [m.stored.id for m in refused + group]
        return []
    reports = [_report(m.stored, "refused", cast(WriteRefused, m.answer).detail) for m in refused]
    reports += [_report(m.stored, s.result, s.detail) for m, s in settled]
    if stop is not None:
        raise StopSignal(stop.detail, reports)
    return reports


_NO_LEASE = {"lease_owner": None, "lease_until": None}


def _report(stored: store.StoredCase, result: str, detail: str) -> StepReport:
    c = stored.case
    return StepReport(stored.id, c.policy, c.user, StepKind.REMOVE.value, result, detail)
