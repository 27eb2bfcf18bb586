"""Pulling usage from Microsoft Graph: ``reclaim usage pull --source graph [--since …]``.

Three parts (sources in ``usage_sources/graph_pull.py``), each written by
``run_source`` in its own transactions, so one failing (a permission missing, a report
throttled) leaves the others imported:

- ``activity``: every user's ``signInActivity`` → observed days;
- ``sign-ins``: for each app id (from ``--app-id`` and every policy alias that is a
  GUID), successful sign-ins since the app's watermark;
- ``reports``: ``getOffice365ActiveUserDetail`` and ``getM365AppUserDetail``; refused
  when the tenant conceals user names.

Incremental pulls never count twice: a sign-in pull starts two hours before the newest
sign-in the last one stored (sign-in logs arrive late), report rows are last-activity
*dates* listed again every day, and whatever is listed again is the same moment of use
and is dropped as a repeat (``store.recorded_uses``): upsert semantics, not additive.
``--since`` starts from that date instead of the watermarks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine

from reclaim.connectors.errors import ConnectorError
from reclaim.connectors.graph.reports import REPORT_FUNCTIONS, UsageReads
from reclaim.services.usage_writes import run_source
from reclaim.usage_sources.graph_pull import (
    AppSignInsSource,
    ConcealedNames,
    SignInActivitySource,
    UsageReportSource,
)
from reclaim.usage_sources.source import UsageSource

PARTS = ("activity", "sign-ins", "reports")
CONCEALED_MESSAGE = (
    "this tenant conceals user names in its usage reports (reportSettings."
    "displayConcealedNames is true): report rows cannot be matched to people, so "
    "nothing was imported from them. Turn off 'Display concealed user, group, and site "
    "names in all reports' (Microsoft 365 admin center → Settings → Org settings → "
    "Reports) to use them"
)


@dataclass
class PartReport:
    """What one part of a pull did."""

    part: str
    status: str = "imported"  # imported | refused | failed
    message: str = ""
    rows: int = 0
    events: int = 0
    repeats: int = 0
    observations: int = 0
    rejected: int = 0
    rejects: list[str] = field(default_factory=list)


@dataclass
class PullReport:
    """A Graph pull: one report per part (sign-ins: one per app id)."""

    source: str
    parts: list[PartReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no part was refused or failed."""
        return all(p.status == "imported" for p in self.parts)

    def as_dict(self) -> dict[str, object]:
        """A JSON-able copy."""
        return {"source": self.source, "ok": self.ok, "parts": [asdict(p) for p in self.parts]}


def policy_app_ids(aliases: Iterable[str]) -> list[str]:
    """The aliases that are Entra application ids (GUIDs), lower-cased, deduplicated."""
    out: dict[str, None] = {}
    for alias in aliases:
        try:
            out[str(uuid.UUID(alias.strip()))] = None
        except ValueError:
            continue
    return list(out)


def pull_graph_usage(
    engine: Engine,
    reads: UsageReads,
    *,
    now: dt.datetime,
    app_ids: Iterable[str] = (),
    since: dt.datetime | None = None,
    parts: Iterable[str] = PARTS,
    source: str = "graph",
) -> PullReport:
    """Pull the ``parts`` asked for into usage source ``source``; see the module docstring."""
    report = PullReport(source=source)

    def run(part: PartReport, src: UsageSource) -> PartReport:
        try:
            done = run_source(engine, src, name=source, now_s=int(now.timestamp()))
        except ConcealedNames as exc:
            part.status, part.message = "refused", str(exc)
            return part
        except ConnectorError as exc:
            part.status, part.message = "failed", exc.detail
            return part
        c = done.counts
        part.rows, part.rejects = done.rows, done.rejects
        part.events, part.repeats, part.observations = c.events, c.repeats, c.observations
        part.rejected = c.rejected
        return part

    for name in parts:
        if name == "activity":
            report.parts.append(run(PartReport("activity"), SignInActivitySource(reads)))
        elif name == "sign-ins":
            for app in app_ids:
                src = AppSignInsSource(reads, app, now=now, since=since)
                part = run(PartReport(f"sign-ins {app}"), src)
                if part.status == "imported" and src.started is not None:
                    part.message = f"since {src.started:%Y-%m-%d %H:%M} UTC"
                report.parts.append(part)
        elif name == "reports":
            report.parts += _reports(reads, now=now, since=since, run=run)
        else:
            raise ValueError(f"unknown part {name!r} (known: {', '.join(PARTS)})")
    return report


def _reports(
    reads: UsageReads,
    *,
    now: dt.datetime,
    since: dt.datetime | None,
    run: Callable[[PartReport, UsageSource], PartReport],
) -> list[PartReport]:
    try:
        concealed = reads.concealed_names()
    except ConnectorError:
        concealed = None  # the setting cannot be read: each CSV is checked instead
    out = []
    for function in REPORT_FUNCTIONS:
        part = PartReport(f"report {function}")
        if concealed:
            part.status, part.message = "refused", CONCEALED_MESSAGE
            out.append(part)
            continue
        src = UsageReportSource(reads, function, now=now, since=since)
        out.append(run(part, src))
        part.part = f"report {function}(D{src.period})" if src.period else part.part
    return out
