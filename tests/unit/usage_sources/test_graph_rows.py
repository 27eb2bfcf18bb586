"""Graph sign-ins, sign-in activity and usage-report CSVs → raw usage rows."""

from __future__ import annotations

import pytest

from reclaim.connectors.graph.reports import period_covering
from reclaim.usage_sources.events import validate
from reclaim.usage_sources.graph_pull import (
    ConcealedNames,
    activity_rows,
    report_rows,
    sign_in_rows,
)
from reclaim.usage_sources.rollup import OBSERVED_ONLY_APP

MIRO = "5e6f7a8b-0000-4000-8000-00000000a1b2"
NOW = 1_793_000_000


def test_successful_sign_ins_only_under_the_app_id() -> None:
    raw = sign_in_rows(
        [
            {
                "userPrincipalName": "Ada@X.test",
                "createdDateTime": "2026-10-01T08:00:00Z",
                "status": {"errorCode": 0},
                "deviceDetail": {"displayName": "PC-1"},
            },
            {
                "userPrincipalName": "bob@x.test",
                "createdDateTime": "2026-10-01T09:00:00Z",
                "status": {"errorCode": 50126, "failureReason": "Invalid password"},
            },
            {"userPrincipalName": "carl@x.test", "createdDateTime": "2026-10-02T10:00:00.1234567Z"},
        ],
        app_id=MIRO.upper(),
    )
    assert raw.select("user", "app", "device", "line").rows() == [
        ("Ada@X.test", MIRO, "PC-1", 1),
        ("carl@x.test", MIRO, None, 3),
    ]
    events = validate(raw, now=NOW).events
    day = 1_790_812_800  # 2026-10-01T00:00Z
    assert events["ts"].to_list() == [day + 8 * 3600, day + 86_400 + 10 * 3600]


def test_sign_in_activity_is_observation_only() -> None:
    raw = activity_rows(
        [
            {
                "userPrincipalName": "a@x.test",
                "signInActivity": {
                    "lastSignInDateTime": "2026-10-01T08:00:00Z",
                    "lastNonInteractiveSignInDateTime": "2026-10-03T08:00:00Z",
                },
            },
            {"userPrincipalName": "never@x.test"},
        ]
    )
    assert raw.select("user", "app", "timestamp").rows() == [
        ("a@x.test", OBSERVED_ONLY_APP, "2026-10-01T08:00:00Z"),
        ("a@x.test", OBSERVED_ONLY_APP, "2026-10-03T08:00:00Z"),
    ]


OFFICE = (
    (
        "\ufeffReport Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,"
        "Exchange Last Activity Date,Teams Last Activity Date\n"
    )
    + """\
2026-10-05,ada@x.test,Ada,False,,2026-10-04,
2026-10-05,bob@x.test,Bob,False,,,2026-09-30
2026-10-05,gone@x.test,Gone,True,2026-10-01,2026-09-01,
"""
)
APPS = (
    (
        "Report Refresh Date,User Principal Name,Last Activation Date,Last Activity Date,"
        "Report Period,Windows,Word,Excel,Teams\n"
    )
    + """\
2026-10-05,ada@x.test,2026-01-01,2026-10-03,30,Yes,Yes,No,Yes
2026-10-05,bob@x.test,,,30,No,No,No,No
"""
)


def test_office365_report_last_activity_per_workload() -> None:
    raw = report_rows(OFFICE, function="getOffice365ActiveUserDetail")
    assert raw.select("user", "app", "date", "line").rows() == [
        ("ada@x.test", "M365 Exchange", "2026-10-04", 2),
        ("bob@x.test", "M365 Teams", "2026-09-30", 3),
    ]


def test_m365_apps_report_yes_means_used_by_the_last_activity_date() -> None:
    raw = report_rows(APPS, function="getM365AppUserDetail")
    assert raw.select("user", "app", "date").rows() == [
        ("ada@x.test", "M365 Apps Word", "2026-10-03"),
        ("ada@x.test", "M365 Apps Teams", "2026-10-03"),
    ]


def test_concealed_names_are_refused_with_the_setting_to_change() -> None:
    hidden = OFFICE.replace("ada@x.test", "A" * 32).replace("bob@x.test", "0123456789ABCDEF" * 2)
    hidden = hidden.replace("gone@x.test", "F" * 32)
    with pytest.raises(ConcealedNames, match=r"concealed.*Display concealed user"):
        report_rows(hidden, function="getOffice365ActiveUserDetail")


@pytest.mark.parametrize(("days", "period"), [(0.5, 7), (7, 7), (8, 30), (45, 90), (400, 180)])
def test_report_period_covers_the_gap(days: float, period: int) -> None:
    assert period_covering(days) == period
