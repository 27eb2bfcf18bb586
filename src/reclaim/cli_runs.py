"""``reclaim run`` and ``reclaim worker``: cycles and case steps, part of ``cli_decisions``."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from sqlalchemy import Connection, select

from reclaim.bootstrap import Context
from reclaim.cli import ConfigOpt, JsonOpt, context, err, now_utc, out, print_json
from reclaim.cli_decisions import selected_policies, working
from reclaim.cli_render import cycle_lines, plan_lines, step_lines
from reclaim.config import load_settings
from reclaim.domain.policy import Policy
from reclaim.runner import DEFAULT_CONCURRENCY, GROUP_SIZE


def run(
    policy: Annotated[str, typer.Option("--policy", "-p", help="The policy to run.")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Do everything but write: nothing is kept or sent."),
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one cycle of a policy now, then the steps it allows (asks, removals)."""
    from reclaim.services.cycle import run_cycle

    ctx = context(config)
    pol = selected_policies(ctx, policy)[0]
    stops: list[str] = []
    if dry_run:
        outcome, reports = _dry_run(ctx, pol)
    else:
        with working(f"running {pol.name} …"):
            outcome = run_cycle(ctx.engine, settings=ctx.settings, policy=pol, now=now_utc())
            worker = _worker(ctx)
            try:
                stats = worker.drain(policy_ids=[_policy_id(ctx, pol)])
            finally:
                worker.close()
        reports, stops = stats.reports, stats.stops
        for stop in stops:
            err.print(f"[bold red]stopped:[/] {stop}", highlight=False)
    if as_json:
        print_json(
            {
                "policy": pol.name,
                "dry_run": dry_run,
                "plan_id": outcome.plan_id,
                "opened": outcome.opened,
                "closed": [{"user": u, "cause": c} for u, c in outcome.closed],
                "authorized": outcome.authorized,
                "awaiting_approval": outcome.awaiting_approval,
                "blocked": outcome.blocked,  # why nobody was asked or removed, or null
                "plan": outcome.plan.to_dict(),
                "steps": [r.__dict__ for r in reports],
                "stopped": stops,  # why the worker's pass stopped early, if it did
            }
        )
        return
    if dry_run:
        out.print("[bold]dry run[/]: nothing below was kept, sent or written to a directory")
    for line in cycle_lines(outcome) + plan_lines(outcome.plan) + step_lines(reports):
        out.print(line, highlight=False, markup=False)


def _policy_id(ctx: Context, pol: Policy) -> int:
    from reclaim.store.policies import policy_id

    with ctx.engine.connect() as conn:
        found = policy_id(conn, pol.name)
    assert found is not None  # policies are synced when the context opens
    return found


def _worker(ctx: Context, **kwargs: Any) -> Any:
    from reclaim.runner.worker import Worker
    from reclaim.workflows.directory import default_directories

    kwargs.setdefault("concurrency", DEFAULT_CONCURRENCY)
    return Worker(
        engine=ctx.engine,
        settings=ctx.settings,
        directories=default_directories(ctx.engine, ctx.settings),
        **kwargs,
    )


def _dry_run(ctx: Context, pol: Policy) -> tuple[Any, list[Any]]:
    """A cycle and its steps on one connection, rolled back at the end; the write gate
    refuses every directory write, so nothing leaves Reclaim either."""
    from reclaim.services.cycle import apply_cycle
    from reclaim.services.decisions import evaluate
    from reclaim.services.runtime import Runtime, StopSignal
    from reclaim.services.steps import process_case
    from reclaim.store.tables import cases
    from reclaim.workflows.asker import OutboxAsker
    from reclaim.workflows.directory import default_directories
    from reclaim.workflows.gate import WriteGate

    now = now_utc().replace(microsecond=0)
    pv = evaluate(
        ctx.engine,
        [pol],
        as_of=now.date(),
        now=now,
        freshness_days=ctx.settings.usage.freshness_days,
        configured=ctx.settings.policies,
    )[0]
    reports: list[Any] = []
    directories = default_directories(ctx.engine, ctx.settings, dry_run=True)
    with ctx.engine.connect() as conn:
        outer = conn.begin()
        try:
            outcome = apply_cycle(
                conn, pv=pv, policy_id=pv.policy_id, settings=ctx.settings, now=now
            )

            @contextmanager
            def savepoint() -> Iterator[Connection]:
                with conn.begin_nested():
                    yield conn

            rt = Runtime(
                engine=ctx.engine,
                settings=ctx.settings,
                directories=directories,
                asker=OutboxAsker(),
                gate=WriteGate(safety=ctx.settings.safety, dry_run=True),
                clock=lambda: now,
                owner="dry-run",
                tx=savepoint,
            )
            due = conn.execute(
                select(cases.c.id)
                .where(
                    cases.c.policy_id == pv.policy_id, cases.c.next_due_at <= int(now.timestamp())
                )
                .order_by(cases.c.id)
            ).scalars()
            for case_id in list(due):
                try:
                    reports += process_case(rt, int(case_id))
                except StopSignal as exc:
                    reports += exc.reports
                    err.print(f"[bold red]stopped:[/] {exc}", highlight=False)
                    break
        finally:
            outer.rollback()
            directories.close()
    return outcome, reports


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="One pass: every due cycle and case, then exit.")
    ] = False,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", help="Exit after this long.", min=0)
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            help="Cases claimed at a time with --concurrency 1 (with more threads, as many "
            "as are free).",
            min=1,
        ),
    ] = 10,
    concurrency: Annotated[
        int,
        typer.Option(
            help="Units of work run at once (threads): a case, or a group of removals; "
            "they mostly wait for Graph or LDAP. 1 runs them one by one.",
            min=1,
            max=64,
        ),
    ] = DEFAULT_CONCURRENCY,
    group_size: Annotated[
        int,
        typer.Option(
            help="Due removals of one policy taken together (one Graph $batch; LDAP: one "
            "store transaction each side). A killed worker strands at most concurrency x "
            "this many cases until their leases run out (10 minutes).",
            min=1,
            max=GROUP_SIZE,
        ),
    ] = GROUP_SIZE,
    poll: Annotated[float, typer.Option(help="Seconds between looks when idle.", min=0.1)] = 5.0,
    config: ConfigOpt = None,
) -> None:
    """Run scheduled cycles and due case steps until stopped.

    Each policy's cron schedule starts its cycles; SIGTERM or Ctrl-C finish the case in
    hand, then exit; SIGHUP re-reads the configuration between two cases (policies,
    safety, usage, campaigns; database/entra/ldap changes need a restart). Several
    workers may run against one database.
    """
    ctx = context(config)
    w = _worker(ctx, batch=batch, concurrency=concurrency, group_size=group_size, poll_seconds=poll)

    def stop(_signum: int, _frame: object) -> None:
        w.stop()

    def reload(_signum: int, _frame: object) -> None:
        w.request_reload(lambda: load_settings(config, check_secrets=False))

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)  # systemctl reload: policies, safety, campaigns
    err.print(f"worker {w.owner} started" + (" (one pass)" if once else ""), highlight=False)
    try:
        stats = w.run(once=once, max_seconds=max_seconds)
    finally:
        w.close()
    for outcome in stats.cycles:
        for line in cycle_lines(outcome):
            out.print(line, highlight=False, markup=False)
    results = stats.results()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(results.items())) or "nothing due"
    out.print(f"worker {w.owner}: {len(stats.cycles)} cycle(s), {summary}", highlight=False)
    for stop_reason in stats.stops:
        err.print(f"[bold red]stopped:[/] {stop_reason}", highlight=False)
