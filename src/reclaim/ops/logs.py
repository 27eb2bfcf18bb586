"""Logging set-up: readable text for people, one JSON object per line for machines.

``RECLAIM_LOG_FORMAT=json`` (or ``text``, the default) and ``RECLAIM_LOG_LEVEL``
(default ``INFO``) choose. JSON lines carry the request id of the web request and the
case id of the case being worked on, when there is one, so a log search can follow
one request or one case across processes.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "reclaim_request_id", default=None
)
CASE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "reclaim_case_id", default=None
)
# LogRecord attributes that are not "extra" fields a caller passed.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON."""
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := REQUEST_ID.get()) is not None:
            out["request_id"] = request_id
        if (case_id := CASE_ID.get()) is not None:
            out["case_id"] = case_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """Send Reclaim's logs to stderr in ``fmt`` (``text`` or ``json``) at ``level``.

    Defaults come from ``RECLAIM_LOG_FORMAT`` and ``RECLAIM_LOG_LEVEL``. An unknown
    value is an error that names the variable, not a silent fallback.
    """
    fmt = (fmt or os.environ.get("RECLAIM_LOG_FORMAT") or "text").lower()
    level = (level or os.environ.get("RECLAIM_LOG_LEVEL") or "INFO").upper()
    if fmt not in ("text", "json"):
        raise ValueError(f"RECLAIM_LOG_FORMAT: {fmt!r} is not one of text, json")
    if level not in logging.getLevelNamesMapping():
        raise ValueError(f"RECLAIM_LOG_LEVEL: {level!r} is not a logging level")
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("reclaim")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@contextmanager
def case_context(case_id: int) -> Iterator[None]:
    """Tag every log line written inside with ``case_id``."""
    token = CASE_ID.set(case_id)
    try:
        yield
    finally:
        CASE_ID.reset(token)


class RequestIdMiddleware:
    """Gives each HTTP request an id (the caller's ``X-Request-ID`` when it sends a
    sane one, else a new one), sets it for the logs and echoes it in the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the request, then pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if 0 < len(sent) <= 64 and sent.isprintable() else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            REQUEST_ID.reset(token)
