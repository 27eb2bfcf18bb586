"""Case and task commands (``reclaim cases``, ``reclaim tasks``), part of ``cli_decisions``."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reclaim.cli import ConfigOpt, JsonOpt, context, fail, now_utc, out, print_json
from reclaim.cli_decisions import ByOpt, PolicyOpt, actor, cases_app, tasks_app
from reclaim.cli_render import when
from reclaim.domain.case import CaseState


@cases_app.callback()
def cases_callback(
    typer_ctx: typer.Context,
    policy: PolicyOpt = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open cases.")] = False,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only cases in this state (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 200,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List reclamation cases, newest first."""
    if typer_ctx.invoked_subcommand is not None:
        return
    from reclaim.services.cases import list_cases

    try:
        states = tuple(CaseState(s) for s in state or ())
    except ValueError:
        fail(f"--state must be one of {', '.join(s.value for s in CaseState)}")
    ctx = context(config)
    found = list_cases(ctx.engine, policy=policy, open_only=open_only, states=states, limit=limit)
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    table = Table("id", "policy", "user", "state", "status", "outcome", "opened", "next due")
    for view in found:
        d = view.to_dict()
        table.add_row(
            str(d["id"]),
            d["policy"],
            d["user"],
            d["state"],
            d["status"],
            d["outcome"] or "",
            d["opened_at"][:16].replace("T", " "),
            when(view.stored.next_due_at),
        )
    out.print(table)


@cases_app.command("show")
def cases_show(
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One case with its full history (every step, its cause and data)."""
    from reclaim.services.cases import CaseActionError, show_case

    ctx = context(config)
    try:
        view = show_case(ctx.engine, case_id)
    except CaseActionError as exc:
        fail(str(exc))
    data = view.to_dict(history=True)
    if as_json:
        print_json(data)
        return
    out.print(
        f"case #{data['id']}: {data['user']} / {data['policy']} (cycle {data['cycle']}) — "
        f"{data['state']}, {data['status']}" + (f", {data['outcome']}" if data["outcome"] else ""),
        highlight=False,
    )
    out.print(f"  opened because: {data['verdict']}: {data['reason']}", highlight=False)
    if data["last_error"]:
        out.print(f"  last error: {data['last_error']}", highlight=False)
    table = Table("at", "from", "to", "cause", "data")
    for e in data["history"]:
        rest = {k: v for k, v in e["data"].items() if k != "steps"}
        table.add_row(
            e["at"][:19].replace("T", " "),
            e["from"] or "",
            e["to"],
            e["cause"],
            json.dumps(rest, sort_keys=True) if rest else "",
        )
    out.print(table)
    for e in data["history"]:  # the directory calls behind each event, one per line
        steps = e["data"].get("steps", [])
        if steps:
            out.print(f"  {e['at'][:19].replace('T', ' ')} {e['cause']}:", highlight=False)
        for step in steps:
            line = f"    · {step['step']}: {step_text(step)}"
            out.print(line, highlight=False, markup=False, soft_wrap=True)


def step_text(step: dict[str, object]) -> str:
    """One directory step as a line: input → outcome (ms)."""
    return f"{step.get('input')} → {step.get('outcome')} ({step.get('ms')} ms)"


@cases_app.command("restore")
def cases_restore(
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    by: ByOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and read membership; change nothing.")
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a reclaimed seat back: add the user to the license group again.

    Only a removed case (or one awaiting directory sync) can be restored. The add goes
    through the write gate (refused in dry run and while paused) and is recorded;
    "already a member" counts as success. The case ends in ``restored``.
    """
    from reclaim.services.restore import RestoreError, restore_case

    ctx = context(config)
    try:
        done = restore_case(
            ctx.engine,
            ctx.settings,
            case_id,
            now=now_utc(),
            by=actor(by),
            reason=reason,
            dry_run=dry_run,
        )
    except RestoreError as exc:
        fail(str(exc))
    if as_json:
        print_json(done.to_dict())
        return
    said = {
        "restored": "added back to the group",
        "already_member": "was already a member (recorded as restored)",
        "dry_run": f"dry run: {done.detail}",
    }[done.result]
    out.print(f"case #{done.case_id}: {done.user} {said}", highlight=False)
    for step in done.steps:
        line = f"  · {step['step']}: {step_text(step)}"
        out.print(line, highlight=False, markup=False, soft_wrap=True)


@cases_app.command("cancel")
def cases_cancel(
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    by: ByOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Stop a case (not possible once a removal was sent: finish it, then restore)."""
    from reclaim.services.cases import CaseActionError, cancel_case

    ctx = context(config)
    try:
        cancel_case(ctx.engine, ctx.settings, case_id, now=now_utc(), by=actor(by))
    except CaseActionError as exc:
        fail(str(exc))
    out.print(f"case #{case_id} cancelled")


@cases_app.command("retry")
def cases_retry(
    case_id: Annotated[int, typer.Argument(help="The case's id.")],
    config: ConfigOpt = None,
) -> None:
    """Queue a failed removal again; the next cycle plans it."""
    from reclaim.services.cases import CaseActionError, retry_case

    ctx = context(config)
    try:
        retry_case(ctx.engine, ctx.settings, case_id, now=now_utc())
    except CaseActionError as exc:
        fail(str(exc))
    out.print(f"case #{case_id} queued for removal again (next cycle)")


@tasks_app.callback()
def tasks_callback(
    typer_ctx: typer.Context,
    policy: PolicyOpt = None,
    show_all: Annotated[bool, typer.Option("--all", help="Done tasks too.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the open manual tasks (removals for an admin to carry out)."""
    if typer_ctx.invoked_subcommand is not None:
        return
    from reclaim.workflows.manual import list_tasks

    ctx = context(config)
    with ctx.engine.connect() as conn:
        tasks = list_tasks(conn, status=None if show_all else "open", policy=policy)
    if as_json:
        print_json([_task_dict(t) for t in tasks])
        return
    table = Table("id", "action", "user", "group", "policy", "created", "status", "done by")
    for t in tasks:
        table.add_row(
            str(t.id),
            t.action,
            t.user,
            t.group,
            t.policy,
            when(t.created_at),
            t.status,
            t.done_by or "",
        )
    out.print(table)
    if tasks and not show_all:
        out.print("When done: reclaim tasks done ID …")


def _task_dict(t: object) -> dict[str, object]:
    return dataclasses.asdict(t)  # type: ignore[call-overload]


@tasks_app.command("export")
def tasks_export(
    path: Annotated[Path, typer.Argument(help="CSV file to write.", dir_okay=False)],
    policy: PolicyOpt = None,
    show_all: Annotated[bool, typer.Option("--all", help="Done tasks too.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Write the task list as CSV (id, action, user, group, policy, created, status)."""
    from reclaim.workflows.manual import list_tasks

    ctx = context(config)
    with ctx.engine.connect() as conn:
        tasks = list_tasks(conn, status=None if show_all else "open", policy=policy)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("id", "action", "user", "group", "policy", "created_utc", "status", "done_by"))
        for t in tasks:
            w.writerow(
                (
                    t.id,
                    t.action,
                    t.user,
                    t.group,
                    t.policy,
                    when(t.created_at),
                    t.status,
                    t.done_by or "",
                )
            )
    out.print(f"{len(tasks)} task(s) written to {path}")


@tasks_app.command("done")
def tasks_done(
    task_ids: Annotated[list[int], typer.Argument(help="Task ids.")],
    by: ByOpt = None,
    note: Annotated[str | None, typer.Option(help="What was done, for the record.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Mark tasks done: each one's case completes (license removed)."""
    from reclaim.services.cases import CaseActionError, complete_task

    ctx = context(config)
    failed = False
    for task_id in task_ids:
        try:
            saved = complete_task(
                ctx.engine, ctx.settings, task_id, by=actor(by), now=now_utc(), note=note
            )
        except CaseActionError as exc:
            out.print(f"task #{task_id}: {exc}", highlight=False)
            failed = True
            continue
        out.print(f"task #{task_id} done: case #{saved.id} ({saved.case.user}) {saved.case.state}")
    if failed:
        raise typer.Exit(1)
