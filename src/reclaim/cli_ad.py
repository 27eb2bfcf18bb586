"""``reclaim ad …``: on-premises Active Directory commands (sync of license groups)."""

from __future__ import annotations

from typing import Annotated

import typer

ad_app = typer.Typer(help="On-prem Active Directory: sync license groups.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``ad`` command group to the main CLI."""
    app.add_typer(ad_app, name="ad")


@ad_app.command("sync")
def ad_sync(
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="Only this onprem_ad policy.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="RECLAIM_CONFIG", help="Path to reclaim.yaml."),
    ] = None,
) -> None:
    """Read each onprem_ad policy's AD group (ranged) into Reclaim's member lists."""
    from pathlib import Path

    from reclaim.cli import context, err, fail, now_utc, out, print_json
    from reclaim.connectors.errors import ConnectorError
    from reclaim.services.ad_sync import AdSyncError, sync_all
    from reclaim.workflows.onprem_ad import build_directory

    ctx = context(Path(config) if config else None)
    if ctx.settings.ldap is None:
        fail("the config has no ldap: section; AD sync needs one")
    directory = build_directory(ctx.settings)
    try:
        reports = sync_all(
            ctx.engine, ctx.settings.policies, directory=directory, only=policy, now=now_utc()
        )
    except (AdSyncError, ConnectorError) as exc:
        fail(f"{exc} — nothing was changed for that policy")
    finally:
        directory.ldap.close()
    if as_json:
        print_json([r.__dict__ for r in reports])
        return
    if not reports:
        out.print("no enabled onprem_ad policies")
    for r in reports:
        out.print(
            f"{r.policy}: {r.members} members ({r.joined} joined, {r.left} left; "
            f"{r.with_grant_time} with AD grant time) from {r.group_dn}",
            highlight=False,
            markup=False,
        )
        for line in r.skipped:
            err.print(f"  skipped {line}", highlight=False, markup=False)
