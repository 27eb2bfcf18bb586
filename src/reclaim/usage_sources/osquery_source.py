"""osquery result logs as a :class:`~.source.UsageSource`: parsed blocks → raw batches.

Parsing (``osquery.py``) and mapping (``osquery_mapping.py``) stay separate so the
parse can run ahead in its own thread; this joins them into the batches every source
yields. The import (one transaction per file) and watch mode (one per batch) write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from reclaim.usage_sources.osquery import ParsedBlock
from reclaim.usage_sources.osquery_mapping import OsqueryMapper
from reclaim.usage_sources.source import RawBatch, SavedState

KIND = "osquery"


def to_batch(parsed: ParsedBlock, mapper: OsqueryMapper, *, where: str) -> RawBatch:
    """The raw rows of one parsed block, with its unreadable lines and refused rows."""
    mapped = mapper.map(parsed.rows)
    return RawBatch(
        raw=mapped.raw,
        where=where,
        rejects=[*parsed.malformed, *mapped.rejects],
        lines=parsed.lines,
    )


class OsqueryLogSource:
    """Batches from parsed blocks of one log (``where``: the file, for reports)."""

    kind = KIND

    def __init__(self, blocks: Iterable[ParsedBlock], mapper: OsqueryMapper, *, where: str):
        self.blocks, self.mapper, self.where = blocks, mapper, where

    def batches(self, saved: SavedState) -> Iterator[RawBatch]:
        """One batch per parsed block (no state: a log's position is the caller's)."""
        for parsed in self.blocks:
            yield to_batch(parsed, self.mapper, where=self.where)
