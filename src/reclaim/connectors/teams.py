"""Campaign asks in Microsoft Teams: an Adaptive Card POSTed to a Workflows webhook.

The payload is the envelope Teams documents for cards sent to a webhook ("Send
Adaptive Cards using an Incoming Webhook", learn.microsoft.com/microsoftteams/platform/
webhooks-and-connectors/how-to/connectors-using)::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null, "content": {...AdaptiveCard 1.4...}}],
     "recipient": "alice@corp.example"}

``recipient`` (the field name is configurable) is for the Workflow: it should post the
card *to that person* ("Post card in a chat or channel" → "Chat with Flow bot", with
Recipient = ``triggerBody()?['recipient']``). The card's buttons are that person's
bearer links, so it must never land in a shared channel. The classic Office 365
connector webhooks can only post to a channel, so their URLs are refused here.

The webhook URL carries its own signature (``sig=``): it is a credential, so it is
read from a provider, and never written to a log or an error (only its host is).
Outcomes: 2xx → sent (a Workflow answers 202: *accepted*; what the flow then does is
not visible from here); 429 / 408 / 5xx / network → Transient (Retry-After honoured);
401 / 403 / 404 / 410 → StopRun (the webhook itself is gone or refused: no ask can
pass); any other 4xx → Rejected.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from reclaim.campaigns.delivery import Sent
from reclaim.campaigns.model import AskMessage
from reclaim.campaigns.pacing import Pacer
from reclaim.connectors.errors import Rejected, StopRun, Transient

log = logging.getLogger(__name__)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
#: Office 365 connector webhooks always post to a channel (and are being retired).
CLASSIC_WEBHOOK_HOSTS = (".webhook.office.com", "outlook.office.com", "outlook.office365.com")
#: Connectors answer 200 and put the throttling in the body (same page, "Rate limiting").
THROTTLED_IN_BODY = "Microsoft Teams endpoint returned HTTP error 429"
WEBHOOK_GONE = frozenset({401, 403, 404, 410})

UrlSource = str | Callable[[], str]
_SIGNATURE = re.compile(r"(?i)([?&]sig=)[^&\s\"']+")


class RedactSignatures(logging.Filter):
    """Blank the ``sig=`` of signed URLs in log records.

    httpx logs every request's full URL at INFO; a Workflows webhook URL carries its
    signature in the query, and anyone holding it can post as the workflow.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SIGNATURE.sub(r"\1REDACTED", str(a)) if "sig=" in str(a).lower() else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "sig=" in record.msg.lower():
            record.msg = _SIGNATURE.sub(r"\1REDACTED", record.msg)
        return True


def install_log_redaction() -> None:
    """Add :class:`RedactSignatures` to the httpx logger (once)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactSignatures) for f in logger.filters):
        logger.addFilter(RedactSignatures())


def retry_after_seconds(value: str | None) -> float | None:
    """The delta-seconds form of a Retry-After header, or None (HTTP dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def card_payload(ask: AskMessage, *, recipient_field: str | None = "recipient") -> dict[str, Any]:
    """The webhook body for ``ask``: the documented message envelope around its card."""
    payload: dict[str, Any] = {
        "type": "message",
        "attachments": [
            {"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": dict(ask.teams_card)}
        ],
    }
    if recipient_field:
        payload[recipient_field] = ask.recipient.upn
    return payload


class TeamsWebhookChannel:
    """The ``teams`` campaign channel for one webhook URL (normally one per policy)."""

    name = "teams"

    def __init__(
        self,
        *,
        webhook_url: UrlSource,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        pacer: Pacer | None = None,
        recipient_field: str | None = "recipient",
        allow_channel_webhook: bool = False,
        verify: str | bool = True,
    ) -> None:
        self._url = webhook_url
        # Never follow a redirect: it would carry the signed URL's body elsewhere.
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False, verify=verify)
        self.pacer = pacer or Pacer(None)
        self.recipient_field = recipient_field
        self.allow_channel_webhook = allow_channel_webhook
        install_log_redaction()

    def _resolve_url(self) -> tuple[str, str]:
        try:
            url = self._url() if callable(self._url) else self._url
        except ValueError as exc:  # SecretError: names the reference, never the value
            raise StopRun(f"teams webhook URL: {exc}", code="teams-secret") from None
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            raise StopRun("teams webhook URL is not an http(s) URL", code="teams-config")
        classic = host.endswith(CLASSIC_WEBHOOK_HOSTS) or host in CLASSIC_WEBHOOK_HOSTS
        if classic and not self.allow_channel_webhook:
            raise StopRun(
                f"teams webhook on {host} is an Office 365 connector, which posts to a "
                "channel: every member would see this person's answer links. Use a "
                "Workflows webhook that posts to the person in a chat",
                code="teams-channel-webhook",
            )
        return url, host

    def send(self, ask: AskMessage) -> Sent:
        """POST the card; raises Transient / Rejected / StopRun as the module says."""
        url, host = self._resolve_url()
        self.pacer.wait()
        payload = card_payload(ask, recipient_field=self.recipient_field)
        try:
            response = self.http.post(url, json=payload)
        except httpx.TimeoutException:
            raise Transient(f"teams webhook on {host}: timed out", code="teams-timeout") from None
        except httpx.TransportError as exc:
            raise Transient(
                f"teams webhook on {host}: {type(exc).__name__}", code="teams-network"
            ) from None
        status = response.status_code
        where = f"teams webhook on {host}: HTTP {status}"
        if status == 429 or status == 408 or status >= 500:
            hint = retry_after_seconds(response.headers.get("Retry-After"))
            raise Transient(where, code=f"teams-{status}", retry_after=hint)
        if status in WEBHOOK_GONE:
            raise StopRun(f"{where}: the webhook is gone or refuses us", code=f"teams-{status}")
        if status >= 400:
            raise Rejected(f"{where}: {_snippet(response)}", code=f"teams-{status}")
        if THROTTLED_IN_BODY in response.text:
            raise Transient(f"teams webhook on {host}: throttled", code="teams-429")
        log.info("campaign card for %s accepted by teams webhook on %s", ask.key, host)
        return Sent(self.name, detail=f"HTTP {status} from {host}")

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


def _snippet(response: httpx.Response) -> str:
    return " ".join(response.text.split())[:200]
