"""``reclaim campaigns`` and the report behind it, from cases in every campaign outcome."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from reclaim.campaigns.responses import Responder
from reclaim.cli import app
from reclaim.domain import case as dc
from reclaim.services.campaign_report import campaign_report
from reclaim.store import cases as store
from reclaim.testing.recording_directory import RecordingDirectory

from .seed import ASKED_AT, KEYS, LINK_KEY, LINK_KEY_ENV, answer_link, asked_cases, campaign_yaml

HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _link_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)


def _settle(engine: Engine, settings, tmp_path: Path) -> dict[str, int]:
    """Seven asked people: 2 keep, 2 release (one asks it back), 1 timed out, 1 bounced,
    1 still waiting (reminded once)."""
    users = [f"u{i}@corp.example" for i in range(7)]
    ids = asked_cases(engine, settings, users)
    page = Responder(engine, settings, KEYS)
    waits = {0: 2, 1: 10, 2: 4, 3: 30}  # hours until the answer
    for i, keep in ((0, True), (1, True), (2, False), (3, False)):
        token = answer_link("https://x", ids[users[i]], users[i]).rsplit("/", 1)[1]
        page.answer(token, keep=keep, reason=None, now=ASKED_AT + waits[i] * HOUR)
    policy = settings.policy("Visio")
    later = ASKED_AT + dt.timedelta(days=3)
    with engine.begin() as conn:
        for i, move in (
            (4, lambda c: dc.apply_timeout(c, policy=policy, at=ASKED_AT + dt.timedelta(days=10))),
            (5, lambda c: dc.mark_could_not_ask(c, at=later, detail="550 unknown user")),
            (6, lambda c: dc.mark_reminded(c, at=later, reminder=1)),
        ):
            stored = store.load_case(conn, ids[users[i]])
            assert stored is not None
            store.save_case(conn, stored, move(stored.case))
    # u3 released, the seat went, then "I need it back".
    with engine.begin() as conn:
        stored = store.load_case(conn, ids[users[3]])
        assert stored is not None
        moved = dc.begin_removal(stored.case, at=later)
        moved = dc.mark_removed(dc.removal_sent(moved, at=later), at=later)
        store.save_case(conn, stored, moved)
    token = answer_link("https://x", ids[users[3]], users[3]).rsplit("/", 1)[1]
    directory = RecordingDirectory({"Visio": users})
    Responder(engine, settings, KEYS, directories=lambda _p: directory).request_restore(
        token, reason=None, now=later + HOUR
    )
    return ids


def test_the_report_counts_each_outcome_once(engine: Engine, db_url: str, tmp_path: Path) -> None:
    from reclaim.config import parse_settings

    settings = parse_settings(campaign_yaml(data_dir=tmp_path, db_url=db_url), source="test.yaml")
    _settle(engine, settings, tmp_path)
    [visio] = campaign_report(engine)
    assert visio.to_dict() == {
        "policy": "Visio",
        "sent": 7,
        "reminded": 1,
        "answered_keep": 2,
        "answered_release": 2,
        "no_response": 1,
        "could_not_ask": 1,
        "awaiting": 1,
        "restore_requests": 1,
        "median_hours_to_answer": 7.0,  # answers after 2, 4, 10 and 30 hours
        "answered": 4,
        "response_rate": 4 / 7,
        "regret_rate": 0.5,
    }
    assert campaign_report(engine, policy="visio") == [visio]
    assert campaign_report(engine, policy="Miro") == []


def test_reclaim_campaigns_prints_the_table_and_json(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    config = tmp_path / "reclaim.yaml"
    config.write_text(
        campaign_yaml(
            data_dir=tmp_path,
            db_url=db_url,
            policies=(("Visio", "VISIO.EXE", "keep"), ("Miro", "MIRO.EXE", "release")),
        )
    )
    runner = CliRunner()
    first = runner.invoke(app, ["campaigns", "--json", "--config", str(config)])
    assert first.exit_code == 0, first.output
    empty = json.loads(first.stdout)["policies"]
    assert [(p["policy"], p["sent"], p["response_rate"]) for p in empty] == [
        ("Miro", 0, None),
        ("Visio", 0, None),
    ]
    from reclaim.config import load_settings
    from reclaim.store.engine import make_engine

    settings = load_settings(config)
    engine = make_engine(settings.database_url())
    _settle(engine, settings, tmp_path)
    engine.dispose()
    table = runner.invoke(app, ["campaigns", "--policy", "visio", "--config", str(config)])
    assert table.exit_code == 0, table.output
    # CliRunner's terminal is 80 columns: rich squeezes the headers, the figures stay.
    assert "Campaigns" in table.output and "57%" in table.output and "7.0" in table.output
    filled = runner.invoke(app, ["campaigns", "--json", "-p", "Visio", "--config", str(config)])
    [visio] = json.loads(filled.stdout)["policies"]
    assert (visio["sent"], visio["answered"], visio["median_hours_to_answer"]) == (7, 4, 7.0)
    unknown = runner.invoke(app, ["campaigns", "--policy", "Nope", "--config", str(config)])
    assert unknown.exit_code == 2 and "no policy named 'Nope'" in unknown.output
