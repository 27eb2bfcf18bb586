"""``reclaim directory``: read license groups from the directory into the store.

Registered on the main app by :func:`register` (``cli.py``). Shared helpers (settings,
errors, output) come from ``reclaim.cli`` inside each command, so importing this module
never imports the CLI's module (no import cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="RECLAIM_CONFIG", help="Path to reclaim.yaml.", show_default=False
    ),
]
directory_app = typer.Typer(
    help="The directory (Entra ID): license groups and their members.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add ``reclaim directory`` to the main app."""
    directory_app.command("sync")(directory_sync)
    app.add_typer(directory_app, name="directory")


def directory_sync(
    policy: Annotated[
        str | None, typer.Option("--policy", help="Only this policy (default: every Entra one).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Re-read every member instead of the delta.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Read each Entra policy's group and members (incrementally via groups/delta)."""
    from reclaim import cli as base
    from reclaim.connectors.errors import ConnectorError
    from reclaim.connectors.graph import GraphClient, settings_from_config
    from reclaim.services.entra_sync import sync_policy

    ctx = base.context(config)
    settings = ctx.settings
    chosen = [
        p
        for p in settings.policies
        if p.group.entra_id and (p.name == policy if policy else p.workflow.value != "manual")
    ]
    if policy and not chosen:
        base.fail(f"no policy {policy!r} with a group.entra_id in the configuration")
    if settings.entra is None:
        base.fail("directory sync needs the entra: section (tenant, app, credential)")
    reports = []
    with GraphClient(settings_from_config(settings.entra), dry_run=True) as client:
        # dry_run: a sync only reads; the client refuses any write outright.
        for pol in chosen:
            try:
                reports.append(
                    sync_policy(
                        ctx.engine,
                        client,
                        pol,
                        configured=tuple(settings.policies),
                        now=base.now_utc(),
                        full=full,
                    )
                )
            except ConnectorError as exc:
                base.fail(f"policy {pol.name}: {exc}", code=1)
    if as_json:
        base.print_json([r.as_dict() for r in reports])
        return
    for r in reports:
        flags = [f for f, on in (("dynamic", r.dynamic), ("synced", r.synced)) if on]
        base.out.print(
            f"[bold]{r.policy}[/]: group {r.display_name!r} ({r.group_id}) {r.mode} round"
            + (f" [{', '.join(flags)}]" if flags else ""),
            highlight=False,
        )
        base.out.print(
            f"  members {r.members} ({r.disabled} disabled), joined {r.joined}, left {r.left}"
        )
        if r.direct_license_users:
            shown = ", ".join(r.direct_license_users[:10])
            more = len(r.direct_license_users) - 10
            base.out.print(
                f"  also licensed directly (seat kept on removal): {shown}"
                + (f" and {more} more" if more > 0 else ""),
                highlight=False,
            )
        for w in r.warnings:
            base.out.print(f"  [yellow]warning:[/] {w}", highlight=False)
    if not reports:
        base.out.print("no policy with an Entra group to sync")
