"""Small typed views of the Graph objects Reclaim reads, and the ``$select`` lists behind them.

Graph returns ``onPremises*``, ``accountEnabled``, ``signInActivity`` and
``licenseAssignmentStates`` only when selected, so the select lists and the parsers sit
side by side here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from reclaim.connectors.errors import (
    AlreadyDone,
    ConnectorError,
    NotFound,
    Rejected,
    StopRun,
    Transient,
)

USER_TYPE = "#microsoft.graph.user"

# Properties behind GraphUser. signInActivity is separate: it needs AuditLog.Read.All and
# an Entra ID P1/P2 tenant, and limits $top to 120 on lists.
USER_SELECT: tuple[str, ...] = (
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "accountEnabled",
    "userType",
    "onPremisesSyncEnabled",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "licenseAssignmentStates",
)
SIGN_IN_ACTIVITY = "signInActivity"
USER_SELECT_WITH_SIGN_IN: tuple[str, ...] = (*USER_SELECT, SIGN_IN_ACTIVITY)

GROUP_SELECT: tuple[str, ...] = (
    "id",
    "displayName",
    "groupTypes",
    "membershipRule",
    "mailEnabled",
    "securityEnabled",
    "onPremisesSyncEnabled",
    "onPremisesSecurityIdentifier",
    "onPremisesSamAccountName",
    "assignedLicenses",
)
SKU_SELECT: tuple[str, ...] = (
    "skuId",
    "skuPartNumber",
    "appliesTo",
    "capabilityStatus",
    "consumedUnits",
    "prepaidUnits",
)
DYNAMIC_MEMBERSHIP = "DynamicMembership"

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_datetime(value: Any) -> datetime | None:
    """Graph's ISO 8601 timestamps (``Z``, up to 7 fractional digits) as aware UTC datetimes."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SignInActivity:
    """The user's last sign-ins as Entra records them (None: never, or not recorded)."""

    last_sign_in: datetime | None
    last_non_interactive_sign_in: datetime | None
    last_successful_sign_in: datetime | None

    @property
    def latest(self) -> datetime | None:
        """The most recent of the recorded sign-ins."""
        seen = [
            d
            for d in (
                self.last_sign_in,
                self.last_non_interactive_sign_in,
                self.last_successful_sign_in,
            )
            if d is not None
        ]
        return max(seen) if seen else None


@dataclass(frozen=True)
class LicenseAssignmentState:
    """One license held by a user: which SKU, granted directly or by which group, since when."""

    sku_id: str
    assigned_by_group: str | None  # None: a direct assignment
    state: str | None  # Active, ActiveWithError, Disabled, Error
    error: str | None  # e.g. CountViolation
    last_updated: datetime | None
    disabled_plans: tuple[str, ...] = ()

    @property
    def is_direct(self) -> bool:
        """Assigned to the user directly, not inherited from a group."""
        return self.assigned_by_group is None


@dataclass(frozen=True)
class GraphUser:
    """A user with the properties Reclaim decides on."""

    id: str
    upn: str
    display_name: str | None
    mail: str | None
    account_enabled: bool | None
    user_type: str | None
    on_premises_sync_enabled: bool | None
    on_premises_sam_account_name: str | None
    on_premises_security_identifier: str | None
    sign_in_activity: SignInActivity | None
    license_assignment_states: tuple[LicenseAssignmentState, ...]

    def licenses_from_group(self, group_id: str) -> tuple[LicenseAssignmentState, ...]:
        """The assignments this group grants the user (their ``last_updated`` ≈ grant date)."""
        return tuple(s for s in self.license_assignment_states if s.assigned_by_group == group_id)

    def direct_licenses(self) -> tuple[LicenseAssignmentState, ...]:
        """Assignments made to the user directly."""
        return tuple(s for s in self.license_assignment_states if s.is_direct)


@dataclass(frozen=True)
class GraphGroup:
    """A group with what decides whether Reclaim may change its membership through Graph."""

    id: str
    display_name: str
    group_types: tuple[str, ...]
    membership_rule: str | None
    mail_enabled: bool | None
    security_enabled: bool | None
    on_premises_sync_enabled: bool | None
    on_premises_security_identifier: str | None
    on_premises_sam_account_name: str | None
    assigned_sku_ids: tuple[str, ...]

    @property
    def is_dynamic(self) -> bool:
        """Membership comes from ``membershipRule``; members cannot be added or removed."""
        return DYNAMIC_MEMBERSHIP in self.group_types

    @property
    def is_synced(self) -> bool:
        """Mastered in on-premises AD: membership changes must be made there."""
        return bool(self.on_premises_sync_enabled)


@dataclass(frozen=True)
class SubscribedSku:
    """A subscription: seats bought (``enabled``) and in use (``consumed``)."""

    sku_id: str
    sku_part_number: str
    applies_to: str | None
    capability_status: str | None
    enabled: int
    suspended: int
    warning: int
    consumed: int

    @property
    def available(self) -> int:
        """Free seats: enabled minus consumed (negative when over-assigned)."""
        return self.enabled - self.consumed


@dataclass(frozen=True)
class MembersDelta:
    """Membership changes of one group since the last delta link.

    ``full`` is True for a first round (or after an expired link): ``added`` is then the
    complete current member list and the caller should replace, not patch, its copy.
    Only user members are reported.
    """

    added: tuple[str, ...]
    removed: tuple[str, ...]
    delta_link: str
    full: bool


class Outcome(StrEnum):
    """What happened to one user in a bulk membership change."""

    DONE = "done"
    ALREADY_DONE = "already_done"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    TRANSIENT = "transient"
    STOPPED = "stopped"  # not attempted (or unknown): the run was stopped


@dataclass(frozen=True)
class MemberResult:
    """One user's outcome; ``error`` is the connector error behind any outcome but DONE."""

    user_id: str
    outcome: Outcome
    error: ConnectorError | None = None

    @property
    def succeeded(self) -> bool:
        """The user is no longer (or, for adds, now) in the desired state."""
        return self.outcome in (Outcome.DONE, Outcome.ALREADY_DONE)

    @classmethod
    def failed(cls, user_id: str, error: ConnectorError) -> MemberResult:
        """A result for ``error`` with the matching outcome."""
        for kind, outcome in _OUTCOME_OF:
            if isinstance(error, kind):
                return cls(user_id, outcome, error)
        return cls(user_id, Outcome.REJECTED, error)


# Most specific first: WriteRefused is a StopRun.
_OUTCOME_OF: tuple[tuple[type[ConnectorError], Outcome], ...] = (
    (AlreadyDone, Outcome.ALREADY_DONE),
    (NotFound, Outcome.NOT_FOUND),
    (Transient, Outcome.TRANSIENT),
    (StopRun, Outcome.STOPPED),
    (Rejected, Outcome.REJECTED),
)


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _opt_bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def user_from_json(data: dict[str, Any]) -> GraphUser:
    """Parse a user object (missing properties are None / empty)."""
    activity = data.get("signInActivity")
    sign_in = (
        SignInActivity(
            last_sign_in=parse_datetime(activity.get("lastSignInDateTime")),
            last_non_interactive_sign_in=parse_datetime(
                activity.get("lastNonInteractiveSignInDateTime")
            ),
            last_successful_sign_in=parse_datetime(activity.get("lastSuccessfulSignInDateTime")),
        )
        if isinstance(activity, dict)
        else None
    )
    states = tuple(
        LicenseAssignmentState(
            sku_id=str(s.get("skuId")),
            assigned_by_group=_opt_str(s, "assignedByGroup"),
            state=_opt_str(s, "state"),
            error=_opt_str(s, "error") if s.get("error") not in (None, "None") else None,
            last_updated=parse_datetime(s.get("lastUpdatedDateTime")),
            disabled_plans=tuple(str(p) for p in s.get("disabledPlans") or ()),
        )
        for s in data.get("licenseAssignmentStates") or ()
        if isinstance(s, dict)
    )
    return GraphUser(
        id=str(data["id"]),
        upn=str(data.get("userPrincipalName") or ""),
        display_name=_opt_str(data, "displayName"),
        mail=_opt_str(data, "mail"),
        account_enabled=_opt_bool(data, "accountEnabled"),
        user_type=_opt_str(data, "userType"),
        on_premises_sync_enabled=_opt_bool(data, "onPremisesSyncEnabled"),
        on_premises_sam_account_name=_opt_str(data, "onPremisesSamAccountName"),
        on_premises_security_identifier=_opt_str(data, "onPremisesSecurityIdentifier"),
        sign_in_activity=sign_in,
        license_assignment_states=states,
    )


def group_from_json(data: dict[str, Any]) -> GraphGroup:
    """Parse a group object."""
    return GraphGroup(
        id=str(data["id"]),
        display_name=str(data.get("displayName") or ""),
        group_types=tuple(str(t) for t in data.get("groupTypes") or ()),
        membership_rule=_opt_str(data, "membershipRule"),
        mail_enabled=_opt_bool(data, "mailEnabled"),
        security_enabled=_opt_bool(data, "securityEnabled"),
        on_premises_sync_enabled=_opt_bool(data, "onPremisesSyncEnabled"),
        on_premises_security_identifier=_opt_str(data, "onPremisesSecurityIdentifier"),
        on_premises_sam_account_name=_opt_str(data, "onPremisesSamAccountName"),
        assigned_sku_ids=tuple(
            str(a.get("skuId"))
            for a in data.get("assignedLicenses") or ()
            if isinstance(a, dict) and a.get("skuId")
        ),
    )


def sku_from_json(data: dict[str, Any]) -> SubscribedSku:
    """Parse a subscribedSku."""
    raw = data.get("prepaidUnits")
    prepaid: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return SubscribedSku(
        sku_id=str(data.get("skuId")),
        sku_part_number=str(data.get("skuPartNumber") or ""),
        applies_to=_opt_str(data, "appliesTo"),
        capability_status=_opt_str(data, "capabilityStatus"),
        enabled=int(prepaid.get("enabled") or 0),
        suspended=int(prepaid.get("suspended") or 0),
        warning=int(prepaid.get("warning") or 0),
        consumed=int(data.get("consumedUnits") or 0),
    )
