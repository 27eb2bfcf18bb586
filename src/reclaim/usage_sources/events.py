"""The normalized usage event, and the vectorized checks that make raw rows into events.

A raw frame has string columns ``user``, ``app``, ``timestamp``, ``date``,
``seconds``, ``device`` (any may be null) plus ``line`` (where the row came from).
``validate`` splits it into good events and rejected rows with a reason each.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

RAW_COLUMNS = ("user", "app", "timestamp", "date", "seconds", "device")
USED_COLUMNS = ("user", "app", "timestamp", "date", "seconds")
MAX_SECONDS_PER_EVENT = 86_400  # one event can't cover more than a day of use
FUTURE_SLACK_SECONDS = 86_400  # clocks drift; a day ahead is a broken clock, not drift

# ISO 8601 spellings seen in exports, tried in order. %#z accepts Z, +hh:mm and +hhmm.
_TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%SZ",  # the most common export spelling, and the fastest to parse
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
)


@dataclass(frozen=True)
class Validated:
    """Good events (user, app_key, app_name, ts, seconds, device) and rejects (line, reason)."""

    events: pl.DataFrame
    rejects: pl.DataFrame


def _show(col: str) -> pl.Expr:
    # Quote the offending value in the reason, cut short so a huge field stays readable.
    return pl.lit("'") + pl.col(col).str.slice(0, 60) + pl.lit("'")


# Epoch seconds as digits, as endpoint agents (osquery) and many logs write time.
_EPOCH_DIGITS = "epoch"


def _primary_format(texts: pl.Series) -> str:
    """The timestamp spelling of the first non-empty value (files use one spelling)."""
    sample = texts.drop_nulls().head(1)
    if sample.len() and sample.cast(pl.Int64, strict=False).null_count() == 0:
        return _EPOCH_DIGITS  # else every row would take the slow path below
    for fmt in _TIMESTAMP_FORMATS:
        if _to_epoch(sample, fmt).null_count() == 0:
            return fmt
    return _TIMESTAMP_FORMATS[0]


def _to_epoch(texts: pl.Series, fmt: str) -> pl.Series:
    if fmt == _EPOCH_DIGITS:
        return texts.cast(pl.Int64, strict=False)
    # A format ending in a literal Z parses as naive time that is UTC already.
    tz = None if fmt.endswith("Z") else "UTC"
    return texts.str.to_datetime(fmt, strict=False, time_zone=tz).dt.epoch("s")


def _parse_timestamps(texts: pl.Series) -> pl.Series:
    """Epoch seconds for ISO 8601 texts (or epoch-second numbers); null where unparsable."""
    primary = _primary_format(texts)
    epoch = _to_epoch(texts, primary)
    missed = epoch.is_null() & texts.is_not_null()
    if not missed.any():
        return epoch
    # Only the few rows the primary spelling missed pay for trying every other one
    # (and for having surrounding blanks stripped).
    idx = missed.arg_true()
    sub = texts.gather(idx).str.strip_chars()
    tries = [_to_epoch(sub, f) for f in _TIMESTAMP_FORMATS]
    tries.append(sub.cast(pl.Int64, strict=False))
    fixed = pl.select(pl.coalesce(tries)).to_series()
    return epoch.scatter(idx, fixed)


@dataclass(frozen=True)
class Quick:
    """Rows that are clean at first sight, and the mask of the rows that were not."""

    events: pl.DataFrame  # user, app (as in the file), ts, seconds, line
    rest: pl.Series  # True for rows ``validate`` must look at


def quick_events(raw: pl.DataFrame, *, now: int) -> Quick:
    """Pick the rows that are clean without any text clean-up, in one cheap pass.

    A row is quick when its user and app are present, its timestamp is in the
    chunk's main spelling and not in the future, and its seconds are empty or whole
    digits within a day. Every quick row is accepted by ``validate`` with the very
    same time and seconds (the same parser, and whole digits read alike as integer
    or float); user and app stay as written, for the caller to map spelling by
    spelling (``strip`` and ``lower`` cost more per row than the whole check). The
    others (``rest``) go through ``validate``, which rejects or accepts them.
    """
    if "timestamp" not in raw.columns or "user" not in raw.columns or "app" not in raw.columns:
        return Quick(
            events=pl.DataFrame(
                schema={
                    "user": pl.String,
                    "app": pl.String,
                    "ts": pl.Int64,
                    "seconds": pl.Int64,
                    "line": pl.Int64,
                }
            ),
            rest=pl.Series("rest", [True] * raw.height, dtype=pl.Boolean),
        )
    texts = raw.get_column("timestamp")
    ts = _to_epoch(texts, _primary_format(texts)).alias("ts")
    if "seconds" in raw.columns:
        secs = pl.col("seconds").cast(pl.Int64, strict=False)
        secs_ok = secs.is_between(0, MAX_SECONDS_PER_EVENT) | pl.col("seconds").is_null()
        secs_value = secs.fill_null(0)
    else:
        raw = raw.with_columns(seconds=pl.lit(None, dtype=pl.String))
        secs_ok, secs_value = pl.lit(True), pl.lit(0, dtype=pl.Int64)
    ok = (
        pl.col("user").is_not_null()
        & pl.col("app").is_not_null()
        & (pl.col("ts") <= now + FUTURE_SLACK_SECONDS)
        & secs_ok
    ).fill_null(False)
    frame = raw.select("user", "app", "seconds", "line", ts).select(
        "user", "app", "ts", "line", secs_value.alias("seconds"), ok.alias("_ok")
    )
    mask = frame.get_column("_ok")
    events = frame.select("user", "app", "ts", "seconds", "line")
    if not mask.all():  # a filter copies every column: only when some row needs it
        events = events.filter(mask)
    return Quick(events=events, rest=~mask)


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.len_bytes() == 0)


def validate(raw: pl.DataFrame, *, now: int) -> Validated:
    """Check every row at once; ``now`` (epoch seconds) bounds timestamps from the future."""
    for name in RAW_COLUMNS:
        if name not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    epoch_from_date = pl.col("date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    frame = raw.with_columns(
        _user=pl.col("user").str.strip_chars(),
        _app=pl.col("app").str.strip_chars(),
        _ts=pl.coalesce(
            _parse_timestamps(raw.get_column("timestamp")),
            epoch_from_date.cast(pl.Int64) * 86_400,
        ),
        _secs=pl.col("seconds").str.strip_chars().cast(pl.Float64, strict=False),
    )
    # One cheap test for every row (the common case is a clean row); the reasons are
    # worked out below for the failing rows only.
    secs_ok = pl.col("_secs").is_between(0, MAX_SECONDS_PER_EVENT) | (
        pl.col("_secs").is_null() & _blank("seconds")
    )
    # Any null in the test means "not clean": a row must never fall between both sides.
    clean = (
        ~_blank("_user") & ~_blank("_app") & (pl.col("_ts") <= now + FUTURE_SLACK_SECONDS) & secs_ok
    ).fill_null(False)
    frame = frame.with_columns(clean.alias("_clean"))
    events = frame.filter(pl.col("_clean")).select(
        pl.col("_user").str.to_lowercase().alias("user"),
        pl.col("_app").str.to_lowercase().alias("app_key"),
        pl.col("_app").alias("app_name"),
        pl.col("_ts").alias("ts"),
        pl.col("_secs").fill_null(0).round(0).cast(pl.Int64).alias("seconds"),
        pl.col("device"),
    )
    bad = frame.filter(~pl.col("_clean"))
    if bad.height == 0:
        return Validated(events=events, rejects=bad.select("line", reason=pl.lit("")))
    has_time = ~_blank("timestamp")
    rules: list[tuple[pl.Expr, pl.Expr]] = [
        (_blank("_user"), pl.lit("missing user")),
        (_blank("_app"), pl.lit("missing app")),
        (~has_time & _blank("date"), pl.lit("missing timestamp (or date)")),
        (pl.col("_ts").is_null() & has_time, pl.lit("unparsable timestamp ") + _show("timestamp")),
        (
            pl.col("_ts").is_null(),
            pl.lit("unparsable date ") + _show("date") + pl.lit(" (expected YYYY-MM-DD)"),
        ),
        (
            pl.col("_ts") > now + FUTURE_SLACK_SECONDS,
            pl.lit("timestamp is in the future ") + _show("timestamp"),
        ),
        (pl.col("_secs").is_null(), pl.lit("seconds is not a number ") + _show("seconds")),
        (pl.col("_secs") < 0, pl.lit("negative seconds ") + _show("seconds")),
        (pl.lit(True), pl.lit("seconds over one day ") + _show("seconds")),
    ]
    text: pl.Expr = pl.lit(None, dtype=pl.String)
    for test, message in reversed(rules):
        text = pl.when(test.fill_null(False)).then(message).otherwise(text)
    return Validated(events=events, rejects=bad.select(pl.col("line"), text.alias("reason")))
