"""Property-based API run: schemathesis generates requests from our OpenAPI document.

Bounded (at most 50 examples per operation) and authenticated as an admin token, which
may call every operation. The run fails on any 5xx, and on answers that break the
document (undocumented status codes, wrong content types, bodies off-schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from tests.integration.web.conftest import WebEnv, make_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebEnv]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    engine = make_engine(f"sqlite:///{tmp / 'reclaim.db'}")
    upgrade(engine)
    yield make_env(engine, tmp / "data")
    engine.dispose()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_api_conforms_and_never_fails_with_5xx(env: WebEnv) -> None:
    # Operations are walked by hand: schemathesis' lazy pytest fixture loader does not
    # run under this pytest version, and a schema needs the app, built by a fixture.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", env.app)
    auth = {"Authorization": f"Bearer {env.tokens['admin']}"}
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # a broken operation fails the test here
        operations.append(result.ok())
    assert len(operations) >= 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same examples every run: a failure is reproducible
            database=None,
        )
        def run(case: Case) -> None:
            headers = dict(case.headers or {})
            headers.update(auth)
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()
