"""The queries Reclaim ships as an osquery pack, and how each one's rows are read.

The pack (``packs/reclaim-usage.json``) is a standard osquery pack: load it with
``--pack`` / the ``packs`` config key, or paste its queries into Fleet. Results are
recognized by query name, whatever prefix the deployment adds: osquery logs a pack
query as ``pack_<pack>_<query>`` (``pack_delimiter`` may be ``/``), Fleet as
``pack/<team>/<query>`` or ``pack:…``. A result whose name ends in none of the names
below belongs to some other query and is counted, not imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

PACK_FILE = "reclaim-usage.json"


class Kind(StrEnum):
    """What a query's rows say."""

    USE = "use"  # an app's last-used time: one usage event at that time
    HEARTBEAT = "heartbeat"  # who was signed in when the row was logged: observed only


@dataclass(frozen=True)
class QuerySpec:
    """How to read one query's rows: where the user, the app and the time are."""

    name: str
    kind: Kind
    time_column: str | None  # None: the log line's unixTime (when the row was seen)
    app_columns: tuple[str, ...] = ()  # first non-empty wins (after alias matching)
    # SID columns go through SidDirectory, account columns through AccountDirectory.
    sid_columns: tuple[str, ...] = ("sid",)
    account_columns: tuple[str, ...] = ("username", "user")


QUERIES: dict[str, QuerySpec] = {
    q.name: q
    for q in (
        QuerySpec("reclaim_userassist", Kind.USE, "last_execution_time", ("path",)),
        QuerySpec("reclaim_prefetch", Kind.USE, "last_run_time", ("filename", "path")),
        QuerySpec(
            "reclaim_macos_apps", Kind.USE, "last_opened_time", ("bundle_identifier", "path")
        ),
        QuerySpec("reclaim_heartbeat_windows", Kind.HEARTBEAT, None),
        QuerySpec("reclaim_heartbeat_macos", Kind.HEARTBEAT, None),
    )
}
# Every column any query reads: what the parser extracts from a row.
ROW_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        c
        for q in QUERIES.values()
        for c in (
            *((q.time_column,) if q.time_column else ()),
            *q.app_columns,
            *q.sid_columns,
            *q.account_columns,
        )
    )
)
_DELIMITERS = ("_", "/", ":")


def query_for(logged_name: str) -> QuerySpec | None:
    """The spec for a logged query name (any pack prefix), or None if not ours."""
    spec = QUERIES.get(logged_name)
    if spec is not None:
        return spec
    for name, q in QUERIES.items():
        if logged_name.endswith(name) and logged_name[-len(name) - 1] in _DELIMITERS:
            return q
    return None


def pack_text() -> str:
    """The pack file's JSON text, as shipped."""
    return (
        resources.files("reclaim.usage_sources")
        .joinpath("packs", PACK_FILE)
        .read_text(encoding="utf-8")
    )


def pack() -> dict[str, Any]:
    """The pack as a dict (``queries`` → name → query, interval, platform, …)."""
    data: dict[str, Any] = json.loads(pack_text())
    return data
