"""Following a growing osquery result log: ``reclaim usage watch --format osquery PATH``.

Each poll reads the complete lines added since the last one, in batches; each batch is
one transaction that writes its usage *and* the new read position (``source_state``,
key ``watch:<path>``). A crash before the commit leaves both untouched, so the lines
are read again after a restart and nothing is counted twice; a crash after it has
nothing left to redo. (The SHA-256 rule of whole-file imports cannot apply to a file
that is still growing; this is its replacement. Repeated last-used times are also
dropped by the roll-up writer, a second line of defence.)

Rotation: the position is kept with the file's device and inode and a hash of its first
bytes. When the path names another file (osquery's ``--logger_rotate``, logrotate's
rename), the rest of the previous file is read first: through the handle still open,
or after a restart by finding the inode among the path's siblings. A file that shrank,
or whose first bytes changed (``copytruncate``), is read again from the start. A line
still being written (no line end yet) waits for the next poll.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from reclaim.services.osquery_import import OsqueryBatches
from reclaim.services.usage_writes import WriteCounts
from reclaim.store.source_state import get_state, put_state
from reclaim.usage_sources.app_aliases import AppMatcher

log = logging.getLogger("reclaim.usage.watch")
HEAD_BYTES = 256  # how much of a file's start identifies it
DEFAULT_BATCH_BYTES = 4 << 20  # small transactions: a restart redoes at most this much
MIN_INTERVAL, MAX_INTERVAL = 0.2, 300.0


@dataclass
class Position:
    """Where reading stopped in which file."""

    device: int
    inode: int
    offset: int = 0
    line: int = 1  # number of the line that starts at ``offset``
    head: str = ""  # sha256 of the first ``head_len`` bytes
    head_len: int = 0

    def as_dict(self) -> dict[str, int | str]:
        """JSON-able form, as stored."""
        return dict(self.__dict__)


@dataclass
class PollResult:
    """What one poll did."""

    lines: int = 0
    batches: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    notes: list[str] = field(default_factory=list)  # rotations, truncations, retries


class OsqueryWatcher:
    """Follows one log file into one usage source (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        path: Path,
        *,
        source: str,
        apps: AppMatcher,
        rejects_file: Path,
        clock: Callable[[], float] = time.time,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.engine, self.path, self.clock = engine, path, clock
        self.key = f"watch:{path.resolve()}"
        self.batches = OsqueryBatches(source=source, apps=apps, now_s=int(clock()))
        self.rejects_file, self.batch_bytes = rejects_file, batch_bytes
        self.position: Position | None = None
        self._loaded = False
        self._handle: BinaryIO | None = None  # the file being read, kept open across polls

    def poll(self, stop: threading.Event | None = None) -> PollResult:
        """Read and store everything complete that arrived; stop early if ``stop`` is set."""
        result = PollResult()
        if not self._loaded:
            self._load()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            st = None  # between rotation and the new file: drain what we hold
        pos = self.position
        if pos is not None and (st is None or (st.st_dev, st.st_ino) != (pos.device, pos.inode)):
            self._drain_previous(pos, result, stop)
            pos = self.position = None
        if st is None:
            return result
        if pos is not None and self._replaced(pos, st.st_size):
            result.notes.append(
                f"{self.path}: truncated or replaced in place; reading it again from the start"
            )
            pos = None
        if pos is None:
            self._close()
            pos = self.position = Position(device=st.st_dev, inode=st.st_ino)
        handle = self._open(pos)
        if handle is None:
            return result
        self._read(handle, pos, self.path, result, stop)
        return result

    def run(self, stop: threading.Event, *, interval: float = 2.0) -> None:
        """Poll until ``stop`` is set (the CLI sets it on SIGINT / SIGTERM)."""
        interval = min(max(interval, MIN_INTERVAL), MAX_INTERVAL)
        while not stop.is_set():
            result = self.poll(stop)
            for note in result.notes:
                log.warning("%s", note)
            stop.wait(interval)  # a stop request ends the wait at once
        self._close()

    # -- reading ----------------------------------------------------------------------

    def _read(
        self,
        handle: BinaryIO,
        pos: Position,
        name: Path,
        result: PollResult,
        stop: threading.Event | None,
        *,
        final: bool = False,
    ) -> None:
        """Store complete lines from ``pos.offset`` on, a batch per transaction.

        ``final``: the file will not grow any more (rotated away), so a last line
        without a line end is read as what it is, an incomplete record.
        """
        while stop is None or not stop.is_set():
            handle.seek(pos.offset)
            data = handle.read(self.batch_bytes)
            if not data:
                return
            cut = data.rfind(b"\n")
            while cut < 0:  # one line longer than a batch (a big snapshot): read on
                more = handle.read(self.batch_bytes)
                if not more:
                    break
                cut = more.find(b"\n")
                cut = cut + len(data) if cut >= 0 else -1
                data += more
            if cut < 0 and not final:
                return  # a line still being written: wait for its end
            block = data[: cut + 1] if cut >= 0 else data
            if not self._store(block, pos, name, result, incomplete_tail=cut < 0):
                return

    def _store(
        self, block: bytes, pos: Position, name: Path, result: PollResult, *, incomplete_tail: bool
    ) -> bool:
        """One batch in one transaction, position included; False if it must wait."""
        now_s = int(self.clock())
        self.batches.at(now_s)
        after = Position(**pos.as_dict())  # type: ignore[arg-type]
        after.offset += len(block)
        after.line += block.count(b"\n")
        if pos.head_len < HEAD_BYTES and pos.offset == 0:
            after.head, after.head_len = _digest(block[:HEAD_BYTES]), min(len(block), HEAD_BYTES)
        try:
            with self.engine.begin() as conn:
                counts, rejects, lines = self.batches.process(
                    conn, block, pos.line, where=str(name), incomplete_tail=incomplete_tail
                )
                self.batches.writer.finish(conn, counts)
                src = self.batches.writer.source_id(conn)
                put_state(conn, src, self.key, after.as_dict(), now=now_s)
        except OperationalError as exc:  # locked or unreachable database: retry next poll
            self.batches.forget()
            result.notes.append(f"{name}: could not store a batch ({exc.orig}); will retry")
            return False
        pos.__dict__.update(after.__dict__)
        result.lines += lines
        result.batches += 1
        result.counts.add(counts)
        if rejects:
            self.rejects_file.parent.mkdir(parents=True, exist_ok=True)
            with self.rejects_file.open("a", encoding="utf-8") as out:
                out.writelines(f"{name}:{line}: {reason}\n" for line, reason in rejects)
        return True

    # -- files ------------------------------------------------------------------------

    def _load(self) -> None:
        with self.engine.begin() as conn:
            src = self.batches.writer.source_id(conn)
            saved = get_state(conn, src, self.key)
        self.position = Position(**saved) if saved else None
        self._loaded = True

    def _open(self, pos: Position) -> BinaryIO | None:
        if self._handle is None:
            try:
                handle = self.path.open("rb")
            except FileNotFoundError:
                return None
            st = os.fstat(handle.fileno())
            if (st.st_dev, st.st_ino) != (pos.device, pos.inode):  # rotated in between
                handle.close()
                return None
            self._handle = handle
        return self._handle

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _replaced(self, pos: Position, size: int) -> bool:
        """Same inode, but shrunk or with other first bytes: rewritten in place."""
        if size < pos.offset:
            return True
        if not pos.head_len:
            return False
        with self.path.open("rb") as fh:
            return _digest(fh.read(pos.head_len)) != pos.head

    def _drain_previous(
        self, pos: Position, result: PollResult, stop: threading.Event | None
    ) -> None:
        """Finish the file the path used to name: through the open handle, else by inode."""
        handle, name = self._handle, self.path
        self._handle = None
        if handle is None:
            found = _find_inode(self.path, pos)
            if found is None:
                result.notes.append(
                    f"{self.path}: rotated while not watched; the rest of the previous file "
                    f"(after line {pos.line - 1}) was not found and is skipped"
                )
                return
            handle, name = found.open("rb"), found
        try:
            result.notes.append(f"{self.path}: rotated; finishing the previous file ({name})")
            self._read(handle, pos, name, result, stop, final=True)
        finally:
            handle.close()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _find_inode(path: Path, pos: Position) -> Path | None:
    """A sibling of ``path`` (``osqueryd.results.log.1``, ``….log-20261001``) that is
    the file last read, found by device and inode."""
    for candidate in sorted(path.parent.glob(path.name + "*")):
        try:
            st = candidate.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (pos.device, pos.inode):
            return candidate
    return None
