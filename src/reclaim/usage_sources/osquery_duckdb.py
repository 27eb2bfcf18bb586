"""Reading a whole osquery result log with DuckDB: one parallel scan, then set-based work.

The block reader (``osquery.py`` + ``osquery_mapping.py``) parses with polars a block at
a time; this reads the whole file in one DuckDB query, on every core it is given, and
keeps what the rest of the import needs in a compact DuckDB table (``r``): one row per
result row (line number, query, last-used time, raw SID, account and app values) and
one per line that holds none (blank, malformed, not a query result, a removed row).
The strings repeat a few thousand values millions of times, so the table stays small
(DuckDB compresses it) and everything after the scan is joins and aggregates over it.

What needs Python stays in Python and runs once per *distinct* value, with the very
functions the block reader uses (``OsqueryMapper.sid_answers``/``account_answers``,
``AppMatcher``): the caller reads the distinct raw values (:meth:`OsqueryScan.distinct`),
answers them, and hands the answers back as lookup tables (:meth:`OsqueryScan.load`).
The classification (:func:`_classified`) then gives every row its user, app and
reject reason in the order ``OsqueryMapper.map`` and ``events.validate`` check them.

Line numbers come from ``read_csv(...) WITH ORDINALITY`` over the lines as plain text
(``read_json`` skips blank lines, so its row numbers are not line numbers); each line is
then parsed with ``from_json``. A file the CSV reader cannot split into lines (bytes
that are not UTF-8, a control character used as the column separator, a line over
:data:`MAX_LINE_BYTES`) raises :class:`ScanRefused` before anything is written: the
importer then reads it with the block reader, which handles anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from reclaim.usage_sources.osquery_pack import QUERIES, ROW_COLUMNS, Kind
from reclaim.usage_sources.rollup import SECONDS_PER_DAY

MAX_LINE_BYTES = 4 << 20  # a snapshot of ~10,000 rows; DuckDB sizes its buffers from it
_SEP = "\x1f"  # joins a row's app columns (the same key the block reader builds)
# bytes.strip()'s whitespace (blank-line test) and JSON's (before the first brace).
_ASCII_WS = " \t\n\r\x0b\x0c"
_JSON_WS = " \t\r"
# Line kinds in table ``r``.
# NONAME: a record without a name (records reader; its line is read again).
ROW, BAD, UNNAMED, BLANK, EMPTY, SPACES, NONAME = 0, 1, 2, 3, 4, 5, 6
# Query specs by number (0: a query Reclaim does not know).
SPECS = list(QUERIES.values())
USE_SPECS = [i for i, q in enumerate(SPECS, start=1) if q.kind is Kind.USE]


class ScanRefused(Exception):
    """DuckDB could not split the file into lines; read it with the block reader."""


def _judge_line(raw: bytes) -> tuple[int, str | None] | None:
    """(kind, text) of a line the records reader gave no name: malformed (BAD, with
    its text for the reason) or an object without a name (UNNAMED); None if it is
    neither (a line only the lines reader reads right)."""
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text)
    except UnicodeDecodeError:
        return None
    except ValueError:
        return BAD, text
    if not isinstance(obj, dict) or not raw.lstrip(_JSON_WS.encode()).startswith(b"{"):
        return BAD, text
    if obj.get("name") in (None, ""):
        return UNNAMED, None
    return None


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _chars(text: str) -> str:
    """A SQL expression for ``text`` that may hold control characters."""
    return " || ".join(f"chr({ord(c)})" for c in text)


def _struct() -> str:
    row = {c: "VARCHAR" for c in ROW_COLUMNS}
    shape = {
        "name": "VARCHAR",
        "unixTime": "VARCHAR",
        "action": "VARCHAR",
        "columns": row,
        "snapshot": [row],
        "diffResults": {"added": [row]},
    }
    return json.dumps(shape)


def _spec_of(name: str) -> str:
    """SQL for ``osquery_pack.query_for`` as a spec number: exact names first, then any
    pack prefix ending in one of the delimiters."""
    exact = [f"WHEN {name} = {_lit(q.name)} THEN {i}" for i, q in enumerate(SPECS, start=1)]
    suffix = [
        f"WHEN {' OR '.join(f'ends_with({name}, {_lit(d + q.name)})' for d in '_/:')} THEN {i}"
        for i, q in enumerate(SPECS, start=1)
    ]
    return f"CASE {' '.join(exact + suffix)} ELSE 0 END"


def _by_spec(values: dict[int, str], default: str) -> str:
    whens = " ".join(f"WHEN {i} THEN {v}" for i, v in values.items())
    return f"CASE spec {whens} ELSE {default} END" if whens else default


def _time_sql() -> str:
    """SQL for a row's time as a float: a use row's last-used column; a heartbeat's
    (and anything else's) the line's unixTime. Read as the block reader does: trimmed,
    as a number (floored to whole seconds where it is used)."""
    raw = _by_spec(
        {i: f"r.{SPECS[i - 1].time_column}" for i in USE_SPECS if SPECS[i - 1].time_column},
        "seen",
    )
    # DuckDB's cast trims whitespace itself, and reads "1_000" (polars does not).
    return f"CASE WHEN NOT contains({raw}, '_') THEN TRY_CAST({raw} AS DOUBLE) END"


def _apps_sql() -> str:
    # The app columns joined with _SEP, nulls as "" (the block reader's key).
    joined = {
        i: f" || {_chars(_SEP)} || ".join(f"coalesce(r.{c}, '')" for c in SPECS[i - 1].app_columns)
        for i in USE_SPECS
    }
    return _by_spec(joined, "NULL")


def _row_struct() -> str:
    return "STRUCT(" + ", ".join(f'"{c}" VARCHAR' for c in ROW_COLUMNS) + ")"


def _records_sql(path: Path) -> str:
    """Each line as a parsed record, through DuckDB's NDJSON reader (the fast one).

    It skips blank lines and turns a line it cannot read into a record of nulls, so a
    record is a line only when no line was blank (the caller checks the counts), and a
    record without a name may be anything: a malformed line, another JSON value, an
    object without a name (kind NONAME; the caller reads those lines again)."""
    row = _row_struct()
    columns = {
        "name": "VARCHAR",
        "unixTime": "VARCHAR",
        "action": "VARCHAR",
        "columns": row,
        "snapshot": f"{row}[]",
        "diffResults": f"STRUCT(added {row}[])",
    }
    spec = "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in columns.items()) + "}"
    source = (
        f"read_ndjson({_lit(str(path))}, columns = {spec}, ignore_errors = true, "
        f"maximum_object_size = {MAX_LINE_BYTES})"
    )
    kind = f"CASE WHEN name IS NULL THEN {NONAME} WHEN name = '' THEN {UNNAMED} ELSE {ROW} END"
    return (
        f"SELECT {kind} AS kind, name, unixTime AS seen, action, columns, snapshot, "
        f"diffResults.added AS added, NULL::VARCHAR AS bad FROM {source}"
    )


def _lines_sql(path: Path) -> str:
    """Each line as text, then parsed: slower, but every line is a record, blank or not,
    and a line that is not a result keeps its text for the reason it is refused."""
    lines = (
        f"read_csv({_lit(str(path))}, columns = {{'l': 'VARCHAR'}}, delim = {_lit(chr(1))}, "
        "quote = '', escape = '', header = false, auto_detect = false, "
        f"new_line = '\\n', max_line_size = {MAX_LINE_BYTES})"
    )
    struct = _lit(_struct())
    # from_json raises on a malformed line, and try() then redoes the line's whole
    # vector (2,048 lines) one by one: ~10 ms a bad line. Lines that do not even end
    # like an object are checked first instead (json_valid: one more parse, but only
    # for them), which keeps a cut-off last line or a garbage line cheap.
    parse = (
        f"CASE WHEN ends_with(l, '}}') THEN try(from_json(l, {struct})) "
        f"WHEN json_valid(l) THEN from_json(l, {struct}) END"
    )
    named = f"CASE WHEN j.name IS NULL OR j.name = '' THEN {UNNAMED} ELSE {ROW} END"
    # Tests on the whole line are slow in DuckDB (~3 s per million lines for a trim):
    # the common line, JSON that starts with its brace, takes the first branch.
    kind = (
        f"CASE WHEN l IS NULL OR l = {_lit(chr(13))} THEN {BLANK} "
        f"WHEN j IS NOT NULL AND starts_with(l, '{{') THEN {named} "
        f"WHEN trim(l, {_lit(_ASCII_WS)}) = '' THEN {SPACES} "
        # from_json reads any JSON value; only an object is a result line.
        f"WHEN j IS NULL OR NOT starts_with(ltrim(l, {_lit(_JSON_WS)}), '{{') THEN {BAD} "
        f"ELSE {named} END"
    )
    typed = f"SELECT l, j, {kind} AS kind FROM (SELECT l, {parse} AS j FROM {lines})"
    return (
        "SELECT kind, j.name AS name, j.unixTime AS seen, j.action AS action, "
        "j.columns AS columns, j.snapshot AS snapshot, j.diffResults.added AS added, "
        f"CASE WHEN kind = {BAD} THEN l END AS bad FROM ({typed})"
    )


def scan_sql(path: Path, *, reader: str) -> str:
    """The query that fills table ``r`` from the log at ``path``; ``reader``:
    ``records`` (:func:`_records_sql`) or ``lines`` (:func:`_lines_sql`)."""
    records = _records_sql(path) if reader == "records" else _lines_sql(path)
    rows = (
        "CASE WHEN columns IS NOT NULL THEN "
        "(CASE WHEN action IS DISTINCT FROM 'removed' THEN [columns] ELSE [] END) "
        "ELSE list_concat(coalesce(snapshot, []), coalesce(added, [])) END"
    )
    # Every record gives at least one row of r (one without result rows keeps a row
    # with none: kind EMPTY below), and its first row is marked: line numbers are
    # counted from those marks, in the file's order (OsqueryScan.number_refused).
    listed = (
        f"SELECT kind, name, seen, bad, CASE WHEN kind = {ROW} THEN {rows} ELSE [] END AS x "
        f"FROM ({records})"
    )
    flat = (
        "SELECT kind, name, seen, bad, unnest(x) AS r, generate_subscripts(x, 1) = 1 AS start "
        "FROM (SELECT kind, name, seen, bad, CASE WHEN len(x) = 0 THEN [NULL] ELSE x END AS x "
        "FROM listed)"
    )
    spec = _spec_of("name")
    return (
        f"CREATE TABLE r AS WITH listed AS ({listed}), flat AS ({flat}), "
        f"specced AS (SELECT *, CASE WHEN kind = {ROW} AND r IS NOT NULL THEN {spec} END AS spec "
        "FROM flat), "
        f"timed AS (SELECT *, CASE WHEN spec > 0 THEN {_time_sql()} END AS tf FROM specced) "
        f"SELECT start, CASE WHEN kind = {ROW} AND r IS NULL THEN {EMPTY} ELSE kind END AS kind, "
        "spec, CASE WHEN spec = 0 THEN name END AS q, "
        "CASE WHEN isfinite(tf) THEN TRY_CAST(floor(tf) AS BIGINT) END AS t, "
        "CASE WHEN spec > 0 THEN r.sid END AS sid, "
        "CASE WHEN spec > 0 THEN r.username END AS uname, "
        'CASE WHEN spec > 0 THEN r."user" END AS usr, '
        f"CASE WHEN spec > 0 THEN {_apps_sql()} END AS apps, bad FROM timed"
    )


def _keyed(scan: str) -> str:
    """``scan`` with ``k``: one number for a row's SID, account and app values, so the
    pass that picks the accepted rows joins on a number, not on four strings."""
    select = scan.index("SELECT start, CASE")
    return (
        f"{scan[:select]}SELECT *, CASE WHEN spec > 0 THEN hash(sid, uname, usr, apps) END AS k "
        f"FROM ({scan[select:]})"
    )


_USES = ", ".join(str(i) for i in USE_SPECS) or "NULL"
_JUDGE = """
CREATE OR REPLACE VIEW {name} AS
WITH base AS (
  SELECT x.*, s.norm AS sid_norm, s.status AS sid_status, s.reason AS sid_reason,
         s.user_id AS sid_user_id, s.upn AS sid_upn,
         a.status AS acct_status, a.reason AS acct_reason, a.user_id AS acct_user_id,
         a.upn AS acct_upn, a.account,
         p.app_name, p.app_key, p.app_id, p.blank AS app_blank
  FROM {source} x
  LEFT JOIN sids s ON x.sid = s.raw
  LEFT JOIN accts a ON s.norm IS NULL AND x.uname IS NOT DISTINCT FROM a.uname
                   AND x.usr IS NOT DISTINCT FROM a.usr
  LEFT JOIN apps p ON x.apps = p.raw
), judged AS (
  SELECT *,
    use AND nonpos AS never,
    NOT (use AND nonpos) AND coalesce(sid_status = 'machine', false) AS machine,
    CASE WHEN sid_norm IS NOT NULL THEN sid_upn ELSE acct_upn END AS upn,
    CASE WHEN sid_norm IS NOT NULL THEN sid_user_id ELSE acct_user_id END AS user_id
  FROM base
), reasoned AS (
  SELECT *,
    CASE WHEN never OR machine THEN NULL
      WHEN sid_status IN ('invalid', 'unknown') THEN sid_reason
      WHEN sid_norm IS NULL AND acct_status = 'unknown' THEN acct_reason
      WHEN upn IS NULL THEN 'no user in the row (sid or username)'
      WHEN use AND app_name IS NULL THEN 'no app in the row (path, filename or bundle id)'
      WHEN use AND app_blank THEN 'missing app'
      WHEN tnull THEN 'missing timestamp (or date)'
      WHEN future THEN 'timestamp is in the future ''' || {text_of_t} || ''''
    END AS why
  FROM judged
)
SELECT *, NOT (never OR machine) AND why IS NULL AS ok FROM reasoned
"""


def _classified(name: str, source: str, *, text_of_t: str) -> str:
    """A view over ``source`` (the result rows, or ``g``: the same rows grouped) giving
    each row its user, app and the reason it is refused, if it is: ``OsqueryMapper.map``'s
    rules, then ``events.validate``'s, in their order.

    ``source`` has ``use``, ``nonpos`` (no last-used time, or not after 1970), ``tnull``
    and ``future`` (after the variable ``now_limit``). "never" (a use row with
    ``nonpos``) and "machine" (a SYSTEM/service SID) rows are counted, never rejected;
    ``ok``: accepted.
    """
    return _JUDGE.format(name=name, source=source, text_of_t=text_of_t)


_ROW_FLAGS = (
    f"spec IN ({_USES}) AS use, t IS NULL OR t <= 0 AS nonpos, t IS NULL AS tnull, "
    "coalesce(t > getvariable('now_limit'), false) AS future"
)
# Result rows of known queries (table r), with the flags the classification reads.
_ROWS = (
    f"SELECT rowid AS rid, t, k, sid, uname, usr, apps, {_ROW_FLAGS} "
    f"FROM r WHERE kind = {ROW} AND spec > 0"
)
# The same rows grouped by everything the classification reads: a fleet's rows repeat
# a few thousand (SID, app) pairs, so every count and look-up works on this instead.
_GROUPS = f"""
CREATE TABLE g AS
SELECT use, nonpos, tnull, future, k, sid, uname, usr, apps,
       count(*) AS n, min(rid) AS first_rid
FROM ({_ROWS}) GROUP BY ALL
"""


@dataclass(frozen=True)
class ScanTotals:
    """Line and row counts of a scanned log."""

    lines: int  # non-blank lines (as the block reader counts them)
    bad_lines: int  # lines that are not JSON objects, or name no query
    never_used: int
    machine_accounts: int
    uses: int  # accepted use rows (repeats included)
    observations: int  # accepted heartbeat rows
    rejected: int  # refused result rows (malformed lines not included)


class OsqueryScan:
    """One log file in a private DuckDB database (``db_path``; see the module docstring).

    ``threads`` and ``memory_limit`` bound what DuckDB takes; past the limit it spills
    to ``db_path``'s folder.
    """

    def __init__(self, db_path: Path, *, threads: int, memory_limit: str) -> None:
        self.con = duckdb.connect(
            str(db_path),
            config={
                "threads": threads,
                "memory_limit": memory_limit,
                "temp_directory": str(db_path.parent / "spill"),
                # Table r must keep the file's order: line numbers are counted in it.
                "preserve_insertion_order": True,
            },
        )
        self.run("SET enable_progress_bar = false")  # a per-connection setting
        self.reader = ""  # which reader filled table r: "records" or "lines"

    def close(self) -> None:
        """Release DuckDB (the caller removes the folder)."""
        self.con.close()

    def scan(self, path: Path, *, reader: str) -> None:
        """Read the whole log into table ``r`` (see :func:`scan_sql`); raises
        :class:`ScanRefused` if DuckDB cannot read it."""
        self.run("DROP TABLE IF EXISTS r")
        self.reader = reader
        try:
            self.run(_keyed(scan_sql(path, reader=reader)))
        except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
            raise ScanRefused(str(exc).splitlines()[0]) from exc

    def records_are_lines(self, lines: int, last_line: Callable[[], bytes]) -> bool:
        """After a ``records`` scan: whether its records are the file's ``lines`` lines
        one for one, with every line's kind known. A record without a name is read
        again from ``last_line()`` when it is the last line (a cut-off record, as a log
        being written ends); anywhere else the file must be read as ``lines``."""
        records, unnamed = self.con.execute(
            f"SELECT count(*) FILTER (WHERE start), count(*) FILTER (WHERE kind = {NONAME}) FROM r"
        ).fetchall()[0]
        if records != lines:
            return False  # blank lines, which the records reader skips
        if unnamed == 0:
            return True
        after = self.one_value(
            "SELECT count(*) FROM r WHERE start AND "
            f"rowid > (SELECT max(rowid) FROM r WHERE kind = {NONAME})"
        )
        if unnamed > 1 or after:
            return False
        judged = _judge_line(last_line())
        if judged is None:
            return False
        self.run(f"UPDATE r SET kind = ?, bad = ? WHERE kind = {NONAME}", judged)
        return True

    def group(self, *, now_limit: int) -> None:
        """Group the result rows (table ``g``); ``now_limit``: the latest acceptable time."""
        self.run(f"SET VARIABLE now_limit = {int(now_limit)}")
        self.run(_GROUPS)

    def distinct(self, what: str) -> list[tuple[Any, ...]]:
        """Distinct raw values to look up (needs :meth:`group`): ``sids``, ``accounts``
        (of rows without a SID; needs the ``sids`` table) or ``apps``."""
        query = {
            "sids": "SELECT DISTINCT sid FROM g WHERE sid IS NOT NULL",
            "accounts": (
                "SELECT DISTINCT g.uname, g.usr FROM g LEFT JOIN sids s ON g.sid = s.raw "
                "WHERE s.norm IS NULL"
            ),
            "apps": "SELECT DISTINCT apps FROM g WHERE apps IS NOT NULL",
        }[what]
        return self.con.execute(query).fetchall()

    def load(self, table: str, columns: dict[str, str], rows: Sequence[Sequence[Any]]) -> None:
        """Create ``table`` (``columns``: name → SQL type) holding ``rows``."""
        cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
        self.run(f"CREATE OR REPLACE TABLE {table} ({cols})")
        if rows:
            data = {
                c: np.array([row[i] for row in rows], dtype=object) for i, c in enumerate(columns)
            }
            self.con.register("_incoming", data)
            try:
                casts = ", ".join(f'CAST("{c}" AS {t})' for c, t in columns.items())
                self.run(f"INSERT INTO {table} SELECT {casts} FROM _incoming")
            finally:
                self.con.unregister("_incoming")

    def classify(self) -> None:
        """Define views ``gm`` (over the groups) and ``m`` (over every row); needs the
        look-up tables ``sids``, ``accts`` and ``apps``."""
        self.run(_classified("gm", "g", text_of_t="'…'"))
        self.run(_classified("m", f"({_ROWS})", text_of_t="t"))

    def totals(self) -> ScanTotals:
        """Counts over the whole file (needs :meth:`classify`)."""
        lines, bad = self.con.execute(
            f"SELECT count(*) FILTER (WHERE start AND kind <> {BLANK}), "
            f"count(*) FILTER (WHERE kind IN ({BAD}, {UNNAMED})) FROM r"
        ).fetchall()[0]
        never, machine, uses, beats, rejected = self.con.execute(
            "SELECT coalesce(sum(n) FILTER (WHERE never), 0), "
            "coalesce(sum(n) FILTER (WHERE machine), 0), "
            "coalesce(sum(n) FILTER (WHERE ok AND use), 0), "
            "coalesce(sum(n) FILTER (WHERE ok AND NOT use), 0), "
            "coalesce(sum(n) FILTER (WHERE why IS NOT NULL), 0) FROM gm"
        ).fetchall()[0]
        return ScanTotals(
            lines=int(lines),
            bad_lines=int(bad),
            never_used=int(never),
            machine_accounts=int(machine),
            uses=int(uses),
            observations=int(beats),
            rejected=int(rejected),
        )

    def unknown_queries(self) -> dict[str, int]:
        """Result rows per query name Reclaim does not know."""
        rows = self.con.execute(
            f"SELECT q, count(*) FROM r WHERE kind = {ROW} AND spec = 0 GROUP BY q"
        ).fetchall()
        return {str(q): int(n) for q, n in rows}

    def unknown_people(self) -> tuple[dict[str, int], dict[str, int]]:
        """Refused rows per unknown SID, and per unknown account name."""
        sids = self.con.execute(
            "SELECT sid_norm, sum(n) FROM gm WHERE sid_status = 'unknown' AND why IS NOT NULL "
            "GROUP BY sid_norm"
        ).fetchall()
        accounts = self.con.execute(
            "SELECT account, sum(n) FROM gm WHERE sid_norm IS NULL AND acct_status = 'unknown' "
            "AND why IS NOT NULL GROUP BY account"
        ).fetchall()
        return {str(s): int(n) for s, n in sids}, {str(a): int(n) for a, n in accounts}

    def number_refused(self) -> None:
        """Table ``ln``: the line numbers of the malformed and unnamed lines and of the
        refused rows (counted from the line marks of ``r``, in its order)."""
        self.run(
            "CREATE TABLE bl AS SELECT rowid AS rid, kind, bad FROM r "
            f"WHERE kind IN ({BAD}, {UNNAMED})"
        )
        self.run("CREATE TABLE rj AS SELECT rid, why FROM m WHERE why IS NOT NULL")
        self.run(
            "CREATE TABLE ln AS SELECT rid, line FROM (SELECT rowid AS rid, sum(start::BIGINT) "
            "OVER (ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS line "
            "FROM r) WHERE rid IN (SELECT rid FROM bl UNION ALL SELECT rid FROM rj)"
        )

    def last_line(self) -> int:
        """The number of the last line that holds more than whitespace (0: none)."""
        row = self.con.execute(
            f"WITH last AS (SELECT max(rowid) AS rid FROM r WHERE kind NOT IN ({BLANK}, {SPACES})) "
            "SELECT count(*) FILTER (WHERE start AND rowid <= (SELECT rid FROM last)) FROM r"
        ).fetchall()[0]
        return int(row[0] or 0)

    def bad_lines(self) -> list[tuple[int, int, str | None]]:
        """(line, kind, text) of the malformed and unnamed lines, by line (needs
        :meth:`number_refused`)."""
        rows = self.con.execute(
            "SELECT line, kind, bad FROM bl JOIN ln USING (rid) ORDER BY line"
        ).fetchall()
        return [(int(n), int(k), t) for n, k, t in rows]

    def rejects(self, batch: int = 10_000) -> Iterator[tuple[int, str]]:
        """(line, reason) of every refused result row, sorted (needs
        :meth:`number_refused`)."""
        cur = self.con.cursor()
        try:
            cur.execute("SELECT line, why FROM rj JOIN ln USING (rid) ORDER BY line, why")
            while chunk := cur.fetchmany(batch):
                yield from ((int(n), str(w)) for n, w in chunk)
        finally:
            cur.close()

    def accepted_users(self) -> list[str]:
        """The user keys of the accepted rows."""
        rows = self.con.execute("SELECT DISTINCT upn FROM gm WHERE ok").fetchall()
        return [str(u) for (u,) in rows]

    def accepted_apps(self) -> list[tuple[str, str]]:
        """(app key, name) of the accepted use rows: each key's first spelling in the file."""
        rows = self.con.execute(
            "SELECT app_key, arg_min(app_name, first_rid) FROM gm WHERE ok AND use GROUP BY app_key"
        ).fetchall()
        return [(str(k), str(n)) for k, n in rows]

    def accepted(self) -> None:
        """Tables ``e`` (the distinct accepted uses: user_id, app_id, ts) and ``h`` (days a
        heartbeat observed a user: user_id, day), in one pass over the rows; needs the
        ids in the look-up tables."""
        day = f"CAST(floor(t / {SECONDS_PER_DAY}) AS BIGINT)"
        pick = "CASE WHEN use THEN app_id END AS app_id, CASE WHEN use THEN t ELSE {day} END AS ts"
        collide = self.one_value(
            "SELECT count(*) FROM (SELECT k FROM (SELECT DISTINCT k, sid, uname, usr, apps "
            "FROM g) GROUP BY k HAVING count(*) > 1)"
        )
        if collide:  # two different values with one hash: join on the values themselves
            source = "m WHERE ok"
        else:
            self.run(
                "CREATE TABLE gk AS SELECT DISTINCT k, use, nonpos, tnull, future, user_id, "
                "app_id FROM gm WHERE ok"
            )
            source = f"({_ROWS}) x JOIN gk USING (k, use, nonpos, tnull, future)"
        self.run(
            f"CREATE TABLE eh AS SELECT DISTINCT user_id, {pick.format(day=day)} FROM {source}"
        )
        self.run("CREATE VIEW e AS SELECT user_id, app_id, ts FROM eh WHERE app_id IS NOT NULL")
        self.run("CREATE VIEW h AS SELECT user_id, ts AS day FROM eh WHERE app_id IS NULL")

    def one_value(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The single value a query returns."""
        rows = self.con.execute(query, list(params)).fetchall()
        return rows[0][0] if rows else None

    def numbers(self, query: str, params: Sequence[Any] = ()) -> dict[str, np.ndarray]:
        """A query's result as numpy columns (for integer results)."""
        return self.con.execute(query, list(params)).fetchnumpy()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Execute a statement (its result read to the end, as DuckDB asks before the
        connection's next statement)."""
        self.con.execute(sql, list(params)).fetchall()
