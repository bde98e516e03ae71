"""Stateless property tests from the app's own OpenAPI schema (schemathesis).

Every operation, fed generated (valid and invalid) input with an admin key: no answer is
a 5xx, and every answer matches the documented status codes, content types and schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from guardian.api import create_app
from guardian.app import create_api_key, open_guardian, prepare
from guardian.config import Settings

pytestmark = pytest.mark.slow  # schemathesis drives every endpoint


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_watermark_card: Path) -> Iterator[object]:
    home = tmp_path_factory.mktemp("schema") / "home"
    s = Settings(
        home=home,
        database_url=None,
        master_key=None,
        watermark_model=str(tiny_watermark_card),
        api_max_upload_bytes=256 * 1024,
        api_rate_per_minute=100_000,
        api_rate_burst=100_000,
    )
    g = open_guardian(s)
    prepare(g)
    app = create_app(s, guardian=g)
    app.state.guardian = g  # schemathesis calls the app without running its lifespan
    app.state.test_token = create_api_key(
        g, name="schema", organization="Schema Org", scopes=["admin"]
    ).token
    yield app
    g.engine.dispose()


def test_no_server_errors_and_every_answer_matches_the_schema(api) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)
    headers = {"Authorization": f"Bearer {api.state.test_token}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=checks)

        check()
        tested.append(operation.label)
    assert len(tested) >= 25, tested
