"""How the runner's directories are wired: the kill switch the connectors read, and
connectors built on first use, failing with a message instead of a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from reclaim.config import SafetySettings, parse_settings
from reclaim.connectors.errors import StopRun, WriteRefused
from reclaim.domain.policy import GroupRef, Workflow
from reclaim.store.leases import PAUSED, set_control
from reclaim.testing.graph import GraphServer
from reclaim.workflows.directory import StoreKillSwitch, default_directories
from reclaim.workflows.manual import ManualDirectory

from .conftest import ALICE, CLIENT_SECRET, E3_GROUP, UPNS, policy
from .runner_world import SECRET_ENV, config_text, entra_policy


class Ticks:
    """A monotonic clock the test moves (the switch's cache is time-based)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pause(engine: Engine, on: bool) -> None:
    with engine.begin() as conn:
        set_control(conn, PAUSED, "1" if on else "0", by="test", now=0)


def test_kill_switch_reads_the_store_at_most_once_per_ttl(engine: Engine) -> None:
    ticks = Ticks()
    switch = StoreKillSwitch(engine, SafetySettings(), ttl=1.5, clock=ticks)
    assert switch() is True
    pause(engine, True)
    ticks.now = 1.0
    assert switch() is True  # still the cached answer
    ticks.now = 1.6
    assert switch() is False  # read again: reclaim pause is in force
    pause(engine, False)
    ticks.now = 3.2
    assert switch() is True


def test_kill_switch_obeys_safety_paused_without_asking_the_store(engine: Engine) -> None:
    engine.dispose()  # would still connect; the point is the answer, not the read
    assert StoreKillSwitch(engine, SafetySettings(paused=True))() is False


def test_missing_sections_fail_only_when_that_workflow_runs(engine: Engine, tmp_path: Path) -> None:
    settings = parse_settings(f"data_dir: {tmp_path}\n", source="test.yaml")
    directories = default_directories(engine, settings)  # nothing built yet: no error
    manual = policy("M", E3_GROUP).model_copy(
        update={"workflow": Workflow.MANUAL, "group": GroupRef(name="M users")}
    )
    assert isinstance(directories(manual), ManualDirectory)
    with pytest.raises(StopRun, match=r"entra_id workflow cannot start: .*entra: section"):
        directories(policy("E3", E3_GROUP))
    onprem = policy("AD", E3_GROUP, Workflow.ONPREM_AD)
    with pytest.raises(StopRun, match=r"onprem_ad workflow cannot start: .*ldap: section"):
        directories(onprem)
    with pytest.raises(StopRun, match="entra_id workflow cannot start"):  # said once, kept
        directories(policy("E3", E3_GROUP))


def test_the_graph_client_reads_the_store_kill_switch_before_writing(
    engine: Engine,
    db_url: str,
    server: GraphServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    text = config_text(server, db_url, tmp_path, entra_policy("E3", E3_GROUP))
    settings = parse_settings(text, source="test.yaml")
    directories = default_directories(engine, settings)
    port = directories(settings.policy("E3"))
    try:
        assert port.is_member(policy=settings.policy("E3"), user=UPNS[ALICE])
        pause(engine, True)
        directories.writes_allowed.ttl = 0  # type: ignore[attr-defined]
        with pytest.raises(WriteRefused):
            port.remove_member(policy=settings.policy("E3"), user=UPNS[ALICE], idempotency_key="k")
        assert server.requests.count("DELETE") == 0
        pause(engine, False)
        port.remove_member(policy=settings.policy("E3"), user=UPNS[ALICE], idempotency_key="k")
        assert len(server.requests.removals()) == 1
    finally:
        directories.close()


def test_dry_run_directories_refuse_in_the_connector(
    engine: Engine,
    db_url: str,
    server: GraphServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    text = config_text(server, db_url, tmp_path, entra_policy("E3", E3_GROUP))
    settings = parse_settings(text, source="test.yaml")
    directories = default_directories(engine, settings, dry_run=True)
    try:
        with pytest.raises(WriteRefused):
            directories(settings.policy("E3")).remove_member(
                policy=settings.policy("E3"), user=UPNS[ALICE], idempotency_key="k"
            )
    finally:
        directories.close()
    assert server.requests.count("DELETE") == 0
