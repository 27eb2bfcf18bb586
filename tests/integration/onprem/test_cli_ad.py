"""``reclaim ad sync`` end to end: config file, Samba DC, SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import SambaDC


def test_ad_sync_from_the_cli(
    dc1: SambaDC, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECLAIM_TEST_AD_PASSWORD", dc1.template.service_password)
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "data"}
ldap:
  hosts: ["{dc1.address}"]
  base_dn: "{seed.BASE_DN}"
  bind_user: "{seed.SERVICE_ACCOUNT.upn}"
  bind_password: "env:RECLAIM_TEST_AD_PASSWORD"
  ca_file: "{dc1.ca_file}"
policies:
  - name: Visio
    apps: [visio]
    workflow: onprem_ad
    group: {{ad_dn: "{seed.LIC_VISIO.dn}"}}
    seat_cost: {{amount: 12}}
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(app, ["ad", "sync", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert (report["policy"], report["members"], report["joined"]) == ("Visio", 4, 4)
    again = runner.invoke(app, ["ad", "sync", "-c", str(config), "--policy", "Nope"])
    assert again.exit_code == 2 and "no enabled onprem_ad policy" in again.output
