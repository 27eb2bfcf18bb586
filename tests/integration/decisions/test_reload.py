"""A running worker re-reads its configuration between cases (SIGHUP), where safe."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reclaim.config import LdapSettings, SafetySettings, Settings

from .conftest import make_settings, policy_yaml
from .world import build_world


def test_reload_applies_safety_and_policies_between_cases(db_url: str, tmp_path: Path) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=2, active=1)
    world.cycle()
    worker = world.worker()
    paused = world.ctx.settings.model_copy(update={"safety": SafetySettings(paused=True)})
    worker.request_reload(lambda: paused)

    assert worker.drain().results() == {"refused": 2}  # the reload came before the first case

    assert world.directory.writes() == []
    again = make_settings(db_url, tmp_path / "data", policy_yaml("Visio", ask=False, cap=1))
    worker.request_reload(lambda: again)
    world.clock.advance(minutes=20)
    assert worker.drain().results() == {"removed": 2}  # resumed: the plan's two removals
    assert worker.settings is again
    with world.ctx.engine.connect() as conn:  # the runtime reads the new policy
        assert worker.runtime.policy(conn, "Visio").caps.max_per_run == 1


def test_a_reload_that_needs_a_restart_is_refused_whole(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=1, active=1)
    world.cycle()
    worker = world.worker()
    before = worker.settings
    ldap = LdapSettings.model_validate(
        {"hosts": ["dc1.corp.example"], "base_dn": "DC=corp", "bind_user": "svc",
         "bind_password": "env:X"}
    )  # fmt: skip
    risky = before.model_copy(update={"ldap": ldap, "safety": SafetySettings(paused=True)})
    worker.request_reload(lambda: risky)

    with caplog.at_level(logging.ERROR, logger="reclaim"):
        assert worker.drain().results() == {"removed": 1}  # still on the old settings

    assert worker.settings is before
    assert "ldap changed: restart the worker" in caplog.text


def test_a_broken_file_is_not_reloaded(db_url: str, tmp_path: Path, caplog) -> None:
    world = build_world(db_url, tmp_path, policy_yaml("Visio", ask=False), unused=1, active=1)
    worker = world.worker()

    def broken() -> Settings:
        raise ValueError("reclaim.yaml:3: policies[0].unused_days: not a number")

    worker.request_reload(broken)
    with caplog.at_level(logging.ERROR, logger="reclaim"):
        worker.drain()
    assert "configuration not reloaded: reclaim.yaml:3" in caplog.text


@pytest.mark.slow
def test_sighup_reloads_a_running_worker_process(tmp_path: Path) -> None:
    config = tmp_path / "reclaim.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
    env["RECLAIM_LOG_LEVEL"] = "INFO"
    reclaim = str(Path(sys.executable).with_name("reclaim"))
    proc = subprocess.Popen(
        [reclaim, "worker", "--poll", "0.2", "--config", str(config)],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert "started" in proc.stderr.readline()
        config.write_text(config.read_text() + "safety: {paused: true}\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "configuration reloaded" in line:
                break
        assert any("configuration reloaded" in line for line in lines), lines
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
