"""``reclaim demo``: the whole Entra ID loop against the bundled Graph server, on SQLite.

The figures the demo prints are checked against the store (the cases table) and against
the Graph server's own request log: one successful ``DELETE .../members/{id}/$ref`` per
reclaimed seat, none for the synced or the dynamic group (whose people the plan holds).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from rich.console import Console
from sqlalchemy import create_engine, select

from reclaim.config import load_settings
from reclaim.demo.catalog import PRODUCTS
from reclaim.demo.people import generate_org
from reclaim.demo.run import DemoError, DemoResult, run_demo
from reclaim.demo.tenant import tenant_document
from reclaim.demo.timeline import choice
from reclaim.store.plans import load_plan
from reclaim.store.tables import cases, policies, users
from reclaim.testing.graph import CA_ENV_VARS

NOW = dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.UTC)  # a Wednesday
SYNCED = next(p for p in PRODUCTS if p.kind == "synced")
DYNAMIC = next(p for p in PRODUCTS if p.kind == "dynamic")


def _run(directory: Path, *, users: int, seed: int = 42) -> tuple[DemoResult, str]:
    console = Console(record=True, width=160, force_terminal=False)
    result = run_demo(data_dir=directory, users=users, seed=seed, console=console, now=NOW)
    return result, console.export_text()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str]:
    """One 200-person demo shared by the fast tests (it takes a few seconds)."""
    saved = {name: os.environ.get(name) for name in CA_ENV_VARS}
    result, text = _run(tmp_path_factory.mktemp("demo") / "data", users=200)
    assert {name: os.environ.get(name) for name in CA_ENV_VARS} == saved  # restored
    return result, text


def _case_states(result: DemoResult) -> dict[str, list[tuple[str, str, str | None]]]:
    """policy → [(user, state, last_error)], read straight from the demo's SQLite file."""
    engine = create_engine(result.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(policies.c.name, cases.c.user_id, cases.c.state, cases.c.last_error).join(
                    policies, policies.c.id == cases.c.policy_id
                )
            ).all()
            upn = dict(conn.execute(select(users.c.id, users.c.upn)).all())
    finally:
        engine.dispose()
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    for name, user_id, state, error in rows:
        out.setdefault(name, []).append((upn[user_id], state, error))
    return out


def _tenant(result: DemoResult) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (result.data_dir / "input" / "tenant.json").read_text("utf-8")
    )
    return data


def _assert_consistent(result: DemoResult, text: str) -> None:
    """Printed figures == store == what the Graph server saw."""
    states = _case_states(result)
    tenant = _tenant(result)
    user_ids = {u["userPrincipalName"].lower(): u["id"] for u in tenant["users"]}
    group_ids = {g["displayName"]: g["id"] for g in tenant["groups"]}
    removed = {
        (p.name, user) for p in PRODUCTS for user, s, _ in states.get(p.name, []) if s == "removed"
    }
    deletes = result.requests.removals(ok=True)
    assert len(removed) == result.summary.removed == len(deletes) > 0
    for name, user in removed:  # exactly one successful DELETE per reclaimed seat
        product = next(p for p in PRODUCTS if p.name == name)
        assert len(result.requests.removals_of(group_ids[product.group], user_ids[user])) == 1
    assert result.requests.refused_user_deletes() == []
    assert f"Seats reclaimed: {len(removed)}; the Graph server saw {len(deletes)} successful" in (
        text
    )
    # Savings printed = removed seats x seat cost, from the store's own count.
    monthly = sum(
        (Decimal(p.seat_cost) * sum(1 for n, _ in removed if n == p.name) for p in PRODUCTS),
        Decimal(0),
    )
    assert f"Savings: {monthly:,.2f} USD per month, {monthly * 12:,.2f} USD per year." in text
    for row in result.summary.products:
        by_state = Counter(s for _, s, _ in states.get(row.policy, []))
        assert row.removed == by_state["removed"]
        assert row.failed == by_state["failed"]
        assert row.kept == by_state["answered_keep"]
        assert row.cases == sum(by_state.values())


def _assert_refused_groups(result: DemoResult, text: str) -> None:
    """Synced and dynamic groups are held by the plan before anyone is asked: no case is
    opened, the summary gives the held candidates and the way forward, nothing is written."""
    states = _case_states(result)
    tenant = _tenant(result)
    group_ids = {g["displayName"]: g["id"] for g in tenant["groups"]}
    rows = {r.policy: r for r in result.summary.products}
    for product, hint in (
        (SYNCED, "use workflow: onprem_ad"),
        (DYNAMIC, "dynamic membership: change the rule"),
    ):
        assert states.get(product.name, []) == [], f"{product.name}: cases were opened"
        row = rows[product.name]
        assert row.held > 0, f"{product.name}: the plan held nobody"
        assert hint in row.held_because, row.held_because
        assert (row.cases, row.removed, row.failed) == (0, 0, 0)
        assert f"held {product.name}: {row.held} candidate(s) never asked" in text
        gid = group_ids[product.group]
        writes = [r for r in result.requests.all() if gid in r.path and r.method != "GET"]
        assert writes == [], f"{product.name}: the server saw writes to the group"


def test_small_demo_figures_match_store_and_graph_log(small: tuple[DemoResult, str]) -> None:
    result, text = small
    _assert_consistent(result, text)


def test_small_demo_refuses_synced_and_dynamic_groups(small: tuple[DemoResult, str]) -> None:
    result, text = small
    _assert_refused_groups(result, text)
    assert "flagged before any run" in text
    assert f"{SYNCED.name}: group {SYNCED.group!r} is synchronised from on-premises AD" in text
    assert f"{DYNAMIC.name}: group {DYNAMIC.group!r} has dynamic membership" in text


def test_small_demo_asks_approves_and_records_answers(small: tuple[DemoResult, str]) -> None:
    result, text = small
    assert "approved automatically" in text
    assert result.days[0].steps["ask → asked"] > 0
    day1 = result.days[1]
    assert day1.number == 1 and day1.approved and day1.answers["release"] > 0
    engine = create_engine(result.database_url)
    try:
        with engine.connect() as conn:
            for plan_id in day1.approved:
                plan = load_plan(conn, plan_id)
                assert plan is not None and plan.status == "approved"
                assert plan.decided_by and "reclaim demo" in plan.decided_by
    finally:
        engine.dispose()


def test_small_demo_stops_the_server_and_never_prints_the_secret(
    small: tuple[DemoResult, str],
) -> None:
    result, text = small
    secret = (result.data_dir / "graph-client-secret").read_text("utf-8").strip()
    assert secret and secret not in text
    assert secret not in result.config_path.read_text("utf-8")
    assert (result.data_dir / "graph-client-secret").stat().st_mode & 0o077 == 0
    settings = load_settings(result.config_path, check_secrets=True)
    assert settings.entra is not None
    url = urlsplit(settings.entra.graph_url)
    assert url.hostname == "127.0.0.1"
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection((url.hostname, url.port), timeout=1).close()
    assert {p.workflow.value for p in settings.policies} == {"entra_id"}


def test_demo_refuses_a_directory_that_holds_a_demo(small: tuple[DemoResult, str]) -> None:
    result, _ = small
    with pytest.raises(DemoError, match="already holds a demo"):
        run_demo(data_dir=result.data_dir, users=200, seed=1, console=Console(), now=NOW)


def test_generated_tenant_is_deterministic_by_seed() -> None:
    one = tenant_document(generate_org(users=300, today=NOW.date(), seed=7))
    again = tenant_document(generate_org(users=300, today=NOW.date(), seed=7))
    other = tenant_document(generate_org(users=300, today=NOW.date(), seed=8))
    assert one == again
    assert one != other
    upns = [u["userPrincipalName"] for u in one["users"]]
    assert len(upns) == 300 == len(set(upns))
    assert any("#EXT#@" in u for u in upns)
    groups = {g["displayName"]: g for g in one["groups"]}
    assert groups[SYNCED.group]["onPremisesSyncEnabled"] is True
    assert groups[DYNAMIC.group]["groupTypes"] == ["DynamicMembership"]
    assert any(g.get("onPremisesSyncEnabled") for n, g in groups.items() if n != SYNCED.group)
    assert "clientSecret" not in json.dumps(one)


def test_answer_shares_follow_the_brief() -> None:
    drawn = Counter(choice(42, "Visio Plan 2", f"user{n}@x", 1) for n in range(5000))
    assert abs(drawn["release"] / 5000 - 0.70) < 0.03
    assert abs(drawn["keep"] / 5000 - 0.20) < 0.03
    assert abs(drawn["silent"] / 5000 - 0.10) < 0.03


@pytest.mark.slow
def test_full_demo_2000_users(tmp_path: Path) -> None:
    """The README's command 1 as it runs by default: 2,000 people, every outcome."""
    result, text = _run(tmp_path / "demo", users=2000)
    _assert_consistent(result, text)
    _assert_refused_groups(result, text)
    summary = result.summary
    assert sum(p.kept for p in summary.products) > 0
    silent = sum(p.no_answer for p in summary.products)
    kept_by_default = sum(p.kept_by_default for p in summary.products)
    assert 0 < kept_by_default < silent  # one policy keeps by default, the others release
    steps = Counter[str]()
    for day in result.days:
        steps.update(day.steps)
    assert steps["remind → reminded"] > 0 and steps["timeout → removal_pending"] > 0
    assert re.search(r"seasonal \d+", text) and re.search(r"underused \d+", text)
    assert re.search(r"grace \d+", text) and re.search(r"deferred by cap", text)
    assert all(p.still_open == 0 for p in summary.products)
    removed = {u for rows in _case_states(result).values() for u, s, _ in rows if s == "removed"}
    assert any("#ext#@" in u for u in removed)  # guests: the '#' travelled as %23
    assert any("'" in u for u in removed)  # apostrophes in UPNs


def test_demo_serve_mode_prints_a_working_one_time_link(tmp_path: Path) -> None:
    """``reclaim demo --serve``: the summary, then the web app on the demo's store and a
    one-time admin link that opens the dashboard once; Ctrl-C (SIGINT) stops it cleanly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
    proc = subprocess.Popen(  # stopped by its PID below
        [
            sys.executable,
            "-c",
            "from reclaim.cli import main; main()",
            "demo",
            "--users",
            "50",
            "--data-dir",
            str(tmp_path / "demo"),
            "--serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout = _Lines(proc)
    try:
        link = stdout.wait_for(r"http://127\.0\.0\.1:\d+/login/link\?token=\S+", timeout=120)
        assert link is not None, f"no link printed: {stdout.text()[-3000:]}"
        assert link.startswith(f"http://127.0.0.1:{port}/login/link?token=")
        assert "Seats reclaimed:" in stdout.text()  # the summary came first
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(link)
            assert page.status_code == 200 and str(page.url) == f"http://127.0.0.1:{port}/"
            assert "admin@reclaim-demo.example · admin" in page.text
            # The first view may show "recomputing…" (pages wait 100 ms for the savings):
            # reload as the page itself does until the figures are in.
            deadline = time.monotonic() + 60
            while 'data-testid="recomputing"' in page.text and time.monotonic() < deadline:
                time.sleep(0.2)
                page = browser.get(f"http://127.0.0.1:{port}/")
            assert 'data-testid="savings-Visio Plan 2"' in page.text
        with httpx.Client(follow_redirects=True, timeout=30) as other:
            again = other.get(link)
            assert again.status_code == 410 and 'data-reason="used"' in again.text
            assert other.get(f"http://127.0.0.1:{port}/").url.path == "/login"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.returncode == 0, err[-2000:]
    assert stdout.wait_for("Stopped. The store stays in", timeout=10)
    assert "Traceback" not in err
    with pytest.raises(ConnectionRefusedError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


class _Lines:
    """A process's stdout, read line by line in a thread (so the pipe never fills up and
    a test can wait for a line with a deadline)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self._stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, pattern: str, *, timeout: float) -> str | None:
        """The first match of ``pattern`` in a line, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    found = re.search(pattern, line)
                    if found:
                        return found.group(0)
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
