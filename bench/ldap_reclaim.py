"""Benchmark: removals on a Samba DC through the onprem_ad adapter vs plain ldap3.

    .venv/bin/python -m bench.ldap_reclaim                     # 1,000 removals
    .venv/bin/python -m bench.ldap_reclaim --removals 300 --write-readme

Starts a Samba AD DC on loopback (``reclaim.testing.samba``; needs root and Samba;
``RECLAIM_SAMBA_TEMPLATE`` reuses a provisioned template) and removes bulk users from
``LIC-Big`` (1,601 members) one at a time, twice:

1. **adapter**: ``OnPremAdDirectory.remove_member`` (no Graph: the AD group is named
   by DN, users by UPN), i.e. user lookup, direct-membership check, the removal, the
   read-back, plus the adapter's step records, error mapping and write guards;
2. **direct**: the same four LDAP operations written with ldap3 on one connection
   with the same settings (LDAPS, verified certificate, simple bind as the service
   account), nothing else.

Each run starts a fresh copy of the domain (removals leave deleted link values that
slow later runs on the same DC) and warms up on 50 other users; the runs go direct,
adapter, adapter, direct, and each scenario's figures cover both its runs
(2 × ``--removals``). Reported: total time, p50/p95 per removal, client CPU per
removal (the Python work alone), and the adapter's overhead over direct (target ≤ 20%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ldap3 import BASE, MODIFY_DELETE, SUBTREE, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars

from reclaim.connectors import ad_vendor as ad
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.connectors.ldap_entries import USER_ATTRIBUTES
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.testing import samba_seed as seed
from reclaim.testing.samba import SambaDC, ensure_template, free_loopback_addresses
from reclaim.workflows.onprem_ad import OnPremAdDirectory

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- ldap-reclaim:begin -->", "<!-- ldap-reclaim:end -->"
GROUP = seed.LIC_BIG


def _settings(dc: SambaDC) -> LdapSettings:
    return LdapSettings(
        hosts=(dc.address,),
        base_dn=seed.BASE_DN,
        bind_user=seed.SERVICE_ACCOUNT.upn,
        password=dc.template.service_password,
        ca_file=str(dc.ca_file),
    )


def run_adapter(dc: SambaDC, users: Sequence[seed.SeedUser]) -> list[float]:
    """Per-removal seconds through the workflow adapter."""
    policy = Policy(
        name="bench",
        apps=("bench",),
        group=GroupRef(ad_dn=GROUP.dn),
        workflow=Workflow.ONPREM_AD,
        seat_cost=SeatCost(amount=1),  # type: ignore[arg-type]
    )
    with LdapConnector(_settings(dc)) as ldap:
        directory = OnPremAdDirectory(ldap=ldap, graph=None)
        directory.is_member(policy=policy, user=seed.BOB.upn)  # connect + resolve the group
        directory.log.drain()

        def one(user: seed.SeedUser) -> None:
            directory.remove_member(policy=policy, user=user.upn, idempotency_key=user.sam)
            directory.log.drain(user=user.upn)  # as a runner would, per case

        return _timed(users, one)


def run_direct(dc: SambaDC, users: Sequence[seed.SeedUser]) -> list[float]:
    """Per-removal seconds for the same LDAP operations written with ldap3 directly."""
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
    group_dn = GROUP.dn

    def one(user: seed.SeedUser) -> None:
        upn = escape_filter_chars(user.upn)
        conn.search(
            seed.BASE_DN,
            f"(&{ad.USER_FILTER}(userPrincipalName={upn}))",
            search_scope=SUBTREE,
            attributes=USER_ATTRIBUTES,
        )
        dn = conn.response[0]["dn"]
        member = f"(member={escape_filter_chars(dn)})"
        conn.search(group_dn, member, search_scope=BASE, attributes=["1.1"])
        assert conn.response, dn
        conn.modify(group_dn, {"member": [(MODIFY_DELETE, [dn])]})
        assert conn.result["result"] == 0, conn.result
        conn.search(group_dn, member, search_scope=BASE, attributes=["1.1"])
        assert not [e for e in conn.response if e.get("type") == "searchResEntry"]

    try:
        return _timed(users, one)
    finally:
        conn.unbind()


def _timed(users: Sequence[seed.SeedUser], one: Callable[[seed.SeedUser], None]) -> list[float]:
    times = []
    for user in users:
        started = time.perf_counter()
        one(user)
        times.append(time.perf_counter() - started)
    return times


def summary(name: str, times: list[float], cpu: float) -> dict[str, Any]:
    """Total, p50 and p95 of a run, in milliseconds; client CPU per removal."""
    ordered = sorted(times)
    return {
        "scenario": name,
        "removals": len(times),
        "total_s": sum(times),
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        "cpu_ms": cpu / len(times) * 1000,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table; overhead is against the direct run (the last row)."""
    base = rows[-1]["total_s"]
    lines = [
        "| scenario | removals | total (s) | p50 (ms) | p95 (ms) | client CPU/removal (ms) "
        "| overhead |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['removals']:,} | {r['total_s']:.2f} | {r['p50_ms']:.2f} "
            f"| {r['p95_ms']:.2f} | {r['cpu_ms']:.2f} | {(r['total_s'] / base - 1) * 100:+.1f}% |"
        )
    return "\n".join(lines)


def write_readme(text: str) -> None:
    """Replace the figures between the LDAP reclaim markers (added at the end if absent)."""
    readme = ROOT / "bench" / "README.md"
    current = readme.read_text(encoding="utf-8")
    body = f"{BEGIN}\n{text}\n{END}"
    if BEGIN not in current:
        current = current.rstrip("\n") + (
            "\n\n## LDAP reclaim (on-prem AD)\n\n"
            "`bench/ldap_reclaim.py`: removals from a 1,601-member group on a Samba DC "
            "through the `onprem_ad` adapter (lookup, direct-membership check, removal, "
            "read-back, step records) against the same four LDAP operations written "
            "with ldap3 directly on the same connection settings. Target: overhead ≤ 20%.\n\n"
            f"{body}\n"
        )
    else:
        current = current[: current.index(BEGIN)] + body + current[current.index(END) + len(END) :]
    readme.write_text(current, encoding="utf-8")


def main() -> None:
    """Start a DC, warm up, run both scenarios, print (and optionally record) them."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--removals", type=int, default=1000, help="removals per scenario")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    args = ap.parse_args()
    users = seed.BULK_USERS[: args.removals]
    warm = seed.BULK_USERS[-50:]  # never among the measured users
    kept = os.environ.get("RECLAIM_SAMBA_TEMPLATE")
    times: dict[str, list[float]] = {"direct": [], "adapter": []}
    cpu: dict[str, float] = {"direct": 0.0, "adapter": 0.0}
    with tempfile.TemporaryDirectory(prefix="reclaim-bench-ldap-") as tmp:
        template = ensure_template(Path(kept) if kept else Path(tmp) / "template")
        address = free_loopback_addresses(1)[0]
        # Each run gets a fresh copy of the domain: every removal leaves a deleted link
        # value on the group, which slows later runs on the same DC. A-B-B-A on top.
        for i, name in enumerate(("direct", "adapter", "adapter", "direct")):
            run = run_direct if name == "direct" else run_adapter
            with SambaDC.from_template(template, Path(tmp) / f"dc{i}", address=address) as dc:
                dc.start()
                run(dc, warm)
                started = time.process_time()
                times[name] += run(dc, users)
                cpu[name] += time.process_time() - started
    rows = [
        summary("adapter (OnPremAdDirectory)", times["adapter"], cpu["adapter"]),
        summary("direct ldap3", times["direct"], cpu["direct"]),
    ]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    text = (
        f"`python -m bench.ldap_reclaim --removals {args.removals}` — {when}, "
        f"{os.cpu_count()} cores, Samba DC on loopback (LDAPS)\n\n" + table(rows)
    )
    print(text)
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
