"""Rendering pages: one Jinja2 environment, autoescape always on, a few filters."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from reclaim.web.auth.deps import CSRF_FIELD, Principal
from reclaim.web.auth.roles import Role, allows
from reclaim.web.auth.sessions import Session

#: (path, label, role needed) for the navigation bar.
NAV = (
    ("/", "Dashboard", Role.VIEWER),
    ("/policies", "Policies", Role.VIEWER),
    ("/plans", "Plans", Role.VIEWER),
    ("/cases", "Cases", Role.VIEWER),
    ("/campaigns", "Campaigns", Role.VIEWER),
    ("/control", "Kill switch", Role.VIEWER),
    ("/audit", "Audit log", Role.VIEWER),
    ("/admin/tokens", "API tokens", Role.ADMIN),
)


def _when(ts: int | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,}"


def _money(value: str | float | None) -> str:
    return "–" if value is None else f"{float(value):,.2f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _iso_when(text: str | None) -> str:
    if not text:
        return "–"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")


@cache
def templates() -> Jinja2Templates:
    """The template set, built on first use (nothing happens at import time)."""
    env = Environment(
        loader=PackageLoader("reclaim.web", "templates"),
        autoescape=True,  # every template, whatever its extension: user data is escaped
        undefined=StrictUndefined,  # a typo in a template fails a test, not silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.filters["money"] = _money
    env.filters["pct"] = _pct
    env.filters["iso_when"] = _iso_when
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    *,
    me: Principal | None = None,
    session: Session | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``name`` with the signed-in user, their navigation and their CSRF token."""
    session = session or (me.session if me else None)
    nav = [(path, label) for path, label, role in NAV if me is not None and allows(me.role, role)]
    response = templates().TemplateResponse(
        request,
        name,
        {
            "me": me,
            "nav": nav,
            "path": request.url.path,
            "csrf_field": CSRF_FIELD,
            "csrf": session.csrf if session else "",
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
    assert isinstance(response, HTMLResponse)
    return response
