"""How the LDAP connector reaches a DC: settings, TLS, bind, and result-code mapping.

Kept apart from ``ldap.py`` (the directory operations) so the security decisions -
verify certificates, never downgrade, never log the password - sit in one short file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ldap3 import NONE, SIMPLE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPMaximumRetriesError,
    LDAPResponseTimeoutError,
    LDAPSSLConfigurationError,
    LDAPStartTLSError,
)

from reclaim.connectors import ad_vendor as ad
from reclaim.connectors.errors import ConnectorError, NotFound, Rejected, StopRun, Transient

log = logging.getLogger("reclaim.connectors.ldap")

PasswordSource = str | Callable[[], str]
"""The service account's password, or a callable returning it (read at each connect,
so a rotated secret is picked up without a restart)."""

# ldap3 raises these (or subclasses merged with the socket/ssl error) when the
# network, not the server, failed: worth another DC or a later retry.
COMMUNICATION_ERRORS: tuple[type[BaseException], ...] = (
    LDAPCommunicationError,
    LDAPResponseTimeoutError,
    LDAPSSLConfigurationError,
    LDAPMaximumRetriesError,
    socket.timeout,
    ConnectionError,
)
_CERTIFICATE_ERRORS = (ssl.SSLCertVerificationError, LDAPCertificateError)


@dataclass(frozen=True)
class LdapSettings:
    """Where and how to reach AD. Unsafe transports need explicit, logged opt-outs.

    ``hosts`` are DCs in order of preference (host names or addresses, no URL).
    ``ca_file`` is the CA bundle that signed the DCs' certificates (None: the system
    store). Plain LDAP (``use_ssl=False, start_tls=False``) or ``verify_tls=False``
    need ``allow_insecure``; writes over such a transport also need
    ``allow_insecure_writes``.
    """

    hosts: tuple[str, ...]
    base_dn: str
    bind_user: str
    password: PasswordSource = field(repr=False)
    port: int | None = None
    use_ssl: bool = True
    start_tls: bool = False
    verify_tls: bool = True
    ca_file: str | None = None
    connect_timeout: float = 5.0
    receive_timeout: float = 30.0
    range_step: int = ad.DEFAULT_MAX_VAL_RANGE
    allow_insecure: bool = False
    allow_insecure_writes: bool = False
    dry_run: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(self.hosts))
        if not self.hosts or any(not h or "://" in h for h in self.hosts):
            raise ValueError("hosts must be one or more DC host names or addresses (no URLs)")
        if self.use_ssl and self.start_tls:
            raise ValueError("choose LDAPS (use_ssl) or StartTLS, not both")
        if self.connect_timeout <= 0 or self.receive_timeout <= 0 or self.range_step < 1:
            raise ValueError("timeouts and range_step must be positive")
        if self.insecure_reason and not self.allow_insecure:
            raise ValueError(
                f"insecure LDAP transport ({self.insecure_reason}) needs allow_insecure=True"
            )
        if self.allow_insecure_writes and not self.allow_insecure:
            raise ValueError("allow_insecure_writes needs allow_insecure=True")

    @property
    def effective_port(self) -> int:
        """The port to use: the configured one, else 636 for LDAPS, 389 otherwise."""
        return self.port or (636 if self.use_ssl else 389)

    @property
    def insecure_reason(self) -> str | None:
        """Why this transport is not safe for credentials and writes, or None."""
        if not self.use_ssl and not self.start_tls:
            return "plain LDAP without TLS"
        if not self.verify_tls:
            return "TLS without certificate verification"
        return None

    @property
    def writes_possible(self) -> bool:
        """Whether the transport itself permits writes (ignores dry-run/kill switch)."""
        return not self.insecure_reason or self.allow_insecure_writes


def _password(settings: LdapSettings) -> str:
    source = settings.password
    try:
        value = source() if callable(source) else source
    except Exception as exc:
        # The provider's own message could quote its input; name only the type.
        raise StopRun(
            f"could not read the LDAP service account password ({type(exc).__name__})",
            code="ldap-password",
        ) from None
    if not value:
        # An empty password makes a simple bind *anonymous* on AD - and "successful".
        raise StopRun("the LDAP service account password is empty", code="ldap-password")
    return value


def _is_certificate_error(exc: BaseException) -> bool:
    if isinstance(exc, _CERTIFICATE_ERRORS):
        return True
    # With several addresses per host ldap3 raises one error carrying a history of
    # (exception, address) pairs.
    history = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], list) else []
    return any(
        isinstance(item, tuple) and isinstance(item[0], _CERTIFICATE_ERRORS) for item in history
    )


def _certificate_refused(host: str, exc: BaseException) -> StopRun:
    # Not failing over: a certificate that stops verifying is a misconfiguration or an
    # attack, and either needs an admin, not a quieter DC.
    return StopRun(
        f"TLS certificate of {host} failed verification ({exc}); refusing to connect. "
        "Check ca_file, the DC's certificate and the host name used.",
        code="ldap-certificate",
    )


def error_for_result(result: dict[str, Any], *, action: str, bind_user: str) -> ConnectorError:
    """Map an LDAP result to what the caller must do (see docs/active-directory.md)."""
    code = int(result.get("result", ad.ResultCode.OTHER))
    text = f"{action}: {result.get('description')} ({code}) {result.get('message') or ''}".strip()
    tag = f"ldap-{code}"
    if code in ad.TLS_REQUIRED_CODES:
        return StopRun(
            f"{action}: the DC requires an encrypted connection (TLS is required): use LDAPS "
            f"(port 636) or StartTLS with certificate verification ({result.get('message')})",
            code=tag,
        )
    if code == ad.ResultCode.INVALID_CREDENTIALS:
        reason = ad.bind_failure_reason(str(result.get("message") or "")) or "invalid credentials"
        return StopRun(f"credentials rejected for {bind_user!r}: {reason}", code=tag)
    if code == ad.ResultCode.INSUFFICIENT_ACCESS_RIGHTS:
        return StopRun(f"permission missing for {bind_user!r}: {text}", code=tag)
    if code == ad.ResultCode.NO_SUCH_OBJECT:
        return NotFound(text, code=tag)
    if code in ad.TRANSIENT_CODES:
        return Transient(text, code=tag)
    return Rejected(text, code=tag)


def _ca_file_error(settings: LdapSettings, exc: BaseException) -> StopRun:
    return StopRun(f"cannot use ca_file {settings.ca_file!r} ({exc})", code="ldap-ca-file")


def _bind_error(result: dict[str, Any], host: str, bind_user: str) -> ConnectorError:
    error = error_for_result(result, action=f"bind to {host}", bind_user=bind_user)
    # Busy/unavailable: another DC may do (Transient). Anything else refused at bind
    # will be refused on every call, so nothing more can succeed in this run.
    if isinstance(error, StopRun | Transient):
        return error
    return StopRun(error.detail, code=error.code)


def open_connection(settings: LdapSettings, host: str) -> Connection:
    """Connect to one DC, secure the channel, and bind as the service account.

    Raises Transient when the DC cannot be reached (try another), StopRun when going
    on would be unsafe or pointless (certificate, credentials, TLS refused).
    """
    tls = None
    if settings.use_ssl or settings.start_tls:
        try:
            tls = Tls(
                validate=ssl.CERT_REQUIRED if settings.verify_tls else ssl.CERT_NONE,
                ca_certs_file=settings.ca_file,
            )
        except LDAPSSLConfigurationError as exc:  # ldap3 checks the file exists
            raise _ca_file_error(settings, exc) from exc
    server = Server(
        host,
        port=settings.effective_port,
        use_ssl=settings.use_ssl,
        tls=tls,
        get_info=NONE,  # no schema read: one round trip less, and we name attributes exactly
        connect_timeout=settings.connect_timeout,
    )
    conn = Connection(
        server,
        user=settings.bind_user,
        authentication=SIMPLE,
        client_strategy=SYNC,
        raise_exceptions=False,
        # Referrals would make ldap3 bind with our credentials to any host they name.
        auto_referrals=False,
        auto_range=False,  # ranges are read explicitly (ldap3's merge breaks without
        return_empty_attributes=False,  # ... these two off)
        # ldap3 packs the receive timeout into SO_RCVTIMEO as whole seconds.
        receive_timeout=math.ceil(settings.receive_timeout),
        read_only=settings.dry_run or not settings.writes_possible,
    )
    try:
        conn.open()
        if settings.start_tls:
            conn.start_tls()
        conn.password = _password(settings)
        try:
            bound = conn.bind()
        finally:
            conn.password = None  # keep the secret out of ldap3's object once used
        if not bound:
            raise _bind_error(dict(conn.result or {}), host, settings.bind_user)
    except ConnectorError:
        _quiet_unbind(conn)
        raise
    except Exception as exc:
        _quiet_unbind(conn)
        if _is_certificate_error(exc):
            raise _certificate_refused(host, exc) from exc
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            # ldap3 reads ca_file while wrapping the socket: without this an unreadable
            # file would look like an unreachable DC.
            raise _ca_file_error(settings, exc) from exc
        if isinstance(exc, LDAPStartTLSError):
            raise StopRun(
                f"StartTLS failed on {host} ({exc}); not continuing in clear text",
                code="ldap-starttls",
            ) from exc
        if isinstance(exc, COMMUNICATION_ERRORS):
            raise Transient(
                f"cannot reach {host}:{settings.effective_port} ({exc})", code="ldap-down"
            ) from exc
        raise
    if settings.insecure_reason:
        log.warning(
            "LDAP: connected to %s over an INSECURE transport (%s)", host, settings.insecure_reason
        )
    else:
        log.info(
            "LDAP: connected to %s:%s as %s", host, settings.effective_port, settings.bind_user
        )
    return conn


def _quiet_unbind(conn: Connection) -> None:
    # Closing a half-open socket: whatever goes wrong here there is nothing to report.
    with contextlib.suppress(Exception):
        conn.unbind()
