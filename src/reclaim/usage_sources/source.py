"""The one protocol every usage source implements: produce batches of raw usage rows.

A source reads its outside world (a log file, an API) and turns it into
:class:`RawBatch` values: a frame with the raw columns ``events.validate`` checks
(``user``, ``app``, ``timestamp`` and/or ``date``, optionally ``seconds`` and
``device``) plus ``line`` (where each row came from, for ``WHERE:LINE: reason``
reports), the rows it already refused, and optionally a piece of state (a watermark)
to store with the batch. Sources know nothing of the database: checking, de-duplication,
roll-ups and the transaction are the services' part (``services/usage_writes.py``), so a
batch and its watermark are committed together or not at all.

Rows that only say a user was seen (a heartbeat, a sign-in to the tenant) use
:data:`~.rollup.OBSERVED_ONLY_APP` as their app. Implementations:
``osquery_source.OsqueryLogSource`` (result logs), ``graph_pull`` (Microsoft Graph).
CSV/NDJSON files keep their own streaming path (``services/import_pipeline.py``),
tuned for files larger than memory. ``docs/usage-sources.md`` has the how-to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

# Reads what a source stored under a key in an earlier run (None: nothing yet).
SavedState = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class RawBatch:
    """Raw rows to check and write in one go, with what to remember once they are in."""

    raw: pl.DataFrame
    where: str  # names the rows' origin in reports: a file path, "graph:signIns(…)"
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    state: tuple[str, dict[str, Any]] | None = None  # (key, value) stored with the batch
    lines: int = 0  # input lines (or records) this batch covers, for throughput reports


class UsageSource(Protocol):
    """Something that yields raw usage rows; ``kind`` goes into ``sources.kind``."""

    kind: str

    def batches(self, saved: SavedState) -> Iterator[RawBatch]:
        """The batches to write now; ``saved`` reads state stored by earlier batches."""
        ...  # pragma: no cover
