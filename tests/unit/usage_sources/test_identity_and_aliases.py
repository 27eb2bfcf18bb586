"""SIDs, Entra object ids, account names; alias patterns; the shipped osquery pack."""

from __future__ import annotations

import json

import pytest

from reclaim.usage_sources.app_aliases import AppMatcher, executable_name, is_pattern
from reclaim.usage_sources.identity import (
    account_name,
    entra_object_id_of_sid,
    is_person_sid,
    normalize_sid,
    sid_of_entra_object_id,
)
from reclaim.usage_sources.osquery_pack import QUERIES, pack, query_for


def test_entra_sid_encodes_the_object_id() -> None:
    # The example Microsoft's Intune documentation pairs with this object id.
    sid = "S-1-12-1-1943430372-1249052806-2496021943-3034400218"
    assert entra_object_id_of_sid(sid) == "73d664e4-0886-4a73-b745-c694da45ddb4"
    assert sid_of_entra_object_id("73D664E4-0886-4A73-B745-C694DA45DDB4") == sid
    assert entra_object_id_of_sid("S-1-5-21-1-2-3-4") is None
    assert entra_object_id_of_sid("S-1-12-1-1-2-3") is None


def test_sid_helpers() -> None:
    assert normalize_sid(" s-1-5-21-1-2 ") == "S-1-5-21-1-2"
    assert normalize_sid("S-1-5-") is None and normalize_sid("alice") is None
    assert is_person_sid("S-1-5-21-9-9") and is_person_sid("S-1-12-1-5")
    assert not is_person_sid("S-1-5-18") and not is_person_sid("S-1-5-80-1")
    assert account_name(r"CORP\Alice") == "alice" == account_name(" alice ")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((r"C:\Program Files\Microsoft Office\root\Office16\VISIO.EXE",), "Microsoft Visio"),
        (("c:/program files/microsoft office/root/office16/visio.exe",), "Microsoft Visio"),
        ((r"C:\Program Files (x86)\Office15\VISIO.EXE",), "VISIO.EXE"),
        ((r"C:\Tools\Snag\SnagIt32.exe",), r"C:\Tools\*\snag*.exe"),
        (("com.tableau.Desktop", "/Applications/Tableau 2026.1.app"), "Tableau"),
        (("", "/Applications/Microsoft Excel.app"), "Microsoft Excel.app"),
        (("WINPROJ.EXE-0A1B2C3D.pf",), "WINPROJ.EXE"),
        (("", None), None),
    ],
)
def test_alias_rules(values: tuple[str | None, ...], expected: str | None) -> None:
    matcher = AppMatcher(
        [
            ["Microsoft Visio", "VISIO.EXE", r"*\Office16\VISIO.EXE"],
            [r"C:\Tools\*\snag*.exe"],  # patterns only: recorded under the pattern
            ["Tableau", "/Applications/Tableau*.app"],
        ]
    )
    assert matcher.name(*values) == expected


def test_pattern_detection_and_executable_names() -> None:
    assert is_pattern(r"*\VISIO.EXE") and is_pattern("Tableau 202?.app") and is_pattern("[Vv]isio")
    assert not is_pattern("VISIO.EXE") and not is_pattern(r"C:\Apps\VISIO.EXE")
    assert executable_name("C:\\A\\B\\") == "B"


def test_the_pack_is_a_valid_osquery_pack_with_the_queries_reclaim_reads() -> None:
    data = pack()
    assert set(data["queries"]) == set(QUERIES)
    for name, q in data["queries"].items():
        assert q["query"].rstrip().endswith(";"), name
        assert q["platform"] in ("windows", "darwin") and 60 <= q["interval"] <= 86_400
        assert QUERIES[name].kind.value == ("heartbeat" if "heartbeat" in name else "use")
        assert q.get("snapshot", False) == ("heartbeat" in name)  # heartbeats must repeat
    json.dumps(data)


@pytest.mark.parametrize(
    ("logged", "found"),
    [
        ("reclaim_userassist", "reclaim_userassist"),
        ("pack_reclaim-usage_reclaim_userassist", "reclaim_userassist"),
        ("pack/Global/reclaim_prefetch", "reclaim_prefetch"),
        ("pack:it:reclaim_macos_apps", "reclaim_macos_apps"),
        ("notreclaim_userassist_x", None),
        ("myreclaim_userassist", None),
        ("processes", None),
    ],
)
def test_query_names_match_whatever_pack_prefix(logged: str, found: str | None) -> None:
    spec = query_for(logged)
    assert (spec.name if spec else None) == found
