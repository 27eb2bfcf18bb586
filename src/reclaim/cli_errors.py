"""Errors every command can meet, turned into one clear line instead of a traceback.

The store's transactions make these safe to stop at: what was in progress is rolled
back, what was committed stays. The message says what happened and what to do; it
shows the driver's first line only (a URL in a driver message never carries the
password: Reclaim's URLs are rendered with it hidden).
"""

from __future__ import annotations

import errno
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from typer.core import TyperGroup


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).splitlines() or [type(orig).__name__])[0]


def explain(exc: BaseException) -> str | None:
    """A message for a known operational failure, or None to let it propagate."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" ({exc.filename})" if exc.filename else ""
        return (
            f"no space left on the disk{where}: the step in progress was rolled back and "
            "the store is unchanged by it; free space and run the command again"
        )
    if isinstance(exc, OperationalError):
        text = _first_line(exc)
        if "disk is full" in text or "No space left" in text:
            return (
                "the disk holding the database is full: the transaction in progress was "
                "rolled back and the store is unchanged by it; free space on the data "
                "directory and run the command again"
            )
        if "database is locked" in text:
            return (
                "the SQLite store stayed locked by another process for 30 s "
                "(a long import?): nothing was changed; try again when it has finished"
            )
        return (
            f"the database is not available ({text}): the step in progress was rolled "
            "back; run the command again when the database answers"
        )
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return f"the connection to the database was lost: {_first_line(exc)}"
    return None


class ReclaimGroup(TyperGroup):
    """The CLI's command group: known operational failures exit with code 3 and a line."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        """Run the command; translate the failures :func:`explain` knows."""
        try:
            return super().invoke(ctx)
        except (OSError, DBAPIError) as exc:
            message = explain(exc)
            if message is None:
                raise
            from reclaim.cli import fail

            fail(message, code=3)
