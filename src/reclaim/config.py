"""Typed settings: one YAML file (``reclaim.yaml``) plus a few environment overrides.

Every error names the file, the line where the YAML has it, the key path
(``policies[2].unused_days``) and what is wrong. Unknown keys are errors. Secrets are
references (see ``reclaim.secrets``) checked for presence but never printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reclaim.campaigns.settings import CampaignSettings, policy_campaign_problems
from reclaim.domain.policy import Policy, Strict
from reclaim.secrets import Secret, SecretError, SecretRef

CONFIG_ENV = "RECLAIM_CONFIG"
DATABASE_URL_ENV = "RECLAIM_DATABASE_URL"
DATA_DIR_ENV = "RECLAIM_DATA_DIR"


class DatabaseSettings(Strict):
    """Where the store lives. Default: a SQLite file in the data directory."""

    url: str | None = None
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError("must start with sqlite:/// or postgresql:// (psycopg 3 is used)")
        return v


class SafetySettings(Strict):
    """Global brakes. ``paused`` is the kill switch; ``dry_run`` refuses every write."""

    paused: bool = False
    dry_run: bool = False
    # Never removed, whatever a policy says (domain/protection.py): UPNs or patterns.
    protected_users: tuple[str, ...] = ()
    # Group ids, DNs, SIDs, sAMAccountNames or names whose members are never removed.
    protected_groups: tuple[str, ...] = ()
    # Mailed (through smtp:) when the mass-removal guard halts a policy
    # (services/halt_alerts.py); the dashboard lists the halt either way.
    alert_emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = ()


class UsageSettings(Strict):
    """How usage data is judged."""

    freshness_days: Annotated[int, Field(gt=0, le=365)] = 7
    # ≥ 400: the seasonal rule looks back a year and a quarter (store/retention.py).
    retention_days: Annotated[int, Field(ge=400)] = 800
    import_chunk_rows: Annotated[int, Field(ge=1000)] = 1_000_000


class EntraSettings(Strict):
    """Microsoft Graph access through MSAL client credentials."""

    tenant_id: str
    client_id: str
    client_secret: Secret | None = None
    certificate_file: Secret | None = None
    certificate_thumbprint: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    # An extra CA bundle to trust for sign-in and Graph (a TLS-inspecting proxy, a test
    # server); None: the system's CAs.
    ca_file: str | None = None
    # Graph's read limit depends on the tenant's size (S < 50, M 50-500, L > 500 users).
    tenant_size: Literal["S", "M", "L"] = "S"
    # Multiplies the documented limits Reclaim paces itself to: below 1 leaves room for
    # other tools on the same app registration; above 1 only for a test server whose
    # limits were raised as much (docs/operations.md, "Scale-out").
    rate_limit_scale: Annotated[float, Field(gt=0, le=1000)] = 1.0


class LdapSettings(Strict):
    """On-prem Active Directory over LDAPS (or StartTLS)."""

    hosts: Annotated[tuple[str, ...], Field(min_length=1)]
    base_dn: str
    bind_user: str
    bind_password: Secret
    use_ssl: bool = True
    start_tls: bool = False
    ca_file: str | None = None
    allow_insecure: bool = False
    # After a removal in AD, how long Entra ID may keep listing the member before the
    # case is failed (directory sync normally follows within 30 minutes).
    sync_deadline_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24


class SmtpSettings(Strict):
    """Outgoing mail for campaigns."""

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: Secret | None = None
    sender: str


class Settings(Strict):
    """The whole configuration file."""

    data_dir: str | None = None
    database: DatabaseSettings = DatabaseSettings()
    safety: SafetySettings = SafetySettings()
    usage: UsageSettings = UsageSettings()
    timezone: str = "UTC"
    entra: EntraSettings | None = None
    ldap: LdapSettings | None = None
    smtp: SmtpSettings | None = None
    policies: tuple[Policy, ...] = ()
    campaigns: CampaignSettings | None = None  # after policies: checked against them

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, v: tuple[Policy, ...]) -> tuple[Policy, ...]:
        seen: set[str] = set()
        for p in v:
            if p.name.lower() in seen:
                raise ValueError(
                    f"policy name {p.name!r} is used twice (names are case-insensitive)"
                )
            seen.add(p.name.lower())
        return v

    @model_validator(mode="after")
    def _campaign_defaults(self) -> Settings:
        # Names under campaigns.policies must be policies; campaigns.reminder_days and
        # response_timeout_days fill in policies that leave them out (see campaigns.settings).
        if self.campaigns is None:
            return self
        policies, problems = policy_campaign_problems(self.campaigns, self.policies)
        if problems:
            raise ValidationError.from_exception_data("Settings", problems)
        object.__setattr__(self, "policies", policies)  # frozen model: set once, here
        return self

    # -- derived values -----------------------------------------------------------------
    def resolved_data_dir(self) -> Path:
        """The data directory: RECLAIM_DATA_DIR, else ``data_dir``, else the XDG data home."""
        env = os.environ.get(DATA_DIR_ENV)
        if env:
            return Path(env)
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(xdg) / "reclaim"

    def database_url(self) -> str:
        """RECLAIM_DATABASE_URL, else ``database.url``, else SQLite in the data directory."""
        url = os.environ.get(DATABASE_URL_ENV) or self.database.url
        if url:
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{self.resolved_data_dir() / 'reclaim.db'}"

    def policy(self, name: str) -> Policy:
        """The policy with this name (case-insensitive), or KeyError listing the known ones."""
        for p in self.policies:
            if p.name.lower() == name.lower():
                return p
        known = ", ".join(p.name for p in self.policies) or "none configured"
        raise KeyError(f"no policy named {name!r} (known: {known})")

    def secret_refs(self) -> Iterator[tuple[str, SecretRef]]:
        """Every secret reference in the settings, with its key path."""
        for section in ("entra", "ldap", "smtp"):
            model = getattr(self, section)
            if model is None:
                continue
            for field_name in type(model).model_fields:
                value = getattr(model, field_name)
                if isinstance(value, SecretRef):
                    yield f"{section}.{field_name}", value
        if self.campaigns is not None:
            yield from self.campaigns.secret_refs()


class ConfigError(Exception):
    """The configuration is not valid. ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: configuration is not valid:\n{lines}")


def load_settings(path: Path | None = None, *, check_secrets: bool = False) -> Settings:
    """Load and validate settings from ``path``, RECLAIM_CONFIG, or defaults.

    With no file anywhere, the defaults are returned (an empty, valid configuration).
    ``check_secrets`` also resolves every secret reference (without keeping the values)
    so that a missing environment variable is reported now rather than mid-run.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None:
        return Settings()
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot be read: {exc}"]) from None
    return parse_settings(text, source=source, check_secrets=check_secrets)


def parse_settings(text: str, *, source: str, check_secrets: bool = False) -> Settings:
    """Validate YAML text; errors carry ``source:line: key.path: message``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(where, [f"not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source, ["the top level must be a mapping of keys (data_dir, policies, …)"]
        )
    lines = _line_index(node)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(err, lines, source) for err in exc.errors()]) from None
    if check_secrets:
        problems = []
        for key, ref in settings.secret_refs():
            try:
                ref.resolve()
            except SecretError as err:
                problems.append(f"{_where(source, lines, key)}{key}: {err}")
        if problems:
            raise ConfigError(source, problems)
    return settings


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(err: Any, lines: dict[str, int], source: str) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = _key_path(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key (check the spelling; unknown keys are not ignored)"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        # Echo plain values only, and never what was typed where a secret reference
        # belongs: that text may be the secret itself.
        if isinstance(value, str | int | float) and "secret reference" not in msg:
            msg += f" (got {value!r})"
    return f"{_where(source, lines, key)}{key}: {msg}"


def _where(source: str, lines: dict[str, int], key: str) -> str:
    # Walk up to the nearest key the YAML actually has (a missing key has no line).
    probe = key
    while probe:
        if probe in lines:
            return f"{source}:{lines[probe]}: "
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return f"{source}: "


def _line_index(node: yaml.Node | None) -> dict[str, int]:
    """Map every key path in the YAML document to its 1-based line number."""
    index: dict[str, int] = {}

    def walk(n: yaml.Node, path: str) -> None:
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                index[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                child = f"{path}[{i}]"
                index[child] = item.start_mark.line + 1
                walk(item, child)

    if node is not None:
        walk(node, "")
    return index
