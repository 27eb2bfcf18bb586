"""The deployment recipes in deploy/ are checked, as far as this machine can:
systemd units with ``systemd-analyze verify`` (when systemd's tools are installed),
and the Dockerfile for known instructions, files it copies and the command it runs.
docs/operations.md says what is and is not checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RECLAIM = Path(sys.executable).with_name("reclaim")
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
@pytest.mark.parametrize(
    ("unit", "instance"),
    [
        ("reclaim-web.service", "reclaim-web.service"),
        ("reclaim-worker@.service", "reclaim-worker@1.service"),
        ("reclaim-prune.service", "reclaim-prune.service"),
    ],
)
def test_systemd_unit_verifies_cleanly(tmp_path: Path, unit: str, instance: str) -> None:
    text = (DEPLOY / "systemd" / unit).read_text()
    assert "/opt/reclaim/.venv/bin/reclaim" in text
    # verify checks that ExecStart exists and that EnvironmentFile is readable: point
    # them at this checkout's venv and make the secrets file optional for the check.
    text = text.replace("/opt/reclaim/.venv/bin/reclaim", str(RECLAIM))
    text = text.replace("EnvironmentFile=/", "EnvironmentFile=-/")
    (tmp_path / instance).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / instance)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # verify exits 0 even for unknown keys; any line it prints is a finding.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr


def test_units_run_commands_that_exist() -> None:
    runner = CliRunner()
    for unit, command in (
        ("reclaim-web.service", "serve"),
        ("reclaim-worker@.service", "worker"),
        ("reclaim-prune.service", "db"),
    ):
        exec_start = next(
            line for line in (DEPLOY / "systemd" / unit).read_text().splitlines()
            if line.startswith("ExecStart=")
        )  # fmt: skip
        args = exec_start.split()[1:]
        assert args[0] == command
        help_text = runner.invoke(
            app, [*[a for a in args if not a.startswith("-")], "--help"]
        ).stdout
        for option in (a for a in args if a.startswith("--")):
            assert option in help_text, f"{unit}: {option} is not an option of {command}"


def logical_lines(text: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        out.append(pending)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def test_dockerfile_instructions_and_sources() -> None:
    lines = logical_lines((DEPLOY / "Dockerfile").read_text())
    assert lines[0].startswith("FROM python:3.11")
    for line in lines:
        assert line.split()[0] in INSTRUCTIONS, line
    for line in (x for x in lines if x.startswith("COPY ")):
        for source in line.split()[1:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    cmd = next(x for x in lines if x.startswith("CMD "))
    assert '"serve"' in cmd


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)
def test_prune_timer_verifies_cleanly(tmp_path: Path) -> None:
    for name in ("reclaim-prune.service", "reclaim-prune.timer"):
        text = (DEPLOY / "systemd" / name).read_text()
        text = text.replace("/opt/reclaim/.venv/bin/reclaim", str(RECLAIM))
        (tmp_path / name).write_text(text.replace("EnvironmentFile=/", "EnvironmentFile=-/"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "reclaim-prune.timer")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr
