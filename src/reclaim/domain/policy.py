"""A policy: one licensed product, the group that grants it, and the rules for "unused".

These models are the single definition of a policy. ``reclaim.config`` embeds them in
the YAML file's schema, the store keeps a copy of each, and the decision logic reads
them. They are pydantic models because validation is part of what a policy *is*
(a negative ``unused_days`` is not a policy), not because they touch any I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reclaim.domain.names import app_key, user_key


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Workflow(StrEnum):
    """How a removal is carried out (the reference pack's two workflows, plus manual)."""

    ENTRA_ID = "entra_id"  # group mastered in Entra ID: DELETE .../members/{id}/$ref
    ONPREM_AD = "onprem_ad"  # group mastered in on-prem AD, synced to a read-only Entra ID
    MANUAL = "manual"  # no API access: removals become a task list for an admin


class NoResponse(StrEnum):
    """What happens when an asked employee never answers."""

    KEEP = "keep"
    RELEASE = "release"


class GroupRef(Strict):
    """Where the license group lives. Which fields are needed depends on the workflow.

    - ``entra_id``: the group's Entra object id (both Entra and hybrid workflows read
      it from Graph; for ``onprem_ad`` its ``onPremisesSecurityIdentifier`` leads to AD);
    - ``ad_dn`` / ``ad_sid`` / ``ad_sam``: the on-prem AD group, when it is not read
      through Entra;
    - ``name``: a display name (required for ``manual`` when nothing else is given).
    """

    entra_id: str | None = None
    ad_dn: str | None = None
    ad_sid: Annotated[str | None, Field(pattern=r"^S-1-\d+(-\d+)+$")] = None
    ad_sam: str | None = None
    name: str | None = None

    @field_validator("entra_id")
    @classmethod
    def _guid(cls, v: str | None) -> str | None:
        if v is not None and not _GUID.match(v):
            raise ValueError("must be an Entra object id (a GUID such as 0f1e…-…)")
        return v.lower() if v else v

    def label(self) -> str:
        """A short human label for messages and tables."""
        return self.name or self.entra_id or self.ad_dn or self.ad_sid or self.ad_sam or "?"


_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class SeatCost(Strict):
    """What one seat costs per month."""

    amount: Annotated[Decimal, Field(ge=0)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"


class Underuse(Strict):
    """The underuse floor: fewer than ``min_minutes`` within ``window_days`` is underused.

    The reference example is "under 2 hours in 90 days": ``min_minutes: 120``,
    ``window_days: 90``.
    """

    min_minutes: Annotated[int, Field(gt=0)]
    window_days: Annotated[int, Field(gt=0, le=3660)] = 90


class Exclusions(Strict):
    """People and groups never to be asked or touched by this policy."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @field_validator("users")
    @classmethod
    def _lower(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(user_key(u) for u in v)


class Campaign(Strict):
    """How and when an employee is asked, reminded, and what silence means."""

    response_timeout_days: Annotated[int, Field(gt=0, le=365)] = 10
    reminder_days: tuple[Annotated[int, Field(gt=0)], ...] = (3, 6)
    on_no_response: NoResponse = NoResponse.KEEP
    keep_cooldown_days: Annotated[int, Field(ge=0)] = 90
    channels: tuple[Literal["email", "teams", "slack"], ...] = ("email",)

    @model_validator(mode="after")
    def _reminders_before_timeout(self) -> Campaign:
        late = [d for d in self.reminder_days if d >= self.response_timeout_days]
        if late:
            raise ValueError(
                f"reminder_days {late} fall on or after response_timeout_days "
                f"({self.response_timeout_days}): such a reminder would never be sent"
            )
        if list(self.reminder_days) != sorted(set(self.reminder_days)):
            raise ValueError("reminder_days must be increasing, without repeats")
        return self


class Caps(Strict):
    """Blast-radius limits for one run of this policy."""

    max_per_run: Annotated[int, Field(ge=0)] = 50
    max_percent_of_group: Annotated[float, Field(ge=0, le=100)] = 10.0


_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


class Policy(Strict):
    """One licensed product: which apps count, which group grants it, and the rules."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\s/][^/]*$")]
    apps: Annotated[tuple[str, ...], Field(min_length=1)]
    group: GroupRef
    workflow: Workflow
    seat_cost: SeatCost
    renewal_date: dt.date | None = None
    enabled: bool = True
    unused_days: Annotated[int, Field(gt=0, le=3650)] = 30
    underuse: Underuse | None = None
    grace_days: Annotated[int, Field(ge=0, le=3650)] = 14
    exclude: Exclusions = Exclusions()
    ask_permission: bool = True
    require_approval: bool = False
    campaign: Campaign = Campaign()
    caps: Caps = Caps()
    schedule: str = "0 6 * * 1-5"
    # entra_id only: after the group removal, also remove a direct (non-group) assignment
    # of a SKU the group grants (assignLicense). Off: such seats are reported, never touched.
    remove_direct_license: bool = False

    @field_validator("apps")
    @classmethod
    def _apps_not_blank(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(a.strip() for a in v)
        if any(not a for a in cleaned):
            raise ValueError("app names must not be blank")
        return cleaned

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        parts = v.split()
        if len(parts) != 5 or not all(_CRON_FIELD.match(p) for p in parts):
            raise ValueError(
                f"{v!r} is not a 5-field cron expression (minute hour day month weekday)"
            )
        return v

    @model_validator(mode="after")
    def _group_fits_workflow(self) -> Policy:
        g = self.group
        if self.workflow is Workflow.ENTRA_ID and not g.entra_id:
            raise ValueError("workflow entra_id needs group.entra_id (the group's object id)")
        if self.workflow is Workflow.ONPREM_AD and not (g.entra_id or g.ad_dn or g.ad_sid):
            raise ValueError(
                "workflow onprem_ad needs group.entra_id (the synced group in Entra) "
                "or group.ad_dn / group.ad_sid"
            )
        if self.workflow is Workflow.MANUAL and not (g.name or g.entra_id or g.ad_dn):
            raise ValueError("workflow manual needs at least group.name")
        if self.remove_direct_license and self.workflow is not Workflow.ENTRA_ID:
            raise ValueError(
                "remove_direct_license works with workflow entra_id only (a direct license "
                "is assigned in Entra ID, which this workflow writes to)"
            )
        return self

    def app_keys(self) -> frozenset[str]:
        """The normalized names of every app whose use counts for this policy."""
        return frozenset(app_key(a) for a in self.apps)

    def yearly_seat_cost(self) -> Decimal:
        """Seat cost over twelve months."""
        return self.seat_cost.amount * 12
