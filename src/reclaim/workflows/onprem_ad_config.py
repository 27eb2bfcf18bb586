"""Connectors for the ``onprem_ad`` workflow, built from the config file.

Kept apart from the adapter so the adapter can be built in tests from connectors
pointing at test peers, and so the safety wiring (dry run, kill switch) is in one
place that can be read at a glance.
"""

from __future__ import annotations

from collections.abc import Callable

from reclaim.config import LdapSettings as LdapConfig
from reclaim.config import Settings
from reclaim.connectors.graph import GraphClient
from reclaim.connectors.graph.budget import RateBudget
from reclaim.connectors.graph.settings import settings_from_config
from reclaim.connectors.ldap import LdapConnector, LdapSettings


def ldap_settings_from_config(ldap: LdapConfig, *, dry_run: bool) -> LdapSettings:
    """Connector settings from the ``ldap:`` section; the password is read at each
    connect (so a rotated secret is picked up without a restart)."""
    return LdapSettings(
        hosts=ldap.hosts,
        base_dn=ldap.base_dn,
        bind_user=ldap.bind_user,
        password=ldap.bind_password.resolve,
        use_ssl=ldap.use_ssl,
        start_tls=ldap.start_tls,
        ca_file=ldap.ca_file,
        allow_insecure=ldap.allow_insecure,
        dry_run=dry_run,
    )


def build_connectors(
    settings: Settings,
    *,
    writes_allowed: Callable[[], bool] | None = None,
    budget: RateBudget | None = None,
) -> tuple[LdapConnector, GraphClient | None]:
    """The LDAP connector and (when ``entra:`` is configured) the Graph client.

    Both refuse writes in dry run (``safety.dry_run``) and while paused
    (``safety.paused``, or ``writes_allowed()`` returning False).
    """
    if settings.ldap is None:
        raise ValueError("the onprem_ad workflow needs an ldap: section in the config")
    safety = settings.safety

    def allowed() -> bool:
        return not safety.paused and (writes_allowed is None or writes_allowed())

    ldap = LdapConnector(
        ldap_settings_from_config(settings.ldap, dry_run=safety.dry_run), writes_allowed=allowed
    )
    graph = None
    if settings.entra is not None:
        graph = GraphClient(
            settings_from_config(settings.entra),
            writes_allowed=allowed,
            dry_run=safety.dry_run,
            budget=budget,  # shared by every worker on PostgreSQL (workflows/directory.py)
        )
    return ldap, graph
