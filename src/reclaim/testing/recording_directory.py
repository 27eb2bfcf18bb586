"""A fake of Reclaim's own directory port that records every call.

:class:`RecordingDirectory` implements :class:`~reclaim.workflows.directory.DirectoryPort`
(our protocol, not a vendor's): membership starts from the given members (or "everyone
is a member"), a removal takes the person out, and every write is recorded. With
``log_path`` each write is one JSON line appended with ``O_APPEND`` (atomic for lines
this short), so several worker *processes* share one record and one membership state:
tests count side effects per case across processes.

Failures can be scripted per user: ``script={"ann@x": [Transient("busy"), None]}``
raises on the first removal and succeeds on the second.

``python -m reclaim.testing.recording_directory --config FILE --log FILE`` runs a
worker pass (``reclaim worker --once``) with this fake as every policy's directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reclaim.connectors.errors import AlreadyDone, ConnectorError
from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy
from reclaim.workflows.directory import DirectoryPort, RemoveOutcome


class RecordingDirectory:
    """Membership per policy, writes recorded (see the module docstring)."""

    name = "recording"

    def __init__(
        self,
        members: Mapping[str, Iterable[str]] | None = None,
        *,
        log_path: Path | None = None,
        outcome: RemoveOutcome = RemoveOutcome.REMOVED,
        script: Mapping[str, list[ConnectorError | None]] | None = None,
    ) -> None:
        self.members = (
            None if members is None else {p: {user_key(u) for u in us} for p, us in members.items()}
        )
        self.log_path = log_path
        self.outcome = outcome
        self.script = {user_key(u): list(s) for u, s in (script or {}).items()}
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._read: list[dict[str, Any]] = []  # the shared log, parsed up to _offset
        self._offset = 0

    # -- the record ---------------------------------------------------------------------
    def _append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(entry)
            if self.log_path is not None:
                line = (json.dumps(entry, sort_keys=True) + "\n").encode()
                fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)

    def writes(self) -> list[dict[str, Any]]:
        """Every write so far, from all processes sharing ``log_path``."""
        if self.log_path is None:
            return list(self.calls)
        if not self.log_path.exists():
            return []
        with self._lock, self.log_path.open("rb") as fh:  # read only what is new
            fh.seek(self._offset)
            chunk = fh.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]
            self._offset += len(whole)
            self._read += [json.loads(line) for line in whole.splitlines() if line]
            return list(self._read)

    def removals(self) -> Counter[tuple[str, str]]:
        """How many removals were sent per (policy, user)."""
        return Counter((w["policy"], w["user"]) for w in self.writes() if w["action"] == "remove")

    def _removed(self, policy: str) -> set[str]:
        out: set[str] = set()
        for w in self.writes():
            if w["policy"] != policy or w.get("failed"):
                continue
            if w["action"] == "remove":
                out.add(w["user"])
            elif w["action"] == "add":
                out.discard(w["user"])
        return out

    # -- the port -----------------------------------------------------------------------
    def is_member(self, *, policy: Policy, user: str) -> bool:
        """Member unless removed (and listed in ``members``, when given)."""
        user = user_key(user)
        if self.members is not None and user not in self.members.get(policy.name, set()):
            return False
        return user not in self._removed(policy.name)

    def remove_member(self, *, policy: Policy, user: str, idempotency_key: str) -> RemoveOutcome:
        """Record the removal; scripted errors are raised (and recorded as failed)."""
        user = user_key(user)
        if not self.is_member(policy=policy, user=user):
            raise AlreadyDone(f"{user} is not a member of {policy.group.label()}")
        entry = {
            "action": "remove",
            "policy": policy.name,
            "user": user,
            "key": idempotency_key,
            "pid": os.getpid(),
            "at": dt.datetime.now(dt.UTC).isoformat(),
        }
        planned = self.script.get(user)
        error = planned.pop(0) if planned else None
        if error is not None:
            self._append({**entry, "failed": type(error).__name__})
            raise error
        self._append(entry)
        return self.outcome

    def add_member(self, *, policy: Policy, user: str, idempotency_key: str) -> None:
        """Record putting someone back."""
        self._append(
            {
                "action": "add",
                "policy": policy.name,
                "user": user_key(user),
                "key": idempotency_key,
                "pid": os.getpid(),
            }
        )


def _directories(directory: RecordingDirectory) -> Any:
    def pick(_policy: Policy) -> DirectoryPort:
        return directory

    return pick


def main(argv: list[str] | None = None) -> int:
    """One worker pass with a :class:`RecordingDirectory` logging to ``--log``."""
    from reclaim.bootstrap import open_context
    from reclaim.runner.worker import Worker

    ap = argparse.ArgumentParser(description="a worker pass against the recording directory")
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=10)
    args = ap.parse_args(argv)
    ctx = open_context(args.config, now=dt.datetime.now(dt.UTC))
    directory = RecordingDirectory(log_path=args.log)
    worker = Worker(
        engine=ctx.engine,
        settings=ctx.settings,
        directories=_directories(directory),
        batch=args.batch,
    )
    stats = worker.run(once=True)
    print(json.dumps({"owner": worker.owner, "results": dict(stats.results())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
