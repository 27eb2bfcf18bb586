"""Usage upload over HTTP: spool the body within a size limit, then import it as a file.

The body is streamed to a temporary file and counted as it arrives, so an oversized
upload is refused (413) as soon as it crosses the limit, without being held in
memory. The file then goes through ``import_usage_file``, the same path as
``reclaim usage import``: one transaction, SHA-256 deduplication, bad rows reported
and good rows kept. A JSON array is first rewritten as NDJSON, one element per line,
so that a row number in an error is the element's position in the array.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reclaim.bootstrap import Context
from reclaim.services.usage_import import import_usage_file
from reclaim.usage_sources.files import FileFormatError
from reclaim.web.problems import Problem

#: Media type → how the body is read.
MEDIA_TYPES = {
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json": "json",
}


def body_format(content_type: str | None) -> str:
    """csv, ndjson or json from the Content-Type; 415 for anything else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = MEDIA_TYPES.get(media)
    if fmt is None:
        raise Problem(
            415,
            "Send usage as text/csv, application/x-ndjson or application/json "
            f"(a JSON array); got {media or 'no Content-Type'}.",
            kind="unsupported-media-type",
        )
    return fmt


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        f"The upload is larger than the limit of {limit >> 20} MiB; split it into "
        "several requests (each is imported on its own).",
        kind="too-large",
        limit_bytes=limit,
    )


async def spool(
    chunks: AsyncIterator[bytes], dest: Path, *, limit: int, declared: str | None
) -> tuple[int, str]:
    """Write the body to ``dest``; returns (bytes, SHA-256). 413 past ``limit`` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)  # refused before a single byte is read
    size = 0
    digest = hashlib.sha256()
    with dest.open("wb") as fh:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            digest.update(chunk)
            fh.write(chunk)
    return size, digest.hexdigest()


_WS = re.compile(r"[ \t\n\r]*")


def _iter_array(text: str) -> Iterator[Any]:
    """The elements of a JSON array, decoded one at a time.

    ``json.loads`` of the whole body would build every element at once: a 64 MiB body
    of tiny objects costs gigabytes as Python objects. Decoding element by element
    keeps memory at the text plus one element. ValueError if it is not an array.
    """
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] != "[":
        raise ValueError("a JSON body must be an array of usage objects")
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            item, pos = decoder.raw_decode(text, pos)
            yield item
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos : pos + 1] == ",":
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if text[pos : pos + 1] == "]":
                pos += 1
                break
            raise ValueError(f"expected ',' or ']' at character {pos}")
    if _WS.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise ValueError(f"unexpected data after the array at character {pos}")


def json_array_to_ndjson(src: Path, dest: Path) -> dict[int, str]:
    """Rewrite a JSON array as NDJSON, one element per line (line n = element n).

    An element that is not an object is written as it is, and the importer rejects it
    and counts it like any bad row. Only when such elements come *first* are they
    written as blank lines (the NDJSON reader refuses a file whose first record is not
    an object) and returned here as errors for their rows. Nothing is written to
    ``dest`` unless the whole body is a valid array: a broken body imports nothing.
    """
    errors: dict[int, str] = {}
    try:
        text = src.read_bytes().decode("utf-8-sig")
        with dest.open("w", encoding="utf-8") as out:
            for row, line in enumerate(_row_lines(_iter_array(text)), start=1):
                if line is None:
                    errors[row] = "not a JSON object"
                else:
                    out.write(line)
                out.write("\n")
    except (ValueError, UnicodeDecodeError) as exc:
        dest.unlink(missing_ok=True)
        raise Problem(
            400, f"The body is not a valid JSON array ({str(exc)[:100]}).", kind="bad-format"
        ) from None
    return errors


def _row_lines(items: Iterator[Any]) -> Iterator[str | None]:
    """Each element as one NDJSON line; None for a leading non-object (see above)."""
    seen_object = False
    for item in items:
        if isinstance(item, dict) or seen_object:
            seen_object = True
            yield json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        else:
            yield None


@dataclass
class UploadResult:
    """What the API answers for an upload."""

    status: str  # imported | duplicate
    format: str
    source: str
    sha256: str
    rows_accepted: int = 0
    rows_rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_truncated: bool = False
    previous_import: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The response body."""
        return {
            "status": self.status,
            "format": self.format,
            "source": self.source,
            "sha256": self.sha256,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "errors": self.errors,
            "errors_truncated": self.errors_truncated,
            "previous_import": self.previous_import,
        }


class Upload:
    """A spooled upload in its own temporary folder; use as a context manager."""

    def __init__(self, ctx: Context, *, fmt: str, now: dt.datetime) -> None:
        incoming = ctx.imports_dir() / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        self.ctx = ctx
        self.fmt = fmt
        self.now = now
        self.folder = Path(tempfile.mkdtemp(prefix="upload-", dir=incoming))
        ext = "csv" if fmt == "csv" else "ndjson" if fmt == "ndjson" else "json"
        self.path = self.folder / f"api-upload-{now:%Y%m%dT%H%M%S}.{ext}"

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def run_import(self, *, source: str, shown: int) -> UploadResult:
        """Import the spooled body (blocking: call it from a worker thread)."""
        path, own_errors = self.path, {}
        if self.fmt == "json":
            path = self.path.with_suffix(".ndjson")
            own_errors = json_array_to_ndjson(self.path, path)
        try:
            report = import_usage_file(
                self.ctx.engine,
                path,
                now=self.now,
                fmt="csv" if self.fmt == "csv" else "ndjson",
                source=source,
                report_dir=self.ctx.imports_dir(),
            )
        except FileFormatError as exc:
            raise Problem(
                400,
                _public_message(str(exc), path) + " Nothing was imported.",
                kind="bad-format",
            ) from None
        result = UploadResult(
            status=report.status,
            format=self.fmt,
            source=source,
            sha256=report.sha256,
            previous_import=report.previous_import,
        )
        if report.status != "imported":
            return result
        errors = {**_row_errors(report.rejects, path), **own_errors}
        result.rows_accepted = report.rows_accepted
        result.rows_rejected = report.rows_rejected + len(own_errors)
        result.errors = [{"row": r, "reason": errors[r]} for r in sorted(errors)][:shown]
        result.errors_truncated = result.rows_rejected > len(result.errors)
        return result


def _row_errors(rejects: list[str], path: Path) -> dict[int, str]:
    """``FILE:LINE: reason`` lines → {line: reason}, without our file paths."""
    prefix = f"{path}:"
    out: dict[int, str] = {}
    for text in rejects:
        line, _, reason = text.removeprefix(prefix).partition(": ")
        if line.isdigit():
            out[int(line)] = reason
    return out


def _public_message(message: str, path: Path) -> str:
    """A format error with the server's paths and the CLI's hints replaced."""
    return (
        message.replace(str(path), "body")
        .replace("use --format ndjson", "send it as application/x-ndjson")
        .replace("use --format csv", "send it as text/csv")
    )
