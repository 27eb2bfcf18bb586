"""Commands for usage sources beyond files: osquery logs, Microsoft Graph, source health,
identities. Registered on the main app by :func:`register_commands` (``cli.py``).

Shared helpers (settings, errors, output) come from ``reclaim.cli`` inside each command,
so importing this module never imports the CLI's module (no import cycle).
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

if TYPE_CHECKING:
    from reclaim.bootstrap import Context

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="RECLAIM_CONFIG", help="Path to reclaim.yaml.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
identities_app = typer.Typer(
    help="Who is who: SIDs and account names → UPNs.", no_args_is_help=True
)


def register_commands(*, app: typer.Typer, usage_app: typer.Typer) -> None:
    """Add these commands to ``reclaim`` and ``reclaim usage``."""
    usage_app.command("watch")(usage_watch)
    usage_app.command("pull")(usage_pull)
    usage_app.command("sources")(usage_sources)
    usage_app.command("osquery-pack")(osquery_pack)
    identities_app.command("import")(identities_import)
    app.add_typer(identities_app, name="identities")


def _matcher(ctx: Context) -> Any:
    from reclaim.usage_sources.app_aliases import AppMatcher

    return AppMatcher(p.apps for p in ctx.settings.policies)


# -- osquery: whole files (called by `reclaim usage import --format osquery`) ------------
def import_osquery_files(
    paths: list[Path], *, source: str, chunk_mb: int, config: Path | None, as_json: bool
) -> None:
    """Import osquery result logs, one transaction each; print a report per file."""
    from reclaim import cli as base
    from reclaim.services.osquery_import import import_osquery_file
    from reclaim.usage_sources.files import FileFormatError

    ctx = base.context(config)
    apps = _matcher(ctx)
    reports = []
    failed = False
    for path in paths:
        try:
            with base._progress(path.name) as advance:  # the CLI's own progress bar
                report = import_osquery_file(
                    ctx.engine,
                    path,
                    now=base.now_utc(),
                    apps=apps,
                    source=source,
                    report_dir=ctx.imports_dir(),
                    chunk_bytes=chunk_mb << 20,
                    progress=advance,
                )
        except FileFormatError as exc:
            base.err.print(
                f"[bold red]error:[/] {exc} — nothing was imported from this file", highlight=False
            )
            failed = True
            continue
        reports.append(report)
        if not as_json:
            _print_osquery(report)
    if as_json:
        base.print_json([r.as_dict() for r in reports])
    if failed:
        raise typer.Exit(1)


def _print_osquery(report: Any) -> None:
    from reclaim import cli as base

    if report.status == "duplicate":
        base.out.print(
            f"{report.file}: already imported ({report.previous_import}); skipped, nothing changed"
        )
        return
    base.out.print(
        f"{report.file}: {report.lines:,} lines: {report.events:,} new uses, "
        f"{report.repeats:,} already recorded, {report.observations:,} observations, "
        f"{report.rows_rejected:,} rejected ({report.seconds:.1f} s)"
    )
    _print_skipped(report)
    for line in report.rejects:
        base.err.print(f"  {line}", highlight=False, markup=False)
    if report.rows_rejected > len(report.rejects):
        base.err.print(f"  … and {report.rows_rejected - len(report.rejects):,} more")
    if report.rejects_file:
        base.out.print(f"  rejected rows: {report.rejects_file}")
    base.out.print(f"  summary: {report.summary_file}")


def _print_skipped(report: Any) -> None:
    from reclaim import cli as base

    if report.unknown_sids:
        listed = ", ".join(f"{s} ({n})" for s, n in report.unknown_sids.items())
        base.err.print(
            f"  unknown SIDs (import them: reclaim identities import): {listed}",
            highlight=False,
            markup=False,
        )
    if report.unknown_accounts:
        listed = ", ".join(f"{a} ({n})" for a, n in report.unknown_accounts.items())
        base.err.print(f"  unknown accounts: {listed}", highlight=False, markup=False)
    if report.unknown_queries:
        listed = ", ".join(f"{q} ({n})" for q, n in report.unknown_queries.items())
        base.out.print(f"  not Reclaim's queries, skipped: {listed}", highlight=False)
    if report.machine_accounts or report.never_used:
        base.out.print(
            f"  skipped: {report.machine_accounts:,} rows of machine accounts, "
            f"{report.never_used:,} rows never run"
        )


# -- osquery: watch ----------------------------------------------------------------------
def usage_watch(
    path: Annotated[Path, typer.Argument(help="The osquery results log to follow.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Log format: osquery.")] = "osquery",
    source: Annotated[str, typer.Option(help="Usage source name.")] = "osquery",
    interval: Annotated[
        float, typer.Option(help="Seconds between polls (0.2 to 300).", min=0.2, max=300)
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Read what is there, then exit.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Follow a growing osquery result log (rotation-safe); stop with Ctrl-C or SIGTERM."""
    from reclaim import cli as base
    from reclaim.services.osquery_watch import OsqueryWatcher

    if fmt != "osquery":
        base.fail(f"--format must be osquery (got {fmt!r})")
    ctx = base.context(config)
    rejects = ctx.imports_dir() / f"watch-{source}.rejects.txt"
    watcher = OsqueryWatcher(
        ctx.engine, path, source=source, apps=_matcher(ctx), rejects_file=rejects
    )
    stop = threading.Event()
    if once:
        result = watcher.poll()
        for note in result.notes:
            base.err.print(f"  {note}", highlight=False, markup=False)
        c = result.counts
        base.out.print(
            f"{path}: {result.lines:,} lines: {c.events:,} new uses, {c.repeats:,} already "
            f"recorded, {c.observations:,} observations, {c.rejected:,} rejected"
            + (f" (see {rejects})" if c.rejected else "")
        )
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    base.out.print(f"watching {path} every {interval:g} s into source {source!r}; Ctrl-C stops")
    watcher.run(stop, interval=interval)
    base.out.print("stopped")


# -- Microsoft Graph ---------------------------------------------------------------------
def usage_pull(
    source: Annotated[str, typer.Option(help="Where to pull from: graph.")] = "graph",
    since: Annotated[
        str | None, typer.Option(help="Start date YYYY-MM-DD (default: where the last pull ended).")
    ] = None,
    app_id: Annotated[
        list[str] | None,
        typer.Option("--app-id", help="Entra app id whose sign-ins count (repeatable)."),
    ] = None,
    part: Annotated[
        list[str] | None,
        typer.Option(help="Only these parts: activity, sign-ins, reports (repeatable)."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Usage source name.")] = "graph",
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pull sign-in activity, per-app sign-ins and Microsoft 365 usage reports from Graph."""
    from reclaim import cli as base
    from reclaim.connectors.graph import GraphClient, settings_from_config
    from reclaim.connectors.graph.reports import UsageReads
    from reclaim.services.graph_usage import PARTS, policy_app_ids, pull_graph_usage

    if source != "graph":
        base.fail(f"--source must be graph (got {source!r})")
    parts = part or list(PARTS)
    if unknown := [p for p in parts if p not in PARTS]:
        base.fail(f"--part must be one of {', '.join(PARTS)} (got {', '.join(unknown)})")
    start = None
    if since is not None:
        try:
            start = dt.datetime.combine(dt.date.fromisoformat(since), dt.time(), tzinfo=dt.UTC)
        except ValueError:
            base.fail(f"--since must be a date YYYY-MM-DD (got {since!r})")
    ctx = base.context(config)
    if ctx.settings.entra is None:
        base.fail("the configuration has no entra: section (tenant, app, credential)")
    given = app_id or []
    if bad := [a for a in given if not policy_app_ids([a])]:
        base.fail(f"--app-id must be an Entra application id (GUID), got {', '.join(bad)}")
    aliases = [a for p in ctx.settings.policies for a in p.apps]
    apps = policy_app_ids([*given, *aliases])
    with GraphClient(settings_from_config(ctx.settings.entra), dry_run=True) as graph:
        report = pull_graph_usage(
            ctx.engine,
            UsageReads(graph),
            now=base.now_utc(),
            app_ids=apps,
            since=start,
            parts=parts,
            source=name,
        )
    if as_json:
        base.print_json(report.as_dict())
    else:
        for p in report.parts:
            line = (
                f"{p.part}: {p.status}: {p.rows:,} rows, {p.events:,} new uses, "
                f"{p.repeats:,} already recorded, {p.observations:,} observations, "
                f"{p.rejected:,} rejected"
            )
            (base.out if p.status == "imported" else base.err).print(line, highlight=False)
            if p.message:
                base.out.print(f"  {p.message}", highlight=False, markup=False)
            for r in p.rejects:
                base.err.print(f"  {r}", highlight=False, markup=False)
        if "sign-ins" in parts and not apps:
            base.err.print("  no app ids: list an Entra app id in a policy's apps, or --app-id")
    if not report.ok:
        raise typer.Exit(1)


# -- health ------------------------------------------------------------------------------
def usage_sources(
    check: Annotated[
        bool, typer.Option("--check", help="Exit with status 1 if a source is stale.")
    ] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each usage source: last received, rows accepted/rejected, users observed, fresh/stale."""
    from reclaim import cli as base
    from reclaim.store.source_health import source_health

    ctx = base.context(config)
    days = ctx.settings.usage.freshness_days
    with ctx.engine.connect() as conn:
        health = source_health(conn, now=base.now_utc(), freshness_days=days)
    if as_json:
        base.print_json([{**h.__dict__} for h in health])
    else:
        table = Table(
            "source",
            "kind",
            "last received",
            "events",
            "rejected",
            "observations",
            "repeats",
            f"users seen ({days} d)",
            "last day seen",
            "status",
            title=f"usage sources (freshness window {days} days)",
            title_justify="left",
        )
        for h in health:
            status = "[red]STALE[/]" if h.status == "stale" else h.status
            table.add_row(
                h.name,
                h.kind,
                f"{h.last_received:%Y-%m-%d %H:%M}" if h.last_received else "never",
                f"{h.rows_accepted:,}",
                f"{h.rows_rejected:,}",
                f"{h.observations:,}",
                f"{h.repeats:,}",
                f"{h.users_observed:,}",
                str(h.last_observed or "-"),
                status,
            )
        base.out.print(table if health else "no usage sources yet")
    stale = [h for h in health if h.status == "stale"]
    for h in stale:
        base.err.print(
            f"stale source {h.name!r}: nothing new since "
            f"{h.last_received:%Y-%m-%d} — its users are 'no data', not 'unused'"
            if h.last_received
            else f"stale source {h.name!r}",
            highlight=False,
        )
    if check and stale:
        raise typer.Exit(1)


def osquery_pack(
    output: Annotated[
        Path | None, typer.Option(help="Write the pack here instead of printing it.")
    ] = None,
) -> None:
    """Print (or write) the osquery pack with Reclaim's queries (see docs/usage-sources.md)."""
    from reclaim.usage_sources.osquery_pack import pack_text

    text = pack_text()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


# -- identities --------------------------------------------------------------------------
def identities_import(
    path: Annotated[
        Path, typer.Argument(help="CSV: upn,sid[,entra_id,sam].", exists=True, dir_okay=False)
    ],
    config: ConfigOpt = None,
) -> None:
    """Record who has which SID / Entra object id / account name (until directory sync)."""
    from reclaim import cli as base
    from reclaim.services.identities_import import IdentitiesFileError, import_identities

    ctx = base.context(config)
    try:
        report = import_identities(ctx.engine, path, now=base.now_utc())
    except IdentitiesFileError as exc:
        base.fail(f"{exc} — nothing was imported")
    base.out.print(f"{path}: {report.written:,} identities stored, {len(report.rejected)} rejected")
    for line in report.rejected:
        base.err.print(f"  {line}", highlight=False, markup=False)
