"""What every request handler reaches through ``request.app.state.web``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from reclaim.bootstrap import Context
from reclaim.web.auth.ratelimit import LoginLimits
from reclaim.web.auth.sessions import SessionCodec
from reclaim.web.savings_cache import SavingsCache
from reclaim.web.settings import WebSettings

if TYPE_CHECKING:
    from reclaim.web.auth.oidc import OidcClient
    from reclaim.workflows.directory import DirectoryFactory

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The real clock (tests pass their own to ``create_app``)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class WebState:
    """Settings, store, clock and helpers built once by ``create_app``."""

    ctx: Context
    settings: WebSettings
    clock: Clock
    sessions: SessionCodec
    oidc: OidcClient | None = None
    savings: SavingsCache = field(default_factory=SavingsCache)
    #: Directories for restores; None: the installation's own (tests pass a peer).
    directories: DirectoryFactory | None = None

    def now_dt(self) -> dt.datetime:
        """The app's clock, to the second (services store whole seconds)."""
        return self.clock().replace(microsecond=0)

    def now(self) -> int:
        """Epoch seconds from the app's clock."""
        return int(self.clock().timestamp())

    @property
    def login_limits(self) -> LoginLimits:
        """The sign-in rate limits from the settings."""
        s = self.settings
        return LoginLimits(
            window=s.login_window_seconds,
            per_account=s.login_max_per_account,
            per_ip=s.login_max_per_ip,
        )


def web_state(conn: HTTPConnection) -> WebState:
    """The app's state, typed."""
    state = conn.app.state.web
    assert isinstance(state, WebState)
    return state
