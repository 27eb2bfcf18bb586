"""The normalized usage event, and the vectorized checks that make raw rows into events.

A raw frame has string columns ``user``, ``app``, ``timestamp``, ``date``,
``seconds``, ``device`` (any may be null) plus ``line`` (where the row came from).
``validate`` splits it into good events and rejected rows with a reason each.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

RAW_COLUMNS = ("user", "app", "timestamp", "date", "seconds", "device")
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


def _primary_format(texts: pl.Series) -> str:
    """The timestamp spelling of the first non-empty value (files use one spelling)."""
    sample = texts.drop_nulls().head(1)
    for fmt in _TIMESTAMP_FORMATS:
        if _to_epoch(sample, fmt).null_count() == 0:
            return fmt
    return _TIMESTAMP_FORMATS[0]


def _to_epoch(texts: pl.Series, fmt: str) -> pl.Series:
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


def validate(raw: pl.DataFrame, *, now: int) -> Validated:
    """Check every row at once; ``now`` (epoch seconds) bounds timestamps from the future."""
    for name in RAW_COLUMNS:
        if name not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    ts_text = pl.col("timestamp").str.strip_chars()
    date_text = pl.col("date").str.strip_chars()
    secs_text = pl.col("seconds").str.strip_chars()
    epoch_from_date = date_text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Int64) * 86_400

    frame = raw.with_columns(
        _user=pl.col("user").str.strip_chars(),
        _app=pl.col("app").str.strip_chars(),
        _ts=pl.coalesce(_parse_timestamps(raw.get_column("timestamp")), epoch_from_date),
        _secs=secs_text.cast(pl.Float64, strict=False),
    )
    has_time_text = ts_text.is_not_null() & (ts_text != "")
    has_date_text = date_text.is_not_null() & (date_text != "")
    # Rules in order; the first that matches a row is its reason. Only a small code is
    # computed for every row: the reason texts are built for the rejected rows alone.
    rules: list[tuple[pl.Expr, pl.Expr]] = [
        (pl.col("_user").is_null() | (pl.col("_user") == ""), pl.lit("missing user")),
        (pl.col("_app").is_null() | (pl.col("_app") == ""), pl.lit("missing app")),
        (~has_time_text & ~has_date_text, pl.lit("missing timestamp (or date)")),
        (
            pl.col("_ts").is_null() & has_time_text,
            pl.lit("unparsable timestamp ") + _show("timestamp"),
        ),
        (
            pl.col("_ts").is_null(),
            pl.lit("unparsable date ") + _show("date") + pl.lit(" (expected YYYY-MM-DD)"),
        ),
        (
            pl.col("_ts") > now + FUTURE_SLACK_SECONDS,
            pl.lit("timestamp is in the future ") + _show("timestamp"),
        ),
        (
            secs_text.is_not_null() & (secs_text != "") & pl.col("_secs").is_null(),
            pl.lit("seconds is not a number ") + _show("seconds"),
        ),
        (pl.col("_secs") < 0, pl.lit("negative seconds ") + _show("seconds")),
        (
            pl.col("_secs") > MAX_SECONDS_PER_EVENT,
            pl.lit("seconds over one day ") + _show("seconds"),
        ),
    ]
    # The common case is a clean row: one combined test for every row, and the
    # first-failing-rule reasons only for the rows that fail it.
    clean = ~pl.any_horizontal([test.fill_null(False) for test, _ in rules])
    frame = frame.with_columns(clean.alias("_clean"))
    bad = frame.filter(~pl.col("_clean"))
    text: pl.Expr = pl.lit(None, dtype=pl.String)
    for test, message in reversed(rules):
        text = pl.when(test.fill_null(False)).then(message).otherwise(text)
    rejects = bad.select(pl.col("line"), text.alias("reason"))
    events = frame.filter(pl.col("_clean")).select(
        pl.col("_user").str.to_lowercase().alias("user"),
        pl.col("_app").str.to_lowercase().alias("app_key"),
        pl.col("_app").alias("app_name"),
        pl.col("_ts").alias("ts"),
        pl.col("_secs").fill_null(0).round(0).cast(pl.Int64).alias("seconds"),
        pl.col("device"),
    )
    return Validated(events=events, rejects=rejects)
