"""JSON ``$batch``: up to 20 calls in one round trip, each with its own status.

The envelope is 200 even when parts fail, so every part is judged on its own: a part
answered 429 is sent again (alone with the other retryable parts, not the whole batch)
after *its* Retry-After; 5xx parts likewise when they are safe to repeat. A part whose
``dependsOn`` target failed gets 424; it is retried along with its target, or reported
as failed when the target failed for good. Several batches run concurrently, bounded
by ``settings.concurrency``; each books its parts' cost in the shared budget.
https://learn.microsoft.com/graph/json-batching
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reclaim.connectors.errors import ConnectorError, Rejected, StopRun
from reclaim.connectors.graph.errors import TRANSIENT_STATUSES
from reclaim.connectors.graph.messages import GraphRequest, GraphResponse
from reclaim.connectors.graph.transport import GraphTransport, backoff_delay, is_idempotent
from reclaim.ops.counters import count_graph

log = logging.getLogger("reclaim.connectors.graph")

MAX_BATCH = 20
FAILED_DEPENDENCY = 424


@dataclass(frozen=True)
class BatchPart:
    """One call inside a batch; ``id`` must be unique within the batch (case-insensitive)."""

    id: str
    request: GraphRequest
    depends_on: tuple[str, ...] = ()

    def to_json(self, pending: set[str]) -> dict[str, Any]:
        """The part as Graph's batch format wants it (URL relative to the version root)."""
        req = self.request
        if req.is_absolute:
            raise ValueError("batch parts take relative URLs, not absolute links")
        out: dict[str, Any] = {"id": self.id, "method": req.method.upper(), "url": req.target}
        headers = dict(req.headers)
        if req.body is not None:
            out["body"] = req.body
            headers.setdefault("Content-Type", "application/json")
        if headers:
            out["headers"] = headers
        deps = [d for d in self.depends_on if d in pending]
        if deps:
            out["dependsOn"] = deps
        return out


def _part_response(raw: dict[str, Any], part: BatchPart) -> GraphResponse:
    headers = raw.get("headers") if isinstance(raw.get("headers"), dict) else {}
    status = int(raw.get("status") or 0)
    count_graph(part.request.method, status)  # each part is a call for Graph's limits
    return GraphResponse(
        status=status,
        headers={str(k).lower(): str(v) for k, v in (headers or {}).items()},
        body=raw.get("body"),
        method=part.request.method.upper(),
        path=part.request.target,
    )


def _check(parts: Sequence[BatchPart]) -> None:
    if not 1 <= len(parts) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} parts, got {len(parts)}")
    ids = [p.id.lower() for p in parts]
    if len(set(ids)) != len(ids):
        raise ValueError("batch part ids must be unique (case-insensitively)")


def run_batch(transport: GraphTransport, parts: Sequence[BatchPart]) -> dict[str, GraphResponse]:
    """Send ≤ 20 parts; retry only the retryable ones; return each part's final answer.

    Parts still failing when the retry policy runs out keep their last answer (429/5xx),
    which translates to Transient with that part's Retry-After.
    """
    _check(parts)
    policy = transport.settings.retry
    deadline = transport.clock() + policy.deadline
    pending = {p.id: p for p in parts}
    final: dict[str, GraphResponse] = {}
    retries = 0
    while pending:
        body = {"requests": [p.to_json(set(pending)) for p in pending.values()]}
        envelope = transport.send(GraphRequest("POST", "/$batch", body=body))
        envelope.raise_for_error()
        answers = {
            str(r.get("id")): r
            for r in envelope.json().get("responses") or []
            if isinstance(r, dict)
        }
        last: dict[str, GraphResponse] = {}
        for pid, part in pending.items():
            raw = answers.get(pid)
            # A part missing from the answer is treated like a 503 for that part.
            last[pid] = (
                _part_response(raw, part)
                if raw
                else GraphResponse(503, {}, None, part.request.method, part.request.path)
            )
        again = _to_retry(pending, last)
        for pid, resp in last.items():
            if pid not in again:
                final[pid] = resp
        if not again:
            break
        waits = [last[pid].failure.retry_after for pid in again]
        hinted = [w for w in waits if w is not None]
        if any(last[pid].status == 429 for pid in again):
            transport.budget.throttled(max(hinted) if hinted else None)
        delay = max(hinted) if hinted else backoff_delay(policy, retries, rng=transport.rng)
        if retries + 1 >= policy.max_attempts or transport.clock() + delay > deadline:
            final.update({pid: last[pid] for pid in again})
            break
        log.info(
            "Graph: retrying %d of %d batch parts in %.1fs (statuses %s)",
            len(again),
            len(pending),
            delay,
            sorted({last[p].status for p in again}),
        )
        transport.sleep(delay)
        retries += 1
        pending = {pid: pending[pid] for pid in pending if pid in again}
    return final


def _to_retry(pending: dict[str, BatchPart], last: dict[str, GraphResponse]) -> set[str]:
    """Ids to send again: 429s, safe 5xx, and 424s whose dependency is sent again."""
    again = {
        pid
        for pid, resp in last.items()
        if resp.status == 429
        or (resp.status in TRANSIENT_STATUSES and is_idempotent(pending[pid].request))
    }
    changed = True
    while changed:  # dependency chains: a 424 follows its target into the next round
        changed = False
        for pid, resp in last.items():
            if pid in again or resp.status != FAILED_DEPENDENCY:
                continue
            if any(dep in again for dep in pending[pid].depends_on):
                again.add(pid)
                changed = True
    return again


def run_batches(
    transport: GraphTransport, parts: Sequence[BatchPart]
) -> dict[str, GraphResponse | ConnectorError]:
    """Send any number of parts as batches of ≤ 20, ``settings.concurrency`` at a time.

    Each part id maps to its final answer, or to the error that stopped its whole batch
    (Transient when the envelope kept failing). After a StopRun (kill switch, revoked
    credentials) no further batch is started and the remaining parts map to that error.
    Parts must not depend on parts in another chunk of 20.
    """
    if not parts:
        return {}  # nothing to send (and a thread pool of zero workers is an error)
    ids = [p.id.lower() for p in parts]
    if len(set(ids)) != len(ids):
        raise ValueError("batch part ids must be unique (case-insensitively)")
    chunks = [list(parts[i : i + MAX_BATCH]) for i in range(0, len(parts), MAX_BATCH)]
    stopped = threading.Event()
    stop_error: list[StopRun] = []

    def work(chunk: list[BatchPart]) -> dict[str, GraphResponse | ConnectorError]:
        if stopped.is_set():
            return dict.fromkeys((p.id for p in chunk), stop_error[0])
        try:
            return dict(run_batch(transport, chunk))
        except StopRun as exc:
            if not stopped.is_set():
                stop_error.append(exc)
                stopped.set()
            return dict.fromkeys((p.id for p in chunk), stop_error[0])
        except ConnectorError as exc:
            return dict.fromkeys((p.id for p in chunk), exc)
        except ValueError as exc:  # a malformed part: a bug here, reported per part
            return dict.fromkeys((p.id for p in chunk), Rejected(str(exc), code="graph-batch"))

    results: dict[str, GraphResponse | ConnectorError] = {}
    if len(chunks) == 1:
        results.update(work(chunks[0]))
        return results
    workers = min(transport.settings.concurrency, len(chunks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graph-batch") as pool:
        for out in pool.map(work, chunks):
            results.update(out)
    return results
