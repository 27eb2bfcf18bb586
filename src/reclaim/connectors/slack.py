"""Campaign asks in Slack: find the person by email, then post to them (slack_sdk).

``users.lookupByEmail`` gives the person's user id; ``chat.postMessage`` with
``channel`` = that id posts into the app's direct conversation with them, with the
ask's Block Kit blocks and its plain ``text`` (Slack's notification/fallback text).
The bot token needs ``chat:write``, ``users:read`` and ``users:read.email``.

Errors, from the Web API's ``error`` codes (docs.slack.dev/reference/methods/...):

- ``users_not_found`` (and the older ``user_not_found``), a deactivated account or a
  bot: **Rejected** (this person cannot be reached on Slack);
- ``ratelimited`` / HTTP 429: **Transient** with the Retry-After header; Slack's own
  server errors and network failures: **Transient**;
- ``invalid_auth``, ``token_revoked``, ``missing_scope``, ...: **StopRun**.

slack_sdk's automatic retry is turned off: after a dropped connection it would post the
message again, and the person would get it twice. Retrying is the runner's decision.
"""

from __future__ import annotations

import http.client
import logging
import math
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from reclaim.campaigns.delivery import Sent
from reclaim.campaigns.model import AskMessage
from reclaim.campaigns.pacing import Pacer
from reclaim.connectors.errors import ConnectorError, Rejected, StopRun, Transient

log = logging.getLogger(__name__)

SLACK_API = "https://slack.com/api/"
_ERROR_CODE = re.compile(r"^[a-z0-9_.]+$")
TokenSource = str | Callable[[], str]

#: The token or the app cannot work at all: no later call will pass either.
STOP_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "org_login_required",
        "team_access_not_granted",
        "ekm_access_denied",
        "access_denied",
        "accesslimited",
    }
)
#: Slack's side had a problem; the same call may pass later.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)
#: This person cannot be messaged (unknown, deactivated, not reachable by the app).
PERSON_ERRORS = frozenset(
    {"users_not_found", "user_not_found", "user_disabled", "channel_not_found", "cannot_dm_bot"}
)


def translate(exc: SlackApiError, *, method: str) -> ConnectorError:
    """The connector error for one failed Web API call."""
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error", "")) if isinstance(data, Mapping) else ""
    if not _ERROR_CODE.match(error):
        # slack_sdk puts its own sentence here when the body was not JSON (a proxy's
        # HTML error page): not a Slack error code.
        error = ""
    headers: Mapping[str, Any] = getattr(response, "headers", None) or {}
    detail = f"slack {method}: {error or 'HTTP ' + str(status)}"
    if status == 429 or error == "ratelimited":
        hint = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
        return Transient(detail, code="slack-ratelimited", retry_after=hint)
    if status >= 500:
        return Transient(detail, code=f"slack-{status}")
    if error in TRANSIENT_ERRORS:
        return Transient(detail, code=f"slack-{error}")
    if error in STOP_ERRORS:
        return StopRun(detail, code=f"slack-{error}")
    if error in PERSON_ERRORS:
        return Rejected(detail, code=f"slack-{error}")
    if not error and status < 400:  # a 200 that is not Slack's JSON: a proxy in the way
        return Transient(f"slack {method}: unexpected response", code="slack-bad-response")
    # Anything else (invalid_blocks, msg_too_long, an unknown code) is about this
    # message: record it and let delivery fall back to the next channel.
    return Rejected(detail, code=f"slack-{error or status}")


def _seconds(value: object) -> float | None:
    try:
        seconds = float(str(value))
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


class SlackChannel:
    """The ``slack`` campaign channel. ``token`` is the bot token or a provider of it."""

    name = "slack"

    def __init__(
        self,
        *,
        token: TokenSource,
        base_url: str = SLACK_API,
        timeout: float = 10.0,
        pacer: Pacer | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._token = token
        self.ca_file = ca_file
        self.base_url = base_url
        self.timeout = timeout
        self.pacer = pacer or Pacer(None)
        self._client: WebClient | None = None
        self._user_ids: dict[str, str] = {}  # address -> user id; reminders skip the lookup

    def _web(self) -> WebClient:
        if self._client is None:
            try:
                token = self._token() if callable(self._token) else self._token
            except ValueError as exc:  # SecretError: names the reference, never the value
                raise StopRun(f"slack token: {exc}", code="slack-secret") from None
            self._client = WebClient(
                token=token,
                base_url=self.base_url,
                timeout=max(1, math.ceil(self.timeout)),
                # A private CA (a TLS-inspecting proxy) is added; verification stays on.
                ssl=ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None,
                retry_handlers=[],  # a retried post could reach the person twice
            )
        return self._client

    def _call(self, method: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            raise translate(exc, method=method) from None
        except (URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise Transient(f"slack {method}: {reason}", code="slack-network") from None
        except SlackClientError as exc:  # a bad base_url or similar: configuration
            raise StopRun(f"slack {method}: {type(exc).__name__}", code="slack-config") from None

    def user_id(self, address: str) -> str:
        """The Slack user id for an email address (cached); Rejected if not usable."""
        key = address.strip().lower()
        if key in self._user_ids:
            return self._user_ids[key]
        response = self._call(
            "users.lookupByEmail", lambda: self._web().users_lookupByEmail(email=address)
        )
        user = response.get("user") or {}
        if user.get("deleted"):
            raise Rejected("slack: the person's account is deactivated", code="slack-deleted")
        if user.get("is_bot") or not user.get("id"):
            raise Rejected("slack: the address belongs to no person", code="slack-not-person")
        self._user_ids[key] = str(user["id"])
        return self._user_ids[key]

    def send(self, ask: AskMessage) -> Sent:
        """Post ``ask`` to the person; raises Transient / Rejected / StopRun."""
        user = self.user_id(ask.recipient.address)
        self.pacer.wait()
        response = self._call(
            "chat.postMessage",
            lambda: self._web().chat_postMessage(
                channel=user,
                text=ask.slack.text,
                blocks=[dict(b) for b in ask.slack.blocks],
                unfurl_links=False,  # the links are personal: no preview fetch
                unfurl_media=False,
            ),
        )
        ts = response.get("ts")
        log.info("campaign message for %s posted in slack (ts %s)", ask.key, ts)
        return Sent(self.name, message_id=str(ts) if ts else None, detail=f"user {user}")
