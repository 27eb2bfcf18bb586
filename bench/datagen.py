"""Generated usage data for benchmarks: realistic shape, fixed seed, vectorized.

Shape (documented in bench/README.md): each user holds a handful of apps drawn by
popularity; each (user, app) pair is active on some days up to a per-pair "last
active" day (a share of pairs stop early: the unused licenses); on an active day an
app produces a few events (geometric, mean ~3), during working hours, with a
log-normal duration. Events are written in time order, as exports arrive.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

APP_NAMES = [
    "VISIO.EXE",
    "WINPROJ.EXE",
    "Acrobat.exe",
    "AutoCAD",
    "Photoshop.exe",
    "Illustrator.exe",
    "Tableau.exe",
    "SnagIt32.exe",
    "MATLAB.exe",
    "SPSS.exe",
    "Zoom",
    "Slack",
    "Miro",
    "Figma",
    "Jira",
    "Confluence",
    "Salesforce",
    "Power BI Desktop",
    "Teams",
    "Outlook",
    "EXCEL.EXE",
    "WINWORD.EXE",
    "POWERPNT.EXE",
    "OneNote",
    "Camtasia",
    "SolidWorks",
    "Revit",
    "SketchUp",
    "Lucidchart",
    "Smartsheet",
    "DocuSign",
    "Zendesk",
    "HubSpot",
    "Notion",
    "Asana",
    "Monday",
    "Postman",
    "PyCharm",
    "IntelliJ IDEA",
    "DataGrip",
]


def generate_events(
    *,
    events: int,
    users: int,
    apps: int = 40,
    days: int = 90,
    seed: int = 7,
    end: dt.date = dt.date(2026, 11, 1),
) -> pl.DataFrame:
    """A frame of ~``events`` usage events: user, app, timestamp, seconds, device."""
    rng = np.random.default_rng(seed)
    apps = min(apps, len(APP_NAMES))
    per_user = rng.integers(3, 9, size=users)  # apps held per user
    pair_user = np.repeat(np.arange(users), per_user)
    popularity = 1.0 / np.arange(1, apps + 1) ** 0.8
    pair_app = rng.choice(apps, size=len(pair_user), p=popularity / popularity.sum())
    # 25% of pairs go quiet at some point in the window: those are the unused seats.
    last_day = np.where(
        rng.random(len(pair_user)) < 0.25, rng.integers(0, days, size=len(pair_user)), days - 1
    )
    weight = rng.lognormal(0.0, 1.0, size=len(pair_user))
    mean_events_per_day = 3.0
    pair_days = int(events / mean_events_per_day)
    pick = rng.choice(len(pair_user), size=pair_days, p=weight / weight.sum())
    day = (rng.random(pair_days) * (last_day[pick] + 1)).astype(np.int64)
    count = rng.geometric(1.0 / mean_events_per_day, size=pair_days)
    total = int(count.sum())
    if total > events:  # trim to the exact size asked for
        cum = np.cumsum(count)
        keep = np.searchsorted(cum, events)
        count = count[: keep + 1]
        count[-1] -= int(cum[keep] - events)
        pick, day = pick[: keep + 1], day[: keep + 1]
    idx = np.repeat(np.arange(len(pick)), count)
    start = int(
        dt.datetime.combine(end - dt.timedelta(days=days), dt.time(), tzinfo=dt.UTC).timestamp()
    )
    ts = start + day[idx] * 86_400 + rng.integers(7 * 3600, 19 * 3600, size=len(idx))
    order = np.argsort(ts, kind="stable")
    u = pair_user[pick][idx][order]
    a = pair_app[pick][idx][order]
    secs = np.minimum(rng.lognormal(6.0, 1.2, size=len(idx)).astype(np.int64), 86_400)
    return pl.DataFrame(
        {
            "user": pl.Series(u),
            "app": pl.Series(a),
            "ts": pl.Series(ts[order]),
            "seconds": pl.Series(secs),
        }
    ).select(
        (pl.lit("user") + pl.col("user").cast(pl.String) + pl.lit("@corp.example.test")).alias(
            "user"
        ),
        pl.col("app").replace_strict(list(range(apps)), APP_NAMES[:apps]).alias("app"),
        (pl.col("ts") * 1_000_000)
        .cast(pl.Datetime("us", "UTC"))
        .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        .alias("timestamp"),
        pl.col("seconds"),
        (pl.lit("PC-") + pl.col("user").cast(pl.String)).alias("device"),
    )


def write_usage_file(
    path: Path, *, events: int, users: int, fmt: str = "csv", seed: int = 7
) -> Path:
    """Generate and write a usage file (csv or ndjson); returns the path."""
    frame = generate_events(events=events, users=users, seed=seed)
    if fmt == "ndjson":
        frame.write_ndjson(path)
    else:
        frame.write_csv(path)
    return path


def main() -> None:
    """Command line: write a usage file of N events."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path", type=Path)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--format", choices=("csv", "ndjson"), default="csv")
    args = ap.parse_args()
    write_usage_file(args.path, events=args.events, users=args.users, fmt=args.format)
    print(f"wrote {args.path} ({args.path.stat().st_size / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
