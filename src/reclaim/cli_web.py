"""CLI commands for the web app: ``serve``, ``tokens`` and ``accounts`` (with one-time
sign-in links).

Registered on the main ``reclaim`` app by :func:`register`. Every change made here is
written to the audit log as actor kind ``cli``, named after the operating-system user.
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from reclaim.web.audit import Actor

serve_help = "Run the web app and API (and, on SQLite, the scheduler and a worker)."
tokens_app = typer.Typer(
    help="API tokens: create (shown once), list, revoke.", no_args_is_help=True
)
accounts_app = typer.Typer(help="Accounts that sign in to the web app.", no_args_is_help=True)

RoleOpt = Annotated[str, typer.Option("--role", "-r", help="viewer, operator, admin or ingest.")]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password from this file (first line) instead of prompting.",
        exists=True,
        dir_okay=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``tokens`` and ``accounts`` to the ``reclaim`` command."""
    app.command("serve", help=serve_help)(serve)
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(accounts_app, name="accounts")


def _cli_actor() -> Actor:
    from reclaim.web.audit import Actor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    return Actor(name=f"cli:{user}", kind="cli")


def _when(ts: int | None) -> str:
    return "never" if ts is None else f"{dt.datetime.fromtimestamp(ts, dt.UTC):%Y-%m-%d %H:%M}"


# -- serve --------------------------------------------------------------------------------
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve only; run workers separately.")
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies whose X-Forwarded-For/-Proto to trust (comma-separated).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="RECLAIM_CONFIG", help="Path to reclaim.yaml."),
    ] = None,
) -> None:
    """Run the web app with uvicorn; unless --no-worker, also the scheduler and one
    worker in a background thread (stopped cleanly, after the case in hand, on exit)."""
    from reclaim.cli import context, err, fail, out
    from reclaim.web.app import create_app
    from reclaim.web.background import BackgroundWorker
    from reclaim.web.server import listen, run_server
    from reclaim.web.settings import WebSettingsError

    ctx = context(config)
    try:
        web = create_app(ctx)
    except WebSettingsError as exc:
        fail(str(exc))
    try:
        sock = listen(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    out.print(
        f"Reclaim web app on http://{host}:{port}/ (API: /api/v1, OpenAPI: /api/v1/openapi.json)"
    )
    background = None if no_worker else BackgroundWorker(ctx)
    if background is not None:
        err.print(f"worker {background.owner} started in this process", highlight=False)

    def stopped(in_time: bool) -> None:
        assert background is not None
        err.print(
            f"worker {background.owner} "
            + ("stopped" if in_time else "still busy after 60 s; exiting anyway"),
            highlight=False,
        )

    run_server(
        web,
        sock,
        forwarded_allow_ips=forwarded_allow_ips,
        background=background,
        on_stopped=stopped,
    )


# -- tokens -------------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    role: RoleOpt,
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for.")],
    expires_days: Annotated[
        int | None, typer.Option(help="Expire after this many days (default: never).", min=1)
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """Create an API token and print it once: it is stored only as a hash."""
    from reclaim.cli import context, err, fail, now_utc
    from reclaim.web.auth.roles import parse_role
    from reclaim.web.auth.tokens import TokenError, create_token

    try:
        parsed = parse_role(role)
    except ValueError as exc:
        fail(str(exc))
    ctx = context(config)
    now = int(now_utc().timestamp())
    try:
        with ctx.engine.begin() as conn:
            token, secret = create_token(
                conn,
                name=name,
                role=parsed,
                actor=_cli_actor(),
                now=now,
                expires=None if expires_days is None else now + expires_days * 86400,
            )
    except TokenError as exc:
        fail(str(exc))
    err.print(
        f"token #{token.id} '{token.name}' ({token.role.value}) created; it is shown once, "
        "store it now:",
        highlight=False,
    )
    # The secret alone on stdout, so that `reclaim tokens create … > file` captures it.
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list(
    show_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """List tokens (never their secrets) with role and last use."""
    from reclaim.cli import context, out, print_json
    from reclaim.web.auth.tokens import list_tokens

    ctx = context(config)
    with ctx.engine.connect() as conn:
        listed = list_tokens(conn, include_revoked=show_revoked)
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "prefix": t.prefix,
                    "role": t.role.value,
                    "created": t.created,
                    "created_by": t.created_by,
                    "expires": t.expires,
                    "last_used": t.last_used,
                    "revoked": t.revoked,
                }
                for t in listed
            ]
        )
        return
    table = Table("id", "name", "token", "role", "created", "last used", "expires", "status")
    for t in listed:
        table.add_row(
            str(t.id),
            t.name,
            f"{t.prefix}…",
            t.role.value,
            _when(t.created),
            _when(t.last_used),
            _when(t.expires) if t.expires else "never",
            "revoked" if t.revoked else "active",
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see 'reclaim tokens list').")],
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """Revoke a token: its next request is refused."""
    from reclaim.cli import context, fail, now_utc, out
    from reclaim.web.auth.tokens import TokenError, revoke_token

    ctx = context(config)
    try:
        with ctx.engine.begin() as conn:
            token = revoke_token(conn, token_id, actor=_cli_actor(), now=int(now_utc().timestamp()))
    except TokenError as exc:
        fail(str(exc))
    out.print(f"token #{token.id} '{token.name}' ({token.prefix}…) revoked")


# -- accounts -----------------------------------------------------------------------------
def _read_password(path: Path | None) -> str:
    from reclaim.cli import fail

    if path is not None:
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines:
            fail(f"{path} is empty")
        return lines[0]
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Password again", hide_input=True) != first:
        fail("the two passwords differ")
    return str(first)


def _create(email: str, role: str, password: str | None, config: Path | None) -> None:
    from reclaim.cli import context, fail, now_utc, out
    from reclaim.web.auth.accounts import AccountError, create_account
    from reclaim.web.auth.passwords import WeakPassword
    from reclaim.web.auth.roles import parse_role

    try:
        parsed = parse_role(role)
    except ValueError as exc:
        fail(str(exc))
    ctx = context(config)
    try:
        with ctx.engine.begin() as conn:
            account = create_account(
                conn,
                email=email,
                role=parsed,
                password=password,
                actor=_cli_actor(),
                now=int(now_utc().timestamp()),
            )
    except (AccountError, WeakPassword) as exc:
        fail(str(exc))
    how = "password" if password is not None else "single sign-on only"
    out.print(f"account #{account.id} {account.email} ({account.role.value}, {how}) created")


@accounts_app.command("create-admin")
def accounts_create_admin(
    email: Annotated[str, typer.Argument(help="The admin's e-mail address.")],
    password_file: PasswordFileOpt = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """Create an admin account with a password (the first admin starts here)."""
    _create(email, "admin", _read_password(password_file), config)


@accounts_app.command("create")
def accounts_create(
    email: Annotated[str, typer.Argument(help="The person's e-mail address.")],
    role: RoleOpt = "viewer",
    password_file: PasswordFileOpt = None,
    sso_only: Annotated[
        bool, typer.Option("--sso-only", help="No password: sign in through OpenID Connect.")
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """Create an account (viewer, operator or admin)."""
    password = None if sso_only else _read_password(password_file)
    _create(email, role, password, config)


@accounts_app.command("list")
def accounts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """List accounts with role, sign-in method and last sign-in."""
    from reclaim.cli import context, out, print_json
    from reclaim.web.auth.accounts import list_accounts

    ctx = context(config)
    with ctx.engine.connect() as conn:
        listed = list_accounts(conn)
    rows = [
        {
            "id": a.id,
            "email": a.email,
            "role": a.role.value,
            "active": a.active,
            "password": a.has_password,
            "sso_bound": a.oidc_bound,
            "created": a.created,
            "last_login": a.last_login,
        }
        for a in listed
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "e-mail", "role", "sign-in", "status", "last sign-in")
    for a in listed:
        method = ("password" if a.has_password else "") + (
            (" + SSO" if a.has_password else "SSO") if a.oidc_bound or not a.has_password else ""
        )
        table.add_row(
            str(a.id),
            a.email,
            a.role.value,
            method,
            "active" if a.active else "disabled",
            _when(a.last_login),
        )
    out.print(table)


@accounts_app.command("login-link")
def accounts_login_link(
    email: Annotated[str, typer.Argument(help="The account's e-mail address.")],
    url: Annotated[
        str,
        typer.Option(
            "--url",
            envvar="RECLAIM_WEB_URL",
            help="The web app's address as the browser reaches it.",
        ),
    ] = "http://127.0.0.1:8080",
    minutes: Annotated[int, typer.Option(help="How long the link works.", min=1, max=60)] = 15,
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="RECLAIM_CONFIG")] = None,
) -> None:
    """Print a one-time sign-in link for an account with a password.

    The link signs that account in once, within --minutes, in whichever browser opens
    it first: hand it over as you would a password. The server must use the same web
    secret (RECLAIM_WEB_SECRET or DATA_DIR/web-secret) as this command.
    """
    from reclaim.cli import context, err, fail, now_utc
    from reclaim.web.auth.login_links import LoginLinkError, create_login_link
    from reclaim.web.settings import WebSettings, WebSettingsError

    ctx = context(config)
    try:
        secret = WebSettings.from_env(ctx.settings.resolved_data_dir()).secret
        with ctx.engine.begin() as conn:
            link = create_login_link(
                conn,
                email=email,
                secret=secret,
                base_url=url,
                actor=_cli_actor(),
                now=int(now_utc().timestamp()),
                minutes=minutes,
            )
    except (LoginLinkError, WebSettingsError) as exc:
        fail(str(exc))
    err.print(
        f"one-time sign-in link for {link.email}, valid until {_when(link.expires)} UTC "
        "or its first use:",
        highlight=False,
    )
    # The link alone on stdout, so that `reclaim accounts login-link … | xclip` works.
    typer.echo(link.url)
