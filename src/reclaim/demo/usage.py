"""The demo's usage events: what each person's devices reported, by persona.

Everyone who is not on leave reports everyday mail use (that is what tells Reclaim a
person was *observed*); each license holder's use of the product follows their persona.
Seasonal users work in quarterly bursts over the last year. Deterministic by seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

from reclaim.demo.catalog import BACKGROUND_APP, PRODUCTS, Product
from reclaim.demo.people import DemoOrg, Holding

WINDOW_DAYS = 90
Row = tuple[str, str, str, int, str]  # user, app, timestamp, seconds, device


def _workdays(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    d = start
    while d <= end:
        if d.weekday() < 5:
            yield d
        d += dt.timedelta(days=1)


def _at(day: dt.date, rng: random.Random) -> str:
    return f"{day.isoformat()}T{rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}:00Z"


def _device(upn: str) -> str:
    return "PC-" + upn.split("@")[0].split("_")[0].replace(".", "-").upper()[:12]


def _month_start(day: dt.date, months_back: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def _seasonal_days(today: dt.date) -> Iterator[dt.date]:
    """Quarterly bursts: the first three weeks of the months 2, 5, 8 and 11 months ago.

    The last burst ends at least five weeks before today, so the person looks unused
    by a 30-day rule; the pattern says the next burst starts next month.
    """
    for back in (11, 8, 5, 2):
        first = _month_start(today, back)
        yield from _workdays(first, first + dt.timedelta(days=19))


def _product_rows(
    holding: Holding,
    product: Product,
    *,
    today: dt.date,
    cut: dt.date,
    rng: random.Random,
) -> Iterator[Row]:
    upn, persona = holding.upn, holding.persona
    device = _device(upn)
    start = today - dt.timedelta(days=WINDOW_DAYS - 1)
    last = min(today - dt.timedelta(days=1), cut)
    if persona == "never":
        return
    if persona == "seasonal":
        days = [d for d in _seasonal_days(today) if d < cut and rng.random() < 0.7]
    elif persona == "stopped":
        stop = today - dt.timedelta(days=rng.randint(product.unused_days + 5, WINDOW_DAYS - 5))
        days = [d for d in _workdays(start, min(stop, last)) if rng.random() < 0.5]
    elif persona == "light":
        # A little use now and then, and once in the last two weeks: under the floor,
        # yet recent.
        recent = today - dt.timedelta(days=rng.randint(2, 14))
        days = [d for d in _workdays(start, last) if rng.random() < 0.02]
        days += [recent] if recent < cut else []
    else:  # steady, new
        days = [d for d in _workdays(max(start, holding.granted), last) if rng.random() < 0.6]
    light = persona == "light"
    for day in sorted(set(days)):
        seconds = rng.randint(60, 400) if light else rng.randint(900, 5400)
        yield (upn, rng.choice(product.apps), _at(day, rng), seconds, device)


def usage_rows(org: DemoOrg) -> Iterator[Row]:
    """Every usage event of the organization, person by person, then product by product."""
    rng = random.Random(org.seed + 1)
    today = org.today
    start = today - dt.timedelta(days=WINDOW_DAYS - 1)
    never = dt.date.max
    cut = {p.upn: p.on_leave_from or never for p in org.people}
    for person in org.people:
        device = _device(person.upn)
        for day in _workdays(start, today - dt.timedelta(days=1)):
            if day >= cut[person.upn]:
                break  # their laptop is in a drawer: no data at all, which is not "no use"
            yield (person.upn, BACKGROUND_APP, _at(day, rng), rng.randint(600, 7200), device)
    for product in PRODUCTS:
        for holding in org.holdings[product.name]:
            yield from _product_rows(holding, product, today=today, cut=cut[holding.upn], rng=rng)


def write_usage(org: DemoOrg, path: Path) -> int:
    """Write the usage CSV (the import's format); returns the number of events."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(("user", "app", "timestamp", "seconds", "device"))
        for row in usage_rows(org):
            out.writerow(row)
            count += 1
    return count
