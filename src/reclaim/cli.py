"""The ``reclaim`` command line. Each command is a thin layer over a service."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from reclaim import __version__
from reclaim.bootstrap import Context, open_context
from reclaim.cli_errors import ReclaimGroup
from reclaim.config import ConfigError, load_settings
from reclaim.secrets import SecretError
from reclaim.services.usage_import import DEFAULT_CHUNK_BYTES
from reclaim.store.migrate import SchemaBehind

app = typer.Typer(
    help="Reclaim: find unused software licenses, ask, and take the unused ones back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ReclaimGroup,  # disk full, database gone: one clear line, not a traceback
)
config_app = typer.Typer(help="Check the configuration file.", no_args_is_help=True)
usage_app = typer.Typer(
    help="Usage data: import files, follow osquery logs, pull from Graph, source health.",
    no_args_is_help=True,
)
members_app = typer.Typer(help="License group members: import and list.", no_args_is_help=True)
dev_app = typer.Typer(help="Developer tools: test peers.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(usage_app, name="usage")
app.add_typer(members_app, name="members")
app.add_typer(dev_app, name="dev")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # never break an error line: people grep them

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="RECLAIM_CONFIG", help="Path to reclaim.yaml.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error for a person (no traceback) and exit."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def now_utc() -> dt.datetime:
    """The current time; the one place the CLI reads the clock."""
    return dt.datetime.now(dt.UTC)


def context(config: Path | None) -> Context:
    """Open settings and store, turning known failures into clear messages."""
    try:
        return open_context(config, now=now_utc())
    except ConfigError as exc:
        fail(str(exc))
    except SchemaBehind as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    """JSON to stdout, for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"reclaim {__version__}")
        raise typer.Exit


# -- config -------------------------------------------------------------------------------
@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the configuration (and that every secret reference resolves); print a summary."""
    try:
        settings = load_settings(config, check_secrets=True)
    except ConfigError as exc:
        fail(str(exc))
    source = str(config) if config else "defaults (no config file given)"
    out.print(f"[green]ok[/]: {source}")
    out.print(f"  database: {_redact_url(settings.database_url())}")
    out.print(f"  data directory: {settings.resolved_data_dir()}")
    flags = [
        n
        for n, on in (("PAUSED", settings.safety.paused), ("dry-run", settings.safety.dry_run))
        if on
    ]
    out.print(f"  safety: {', '.join(flags) if flags else 'writes enabled'}")
    for section in ("entra", "ldap", "smtp"):
        out.print(
            f"  {section}: {'configured' if getattr(settings, section) else 'not configured'}"
        )
    for key, ref in settings.secret_refs():
        out.print(f"  secret {key}: {ref} (resolves)")
    table = Table("policy", "workflow", "apps", "unused after", "seat/month", "schedule")
    for p in settings.policies:
        table.add_row(
            p.name,
            p.workflow.value,
            ", ".join(p.apps),
            f"{p.unused_days} days",
            f"{p.seat_cost.amount} {p.seat_cost.currency}",
            p.schedule,
        )
    out.print(table if settings.policies else "  policies: none")


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- usage --------------------------------------------------------------------------------
@usage_app.command("import")
def usage_import(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="CSV, NDJSON or osquery log files.", exists=True, dir_okay=False, readable=True
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="csv, ndjson or osquery (default: csv/ndjson by file name)."
        ),
    ] = None,
    source: Annotated[
        str, typer.Option(help="Name of the usage source these files come from.")
    ] = "file",
    chunk_mb: Annotated[
        int, typer.Option(help="Read the file in blocks of this many MiB.", min=1)
    ] = DEFAULT_CHUNK_BYTES >> 20,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import usage events; the same file twice is skipped; bad rows go to a rejects file."""
    from reclaim.services.usage_import import import_usage_file
    from reclaim.usage_sources.files import FORMATS, FileFormatError

    if fmt is not None and fmt not in (*FORMATS, "osquery"):
        fail(f"--format must be one of {', '.join(FORMATS)}, osquery (got {fmt!r})")
    if fmt == "osquery":  # result logs go through the osquery source (cli_usage_sources.py)
        from reclaim.cli_usage_sources import import_osquery_files

        osquery_source = "osquery" if source == "file" else source
        import_osquery_files(
            paths, source=osquery_source, chunk_mb=chunk_mb, config=config, as_json=as_json
        )
        return
    ctx = context(config)
    reports = []
    failed = False
    for path in paths:
        try:
            with _progress(path.name) as advance:
                report = import_usage_file(
                    ctx.engine,
                    path,
                    now=now_utc(),
                    fmt=fmt,
                    source=source,
                    report_dir=ctx.imports_dir(),
                    chunk_bytes=chunk_mb << 20,
                    progress=advance,
                )
        except FileFormatError as exc:
            err.print(
                f"[bold red]error:[/] {exc} — nothing was imported from this file", highlight=False
            )
            failed = True
            continue
        reports.append(report)
        if not as_json:
            _print_import(report)
    if as_json:
        print_json([r.as_dict() for r in reports])
    if failed:
        raise typer.Exit(1)


def _print_import(report: Any) -> None:
    if report.status == "duplicate":
        out.print(
            f"{report.file}: already imported ({report.previous_import}); skipped, nothing changed"
        )
        return
    rate = report.rows_accepted / report.seconds if report.seconds else 0
    out.print(
        f"{report.file}: {report.rows_accepted:,} events imported, "
        f"{report.rows_rejected:,} rejected ({report.seconds:.1f} s, {rate:,.0f} events/s)"
    )
    for line in report.rejects:
        err.print(f"  {line}", highlight=False, markup=False)
    if report.rows_rejected > len(report.rejects):
        err.print(f"  … and {report.rows_rejected - len(report.rejects):,} more")
    if report.rejects_file:
        out.print(f"  rejected rows: {report.rejects_file}")
    out.print(f"  summary: {report.summary_file}")


class _progress:
    """A progress bar on a terminal; nothing when output is piped."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Progress | None = None

    def __enter__(self) -> Any:
        if not err.is_terminal:
            return None
        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task(self.label, total=None)
        bar = self.bar

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


# -- members ------------------------------------------------------------------------------
@members_app.command("import")
def members_import(
    path: Annotated[
        Path, typer.Argument(help="CSV with user[,granted_at].", exists=True, dir_okay=False)
    ],
    policy: Annotated[str, typer.Option("--policy", "-p", help="Policy name.")],
    config: ConfigOpt = None,
) -> None:
    """Replace a policy's group member list with the file's (offline / manual groups)."""
    from reclaim.services.members_import import MembersFileError, import_members

    ctx = context(config)
    try:
        pol = ctx.settings.policy(policy)
    except KeyError as exc:
        fail(str(exc.args[0]))
    try:
        report = import_members(
            ctx.engine, pol, path, configured=ctx.settings.policies, now=now_utc()
        )
    except MembersFileError as exc:
        fail(f"{exc} — nothing was changed")
    out.print(f"{pol.name}: {report.members} members ({report.joined} joined, {report.left} left)")
    for line in report.rejected:
        err.print(f"  {line}", highlight=False, markup=False)


@members_app.command("list")
def members_list(
    policy: Annotated[str, typer.Option("--policy", "-p", help="Policy name.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default: today).")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a policy's members with last use and minutes of use in the policy's window."""
    ctx = context(config)
    try:
        pol = ctx.settings.policy(policy)
    except KeyError as exc:
        fail(str(exc.args[0]))
    day = _parse_day(as_of)
    rows = _member_rows(ctx, pol, day)
    if as_json:
        print_json(rows)
        return
    out.print(_members_table(pol.name, rows, day))


def _parse_day(text: str | None) -> dt.date:
    if text is None:
        return now_utc().date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of must be a date YYYY-MM-DD (got {text!r})")


def _member_rows(ctx: Context, pol: Any, day: dt.date) -> list[dict[str, Any]]:
    from reclaim.store.policies import policy_id
    from reclaim.store.usage_queries import member_usage

    window = pol.underuse.window_days if pol.underuse else 90
    with ctx.engine.connect() as conn:
        pid = policy_id(conn, pol.name)
        members = (
            []
            if pid is None
            else member_usage(
                conn, policy_id=pid, app_names=pol.apps, as_of=day, window_days=window
            )
        )
    return [
        {
            "policy": pol.name,
            "user": m.user,
            "granted_at": dt.datetime.fromtimestamp(m.granted_at, dt.UTC).date().isoformat()
            if m.granted_at
            else None,
            "granted_source": m.granted_source,
            "last_used": m.last_used.isoformat() if m.last_used else None,
            "days_since_use": (day - m.last_used).days if m.last_used else None,
            "minutes_in_window": m.minutes_in_window,
            "window_days": window,
            "last_observed": m.last_observed.isoformat() if m.last_observed else None,
        }
        for m in members
    ]


def _members_table(name: str, rows: list[dict[str, Any]], day: dt.date) -> Table:
    window = rows[0]["window_days"] if rows else 90
    table = Table(
        "user",
        "granted",
        "last used",
        f"minutes in {window} days",
        "last seen",
        title=f"{name}: {len(rows)} members (as of {day})",
        title_justify="left",
    )
    for r in rows:
        last = f"{r['last_used']} ({r['days_since_use']} d ago)" if r["last_used"] else "never"
        table.add_row(
            r["user"],
            r["granted_at"] or "?",
            last,
            f"{r['minutes_in_window']:,.0f}",
            r["last_observed"] or "no data",
        )
    return table


# -- demo ---------------------------------------------------------------------------------
@app.command("demo")
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo here (default: a new temporary directory).")
    ] = None,
    users: Annotated[
        int, typer.Option(help="People in the generated organization.", min=50, max=20000)
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the generated organization and answers.")] = 42,
    serve: Annotated[
        bool | None,
        typer.Option(
            "--serve/--no-serve",
            help="Then serve the admin web app with a one-time sign-in link "
            "(default: when run on a terminal).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option(help="Port for --serve on 127.0.0.1 (0: any free port).", min=0, max=65535),
    ] = 8080,
) -> None:
    """Run the whole Entra ID loop on a generated tenant (bundled Graph server, SQLite).

    Generates an organization, starts the bundled Graph server on 127.0.0.1, syncs the
    license groups, asks, simulates answers over a few weeks and removes the released
    seats through Graph, then prints what was reclaimed. Needs no configuration. On a
    terminal it then serves the admin web app and prints a one-time admin sign-in link
    (Ctrl-C stops it).
    """
    from reclaim.demo.run import DemoError, DemoResult, run_demo

    if serve is None:
        serve = sys.stdin.isatty() and sys.stdout.isatty()

    def then(result: DemoResult) -> None:
        from reclaim.demo.serve import serve_demo

        serve_demo(result, console=out, port=port)

    try:
        run_demo(
            data_dir=data_dir,
            users=users,
            seed=seed,
            console=out,
            now=now_utc(),
            then=then if serve else None,
        )
    except DemoError as exc:
        fail(str(exc))


# -- dev ----------------------------------------------------------------------------------
@dev_app.command(
    "graph-server", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def dev_graph_server(ctx: typer.Context) -> None:
    """Run the bundled Microsoft Graph-compatible test server (see docs/graph-server.md)."""
    from reclaim.testing.graph.server import main as graph_main

    raise typer.Exit(graph_main(list(ctx.args)))


# -- decisions: candidates, plans, runs, the worker, cases, tasks (cli_decisions.py) -----
from reclaim.cli_decisions import register_decisions  # noqa: E402  (needs the helpers above)

register_decisions(app)


# -- usage sources: osquery watch, Graph pull, source health, identities ----------------
from reclaim.cli_usage_sources import register_commands  # noqa: E402

register_commands(app=app, usage_app=usage_app)


# Web app, API tokens and accounts (Issue 7) live in their own module.
from reclaim.cli_web import register as _register_web  # noqa: E402

_register_web(app)


# Directory sync for Entra policies (Issue 4) lives in its own module.
from reclaim.cli_directory import register as _register_directory  # noqa: E402

_register_directory(app)


# The store: reclaim db status|upgrade|backup (cli_db.py).
from reclaim.cli_db import register as _register_db  # noqa: E402

_register_db(app)

# On-prem Active Directory: reclaim ad sync (cli_ad.py).
from reclaim.cli_ad import register as _register_ad  # noqa: E402

_register_ad(app)


# Campaign numbers per policy: reclaim campaigns (cli_campaigns.py).
from reclaim.cli_campaigns import register as _register_campaigns  # noqa: E402

_register_campaigns(app)


def main() -> None:
    """Console-script entry point (logs: RECLAIM_LOG_FORMAT=text|json, RECLAIM_LOG_LEVEL)."""
    from reclaim.ops.logs import configure_logging

    try:
        configure_logging()
    except ValueError as exc:
        fail(str(exc))
    try:
        app()
    except SecretError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
