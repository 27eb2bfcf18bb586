"""Answers recorded together on the event loop (``campaigns.answer_batches``), SQLite.

A real SQLite store with asked cases; answers go through the batcher as the response
page sends them. Checked: answers arriving together share one transaction and each is
recorded as alone; one failing answer costs the others nothing; while another writer
(a worker's transaction, another web process's turn) holds the lock, answers wait
without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, event, text

from reclaim.campaigns.answer_batches import AnswerBatcher
from reclaim.campaigns.responses import Answer, LinkState, LinkView, Responder
from reclaim.store import cases as store
from reclaim.store.engine import begin_write, make_engine
from reclaim.store.migrate import upgrade

from ..turn_holder import turn_held
from .seed import ASKED_AT, LINK_KEY, LINK_KEY_ENV, answer_link, asked_cases
from .seed import campaign_settings as make_settings

USERS = [f"person{i}@corp.example" for i in range(6)]
NOW = ASKED_AT + dt.timedelta(days=1)


@pytest.fixture
def store_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def responder(
    tmp_path: Path, store_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> tuple[Responder, dict[str, int]]:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)
    settings = make_settings(data_dir=tmp_path / "data", db_url=str(store_engine.url))
    ids = asked_cases(store_engine, settings, USERS)
    return Responder.from_settings(store_engine, settings), ids


def _token(ids: dict[str, int], user: str) -> str:
    return urlsplit(answer_link("https://x", ids[user], user)).path.rsplit("/", 1)[1]


def _answer(ids: dict[str, int], user: str, *, keep: bool = True) -> Answer:
    return Answer(_token(ids, user), keep=keep, reason=None, now=NOW)


def _answered(engine: Engine, case_id: int) -> list[str]:
    with engine.connect() as conn:
        found = store.load_case(conn, case_id)
    assert found is not None
    return [e.to_state.value for e in found.case.history if e.cause == "answered"]


async def _with_ticks(work: asyncio.Future[list[LinkView]] | asyncio.Task[list[LinkView]]) -> int:
    """Count 10 ms ticks of the event loop while ``work`` runs: a blocked loop ticks
    not at all."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


def test_answers_arriving_together_share_one_transaction(responder) -> None:
    rsp, ids = responder
    commits: list[int] = []
    event.listen(rsp.engine, "commit", lambda _conn: commits.append(1))
    batcher = AnswerBatcher(rsp)

    async def main() -> list[LinkView]:
        return list(
            await asyncio.gather(
                *(batcher.answer(_answer(ids, u, keep=i % 2 == 0)) for i, u in enumerate(USERS))
            )
        )

    views = asyncio.run(main())
    assert len(commits) == 1
    assert [v.state for v in views] == [LinkState.ANSWERED] * len(USERS)
    assert all(v.just_now for v in views)
    for i, user in enumerate(USERS):
        want = "answered_keep" if i % 2 == 0 else "answered_release"
        assert _answered(rsp.engine, ids[user]) == [want]


def test_a_second_answer_in_the_same_batch_sees_the_first(responder) -> None:
    rsp, ids = responder
    batcher = AnswerBatcher(rsp)
    user = USERS[0]

    async def main() -> list[LinkView]:
        first = batcher.answer(_answer(ids, user, keep=True))
        second = batcher.answer(_answer(ids, user, keep=False))
        return list(await asyncio.gather(first, second))

    first, second = asyncio.run(main())
    assert (first.just_now, first.answer) == (True, "keep")
    assert (second.just_now, second.answer, second.state) == (False, "keep", LinkState.ANSWERED)
    assert _answered(rsp.engine, ids[user]) == ["answered_keep"]


def test_an_edited_link_in_a_batch_is_refused_alone(responder) -> None:
    rsp, ids = responder
    batcher = AnswerBatcher(rsp)
    good, bad = _answer(ids, USERS[0]), _answer(ids, USERS[1])
    forged = Answer(bad.token[:-2] + ("AA" if bad.token[-2:] != "AA" else "BB"), True, None, NOW)

    async def main() -> list[LinkView]:
        return list(await asyncio.gather(batcher.answer(good), batcher.answer(forged)))

    views = asyncio.run(main())
    assert [v.state for v in views] == [LinkState.ANSWERED, LinkState.INVALID]
    assert _answered(rsp.engine, ids[USERS[0]]) == ["answered_keep"]
    assert _answered(rsp.engine, ids[USERS[1]]) == []


def test_one_failing_answer_costs_the_others_nothing(responder) -> None:
    rsp, ids = responder
    victim = ids[USERS[2]]
    with rsp.engine.begin() as conn:  # the database itself refuses this one case's update
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE UPDATE ON cases WHEN NEW.id = :id "
                "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END".replace(":id", str(victim))
            )
        )
    batcher = AnswerBatcher(rsp)

    async def main() -> list[LinkView | BaseException]:
        return list(
            await asyncio.gather(
                *(batcher.answer(_answer(ids, u)) for u in USERS[:4]), return_exceptions=True
            )
        )

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[2], Exception) and "refused for the test" in str(outcomes[2])
    for i in (0, 1, 3):
        view = outcomes[i]
        assert isinstance(view, LinkView) and view.just_now
        assert _answered(rsp.engine, ids[USERS[i]]) == ["answered_keep"]
    assert _answered(rsp.engine, victim) == []


def test_answers_wait_for_a_writer_holding_sqlites_lock_without_blocking_the_loop(
    responder,
) -> None:
    rsp, ids = responder
    batcher = AnswerBatcher(rsp)
    holding, release = threading.Event(), threading.Event()

    def worker() -> None:  # a worker's write transaction, which takes no writers' turn
        with begin_write(rsp.engine) as conn:
            conn.execute(text("UPDATE cases SET failures = failures WHERE id = 0"))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    assert holding.wait(5)

    async def main() -> tuple[list[LinkView], int, bool]:
        work = asyncio.ensure_future(
            asyncio.gather(*(batcher.answer(_answer(ids, u)) for u in USERS[:3]))
        )
        ticks, until = 0, time.monotonic() + 0.3
        while time.monotonic() < until:
            await asyncio.sleep(0.01)
            ticks += 1
        waited = not work.done()
        release.set()
        return list(await work), ticks, waited

    views, ticks, waited = asyncio.run(main())
    thread.join(10)
    assert waited, "answers were recorded while another writer held the lock"
    # A write waiting on SQLite's busy handler in the loop would have stopped the clock.
    assert ticks >= 15, f"the event loop ticked {ticks} times in 0.3 s"
    assert all(v.just_now for v in views)
    for user in USERS[:3]:
        assert _answered(rsp.engine, ids[user]) == ["answered_keep"]


def test_answers_wait_for_another_processs_turn_while_the_loop_runs_on(responder) -> None:
    rsp, ids = responder
    batcher = AnswerBatcher(rsp)

    async def main() -> tuple[list[LinkView], int]:
        work = asyncio.ensure_future(
            asyncio.gather(*(batcher.answer(_answer(ids, u)) for u in USERS[:2]))
        )
        ticks = await _with_ticks(work)
        return list(await work), ticks

    with turn_held(str(rsp.engine.url), 0.5):
        views, ticks = asyncio.run(main())
    # ~0.5 s of waiting at 10 ms a tick: the loop kept running while the turn was away.
    assert ticks >= 20, f"the event loop ticked {ticks} times while waiting for the turn"
    assert all(v.just_now for v in views)
    for user in USERS[:2]:
        assert _answered(rsp.engine, ids[user]) == ["answered_keep"]
