"""Microsoft Graph usage data → raw usage rows (the frame ``events.validate`` checks).

Three kinds of data, each a *moment* of use, never a duration:

- **sign-ins** (``/auditLogs/signIns``, per app): a successful sign-in
  (``status.errorCode`` 0) is a use of the app at ``createdDateTime``. The app is
  recorded under its ``appId``, the GUID a policy lists among its ``apps`` (names
  change, ids do not).
- **sign-in activity** (``signInActivity`` of each user): the last interactive and
  non-interactive sign-ins say the user was active in the tenant on those days: an
  observation (:data:`~.rollup.OBSERVED_ONLY_APP`), not use of any app.
- **usage reports**: ``getOffice365ActiveUserDetail`` gives a last activity date per
  workload (``Teams Last Activity Date`` → app ``M365 Teams``);
  ``getM365AppUserDetail`` says which apps a user used in the period (``Word: Yes``)
  and the user's last activity date across them, so each app marked ``Yes`` counts as
  used on that date (``M365 Apps Word``): the latest it can have been, which errs
  towards keeping a license, never towards taking it.

Reports with concealed user names (a tenant privacy setting: the names become 32
hex-digit hashes) are refused with :class:`ConcealedNames`: nothing in them can be
matched to a person.

Each kind is a :class:`~.source.UsageSource` (:class:`SignInActivitySource`,
:class:`AppSignInsSource`, :class:`UsageReportSource`); incremental pulls keep their
watermark in the batch state, so it is stored with the rows it covers.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

from reclaim.connectors.graph.reports import UsageReads, period_covering
from reclaim.usage_sources.rollup import OBSERVED_ONLY_APP
from reclaim.usage_sources.source import RawBatch, SavedState

WORKLOADS = ("Exchange", "OneDrive", "SharePoint", "Skype For Business", "Yammer", "Teams")
M365_APPS = ("Outlook", "Word", "Excel", "PowerPoint", "OneNote", "Teams")
UPN_COLUMN = "User Principal Name"
_CONCEALED = re.compile(r"^[0-9A-Fa-f]{32}$")
RAW_SCHEMA = {
    "user": pl.String,
    "app": pl.String,
    "timestamp": pl.String,
    "device": pl.String,
    "line": pl.Int64,
}


KIND = "graph"
OVERLAP = dt.timedelta(hours=2)  # sign-in log entries can arrive this late
FIRST_PULL = dt.timedelta(days=30)  # the sign-in log's retention with Entra ID P1/P2
SIGN_IN_BATCH = 50_000  # sign-ins written per transaction


class ConcealedNames(ValueError):
    """The tenant conceals user names in usage reports; the report cannot be used."""


def report_app_names(function: str) -> dict[str, str]:
    """CSV column → the app name Reclaim records, for one report function."""
    if function.lower() == "getoffice365activeuserdetail":
        return {f"{w} Last Activity Date": f"M365 {w}" for w in WORKLOADS}
    if function.lower() == "getm365appuserdetail":
        return {a: f"M365 Apps {a}" for a in M365_APPS}
    raise ValueError(f"unknown report function {function!r}")


def sign_in_rows(entries: Iterable[dict[str, Any]], *, app_id: str) -> pl.DataFrame:
    """Successful sign-ins to ``app_id`` as raw rows (``line``: position in the pull)."""
    rows = []
    for n, e in enumerate(entries, start=1):
        status = e.get("status") if isinstance(e.get("status"), dict) else {}
        if int((status or {}).get("errorCode") or 0) != 0:
            continue  # a failed sign-in is not use
        device = e.get("deviceDetail") if isinstance(e.get("deviceDetail"), dict) else {}
        rows.append(
            {
                "user": e.get("userPrincipalName"),
                "app": app_id.lower(),
                "timestamp": e.get("createdDateTime"),
                "device": (device or {}).get("displayName") or None,
                "line": n,
            }
        )
    return pl.DataFrame(rows, schema=RAW_SCHEMA)


def activity_rows(users: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Each user's last sign-ins (interactive and not) as observations."""
    rows = []
    for n, u in enumerate(users, start=1):
        activity = u.get("signInActivity")
        if not isinstance(activity, dict):
            continue  # never signed in (or not recorded): nothing observed
        for key in ("lastSignInDateTime", "lastNonInteractiveSignInDateTime"):
            if activity.get(key):
                rows.append(
                    {
                        "user": u.get("userPrincipalName"),
                        "app": OBSERVED_ONLY_APP,
                        "timestamp": activity[key],
                        "device": None,
                        "line": n,
                    }
                )
    return pl.DataFrame(rows, schema=RAW_SCHEMA)


def report_rows(csv_text: str, *, function: str) -> pl.DataFrame:
    """A usage report's CSV as raw rows (``line``: the CSV line); see module docstring.

    Raises :class:`ConcealedNames` when user names are hashes.
    """
    frame = pl.read_csv(io.StringIO(csv_text), infer_schema=False)
    if UPN_COLUMN not in frame.columns:
        raise ValueError(f"{function}: the report has no '{UPN_COLUMN}' column")
    frame = frame.with_row_index("line", offset=2).with_columns(pl.col("line").cast(pl.Int64))
    if "Is Deleted" in frame.columns:
        frame = frame.filter(pl.col("Is Deleted").fill_null("").str.to_lowercase() != "true")
    names = frame.get_column(UPN_COLUMN).drop_nulls()
    if names.len() and (names.str.contains(_CONCEALED.pattern) & ~names.str.contains("@")).all():
        raise ConcealedNames(
            f"{function}: user names in this tenant's usage reports are concealed (hashes, "
            "not UPNs), so no row can be matched to a person and nothing was imported. "
            "Turn off 'Display concealed user, group, and site names in all reports' "
            "(Microsoft 365 admin center → Settings → Org settings → Reports), or "
            'PATCH /admin/reportSettings {"displayConcealedNames": false}.'
        )
    parts = []
    for column, app in report_app_names(function).items():
        if column not in frame.columns:
            continue
        if function.lower() == "getm365appuserdetail":
            used = frame.filter(pl.col(column).fill_null("").str.to_lowercase() == "yes")
            when = pl.col("Last Activity Date")
        else:
            used = frame.filter(pl.col(column).fill_null("") != "")
            when = pl.col(column)
        parts.append(
            used.select(
                pl.col(UPN_COLUMN).alias("user"),
                pl.lit(app).alias("app"),
                pl.lit(None, dtype=pl.String).alias("timestamp"),
                when.alias("date"),
                pl.lit(None, dtype=pl.String).alias("device"),
                pl.col("line"),
            )
        )
    if not parts:
        return pl.DataFrame(schema={**RAW_SCHEMA, "date": pl.String})
    return pl.concat(parts).sort("line")


class SignInActivitySource:
    """Every user's ``signInActivity``, as observations (no state: bits OR together)."""

    kind = KIND

    def __init__(self, reads: UsageReads) -> None:
        self.reads = reads

    def batches(self, saved: SavedState) -> Iterator[RawBatch]:
        """One batch: all users."""
        users = list(self.reads.sign_in_activity())
        yield RawBatch(activity_rows(users), where="graph:users", lines=len(users))


class AppSignInsSource:
    """Sign-ins to one app since its watermark (minus :data:`OVERLAP`), or ``since``.

    Graph lists sign-ins newest first, so the watermark (the newest time seen) is
    stored with the *last* batch only: a pull that fails half-way starts again from
    the previous watermark rather than skipping what it had not written yet.
    """

    kind = KIND

    def __init__(
        self, reads: UsageReads, app_id: str, *, now: dt.datetime, since: dt.datetime | None
    ) -> None:
        self.reads, self.app_id, self.now, self.since = reads, app_id.lower(), now, since
        self.key = f"graph:signins:{self.app_id}"
        self.started: dt.datetime | None = None

    def batches(self, saved: SavedState) -> Iterator[RawBatch]:
        """Batches of :data:`SIGN_IN_BATCH` sign-ins; the last carries the watermark."""
        prior = saved(self.key) or {}
        newest = int(prior.get("newest") or 0)
        if self.since is not None:
            start = self.since
        elif newest:
            start = dt.datetime.fromtimestamp(newest, dt.UTC) - OVERLAP
        else:
            start = self.now - FIRST_PULL
        self.started = start
        where = f"graph:signIns({self.app_id})"
        entries = self.reads.sign_ins(self.app_id, since=start)
        page: list[dict[str, Any]] = []
        done = False
        while not done:
            page.clear()
            for entry in entries:
                page.append(entry)
                if len(page) >= SIGN_IN_BATCH:
                    break
            else:
                done = True
            raw = sign_in_rows(page, app_id=self.app_id)
            newest = max(newest, _newest(raw))
            state = (self.key, {"newest": newest}) if done else None
            yield RawBatch(raw, where=where, state=state, lines=len(page))


def _newest(raw: pl.DataFrame) -> int:
    """The newest sign-in time in ``raw`` as epoch seconds (0 if none)."""
    if raw.height == 0:
        return 0
    stamps = raw.get_column("timestamp").str.to_datetime(time_zone="UTC", strict=False)
    newest = stamps.dt.epoch("s").max()
    return int(newest) if newest is not None else 0  # type: ignore[arg-type]


class UsageReportSource:
    """One usage report over the shortest period covering the time since its last pull
    (or ``since``); refused when user names are concealed."""

    kind = KIND

    def __init__(
        self, reads: UsageReads, function: str, *, now: dt.datetime, since: dt.datetime | None
    ) -> None:
        self.reads, self.function, self.now, self.since = reads, function, now, since
        self.key = f"graph:reports:{function}"
        self.period: int | None = None

    def batches(self, saved: SavedState) -> Iterator[RawBatch]:
        """One batch: the report's rows."""
        prior = saved(self.key) or {}
        start = self.since
        if start is None and prior.get("pulled"):
            start = dt.datetime.fromtimestamp(int(prior["pulled"]), dt.UTC)
        days = (self.now - start).total_seconds() / 86_400 if start else 30
        self.period = period_covering(days)
        csv = self.reads.report_csv(self.function, period_days=self.period)
        raw = report_rows(csv, function=self.function)
        state = (self.key, {"pulled": int(self.now.timestamp())})
        yield RawBatch(raw, where=f"graph:{self.function}", state=state, lines=raw.height)
