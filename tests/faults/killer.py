"""``reclaim worker`` processes killed with SIGKILL at random points, and restarted.

A :class:`KillLoop` keeps one worker process running against a config file. The kill
points are drawn from a seeded RNG as progress marks (how many cases have got past
their removal): when the store shows that much progress, the loop waits a random few
milliseconds more, so the kill lands anywhere in a case's steps (before the write,
between the write and its record, inside a store transaction), then SIGKILLs the worker
by its PID and starts a new one. Workers run one unit at a time (``--concurrency 1``,
one unit per claim: a case, or a group of up to ``group_size`` removals, default 5), so
each kill strands at most ``group_size`` cases under a dead worker's lease; the marks
are drawn low enough to stay reachable all the same, and the test lets those leases
run out. (Several cases at once are covered by tests/integration/entra/
test_worker_concurrency.py: the same leases and write records make them safe.)
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class KillLoop:
    """See the module docstring. ``progress`` reads the store, ``goal`` is the progress
    a whole run makes (the kill marks fall below it), ``finished`` says when to stop."""

    config: Path
    progress: Callable[[], int]
    goal: int
    finished: Callable[[], bool]
    kills: int
    seed: int
    log_dir: Path
    group_size: int = 5  # removals a worker takes together (reclaim worker --group-size)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    killed: list[int] = field(default_factory=list)  # progress seen at each kill
    started: int = 0
    _proc: subprocess.Popen[bytes] | None = None

    def marks(self) -> list[int]:
        """The progress marks at which to kill, spread over the run (seeded)."""
        rng = random.Random(self.seed)
        # Each kill may strand a group under its lease: the marks stay below what the
        # live workers can reach without them.
        span = range(1, max(2, self.goal - 1 - self.kills * self.group_size))
        picks = sorted(rng.sample(span, min(self.kills, len(span))))
        return picks

    def start_worker(self) -> None:
        """A new ``reclaim worker`` process (one case per claim, short polls)."""
        self.started += 1
        log = (self.log_dir / f"worker-{self.started:02d}.log").open("wb")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "reclaim", "worker", "--concurrency", "1", "--batch", "1",
                 "--group-size", str(self.group_size), "--poll", "0.2",
                 "-c", str(self.config)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            log.close()

    def run(self, *, timeout: float) -> None:
        """Kill at every mark, restarting each time, then let the last worker run until
        ``finished`` (or ``timeout`` seconds pass) and stop it with SIGTERM."""
        rng = random.Random(self.seed + 1)
        deadline = time.monotonic() + timeout
        self.start_worker()
        try:
            for mark in self.marks():
                self._wait(functools.partial(self._reached, mark), deadline)
                time.sleep(rng.uniform(0.0, 0.08))  # somewhere inside the next case
                self._kill()
                self.start_worker()
            self._wait(self.finished, deadline)
        finally:
            self.stop()

    def _reached(self, mark: int) -> bool:
        return self.progress() >= mark

    def stop(self) -> None:
        """SIGTERM the running worker (it finishes the case in hand), by its PID."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def _kill(self) -> None:
        proc = self._proc
        assert proc is not None
        if proc.poll() is not None:
            raise AssertionError(f"worker {self.started} died by itself: {self.log_tail()}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.killed.append(self.progress())

    def _wait(self, done: Callable[[], bool], deadline: float) -> None:
        while not done():
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"worker {self.started} exited early: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no progress past {self.progress()}/{self.goal}: {self.log_tail()}"
                )
            time.sleep(0.02)

    def log_tail(self) -> str:
        """The end of the latest worker's output."""
        path = self.log_dir / f"worker-{self.started:02d}.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""
