"""``POST /api/v1/usage``: batch usage ingestion (CSV, NDJSON or a JSON array)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from reclaim.web.api.models import UsageUploadResult, problem_responses
from reclaim.web.auth.deps import Principal, require
from reclaim.web.auth.roles import Role
from reclaim.web.state import web_state
from reclaim.web.usage_upload import upload_usage

router = APIRouter(tags=["usage"])

_EVENT = {
    "type": "object",
    "required": ["user", "app"],
    "properties": {
        "user": {"type": "string", "description": "UPN, matched case-insensitively"},
        "app": {"type": "string", "description": "application name or executable"},
        "timestamp": {"type": "string", "description": "ISO 8601, or epoch seconds"},
        "date": {"type": "string", "description": "YYYY-MM-DD when only the day is known"},
        "seconds": {"type": "number", "minimum": 0, "description": "duration of use"},
        "device": {"type": "string"},
    },
}
_TEXT = {"type": "string"}
_BODY = {
    "requestBody": {
        "required": True,
        "description": (
            "Usage events, one per row: user, app, timestamp or date, optional seconds "
            "and device (see README, 'Usage files')."
        ),
        "content": {
            "application/json": {"schema": {"type": "array", "items": _EVENT}},
            "application/x-ndjson": {"schema": _TEXT},
            "text/csv": {"schema": _TEXT},
        },
    }
}


@router.post(
    "/usage",
    response_model=UsageUploadResult,
    summary="Upload usage events",
    openapi_extra=_BODY,
    responses=problem_responses(400, 409, 413, 415),
)
async def usage_upload(
    request: Request,
    principal: Annotated[Principal, Depends(require(Role.INGEST))],
    source: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Name of the usage source these events come from.",
        ),
    ] = "api",
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Send the same key when retrying: the upload is counted once.",
        ),
    ] = None,
) -> Any:
    """Import the body. Bad rows are listed (the first ones) and good rows are kept.

    The same bytes uploaded twice are recognized (``status: duplicate``) and change
    nothing. With an ``Idempotency-Key``, a retry gets the first response again.
    """
    answer = await upload_usage(
        web_state(request),
        principal,
        chunks=request.stream(),
        content_type=request.headers.get("content-type"),
        declared_length=request.headers.get("content-length"),
        source=source,
        key=idempotency_key,
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)
