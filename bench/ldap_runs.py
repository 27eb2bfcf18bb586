"""The two scenarios of ``bench/ldap_reclaim.py``, each on its own fresh Samba DC.

- :func:`reclaim_run`: the hybrid world of the AD kill tests (``tests/faults/ad_world``:
  LIC-Run grown to twice the removals, mirrored as synced objects into the Graph test
  server, a SQLite store, AD sync and usage), taken through a cycle, the asks, every
  person's release and a second cycle that authorizes the removals; then one
  :class:`~reclaim.runner.worker.Worker` pass, built as ``reclaim worker`` builds it
  (``default_directories``: steps filed in each case's history, the store's kill
  switch), removes them. That pass is what is measured.
- :func:`direct_run`: the same group and users on another fresh DC, and the same LDAP
  operations written with ldap3 on one connection with the same settings (LDAPS,
  verified certificate, simple bind as the service account): user by sAMAccountName,
  direct-membership check, MODIFY_DELETE, read-back.

Both warm up first (bind, Graph token, group resolution) on members that stay.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import ssl
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldap3 import BASE, MODIFY_DELETE, SUBTREE, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars
from tests.faults.ad_world import build_ad_kill_world, grow_run_group, members_for, upn_of
from tests.integration.ad.helpers import direct_members

import reclaim.runner.worker as worker_module
from reclaim.connectors import ad_vendor as ad
from reclaim.connectors.ldap_entries import USER_ATTRIBUTES
from reclaim.runner.worker import Worker
from reclaim.testing import samba_seed as seed
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.testing.samba import SambaDC
from reclaim.workflows.directory import default_directories

WARM_UP = 20  # read-only lookups of members that stay, before the clock starts
GROUP = seed.LIC_RUN


@dataclass
class Clocks:
    """Seconds spent during a pass: wall; CPU of the thread doing the work; CPU of this
    process's other threads (the in-process Graph server); CPU of the Samba DC."""

    wall: float = 0.0
    cpu: float = 0.0
    others: float = 0.0
    dc: float = 0.0


@dataclass
class Run:
    """One measured pass: per-removal seconds, its clocks, and the directory steps it
    took (name → calls, milliseconds)."""

    times: list[float]
    clocks: Clocks
    calls: Counter[str] = field(default_factory=Counter)
    ms: dict[str, float] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return self.clocks.wall


def _dc_cpu(pid: int | None) -> float:
    """CPU seconds of the samba process (and its reaped children) so far."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _clocked(dc: SambaDC) -> Iterator[Clocks]:
    """Fill a :class:`Clocks` with what the block spends."""
    clocks = Clocks()
    wall, cpu, process, on_dc = (
        time.perf_counter(),
        time.thread_time(),
        time.process_time(),
        _dc_cpu(dc.pid),
    )
    try:
        yield clocks
    finally:
        clocks.wall = time.perf_counter() - wall
        clocks.cpu = time.thread_time() - cpu
        clocks.others = time.process_time() - process - clocks.cpu
        clocks.dc = _dc_cpu(dc.pid) - on_dc


class StepMeter:
    """An ``on_step`` observer: calls and milliseconds per step name (answers from a
    cache are counted apart, as ``<name> (cached)``)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.ms: defaultdict[str, float] = defaultdict(float)

    def __call__(self, step: Any) -> None:
        name = step.step + (" (cached)" if step.outcome.endswith("(cached)") else "")
        self.calls[name] += 1
        self.ms[name] += step.ms

    def clear(self) -> None:
        self.calls.clear()
        self.ms.clear()


def removed_users(n: int) -> list[str]:
    """The DNs both scenarios remove: the first ``n`` of the grown LIC-Run (its idle half)."""
    return members_for(n)[:n]


def _kept_users(n: int) -> list[str]:
    return members_for(n)[n : n + WARM_UP]


@contextlib.contextmanager
def _timed_cases(times: list[float]) -> Iterator[None]:
    """Time the work the worker does per case, claims excluded: each ``process_case``,
    and each group of removals (``process_removals``), whose time is shared evenly by
    the removals in it (names as the worker module holds them). ``times`` gets one
    figure per case: the sum of what the pass spent on it."""
    real_case = worker_module.process_case
    real_group = worker_module.process_removals
    spent: dict[int, float] = defaultdict(float)

    def timed_case(rt: Any, case_id: int) -> Any:
        started = time.perf_counter()
        try:
            return real_case(rt, case_id)
        finally:
            spent[case_id] += time.perf_counter() - started

    def timed_group(rt: Any, ids: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_group(rt, ids)
        finally:
            share = (time.perf_counter() - started) / max(1, len(ids))
            for case_id in ids:
                spent[case_id] += share

    worker_module.process_case = timed_case
    worker_module.process_removals = timed_group  # type: ignore[assignment]
    try:
        yield
    finally:
        worker_module.process_case = real_case
        worker_module.process_removals = real_group
        times.extend(spent.values())


def reclaim_run(
    dc: SambaDC,
    *,
    n: int,
    server: GraphServer,
    graph_clock: ManualClock,
    tmp: Path,
    profile: cProfile.Profile | None = None,
) -> Run:
    """``n`` consented, authorized removals executed by one worker pass (see module doc);
    ``profile``, when given, runs during the pass."""
    admin = dc.admin_connection()
    world, _hybrid, _config = build_ad_kill_world(
        n=n,
        admin=admin,
        dc=dc,
        server=server,
        graph_clock=graph_clock,
        db_url=f"sqlite:///{tmp / 'reclaim.db'}",
        tmp=tmp,
    )
    worker: Worker | None = None
    try:
        opened = world.cycle()
        assert len(opened.opened) == n, opened.plan.alerts
        asked = world.drain().results()
        assert asked == {"asked": n}, asked
        world.answer_all()  # everyone releases their seat
        authorized = world.cycle().authorized
        assert authorized == n, authorized

        meter = StepMeter()
        directories = default_directories(world.engine, world.settings, on_step=meter)
        worker = Worker(
            engine=world.engine, settings=world.settings, directories=directories, concurrency=1
        )
        port = directories(world.policy)
        for dn in _kept_users(n):
            assert port.is_member(policy=world.policy, user=upn_of(dn))
        meter.clear()

        times: list[float] = []
        with _timed_cases(times), _clocked(dc) as clocks:
            if profile is not None:
                profile.enable()
            try:
                stats = worker.drain()
            finally:
                if profile is not None:
                    profile.disable()
        results = stats.results()
        assert results == {"awaiting_sync": n}, results
        assert len(times) == n, len(times)
        _check_removed(admin, n)
        return Run(times, clocks, meter.calls, dict(meter.ms))
    finally:
        if worker is not None:
            worker.close()
        world.close()
        admin.unbind()


def direct_run(dc: SambaDC, *, n: int) -> Run:
    """The same ``n`` removals as four ldap3 operations each, on one connection."""
    admin = dc.admin_connection()
    try:
        if n > seed.RUN_GROUP_SIZE // 2:
            grow_run_group(admin, n)  # the same group size as the reclaim run's
        tls = Tls(ca_certs_file=str(dc.ca_file), validate=ssl.CERT_REQUIRED)
        server = Server(dc.address, port=636, use_ssl=True, tls=tls, get_info="NO_INFO")
        conn = Connection(
            server,
            user=seed.SERVICE_ACCOUNT.upn,
            password=dc.template.service_password,
            auto_bind=True,
            auto_referrals=False,
            raise_exceptions=False,
        )
        calls: Counter[str] = Counter()
        ms: defaultdict[str, float] = defaultdict(float)

        def op(name: str, action: Callable[[], object]) -> None:
            began = time.perf_counter()
            action()
            calls[name] += 1
            ms[name] += (time.perf_counter() - began) * 1000

        def lookup(dn: str) -> tuple[str, str]:
            sam = upn_of(dn).split("@", 1)[0]
            op(
                "ldap.find_user_by_sam",
                lambda: conn.search(
                    seed.BASE_DN,
                    f"(&{ad.USER_FILTER}(sAMAccountName={escape_filter_chars(sam)}))",
                    search_scope=SUBTREE,
                    attributes=USER_ATTRIBUTES,
                ),
            )
            (entry,) = [e for e in conn.response if e.get("type") == "searchResEntry"]
            found = str(entry["dn"])
            member = f"(member={escape_filter_chars(found)})"
            op(
                "ldap.is_direct_member",
                lambda: conn.search(GROUP.dn, member, search_scope=BASE, attributes=["1.1"]),
            )
            return found, member

        def one(dn: str) -> None:
            found, member = lookup(dn)
            assert conn.response, found
            op(
                "ldap.remove_member",
                lambda: conn.modify(GROUP.dn, {"member": [(MODIFY_DELETE, [found])]}),
            )
            assert conn.result["result"] == 0, conn.result
            op(
                "ldap.verify_removed",
                lambda: conn.search(GROUP.dn, member, search_scope=BASE, attributes=["1.1"]),
            )
            assert not [e for e in conn.response if e.get("type") == "searchResEntry"]

        try:
            for dn in _kept_users(n):
                lookup(dn)
            calls.clear()
            ms.clear()
            times: list[float] = []
            with _clocked(dc) as clocks:
                for dn in removed_users(n):
                    began = time.perf_counter()
                    one(dn)
                    times.append(time.perf_counter() - began)
        finally:
            conn.unbind()
        _check_removed(admin, n)
        return Run(times, clocks, calls, dict(ms))
    finally:
        admin.unbind()


def _check_removed(admin: Connection, n: int) -> None:
    """Exactly the ``n`` removed users are gone from the group; the others stay."""
    left = direct_members(admin, GROUP.dn)
    gone = {dn.lower() for dn in removed_users(n)}
    kept = {dn.lower() for dn in members_for(n)} - gone
    assert not gone & left and kept <= left, (len(gone & left), len(kept - left))
