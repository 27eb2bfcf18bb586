"""Answers from the response page recorded together, on the event loop (SQLite).

Why: SQLite lets one writer in at a time, and every web process of a store takes its
turn (``store.engine.WritersTurn``). Recorded one transaction per answer in worker
threads, each turn held the lock about 1.7 ms (median) for about 0.4 ms of work: the
rest went to waiting for the GIL, which the event loop holds for up to 5 ms at a time
(``sys.getswitchinterval``) whenever the writer gives it up inside SQLite. At 300
answers a second from two web processes the lock was busy four fifths of the time and
answers queued behind it for up to 0.7 s (``bench/respond.py``).

Here the answers that arrive together are recorded together, by the event loop
itself: one turn, one BEGIN, one COMMIT for all of them (at most :data:`MAX_BATCH`),
with no thread to hand the GIL to. The loop only takes the turn when it is free at
once, and only writes when SQLite's lock is free at once (``wait=False``); otherwise a
worker thread waits for the turn, or writes the batch, so the loop never blocks on
another writer. While one batch waits, the next answers gather for the next one: the
busier the page, the more answers share a turn.

Nothing changes for the employee: each answer is checked and recorded as alone (the
first answer counts, a second one sees it, even within one transaction) and gets the
view :meth:`Responder.answer` would have returned. If the shared transaction fails,
every answer of it is recorded again on its own, so one bad answer costs the others
nothing.
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread

from reclaim.campaigns.responses import Answer, LinkView, Responder
from reclaim.store.engine import WriteBusy, WritersTurn

log = logging.getLogger(__name__)

#: Answers recorded in one transaction at most (about 0.3 ms of work each, on the
#: event loop): enough to absorb a burst, few enough that other requests wait little.
MAX_BATCH = 32

_Waiting = list[tuple[Answer, "asyncio.Future[LinkView]"]]


class AnswerBatcher:
    """Records a responder's answers in shared transactions; one per event loop."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self._waiting: _Waiting = []
        self._flushing: asyncio.Task[None] | None = None

    async def answer(self, answer: Answer) -> LinkView:
        """Record ``answer`` with whichever others are waiting; its view once done."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[LinkView] = loop.create_future()
        self._waiting.append((answer, done))
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                await self._record(batch)
        finally:
            self._flushing = None

    async def _record(self, batch: _Waiting) -> None:
        answers = [answer for answer, _ in batch]
        try:
            views = await self._together(answers)
        except Exception as exc:  # nothing was recorded: see below
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning(
                "%d answers are recorded one by one: their shared transaction failed",
                len(batch),
                exc_info=True,
            )
            for answer, done in batch:
                try:
                    view = await anyio.to_thread.run_sync(self._alone, answer)
                except Exception as one:  # the page that waits shows it
                    _settle(done, one)
                else:
                    _settle(done, view)
            return
        for (_, done), view in zip(batch, views, strict=True):
            _settle(done, view)

    async def _together(self, answers: list[Answer]) -> list[LinkView]:
        turn = WritersTurn(self.responder.engine)
        if not turn.acquire(wait=False):
            try:
                await anyio.to_thread.run_sync(turn.acquire)
            except BaseException:  # cancelled: the thread still took the turn first
                turn.release()
                raise
        try:
            try:
                return self.responder.answer_many(answers, wait=False)
            except WriteBusy:  # another program holds SQLite's lock: wait in a thread
                return await anyio.to_thread.run_sync(self.responder.answer_many, answers)
        finally:
            turn.release()

    def _alone(self, answer: Answer) -> LinkView:
        return self.responder.answer(
            answer.token, keep=answer.keep, reason=answer.reason, now=answer.now
        )


def _settle(done: asyncio.Future[LinkView], outcome: LinkView | BaseException) -> None:
    if done.done():  # the request went away (client disconnected) meanwhile
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
