"""Verdicts on a generated organization with known truth, through the CLI and the service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.services.decisions import evaluate

from .conftest import NOW, import_group, import_usage, make_settings, open_store
from .truth_org import AS_OF, build, policies_yaml


def _load(db_url: str, tmp_path: Path):
    org = build()
    settings = make_settings(db_url, tmp_path / "data", policies_yaml())
    ctx = open_store(settings)
    import_usage(ctx.engine, tmp_path, org.events)
    for policy, members in org.members.items():
        import_group(ctx, tmp_path, policy, members)
    return org, ctx


def _mismatches(org, rows) -> list[str]:
    got = {(r["policy"], r["user"]): r for r in rows}
    assert set(got) == set(org.truth), "every member, and only members, get a verdict"
    return [
        f"{org.personas.get(u, '?')}: {p}/{u} expected {want}, got {got[p, u]['verdict']} "
        f"({got[p, u]['reason']})"
        for (p, u), want in sorted(org.truth.items())
        if got[p, u]["verdict"] != want
    ]


def test_candidates_json_matches_the_truth_for_every_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    org, ctx = _load(f"sqlite:///{tmp_path / 'truth.db'}", tmp_path)
    ctx.engine.dispose()
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\ndatabase: {{url: 'sqlite:///{tmp_path / 'truth.db'}'}}\n"
        f"policies:{policies_yaml()}"
    )
    result = CliRunner().invoke(
        app, ["candidates", "--json", "--as-of", AS_OF.isoformat(), "--config", str(config)]
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert _mismatches(org, rows) == []
    kinds = {r["verdict"] for r in rows}
    assert kinds == {"in_use", "unused", "underused", "no_data", "grace", "excluded", "seasonal"}
    for r in rows:
        assert set(r) >= {"policy", "user", "verdict", "last_used", "minutes_in_window", "reason"}
    by_user = {(r["policy"], r["user"]): r for r in rows}
    light = by_user[("Acrobat Pro", "acrolight0@corp.test")]
    assert 0 < light["minutes_in_window"] < 120
    assert by_user[("Acrobat Pro", "acrodateonly0@corp.test")]["minutes_in_window"] is None
    assert by_user[("Visio", "never0@corp.test")]["last_used"] is None
    seasonal = by_user[("Visio", "quarterend0@corp.test")]
    assert "quarterly pattern" in seasonal["reason"] and seasonal["last_used"] == "2026-10-02"
    assert "yearly pattern" in by_user[("Visio", "yearend0@corp.test")]["reason"]


@pytest.mark.postgres
def test_service_verdicts_match_the_truth_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    org, ctx = _load(pg_url, tmp_path)
    result = evaluate(
        ctx.engine, ctx.settings.policies, as_of=AS_OF, now=NOW, configured=ctx.settings.policies
    )
    rows = [
        {
            "policy": pv.policy.name,
            "user": r.user,
            "verdict": r.verdict.kind.value,
            "reason": r.verdict.reason,
        }
        for pv in result
        for r in pv.rows()
    ]
    assert _mismatches(org, rows) == []
    ctx.engine.dispose()
