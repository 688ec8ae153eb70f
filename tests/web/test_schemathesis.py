"""schemathesis sends what the OpenAPI document describes (and what it does not)
at the app: no answer may be a 500, and every answer must match the document.

The default backend is a test backend that returns a 1x1 PNG at once, so the
fuzzer's 8192x8192 requests cost nothing; a few jobs and images exist so that
the listings have something to show.
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from imagen_core import Request, Result, Session, hookimpl
from imagen_web.app import create_app
from tests.helpers import registered, write_config

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class Instant:
    def __init__(self, config: object) -> None:
        pass

    def generate(self, request: Request, progress: object) -> Result:
        return Result(image=PIXEL, seed=request.seed or 1, model="instant", cost_usd=0.0)


class InstantPlugin:
    @hookimpl
    def register_backends(self, register):
        register("instant", Instant)


@pytest.fixture
def app(isolated_env, output_dir, pm):
    path = write_config(
        isolated_env,
        f"default_backend: instant\noutput: {{dir: '{output_dir}', preview: off}}\n"
        "styles: {poster: 'poster: {prompt}'}\n",
    )
    with registered(pm, InstantPlugin(), "instant"):
        session = Session(path)
        session.generate(Request("seen", width=8, height=8))
        session.queue().submit(Request("queued", width=8, height=8), backend="instant")
        yield create_app(session)


# schemathesis.pytest.from_fixture reads a node attribute pytest 9 no longer has:
# each operation's strategy is run through hypothesis here instead.
@pytest.mark.slow
def test_no_500_and_answers_match_the_document(app):
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every route but the document itself, which schemathesis leaves out.
    assert len(operations) == 18, " ".join(o.label for o in operations)
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ]
            )

        check()
