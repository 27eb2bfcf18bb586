"""Retries: 429 storms, 5xx bursts, timeouts, dropped connections, bounded attempts.

Sleeps are fake (they advance the server clock), so the tests assert on the delays the
client asked for: Retry-After when Graph sends one, else 0.75, 1.5, 3, 6 ... (exponential
backoff with the jitter fixed at 0.5).
"""

from __future__ import annotations

import socket

import pytest

from reclaim.connectors.errors import StopRun, Transient
from reclaim.connectors.graph import GraphClient, RetryPolicy, Unlimited
from reclaim.testing.graph import GraphServer

from .conftest import (
    ALICE,
    BOB,
    E3_GROUP,
    GUEST,
    VISIO_SKU,
    ClientFactory,
    FakeTime,
    server_settings,
)

USERS = r"/v1.0/users/"
BACKOFF = [0.75, 1.5, 3.0, 6.0]


def test_429_storm_with_retry_after(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.throttle_next(3, retry_after=7, path=USERS)
    assert client.get_user(ALICE).id == ALICE
    assert fake_time.sleeps == [7, 7, 7]
    assert [r.status for r in server.requests.find("GET", USERS)] == [429, 429, 429, 200]


def test_429_storm_without_retry_after_backs_off_exponentially(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.throttle_next(3, path=USERS)
    assert client.get_user(ALICE).id == ALICE
    assert fake_time.sleeps == BACKOFF[:3]


def test_429_storm_longer_than_the_attempts_is_transient(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.throttle_next(10, retry_after=7, path=USERS)
    with pytest.raises(Transient) as info:
        client.get_user(ALICE)
    assert info.value.retry_after == 7
    assert info.value.code == "graph-429-TooManyRequests"
    assert fake_time.sleeps == [7, 7, 7, 7]  # 5 attempts
    assert server.requests.count("GET", USERS) == 5


def test_retry_after_beyond_the_deadline_goes_back_to_the_caller(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    client = make_client(settings=server_settings(server, retry=RetryPolicy(deadline=60)))
    server.faults.throttle_next(1, retry_after=120, path=USERS)
    with pytest.raises(Transient) as info:
        client.get_user(ALICE)
    assert info.value.retry_after == 120  # the run reschedules instead of blocking 2 min
    assert fake_time.sleeps == []


def test_real_throttling_without_retry_after(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    # The server's own buckets, tiny and silent about Retry-After; no client-side pacing.
    client = make_client(budget=Unlimited())
    server.throttle.configure(scale=0.002, send_retry_after=False)  # 7 RU per 10 s
    for _ in range(12):
        client.get_user(ALICE)
    throttled = server.requests.count("GET", USERS, status=429)
    assert throttled > 0
    assert len(fake_time.sleeps) == throttled
    assert all(d in BACKOFF for d in fake_time.sleeps)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_burst_is_retried(
    server: GraphServer, client: GraphClient, fake_time: FakeTime, status: int
) -> None:
    server.faults.fail_next(2, status, path=USERS)
    assert client.get_user(ALICE).id == ALICE
    assert fake_time.sleeps == BACKOFF[:2]


def test_503_with_retry_after_is_honoured(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.fail_next(1, 503, retry_after=4, path=USERS)
    client.get_user(ALICE)
    assert fake_time.sleeps == [4]


def test_5xx_on_a_call_that_is_not_safe_to_repeat_is_not_retried(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.fail_next(1, 503, path=r"/assignLicense$")
    with pytest.raises(Transient):
        client.remove_direct_license(ALICE, VISIO_SKU)
    assert server.requests.count("POST", r"/assignLicense$") == 1
    assert fake_time.sleeps == []


def test_5xx_on_a_batch_envelope_and_on_parts(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    server.faults.fail_next(1, 503, path=r"/\$batch$", batch_parts=False)
    server.faults.fail_next(1, 500, path=rf"/users/{BOB}$")
    found = client.get_users([ALICE, BOB, GUEST])
    assert {k: v.id for k, v in found.items()} == {ALICE: ALICE, BOB: BOB, GUEST: GUEST}  # type: ignore[union-attr]
    assert fake_time.sleeps == [0.75, 0.75]  # envelope retry, then the part's own round
    assert server.requests.count("GET", rf"/users/{ALICE}$") == 1  # not sent again


def test_timeout_is_retried(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    client = make_client(settings=server_settings(server, read_timeout=0.3))
    client.get_user(BOB)  # sign in first: the hang is for the Graph call
    server.faults.hang_next(3.0, path=USERS)
    assert client.get_user(ALICE).id == ALICE
    assert fake_time.sleeps == [0.75]
    server.faults.clear()  # release the hung request


def test_timeout_on_a_call_that_is_not_safe_to_repeat(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    client = make_client(settings=server_settings(server, read_timeout=0.3))
    client.get_user(BOB)
    server.faults.hang_next(3.0, path=r"/assignLicense$")
    with pytest.raises(Transient, match="outcome is unknown"):
        client.remove_direct_license(ALICE, VISIO_SKU)
    assert fake_time.sleeps == []
    server.faults.clear()


def test_connection_reset_is_retried(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    client.get_user(BOB)
    server.faults.reset_next(1, path=r"/members/.+/\$ref$")
    client.remove_member(E3_GROUP, ALICE)  # a $ref DELETE is safe to repeat
    assert not server.is_member(ALICE, E3_GROUP)
    assert fake_time.sleeps == [0.75]
    assert [r.status for r in server.requests.find("DELETE")] == [0, 204]


def test_unreachable_graph_gives_up_as_transient(
    server: GraphServer, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = server_settings(server, graph_url=f"https://127.0.0.1:{port}")
    client = make_client(settings=settings)
    with pytest.raises(Transient, match="gave up after 5 attempts"):
        client.get_user(ALICE)
    assert fake_time.sleeps == BACKOFF


def test_second_401_after_a_fresh_token_is_stoprun(
    server: GraphServer, client: GraphClient
) -> None:
    client.get_user(ALICE)
    server.faults.fail_next(2, 401, path=USERS)
    with pytest.raises(StopRun, match="access token rejected"):
        client.get_user(ALICE)
