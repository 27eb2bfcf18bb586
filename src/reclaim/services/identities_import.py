"""Importing identities from a CSV: ``upn,sid[,entra_id,sam]`` per line.

Until the Entra ID / AD directory sync fills the ``identities`` table, this is how
Reclaim learns which SID (and Entra object id, and account name) belongs to whom, so
that endpoint telemetry keyed by SID lands on the right person. The header is
optional; with one, columns may come in any order (``upn``, ``sid``, ``entra_id``,
``sam``). One transaction; bad lines are reported as ``FILE:LINE: reason`` and the
good ones kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from reclaim.domain.names import user_key
from reclaim.store.identities import Identity, upsert_identities
from reclaim.usage_sources.identity import account_name, normalize_sid

COLUMNS = ("upn", "sid", "entra_id", "sam")


class IdentitiesFileError(ValueError):
    """The file cannot be read as an identities CSV; nothing was imported."""


@dataclass
class IdentitiesReport:
    """What an identities import did."""

    file: str
    written: int = 0
    rejected: list[str] = field(default_factory=list)


def _cells(row: list[str], names: tuple[str, ...]) -> dict[str, str]:
    return {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names)}


def parse_identities(path: Path) -> tuple[list[Identity], list[str]]:
    """Good rows and ``FILE:LINE: reason`` for bad ones (the last mention of a user wins)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise IdentitiesFileError(f"{path}: not UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    names: tuple[str, ...] = COLUMNS
    first = 1
    if rows and rows[0] and rows[0][0].strip().lower() in ("upn", "user"):
        header = tuple(c.strip().lower().replace("user", "upn") for c in rows[0])
        unknown = [c for c in header if c not in COLUMNS]
        if unknown or "upn" not in header:
            raise IdentitiesFileError(
                f"{path}:1: unknown column(s) {', '.join(unknown) or '(no upn)'}; "
                f"expected {','.join(COLUMNS)}"
            )
        names, rows, first = header, rows[1:], 2
    good: dict[str, Identity] = {}
    sid_owner: dict[str, str] = {}
    bad: list[str] = []
    for line, row in enumerate(rows, start=first):
        if not any(c.strip() for c in row):
            continue
        cell = _cells(row, names)
        upn = user_key(cell.get("upn", ""))
        problem = None
        sid = normalize_sid(cell["sid"]) if cell.get("sid") else None
        entra = cell.get("entra_id") or None
        if "@" not in upn:
            problem = f"not a UPN {cell.get('upn', '')[:60]!r}"
        elif cell.get("sid") and sid is None:
            problem = f"not a SID {cell['sid'][:60]!r}"
        elif entra is not None and not _is_guid(entra):
            problem = f"entra_id is not an object id {entra[:60]!r}"
        elif sid is not None and sid_owner.get(sid, upn) != upn:
            problem = f"SID {sid} is already given to {sid_owner[sid]} on an earlier line"
        elif not (sid or entra or cell.get("sam")):
            problem = "no sid, entra_id or sam to record"
        if problem:
            bad.append(f"{path}:{line}: {problem}")
            continue
        if sid:
            sid_owner[sid] = upn
        good[upn] = Identity(
            upn=upn,
            on_prem_sid=sid,
            entra_object_id=entra.lower() if entra else None,
            sam_account_name=account_name(cell["sam"]) if cell.get("sam") else None,
        )
    return list(good.values()), bad


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def import_identities(engine: Engine, path: Path, *, now: dt.datetime) -> IdentitiesReport:
    """Read ``path`` and store its identities in one transaction."""
    good, bad = parse_identities(path)
    report = IdentitiesReport(file=str(path), rejected=bad)
    with engine.begin() as conn:
        report.written = upsert_identities(conn, good, source="file", now=int(now.timestamp()))
    return report
