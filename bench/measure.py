"""Measuring helpers shared by the benchmarks."""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import uuid
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (VmHWM).

    Not ``ru_maxrss``: Linux carries that high-water mark across fork and exec, so a
    benchmark child would report its parent's peak (the data generator's) when that
    is higher.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Start this process's peak RSS (VmHWM) over from its current RSS, so that
    :func:`peak_rss_mb` tells the peak of what runs next. False when the kernel does
    not allow it (``/proc/self/clear_refs`` missing or read-only)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds() -> tuple[float, float]:
    """(this process's user+system CPU seconds, its finished children's)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


ROOT = Path(__file__).resolve().parent.parent


def private_postgres(workdir: Path) -> tuple[str, Path]:
    """Start a private PostgreSQL under ``workdir`` (scripts/pg.sh); (admin URL, folder).
    Stop it with ``scripts/pg.sh stop FOLDER``."""
    folder = workdir / "pg"
    port = 55000 + os.getpid() % 900
    os.chmod(workdir, 0o755)  # as root, PostgreSQL runs as 'postgres' and must reach it
    url = subprocess.run(
        ["bash", "scripts/pg.sh", "start", str(folder), str(port)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return url, folder


def fresh_pg_database(admin_url: str, prefix: str = "bench") -> str:
    """Create an empty database on the server of ``admin_url``; its URL."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin_url.rsplit("/", 1)[0] + "/" + name


README = Path(__file__).resolve().parent / "README.md"


def stamp() -> str:
    """When and where figures were taken: "2026-11-28, 2 cores"."""
    return f"{dt.date.today()}, {os.cpu_count()} cores"


def write_readme_block(name: str, heading: str, block: str) -> None:
    """Put ``block`` (the command line and its figures) between ``<!-- name:begin -->``
    and ``<!-- name:end -->`` in bench/README.md; the section's prose around the
    markers stays. Without the markers yet, a new section ``## heading`` at the end."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    marked = f"{begin}\n{block}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + marked + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n{marked}\n"
    README.write_text(text)
