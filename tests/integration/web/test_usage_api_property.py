"""Bad input, generated, through POST /api/v1/usage: any body in any declared format
gets an answer — 2xx with counts, or 4xx problem+json — never a 500."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.web.conftest import WebEnv, client_for

GOOD_CSV = b"user,app,timestamp,seconds\nann@corp.example,Miro,2026-11-01T09:00:00Z,60\n"

bodies = st.one_of(
    st.binary(max_size=2000),
    st.binary(max_size=200).map(lambda b: GOOD_CSV + b),  # good rows, then junk
    st.binary(max_size=50).map(lambda b: b"\xef\xbb\xbf" + GOOD_CSV.replace(b"\n", b"\r\n") + b),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=5)),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=60,
    ).map(lambda v: json.dumps(v).encode()),  # deep and odd JSON
    st.integers(1, 200_000).map(lambda n: b"user,app,timestamp,seconds\n" + b"x" * n),
)
TYPES = ["text/csv", "application/x-ndjson", "application/json", "application/octet-stream"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, ctype=st.sampled_from(TYPES))
def test_any_upload_is_answered_never_a_server_error(web: WebEnv, body: bytes, ctype: str) -> None:
    async def send():
        async with client_for(web.app) as c:
            headers = web.auth("ingest") | {"Content-Type": ctype}
            return await c.post("/api/v1/usage", content=body, headers=headers)

    response = asyncio.run(send())

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "Traceback" not in response.text
    else:
        answer = response.json()
        assert answer["rows_accepted"] >= 0 and answer["rows_rejected"] >= 0
