"""Campaign mail over SMTP (stdlib smtplib): STARTTLS, implicit TLS, or none on loopback.

Each ask becomes one multipart/alternative message (plain text + HTML) to one person.
Failures leave this module as the connector errors, decided once here:

- a permanent refusal of the *recipient or message* (5xx on RCPT or DATA: "550 unknown
  user") is **Rejected**: the runner marks the case "could not ask", never consent;
- anything that may pass later (4xx, refused connection, timeout, dropped line) is
  **Transient**;
- what no later message could get past (authentication refused, STARTTLS missing, a
  certificate that does not verify, the sender address refused) is **StopRun**.

The password is fetched from a provider callable at login, is never stored on the
object, never logged, and smtplib's debug output (which would print the AUTH exchange)
is never turned on. Sends are paced (messages per second); the connection is reused
between messages and checked with NOOP before each reuse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Literal

from reclaim.campaigns.delivery import Sent
from reclaim.campaigns.model import AskMessage, Sender
from reclaim.campaigns.pacing import Pacer
from reclaim.campaigns.settings import is_loopback_host
from reclaim.connectors.errors import ConnectorError, Rejected, StopRun, Transient
from reclaim.secrets import SecretError

if TYPE_CHECKING:
    from reclaim.config import SmtpSettings

log = logging.getLogger(__name__)

PasswordProvider = Callable[[], str]
Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to send. ``password`` is a provider, called only to log in."""

    host: str
    sender: Sender
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: PasswordProvider | None = field(default=None, repr=False)
    ca_file: str | None = None  # verify the server against this CA bundle (else system CAs)
    timeout: float = 30.0
    rate_per_second: float | None = 0.5  # 30 a minute: Exchange Online's per-mailbox limit
    reply_to: str | None = None
    local_hostname: str | None = None  # the EHLO name; default: this host's FQDN
    allow_plaintext_auth: bool = False  # send a password without TLS to a non-loopback host

    @classmethod
    def from_settings(
        cls,
        smtp: SmtpSettings,
        *,
        sender_name: str | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
        rate_per_second: float | None = 0.5,
        reply_to: str | None = None,
    ) -> SmtpOptions:
        """Options from the ``smtp:`` section (``sender`` may be ``Name <addr>``)."""
        name, address = parseaddr(smtp.sender)
        return cls(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            username=smtp.username,
            password=smtp.password.resolve if smtp.password is not None else None,
            sender=Sender(address=address or smtp.sender, name=name or sender_name),
            ca_file=ca_file,
            timeout=timeout,
            rate_per_second=rate_per_second,
            reply_to=reply_to,
        )


def build_email(
    ask: AskMessage, *, sender: Sender, now: dt.datetime, reply_to: str | None = None
) -> EmailMessage:
    """The MIME message for ``ask``: text and HTML alternatives, one recipient.

    The Message-ID comes from the ask's idempotency key, so a send retried after a crash
    carries the same id and mail systems can fold the duplicate. A recipient address that
    is not an address is Rejected; a sender that is not one is StopRun (configuration).
    """
    person = ask.recipient
    try:
        to = Address(display_name=person.display_name or "", addr_spec=person.address)
    except (ValueError, IndexError, MessageError):
        raise Rejected(
            f"not a usable mail address: {person.address!r}", code="smtp-address"
        ) from None
    try:
        from_ = Address(display_name=sender.name or "", addr_spec=sender.address)
    except (ValueError, IndexError, MessageError):
        raise StopRun(
            f"the sender {sender.address!r} is not a mail address", code="smtp-sender"
        ) from None
    msg = EmailMessage()
    msg["Subject"] = ask.email.subject
    msg["From"] = from_
    msg["To"] = to
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Date"] = format_datetime(now.astimezone(dt.UTC))
    domain = sender.address.rpartition("@")[2] or "reclaim.invalid"
    msg["Message-ID"] = f"<{ask.key}.reclaim@{domain}>"
    # RFC 3834: an automatic message; out-of-office replies should not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    # Exchange's own switch for the same (learn.microsoft.com: X-Auto-Response-Suppress).
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(ask.email.text)
    msg.add_alternative(ask.email.html, subtype="html")
    return msg


def _code_text(code: int, text: bytes | str) -> str:
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(raw.split())}"[:300]


def translate(
    exc: BaseException, *, server: str, phase: Literal["connect", "send"] = "send"
) -> ConnectorError:
    """The connector error for one smtplib/socket failure (order matters: subclasses).

    ``phase``: a 5xx while connecting (greeting, EHLO, STARTTLS) refuses *us*, so every
    message would fail (StopRun); a 5xx on DATA refuses *this message* (Rejected).
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = getattr(exc, "verify_message", None) or "verification failed"
        return StopRun(f"{server}: TLS certificate not trusted ({why})", code="smtp-tls")
    if isinstance(exc, ssl.SSLError):
        return StopRun(f"{server}: TLS failed ({exc.reason or exc})", code="smtp-tls")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        detail = _code_text(exc.smtp_code, exc.smtp_error)
        return StopRun(f"{server}: login refused: {detail}", code="smtp-auth")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return StopRun(f"{server}: {exc}", code="smtp-unsupported")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per message, so this dict has exactly that one.
        code, text = next(iter(exc.recipients.values()))
        detail = f"{server}: recipient refused: {_code_text(code, text)}"
        if 500 <= code < 600:
            return Rejected(detail, code=f"smtp-{code}")
        return Transient(detail, code=f"smtp-{code}")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        detail = (
            f"{server}: sender {exc.sender} refused: {_code_text(exc.smtp_code, exc.smtp_error)}"
        )
        if 500 <= exc.smtp_code < 600:
            # Every message has this sender: nothing else will pass either.
            return StopRun(detail, code=f"smtp-{exc.smtp_code}")
        return Transient(detail, code=f"smtp-{exc.smtp_code}")
    if isinstance(exc, smtplib.SMTPResponseException):  # DATA, greeting, EHLO, STARTTLS
        detail = f"{server}: {_code_text(exc.smtp_code, exc.smtp_error)}"
        tag = f"smtp-{exc.smtp_code}"
        if not 500 <= exc.smtp_code < 600:
            return Transient(detail, code=tag)
        return StopRun(detail, code=tag) if phase == "connect" else Rejected(detail, code=tag)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return Transient(f"{server}: connection closed by the server", code="smtp-disconnected")
    if isinstance(exc, TimeoutError):
        return Transient(f"{server}: timed out", code="smtp-timeout")
    if isinstance(exc, ConnectionRefusedError):
        return Transient(f"{server}: connection refused", code="smtp-refused")
    if isinstance(exc, socket.gaierror):
        return Transient(f"{server}: host name not resolved ({exc.strerror})", code="smtp-dns")
    if isinstance(exc, OSError | smtplib.SMTPException):
        return Transient(f"{server}: {type(exc).__name__}: {exc}", code="smtp-network")
    raise TypeError(f"not an SMTP failure: {type(exc).__name__}")


class SmtpChannel:
    """The ``email`` campaign channel. Use as a context manager to close the connection.

    ``now`` gives the Date header; ``pacer`` (default: ``options.rate_per_second``)
    spaces the sends. Not thread-safe: one channel object per worker.
    """

    name = "email"

    def __init__(
        self,
        options: SmtpOptions,
        *,
        pacer: Pacer | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.options = options
        self.pacer = pacer if pacer is not None else Pacer(options.rate_per_second)
        self.now = now
        self._smtp: smtplib.SMTP | None = None

    @property
    def server(self) -> str:
        """``host:port``, for messages."""
        return f"{self.options.host}:{self.options.port}"

    # ----- the Channel protocol -----------------------------------------------------

    def send(self, ask: AskMessage) -> Sent:
        """Mail ``ask`` to its recipient; raises Transient / Rejected / StopRun."""
        sender = ask.request.sender or self.options.sender
        msg = build_email(ask, sender=sender, now=self.now(), reply_to=self.options.reply_to)
        self.send_message(msg, sender=sender.address, to=ask.recipient.address)
        return Sent(self.name, message_id=str(msg["Message-ID"]), detail=f"via {self.server}")

    def send_message(self, msg: EmailMessage, *, sender: str, to: str) -> None:
        """Send one prepared message to one address (paced)."""
        self.pacer.wait()
        smtp = self._connection()
        try:
            smtp.send_message(msg, from_addr=sender, to_addrs=[to])
        except (smtplib.SMTPException, OSError) as exc:
            # After a failure mid-transaction the session state is unknown: start over.
            self.close()
            raise translate(exc, server=self.server) from None
        log.info("campaign mail %s sent via %s", msg["Message-ID"], self.server)

    # ----- connection ---------------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass  # idle connection dropped by the server: open a new one
            self.close()
        self._smtp = self._open()
        return self._smtp

    def _tls_context(self) -> ssl.SSLContext:
        # Verification and host-name checks stay on; a private CA is added, never "off".
        return ssl.create_default_context(cafile=self.options.ca_file)

    def _open(self) -> smtplib.SMTP:
        o = self.options
        plaintext = o.security == "none" and not is_loopback_host(o.host)
        if o.username and plaintext and not o.allow_plaintext_auth:
            raise StopRun(
                f"{self.server}: refusing to send the SMTP password without TLS; "
                "use security starttls or tls",
                code="smtp-plaintext-auth",
            )
        smtp: smtplib.SMTP | None = None
        try:
            if o.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    o.host,
                    o.port,
                    local_hostname=o.local_hostname,
                    timeout=o.timeout,
                    context=self._tls_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    o.host, o.port, local_hostname=o.local_hostname, timeout=o.timeout
                )
            smtp.ehlo()
            if o.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise StopRun(
                        f"{self.server}: the server does not offer STARTTLS; refusing to "
                        "send in clear text",
                        code="smtp-no-starttls",
                    )
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if o.username:
                smtp.login(o.username, self._password())
            return smtp
        except ConnectorError:
            _quietly_close(smtp)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            _quietly_close(smtp)
            raise translate(exc, server=self.server, phase="connect") from None

    def _password(self) -> str:
        if self.options.password is None:
            raise StopRun(f"{self.server}: smtp.username is set but no password", code="smtp-auth")
        try:
            return self.options.password()
        except SecretError as exc:  # names the reference, never a value
            raise StopRun(f"smtp.password: {exc}", code="smtp-secret") from None

    def close(self) -> None:
        """Close the connection (QUIT), ignoring a peer that is already gone."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                _quietly_close(smtp)

    def __enter__(self) -> SmtpChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quietly_close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
