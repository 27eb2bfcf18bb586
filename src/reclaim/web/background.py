"""The scheduler and one worker in a background thread of ``reclaim serve``.

Small installations run one process: the web app in the foreground, and
:class:`~reclaim.runner.worker.Worker` (which runs due scheduled cycles, then due case
steps) in a daemon thread beside it. Stopping asks the worker to finish the case in
hand, waits for the thread, and closes the directory connections. Larger ones run
``reclaim serve --no-worker`` and separate ``reclaim worker`` processes; either way
the database leases keep two workers from doing the same work.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from reclaim.bootstrap import Context

log = logging.getLogger("reclaim.web.worker")


class BackgroundWorker:
    """One :class:`Worker` looping in a thread until :meth:`stop`."""

    def __init__(self, ctx: Context, *, poll_seconds: float = 5.0, worker: Any = None) -> None:
        if worker is None:
            from reclaim.runner.worker import Worker
            from reclaim.workflows.directory import default_directories

            worker = Worker(
                engine=ctx.engine,
                settings=ctx.settings,
                directories=default_directories(ctx.engine, ctx.settings),
                poll_seconds=poll_seconds,
            )
        self.worker = worker
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="reclaim-worker", daemon=True)

    @property
    def owner(self) -> str:
        """The worker's id, as its leases name it."""
        return str(self.worker.owner)

    def _run(self) -> None:
        try:
            self.worker.run()
        except Exception as exc:  # the web app keeps serving; the log says why work stopped
            self.error = exc
            log.exception("in-process worker %s stopped on an error", self.owner)

    def start(self) -> None:
        """Start looping in the background."""
        self._thread.start()

    def is_alive(self) -> bool:
        """Whether the worker thread is still running."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the worker to stop after the case in hand; True if it stopped in time."""
        self.worker.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        closer = getattr(self.worker, "close", None)
        if stopped and callable(closer):
            closer()
        return stopped
