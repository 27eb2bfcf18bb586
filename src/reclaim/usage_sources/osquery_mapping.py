"""osquery result rows → raw usage rows (the frame ``events.validate`` checks).

For each row of a query the pack ships (``osquery_pack.QUERIES``):

- **time**: the query's last-used column (``last_execution_time``, ``last_run_time``,
  ``last_opened_time``) for app rows; the log line's ``unixTime`` for heartbeats. A
  last-used time of 0 or less means "never run": the row says nothing and is skipped.
  Run counts are not durations: no seconds are ever emitted (roll-ups add seconds up,
  so a repeated count would inflate them).
- **user**: a ``sid`` column through the :class:`~.identity.SidDirectory`; otherwise an
  account name (``username``/``user``): a UPN as is, a short name through the
  :class:`~.identity.AccountDirectory`. SIDs of machine accounts (SYSTEM, services)
  are skipped; an unknown person's SID or account is rejected and counted per value,
  never dropped silently.
- **app**: through :class:`~.app_aliases.AppMatcher` (policy aliases, glob patterns);
  heartbeats get :data:`~.rollup.OBSERVED_ONLY_APP`.
- **device**: not kept (nothing stores it yet); ``device`` stays empty.

Rows of queries Reclaim does not know are counted per query name and skipped: a
results log carries every scheduled query's output, not only Reclaim's.

Look-ups run once per distinct SID, account and path (kept across chunks in small
frames), and each chunk is matched against them with joins: a fleet repeats the same
few thousand values millions of times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from reclaim.domain.names import user_key
from reclaim.usage_sources.app_aliases import AppMatcher
from reclaim.usage_sources.identity import SID_PATTERN, Directory, is_person_sid
from reclaim.usage_sources.osquery_pack import QUERIES, Kind, query_for
from reclaim.usage_sources.rollup import OBSERVED_ONLY_APP

_SEP = "\x1f"  # joins a row's app columns into one key (never in a path or bundle id)
RAW_SCHEMA = {
    "user": pl.String,
    "app": pl.String,
    "timestamp": pl.String,
    "device": pl.String,
    "line": pl.Int64,
}
# Status of a looked-up SID or account.
OK, UNKNOWN, MACHINE, INVALID = "ok", "unknown", "machine", "invalid"
_LOOKUP = {"key": pl.String, "upn": pl.String, "status": pl.String}
Answer = Callable[[list[str]], list[tuple[str, str | None, str]]]


@dataclass
class MapStats:
    """What mapping skipped or refused, for the import report (kept across chunks)."""

    unknown_queries: Counter[str] = field(default_factory=Counter)  # rows per query name
    unknown_sids: Counter[str] = field(default_factory=Counter)  # rejected rows per SID
    unknown_accounts: Counter[str] = field(default_factory=Counter)
    machine_accounts: int = 0  # rows of SYSTEM / service SIDs
    never_used: int = 0  # rows whose last-used time is 0 or missing


@dataclass(frozen=True)
class Mapped:
    """Raw usage rows (:data:`RAW_SCHEMA`) and rejected rows (line, reason)."""

    raw: pl.DataFrame
    rejects: list[tuple[int, str]]


def blank_to_null(expr: pl.Expr) -> pl.Expr:
    """``expr`` trimmed, or null when nothing is left."""
    text = expr.str.strip_chars()
    return pl.when(text != "").then(text)


def _by_query(values: dict[str, pl.Expr], default: pl.Expr) -> pl.Expr:
    """``values[spec name]`` for each row's query spec (column ``_spec``)."""
    if not values:
        return default
    (first, value), *rest = values.items()
    chain: Any = pl.when(pl.col("_spec") == first).then(value)
    for name, other in rest:
        chain = chain.when(pl.col("_spec") == name).then(other)
    result: pl.Expr = chain.otherwise(default)
    return result


class OsqueryMapper:
    """Turns parsed osquery rows into raw usage rows; caches look-ups across chunks."""

    def __init__(self, *, directory: Directory, apps: AppMatcher) -> None:
        self.directory = directory
        self.apps = apps
        self.stats = MapStats()
        self.directory_conn: object = None  # what the directory reads through, if anything
        self._sids = pl.DataFrame(schema=_LOOKUP)
        self._accounts = pl.DataFrame(schema=_LOOKUP)
        self._app_names = pl.DataFrame(schema={"_apps": pl.String, "app": pl.String})

    def keep_known(self, other: OsqueryMapper) -> None:
        """Reuse ``other``'s answers, except "unknown" (identities imported since may
        know them now)."""
        self._sids = other._sids.filter(pl.col("status") != UNKNOWN)
        self._accounts = other._accounts.filter(pl.col("status") != UNKNOWN)
        self._app_names = other._app_names

    def map(self, rows: pl.DataFrame) -> Mapped:
        """Map one chunk of rows (``osquery.ROW_SCHEMA``)."""
        if rows.height == 0:
            return Mapped(raw=pl.DataFrame(schema=RAW_SCHEMA), rejects=[])
        names = rows.get_column("query").unique().to_list()
        specs = {n: query_for(n) for n in names}
        for name, spec in specs.items():
            if spec is None:
                self.stats.unknown_queries[name] += int((rows["query"] == name).sum())
        known = {n: s.name for n, s in specs.items() if s is not None}
        frame = rows.with_columns(
            pl.col("query")
            .replace_strict(known, default=None, return_dtype=pl.String)
            .alias("_spec")
        ).filter(pl.col("_spec").is_not_null())
        used = {known[n] for n in known}
        uses = [q for q in used if QUERIES[q].kind is Kind.USE]
        epoch = _by_query(
            {q: pl.col(QUERIES[q].time_column or "seen") for q in uses}, pl.col("seen")
        )
        app_key = _by_query(
            {
                q: pl.concat_str(
                    [pl.col(c).fill_null("") for c in QUERIES[q].app_columns], separator=_SEP
                )
                for q in uses
            },
            pl.lit(None, dtype=pl.String),
        )
        frame = frame.select(
            "line",
            pl.col("_spec").is_in(uses).alias("_use"),
            epoch.str.strip_chars().cast(pl.Float64, strict=False).floor().alias("_t"),
            blank_to_null(pl.col("sid")).str.to_uppercase().alias("_sid"),
            blank_to_null(pl.coalesce(blank_to_null(pl.col("username")), pl.col("user"))).alias(
                "_account"
            ),
            app_key.alias("_apps"),
        )
        never = pl.col("_use") & (pl.col("_t").is_null() | (pl.col("_t") <= 0))
        self.stats.never_used += int(frame.select(never.sum()).item())
        frame = self._with_users(frame.filter(~never))
        frame = self._with_apps(frame)
        why = (
            pl.when(pl.col("_sid_status") == INVALID)
            .then(pl.lit("not a SID '") + pl.col("_sid").str.slice(0, 60) + pl.lit("'"))
            .when(pl.col("_sid_status") == UNKNOWN)
            .then(pl.lit("unknown SID ") + pl.col("_sid"))
            .when(pl.col("_sid").is_null() & (pl.col("_account_status") == UNKNOWN))
            .then(pl.lit("unknown account '") + pl.col("_account").str.slice(0, 60) + pl.lit("'"))
            .when(pl.col("user").is_null())
            .then(pl.lit("no user in the row (sid or username)"))
            .when(pl.col("app").is_null())
            .then(pl.lit("no app in the row (path, filename or bundle id)"))
        )
        frame = frame.with_columns(why.alias("_why"))
        bad = frame.filter(pl.col("_why").is_not_null())
        rejects = [(int(n), str(r)) for n, r in bad.select("line", "_why").iter_rows()]
        if bad.height:
            sids = bad.filter(pl.col("_sid_status") == UNKNOWN)["_sid"]
            self.stats.unknown_sids.update(sids.to_list())
            accounts = bad.filter(pl.col("_sid").is_null() & (pl.col("_account_status") == UNKNOWN))
            self.stats.unknown_accounts.update(accounts["_account"].to_list())
        raw = frame.filter(pl.col("_why").is_null()).select(
            "user",
            "app",
            pl.col("_t").cast(pl.Int64).cast(pl.String).alias("timestamp"),
            pl.lit(None, dtype=pl.String).alias("device"),
            "line",
        )
        return Mapped(raw=raw, rejects=rejects)

    def _with_users(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add ``user`` and the look-up statuses; drop machine-account rows."""
        self._sids = self._lookup(self._sids, frame.get_column("_sid"), self.sid_answers)
        frame = frame.join(
            self._sids.rename({"key": "_sid", "upn": "_sid_upn", "status": "_sid_status"}),
            on="_sid",
            how="left",
        )
        machine = pl.col("_sid_status") == MACHINE
        self.stats.machine_accounts += int(frame.select(machine.sum()).item())
        frame = frame.filter(~machine.fill_null(False))
        accounts = frame.filter(pl.col("_sid").is_null()).get_column("_account")
        self._accounts = self._lookup(self._accounts, accounts, self.account_answers)
        frame = frame.join(
            self._accounts.rename(
                {"key": "_account", "upn": "_account_upn", "status": "_account_status"}
            ),
            on="_account",
            how="left",
        )
        return frame.with_columns(
            pl.when(pl.col("_sid").is_not_null())
            .then(pl.col("_sid_upn"))
            .otherwise(pl.col("_account_upn"))
            .alias("user")
        )

    def _with_apps(self, frame: pl.DataFrame) -> pl.DataFrame:
        new = (
            frame.filter(pl.col("_use"))
            .select("_apps")
            .unique()
            .join(self._app_names, on="_apps", how="anti")
            .get_column("_apps")
            .to_list()
        )
        if new:
            names = [self.apps.name(*v.split(_SEP)) for v in new]
            found = pl.DataFrame({"_apps": new, "app": names}, schema=self._app_names.schema)
            self._app_names = pl.concat([self._app_names, found])
        frame = frame.join(self._app_names, on="_apps", how="left")
        return frame.with_columns(
            pl.when(pl.col("_use")).then(pl.col("app")).otherwise(pl.lit(OBSERVED_ONLY_APP))
        )

    @staticmethod
    def _lookup(cache: pl.DataFrame, values: pl.Series, answer: Answer) -> pl.DataFrame:
        new = (
            values.drop_nulls()
            .unique()
            .to_frame("key")
            .join(cache, on="key", how="anti")
            .get_column("key")
            .to_list()
        )
        if not new:
            return cache
        rows = answer(new)
        return pl.concat([cache, pl.DataFrame(rows, schema=_LOOKUP, orient="row")])

    def sid_answers(self, sids: list[str]) -> list[tuple[str, str | None, str]]:
        """(SID, user key or None, status) for upper-case SIDs, asking the directory."""
        valid = {s for s in sids if SID_PATTERN.match(s)}
        people = [s for s in valid if is_person_sid(s)]
        batch = getattr(self.directory, "users_for_sids", None)
        found: dict[str, str] = (
            batch(people)
            if batch is not None
            else {s: u for s in people if (u := self.directory.user_for_sid(s)) is not None}
        )
        out: list[tuple[str, str | None, str]] = []
        for s in sids:
            if s not in valid:
                out.append((s, None, INVALID))
            elif not is_person_sid(s):
                out.append((s, None, MACHINE))
            else:
                upn = found.get(s)
                out.append((s, user_key(upn) if upn else None, OK if upn else UNKNOWN))
        return out

    def account_answers(self, accounts: list[str]) -> list[tuple[str, str | None, str]]:
        """(account, user key or None, status): a UPN as is, else the directory's."""
        out: list[tuple[str, str | None, str]] = []
        for a in accounts:
            upn = a if "@" in a else self.directory.user_for_account(a)
            out.append((a, user_key(upn) if upn else None, OK if upn else UNKNOWN))
        return out
