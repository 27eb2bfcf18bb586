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
from typing import Any

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


# -- osquery result logs (bench/ingest.py --format osquery) ------------------------------

OSQUERY_DOMAIN_SID = "S-1-5-21-1004336348-1177238915-682003330"
OSQUERY_EXES = [
    r"C:\Program Files\Microsoft Office\root\Office16\VISIO.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\WINPROJ.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\POWERPNT.EXE",
    r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
    r"C:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe",
    r"C:\Program Files\Tableau\Tableau 2026.1\bin\tableau.exe",
    r"C:\Program Files\TechSmith\Snagit 2026\SnagitCapture.exe",
    r"C:\Program Files\MATLAB\R2026a\bin\matlab.exe",
    r"C:\Program Files\Autodesk\AutoCAD 2026\acad.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files\Mozilla Firefox\firefox.exe",
    r"C:\Program Files\Notepad++\notepad++.exe",
    r"C:\Users\Public\Desktop\Zoom.lnk",
    r"C:\Windows\System32\mstsc.exe",
    r"C:\Windows\explorer.exe",
    r"C:\Windows\System32\cmd.exe",
    r"C:\Program Files\JetBrains\PyCharm 2026.2\bin\pycharm64.exe",
    r"C:\Program Files\Microsoft VS Code\Code.exe",
]
# Share of lines per kind: userassist (event format), prefetch (event), heartbeat
# (snapshot, one row), batched userassist (diffResults, 2 added + 1 removed), and lines
# of some other query in the same log (skipped by Reclaim).
OSQUERY_MIX = {
    "userassist": 0.45,
    "prefetch": 0.2,
    "heartbeat": 0.25,
    "batch": 0.05,
    "other": 0.05,
}
OSQUERY_APPS_PER_DEVICE = 6  # programs a device's user runs, drawn by popularity


def _fmt(template: str, *values: pl.Expr) -> pl.Expr:
    """``template`` with each ``{}`` replaced by the next value (JSON braces stay literal)."""
    pieces = template.split("{}")
    assert len(pieces) == len(values) + 1, template
    parts: list[pl.Expr] = [pl.lit(pieces[0])]
    for value, piece in zip(values, pieces[1:], strict=True):
        parts += [value.cast(pl.String), pl.lit(piece)]
    return pl.concat_str(parts)


def _json_path(col: str) -> pl.Expr:
    return pl.col(col).str.replace_all("\\", "\\\\", literal=True)


def _osquery_chunk(
    rng: np.random.Generator, device_apps: np.ndarray, *, lines: int, start: int, span: int
) -> pl.DataFrame:
    """One chunk of result lines in time order (a column ``line`` of JSON text)."""
    at = np.sort(start + rng.integers(0, span, size=lines))
    device = rng.integers(0, len(device_apps), size=lines)
    kind = rng.choice(len(OSQUERY_MIX), size=lines, p=list(OSQUERY_MIX.values()))
    exe = device_apps[device, rng.integers(0, OSQUERY_APPS_PER_DEVICE, size=lines)]
    # 60% of app rows carry a fresh last-used time (a new run); the others repeat the
    # device's last run of that app that day (what snapshots and re-logs do).
    fresh = rng.random(lines) < 0.6
    day_start = at - at % 86_400
    repeat_at = day_start + (device * 7919 + exe * 104_729) % 28_800 + 7 * 3600
    # A run is seen at the 5-minute mark before the line: never later than the line, and
    # never earlier than what the same device logged before (last-used times only grow).
    last = np.where(fresh | (repeat_at > at), at - at % 300, repeat_at)
    frame = pl.DataFrame(
        {
            "at": at,
            "device": device,
            "kind": kind,
            "path": pl.Series(OSQUERY_EXES).gather(exe),
            "last": last,
            "count": rng.integers(1, 500, size=lines),
        }
    ).with_columns(
        host=pl.lit("WS-") + pl.col("device").cast(pl.String).str.zfill(5),
        sid=pl.lit(OSQUERY_DOMAIN_SID + "-") + (pl.col("device") + 1000).cast(pl.String),
        cal=(pl.col("at") * 1_000_000)
        .cast(pl.Datetime("us", "UTC"))
        .dt.strftime("%a %b %e %H:%M:%S %Y UTC"),
        exe=pl.col("path").str.split("\\").list.last(),
        jpath=_json_path("path"),
    )
    head = (
        '{"name":"pack_reclaim-usage_QUERY","hostIdentifier":"{}","calendarTime":"{}",'
        '"unixTime":"{}","epoch":"0","counter":"{}","numerics":false,'
        '"decorations":{"host_uuid":"{}","username":"{}"},'
    )
    uuid = pl.lit("4C4C4544-0042-3510-8048-") + pl.col("device").cast(pl.String).str.zfill(12)
    user = pl.lit("u") + pl.col("device").cast(pl.String)
    h = [pl.col("host"), pl.col("cal"), pl.col("at"), pl.col("count"), uuid, user]
    userassist = _fmt(
        head.replace("QUERY", "reclaim_userassist")
        + '"columns":{"count":"{}","last_execution_time":"{}","path":"{}","sid":"{}"},'
        '"action":"added"}',
        *h,
        pl.col("count"),
        pl.col("last"),
        pl.col("jpath"),
        pl.col("sid"),
    )
    prefetch = _fmt(
        head.replace("QUERY", "reclaim_prefetch")
        + '"columns":{"filename":"{}","last_run_time":"{}","path":"C:\\\\Windows\\\\Prefetch\\\\{}'
        '-1A2B3C4D.pf","run_count":"{}","sid":"{}"},"action":"added"}',
        *h,
        pl.col("exe"),
        pl.col("last"),
        pl.col("exe"),
        pl.col("count"),
        pl.col("sid"),
    )
    heartbeat = _fmt(
        head.replace("QUERY", "reclaim_heartbeat_windows")
        + '"snapshot":[{"sid":"{}","type":"active","user":"u{}"}],"action":"snapshot"}',
        *h,
        pl.col("sid"),
        pl.col("device"),
    )
    row = '{"count":"{}","last_execution_time":"{}","path":"{}","sid":"{}"}'
    batch = _fmt(
        head.replace("QUERY", "reclaim_userassist")
        + '"diffResults":{"added":['
        + row
        + ","
        + row
        + '],"removed":['
        + row
        + "]}}",
        *h,
        *(pl.col("count"), pl.col("last"), pl.col("jpath"), pl.col("sid")),
        *(pl.col("count"), pl.col("last") - 60, pl.col("jpath"), pl.col("sid")),
        *(pl.col("count"), pl.col("last") - 86_400, pl.col("jpath"), pl.col("sid")),
    )
    other = _fmt(
        head.replace("QUERY", "it_compliance_disk_encryption")
        + '"columns":{"encrypted":"1","name":"C:"},"action":"added"}',
        *h,
    )
    kinds = (userassist, prefetch, heartbeat, batch, other)
    expr: Any = pl.when(pl.col("kind") == 0).then(kinds[0])
    for i, k in enumerate(kinds[1:], start=1):
        expr = expr.when(pl.col("kind") == i).then(k)
    return frame.select(expr.alias("line"))


def write_osquery_log(
    path: Path,
    *,
    lines: int,
    devices: int,
    days: int = 30,
    seed: int = 11,
    end: dt.date = dt.date(2026, 11, 1),
    chunk: int = 1_000_000,
) -> Path:
    """Write an osquery results log of ``lines`` lines from ``devices`` Windows devices
    (one user each, SID ``OSQUERY_DOMAIN_SID-(1000 + device)``), over ``days`` days."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, len(OSQUERY_EXES) + 1) ** 0.8
    device_apps = rng.choice(
        len(OSQUERY_EXES), size=(devices, OSQUERY_APPS_PER_DEVICE), p=popularity / popularity.sum()
    )
    start = int(dt.datetime.combine(end - dt.timedelta(days=days), dt.time(), dt.UTC).timestamp())
    span = days * 86_400
    with path.open("wb") as out:
        for i in range(0, lines, chunk):
            n = min(chunk, lines - i)
            part_start = start + span * i // lines
            part_span = max(1, span * n // lines)
            frame = _osquery_chunk(rng, device_apps, lines=n, start=part_start, span=part_span)
            out.write(("\n".join(frame.get_column("line").to_list()) + "\n").encode())
    return path


def write_osquery_identities(path: Path, *, devices: int) -> Path:
    """The identities CSV mapping each generated device user's SID to a UPN."""
    ids = np.arange(devices)
    pl.DataFrame(
        {
            "upn": [f"user{i}@corp.example.test" for i in ids],
            "sid": [f"{OSQUERY_DOMAIN_SID}-{i + 1000}" for i in ids],
        }
    ).write_csv(path)
    return path
