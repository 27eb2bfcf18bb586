"""Usage data: sign-in logs, Microsoft 365 usage reports and the report privacy setting.

- ``GET /auditLogs/signIns`` (``$filter`` on appId, userId, userPrincipalName,
  createdDateTime; newest first; 5 requests per 10 s per app).
- ``GET /reports/getOffice365ActiveUserDetail(period='D30')`` and
  ``getM365AppUserDetail(period='D30')``: 302 to a CSV on this server (14 per 10 min per
  app and report). With ``displayConcealedNames`` the user columns hold hashes.
- ``GET|PATCH /admin/reportSettings``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import uuid
from typing import Any

from reclaim.testing.graph.errors import bad_request
from reclaim.testing.graph.odata import page, parse_filter_option, parse_top
from reclaim.testing.graph.router import (
    GraphRequest,
    GraphResponse,
    Route,
    json_response,
    no_content,
)
from reclaim.testing.graph.tenant import Tenant

_CALL = re.compile(r"^(?P<fn>\w+)\(period='(?P<period>[^']*)'\)$")
PERIODS = ("D7", "D30", "D90", "D180")
_PRODUCTS = ("Exchange", "OneDrive", "SharePoint", "Skype For Business", "Yammer", "Teams")
_APPS = ("Outlook", "Word", "Excel", "PowerPoint", "OneNote", "Teams")
_PLATFORMS = ("Windows", "Mac", "Mobile", "Web")
COLUMNS = {
    "getoffice365activeuserdetail": [
        "Report Refresh Date",
        "User Principal Name",
        "Display Name",
        "Is Deleted",
        "Deleted Date",
        *(f"Has {p} License" for p in _PRODUCTS),
        *(f"{p} Last Activity Date" for p in _PRODUCTS),
        *(f"{p} License Assign Date" for p in _PRODUCTS),
        "Assigned Products",
    ],
    "getm365appuserdetail": [
        "Report Refresh Date",
        "User Principal Name",
        "Last Activation Date",
        "Last Activity Date",
        "Report Period",
        *_PLATFORMS,
        *_APPS,
        *(f"{a} ({p})" for p in _PLATFORMS for a in _APPS),
    ],
}
# Tenant-file keys under usageReports for each report function.
REPORT_KEYS = {
    "getoffice365activeuserdetail": "office365ActiveUserDetail",
    "getm365appuserdetail": "m365AppUserDetail",
}


def _sign_ins(tenant: Tenant) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(tenant.sign_ins):
        entry = dict(raw)
        user = tenant.find_user(str(entry.get("userPrincipalName") or entry.get("userId") or ""))
        if user is not None:
            entry.setdefault("userId", user.id)
            entry.setdefault("userPrincipalName", user.user_principal_name)
            entry.setdefault("userDisplayName", user.display_name)
        entry.setdefault("id", str(uuid.uuid5(uuid.NAMESPACE_OID, f"signin:{i}")))
        entry.setdefault("status", {"errorCode": 0, "failureReason": None})
        out.append(entry)
    out.sort(key=lambda e: str(e.get("createdDateTime", "")), reverse=True)
    return out


def list_sign_ins(req: GraphRequest) -> GraphResponse:
    """``GET /auditLogs/signIns``."""
    entries = _sign_ins(req.state.tenant)
    flt = parse_filter_option(req)
    top = parse_top(req, 1000, 1000)
    by_id = {e["id"]: e for e in entries if flt is None or flt(e)}
    body = page(
        req, list(by_id), lambda i: by_id[i], top=top, context="auditLogs/signIns", ordered=True
    )
    return json_response(body)


def get_report(req: GraphRequest, call: str) -> GraphResponse:
    """A usage report function: 302 to a freshly rendered CSV download."""
    m = _CALL.match(call)
    if m is None or m.group("fn").lower() not in COLUMNS:
        raise bad_request(f"Resource not found for the segment '{call}'.", "BadRequest")
    if m.group("period") not in PERIODS:
        raise bad_request(
            f"Invalid value for period: '{m.group('period')}'. Supported: {', '.join(PERIODS)}.",
            "BadRequest",
        )
    fn, period = m.group("fn").lower(), m.group("period")
    file_id = secrets.token_urlsafe(18)
    req.state.report_files[file_id] = render_report(req.state.tenant, fn, period, req)
    return GraphResponse(302, None, {"Location": f"{req.base_url}/_reports/{file_id}"}, "")


def render_report(tenant: Tenant, fn: str, period: str, req: GraphRequest) -> str:
    """The CSV text of one report (rows from the tenant file, or one empty row per user)."""
    columns = COLUMNS[fn]
    refresh = req.state.clock.utcnow().strftime("%Y-%m-%d")
    rows = tenant.usage_reports.get(REPORT_KEYS[fn])
    if rows is None:
        rows = [
            {"User Principal Name": u.user_principal_name, "Display Name": u.display_name}
            for u in tenant.users.values()
        ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        out = {"Report Refresh Date": refresh, "Report Period": period[1:], **row}
        if tenant.display_concealed_names:
            for col in ("User Principal Name", "Display Name"):
                if out.get(col):
                    out[col] = conceal(str(out[col]))
        writer.writerow(out)
    return buf.getvalue()


def conceal(name: str) -> str:
    """How concealed names look: a stable 32-hex-digit hash instead of the name."""
    return hashlib.sha256(name.lower().encode()).hexdigest()[:32].upper()


def get_report_settings(req: GraphRequest) -> GraphResponse:
    """``GET /admin/reportSettings``."""
    return json_response(
        {
            "@odata.context": f"{req.version_root}/$metadata#admin/reportSettings/$entity",
            "id": "reportSettings",
            "displayConcealedNames": req.state.tenant.display_concealed_names,
        }
    )


def patch_report_settings(req: GraphRequest) -> GraphResponse:
    """``PATCH /admin/reportSettings {"displayConcealedNames": bool}``."""
    body = req.body if isinstance(req.body, dict) else {}
    value = body.get("displayConcealedNames")
    if not isinstance(value, bool):
        raise bad_request("Invalid request body: 'displayConcealedNames' must be a boolean.")
    req.state.tenant.display_concealed_names = value
    return no_content()


ROUTES = [
    Route("GET", ("auditLogs", "signIns"), list_sign_ins, service="auditlogs", name="signIns"),
    Route("GET", ("reports", "*"), get_report, service="reports", name="reports"),
    Route("GET", ("admin", "reportSettings"), get_report_settings, service="none"),
    Route("PATCH", ("admin", "reportSettings"), patch_report_settings, service="none"),
]
