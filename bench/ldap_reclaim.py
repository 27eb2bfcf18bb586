"""Benchmark: removals on a Samba DC through Reclaim's workflow executor vs plain ldap3.

    .venv/bin/python -m bench.ldap_reclaim                     # 1,000 removals
    .venv/bin/python -m bench.ldap_reclaim --removals 300 --write-readme

Needs root and Samba (``scripts/install-samba.sh``). Each run starts its own Samba AD DC
on loopback, a fresh copy of the provisioned domain (``reclaim.testing.samba``; the
template is made once, or reused from ``RECLAIM_SAMBA_TEMPLATE``), and stops it by PID.
The group is LIC-Run grown to twice ``--removals`` members (the mass-removal guard
halts a policy touching more than half its group); the first half is removed.

1. **Reclaim**: ``onprem_ad`` cases in a SQLite store, asked, released by everyone and
   authorized by a cycle's plan, then executed by one ``Worker`` pass built as
   ``reclaim worker`` builds it (``default_directories``, one unit of work at a time:
   groups of 20 removals, ``services/group_removal.py``). Each case: the usage
   re-check, the Entra lookups through Graph (the Graph test server, in-process, no
   added latency, a tenant mirroring the DC as synced objects; ``$batch`` reads for a
   group), the AD lookups and membership check, the write gate's records,
   MODIFY_DELETE, the read-back, the case's transitions and step history. (Entra ID is
   first looked at for the sync 15 minutes later, outside the pass.) A group's time is
   shared evenly by its removals for the per-removal figures.
2. **direct**: the same users on a same-sized group, and the same LDAP operations
   written with ldap3 on one connection with the same settings: user by
   sAMAccountName, membership check, MODIFY_DELETE, read-back. Nothing else.

Runs go direct, Reclaim, Reclaim, direct (each on a fresh DC: removals leave deleted
link values that slow a group down), and each scenario's figures cover both its runs.
Reported: total time, mean/p50/p95 per removal, CPU per removal of the thread doing
the work, of the in-process Graph server and of the Samba DC, Reclaim's overhead over
direct (target ≤ 20 %) by wall time and by CPU, Reclaim's own time per removal (all but
its LDAP calls), and where Reclaim's time per removal goes, step by step. ``--profile``
writes cProfile stats of the Reclaim passes (the worker thread only).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.onprem.runner_world import PASSWORD_ENV, SECRET_ENV

from bench.ldap_runs import Run, direct_run, reclaim_run
from reclaim.testing.graph import CA_ENV_VARS, GraphServer, ManualClock, Tenant
from reclaim.testing.hybrid import HYBRID_CLIENT_SECRET
from reclaim.testing.samba import (
    SambaDC,
    ensure_template,
    free_loopback_addresses,
    samba_unavailable_reason,
)

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- ldap-reclaim:begin -->", "<!-- ldap-reclaim:end -->"
ORDER = ("direct", "reclaim", "reclaim", "direct")
TARGET = 20.0  # % overhead over direct


def summary(name: str, runs: list[Run]) -> dict[str, Any]:
    """Totals over ``runs``: wall seconds; per removal, mean/p50/p95 wall and the CPU of
    the worker thread, of the in-process Graph server, of the DC and of all three (ms)."""
    times = sorted(t for r in runs for t in r.times)
    count = len(times)

    def per_removal(seconds: float) -> float:
        return seconds / count * 1000

    cpu = per_removal(sum(r.clocks.cpu for r in runs))
    graph = per_removal(sum(r.clocks.others for r in runs))
    on_dc = per_removal(sum(r.clocks.dc for r in runs))
    return {
        "scenario": name,
        "removals": count,
        "total_s": sum(r.wall for r in runs),
        "mean_ms": per_removal(sum(r.wall for r in runs)),
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(0.95 * (count - 1))] * 1000,
        "cpu_ms": cpu,
        "graph_cpu_ms": graph,
        "dc_cpu_ms": on_dc,
        "all_cpu_ms": cpu + graph + on_dc,
        "ldap_ms": per_removal(
            sum(ms for r in runs for step, ms in r.ms.items() if step.startswith("ldap.")) / 1000
        ),
    }


def overheads(reclaim: dict[str, Any], direct: dict[str, Any]) -> tuple[float, float]:
    """Reclaim over direct, in %: by wall time, and by CPU (worker + Graph server + DC)."""
    return (
        (reclaim["total_s"] / direct["total_s"] - 1) * 100,
        (reclaim["all_cpu_ms"] / direct["all_cpu_ms"] - 1) * 100,
    )


def table(reclaim: dict[str, Any], direct: dict[str, Any]) -> str:
    """The comparison, as Markdown."""
    lines = [
        "| scenario | removals | total (s) | mean (ms) | p50 (ms) | p95 (ms) "
        "| CPU/removal (ms): worker | Graph server | DC | all | overhead: wall | CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in (reclaim, direct):
        wall, cpu = overheads(r, direct)
        lines.append(
            f"| {r['scenario']} | {r['removals']:,} | {r['total_s']:.2f} | {r['mean_ms']:.2f} "
            f"| {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['cpu_ms']:.2f} "
            f"| {r['graph_cpu_ms']:.2f} | {r['dc_cpu_ms']:.2f} | {r['all_cpu_ms']:.2f} "
            f"| {wall:+.1f}% | {cpu:+.1f}% |"
        )
    return "\n".join(lines)


def steps_table(reclaim: list[Run], direct: list[Run]) -> str:
    """Per removal: directory calls and their milliseconds, for both scenarios, and
    what is left of Reclaim's time (store, decisions, history, the worker's loop)."""
    rows: list[str] = [
        "| per removal | Reclaim: calls | Reclaim: ms | direct: calls | direct: ms |",
        "|---|---:|---:|---:|---:|",
    ]
    sums: dict[str, tuple[Counter[str], dict[str, float], int]] = {}
    for name, runs in (("reclaim", reclaim), ("direct", direct)):
        calls: Counter[str] = Counter()
        ms: dict[str, float] = {}
        for run in runs:
            calls.update(run.calls)
            for step, spent in run.ms.items():
                ms[step] = ms.get(step, 0.0) + spent
        sums[name] = (calls, ms, sum(len(r.times) for r in runs))
    names = sorted(set(sums["reclaim"][0]) | set(sums["direct"][0]), key=_step_order)

    def cell(name: str, step: str) -> str:
        calls, ms, count = sums[name]
        if not calls[step]:
            return "– | –"
        if calls[step] < count / 10:  # once per pass (the group), not per removal
            return f"{calls[step]} in all | {ms[step] / count:.2f}"
        return f"{calls[step] / count:.2f} | {ms[step] / count:.2f}"

    for step in names:
        rows.append(f"| `{step}` | {cell('reclaim', step)} | {cell('direct', step)} |")
    totals = []
    for name, runs in (("reclaim", reclaim), ("direct", direct)):
        calls, ms, count = sums[name]
        wall = sum(r.wall for r in runs) * 1000 / count
        directory = sum(ms.values()) / count
        totals.append((sum(calls.values()) / count, directory, wall - directory))
    (rc, rd, rrest), (dc, dd, drest) = totals
    rows.append(f"| all directory calls | {rc:.2f} | {rd:.2f} | {dc:.2f} | {dd:.2f} |")
    rows.append(
        f"| the rest: store, decisions, history, loop | | {rrest:.2f} | | {max(drest, 0):.2f} |"
    )
    return "\n".join(rows)


def _step_order(step: str) -> tuple[int, str]:
    return (0 if step.startswith("graph.") else 1, step)


def verdict(reclaim: dict[str, Any], direct: dict[str, Any]) -> str:
    """Whether the overhead target is met, by wall time and by CPU."""
    wall, cpu = overheads(reclaim, direct)

    def met(over: float) -> str:
        return "met" if over <= TARGET else "NOT met"

    # What Reclaim adds, without the DC's share of its own wall time (which moves with
    # the machine's load from run to run): all but its LDAP calls, against direct.
    own = reclaim["mean_ms"] - reclaim["ldap_ms"]
    share = own / direct["mean_ms"] * 100
    return (
        f"Reclaim's overhead over direct (target ≤ {TARGET:g}%): {wall:+.1f}% by wall time "
        f"({met(wall)}), {cpu:+.1f}% by CPU ({met(cpu)}). Reclaim's own time per removal "
        f"(all but its LDAP calls: Graph, store, decisions, history): {own:.1f} ms, "
        f"{share:.0f}% of a direct removal's {direct['mean_ms']:.1f} ms."
    )


def write_readme(text: str) -> None:
    """Replace the figures between the LDAP reclaim markers (added at the end if absent)."""
    readme = ROOT / "bench" / "README.md"
    current = readme.read_text(encoding="utf-8")
    body = f"{BEGIN}\n{text}\n{END}"
    if BEGIN not in current:
        current = current.rstrip("\n") + (
            "\n\n## LDAP reclaim (on-prem AD)\n\n`python -m bench.ldap_reclaim`: see "
            "the module's docstring.\n\n" + body + "\n"
        )
    else:
        current = current[: current.index(BEGIN)] + body + current[current.index(END) + len(END) :]
    readme.write_text(current, encoding="utf-8")


def main() -> None:
    """Start the peers, run the scenarios A-B-B-A, print (and optionally record) them."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--removals", type=int, default=1000, help="removals per run (≥ 200)")
    ap.add_argument("--write-readme", action="store_true", help="update bench/README.md")
    ap.add_argument(
        "--profile", type=Path, help="write cProfile stats of the Reclaim passes to this file"
    )
    args = ap.parse_args()
    if args.removals < 200:
        ap.error("--removals must be at least 200 (LIC-Run's seed size is 400)")
    reason = samba_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    n = args.removals
    runs: dict[str, list[Run]] = {"direct": [], "reclaim": []}
    profile = cProfile.Profile() if args.profile else None
    kept = os.environ.get("RECLAIM_SAMBA_TEMPLATE")
    with tempfile.TemporaryDirectory(prefix="reclaim-bench-ldap-") as tmp_dir:
        tmp = Path(tmp_dir)
        template = ensure_template(Path(kept) if kept else tmp / "template")
        address = free_loopback_addresses(1)[0]
        graph_clock = ManualClock()
        with GraphServer(Tenant("00000000-0000-4000-8000-000000000000"), clock=graph_clock) as gs:
            # The worker's config reads both secrets from the environment, and its
            # Graph client trusts the test server's CA through it.
            os.environ[SECRET_ENV] = HYBRID_CLIENT_SECRET
            os.environ[PASSWORD_ENV] = template.service_password
            os.environ.update(gs.client_env())
            for i, name in enumerate(ORDER):
                with SambaDC.from_template(template, tmp / f"dc{i}", address=address) as dc:
                    dc.start()
                    if name == "direct":
                        runs[name].append(direct_run(dc, n=n))
                    else:
                        work = tmp / f"store{i}"
                        work.mkdir()
                        runs[name].append(
                            reclaim_run(
                                dc,
                                n=n,
                                server=gs,
                                graph_clock=graph_clock,
                                tmp=work,
                                profile=profile,
                            )
                        )
                last = runs[name][-1]
                print(f"{name}: {len(last.times)} removals in {last.wall:.1f} s", flush=True)
    for name in CA_ENV_VARS:  # the server's CA file is gone with it
        os.environ.pop(name, None)
    reclaim = summary("Reclaim (worker, onprem_ad)", runs["reclaim"])
    direct = summary("direct ldap3", runs["direct"])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    load = os.getloadavg()[0]
    text = (
        f"`python -m bench.ldap_reclaim --removals {n}` — {when}, {os.cpu_count()} cores, "
        f"Samba DC on loopback (LDAPS), LIC-Run grown to {2 * n:,} members; "
        f"runs {', '.join(ORDER)}\n\n"
        + table(reclaim, direct)
        + "\n\n"
        + verdict(reclaim, direct)
        + "\n\nWhere the time goes, per removal (directory calls as the adapter records "
        "them; `(cached)`: answered from the pass's cache, no request):\n\n"
        + steps_table(runs["reclaim"], runs["direct"])
        + f"\n\nLoad average when done: {load:.1f}."
    )
    print(text)
    if profile is not None:
        profile.dump_stats(args.profile)
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
