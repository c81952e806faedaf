"""Schema fuzzing: schemathesis sends requests generated from our own OpenAPI document to a real
uvicorn server on 127.0.0.1, with the write token, and checks every answer: no 5xx, the status
code, content type, headers and body as documented, schema-valid requests accepted and
schema-invalid ones refused.

The budget is small and the examples derandomized so that CI stays quick and repeatable; set
QA_FUZZ_EXAMPLES (e.g. 500) for a deeper run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from qa.api import ApiSettings, create_app
from tests.fakes import FakeEncoder
from tests.helpers import AUTH, TOKEN, seeded_service, serve_in_thread

EXAMPLES = int(os.environ.get("QA_FUZZ_EXAMPLES", "25"))

# The document the server serves at /schema/openapi.json; a test below checks they are the same.
schema = schemathesis.openapi.from_dict(create_app(settings=ApiSettings()).openapi_schema.to_schema())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server over the seed articles (fake encoder: the fuzzer tests HTTP, not ranking)."""
    service = seeded_service(tmp_path_factory.mktemp("fuzz") / "index", FakeEncoder())
    with serve_in_thread(create_app(service, settings=ApiSettings(api_token=TOKEN))) as url:
        yield url
    service.index.close()


def test_the_fuzzed_schema_is_the_served_one(base_url: str) -> None:
    import httpx

    served = httpx.get(f"{base_url}/schema/openapi.json", timeout=30).json()
    assert served == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, base_url: str) -> None:
    excluded = []
    if case.media_type == "multipart/form-data":
        # Random bytes under a random file name are not a document: they are refused with the
        # documented 400/415, which the other checks still verify.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(
        base_url=base_url,
        headers=AUTH,
        excluded_checks=excluded,
        timeout=60,
    )


def test_the_fuzzer_reaches_every_operation() -> None:
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert operations == {
        "GET /health",
        "GET /api/ask",
        "POST /api/ask",
        "GET /api/documents",
        "POST /api/documents",
        "GET /api/documents/{document_id}",
        "DELETE /api/documents/{document_id}",
    }
