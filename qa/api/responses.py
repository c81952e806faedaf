"""The error responses each route can give, for the OpenAPI document.

Clients (and the schema fuzzer in tests/test_fuzz.py) read the documented status codes as the
whole list of answers a route can give; every one of them has the same JSON error body.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ErrorBody(msgspec.Struct):
    """Every error: the HTTP status again and a message written for the developer reading it."""

    status_code: int
    detail: str
    extra: Any = None  # field-level problems of a validation error, when there are any


_MEANINGS = {
    400: "Bad input: the detail says what is wrong.",
    401: "Missing or wrong bearer token.",
    403: "Writes are disabled on this server (QA_API_TOKEN is not set).",
    404: "No such document.",
    413: "The body or the document is larger than the limit the detail names.",
    415: "Unsupported body or file type: the detail lists the supported ones.",
    429: "Too many requests from this address (only when QA_RATE_LIMIT is set).",
    503: "The index cannot be written or read on the server's side; the previous version is still served.",
    507: "The index directory's disk is full; the previous version is still served.",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """`responses=` for a route handler: the given error codes, each with the JSON error body."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=_MEANINGS[code], generate_examples=False)
        for code in codes
    }
