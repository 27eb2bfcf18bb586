"""Where and as whom the Graph connector talks: clouds, credentials, timeouts, limits.

National clouds are separate deployments with their own sign-in and Graph hosts; both
are configurable, and the known ones are named here with the page they come from.
Secrets are never held as plain fields: a credential holds a *source* (the value or a
callable returning it), read when a token is needed, so a rotated secret is picked up
without a restart and the value never ends up in a repr.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from reclaim.connectors.errors import StopRun
from reclaim.secrets import SecretError

if TYPE_CHECKING:
    from reclaim.config import EntraSettings

SecretSource = str | Callable[[], str]
"""A secret, or a callable returning it (called each time a token must be fetched)."""

TenantSize = Literal["S", "M", "L"]
"""Entra's tenant size classes for throttling: under 50, 50-500, over 500 users."""

NATIONAL_CLOUDS_DOC = "https://learn.microsoft.com/graph/deployments"


@dataclass(frozen=True)
class GraphCloud:
    """One Microsoft Graph deployment: its sign-in host and its Graph host."""

    name: str
    authority_host: str
    graph_url: str
    docs: str = NATIONAL_CLOUDS_DOC


# Hosts from "National cloud deployments" (learn.microsoft.com/graph/deployments).
GLOBAL = GraphCloud("global", "https://login.microsoftonline.com", "https://graph.microsoft.com")
US_GOV = GraphCloud("us-gov", "https://login.microsoftonline.us", "https://graph.microsoft.us")
# US Government L5 (DoD) signs in at the same host as L4 but has its own Graph host.
US_GOV_DOD = GraphCloud(
    "us-gov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"
)
CHINA = GraphCloud(
    "china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"
)
CLOUDS: dict[str, GraphCloud] = {c.name: c for c in (GLOBAL, US_GOV, US_GOV_DOD, CHINA)}


@dataclass(frozen=True)
class ClientSecret:
    """An app registration's client secret (the secret's *value*, not its id)."""

    secret: SecretSource = field(repr=False)


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate credential: PEM text holding the private key (and normally the cert).

    ``thumbprint`` is the certificate's SHA-1 thumbprint in hex, as the Entra portal shows
    it; when omitted it is computed from the certificate in ``pem``. Microsoft recommends
    certificates over secrets for daemon apps.
    """

    pem: SecretSource = field(repr=False)
    thumbprint: str | None = None
    passphrase: SecretSource | None = field(default=None, repr=False)


Credential = ClientSecret | ClientCertificate

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----\s.*?-----END (?P=kind)-----", re.DOTALL
)


def read_secret(source: SecretSource, what: str) -> str:
    """The secret's value; StopRun (naming ``what``, never the value) when unreadable."""
    try:
        value = source() if callable(source) else source
    except SecretError as exc:
        # Reclaim's own secret references word their errors without the value.
        raise StopRun(f"could not read the {what}: {exc}", code="graph-credential") from None
    except Exception as exc:
        # Another provider's message could quote its input; name only the type.
        raise StopRun(
            f"could not read the {what} ({type(exc).__name__})", code="graph-credential"
        ) from None
    if not value:
        raise StopRun(f"the {what} is empty", code="graph-credential")
    return value


def certificate_credential(cert: ClientCertificate) -> dict[str, str]:
    """MSAL's ``client_credential`` dict for a certificate, checked up front.

    With a certificate in the PEM and no thumbprint given, MSAL signs with PS256 and the
    SHA-256 thumbprint (``x5t#S256``), the current recommendation; a configured thumbprint
    is taken as the portal's SHA-1 one (RS256, ``x5t``). Checking the key here turns a
    bad key file into a StopRun with a clear reason instead of an exception from deep
    inside MSAL's JWT signing.
    """
    pem = read_secret(cert.pem, "client certificate")
    passphrase = read_secret(cert.passphrase, "certificate passphrase") if cert.passphrase else None
    blocks = {m.group("kind"): m.group(0) for m in _PEM_BLOCK.finditer(pem)}
    key = next((text for kind, text in blocks.items() if kind.endswith("PRIVATE KEY")), None)
    if key is None:
        raise StopRun("the client certificate PEM holds no private key", code="graph-credential")
    try:
        load_pem_private_key(key.encode(), passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        raise StopRun(
            f"the client certificate's private key cannot be read ({type(exc).__name__}); "
            "check the PEM and its passphrase",
            code="graph-credential",
        ) from None
    out = {"private_key": key}
    if passphrase:
        out["passphrase"] = passphrase
    if cert.thumbprint:
        out["thumbprint"] = cert.thumbprint.replace(":", "").strip().upper()
    elif "CERTIFICATE" in blocks:
        try:
            x509.load_pem_x509_certificate(blocks["CERTIFICATE"].encode())
        except ValueError:
            raise StopRun(
                "the certificate in the client certificate PEM cannot be read",
                code="graph-credential",
            ) from None
        out["public_certificate"] = blocks["CERTIFICATE"]
    else:
        raise StopRun(
            "no certificate thumbprint given and the PEM holds no certificate to take it from",
            code="graph-credential",
        )
    return out


def sha1_thumbprint(certificate_pem: str) -> str:
    """The SHA-1 thumbprint (hex, upper case) the Entra portal shows for a certificate."""
    der = x509.load_pem_x509_certificate(certificate_pem.encode()).public_bytes(Encoding.DER)
    # x5t is defined as the SHA-1 of the DER certificate; this is not a security use.
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one logical request is retried before the caller gets Transient.

    ``deadline`` bounds the total time spent on one request including waits; a
    Retry-After that would overrun it is handed to the caller instead (as
    ``Transient.retry_after``) so the run can reschedule rather than block.
    """

    max_attempts: int = 6
    deadline: float = 300.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.deadline <= 0:
            raise ValueError("max_attempts must be >= 1 and deadline > 0")
        if self.backoff_base <= 0 or self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_base must be > 0 and backoff_cap >= backoff_base")


@dataclass(frozen=True)
class GraphSettings:
    """Everything the connector needs to reach one tenant.

    ``authority_host`` and ``graph_url`` are roots without a path (see the cloud
    constants); the tenant and the API version are appended. ``ca_file`` trusts an extra
    CA (tests, TLS-inspecting proxies); by default the system/certifi store is used.
    ``tenant_size`` picks the read budget (S/M/L: 3,500/5,000/8,000 resource units per
    10 s); ``concurrency`` bounds the ``$batch`` requests in flight at once.
    """

    tenant_id: str
    client_id: str
    credential: Credential
    authority_host: str = GLOBAL.authority_host
    graph_url: str = GLOBAL.graph_url
    api_version: str = "v1.0"
    scope: str | None = None
    ca_file: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    tenant_size: TenantSize = "S"
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not self.tenant_id.strip() or not self.client_id.strip():
            raise ValueError("tenant_id and client_id are required")
        for name in ("authority_host", "graph_url"):
            value = getattr(self, name)
            if not value.startswith("https://"):
                # Bearer tokens and client secrets must never travel in clear text.
                raise ValueError(f"{name} must be an https:// URL, got {value!r}")
            object.__setattr__(self, name, value.rstrip("/"))
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if not 1 <= self.concurrency <= 16:
            raise ValueError("concurrency must be between 1 and 16")
        if self.tenant_size not in ("S", "M", "L"):
            raise ValueError("tenant_size must be S, M or L")

    @classmethod
    def for_cloud(
        cls,
        cloud: GraphCloud,
        *,
        tenant_id: str,
        client_id: str,
        credential: Credential,
        **options: object,
    ) -> GraphSettings:
        """Settings for one of the named clouds (``GLOBAL``, ``US_GOV``, ...)."""
        return cls(
            tenant_id=tenant_id,
            client_id=client_id,
            credential=credential,
            authority_host=cloud.authority_host,
            graph_url=cloud.graph_url,
            **options,  # type: ignore[arg-type]
        )

    @property
    def authority(self) -> str:
        """What MSAL takes as ``authority``: ``{authority_host}/{tenant_id}``."""
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def api_root(self) -> str:
        """The versioned Graph root every request is relative to."""
        return f"{self.graph_url}/{self.api_version}"

    @property
    def token_scope(self) -> str:
        """The client-credentials scope: the cloud's Graph resource with ``/.default``."""
        return self.scope or f"{self.graph_url}/.default"


def settings_from_config(entra: EntraSettings, **options: object) -> GraphSettings:
    """Build connector settings from the ``entra:`` section of the config file
    (``ca_file`` and ``tenant_size`` included); ``options`` set or override other
    :class:`GraphSettings` fields (``concurrency``, timeouts, ...).

    Secret references are resolved lazily, at each token fetch.
    """
    credential: Credential
    if entra.client_secret is not None:
        credential = ClientSecret(entra.client_secret.resolve)
    elif entra.certificate_file is not None:
        credential = ClientCertificate(
            entra.certificate_file.resolve, thumbprint=entra.certificate_thumbprint
        )
    else:
        raise ValueError("entra: set client_secret or certificate_file")
    fields: dict[str, object] = {"ca_file": entra.ca_file, "tenant_size": entra.tenant_size}
    fields.update(options)
    return GraphSettings(
        tenant_id=entra.tenant_id,
        client_id=entra.client_id,
        credential=credential,
        authority_host=entra.authority_host,
        graph_url=entra.graph_url,
        **fields,  # type: ignore[arg-type]
    )
