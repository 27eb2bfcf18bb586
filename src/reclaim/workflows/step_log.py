"""Step records for a case's history, like the reference pack's workflow execution log.

A directory adapter times each call it makes to the outside (a Graph read, an LDAP
search, the removal itself) and records it as a :class:`Step`: what was done, with
what input, how it ended and how long it took. The contract, for a runner:

- every public call of the adapter appends its steps, in order, *before* it returns
  or raises, so a failed call still leaves the steps that led to the failure;
- steps carry the ``policy`` and ``user`` they were taken for, so a runner that drives
  one adapter from several threads can tell the cases apart;
- a runner either passes ``on_step`` (called synchronously, in order, for each step),
  or calls :meth:`StepLog.drain` after each adapter call to take what was recorded;
- steps never hold a secret: inputs are names, SIDs, DNs and idempotency keys.

Filing steps under the right case: :func:`collecting` opens a per-case buffer in a
context variable (each thread has its own), and :func:`emit`, the ``on_step`` that
:func:`reclaim.workflows.directory.default_directories` gives every adapter, appends
to the buffer of the case the calling thread is working on. Cases run one after
another or in parallel threads therefore never see each other's steps, even though
they share one adapter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from reclaim.connectors.errors import ConnectorError

_KEEP = 10_000  # a runner that never drains must not grow memory without bound


@dataclass(frozen=True, slots=True)
class Step:
    """One timed call to a directory, for the case history."""

    policy: str
    user: str | None
    step: str  # e.g. "graph.get_user", "ldap.remove_member"
    input: str
    outcome: str  # "ok", a result ("member", "not_member"), or "<ErrorClass>: detail"
    ms: float


StepSink = Callable[[Step], None]


class Outcome:
    """The mutable outcome of one step; the code inside ``record`` may refine it."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text = "ok"


class StepLog:
    """Collects steps (bounded) and forwards each to ``on_step`` when given."""

    def __init__(self, on_step: StepSink | None = None) -> None:
        self._on_step = on_step
        self._steps: deque[Step] = deque(maxlen=_KEEP)
        self._lock = threading.Lock()

    @contextmanager
    def record(self, *, policy: str, user: str | None, step: str, input: str) -> Iterator[Outcome]:
        """Time the block; a connector error becomes the outcome, and is re-raised."""
        outcome = Outcome()
        started = time.perf_counter()
        try:
            yield outcome
        except ConnectorError as exc:
            outcome.text = f"{type(exc).__name__}: {exc.detail}"
            raise
        except Exception as exc:  # recorded, then re-raised untouched
            outcome.text = f"error: {type(exc).__name__}"
            raise
        finally:
            ms = round((time.perf_counter() - started) * 1000, 3)
            self.add(Step(policy, user, step, input, outcome.text, ms))

    def add(self, step: Step) -> None:
        """Keep a step and hand it to ``on_step``."""
        with self._lock:
            self._steps.append(step)
        if self._on_step is not None:
            self._on_step(step)

    @property
    def steps(self) -> list[Step]:
        """The steps recorded and not drained yet, oldest first."""
        with self._lock:
            return list(self._steps)

    def drain(self, *, user: str | None = None) -> list[Step]:
        """Take (and forget) the recorded steps; only ``user``'s when given."""
        with self._lock:
            taken = [s for s in self._steps if user is None or s.user == user]
            kept = [s for s in self._steps if user is not None and s.user != user]
            self._steps.clear()
            self._steps.extend(kept)
        return taken


StepRecord = dict[str, Any]
"""A step as the case history keeps it: ``{"step", "input", "outcome", "ms"}``."""

_case_steps: ContextVar[list[StepRecord] | None] = ContextVar("reclaim_case_steps", default=None)


def as_record(step: Step | Mapping[str, Any]) -> StepRecord:
    """A step (the on-prem :class:`Step`, or the Entra adapter's dict) as a history record."""
    if isinstance(step, Step):
        return {"step": step.step, "input": step.input, "outcome": step.outcome, "ms": step.ms}
    return {k: step.get(k) for k in ("step", "input", "outcome", "ms")}


def emit(step: Step | Mapping[str, Any]) -> None:
    """File a step under the case this thread is running (see :func:`collecting`).

    Outside :func:`collecting` (a sync, a bench) the step is not filed anywhere; the
    adapter's own bounded log still has it.
    """
    found = _case_steps.get()
    if found is not None:
        found.append(as_record(step))


@contextmanager
def collecting() -> Iterator[list[StepRecord]]:
    """Collect, for the duration of the block and this thread only, the steps that
    :func:`emit` receives; the list is yielded (and filled in place)."""
    found: list[StepRecord] = []
    token = _case_steps.set(found)
    try:
        yield found
    finally:
        _case_steps.reset(token)
