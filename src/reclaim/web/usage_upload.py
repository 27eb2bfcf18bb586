"""The usage upload as one service: spool, idempotency, import, audit.

The route only hands over the request's stream and headers; everything that decides
what happens lives here, where tests can reach it without HTTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from reclaim.web import audit, idempotency
from reclaim.web.auth.deps import Principal
from reclaim.web.ingest import Upload, body_format, spool
from reclaim.web.problems import Problem
from reclaim.web.state import WebState

ENDPOINT = "POST /api/v1/usage"


@dataclass(frozen=True)
class UploadAnswer:
    """What to send back: status, body, and whether it is a stored replay."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(fmt: str, source: str, body_sha256: str) -> str:
    """What identifies an upload request for its Idempotency-Key.

    The format and source are part of the request: the same bytes sent as another
    type, or to another source, are a different request.
    """
    return hashlib.sha256(f"{fmt}\n{source}\n{body_sha256}".encode()).hexdigest()


async def upload_usage(
    state: WebState,
    principal: Principal,
    *,
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    declared_length: str | None,
    source: str,
    key: str | None,
) -> UploadAnswer:
    """Import one uploaded body; with ``key``, a retry gets the first answer again."""
    fmt = body_format(content_type)
    now = state.clock()
    slot = None
    with Upload(state.ctx, fmt=fmt, now=now) as upload:
        size, body_sha = await spool(
            chunks, upload.path, limit=state.settings.max_upload_bytes, declared=declared_length
        )
        if size == 0:
            raise Problem(400, "The body is empty: send at least one row.", kind="bad-format")
        if key is not None:
            slot = idempotency.Slot(principal.key, ENDPOINT, idempotency.check_key(key))
            replay = await run_in_threadpool(
                idempotency.reserve,
                state.ctx.engine,
                slot,
                request_hash=request_hash(fmt, source, body_sha),
                now=int(now.timestamp()),
            )
            if replay is not None:
                return UploadAnswer(replay.status_code, replay.body, replayed=True)
        try:
            result = await run_in_threadpool(
                upload.run_import, source=source, shown=state.settings.rejects_shown
            )
        except BaseException:
            if slot is not None:
                await run_in_threadpool(idempotency.release, state.ctx.engine, slot)
            raise
    body = result.as_dict()
    await run_in_threadpool(_audit, state, principal, body, size, key)
    if slot is not None:
        await run_in_threadpool(
            idempotency.complete, state.ctx.engine, slot, status_code=200, body=body
        )
    return UploadAnswer(200, body)


def _audit(
    state: WebState, principal: Principal, body: dict[str, Any], size: int, key: str | None
) -> None:
    # The import commits in its own transaction (one per file, by design), so this
    # record follows it immediately rather than sharing it.
    detail = {k: body[k] for k in ("status", "format", "rows_accepted", "rows_rejected", "sha256")}
    detail["bytes"] = size
    if key is not None:
        detail["idempotency_key"] = key
    with state.ctx.engine.begin() as conn:
        audit.record(
            conn,
            principal.actor(),
            "usage.upload",
            now=state.now(),
            target=body["source"],
            detail=detail,
        )
