"""Request and response models of the cases, plans, candidates, control and report APIs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    """Request bodies refuse unknown fields: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class CaseOut(BaseModel):
    """A case as listed (no history)."""

    id: int
    policy: str
    user: str
    cycle: int
    state: str
    status: str
    outcome: str | None
    verdict: str
    reason: str
    opened_at: str | None
    updated_at: str | None
    next_due_at: str | None
    attempts: int
    last_error: str | None


class CasePage(BaseModel):
    """A page of cases, newest first; follow ``next`` until it is null."""

    items: list[CaseOut]
    next: str | None


class HistoryStep(BaseModel):
    """One line of a case's execution log."""

    step: str = Field(description="What happened (the event's cause).")
    at: str | None
    from_: str | None = Field(alias="from")
    to: str
    input: dict[str, Any]
    outcome: str
    error: Any = None

    model_config = ConfigDict(populate_by_name=True)


class CaseDetail(CaseOut):
    """A case with its full history and what Reclaim sent or recorded for it."""

    reminders_sent: int
    plan_id: int | None
    can_answer: bool
    can_restore: bool
    history: list[HistoryStep]
    directory_writes: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    tasks: list[dict[str, Any]]


class AnswerIn(Body):
    """An answer recorded on the employee's behalf."""

    choice: Literal["keep", "release"]
    reason: str | None = Field(default=None, max_length=2000)


class RestoreIn(Body):
    """Why the license is given back."""

    reason: str = Field(min_length=1, max_length=2000)


class PlanCreateIn(Body):
    """Which policy to plan (all enabled policies when absent)."""

    policy: str | None = Field(default=None, max_length=100)


class DecisionIn(Body):
    """An approval or a rejection, with an optional note for the record."""

    note: str | None = Field(default=None, max_length=2000)


class PlanSummary(BaseModel):
    """A stored plan as listed."""

    id: int
    kind: str
    status: str
    created_at: str | None
    policies: list[str]
    decided_by: str | None
    decided_at: str | None


class PlanPage(BaseModel):
    """A page of plans, newest first."""

    items: list[PlanSummary]
    next: str | None


class PlanOut(PlanSummary):
    """A stored plan in full: every policy's items, caps, alerts, savings and impact."""

    note: str | None
    content: dict[str, Any]
    impact: dict[str, Any] = Field(
        description="Per policy: what else leaving its group takes away from each member."
    )


class PlanDecisionOut(PlanOut):
    """A plan after approval: how many waiting removals became due."""

    removals_released: int = 0


class CandidateOut(BaseModel):
    """One member's verdict."""

    policy: str
    user: str
    verdict: str
    last_used: str | None
    minutes_in_window: float | None
    window_days: int
    reason: str
    granted_on: str | None
    last_observed: str | None


class CandidatePage(BaseModel):
    """A page of verdicts, by policy then user."""

    as_of: str
    items: list[CandidateOut]
    next: str | None


class ControlIn(Body):
    """Why the kill switch is turned on or off."""

    reason: str | None = Field(default=None, max_length=500)


class ControlOut(BaseModel):
    """The kill switch."""

    paused: bool = Field(description="No directory write happens while true.")
    paused_in_store: bool = Field(description="Set by pause/resume (API, page or CLI).")
    paused_in_config: bool = Field(description="safety.paused in reclaim.yaml (wins).")
    updated_at: str | None
    updated_by: str | None


class Report(BaseModel):
    """A report (see the endpoint for its members)."""

    model_config = ConfigDict(extra="allow")
