"""Building osquery result-log lines for tests, in each format the logger writes."""

from __future__ import annotations

import json
from typing import Any

PACK = "pack_reclaim-usage_"
T0 = 1_791_190_800  # 2026-10-05 09:40:00 UTC, when the rows were logged


def _head(query: str, host: str, at: int, numerics: bool) -> dict[str, Any]:
    return {
        "name": PACK + query,
        "hostIdentifier": host,
        "calendarTime": "Mon Oct  5 09:40:00 2026 UTC",
        "unixTime": at if numerics else str(at),
        "epoch": "0",
        "counter": "1",
        "numerics": numerics,
        "decorations": {"host_uuid": "4C4C4544-0042-3510-8048-B4C04F4E3032"},
    }


def _text(row: dict[str, Any], numerics: bool) -> dict[str, Any]:
    return row if numerics else {k: str(v) for k, v in row.items()}


def event(
    query: str,
    row: dict[str, Any],
    *,
    action: str = "added",
    host: str = "WS-1",
    at: int = T0,
    numerics: bool = False,
) -> str:
    """A differential (event format) line: one row, added or removed."""
    line = _head(query, host, at, numerics)
    line.update(columns=_text(row, numerics), action=action)
    return json.dumps(line)


def snapshot(query: str, rows: list[dict[str, Any]], *, host: str = "WS-1", at: int = T0) -> str:
    """A snapshot line: the whole result set."""
    line = _head(query, host, at, False)
    line.update(snapshot=[_text(r, False) for r in rows], action="snapshot")
    return json.dumps(line)


def batch(
    query: str,
    added: list[dict[str, Any]],
    removed: list[dict[str, Any]],
    *,
    host: str = "WS-1",
    at: int = T0,
) -> str:
    """A batched (``--logger_event_type=false``) line."""
    line = _head(query, host, at, False)
    line["diffResults"] = {
        "added": [_text(r, False) for r in added],
        "removed": [_text(r, False) for r in removed],
    }
    return json.dumps(line)


def log(*lines: str, final_newline: bool = True) -> bytes:
    """Lines joined as a results log file's bytes."""
    return ("\n".join(lines) + ("\n" if final_newline else "")).encode()
