"""Decision commands: candidates, plans, runs, the worker, answers, the kill switch,
savings, cases and manual tasks. Each is a thin layer over ``reclaim.services``."""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from reclaim.bootstrap import Context
from reclaim.cli import ConfigOpt, JsonOpt, context, err, fail, now_utc, out, print_json
from reclaim.cli_render import (
    breakdown_line,
    plan_lines,
    verdict_rows,
    verdict_table,
    when,
)
from reclaim.domain.policy import Policy

if TYPE_CHECKING:
    from reclaim.services.decisions import PolicyVerdicts

PolicyOpt = Annotated[str | None, typer.Option("--policy", "-p", help="Only this policy.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who is doing this (default: your user name).")
]

plan_app = typer.Typer(
    help="Preview what the next run would do; approve or reject it.", invoke_without_command=True
)
cases_app = typer.Typer(help="Reclamation cases and their history.", invoke_without_command=True)
tasks_app = typer.Typer(
    help="The manual workflow's task list: removals an admin carries out.",
    invoke_without_command=True,
)


def actor(by: str | None) -> str:
    """Who is acting: ``--by``, else the user running the command."""
    return (by or getpass.getuser()).strip()


def selected_policies(ctx: Context, name: str | None) -> list[Policy]:
    """The ``--policy`` (or every enabled policy), failing clearly on an unknown name."""
    if name is None:
        return [p for p in ctx.settings.policies if p.enabled]
    try:
        return [ctx.settings.policy(name)]
    except KeyError as exc:
        fail(str(exc.args[0]))


@contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on a terminal for work that takes a while; nothing when piped."""
    if err.is_terminal:
        with err.status(message):
            yield
    else:
        yield


def _day(text: str | None) -> dt.date:
    if text is None:
        return now_utc().date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of must be a date YYYY-MM-DD (got {text!r})")


# -- candidates ---------------------------------------------------------------------------
def candidates(
    policy: PolicyOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default: today).")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every member, not only candidates.")
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each member's verdict and reason; candidates first.

    Verdicts: in_use, unused, underused, no_data, grace, excluded, seasonal. The table
    lists candidates (--all: every member); --json lists every member of every policy.
    """
    from reclaim.services.decisions import evaluate_in_runs

    ctx = context(config)
    pols = selected_policies(ctx, policy)
    day = _day(as_of)
    # Judged in runs of policies, each printed before the next run is judged: a large
    # tenant's members all at once would take gigabytes (services/decisions.py).
    verdicts = evaluate_in_runs(
        ctx.engine,
        pols,
        as_of=day,
        now=now_utc(),
        freshness_days=ctx.settings.usage.freshness_days,
        configured=ctx.settings.policies,
    )
    if as_json:
        with working(f"evaluating {len(pols)} policies as of {day} …"):
            rows = [row for pv in verdicts for row in verdict_rows([pv], only_candidates=False)]
        print_json(rows)
        return
    with working(f"evaluating {len(pols)} policies as of {day} …"):
        first = next(verdicts, None)  # the first run is judged here; later ones as printed
    if first is not None:
        _print_verdicts(first, day=day, show_all=show_all)
    for pv in verdicts:
        _print_verdicts(pv, day=day, show_all=show_all)


def _print_verdicts(pv: PolicyVerdicts, *, day: dt.date, show_all: bool) -> None:
    out.print(breakdown_line(pv))
    rows = verdict_rows([pv], only_candidates=not show_all)
    if rows:
        label = "members" if show_all else "candidates"
        out.print(verdict_table(f"{pv.policy.name}: {label} as of {day}", rows))


# -- plan -----------------------------------------------------------------------------------
@plan_app.callback()
def plan(
    typer_ctx: typer.Context,
    policy: PolicyOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Preview the next run: who is asked, who is removed, what it saves.

    Nothing changes; the plan is stored so that it can be approved by id.
    """
    if typer_ctx.invoked_subcommand is not None:
        return
    from reclaim.services.plans import preview

    ctx = context(config)
    pols = selected_policies(ctx, policy)
    with working("planning …"):
        made = preview(ctx.engine, settings=ctx.settings, policies=pols, now=now_utc())
    if as_json:
        print_json({"id": made.plan_id, "status": made.status, **made.plan.to_dict()})
        return
    for line in plan_lines(made.plan, plan_id=made.plan_id, status=made.status):
        out.print(line, highlight=False, markup=False)
    if made.status == "awaiting_approval":
        out.print(f"Approve with: reclaim plan approve {made.plan_id}")


@plan_app.command("approve")
def plan_approve(
    plan_id: Annotated[int, typer.Argument(help="The plan's id.")],
    by: ByOpt = None,
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Approve a plan: its planned removals may go ahead (require_approval policies)."""
    from reclaim.services.plans import PlanError, approve_plan

    ctx = context(config)
    try:
        stored, woken = approve_plan(ctx.engine, plan_id, by=actor(by), now=now_utc(), note=note)
    except PlanError as exc:
        fail(str(exc))
    out.print(
        f"plan #{plan_id} approved by {stored.decided_by}; {woken} waiting removal(s) released"
    )


@plan_app.command("reject")
def plan_reject(
    plan_id: Annotated[int, typer.Argument(help="The plan's id.")],
    by: ByOpt = None,
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Reject a plan: its removals keep waiting and are planned again next cycle."""
    from reclaim.services.plans import PlanError, reject_plan

    ctx = context(config)
    try:
        reject_plan(ctx.engine, plan_id, by=actor(by), now=now_utc(), note=note)
    except PlanError as exc:
        fail(str(exc))
    out.print(f"plan #{plan_id} rejected")


@plan_app.command("show")
def plan_show(
    plan_id: Annotated[int, typer.Argument(help="The plan's id.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a stored plan and its review."""
    from reclaim.services.plans import PlanError, get_plan

    ctx = context(config)
    try:
        stored = get_plan(ctx.engine, plan_id)
    except PlanError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {"id": stored.id, "kind": stored.kind, "status": stored.status, **stored.content}
        )
        return
    for line in plan_lines(stored.plan, plan_id=stored.id, status=stored.status):
        out.print(line, highlight=False, markup=False)
    if stored.decided_by:
        out.print(f"{stored.status} by {stored.decided_by} at {when(stored.decided_at)}")


@plan_app.command("list")
def plan_list(config: ConfigOpt = None) -> None:
    """The most recent plans."""
    from rich.table import Table

    from reclaim.services.plans import recent_plans

    ctx = context(config)
    table = Table("id", "kind", "created", "policies", "status", "decided by")
    for p in recent_plans(ctx.engine):
        table.add_row(
            str(p.id),
            p.kind,
            when(p.created_at),
            ", ".join(x["policy"] for x in p.content["policies"]),
            p.status,
            p.decided_by or "",
        )
    out.print(table)


# -- answers and the kill switch ----------------------------------------------------------
def answer(
    case_id: Annotated[int, typer.Argument(help="The case's id (reclaim cases).")],
    choice: Annotated[str, typer.Argument(help="keep or release.")],
    reason: Annotated[str | None, typer.Option(help="The employee's reason.")] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who recorded it, when on the employee's behalf.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Record an employee's answer to a case's question: keep or release the license."""
    from reclaim.services.cases import CaseActionError
    from reclaim.services.cases import answer as record

    if choice not in ("keep", "release"):
        fail(f"the answer must be keep or release (got {choice!r})")
    ctx = context(config)
    try:
        saved = record(
            ctx.engine,
            ctx.settings,
            case_id,
            keep=choice == "keep",
            now=now_utc(),
            reason=reason,
            by=by,
        )
    except CaseActionError as exc:
        fail(str(exc))
    out.print(f"case #{case_id} ({saved.case.user}, {saved.case.policy}): {saved.case.state}")


def pause(
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    by: ByOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Kill switch on: no directory write happens, in any process, until resume."""
    from reclaim.store.leases import PAUSED, set_control

    ctx = context(config)
    who = actor(by) + (f": {reason}" if reason else "")
    with ctx.engine.begin() as conn:
        set_control(conn, PAUSED, "1", by=who, now=int(now_utc().timestamp()))
    out.print("paused: no directory write will happen until 'reclaim resume'")


def resume(by: ByOpt = None, config: ConfigOpt = None) -> None:
    """Kill switch off (unless safety.paused is true in the configuration)."""
    from reclaim.store.leases import PAUSED, set_control

    ctx = context(config)
    with ctx.engine.begin() as conn:
        set_control(conn, PAUSED, "0", by=actor(by), now=int(now_utc().timestamp()))
    if ctx.settings.safety.paused:
        err.print("still paused: safety.paused is true in the configuration file")
        raise typer.Exit(1)
    out.print("resumed: directory writes allowed again")


# -- report ---------------------------------------------------------------------------------
def report(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Savings: realized, potential, and seats to drop at renewal.

    Realized: seats reclaimed x seat cost, per month and per year. Potential: members
    who are candidates or in an open case. Renewal: seats that can be dropped.
    """
    from rich.table import Table

    from reclaim.services.report import savings_report

    ctx = context(config)
    with working("computing savings …"):
        data = savings_report(ctx.engine, settings=ctx.settings, now=now_utc())
    if as_json:
        print_json(data)
        return
    table = Table(
        "policy",
        "members",
        "reclaimed",
        "pending",
        "realized / month",
        "realized / year",
        "potential / year",
        "renewal",
        title=f"Savings as of {data['as_of']}",
        title_justify="left",
    )
    for r in data["policies"]:
        cur = r["seat_cost"]["currency"]
        renewal = r["renewal"]
        table.add_row(
            r["policy"],
            str(r["members"]),
            str(r["seats_reclaimed"]),
            str(r["seats_pending"]),
            f"{float(r['realized']['monthly']):,.2f} {cur}",
            f"{float(r['realized']['yearly']):,.2f} {cur}",
            f"{float(r['potential']['yearly']):,.2f} {cur}",
            "—"
            if renewal is None
            else f"{renewal['renews_on']}: drop {renewal['seats_to_drop']} seat(s)",
        )
    out.print(table)
    for cur, t in data["totals"].items():
        out.print(
            f"Total {cur}: realized {float(t['realized']['monthly']):,.2f}/month "
            f"({float(t['realized']['yearly']):,.2f}/year); potential "
            f"{float(t['potential']['yearly']):,.2f}/year"
        )


def register_decisions(app: typer.Typer) -> None:
    """Add the decision commands to the ``reclaim`` app."""
    import reclaim.cli_cases  # defines the cases and tasks commands
    from reclaim.cli_runs import run, worker

    app.command("candidates")(candidates)
    app.add_typer(plan_app, name="plan")
    app.command("run")(run)
    app.command("worker")(worker)
    app.command("answer")(answer)
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("report")(report)
    app.add_typer(cases_app, name="cases")
    app.command("restore")(reclaim.cli_cases.cases_restore)
    app.add_typer(tasks_app, name="tasks")
