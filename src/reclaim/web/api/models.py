"""Response models: what the OpenAPI document promises the API returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ProblemModel(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description="A URI naming the kind of problem, or about:blank.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class FieldError(BaseModel):
    """One invalid field of a request."""

    location: str = Field(description="query, header, path or body")
    field: str
    detail: str


class ValidationProblem(ProblemModel):
    """422: which fields were wrong, one entry each."""

    errors: list[FieldError]


class MoneyOut(BaseModel):
    """A monthly amount in one currency, and twelve months of it (strings: decimals)."""

    currency: str
    monthly: str
    yearly: str


class PolicySavingsOut(BaseModel):
    """A policy's savings, as ``reclaim report`` computes them."""

    candidates: int = Field(description="Members whose verdict makes them candidates now.")
    seats_reclaimed: int = Field(description="Cases in 'removed' (a restore takes one back).")
    seats_pending: int = Field(description="Candidates and open cases not reclaimed yet.")
    realized: MoneyOut
    potential: MoneyOut


class PolicyRunOut(BaseModel):
    """The newest plan a scheduled or manual cycle stored for the policy."""

    at: str = Field(description="ISO 8601 UTC.")
    plan_id: int
    status: str = Field(description="applied, or awaiting_approval / approved / rejected.")


class PolicyNextRunOut(BaseModel):
    """When the scheduler runs the policy next."""

    at: str = Field(description="ISO 8601 UTC: a cron tick of the policy's schedule.")
    due: bool = Field(description="The tick is past and no worker has completed it yet.")
    running: bool = Field(description="A worker holds the policy's cycle lease now.")


class PreviewSummaryOut(BaseModel):
    """What the next run would do, in counts (items: ``/policies/{name}/preview``)."""

    ask: int = Field(description="People it would ask.")
    remove: int = Field(
        description="Licences it would remove (or, with require_approval, plan for approval)."
    )
    remove_awaiting_approval: int = Field(description="Of those, removals not approved yet.")
    held: int = Field(
        description="Asks and removals held back: cap, guard, kill switch, "
        "or a group Reclaim cannot write."
    )
    total: int
    cap: int = Field(description="The run's removal cap for this policy.")
    halted: bool = Field(description="The mass-removal guard stops the run.")
    alerts: list[str]
    evaluated_at: str = Field(description="When the verdicts and plan were computed.")


class PolicyOut(BaseModel):
    """A policy as configured (or, for one removed from the file, as last stored), with
    its verdicts, savings, runs and next-run preview (null when it is not enabled)."""

    id: int
    name: str
    enabled: bool
    in_config: bool = Field(description="False: removed from the file, kept for its history.")
    updated: str = Field(description="When the store's copy last changed (ISO 8601 UTC).")
    members: int = Field(description="Active members of the license group, as last imported.")
    definition: dict[str, Any] = Field(description="The policy's settings, as in reclaim.yaml.")
    verdicts: dict[str, int] | None = Field(
        default=None, description="Members per verdict, evaluated now (every verdict listed)."
    )
    savings: PolicySavingsOut | None = None
    last_run: PolicyRunOut | None = None
    next_run: PolicyNextRunOut | None = None
    preview: PreviewSummaryOut | None = None


class PolicyPage(BaseModel):
    """Policies (a short list: always one page, ``next`` is null)."""

    items: list[PolicyOut]
    next: str | None = None


class PreviewItemOut(BaseModel):
    """One person the next run would ask or remove, in the order the run takes them."""

    user: str
    action: Literal["ask", "remove"]
    status: Literal["planned", "deferred_by_cap", "halted", "blocked_paused", "blocked_group"]
    basis: str = Field(description="ask, released, no_response, retry or ask_permission_off.")
    reason: str
    last_used: str | None = Field(description="Last use of the product (date), if any.")
    waiting_since: str | None = Field(description="When the person's case opened, if open.")
    needs_approval: bool = Field(description="A planned removal that waits for approval.")


class PreviewPage(BaseModel):
    """One page of a policy's next-run preview."""

    items: list[PreviewItemOut]
    next: str | None = None
    total: int
    evaluated_at: str


class RowError(BaseModel):
    """A rejected row: its line in the body (CSV header = line 1) or array position."""

    row: int
    reason: str


class UsageUploadResult(BaseModel):
    """What an upload did. Good rows are kept even when some rows were rejected."""

    status: Literal["imported", "duplicate"] = Field(
        description="duplicate: these exact bytes were imported before; nothing changed."
    )
    format: Literal["csv", "ndjson", "json"]
    source: str
    sha256: str
    rows_accepted: int
    rows_rejected: int
    errors: list[RowError] = Field(description="The first rejected rows, in body order.")
    errors_truncated: bool = Field(description="More rows were rejected than listed.")
    previous_import: str | None = None


class AuditEntryOut(BaseModel):
    """One line of the audit log."""

    id: int
    at: str
    actor: str
    actor_kind: Literal["account", "token", "cli", "system"]
    action: str
    target: str | None
    detail: dict[str, Any]
    client_ip: str | None


class AuditPage(BaseModel):
    """A page of the audit log, newest first; follow ``next`` until it is null."""

    items: list[AuditEntryOut]
    next: str | None


class WhoAmI(BaseModel):
    """The caller as the API sees it."""

    kind: Literal["account", "token"]
    name: str
    role: Literal["viewer", "operator", "admin", "ingest"]


PROBLEM_SCHEMAS = {
    400: "Problem",
    401: "Problem",
    403: "Problem",
    404: "Problem",
    409: "Problem",
    413: "Problem",
    415: "Problem",
    422: "ValidationProblem",
    501: "Problem",
}
_DESCRIPTIONS = {
    400: "Bad request",
    401: "No valid credentials",
    403: "The caller's role does not allow this (or the CSRF token is missing)",
    404: "Not found",
    409: "A request with this Idempotency-Key is still running, or the state does not allow it",
    413: "The body is larger than the upload limit",
    415: "Unsupported Content-Type",
    422: "Invalid fields, or an Idempotency-Key reused with another body",
    501: "Not available in this version",
}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error codes, typed as problem+json.

    The schemas they point to are added to the document by :func:`problem_components`.
    """
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {"application/problem+json": {"schema": {"$ref": _schema_ref(code)}}},
        }
        for code in codes
    }


def _schema_ref(code: int) -> str:
    name = "ValidationProblem" if code == 422 else "Problem"
    return f"#/components/schemas/{name}"


def problem_components() -> dict[str, Any]:
    """JSON Schemas of the problem bodies, for ``components.schemas``."""
    from pydantic.json_schema import models_json_schema

    _, schema = models_json_schema(
        [(ProblemModel, "serialization"), (ValidationProblem, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Any] = schema["$defs"]
    defs["Problem"] = defs.pop("ProblemModel")
    return defs
