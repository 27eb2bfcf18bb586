"""``reclaim db …``: the store's schema (status, upgrade) and backups."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from reclaim.config import Settings

db_app = typer.Typer(help="Database: schema status, upgrades and backups.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="RECLAIM_CONFIG", help="Path to reclaim.yaml.", show_default=False
    ),
]


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to the main CLI."""
    app.add_typer(db_app, name="db")


def _engine(config: Path | None) -> tuple[Settings, Engine]:
    from reclaim.cli import fail
    from reclaim.config import ConfigError, load_settings
    from reclaim.store.engine import make_engine

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc))
    return settings, make_engine(settings.database_url())


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Upgrade the database schema to this version's (back up the database first)."""
    from reclaim.cli import out
    from reclaim.store.migrate import upgrade

    _, engine = _engine(config)
    before, after = upgrade(engine)
    out.print(f"schema: {before or 'empty'} → {after}")


@db_app.command("status")
def db_status(config: ConfigOpt = None) -> None:
    """Show the schema revision the database is at and the one this version needs."""
    from reclaim.cli import _redact_url, out
    from reclaim.store.migrate import current_revision, head_revision

    settings, engine = _engine(config)
    current, head = current_revision(engine), head_revision(engine)
    state = "up to date" if current == head else "behind: run 'reclaim db upgrade'"
    out.print(
        f"database {_redact_url(settings.database_url())}: {current or 'empty'} "
        f"(needs {head}): {state}"
    )


@db_app.command("backup")
def db_backup(
    target: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
    config: ConfigOpt = None,
) -> None:
    """Copy the SQLite store to TARGET while Reclaim keeps running (online backup).

    PostgreSQL stores are backed up with pg_dump; see docs/operations.md.
    """
    from rich.progress import Progress

    from reclaim.cli import fail, out
    from reclaim.ops.backup import BackupError, backup_sqlite

    _, engine = _engine(config)
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("backing up", total=None)
            size = backup_sqlite(
                engine,
                target,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except BackupError as exc:
        fail(str(exc))
    out.print(f"backup written: {target} ({size:,} bytes, integrity check ok)")


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; delete nothing.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Delete usage roll-ups older than usage.retention_days (run it daily, e.g. by a
    systemd timer). Last-use dates are kept, so long-idle users stay 'unused'."""
    import datetime as dt

    from rich.progress import Progress

    from reclaim.cli import out
    from reclaim.store.migrate import ensure_schema
    from reclaim.store.retention import prune_usage

    settings, engine = _engine(config)
    ensure_schema(engine)
    days = settings.usage.retention_days
    with Progress(transient=True) as bar:
        task = bar.add_task("pruning", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = prune_usage(
            engine,
            retention_days=days,
            today=dt.datetime.now(dt.UTC).date(),
            dry_run=dry_run,
            progress=progress,
        )
    verb = "would delete" if dry_run else "deleted"
    out.print(
        f"retention {days} days (keeping {report.cutoff} onwards): {verb} "
        f"{report.daily_rows:,} daily roll-ups and {report.observed_rows:,} observed-day rows"
    )
