"""When to send: quiet hours and weekends (pure), pacing (injected clock), batching."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclaim.campaigns.batching import DueAsk, batch_by_person
from reclaim.campaigns.model import AskStage, Recipient
from reclaim.campaigns.pacing import Pacer
from reclaim.campaigns.quiet_hours import next_allowed_send_time
from tests.unit.campaigns.factories import ALICE, NOW, item

PARIS = ZoneInfo("Europe/Paris")
NIGHT = (dt.time(19, 0), dt.time(8, 0))


def paris(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=PARIS)


def allowed(now: dt.datetime, *, skip_weekends: bool = True, quiet=NIGHT, tz="Europe/Paris"):
    return next_allowed_send_time(now, tz, quiet[0], quiet[1], skip_weekends)


# ----- quiet hours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (paris(2026, 3, 3, 10, 0), paris(2026, 3, 3, 10, 0)),  # Tuesday morning: now
        (paris(2026, 3, 3, 19, 0), paris(2026, 3, 4, 8, 0)),  # quiet starts at 19:00
        (paris(2026, 3, 3, 23, 30), paris(2026, 3, 4, 8, 0)),  # night: next morning
        (paris(2026, 3, 4, 2, 0), paris(2026, 3, 4, 8, 0)),  # after midnight: same day
        (paris(2026, 3, 4, 8, 0), paris(2026, 3, 4, 8, 0)),  # quiet ends at 08:00 sharp
        (paris(2026, 3, 6, 20, 0), paris(2026, 3, 9, 8, 0)),  # Friday night: Monday
        (paris(2026, 3, 7, 11, 0), paris(2026, 3, 9, 8, 0)),  # Saturday: Monday
        (paris(2026, 3, 9, 7, 59), paris(2026, 3, 9, 8, 0)),  # Monday just before
    ],
)
def test_quiet_hours_and_weekends(now, expected):
    assert allowed(now) == expected


def test_weekends_allowed_when_not_skipped():
    assert allowed(paris(2026, 3, 7, 11, 0), skip_weekends=False) == paris(2026, 3, 7, 11, 0)
    assert allowed(paris(2026, 3, 7, 21, 0), skip_weekends=False) == paris(2026, 3, 8, 8, 0)


def test_time_is_judged_in_the_persons_zone():
    # 06:00 UTC is 07:00 in Paris (quiet) but 15:00 in Tokyo (fine).
    now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)
    assert allowed(now) == paris(2026, 3, 3, 8, 0)
    assert allowed(now, tz="Asia/Tokyo") == now


def test_daytime_window_and_no_window():
    lunch = (dt.time(12, 0), dt.time(13, 0))
    assert allowed(paris(2026, 3, 3, 12, 30), quiet=lunch) == paris(2026, 3, 3, 13, 0)
    none = (dt.time(0, 0), dt.time(0, 0))
    assert allowed(paris(2026, 3, 3, 3, 0), quiet=none) == paris(2026, 3, 3, 3, 0)
    assert allowed(paris(2026, 3, 7, 3, 0), quiet=none) == paris(2026, 3, 9, 0, 0)


def test_quiet_end_inside_a_dst_gap_moves_to_the_first_real_instant():
    # Paris skips 02:00-03:00 on 29 March 2026; quiet hours ending at 02:30 end at 03:30.
    now = paris(2026, 3, 29, 1, 0)
    got = next_allowed_send_time(now, "Europe/Paris", dt.time(22, 0), dt.time(2, 30), False)
    assert got.astimezone(dt.UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)


def test_custom_weekend_and_refusals():
    # Friday-Saturday weekend: Friday noon goes to Sunday morning.
    got = next_allowed_send_time(
        paris(2026, 3, 6, 12, 0), "Europe/Paris", *NIGHT, True, weekend=(4, 5)
    )
    assert got == paris(2026, 3, 8, 8, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        allowed(dt.datetime(2026, 3, 3, 10, 0))
    with pytest.raises(ValueError, match="every day"):
        next_allowed_send_time(NOW, "UTC", *NIGHT, True, weekend=range(7))


@settings(max_examples=200, deadline=None)
@given(
    now=st.datetimes(
        min_value=dt.datetime(2020, 1, 1),
        max_value=dt.datetime(2035, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    start=st.times(),
    end=st.times(),
    skip=st.booleans(),
    tz=st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Kolkata", "UTC"]),
)
def test_result_is_never_earlier_never_quiet_and_a_fixed_point(now, start, end, skip, tz):
    got = next_allowed_send_time(now, tz, start, end, skip)
    assert got >= now
    assert got - now <= dt.timedelta(days=4)
    assert next_allowed_send_time(got, tz, start, end, skip) == got


# ----- pacing ------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spaces_calls_and_never_delays_the_first():
    t = FakeTime()
    pacer = Pacer(4, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        pacer.wait()
    assert t.sleeps == [0.25, 0.25]


def test_pacer_does_not_wait_when_time_has_passed_anyway():
    t = FakeTime()
    pacer = Pacer(2, clock=t.clock, sleep=t.sleep)
    pacer.wait()
    t.now += 0.2
    assert pacer.wait() == pytest.approx(0.3)
    t.now += 5
    assert pacer.wait() == 0.0
    assert t.sleeps == [pytest.approx(0.3)]


def test_pacer_off():
    t = FakeTime()
    pacer = Pacer(None, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        pacer.wait()
    assert t.sleeps == []
    with pytest.raises(ValueError, match="positive"):
        Pacer(-1)


# ----- batching ----------------------------------------------------------------------------

BOB = Recipient("bob@corp.example", display_name="Bob")


def test_one_message_per_person_listing_each_product():
    due = [
        DueAsk(ALICE, item("a1", product="Visio")),
        DueAsk(BOB, item("b1", product="Miro")),
        DueAsk(ALICE, item("a2", product="Acrobat", stage=AskStage.FINAL)),
        DueAsk(ALICE, item("a1", product="Visio")),  # listed twice: kept once
    ]
    plan = batch_by_person(due, now=NOW, tz="UTC")
    assert [r.recipient.key for r in plan.ready] == [
        "alice.martin@corp.example",
        "bob@corp.example",
    ]
    alice = plan.ready[0]
    assert [i.case_id for i in alice.items] == ["a2", "a1"]  # final notice first
    assert plan.deferred == ()


def test_person_already_written_to_today_waits_for_tomorrow():
    due = [DueAsk(ALICE, item("a1")), DueAsk(BOB, item("b1"))]
    # Alice got a message at 08:00 Paris time today (NOW is 10:00 in Paris).
    last = {"ALICE.MARTIN@corp.example": dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)}
    plan = batch_by_person(due, now=NOW, tz="UTC", last_sent=last)
    assert [r.recipient.key for r in plan.ready] == ["bob@corp.example"]
    assert [d.item.case_id for d in plan.deferred] == ["a1"]
    # Yesterday (in her zone) does not count.
    yesterday = {"alice.martin@corp.example": dt.datetime(2026, 3, 1, 22, 30, tzinfo=dt.UTC)}
    assert len(batch_by_person(due, now=NOW, tz="UTC", last_sent=yesterday).ready) == 2


def test_the_day_is_judged_in_the_persons_zone():
    # 23:30 UTC on 1 March is 00:30 on 2 March in Paris: the same local day as NOW.
    last = {"alice.martin@corp.example": dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)}
    plan = batch_by_person([DueAsk(ALICE, item())], now=NOW, tz="UTC", last_sent=last)
    assert plan.ready == ()
    # With the zone overridden to UTC it was yesterday.
    plan = batch_by_person(
        [DueAsk(ALICE, item())], now=NOW, tz="UTC", last_sent=last, tz_of=lambda r: "UTC"
    )
    assert len(plan.ready) == 1


def test_too_many_items_spill_over_to_another_day():
    due = [
        DueAsk(ALICE, item(f"c{i}", respond_by=NOW + dt.timedelta(days=2 + i))) for i in range(5)
    ]
    plan = batch_by_person(due, now=NOW, tz="UTC", max_items=3)
    assert [i.case_id for i in plan.ready[0].items] == ["c0", "c1", "c2"]
    assert [d.item.case_id for d in plan.deferred] == ["c3", "c4"]
    with pytest.raises(ValueError, match="at least 1"):
        batch_by_person(due, now=NOW, tz="UTC", max_items=0)
